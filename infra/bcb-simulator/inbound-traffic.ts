import { randomInt, randomUUID } from 'node:crypto';
import { amountFromCents, amountToCents, generateEndToEndId, generateMessageId } from '../../shared/iso20022/index.ts';
import type { CreditTransfer } from '../../shared/iso20022/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { LedgerPayment } from './ledger.ts';

/**
 * Simulated payer PSPs paying the customers of one participant: what {@link InboundTraffic}
 * generates. Each payment is a pacs.008 credit transfer that enters the simulated SPI as if a
 * payer had posted it and it had passed the SPI's checks.
 */
export interface InboundTrafficOptions {
  /** ISPB of the receiving participant (`CdtrAgt`), 8 characters `[0-9A-Z]`. */
  readonly toIspb: string;
  /** Payments per second, more than 0 and at most {@link MAX_INBOUND_RATE_PER_SECOND}. */
  readonly ratePerSecond: number;
  /** Payments to send before stopping by itself. @defaultValue unbounded: until stopped, replaced or the simulator closes */
  readonly count?: number;
  /**
   * ISPBs of the simulated payer PSPs (`DbtrAgt`), used in turn. The SPI's answers to them
   * (pacs.002 ACSC or RJCT, a pacs.004 returning a payment) are recorded in the ledger but never
   * queued: nobody reads their streams. They must not be the receiver, the BCB, or a configured
   * participant. @defaultValue {@link DEFAULT_INBOUND_PAYER_ISPBS}
   */
  readonly payerIspbs?: readonly string[];
  /** Smallest amount, BRL decimal string. @defaultValue '0.01' */
  readonly minAmount?: string;
  /** Largest amount, BRL decimal string, at least `minAmount`. @defaultValue '2500.00' */
  readonly maxAmount?: string;
  /** Share of payments initiated by a DICT key (`DICT`, with `CdtrAcct/Prxy`) rather than by hand (`MANU`), in [0, 1]. @defaultValue 0.5 */
  readonly dictShare?: number;
}

/** {@link InboundTrafficOptions} with every default applied. */
export interface ResolvedInboundTraffic {
  readonly toIspb: string;
  readonly ratePerSecond: number;
  readonly count: number | undefined;
  readonly payerIspbs: readonly string[];
  readonly minAmount: string;
  readonly maxAmount: string;
  readonly dictShare: number;
}

/** Where the current (or last) run of the generator stands. */
export interface InboundTrafficStatus {
  /** Whether payments are still being generated. */
  readonly running: boolean;
  /** The run's settings, or undefined when the generator never ran. */
  readonly settings: ResolvedInboundTraffic | undefined;
  /** When the run started (ISO, UTC). */
  readonly startedAt: string | undefined;
  /** When it stopped generating: stopped, replaced, closed or `count` reached. */
  readonly stoppedAt: string | undefined;
  /** Payments handed to the settlement engine in this run. */
  readonly sent: number;
  /** Of those, settled (the receiver answered ACSP). */
  readonly settled: number;
  /** Of those, rejected (the receiver's RJCT, or AB03 at the settlement limit). */
  readonly rejected: number;
  /** Of those, neither settled nor rejected yet. */
  readonly pending: number;
  /** Rejections per reason code (`AB03`, the receiver's code). */
  readonly rejectedByReason: Readonly<Record<string, number>>;
}

/** The inbound traffic generator's controls on a running simulator ({@link BcbSimulator.inbound}). */
export interface InboundTrafficControl {
  /**
   * Starts generating payments, replacing the current run (its counts restart at zero).
   * @throws RangeError naming the bad field; the current run then goes on.
   */
  start(options: InboundTrafficOptions): InboundTrafficStatus;
  /** Stops generating; payments already sent are still settled or rejected, and counted. */
  stop(): InboundTrafficStatus;
  /** The current (or last) run's counts. */
  status(): InboundTrafficStatus;
}

/** Payer PSPs the generator plays when none are given: test ISPBs no fixture or the development PKI uses. */
export const DEFAULT_INBOUND_PAYER_ISPBS: readonly string[] = ['99999010', '99999011'];

/** The highest rate: the generator shares the simulator's event loop with ICOM. */
export const MAX_INBOUND_RATE_PER_SECOND = 1000;

const ISPB = /^[0-9A-Z]{8}$/;

