import { PermanentError } from '../errors/index.ts';
import { parseEventDetail } from './event-detail.ts';
import type { EventDetail } from './event-detail.ts';

/**
 * The EventBridge envelope as an SQS target receives it (AWS "EventBridge event structure"):
 * `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`.
 * Producers that write to a queue directly (the receive worker) send the same shape; only
 * `detail-type`, `source` and `detail` are required.
 */
export interface EventEnvelope<T = unknown> {
  /** EventBridge's event id; the SQS message id when the producer sent none. */
  id: string;
  /** The past-tense fact (`PaymentRequested`). */
  detailType: string;
  /** The producer (`core.banking`, `selo.sign`). */
  source: string;
  /** When the event happened (ISO 8601), if the producer said. */
  time: string | undefined;
  /** The validated detail. */
  detail: EventDetail<T>;
}

/** Raised when an SQS body is not an event selo can read; the message says why. */
export class MalformedEventError extends PermanentError {
  constructor(problem: string, options: { cause?: unknown } = {}) {
    super('MALFORMED_EVENT', `malformed event: ${problem}`, options);
  }
}

/** Validates an event's `data`; throws a PermanentError naming what is wrong. */
export type DataDecoder<T> = (data: unknown, detailType: string) => T;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decodes an SQS message body that carries an EventBridge event, validates its detail and
 * passes `data` through `decodeData`. Every problem is a permanent error (the same body will
 * never decode): {@link MalformedEventError} or the detail's / decoder's own error.
 *
 * @param fallbackId - used as the event id when the body has none (normally the SQS MessageId)
 */
export function decodeEventBody<T>(body: string | undefined, decodeData: DataDecoder<T>, fallbackId: string): EventEnvelope<T> {
  if (body === undefined || body === '') throw new MalformedEventError('empty body');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new MalformedEventError('body is not JSON', { cause: error });
  }
  if (!isRecord(parsed)) throw new MalformedEventError('body is not a JSON object');
  const detailType = parsed['detail-type'];
  const source = parsed.source;
  if (typeof detailType !== 'string' || detailType === '') throw new MalformedEventError('detail-type is missing');
  if (typeof source !== 'string' || source === '') throw new MalformedEventError('source is missing');
  // EventBridge delivers `detail` as an object; a producer that stringified it is tolerated.
  let rawDetail = parsed.detail;
  if (typeof rawDetail === 'string') {
    try {
      rawDetail = JSON.parse(rawDetail);
    } catch (error) {
      throw new MalformedEventError('detail is a string but not JSON', { cause: error });
    }
  }
  const detail = parseEventDetail(rawDetail);
  const data = decodeData(detail.data, detailType);
  return {
    id: typeof parsed.id === 'string' && parsed.id !== '' ? parsed.id : fallbackId,
    detailType,
    source,
    time: typeof parsed.time === 'string' ? parsed.time : undefined,
    detail: { ...detail, data },
  };
}

/**
 * Encodes an event as a queue body in the envelope shape EventBridge delivers, for producers
 * that write to a queue directly and for tests.
 */
export function encodeEventBody(event: { detailType: string; source: string; detail: EventDetail<unknown>; id?: string; time?: string }): string {
  return JSON.stringify({
    version: '0',
    ...(event.id === undefined ? {} : { id: event.id }),
    'detail-type': event.detailType,
    source: event.source,
    time: event.time ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    resources: [],
    detail: event.detail,
  });
}
