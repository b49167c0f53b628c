import type { ClaimCheckReference } from '../claim-check/index.ts';
import { EventDetailInvalidError } from './event-detail.ts';

/**
 * `MessageSigned` data, version 1: what the sign worker hands the transmit worker. The signed
 * bytes travel inline, or in S3 when they would exceed EventBridge's entry limit (claim check).
 */
export interface MessageSignedData {
  /** Which BCB system receives it. */
  channel: 'spi' | 'dict';
  /** `pacs.008`, … for the SPI; the DICT operation (`createEntry`, …) for the DICT. */
  messageType: string;
  /** The SPI message's BizMsgIdr (AppHdr), absent for DICT. */
  bizMsgIdr?: string;
  /** DICT path parameters (`Key`, `ClaimId`). */
  pathParameters?: Readonly<Record<string, string>>;
  /** DICT request headers from the request (`PI-PayerId`, `PI-EndToEndId`). */
  requestHeaders?: Readonly<Record<string, string>>;
  /** DICT query parameters from the request (listClaims `IsDonor`, `Status`, …); a list repeats the parameter. */
  queryParameters?: Readonly<Record<string, string | readonly string[]>>;
  /** The signed XML: inline, in S3, or none (DICT reads carry no body). */
  payload: { inline: string } | { claimCheck: ClaimCheckReference } | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes `MessageSigned` data; throws {@link EventDetailInvalidError} (permanent) naming the field. */
export function decodeMessageSigned(data: unknown): MessageSignedData {
  if (!isRecord(data)) throw new EventDetailInvalidError('data', 'must be an object');
  if (data.channel !== 'spi' && data.channel !== 'dict') throw new EventDetailInvalidError('data.channel', 'must be "spi" or "dict"');
  if (typeof data.messageType !== 'string' || data.messageType === '') throw new EventDetailInvalidError('data.messageType', 'must be a non-empty string');
  const payload = data.payload;
  let decoded: MessageSignedData['payload'];
  if (payload === null) decoded = null;
  else if (isRecord(payload) && typeof payload.inline === 'string') decoded = { inline: payload.inline };
  else if (isRecord(payload) && isRecord(payload.claimCheck) && typeof payload.claimCheck.bucket === 'string' && typeof payload.claimCheck.key === 'string') {
    decoded = { claimCheck: { bucket: payload.claimCheck.bucket, key: payload.claimCheck.key } };
  } else throw new EventDetailInvalidError('data.payload', 'must be null, {inline} or {claimCheck: {bucket, key}}');
  return {
    channel: data.channel,
    messageType: data.messageType,
    ...(typeof data.bizMsgIdr === 'string' ? { bizMsgIdr: data.bizMsgIdr } : {}),
    ...(isRecord(data.pathParameters) ? { pathParameters: data.pathParameters as Record<string, string> } : {}),
    ...(isRecord(data.requestHeaders) ? { requestHeaders: data.requestHeaders as Record<string, string> } : {}),
    ...(isRecord(data.queryParameters) ? { queryParameters: data.queryParameters as Record<string, string | readonly string[]> } : {}),
    payload: decoded,
  };
}
