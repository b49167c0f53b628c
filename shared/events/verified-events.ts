import type { ClaimCheckReference } from '../claim-check/index.ts';
import { EventDetailInvalidError } from './event-detail.ts';
import { record, text } from './json-fields.ts';
import type { Json } from './json-fields.ts';
import type { InboundOutcomeData, InboundPaymentDecisionRequestedData, InboundPaymentRejectedData, InboundPaymentSettledData } from './inbound-events.ts';

/** source of every event the verify worker publishes. */
export const VERIFY_SOURCE = 'selo.verify';

/** detail-types of the facts the verify worker publishes (downstream rules match on these). */
export const VERIFIED_EVENTS = {
  paymentSettled: 'PaymentSettled',
  paymentRejected: 'PaymentRejected',
  messageRejected: 'MessageRejected',
  echoAnswered: 'EchoAnswered',
  dictResponseVerified: 'DictResponseVerified',
  dictOperationFailed: 'DictOperationFailed',
  signatureInvalid: 'SignatureInvalid',
  outcomeConflict: 'OutcomeConflict',
  rejectionAmbiguous: 'RejectionAmbiguous',
} as const;

/** An SPI account as the verified events carry it (branch in `Issr`, type in `Tp/Cd`). */
export interface VerifiedAccount {
  number: string;
  branch?: string;
  type: string;
  /** The DICT key the payer used (`CdtrAcct/Prxy/Id`), creditor accounts only. */
  proxy?: string;
}

/**
 * Who closed an IN_DOUBT or OUTCOME_CONFLICT saga, and on what evidence (shared/saga/resolve-saga.ts):
 * an operator (`selo saga resolve`, the console) or the BCB's camt.054 (`bcb-query`). An outcome
 * event that carries it has no pacs.002 behind it: `bizMsgIdr` and `resourceId` are absent.
 */
export interface ResolutionData {
  by: 'operator' | 'bcb-query';
  operators: string[];
  evidence: string;
  resolvedAt: string;
  /** Compensation steps already done before the resolution (payments only). */
  compensationsDone?: string[];
  /**
   * A payment to our customer that had settled (`InboundPaymentSettled`: credited) before the
   * conflict an operator now resolves; with `InboundPaymentRejected`, core banking takes the credit back.
   */
  creditedBefore?: boolean;
}

/**
 * `PaymentSettled` data, version 1. `ACSC`: a payment (or a pacs.004 return) selo sent has
 * settled; the saga is SETTLED. (A payment to one of our customers that settled, pacs.002 ACCC, is
 * `InboundPaymentSettled`.)
 */
export interface PaymentSettledData {
  channel: 'spi';
  status: 'ACSC';
  /** `OrgnlEndToEndId`. */
  endToEndId: string;
  /** `OrgnlInstrId`: the EndToEndId, or the RtrId when the settled message was a return. */
  originalInstructionId: string;
  /** BizMsgIdr of the message selo sent (from the saga), when known. */
  originalBizMsgIdr?: string;
  /** BizMsgIdr of the pacs.002 (absent in a resolution). */
  bizMsgIdr?: string;
  /** `FctvIntrBkSttlmDt/DtTm`, when the BCB gave it. */
  settlementDateTime?: string;
  /** `OrgnlTxRef/IntrBkSttlmDt` (`yyyy-MM-dd`), when given. */
  interbankSettlementDate?: string;
  /** `PI-ResourceId` of the pacs.002 on the ICOM stream (absent in a resolution). */
  resourceId?: string;
  /** Present when a person or the BCB query closed the payment instead of a pacs.002. */
  resolution?: ResolutionData;
}

/** `PaymentRejected` data, version 1: the SPI rejected a payment selo sent (pacs.002 RJCT); the saga is REJECTED. */
export interface PaymentRejectedData {
  channel: 'spi';
  status: 'RJCT';
  endToEndId: string;
  originalInstructionId: string;
  originalBizMsgIdr?: string;
  bizMsgIdr?: string;
  /**
   * `StsRsnInf/Rsn/Cd` (e.g. `AB03`, `AC03`, `DU03`; pacs.002 1.17 `ExternalStatusReason1Code`) and
   * `AddtlInf`. `code` is absent when the RJCT carried none (`Rsn` is optional in the XSD).
   */
  reason: { code?: string; additionalInformation?: string };
  resourceId?: string;
  resolution?: ResolutionData;
}

