import { EventDetailInvalidError, inboundSagaId, newTraceparent, paymentSagaId, querySagaId } from '../events/index.ts';
import type { EventDetail } from '../events/index.ts';
import { END_TO_END_ID, MESSAGE_ID } from '../iso20022/index.ts';

/**
 * `OutcomeQueryRequested` (source `selo.compensate`, issue 17): the in-doubt sweeper asks the BCB
 * how one of our payments, or a payment to one of our customers, ended. The sign worker turns it into a camt.060 signed in the HSM, the
 * transmit worker POSTs it to ICOM like a pacs.008, and the SPI's camt.054 comes back on the ICOM
 * stream (receive → verify), where it is matched to the payment by `Ntfctn/Id` = this MsgId.
 */
export const OUTCOME_QUERY_REQUESTED = 'OutcomeQueryRequested';

/** `OutcomeQueryRequested` data, version 1. The detail's `sagaId` is `QUERY#<msgId>`, `requestId` the MsgId, `endToEndId` the payment's. */
export interface OutcomeQueryRequestedData {
  message: 'camt.060';
  /** The camt.060's `AppHdr/BizMsgIdr` and `GrpHdr/MsgId`: `M` + our ISPB + 23 alphanumerics; the camt.054 repeats it in `Ntfctn/Id`. */
  msgId: string;
  /** The in-doubt payment asked about (`RptgReq/Id`). */
  endToEndId: string;
  /** Its saga: `PAY#<EndToEndId>` (ours), or `IN#<EndToEndId>` (to one of our customers). */
  paymentSagaId: string;
  /** `CreDt`/`CreDtTm` of the camt.060: fixed here, so a redelivered request signs the same bytes. */
  requestedAt: string;
  /** The amount we sent, when the saga knows it: a BOOK entry of another amount settles nothing. */
  amount?: string;
}

function field(data: Record<string, unknown>, name: string, pattern: RegExp): string {
  const value = data[name];
  if (typeof value !== 'string' || !pattern.test(value)) throw new EventDetailInvalidError(`data.${name}`, `must match ${String(pattern)}`);
  return value;
}

/** Decodes `OutcomeQueryRequested` data; throws {@link EventDetailInvalidError} (permanent) naming the field. */
export function decodeOutcomeQueryRequested(data: unknown): OutcomeQueryRequestedData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new EventDetailInvalidError('data', 'must be an object');
  const d = data as Record<string, unknown>;
  if (d.message !== 'camt.060') throw new EventDetailInvalidError('data.message', 'must be "camt.060"');
  const endToEndId = field(d, 'endToEndId', END_TO_END_ID);
  const requestedAt = field(d, 'requestedAt', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  const sagas = [paymentSagaId(endToEndId), inboundSagaId(endToEndId)];
  const saga = sagas.find((id) => id === d.paymentSagaId);
  if (saga === undefined) throw new EventDetailInvalidError('data.paymentSagaId', `must be ${sagas.join(' or ')}`);
  const amount = d.amount === undefined ? undefined : field(d, 'amount', /^\d{1,16}\.\d{2}$/);
  return { message: 'camt.060', msgId: field(d, 'msgId', MESSAGE_ID), endToEndId, paymentSagaId: saga, requestedAt, ...(amount === undefined ? {} : { amount }) };
}

/** The detail of an `OutcomeQueryRequested` about one in-doubt payment, asked at `at` under `msgId`. */
export function outcomeQueryDetail(payment: { sagaId: string; endToEndId: string; bizMsgIdr?: string; amount?: string }, msgId: string, at: Date): EventDetail<OutcomeQueryRequestedData> {
  return {
    version: 1,
    sagaId: querySagaId(msgId),
    endToEndId: payment.endToEndId,
    requestId: msgId,
    attempt: 1,
    traceparent: newTraceparent(),
    data: {
      message: 'camt.060',
      msgId,
      endToEndId: payment.endToEndId,
      paymentSagaId: payment.sagaId,
      requestedAt: at.toISOString(),
      ...(payment.amount === undefined ? {} : { amount: payment.amount }),
    },
  };
}
