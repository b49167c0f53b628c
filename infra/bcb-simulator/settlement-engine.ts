import { amountToCents } from '../../shared/iso20022/index.ts';
import type { CreditTransfer, PaymentReturn, TransactionStatus } from '../../shared/iso20022/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { FaultController } from './faults.ts';
import type { Ledger, LedgerPayment } from './ledger.ts';
import type { ReceiverBehaviour } from './simulator-options.ts';
import type { SpiEmitter } from './spi-emitter.ts';

/** Dependencies of {@link SettlementEngine}. */
export interface SettlementEngineDeps {
  readonly ledger: Ledger;
  readonly emitter: SpiEmitter;
  readonly faults: FaultController;
  /** The current behaviour of a receiving participant. */
  readonly receiverOf: (ispb: string) => ReceiverBehaviour;
  /** AB03 limit from `AccptncDtTm`, ms. */
  readonly settlementLimitMs: number;
  readonly logger: Logger;
  /** Told of each credit transfer once settled or rejected (the inbound traffic generator counts its own). @defaultValue nobody */
  readonly decided?: (payment: Readonly<LedgerPayment>) => void;
}

function settlementDate(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/**
 * The simulated SPI settlement: a pacs.008 goes to the receiver, whose answer (simulated per
 * configuration, or a live participant's pacs.002) settles or rejects it; with no answer the
 * payment is rejected AB03 when the limit from `AccptncDtTm` passes (DESIGN §2: 40 s).
 * Settlement sends pacs.002 ACSC to the payer and ACCC to the receiver, only after the
 * receiver's ACSP; a rejection (the receiver's RJCT, or AB03) sends pacs.002 RJCT to both.
 */
export class SettlementEngine {
  private readonly deps: SettlementEngineDeps;
  private readonly timers = new Map<string, NodeJS.Timeout[]>();
  private readonly transactions = new Map<string, CreditTransfer>();
  private closed = false;

  constructor(deps: SettlementEngineDeps) {
    this.deps = deps;
  }

  /** Starts the settlement of one accepted credit transfer from `payerIspb`. */
  begin(transaction: CreditTransfer, bizMsgIdr: string, payerIspb: string, receivedAt: Date): void {
    const { ledger, emitter } = this.deps;
    const e2e = transaction.endToEndId;
    const receiverIspb = transaction.creditorAgentIspb;
    ledger.addPayment({ endToEndId: e2e, kind: 'pacs.008', payerIspb, receiverIspb, amount: transaction.amount, bizMsgIdr, receivedAt: receivedAt.toISOString(), status: 'pending' });
    this.transactions.set(e2e, transaction);
    const accepted = Date.parse(transaction.acceptanceDateTime);
    const deadline = (Number.isFinite(accepted) && accepted <= receivedAt.getTime() ? accepted : receivedAt.getTime()) + this.deps.settlementLimitMs;
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      // Expired before it was forwarded: the receiver never saw this EndToEndId, only the payer is told.
      this.reject(e2e, 'AB03', 'limite de tempo de liquidação excedido', false);
      return;
    }
    emitter.pacs008(receiverIspb, transaction);
    const behaviour = this.deps.receiverOf(receiverIspb);
    const dropped = this.deps.faults.dropAnswer();
    if (!dropped && (behaviour.mode === 'accept' || behaviour.mode === 'reject')) {
      const answer = (): void => {
        if (behaviour.mode === 'accept') this.answer(receiverIspb, e2e, 'ACSP');
        else this.answer(receiverIspb, e2e, 'RJCT', { code: behaviour.reasonCode, ...(behaviour.additionalInformation === undefined ? {} : { additionalInformation: behaviour.additionalInformation }) });
      };
      const delay = behaviour.delayMs ?? 0;
      if (delay === 0) {
        answer();
        return;
      }
      this.schedule(e2e, delay, answer);
    }
    this.schedule(e2e, remaining, () => this.reject(e2e, 'AB03', 'limite de tempo de liquidação excedido', true));
  }

  /**
   * The receiver's answer (ACSP or RJCT) to a pending payment. Ignored when the payment is not
   * pending any more (a late answer) or `fromIspb` is not its receiver; returns whether it counted.
   */
  answer(fromIspb: string, endToEndId: string, status: 'ACSP' | 'RJCT', reason?: { code: string; additionalInformation?: string }): boolean {
    const payment = this.deps.ledger.payment(endToEndId);
    if (payment?.status !== 'pending' || payment.receiverIspb !== fromIspb) return false;
    if (status === 'ACSP') this.settle(endToEndId);
    // The SPI confirms a receiver's refusal to the receiver too, as it confirms an ACSP with ACCC:
    // the receiver learns that the payment is finally rejected, not only that it said so.
    else this.reject(endToEndId, reason?.code ?? 'RJCT', reason?.additionalInformation, true);
    return true;
  }

  /** Rejects a payment at once (duplicate EndToEndId and similar) without forwarding it. */
  refuse(transaction: CreditTransfer, payerIspb: string, code: string, information: string): void {
    this.deps.emitter.pacs002(payerIspb, { originalInstructionId: transaction.endToEndId, originalEndToEndId: transaction.endToEndId, status: 'RJCT', reason: { code, additionalInformation: information } });
  }

  /** Stops every timer; pending payments stay pending. */
  close(): void {
    this.closed = true;
    for (const list of this.timers.values()) for (const t of list) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * A pacs.004 from `senderIspb`: the return of (part of) a settled payment that `senderIspb`
   * received. The SPI settles it at once, without the other side's acceptance: pacs.002 ACSC to
   * the sender, the pacs.004 to the participant that gets the money back. Refused (pacs.002 RJCT
   * to the sender) when the original is unknown, not settled, not the sender's to return, already
   * returned in full, or when the RtrId was seen before.
   */
  returnPayment(ret: PaymentReturn, bizMsgIdr: string, senderIspb: string, receivedAt: Date): void {
    const { ledger, emitter } = this.deps;
    const refuse = (code: string, information: string): void => {
      // The pacs.002 about a return names the RtrId as OrgnlInstrId and the original EndToEndId (pacs.002 XSD).
      emitter.pacs002(senderIspb, { originalInstructionId: ret.returnId, originalEndToEndId: ret.originalEndToEndId, status: 'RJCT', reason: { code, additionalInformation: information } });
    };
    if (ledger.hasPayment(ret.returnId)) return refuse('AM05', `RtrId ${ret.returnId} duplicado`);
    const original = ledger.payment(ret.originalEndToEndId);
    if (original === undefined || original.kind !== 'pacs.008') return refuse('AG09', `pagamento original ${ret.originalEndToEndId} desconhecido`);
    if (original.status !== 'settled') return refuse('AG09', `pagamento original ${ret.originalEndToEndId} não liquidado`);
    if (original.receiverIspb !== senderIspb) return refuse('AG09', `o pagamento ${ret.originalEndToEndId} não foi recebido por ${senderIspb}`);
    const returnedCents = ledger
      .payments('settled')
      .filter((p) => p.kind === 'pacs.004' && p.originalEndToEndId === ret.originalEndToEndId)
      .reduce((sum, p) => sum + cents(p.amount), 0n);
    if (returnedCents + cents(ret.amount) > cents(original.amount)) return refuse('AM09', `devolução acima do valor original ${original.amount}`);
    ledger.addPayment({
      endToEndId: ret.returnId,
      kind: 'pacs.004',
      originalEndToEndId: ret.originalEndToEndId,
      payerIspb: senderIspb,
      receiverIspb: original.payerIspb,
      amount: ret.amount,
      bizMsgIdr,
      receivedAt: receivedAt.toISOString(),
      status: 'pending',
    });
    ledger.decide(ret.returnId, 'settled');
    const now = new Date();
    emitter.pacs002(senderIspb, { originalInstructionId: ret.returnId, originalEndToEndId: ret.originalEndToEndId, status: 'ACSC', settlementDateTime: now.toISOString(), interbankSettlementDate: settlementDate(now) });
    emitter.pacs004(original.payerIspb, ret);
    this.deps.logger.debug({ returnId: ret.returnId, originalEndToEndId: ret.originalEndToEndId }, 'return settled');
  }

  private schedule(e2e: string, delayMs: number, run: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(run, delayMs);
    timer.unref();
    const list = this.timers.get(e2e) ?? [];
    list.push(timer);
    this.timers.set(e2e, list);
  }

  private finish(e2e: string): void {
    for (const t of this.timers.get(e2e) ?? []) clearTimeout(t);
    this.timers.delete(e2e);
    this.transactions.delete(e2e);
  }

  /** Right after the ledger's decision and before the pacs.002 are recorded: whoever watches the ledger then sees the counts too. */
  private notify(e2e: string): void {
    const decided = this.deps.ledger.payment(e2e);
    if (decided !== undefined) this.deps.decided?.(decided);
  }

  private settle(e2e: string): void {
    const { ledger, emitter } = this.deps;
    const payment = ledger.payment(e2e);
    if (payment === undefined || !ledger.decide(e2e, 'settled')) return;
    this.notify(e2e);
    const now = new Date();
    const base = { originalInstructionId: e2e, originalEndToEndId: e2e, settlementDateTime: now.toISOString(), interbankSettlementDate: settlementDate(now) };
    emitter.pacs002(payment.payerIspb, { ...base, status: 'ACSC' });
    emitter.pacs002(payment.receiverIspb, { ...base, status: 'ACCC' });
    this.finish(e2e);
    this.deps.logger.debug({ endToEndId: e2e }, 'payment settled');
  }

  private reject(e2e: string, code: string, information: string | undefined, tellReceiver: boolean): void {
    const { ledger, emitter } = this.deps;
    const payment = ledger.payment(e2e);
    if (payment === undefined || !ledger.decide(e2e, 'rejected', code)) return;
    this.notify(e2e);
    const status: TransactionStatus = {
      originalInstructionId: e2e,
      originalEndToEndId: e2e,
      status: 'RJCT',
      reason: { code, ...(information === undefined ? {} : { additionalInformation: information }) },
    };
    emitter.pacs002(payment.payerIspb, status);
    if (tellReceiver) emitter.pacs002(payment.receiverIspb, status);
    this.finish(e2e);
    this.deps.logger.debug({ endToEndId: e2e, reason: code }, 'payment rejected');
  }
}

/** BRL amount as integer cents (decimal strings, never floating point). */
function cents(amount: string): bigint {
  return amountToCents(amount);
}
