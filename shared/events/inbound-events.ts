import type { ClaimCheckReference } from '../claim-check/index.ts';
import { EventDetailInvalidError } from './event-detail.ts';
import { record, text } from './json-fields.ts';
import type { Json } from './json-fields.ts';
import type { ResolutionData, VerifiedAccount } from './verified-events.ts';

/**
 * detail-types of the receiving side (issue 14): another PSP pays one of our customers.
 *
 * 1. `InboundPaymentDecisionRequested` (selo.verify): the SPI forwarded a pacs.008 to us; core
 *    banking must decide. **Not a credit**: the money has not moved. A pacs.004 returning one of
 *    our payments is `InboundReturnDecisionRequested`, decided and answered the same way.
 * 2. `InboundPaymentDecided` (core.banking): accept (ACSP) or reject (RJCT with a reason).
 * 3. selo signs and sends the pacs.002 (`MessageSigned`, `MessageTransmitted`).
 * 4. `InboundPaymentSettled` (selo.verify): the SPI settled (pacs.002 ACCC): **credit now**, and
 *    only now. `InboundPaymentRejected` (selo.verify): the SPI rejected it (our RJCT, or AB03
 *    when no answer came in time): never credit.
 *
 * `InboundDecisionLate` (selo.sign, to operations): a decision that came after the answer could
 * still count; it was not sent. `EchoReceived` (selo.verify): the SPI sent us a pibr.001, answered
 * with a signed pibr.002. `UnsupportedMessageReceived` (selo.verify, to operations): a correctly
 * signed message of a type selo does not handle yet, kept with its bytes.
 */
export const INBOUND_EVENTS = {
  decisionRequested: 'InboundPaymentDecisionRequested',
  returnDecisionRequested: 'InboundReturnDecisionRequested',
  decided: 'InboundPaymentDecided',
  settled: 'InboundPaymentSettled',
  rejected: 'InboundPaymentRejected',
  decisionLate: 'InboundDecisionLate',
  echoReceived: 'EchoReceived',
  unsupported: 'UnsupportedMessageReceived',
} as const;

/** The saga id of a payment another PSP sends us (`IN#<EndToEndId>`, or `IN#<RtrId>` for a return). */
export function inboundSagaId(instructionId: string): string {
  return `IN#${instructionId}`;
}

/**
 * Reason codes a receiving PSP may give in its pacs.002 RJCT: the pacs.002 1.17 code list
 * (`ExternalStatusReason1Code` in `pacs.002.spi.1.17.xsd`) less the codes only the SPI raises
 * (AB03/AB11 timeouts, AM12/AM18 batch totals, AGNT, DUPL/DU03 duplicates, ED05). Which code
 * means what: the catalogue's domain table "Reason da PACS002" (see the README's receiving
 * section for the sources read).
 */
export const RECEIVER_REJECTION_CODES: readonly string[] = [
  'AB09', 'AC03', 'AC06', 'AC07', 'AC14', 'AG03', 'AG12', 'AG13', 'AM01', 'AM02', 'AM04', 'AM09', 'AM23', 'BE01', 'BE05', 'BE15', 'BE17',
  'CH11', 'CH16', 'CN01', 'DS02', 'DS04', 'DS0G', 'DS27', 'DT02', 'DT05', 'FF07', 'FF08', 'FRAD', 'INDT', 'MD01', 'RC09', 'RC10', 'RR04',
  'RR06', 'SL02', 'UPAY',
];

/**
 * `InboundPaymentDecisionRequested` data, version 1: a pacs.008 to one of our customers (one event
 * per transaction), verified. Core banking answers with `InboundPaymentDecided` before
 * `answerDeadline`. It is **not** a credit: credit on `InboundPaymentSettled` only. Carries
 * personal data (names, tax ids, accounts): never log it.
 */
