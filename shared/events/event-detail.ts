import { PermanentError } from '../errors/index.ts';
import { childTraceparent, isTraceparent } from './traceparent.ts';

/** The version of {@link EventDetail} this code writes and reads. */
export const EVENT_DETAIL_VERSION = 1;

/** The ids that correlate one payment or DICT operation across systems (DESIGN §1). */
export interface CorrelationIds {
  /** SPI `EndToEndId` of the payment (`E` + ISPB + yyyyMMddHHmm + 11 alphanumerics). */
  endToEndId?: string;
  /** `BizMsgIdr` of the ISO 20022 message (`AppHdr/BizMsgIdr`). */
  bizMsgIdr?: string;
  /** DICT `RequestId` of the key-directory operation. */
  requestId?: string;
}

/**
 * The versioned `detail` of every selo event. Correlation ids sit at the top level so that
 * EventBridge rules and Athena queries can match on them; the fact's own content is `data`.
 */
export interface EventDetail<T = unknown> extends CorrelationIds {
  /** Schema version of the detail; {@link EVENT_DETAIL_VERSION}. */
  version: typeof EVENT_DETAIL_VERSION;
  /** The saga this event belongs to: `PAY#<EndToEndId>` or `DICT#<RequestId>`. */
  sagaId: string;
  /** Attempt number of the step that produced the event, from 1. */
  attempt: number;
  /** W3C Trace Context `traceparent` of the step that produced the event. */
  traceparent: string;
  /** The fact's content, validated by the consumer's decoder. */
  data: T;
}

/**
 * A saga id: `PAY#<EndToEndId>` for a payment, `DICT#<RequestId>` for a DICT operation,
 * `ECHO#<RequestId>` for an echo, `IN#<EndToEndId>` for a payment another PSP sends us, `QUERY#<MsgId>` for a camt.060 asking the BCB about an in-doubt payment, `INBOX#<key>` for a message read from the BCB whose saga is not
 * known until its signature is verified (the receive worker's `BcbMessageReceived`).
 */
const SAGA_ID = /^(PAY|DICT|ECHO|IN|INBOX|QUERY)#[A-Za-z0-9-]{1,64}$/;

/** Whether `value` is a well-formed saga id. */
export function isSagaId(value: unknown): value is string {
  return typeof value === 'string' && SAGA_ID.test(value);
}

/** The saga id of a payment. */
export function paymentSagaId(endToEndId: string): string {
  return `PAY#${endToEndId}`;
}

/** The saga id of a DICT operation. */
export function dictSagaId(requestId: string): string {
  return `DICT#${requestId}`;
}

/** The saga id of a camt.060 asking the BCB about an in-doubt payment, keyed by its MsgId (= BizMsgIdr). */
export function querySagaId(msgId: string): string {
  return `QUERY#${msgId}`;
}

/** The saga id of a pibr.001 echo, keyed by the requester's RequestId. */
export function echoSagaId(requestId: string): string {
  return `ECHO#${requestId}`;
}

/** Raised when an event detail does not follow the schema; the message names the field. */
export class EventDetailInvalidError extends PermanentError {
  constructor(field: string, problem: string) {
    super('EVENT_DETAIL_INVALID', `event detail ${field} ${problem}`, { details: { field } });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalId(detail: Record<string, unknown>, field: keyof CorrelationIds): string | undefined {
  const value = detail[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(value)) {
    throw new EventDetailInvalidError(field, 'must be 1-64 letters, digits or dashes');
  }
  return value;
}

/**
 * Validates an event detail's envelope fields (not `data`, which the consumer's decoder checks).
 * Throws {@link EventDetailInvalidError} (permanent) naming the first bad field.
 */
export function parseEventDetail(value: unknown): EventDetail {
  if (!isRecord(value)) throw new EventDetailInvalidError('(root)', 'must be a JSON object');
  if (value.version !== EVENT_DETAIL_VERSION) {
    throw new EventDetailInvalidError('version', `must be ${EVENT_DETAIL_VERSION}, got ${JSON.stringify(value.version) ?? 'nothing'}`);
  }
  if (!isSagaId(value.sagaId)) throw new EventDetailInvalidError('sagaId', 'must be PAY#<EndToEndId> or DICT#<RequestId>');
  if (typeof value.attempt !== 'number' || !Number.isSafeInteger(value.attempt) || value.attempt < 1) {
    throw new EventDetailInvalidError('attempt', 'must be a positive integer');
  }
  if (!isTraceparent(value.traceparent)) throw new EventDetailInvalidError('traceparent', 'must be a W3C traceparent (00-<trace>-<span>-<flags>)');
  const ids: CorrelationIds = {};
  for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
    const id = optionalId(value, field);
    if (id !== undefined) ids[field] = id;
  }
  if (ids.endToEndId === undefined && ids.requestId === undefined && !value.sagaId.startsWith('INBOX#')) {
    throw new EventDetailInvalidError('endToEndId', 'or requestId must be present');
  }
  if (!('data' in value)) throw new EventDetailInvalidError('data', 'is required');
  return { version: EVENT_DETAIL_VERSION, sagaId: value.sagaId, attempt: value.attempt, traceparent: value.traceparent, ...ids, data: value.data };
}

/** Overrides accepted by {@link deriveDetail}. */
export interface DeriveDetailOptions {
  /** Attempt number of the new step. @defaultValue the cause's attempt */
  attempt?: number;
  /** Ids learnt in this step (e.g. the BizMsgIdr assigned when signing). @defaultValue none */
  ids?: CorrelationIds;
}

/**
 * The detail of an event caused by `cause`: same saga and correlation ids, a child
 * `traceparent`, and the new fact's `data`.
 */
export function deriveDetail<T>(cause: EventDetail<unknown>, data: T, options: DeriveDetailOptions = {}): EventDetail<T> {
  const ids: CorrelationIds = {};
  for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
    const id = options.ids?.[field] ?? cause[field];
    if (id !== undefined) ids[field] = id;
  }
  return {
    version: EVENT_DETAIL_VERSION,
    sagaId: cause.sagaId,
    attempt: options.attempt ?? cause.attempt,
    traceparent: childTraceparent(cause.traceparent),
    ...ids,
    data,
  };
}