/**
 * Applies the defaults and validates, naming the field (prefixed with `field`) and the bad
 * value. `reserved` are ISPBs a payer must not be (the BCB, configured participants).
 */
export function resolveInboundTraffic(options: InboundTrafficOptions, field = 'InboundTrafficOptions', reserved: ReadonlySet<string> = new Set()): ResolvedInboundTraffic {
  const problem = (name: string, rule: string, value: unknown): RangeError => new RangeError(`${field}.${name} ${rule}, got ${JSON.stringify(value)}`);
  if (typeof options !== 'object' || options === null) throw new RangeError(`${field} must be an object, got ${JSON.stringify(options)}`);
  const { toIspb, ratePerSecond, count } = options;
  if (typeof toIspb !== 'string' || !ISPB.test(toIspb)) throw problem('toIspb', 'must be 8 characters [0-9A-Z]', toIspb);
  if (typeof ratePerSecond !== 'number' || !(ratePerSecond > 0 && ratePerSecond <= MAX_INBOUND_RATE_PER_SECOND)) {
    throw problem('ratePerSecond', `must be a number more than 0 and at most ${MAX_INBOUND_RATE_PER_SECOND}`, ratePerSecond);
  }
  if (count !== undefined && !(Number.isInteger(count) && count >= 1)) throw problem('count', 'must be a positive integer', count);
  const payerIspbs: unknown = options.payerIspbs ?? DEFAULT_INBOUND_PAYER_ISPBS;
  if (!Array.isArray(payerIspbs) || payerIspbs.length === 0) throw problem('payerIspbs', 'must be a non-empty list of ISPBs', payerIspbs);
  const payers: string[] = [];
  (payerIspbs as readonly unknown[]).forEach((ispb, i) => {
    if (typeof ispb !== 'string' || !ISPB.test(ispb)) throw problem(`payerIspbs[${i}]`, 'must be 8 characters [0-9A-Z]', ispb);
    if (ispb === toIspb) throw problem(`payerIspbs[${i}]`, 'must not be the receiver (toIspb)', ispb);
    if (reserved.has(ispb)) throw problem(`payerIspbs[${i}]`, 'must not be the BCB or a configured participant (its real messages would not be queued)', ispb);
    payers.push(ispb);
  });
  const amount = (name: string, value: unknown): bigint => {
    try {
      if (typeof value !== 'string') throw new TypeError('not a string');
      const cents = amountToCents(value);
      if (cents < 1n) throw new RangeError('zero');
      return cents;
    } catch {
      throw problem(name, 'must be a positive BRL decimal string with at most 2 fraction digits', value);
    }
  };
  const min = amount('minAmount', options.minAmount ?? '0.01');
  const max = amount('maxAmount', options.maxAmount ?? '2500.00');
  if (max < min) throw problem('maxAmount', `must be at least minAmount (${amountFromCents(min)})`, options.maxAmount);
  const dictShare = options.dictShare ?? 0.5;
  if (typeof dictShare !== 'number' || !(dictShare >= 0 && dictShare <= 1)) throw problem('dictShare', 'must be a number in [0, 1]', dictShare);
  return { toIspb, ratePerSecond, count, payerIspbs: payers, minAmount: amountFromCents(min), maxAmount: amountFromCents(max), dictShare };
}

/** Dependencies of {@link InboundTraffic}. */
export interface InboundTrafficDeps {
  /** Hands an accepted credit transfer to the settlement, as the SPI does after its checks on a posted pacs.008. */
  readonly submit: (transaction: CreditTransfer, bizMsgIdr: string, payerIspb: string) => void;
  /** ISPBs a payer must not be (the BCB, configured participants). */
  readonly reserved: ReadonlySet<string>;
  readonly logger: Logger;
}

const FIRST_NAMES = ['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Fábio', 'Gabriela', 'Heitor', 'Isabela', 'João', 'Larissa', 'Marcos', 'Natália', 'Otávio', 'Patrícia', 'Rafael'];
const SURNAMES = ['Almeida', 'Barbosa', 'Cardoso', 'Duarte', 'Ferreira', 'Gomes', 'Lima', 'Moreira', 'Nascimento', 'Oliveira', 'Pereira', 'Ribeiro', 'Santos', 'Teixeira'];
const REMITTANCES = ['aluguel', 'almoço', 'presente', 'conta de luz', 'mensalidade', 'reembolso'];

