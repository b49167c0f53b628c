import { amountToCents } from '../../shared/iso20022/index.ts';

/** Where a payment stands at the simulated SPI. */
export type PaymentStatus = 'pending' | 'settled' | 'rejected';

/** One payment (one `CdtTrfTxInf` of a pacs.008, or one return of a pacs.004). */
export interface LedgerPayment {
  /** `EndToEndId` (or the return's `RtrId`). */
  readonly endToEndId: string;
  /** `pacs.008` for a credit transfer, `pacs.004` for a return. */
  readonly kind: 'pacs.008' | 'pacs.004';
  /** The return's original EndToEndId (pacs.004 only). */
  readonly originalEndToEndId?: string;
  /** ISPB of the participant whose account is debited. */
  readonly payerIspb: string;
  /** ISPB of the participant whose account is credited. */
  readonly receiverIspb: string;
  /** BRL, two decimals. */
  readonly amount: string;
  /** BizMsgIdr of the message that carried it. */
  readonly bizMsgIdr: string;
  /** When the simulator accepted the message for processing (ISO, UTC). */
  readonly receivedAt: string;
  status: PaymentStatus;
  /**
   * Every answer the receiver posted (`ACSP`, `RJCT AC03`, …), in order, copies and late ones
   * included: more than one distinct value is a receiver that answered twice differently.
   */
  receiverAnswers?: string[];
  /**
   * When the first of {@link LedgerPayment.receiverAnswers} reached the simulator (its ICOM POST,
   * ISO, UTC): with the pacs.008's {@link SentMessage.createdAt}, the receiver's answer time as the
   * SPI sees it, the wait for the receiver's stream read included.
   */
  answeredAt?: string;
  /** Rejection reason (`AB03`, `DU03`, the receiver's code …). */
  reasonCode?: string;
  /** When it was settled or rejected. */
  decidedAt?: string;
}

/** Outcome of one inbound SPI message. */
export type ReceivedOutcome = 'processing' | 'accepted' | 'invalid' | 'duplicate';

/** One message a participant posted to ICOM. */
export interface ReceivedMessage {
  /** The `PI-ResourceId` answered to the POST, with `#n` for the n-th part of a multipart post. */
  readonly resourceId: string;
  /** Caller's ISPB (from its client certificate). */
  readonly ispb: string;
  readonly receivedAt: string;
  /**
   * Sequence number (1, 2, …) of the ICOM POST that carried it: the messages of one
   * `multipart/mixed` POST share it. Absent for messages the simulator made up itself.
   */
  readonly post?: number;
  /** Message type from the namespace, when readable (e.g. `pacs.008`). */
  type?: string;
  bizMsgIdr?: string;
  outcome: ReceivedOutcome;
  /** Why it was refused (stable code and text), for `invalid`/`duplicate`. */
  error?: { readonly code: string; readonly message: string };
}

/** One message the simulator put on a participant's stream. */
export interface SentMessage {
  /** The `PI-ResourceId` it is delivered with. */
  readonly resourceId: string;
  readonly toIspb: string;
  /** e.g. `pacs.002`, `admi.002`. */
  readonly type: string;
  readonly bizMsgIdr: string;
  /** The EndToEndId or BizMsgIdr it is about. */
  readonly reference: string;
  /** For pacs.002: `ACSC`, `ACCC`, `RJCT`. */
  readonly status?: string;
  readonly createdAt: string;
  /** How many times it was delivered on a stream. */
  deliveries: number;
  confirmed: boolean;
  /**
   * Addressed to a payer PSP the inbound traffic generator plays: recorded here, never queued
   * (nobody reads that stream), and not counted as unconfirmed.
   */
  readonly simulatedRecipient?: boolean;
}

/** One pibr.001 (echo request) the simulated SPI sent to a participant, and its answer. */
export interface LedgerEcho {
  /** BizMsgIdr of the pibr.001. */
  readonly bizMsgIdr: string;
  /** ISPB of the participant it was sent to. */
  readonly toIspb: string;
  /** `EchoTxInf/Data`: what the answer's `OrgnlData` must repeat. */
  readonly data: string;
  /** When it was queued (ISO, UTC). */
  readonly sentAt: string;
  /** When the participant's pibr.002 repeating `data` was accepted (the first such answer). */
  answeredAt?: string;
  /** BizMsgIdr of that pibr.002. */
  answerBizMsgIdr?: string;
}