/** `MessageRejected` data, version 1: the SPI refused a message selo sent (admi.002); the saga is REJECTED (an echo's FAILED). */
export interface MessageRejectedData {
  channel: 'spi';
  /** `RltdRef/Ref`: BizMsgIdr of the refused message. */
  rejectedBizMsgIdr: string;
  /** BizMsgIdr of the admi.002. */
  bizMsgIdr: string;
  reason: { code: string; description?: string; errorLocation?: string; rejectionDateTime?: string; additionalData?: string };
  resourceId: string;
}

/**
 * `InboundReturnDecisionRequested` data, version 1: a pacs.004 returning (part of) a payment selo
 * sent, forwarded by the SPI. As for a pacs.008, the SPI waits for our pacs.002 (the credited
 * participant answers: bacen/pix-api#184), so core banking decides (`InboundPaymentDecided` on the
 * detail's saga `IN#<RtrId>`, whose `endToEndId` is the RtrId) before `answerDeadline`. **Not a
 * credit**: credit the original payer on `InboundPaymentSettled` only.
 */
export interface InboundReturnDecisionRequestedData {
  channel: 'spi';
  /** `RtrId`. */
  returnId: string;
  originalEndToEndId: string;
  /** Returned amount, decimal string in BRL. */
  amount: string;
  reason: { code: string; additionalInformation?: string };
  /** ISPB paying the return (the original payment's creditor agent). */
  debtorAgentIspb: string;
  /** ISPB receiving it (us). */
  creditorAgentIspb: string;
  remittanceInformation?: string;
  bizMsgIdr: string;
  resourceId: string;
  /** When selo read the pacs.004 from the ICOM stream. */
  receivedAt: string;
  /** The last moment a decision is still answered. */
  answerDeadline: string;
}

/** `EchoAnswered` data, version 1: the SPI answered a pibr.001 echo (pibr.002); the `ECHO#` saga is COMPLETED. */
export interface EchoAnsweredData {
  channel: 'spi';
  /** `EchoTxInf/OrgnlData`: the echo's data. */
  originalData: string;
  bizMsgIdr: string;
  /** `GrpHdr/CreDtTm` of the pibr.002. */
  answeredAt: string;
  resourceId: string;
}

/** `DictResponseVerified` data, version 1: a signed 2xx DICT answer that verified; the `DICT#` saga is COMPLETED. */
export interface DictResponseVerifiedData {
  channel: 'dict';
  /** The DICT operation (`createEntry`, …). */
  operation: string;
  status: number;
  contentType: string;
  /** The verified XML body, or `bodyClaimCheck` (S3) when it is too large for an event. */
  body?: string;
  bodyClaimCheck?: ClaimCheckReference;
}

/** `DictOperationFailed` data, version 1: the DICT refused the operation (signed 4xx problem); the saga is REJECTED. */
export interface DictOperationFailedData {
  channel: 'dict';
  operation: string;
  status: number;
  /** The RFC 7807 problem (`type`, `title`, …) the DICT answered. */
  problem: { type: string; title: string; detail?: string; correlationId?: string };
}

/**
 * `SignatureInvalid` data, version 1: a message that failed verification (bad or untrusted
 * signature, a signer that is not the BCB, a message not addressed to us, malformed or hostile
 * XML). It was never acted on; its raw bytes are in the quarantine. `path: 'inbound'` is what the
 * BCB sent (nothing to compensate); `'outbound'` is reserved for what selo sent.
 */
export interface SignatureInvalidData {
  path: 'inbound' | 'outbound';
  channel: 'spi' | 'dict';
  /** `PI-ResourceId` of an SPI message. */
  resourceId?: string;
  /** The DICT operation of a DICT answer. */
  operation?: string;
  /** Stable code: `XMLDSIG_…`, `XML_…`, `BCB_SIGNER_NOT_BCB`, `SPI_RECIPIENT_MISMATCH`, `ISO20022_MESSAGE_INVALID`. */
  code: string;
  /** Why, for operators (no personal data). */
  reason: string;
  /** Where the raw bytes were quarantined. */
  quarantine?: ClaimCheckReference;
}

