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
 * Reason code of a return nobody answered before the settlement limit. No BCB text seen for this
 * work names the code the SPI uses when the receiver of a pacs.004 does not answer: a public
 * restatement of the homologation script names AB11, and the pacs.002 XSD's code list carries
 * both AB03 and AB11. The public homologation toolkit apolzek/open-pix (docs/reference/error-codes.md,
 * docs/playbook/03-spi-functionality.md) uses AB03 as the SPI's timeout code and never mentions
 * AB11, so the simulator answers a return's timeout as it answers a pacs.008's: AB03.
 */
export const RETURN_TIMEOUT_REASON = 'AB03';

/**
 * The simulated SPI settlement. A pacs.008 goes to the receiver, whose answer (simulated per
 * configuration, or a live participant's pacs.002) settles or rejects it; with no answer the
 * payment is rejected AB03 when the limit from `AccptncDtTm` passes (DESIGN §2: 40 s). A pacs.004
 * goes the same way to the participant credited by the return (the original payer), the limit
 * counted from when the SPI received it. Settlement sends pacs.002 ACSC to the payer and ACCC to
 * the receiver, only after the receiver's ACSP; a rejection (the receiver's RJCT, or the timeout)
 * sends pacs.002 RJCT to both. The pacs.002 about a return name its RtrId as `OrgnlInstrId` and
 * the original payment's EndToEndId as `OrgnlEndToEndId`.
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
    const e2e = transaction.endToEndId;
    const receiverIspb = transaction.creditorAgentIspb;
    this.deps.ledger.addPayment({ endToEndId: e2e, kind: 'pacs.008', payerIspb, receiverIspb, amount: transaction.amount, bizMsgIdr, receivedAt: receivedAt.toISOString(), status: 'pending' });
    this.transactions.set(e2e, transaction);
    const accepted = Date.parse(transaction.acceptanceDateTime);
    const deadline = (Number.isFinite(accepted) && accepted <= receivedAt.getTime() ? accepted : receivedAt.getTime()) + this.deps.settlementLimitMs;
    this.forward(e2e, receiverIspb, deadline, 'AB03', () => this.deps.emitter.pacs008(receiverIspb, transaction));
  }

  /**
   * The receiver's answer (ACSP or RJCT) to a pending payment or return, found by the pacs.002's
   * `OrgnlInstrId` (the EndToEndId of a pacs.008, the RtrId of a pacs.004). Ignored when nothing
   * pending has that id, `fromIspb` is not its receiver, or `originalEndToEndId` (when given) is
   * not the EndToEndId the payment is about; returns whether it counted.
   */
  answer(fromIspb: string, instructionId: string, status: 'ACSP' | 'RJCT', reason?: { code: string; additionalInformation?: string }, originalEndToEndId?: string): boolean {
    const payment = this.deps.ledger.payment(instructionId);
    if (payment?.status !== 'pending' || payment.receiverIspb !== fromIspb) return false;
    if (originalEndToEndId !== undefined && originalEndToEndId !== (payment.originalEndToEndId ?? payment.endToEndId)) return false;
    if (status === 'ACSP') this.settle(instructionId);
    // The SPI confirms a receiver's refusal to the receiver too, as it confirms an ACSP with ACCC:
    // the receiver learns that the payment is finally rejected, not only that it said so.
    else this.reject(instructionId, reason?.code ?? 'RJCT', reason?.additionalInformation, true);
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
   * received. Refused at once (pacs.002 RJCT to the sender) when the original is unknown, not
   * settled, not the sender's to return, when the return would take back more than the original
   * amount (with the returns settled or still pending), or when the RtrId was seen before.
   * Otherwise it is pending until the participant it credits (the original payer) answers, like a
   * pacs.008: ACSP settles it, RJCT or no answer by the settlement limit rejects it.
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
    // A return waiting for its receiver's answer holds its amount: two returns in flight together
    // cannot take back more than was paid.
    const returnedCents = ledger
      .payments()
      .filter((p) => p.kind === 'pacs.004' && p.originalEndToEndId === ret.originalEndToEndId && p.status !== 'rejected')
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
    // The SPI waits for the pacs.002 of the participant credited by the return, as for a pacs.008:
    // bacen/pix-api issue #184 (the SPI's admi.002 "O emissor da situacao pagamento eh diferente do
    // participante creditado" to a pacs.002 about a pacs.004 sent by the wrong side), issue #250
    // (SPI pacs.002 ACCC for a D-prefixed RtrId) and the homologation script (Roteiro, items 2g/2h:
    // the PSP receives a pacs.004 and accepts it with a pacs.002 ACSP, or rejects it with a reason,
    // before the SPI's timeout). A pacs.004 carries no AccptncDtTm: the limit runs from its receipt.
    this.forward(ret.returnId, original.payerIspb, receivedAt.getTime() + this.deps.settlementLimitMs, RETURN_TIMEOUT_REASON, () => emitter.pacs004(original.payerIspb, ret));
    this.deps.logger.debug({ returnId: ret.returnId, originalEndToEndId: ret.originalEndToEndId }, 'return forwarded');
  }

  /**
   * Sends the pending payment `id` to `receiverIspb` (`send`) and arranges its end: the receiver's
   * simulated answer per its configured behaviour (a live receiver answers through
   * {@link SettlementEngine.answer}), and the rejection `timeoutCode` to both sides at `deadline`.
   * Past the deadline already, only the payer is told: the receiver never saw the id.
   */
  private forward(id: string, receiverIspb: string, deadline: number, timeoutCode: string, send: () => void): void {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      this.reject(id, timeoutCode, 'limite de tempo de liquidação excedido', false);
      return;
    }
    send();
    const behaviour = this.deps.receiverOf(receiverIspb);
    const dropped = this.deps.faults.dropAnswer();
    if (!dropped && (behaviour.mode === 'accept' || behaviour.mode === 'reject')) {
      const answer = (): void => {
        if (behaviour.mode === 'accept') this.answer(receiverIspb, id, 'ACSP');
        else this.answer(receiverIspb, id, 'RJCT', { code: behaviour.reasonCode, ...(behaviour.additionalInformation === undefined ? {} : { additionalInformation: behaviour.additionalInformation }) });
      };
      const delay = behaviour.delayMs ?? 0;
      if (delay === 0) {
        answer();
        return;
      }
      this.schedule(id, delay, answer);
    }
    this.schedule(id, remaining, () => this.reject(id, timeoutCode, 'limite de tempo de liquidação excedido', true));
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
    const base = { ...identifiers(payment), settlementDateTime: now.toISOString(), interbankSettlementDate: settlementDate(now) };
    emitter.pacs002(payment.payerIspb, { ...base, status: 'ACSC' });
    emitter.pacs002(payment.receiverIspb, { ...base, status: 'ACCC' });
    this.finish(e2e);
    this.deps.logger.debug({ ...identifiers(payment) }, 'payment settled');
  }

  private reject(e2e: string, code: string, information: string | undefined, tellReceiver: boolean): void {
    const { ledger, emitter } = this.deps;
    const payment = ledger.payment(e2e);
    if (payment === undefined || !ledger.decide(e2e, 'rejected', code)) return;
    this.notify(e2e);
    const status: TransactionStatus = {
      ...identifiers(payment),
      status: 'RJCT',
      reason: { code, ...(information === undefined ? {} : { additionalInformation: information }) },
    };
    emitter.pacs002(payment.payerIspb, status);
    if (tellReceiver) emitter.pacs002(payment.receiverIspb, status);
    this.finish(e2e);
    this.deps.logger.debug({ ...identifiers(payment), reason: code }, 'payment rejected');
  }
}

/**
 * `OrgnlInstrId` and `OrgnlEndToEndId` of the pacs.002 about a payment: the EndToEndId twice for a
 * pacs.008; the RtrId and the original payment's EndToEndId for a pacs.004 (pacs.002 XSD).
 */
function identifiers(payment: Readonly<LedgerPayment>): { originalInstructionId: string; originalEndToEndId: string } {
  return { originalInstructionId: payment.endToEndId, originalEndToEndId: payment.originalEndToEndId ?? payment.endToEndId };
}

/** BRL amount as integer cents (decimal strings, never floating point). */
function cents(amount: string): bigint {
  return amountToCents(amount);
}
