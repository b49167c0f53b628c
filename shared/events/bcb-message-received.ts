import { createHash } from 'node:crypto';
import type { ClaimCheckReference } from '../claim-check/index.ts';
import { EventDetailInvalidError } from './event-detail.ts';

/** detail-type of what the receive worker puts on the verify queue. */
export const BCB_MESSAGE_RECEIVED = 'BcbMessageReceived';

/** source of {@link BCB_MESSAGE_RECEIVED} events. */
export const RECEIVE_SOURCE = 'selo.receive';

/**
 * `BcbMessageReceived` data, version 1: one message read from the ICOM stream, not yet verified.
 * Nobody acts on it before the verify worker has checked the BCB's signature; until then its
 * saga is unknown and the detail's saga id is {@link inboxSagaId}.
 */
export interface BcbMessageReceivedData {
  channel: 'spi';
  /** The message's `PI-ResourceId` (the part's own, for multipart answers). */
  resourceId: string;
  /** When the receive worker read it, ISO 8601 UTC. */
  receivedAt: string;
  /** The part's `Content-Type` as the BCB sent it. */
  contentType: string;
  /** The raw XML exactly as read (after gzip decoding): inline, or in S3 when too large for SQS. */
  payload: { inline: string } | { claimCheck: ClaimCheckReference };
  /**
   * This forwarded copy's own id (random, drawn by the receive worker when it reads the message):
   * a redelivery or a dead-letter replay of this envelope carries the same id, a stream duplicate
   * (the same `PI-ResourceId` read again) another. The verify worker acts on the first copy that
   * reaches a saga and records the others only ({@link copySource}). Absent from envelopes of
   * receive workers before it (they dropped stream duplicates themselves with dedupe markers).
   */
  copy?: string;
}

/** Syntax of {@link BcbMessageReceivedData.copy}. */
const COPY_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

/**
 * The source a verified message is recorded under in its saga (`[source …]`): its
 * `PI-ResourceId`, then `/` and its copy id when the receive worker drew one. Two deliveries of the same
 * source are one delivery (the second republishes what the first wrote); a different source for
 * the same outcome is a duplicate, recorded only.
 */
export function copySource(data: Pick<BcbMessageReceivedData, 'resourceId' | 'copy'>): string {
  return data.copy === undefined ? data.resourceId : `${data.resourceId}/${data.copy}`;
}

/**
 * The saga id of a message read from the BCB before verification: `INBOX#<PI-ResourceId>` when
 * the resource id fits a saga id, else `INBOX#` and the first 32 hex digits of its SHA-256.
 */
export function inboxSagaId(resourceId: string): string {
  if (/^[A-Za-z0-9-]{1,64}$/.test(resourceId)) return `INBOX#${resourceId}`;
  return `INBOX#${createHash('sha256').update(resourceId).digest('hex').slice(0, 32)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes `BcbMessageReceived` data; throws {@link EventDetailInvalidError} (permanent) naming the field. */
export function decodeBcbMessageReceived(data: unknown): BcbMessageReceivedData {
  if (!isRecord(data)) throw new EventDetailInvalidError('data', 'must be an object');
  if (data.channel !== 'spi') throw new EventDetailInvalidError('data.channel', 'must be "spi"');
  if (typeof data.resourceId !== 'string' || data.resourceId === '' || data.resourceId.length > 200) {
    throw new EventDetailInvalidError('data.resourceId', 'must be a string of 1-200 characters');
  }
  if (typeof data.receivedAt !== 'string' || Number.isNaN(Date.parse(data.receivedAt))) throw new EventDetailInvalidError('data.receivedAt', 'must be an ISO 8601 date-time');
  if (typeof data.contentType !== 'string') throw new EventDetailInvalidError('data.contentType', 'must be a string');
  const payload = data.payload;
  let decoded: BcbMessageReceivedData['payload'];
  if (isRecord(payload) && typeof payload.inline === 'string') decoded = { inline: payload.inline };
  else if (isRecord(payload) && isRecord(payload.claimCheck) && typeof payload.claimCheck.bucket === 'string' && typeof payload.claimCheck.key === 'string') {
    decoded = { claimCheck: { bucket: payload.claimCheck.bucket, key: payload.claimCheck.key } };
  } else throw new EventDetailInvalidError('data.payload', 'must be {inline} or {claimCheck: {bucket, key}}');
  if (data.copy !== undefined && (typeof data.copy !== 'string' || !COPY_PATTERN.test(data.copy))) throw new EventDetailInvalidError('data.copy', 'must be 1-64 characters [A-Za-z0-9-]');
  return {
    channel: 'spi', resourceId: data.resourceId, receivedAt: data.receivedAt, contentType: data.contentType, payload: decoded,
    ...(data.copy === undefined ? {} : { copy: data.copy }),
  };
}