export interface InboundPaymentDecisionRequestedData {
  channel: 'spi';
  endToEndId: string;
  /** BizMsgIdr of the pacs.008 as the SPI forwarded it. */
  bizMsgIdr: string;
  resourceId: string;
  /** Decimal string in BRL (`"150.00"`), never a number. */
  amount: string;
  acceptanceDateTime: string;
  /** When selo read the pacs.008 from the ICOM stream. */
  receivedAt: string;
  /** The last moment a decision is still answered; later ones become `InboundDecisionLate`. */
  answerDeadline: string;
  localInstrument: string;
  txId?: string;
  purpose?: string;
  remittanceInformation?: string;
  debtor: { name: string; taxId: string };
  debtorAccount: VerifiedAccount;
  debtorAgentIspb: string;
  creditor: { taxId: string };
  creditorAccount: VerifiedAccount;
  creditorAgentIspb: string;
}

/** `InboundPaymentDecided` data, version 1, from core banking; the detail's sagaId is `IN#<EndToEndId>`. */
export type InboundPaymentDecidedData =
  | { decision: 'ACSP'; decidedAt: string }
  | { decision: 'RJCT'; decidedAt: string; reason: { code: string; additionalInformation?: string } };

/** What `InboundPaymentSettled` and `InboundPaymentRejected` share: the payment, the SPI's pacs.002, our answer time. */
export interface InboundOutcomeData {
  channel: 'spi';
  endToEndId: string;
  /** `OrgnlInstrId`: the EndToEndId, or the RtrId of a return. */
  originalInstructionId: string;
  /** Decimal string in BRL, from the message that was answered. */
  amount?: string;
  /** BizMsgIdr of the SPI's pacs.002 (absent in a resolution). */
  bizMsgIdr?: string;
  /** `PI-ResourceId` of the SPI's pacs.002 (absent in a resolution). */
  resourceId?: string;
  /** Receipt of the pacs.008 → ICOM 201 of our pacs.002, ms. */
  answerMs?: number;
  /** Present when operations closed an IN_DOUBT or OUTCOME_CONFLICT inbound payment (no pacs.002 behind it). */
  resolution?: ResolutionData;
}

/** `InboundPaymentSettled` data, version 1: the SPI settled a payment to one of our customers (pacs.002 ACCC); credit it. */
export interface InboundPaymentSettledData extends InboundOutcomeData {
  settlementDateTime?: string;
  interbankSettlementDate?: string;
}

/** `InboundPaymentRejected` data, version 1: the SPI rejected a payment to one of our customers; never credit it. */
export interface InboundPaymentRejectedData extends InboundOutcomeData {
  /**
   * `StsRsnInf/Rsn/Cd` (our own code, or `AB03` when the SPI's limit passed) and `AddtlInf`; `code`
   * is absent when the SPI's RJCT carried none (`Rsn` is optional in the pacs.002 1.17 XSD).
   */
  reason: { code?: string; additionalInformation?: string };
  /** What selo answered, when it answered (`ACSP`, `RJCT AC03`, …). */
  answer?: string;
}

/** `InboundDecisionLate` data, version 1: core banking's decision came too late and was not sent (operations). */
export interface InboundDecisionLateData {
  channel: 'spi';
  /** `ACSP` or `RJCT <code>`. */
  decision: string;
  decidedAt: string;
  answerDeadline?: string;
  /** The inbound saga's state when the decision arrived. */
  recordedState: string;
  reason: string;
}

/** `EchoReceived` data, version 1: the SPI sent us a pibr.001; the sign worker answers it with a pibr.002. */
export interface EchoReceivedData {
  channel: 'spi';
  /** `EchoTxInf/Data` of the pibr.001, returned in the pibr.002. */
  originalData: string;
  /** BizMsgIdr of the pibr.001 (also the detail's requestId; the saga is `ECHO#<BizMsgIdr>`). */
  bizMsgIdr: string;
  resourceId: string;
  receivedAt: string;
}

/** `UnsupportedMessageReceived` data, version 1: a verified SPI message of a type selo does not handle yet (operations). */
export interface UnsupportedMessageReceivedData {
  channel: 'spi';
  /** The message identifier (`camt.060`, …) or the Document namespace when unknown. */
  messageType: string;
  bizMsgIdr: string;
  resourceId: string;
  /** Where its exact bytes are kept. */
  kept: ClaimCheckReference;
  reason: string;
}