/** Counts per state. */
export interface LedgerSummary {
  readonly received: number;
  readonly invalid: number;
  readonly duplicates: number;
  readonly pending: number;
  readonly settled: number;
  readonly rejected: number;
  readonly sent: number;
  readonly unconfirmed: number;
}

/**
 * What the simulated SPI received, settled, rejected and sent. Read by tests and the demo
 * through {@link BcbSimulator.ledger} or the admin endpoint.
 */
export class Ledger {
  private readonly paymentsById = new Map<string, LedgerPayment>();
  private readonly receivedList: ReceivedMessage[] = [];
  private readonly sentById = new Map<string, SentMessage>();
  private readonly echoList: LedgerEcho[] = [];
  private readonly listeners = new Set<() => void>();
  private counts = { invalid: 0, duplicates: 0, pending: 0, settled: 0, rejected: 0 };
  /** Sent messages not confirmed, kept as a count: the summary is polled while thousands are queued. */
  private unconfirmed = 0;

  /** Records an inbound message (returned object is updated as processing goes on). */
  recordReceived(message: ReceivedMessage): ReceivedMessage {
    this.receivedList.push(message);
    this.changed();
    return message;
  }

  /** Marks an inbound message's outcome. */
  setOutcome(message: ReceivedMessage, outcome: ReceivedOutcome, error?: { code: string; message: string }): void {
    message.outcome = outcome;
    if (error !== undefined) message.error = error;
    if (outcome === 'invalid') this.counts.invalid++;
    if (outcome === 'duplicate') this.counts.duplicates++;
    this.changed();
  }

  /** Whether a payment with this id exists. */
  hasPayment(endToEndId: string): boolean {
    return this.paymentsById.has(endToEndId);
  }

  /** Records a new pending payment. */
  addPayment(payment: LedgerPayment): void {
    this.paymentsById.set(payment.endToEndId, payment);
    this.counts.pending++;
    this.changed();
  }

  /** Settles or rejects a pending payment; false when it was no longer pending. */
  decide(endToEndId: string, status: 'settled' | 'rejected', reasonCode?: string): boolean {
    const payment = this.paymentsById.get(endToEndId);
    if (payment?.status !== 'pending') return false;
    payment.status = status;
    payment.decidedAt = new Date().toISOString();
    if (reasonCode !== undefined) payment.reasonCode = reasonCode;
    this.counts.pending--;
    this.counts[status]++;
    this.changed();
    return true;
  }

  /** Records a message put on a stream (or, for a simulated recipient, not put on any). */
  recordSent(message: SentMessage): void {
    const awaited = (m: SentMessage): boolean => !m.confirmed && m.simulatedRecipient !== true;
    const previous = this.sentById.get(message.resourceId);
    if (previous !== undefined && awaited(previous)) this.unconfirmed--;
    this.sentById.set(message.resourceId, message);
    if (awaited(message)) this.unconfirmed++;
    this.changed();
  }

  /** Marks a delivery or confirmation of a sent message. */
  markSent(resourceId: string, event: 'delivered' | 'confirmed'): void {
    const sent = this.sentById.get(resourceId);
    if (sent === undefined) return;
    if (event === 'delivered') sent.deliveries++;
    else if (!sent.confirmed) {
      sent.confirmed = true;
      this.unconfirmed--;
    }
    this.changed();
  }

  /**
   * Records an answer `fromIspb` posted (see {@link LedgerPayment.receiverAnswers}) about the
   * payment its pacs.002 names: by `OrgnlInstrId`, the EndToEndId of a pacs.008 or the RtrId of
   * a return; when the `OrgnlInstrId` names no payment at all, by `OrgnlEndToEndId`, so that an
   * answer about a pacs.008 with a malformed `OrgnlInstrId` is on record too. Recorded only when
   * `fromIspb` is the payment's receiver; `at` (when the answer's POST arrived) is kept for the first.
   */
  noteAnswer(about: { readonly originalInstructionId: string; readonly originalEndToEndId: string }, fromIspb: string, answer: string, at: string): void {
    const payment = this.paymentsById.get(about.originalInstructionId) ?? this.paymentsById.get(about.originalEndToEndId);
    if (payment?.receiverIspb !== fromIspb) return;
    payment.receiverAnswers = [...(payment.receiverAnswers ?? []), answer];
    payment.answeredAt ??= at;
  }