function pick<T>(list: readonly T[]): T {
  return list[randomInt(list.length)] as T;
}

function digits(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += String(randomInt(10));
  return out;
}

/** A fake CPF with valid check digits (Receita Federal modulo-11 rule), not a real person's. */
export function fakeCpf(): string {
  const base = digits(9);
  const check = (partial: string): string => {
    const sum = [...partial].reduce((acc, d, i) => acc + Number(d) * (partial.length + 1 - i), 0);
    const rest = (sum * 10) % 11;
    return String(rest === 10 ? 0 : rest);
  };
  const first = check(base);
  return base + first + check(base + first);
}

interface Run {
  readonly settings: ResolvedInboundTraffic;
  readonly startedAt: number;
  stoppedAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  sent: number;
  settled: number;
  rejected: number;
  readonly rejectedByReason: Record<string, number>;
  /** Index of the next payer in {@link ResolvedInboundTraffic.payerIspbs}. */
  nextPayer: number;
  /** Pacing origin: at `originAt`, payment number `originSent + 1` was due; one more every `1000 / ratePerSecond` ms after. */
  originAt: number;
  originSent: number;
}

/** The shortest pause between two ticks, ms: above that rate a tick sends several payments. */
const MIN_TICK_MS = 10;

/**
 * The inbound traffic generator: simulated payer PSPs paying one participant's customers at a
 * steady rate. One run at a time (starting another replaces it); counts are per run and follow
 * the payments it sent until each is settled or rejected, even after it stopped generating.
 * Its timers are unref'd and it generates nothing after {@link InboundTraffic.close}.
 */
export class InboundTraffic implements InboundTrafficControl {
  private readonly deps: InboundTrafficDeps;
  private run: Run | undefined;
  /** The run of each payment not yet decided; bounded by rate × settlement limit. */
  private readonly undecided = new Map<string, Run>();
  /** Every ISPB played as a payer since the start: answers about their payments may still come. */
  private readonly payers = new Set<string>();
  private closed = false;

  constructor(deps: InboundTrafficDeps) {
    this.deps = deps;
  }

  /** Whether `ispb` is (or was) played by the generator: the SPI does not queue messages to it. */
  isSimulatedPayer(ispb: string): boolean {
    return this.payers.has(ispb);
  }

  /** Starts generating, replacing the current run; validates first (a refused run leaves the current one going). */
  start(options: InboundTrafficOptions, field = 'InboundTrafficOptions'): InboundTrafficStatus {
    if (this.closed) throw new Error('the BCB simulator is closed: no inbound traffic');
    const settings = resolveInboundTraffic(options, field, this.deps.reserved);
    this.halt();
    for (const payer of settings.payerIspbs) this.payers.add(payer);
    const now = Date.now();
    const run: Run = { settings, startedAt: now, stoppedAt: undefined, timer: undefined, sent: 0, settled: 0, rejected: 0, rejectedByReason: {}, nextPayer: 0, originAt: now, originSent: 0 };
    this.run = run;
    this.tick(run);
    return this.status();
  }

  /** Stops generating; the payments already sent go on being settled or rejected (and counted). */
  stop(): InboundTrafficStatus {
    this.halt();
    return this.status();
  }

  /** The current (or last) run's counts. */
  status(): InboundTrafficStatus {
    const run = this.run;
    if (run === undefined) {
      return { running: false, settings: undefined, startedAt: undefined, stoppedAt: undefined, sent: 0, settled: 0, rejected: 0, pending: 0, rejectedByReason: {} };
    }
    return {
      running: run.stoppedAt === undefined,
      settings: run.settings,
      startedAt: new Date(run.startedAt).toISOString(),
      stoppedAt: run.stoppedAt === undefined ? undefined : new Date(run.stoppedAt).toISOString(),
      sent: run.sent,
      settled: run.settled,
      rejected: run.rejected,
      pending: run.sent - run.settled - run.rejected,
      rejectedByReason: { ...run.rejectedByReason },
    };
  }

  /** The settlement decided a payment; counts it when the generator sent it. */
  decided(payment: Readonly<LedgerPayment>): void {
    const run = this.undecided.get(payment.endToEndId);
    if (run === undefined) return;
    this.undecided.delete(payment.endToEndId);
    if (payment.status === 'settled') run.settled++;
    else if (payment.status === 'rejected') {
      run.rejected++;
      const reason = payment.reasonCode ?? 'RJCT';
      run.rejectedByReason[reason] = (run.rejectedByReason[reason] ?? 0) + 1;
    }
  }