/**
 * `OutcomeConflict` data, version 1 (also published by the transmit worker with `channel` and
 * `reason` only): a second, different outcome for a saga that already had a final one; the saga
 * is OUTCOME_CONFLICT and operations decide.
 */
export interface OutcomeConflictData {
  channel: 'spi' | 'dict';
  reason: string;
  /** The state the saga was in when the other outcome arrived. */
  recordedState?: string;
  /** The outcome that arrived (`SETTLED`, `REJECTED`, …). */
  receivedOutcome?: string;
  resourceId?: string;
}

/**
 * `RejectionAmbiguous` data, version 1: an admi.002 about a message selo sent more than once (or
 * whose payment is in doubt). It may refuse a resent copy while the original settles, so the
 * payment is not rejected; operations decide.
 */
export interface RejectionAmbiguousData {
  channel: 'spi';
  reason: string;
  /** The saga's state when the admi.002 arrived. */
  recordedState: string;
  rejectedBizMsgIdr: string;
  /** The admi.002's reason code. */
  code: string;
  resourceId: string;
}


/** The required text fields `names` of `from`, checked one by one. */
function texts<K extends string>(from: Json, names: readonly K[], path = 'data'): Record<K, string> {
  return Object.fromEntries(names.map((name) => [name, text(from, name, path)])) as Record<K, string>;
}

/** The optional text fields `names` of `from` that are present. */
function optionalTexts<K extends string>(from: Json, names: readonly K[], path = 'data'): Partial<Record<K, string>> {
  return Object.assign({}, ...names.map((name) => optionalText(from, name, path))) as Partial<Record<K, string>>;
}

function optionalText(from: Json, field: string, path: string): { [key: string]: string } {
  const value = from[field];
  if (value === undefined) return {};
  if (typeof value !== 'string') throw new EventDetailInvalidError(`${path}.${field}`, 'must be a string');
  return { [field]: value };
}