function instant(from: Json, field: string): string {
  const value = text(from, field);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new EventDetailInvalidError(`data.${field}`, 'must be an ISO 8601 UTC date-time (yyyy-MM-ddTHH:mm:ss.sssZ)');
  }
  return value;
}

/**
 * Decodes `InboundPaymentDecided` data; throws {@link EventDetailInvalidError} (permanent) naming
 * the field. A rejection's code must be one a receiver may give ({@link RECEIVER_REJECTION_CODES}).
 */
export function decodeInboundPaymentDecided(data: unknown): InboundPaymentDecidedData {
  const d = record(data, 'data');
  const decidedAt = instant(d, 'decidedAt');
  if (d.decision === 'ACSP') return { decision: 'ACSP', decidedAt };
  if (d.decision !== 'RJCT') throw new EventDetailInvalidError('data.decision', `must be "ACSP" or "RJCT", got ${JSON.stringify(d.decision) ?? 'nothing'}`);
  const reason = record(d.reason, 'data.reason');
  const code = text(reason, 'code', 'data.reason');
  if (!RECEIVER_REJECTION_CODES.includes(code)) {
    throw new EventDetailInvalidError('data.reason.code', `must be a reason code a receiver may give (pacs.002 1.17: ${RECEIVER_REJECTION_CODES.join(', ')}), got ${JSON.stringify(code)}`);
  }
  const info = reason.additionalInformation;
  if (info !== undefined && (typeof info !== 'string' || info.length > 105)) throw new EventDetailInvalidError('data.reason.additionalInformation', 'must be a string of at most 105 characters');
  return { decision: 'RJCT', decidedAt, reason: { code, ...(info === undefined ? {} : { additionalInformation: info }) } };
}

/** How a refusal begins where a decision is written (`RJCT <code>`, see {@link describeDecision}). */
export const REFUSAL_PREFIX = 'RJCT';

/** `ACSP` or `RJCT <code>`: how a decision is written in the saga (fact `answer`) and in events. */
export function describeDecision(decision: InboundPaymentDecidedData): string {
  return decision.decision === 'ACSP' ? 'ACSP' : `${REFUSAL_PREFIX} ${decision.reason.code}`;
}

/** Whether a written decision (the saga's `answer`) refused the payment. */
export function isRefusal(answer: string | undefined): boolean {
  return answer?.startsWith(REFUSAL_PREFIX) === true;
}

/** The reason code of a written refusal (`RJCT AC03` → `AC03`); undefined for an ACSP or nothing. */
export function refusalCodeOf(answer: string | undefined): string | undefined {
  return isRefusal(answer) ? /^\S+ ([A-Z0-9]{4})\b/.exec(answer ?? '')?.[1] : undefined;
}

/**
 * What an inbound payment's final facts take from its saga's facts: the amount of the message
 * answered and our answer time (receipt → ICOM 201 of our pacs.002), when both times are known.
 */
export function inboundOutcomeFacts(facts: Readonly<Record<string, string>>): Pick<InboundOutcomeData, 'amount' | 'answerMs'> {
  const answered = Date.parse(facts.answeredAt ?? '') - Date.parse(facts.receivedAt ?? '');
  return { ...(facts.amount === undefined ? {} : { amount: facts.amount }), ...(Number.isFinite(answered) ? { answerMs: answered } : {}) };
}

/** Decodes `EchoReceived` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeEchoReceived(data: unknown): EchoReceivedData {
  const d = record(data, 'data');
  if (d.channel !== 'spi') throw new EventDetailInvalidError('data.channel', 'must be "spi"');
  return { channel: 'spi', originalData: text(d, 'originalData'), bizMsgIdr: text(d, 'bizMsgIdr'), resourceId: text(d, 'resourceId'), receivedAt: instant(d, 'receivedAt') };
}
