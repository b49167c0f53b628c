import type { ClaimCheckReference } from '../../shared/claim-check/index.ts';
import { BCB_MESSAGE_RECEIVED, EventDetailInvalidError, decodeBcbMessageReceived } from '../../shared/events/index.ts';
import type { BcbMessageReceivedData } from '../../shared/events/index.ts';

/** detail-type of the DICT answers the transmit worker hands over. */
export const DICT_RESPONSE_RECEIVED = 'DictResponseReceived';

/**
 * `DictResponseReceived` data, version 1 (the transmit worker's `keepDictAnswer`): one DICT
 * answer, any status below 500, not yet verified. The body travels inline, or the whole answer
 * (this object with its `body`) is kept as JSON in S3 (`claimCheck`).
 */
export interface DictResponseReceivedData {
  channel: 'dict';
  operation: string;
  status: number;
  contentType: string;
  payload: { inline: string } | { claimCheck: ClaimCheckReference };
}

/** What the verify worker consumes, told apart by detail-type. */
export type VerifyInput = { kind: 'spi'; data: BcbMessageReceivedData } | { kind: 'dict'; data: DictResponseReceivedData };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes `DictResponseReceived` data; throws {@link EventDetailInvalidError} (permanent) naming the field. */
export function decodeDictResponseReceived(data: unknown): DictResponseReceivedData {
  if (!isRecord(data)) throw new EventDetailInvalidError('data', 'must be an object');
  if (data.channel !== 'dict') throw new EventDetailInvalidError('data.channel', 'must be "dict"');
  if (typeof data.operation !== 'string' || data.operation === '') throw new EventDetailInvalidError('data.operation', 'must be a non-empty string');
  if (typeof data.status !== 'number' || !Number.isSafeInteger(data.status) || data.status < 100 || data.status > 599) {
    throw new EventDetailInvalidError('data.status', 'must be an HTTP status');
  }
  const claimCheck = data.claimCheck;
  let payload: DictResponseReceivedData['payload'];
  if (typeof data.body === 'string') payload = { inline: data.body };
  else if (isRecord(claimCheck) && typeof claimCheck.bucket === 'string' && typeof claimCheck.key === 'string') payload = { claimCheck: { bucket: claimCheck.bucket, key: claimCheck.key } };
  else throw new EventDetailInvalidError('data.body', 'or data.claimCheck {bucket, key} is required');
  return { channel: 'dict', operation: data.operation, status: data.status, contentType: typeof data.contentType === 'string' ? data.contentType : '', payload };
}

/** The verify worker's decoder: `BcbMessageReceived` (SPI) or `DictResponseReceived` (DICT); anything else is permanent. */
export function decodeVerifyInput(data: unknown, detailType: string): VerifyInput {
  if (detailType === BCB_MESSAGE_RECEIVED) return { kind: 'spi', data: decodeBcbMessageReceived(data) };
  if (detailType === DICT_RESPONSE_RECEIVED) return { kind: 'dict', data: decodeDictResponseReceived(data) };
  throw new EventDetailInvalidError('detail-type', `must be ${BCB_MESSAGE_RECEIVED} or ${DICT_RESPONSE_RECEIVED}, got ${JSON.stringify(detailType)}`);
}