function integer(from: Json, field: string, path: string): number {
  const value = from[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new EventDetailInvalidError(`${path}.${field}`, 'must be an integer');
  return value;
}

function oneOf<T extends string>(from: Json, field: string, allowed: readonly T[], path: string): T {
  const value = from[field];
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new EventDetailInvalidError(`${path}.${field}`, `must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function reference(value: unknown, path: string): ClaimCheckReference {
  const ref = record(value, path);
  return texts(ref, ['bucket', 'key'], path);
}

function reasonOf(from: Json, path: string, optional: readonly string[]): { code: string } & Record<string, string> {
  const reason = record(from.reason, `${path}.reason`);
  return { code: text(reason, 'code', `${path}.reason`), ...optionalTexts(reason, optional, `${path}.reason`) };
}

/** A pacs.002 RJCT's reason: every field optional (`StsRsnInf/Rsn` is optional in the pacs.002 1.17 XSD), a present one a non-empty string. */
function statusReasonOf(from: Json, path: string): { code?: string; additionalInformation?: string } {
  const reason = record(from.reason, `${path}.reason`);
  return optionalTexts(reason, ['code', 'additionalInformation'], `${path}.reason`);
}

function account(value: unknown, path: string): VerifiedAccount {
  const a = record(value, path);
  return { ...texts(a, ['number', 'type'], path), ...optionalTexts(a, ['branch', 'proxy'], path) };
}

/**
 * Where an outcome came from: the pacs.002's `bizMsgIdr` and `resourceId` (both required), or,
 * for a resolution, `resolution` (and then neither is required).
 */
function evidenceFields(d: Json): { bizMsgIdr?: string; resourceId?: string; resolution?: ResolutionData } {
  if (d.resolution === undefined) return texts(d, ['bizMsgIdr', 'resourceId']);
  const r = record(d.resolution, 'data.resolution');
  const operators = r.operators;
  if (!Array.isArray(operators) || operators.length === 0 || operators.some((o) => typeof o !== 'string' || o === '')) {
    throw new EventDetailInvalidError('data.resolution.operators', 'must be a non-empty array of non-empty strings');
  }
  const done = r.compensationsDone;
  if (done !== undefined && (!Array.isArray(done) || done.some((step) => typeof step !== 'string'))) {
    throw new EventDetailInvalidError('data.resolution.compensationsDone', 'must be an array of strings');
  }
  const credited = r.creditedBefore;
  if (credited !== undefined && typeof credited !== 'boolean') throw new EventDetailInvalidError('data.resolution.creditedBefore', 'must be a boolean');
  const resolution: ResolutionData = {
    by: oneOf(r, 'by', ['operator', 'bcb-query'] as const, 'data.resolution'),
    operators: operators as string[],
    ...texts(r, ['evidence', 'resolvedAt'], 'data.resolution'),
    ...(done === undefined ? {} : { compensationsDone: done as string[] }),
    ...(credited === undefined ? {} : { creditedBefore: credited }),
  };
  return { ...optionalTexts(d, ['bizMsgIdr', 'resourceId']), resolution };
}

/** The fields every SPI status event (settled, rejected) shares. */
function statusFields(d: Json): Omit<PaymentSettledData, 'status' | 'settlementDateTime' | 'interbankSettlementDate'> {
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['endToEndId', 'originalInstructionId']),
    ...evidenceFields(d),
    ...optionalTexts(d, ['originalBizMsgIdr']),
  };
}

/** Decodes `PaymentSettled` data; throws {@link EventDetailInvalidError} (permanent) naming the field. */
export function decodePaymentSettled(data: unknown): PaymentSettledData {
  const d = record(data, 'data');
  return {
    ...statusFields(d),
    status: oneOf(d, 'status', ['ACSC'] as const, 'data'),
    ...optionalTexts(d, ['settlementDateTime', 'interbankSettlementDate']),
  };
}

/** Decodes `PaymentRejected` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodePaymentRejected(data: unknown): PaymentRejectedData {
  const d = record(data, 'data');
  return { ...statusFields(d), status: oneOf(d, 'status', ['RJCT'] as const, 'data'), reason: statusReasonOf(d, 'data') };
}

/** Decodes `MessageRejected` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeMessageRejected(data: unknown): MessageRejectedData {
  const d = record(data, 'data');
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['rejectedBizMsgIdr', 'bizMsgIdr', 'resourceId']),
    reason: reasonOf(d, 'data', ['description', 'errorLocation', 'rejectionDateTime', 'additionalData']),
  };
}

/** Decodes `InboundPaymentDecisionRequested` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeInboundPaymentDecisionRequested(data: unknown): InboundPaymentDecisionRequestedData {
  const d = record(data, 'data');
  const debtor = record(d.debtor, 'data.debtor');
  const creditor = record(d.creditor, 'data.creditor');
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['endToEndId', 'bizMsgIdr', 'resourceId', 'amount', 'acceptanceDateTime', 'receivedAt', 'answerDeadline', 'localInstrument', 'debtorAgentIspb', 'creditorAgentIspb']),
    ...optionalTexts(d, ['txId', 'purpose', 'remittanceInformation']),
    debtor: texts(debtor, ['name', 'taxId'], 'data.debtor'),
    debtorAccount: account(d.debtorAccount, 'data.debtorAccount'),
    creditor: texts(creditor, ['taxId'], 'data.creditor'),
    creditorAccount: account(d.creditorAccount, 'data.creditorAccount'),
  };
}

function optionalInteger(from: Json, field: string): { [key: string]: number } {
  return from[field] === undefined ? {} : { [field]: integer(from, field, 'data') };
}

/** The fields `InboundPaymentSettled` and `InboundPaymentRejected` share. */
function inboundOutcomeFields(d: Json): InboundOutcomeData {
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['endToEndId', 'originalInstructionId']),
    ...evidenceFields(d),
    ...optionalTexts(d, ['amount']),
    ...optionalInteger(d, 'answerMs'),
  };
}

/** Decodes `InboundPaymentSettled` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeInboundPaymentSettled(data: unknown): InboundPaymentSettledData {
  const d = record(data, 'data');
  return { ...inboundOutcomeFields(d), ...optionalTexts(d, ['settlementDateTime', 'interbankSettlementDate']) };
}

/** Decodes `InboundPaymentRejected` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeInboundPaymentRejected(data: unknown): InboundPaymentRejectedData {
  const d = record(data, 'data');
  return { ...inboundOutcomeFields(d), reason: statusReasonOf(d, 'data'), ...optionalTexts(d, ['answer']) };
}

/** Decodes `InboundReturnDecisionRequested` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeInboundReturnDecisionRequested(data: unknown): InboundReturnDecisionRequestedData {
  const d = record(data, 'data');
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['returnId', 'originalEndToEndId', 'amount', 'debtorAgentIspb', 'creditorAgentIspb', 'bizMsgIdr', 'resourceId', 'receivedAt', 'answerDeadline']),
    reason: reasonOf(d, 'data', ['additionalInformation']),
    ...optionalTexts(d, ['remittanceInformation']),
  };
}

/** Decodes `EchoAnswered` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeEchoAnswered(data: unknown): EchoAnsweredData {
  const d = record(data, 'data');
  return {
    channel: oneOf(d, 'channel', ['spi'] as const, 'data'),
    ...texts(d, ['originalData', 'bizMsgIdr', 'answeredAt', 'resourceId']),
  };
}

/** Decodes `DictResponseVerified` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeDictResponseVerified(data: unknown): DictResponseVerifiedData {
  const d = record(data, 'data');
  const body = d.body;
  if (body !== undefined && typeof body !== 'string') throw new EventDetailInvalidError('data.body', 'must be a string');
  if ((body === undefined) === (d.bodyClaimCheck === undefined)) throw new EventDetailInvalidError('data.body', 'or data.bodyClaimCheck must be present, exactly one');
  return {
    channel: oneOf(d, 'channel', ['dict'] as const, 'data'),
    operation: text(d, 'operation', 'data'),
    status: integer(d, 'status', 'data'),
    contentType: typeof d.contentType === 'string' ? d.contentType : '',
    ...(body === undefined ? { bodyClaimCheck: reference(d.bodyClaimCheck, 'data.bodyClaimCheck') } : { body }),
  };
}

/** Decodes `DictOperationFailed` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeDictOperationFailed(data: unknown): DictOperationFailedData {
  const d = record(data, 'data');
  const problem = record(d.problem, 'data.problem');
  return {
    channel: oneOf(d, 'channel', ['dict'] as const, 'data'),
    operation: text(d, 'operation', 'data'),
    status: integer(d, 'status', 'data'),
    problem: { ...texts(problem, ['type', 'title'], 'data.problem'), ...optionalTexts(problem, ['detail', 'correlationId'], 'data.problem') },
  };
}

/** Decodes `SignatureInvalid` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeSignatureInvalid(data: unknown): SignatureInvalidData {
  const d = record(data, 'data');
  return {
    path: oneOf(d, 'path', ['inbound', 'outbound'] as const, 'data'),
    channel: oneOf(d, 'channel', ['spi', 'dict'] as const, 'data'),
    ...optionalTexts(d, ['resourceId', 'operation']),
    code: text(d, 'code', 'data'),
    reason: typeof d.reason === 'string' ? d.reason : '',
    ...(d.quarantine === undefined ? {} : { quarantine: reference(d.quarantine, 'data.quarantine') }),
  };
}

/** Decodes `OutcomeConflict` data (the verify worker's or the transmit worker's); throws {@link EventDetailInvalidError} naming the field. */
export function decodeOutcomeConflict(data: unknown): OutcomeConflictData {
  const d = record(data, 'data');
  return {
    channel: oneOf(d, 'channel', ['spi', 'dict'] as const, 'data'),
    reason: typeof d.reason === 'string' ? d.reason : '',
    ...optionalTexts(d, ['recordedState', 'receivedOutcome', 'resourceId']),
  };
}

/** Decodes `RejectionAmbiguous` data; throws {@link EventDetailInvalidError} naming the field. */
export function decodeRejectionAmbiguous(data: unknown): RejectionAmbiguousData {
  const d = record(data, 'data');
  const text = (field: string): string => {
    const value = d[field];
    if (typeof value !== 'string' || value === '') throw new EventDetailInvalidError(`data.${field}`, 'must be a non-empty string');
    return value;
  };
  return { channel: oneOf(d, 'channel', ['spi'] as const, 'data'), reason: text('reason'), recordedState: text('recordedState'), rejectedBizMsgIdr: text('rejectedBizMsgIdr'), code: text('code'), resourceId: text('resourceId') };
}