  /** The payment with this EndToEndId (or RtrId). */
  payment(endToEndId: string): Readonly<LedgerPayment> | undefined {
    const payment = this.paymentsById.get(endToEndId);
    return payment === undefined ? undefined : { ...payment };
  }

  /** Every payment, optionally only those in one state. */
  payments(status?: PaymentStatus): Readonly<LedgerPayment>[] {
    const all = [...this.paymentsById.values()];
    return (status === undefined ? all : all.filter((p) => p.status === status)).map((p) => ({ ...p }));
  }

  /** Records a pibr.001 the simulator sent. */
  recordEcho(echo: LedgerEcho): void {
    this.echoList.push({ ...echo });
    this.changed();
  }

  /**
   * Records `fromIspb`'s pibr.002 repeating `data` as the answer to the oldest unanswered echo
   * sent to it with that data, and returns that echo; with every such echo answered already
   * (another pibr.002 repeating the same data), returns the first one unchanged. Undefined when
   * no echo with this data was sent to `fromIspb`.
   */
  answerEcho(fromIspb: string, data: string, answerBizMsgIdr: string, at: Date): Readonly<LedgerEcho> | undefined {
    const matching = this.echoList.filter((e) => e.toIspb === fromIspb && e.data === data);
    const echo = matching.find((e) => e.answeredAt === undefined) ?? matching[0];
    if (echo === undefined) return undefined;
    if (echo.answeredAt === undefined) {
      echo.answeredAt = at.toISOString();
      echo.answerBizMsgIdr = answerBizMsgIdr;
      this.changed();
    }
    return { ...echo };
  }

  /** Every echo sent, in order, optionally only those to one participant. */
  echoes(toIspb?: string): Readonly<LedgerEcho>[] {
    return (toIspb === undefined ? this.echoList : this.echoList.filter((e) => e.toIspb === toIspb)).map((e) => ({ ...e }));
  }

  /** Every inbound message, in arrival order. */
  received(): Readonly<ReceivedMessage>[] {
    return this.receivedList.map((m) => ({ ...m }));
  }

  /** Every message put on a stream, optionally only those for one participant. */
  sent(toIspb?: string): Readonly<SentMessage>[] {
    const all = [...this.sentById.values()];
    return (toIspb === undefined ? all : all.filter((m) => m.toIspb === toIspb)).map((m) => ({ ...m }));
  }

  /** Net settled position of each participant, in BRL with two decimals (credits minus debits). */
  positions(): Record<string, string> {
    const cents = new Map<string, bigint>();
    for (const p of this.paymentsById.values()) {
      if (p.status !== 'settled') continue;
      const value = amountToCents(p.amount);
      cents.set(p.payerIspb, (cents.get(p.payerIspb) ?? 0n) - value);
      cents.set(p.receiverIspb, (cents.get(p.receiverIspb) ?? 0n) + value);
    }
    const out: Record<string, string> = {};
    for (const [ispb, value] of cents) {
      const negative = value < 0n;
      const abs = negative ? -value : value;
      out[ispb] = `${negative ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
    }
    return out;
  }

  /** Counts per state. */
  summary(): LedgerSummary {
    return { received: this.receivedList.length, ...this.counts, sent: this.sentById.size, unconfirmed: this.unconfirmed };
  }

  /**
   * Resolves with the first value `probe` returns other than undefined, re-evaluated on every
   * ledger change; rejects after `timeoutMs`.
   */
  waitFor<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    const first = probe();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const listener = (): void => {
        const value = probe();
        if (value === undefined) return;
        cleanup();
        resolve(value);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`ledger condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
    });
  }

  /** Waits until the payment is settled or rejected and returns it. */
  waitForDecision(endToEndId: string, timeoutMs?: number): Promise<Readonly<LedgerPayment>> {
    return this.waitFor(() => {
      const p = this.paymentsById.get(endToEndId);
      return p !== undefined && p.status !== 'pending' ? { ...p } : undefined;
    }, timeoutMs);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