  /** Stops for good (the simulator's close). */
  close(): void {
    this.closed = true;
    this.halt();
  }

  private halt(): void {
    const run = this.run;
    if (run === undefined || run.stoppedAt !== undefined) return;
    if (run.timer !== undefined) clearTimeout(run.timer);
    run.timer = undefined;
    run.stoppedAt = Date.now();
  }

  private tick(run: Run): void {
    run.timer = undefined;
    if (run.stoppedAt !== undefined) return;
    const { ratePerSecond, count } = run.settings;
    const limit = count ?? Number.POSITIVE_INFINITY;
    // Paced from an origin rather than tick by tick, so that timer drift does not lower the
    // rate; a stalled event loop is not made up for beyond one tick's worth: when further behind,
    // the origin moves to now (no burst after a pause).
    const intervalMs = Math.max(MIN_TICK_MS, 1000 / ratePerSecond);
    const perTick = Math.max(1, Math.round((ratePerSecond * intervalMs) / 1000));
    const now = Date.now();
    const due = Math.min(limit, run.originSent + Math.floor(((now - run.originAt) * ratePerSecond) / 1000) + 1);
    const batch = Math.max(0, Math.min(due - run.sent, perTick));
    if (due - run.sent > perTick) {
      run.originAt = now;
      run.originSent = run.sent + batch - 1;
    }
    for (let i = 0; i < batch; i++) {
      try {
        this.sendOne(run);
      } catch (error) {
        // A payment that cannot be built is a defect of the generator: stop rather than spin.
        this.deps.logger.error({ err: error }, 'inbound traffic stopped: a payment could not be generated');
        this.halt();
        return;
      }
    }
    if (run.sent >= limit) {
      this.halt();
      return;
    }
    // The first instant at which one more payment is due.
    const next = run.originAt + ((run.sent - run.originSent) * 1000) / ratePerSecond;
    run.timer = setTimeout(() => this.tick(run), Math.max(MIN_TICK_MS, next - Date.now()));
    run.timer.unref();
  }

  private sendOne(run: Run): void {
    const { settings } = run;
    const payerIspb = settings.payerIspbs[run.nextPayer % settings.payerIspbs.length] as string;
    run.nextPayer++;
    const transaction = this.payment(settings, payerIspb);
    run.sent++;
    this.undecided.set(transaction.endToEndId, run);
    // The last one: stopped before it is submitted, so that a ledger watcher sees the run ended.
    if (run.sent >= (settings.count ?? Number.POSITIVE_INFINITY)) this.halt();
    this.deps.submit(transaction, generateMessageId(payerIspb), payerIspb);
  }

  private payment(settings: ResolvedInboundTraffic, payerIspb: string): CreditTransfer {
    const now = new Date();
    const min = amountToCents(settings.minAmount);
    const max = amountToCents(settings.maxAmount);
    // randomInt takes safe integers: amounts up to about 90 trillion BRL.
    const cents = min + BigInt(randomInt(Number(max - min) + 1));
    const byKey = Math.random() < settings.dictShare;
    const creditorAccount = { number: digits(randomInt(6, 11)), branch: digits(4), type: pick(['CACC', 'CACC', 'SVGS', 'TRAN'] as const) };
    return {
      endToEndId: generateEndToEndId(payerIspb, { at: now }),
      amount: amountFromCents(cents),
      acceptanceDateTime: now.toISOString(),
      localInstrument: byKey ? 'DICT' : 'MANU',
      debtor: { name: `${pick(FIRST_NAMES)} ${pick(SURNAMES)} ${pick(SURNAMES)}`, taxId: fakeCpf() },
      debtorAccount: { number: digits(randomInt(6, 11)), branch: digits(4), type: 'CACC' },
      debtorAgentIspb: payerIspb,
      creditorAgentIspb: settings.toIspb,
      creditor: { taxId: fakeCpf() },
      // A random EVP key: the generator does not know the receiver's DICT entries.
      creditorAccount: byKey ? { ...creditorAccount, proxy: randomUUID() } : creditorAccount,
      purpose: 'IPAY',
      ...(randomInt(3) === 0 ? { remittanceInformation: pick(REMITTANCES) } : {}),
    };
  }
}
