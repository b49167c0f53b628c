import { TransientError } from '../errors/index.ts';
import { ISPB_PATTERN } from '../iso20022/index.ts';
import type { BcbHttpClient, BcbRawResponse } from './bcb-http-client.ts';
import { multipartBoundary, parseMultipart } from './multipart.ts';

/** One message read from the ICOM stream. */
export interface IcomStreamMessage {
  /** Its `PI-ResourceId` (the part's own in a multipart answer); the same on every redelivery. */
  resourceId: string;
  /** Its `Content-Type` as the BCB sent it. */
  contentType: string;
  /** The message's bytes exactly as read (after gzip decoding). */
  body: Buffer;
  /** The part's headers (multipart) or the answer's headers (single message), lower case. */
  headers: Readonly<Record<string, string>>;
}

/** One answer of the stream: 200 with messages, or 204 when idle. Either way, where to go next. */
export interface IcomStreamAnswer {
  status: 200 | 204;
  /** The `PI-Pull-Next` path: GET it to confirm this answer and read on, DELETE it to confirm and close. */
  pullNext: string;
  /** Empty for 204. */
  messages: IcomStreamMessage[];
  /** The request and answer, for the audit trail. */
  exchange: {
    requestDate: Date;
    method: 'GET';
    path: string;
    requestHeaders: Readonly<Record<string, string>>;
    responseHeaders: Readonly<Record<string, string>>;
    receivedAt: Date;
  };
}

/** Codes of {@link IcomStreamError}. */
export type IcomStreamErrorCode =
  /** 429: too many streams or requests; back off (honouring `Retry-After`). */
  | 'ICOM_STREAM_THROTTLED'
  /** 5xx: the BCB cannot answer now. */
  | 'ICOM_STREAM_UNAVAILABLE'
  /** 404 or 410 on a `PI-Pull-Next` path: the stream was closed or idled out; start a new one. */
  | 'ICOM_STREAM_EXPIRED'
  /**
   * 409 on a `GET` of a `PI-Pull-Next` path: the stream is still answering an earlier request
   * (a predecessor's long poll the BCB has not yet noticed was dropped); the path stays valid, try
   * it again shortly.
   */
  | 'ICOM_STREAM_BUSY'
  /** Another 4xx: unexpected, for a person to look at; back off and restart the stream. */
  | 'ICOM_STREAM_REFUSED'
  /** A 200/204 that breaks the protocol: no `PI-Pull-Next`, a message without `PI-ResourceId`, an unknown content type. */
  | 'ICOM_STREAM_ANSWER_INVALID';

/**
 * The stream did not give a usable answer. Transient: the reader backs off and restarts the
 * stream; nothing in an unusable answer is confirmed, so the BCB delivers it again.
 */
export class IcomStreamError extends TransientError {
  /** HTTP status of the answer, when there was one. */
  readonly status: number | undefined;
  /** `Retry-After` of a 429/503 in milliseconds, when the BCB sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(code: IcomStreamErrorCode, message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause, details: { status: options.status } });
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Options of {@link IcomStreamClient}. */
export interface IcomStreamClientOptions {
  /** The mTLS client to the BCB. */
  http: Pick<BcbHttpClient, 'sendRaw'>;
  /** The PSP's ISPB (8 digits). */
  ispb: string;
  /** Ask for `multipart/mixed` answers (up to 10 messages each). @defaultValue true */
  multipart?: boolean;
  /** Largest answer, compressed and decompressed, bytes. @defaultValue 33554432 (32 MiB) */
  maxBodyBytes?: number;
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Reads the ICOM stream (DESIGN §2): `GET /api/v1/out/{ispb}/stream/start`, then GET the
 * `PI-Pull-Next` path of each answer (which confirms that answer), `DELETE` it to confirm and
 * close. Answers are one `application/xml` message with `PI-ResourceId`, or `multipart/mixed`
 * with a `PI-ResourceId` per part, or 204 when the long poll found nothing; gzip is accepted.
 * This client only reads and parses; when to confirm is the caller's decision.
 */
export class IcomStreamClient {
  readonly #http: Pick<BcbHttpClient, 'sendRaw'>;
  readonly #ispb: string;
  readonly #multipart: boolean;
  readonly #maxBodyBytes: number;

  constructor(options: IcomStreamClientOptions) {
    // ISPBType is [0-9A-Z]{8} in the SPI XSDs (issue 16): the BCB's own test participants have letters.
    if (!ISPB_PATTERN.test(options.ispb)) throw new RangeError(`IcomStreamClientOptions.ispb must be an ISPB (8 characters [0-9A-Z]), got ${JSON.stringify(options.ispb)}`);
    const max = options.maxBodyBytes ?? 32 * 1024 * 1024;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`IcomStreamClientOptions.maxBodyBytes must be a positive integer, got ${String(options.maxBodyBytes)}`);
    this.#http = options.http;
    this.#ispb = options.ispb;
    this.#multipart = options.multipart ?? true;
    this.#maxBodyBytes = max;
  }

  /** `GET` this path to open a stream. */
  get startPath(): string {
    return `/api/v1/out/${this.#ispb}/stream/start`;
  }

  /** Opens a stream and waits for its first answer (long poll). */
  async start(signal?: AbortSignal): Promise<IcomStreamAnswer> {
    return await this.#read(this.startPath, signal);
  }

  /** Follows `pullNext`: confirms the answer that named it and waits for the next one. */
  async next(pullNext: string, signal?: AbortSignal): Promise<IcomStreamAnswer> {
    return await this.#read(this.#checkedPath(pullNext), signal);
  }

  /** `DELETE`s `pullNext`: confirms the answer that named it and closes the stream; 410 (already gone) counts as closed. */
  async close(pullNext: string): Promise<void> {
    const path = this.#checkedPath(pullNext);
    const response = await this.#http.sendRaw('DELETE', path, { headers: { accept: 'application/xml' }, maxBodyBytes: 64 * 1024 });
    // "DELETE … returns 200 or 410 (both are success)": a stream that already idled out is closed
    // (ICOM manual 1.12, as restated in apolzek/open-pix docs/reference/icom-api.md; issue 16).
    if ((response.status >= 200 && response.status < 300) || response.status === 410) return;
    throw this.#statusError(`DELETE ${path}`, response);
  }

  #checkedPath(pullNext: string): string {
    // Only a path of our own stream is followed: a confirmation sent anywhere else confirms nothing.
    if (!pullNext.startsWith(`/api/v1/out/${this.#ispb}/stream/`) || /[\s?#]|\/\.\.?\//.test(pullNext)) {
      throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `PI-Pull-Next ${JSON.stringify(pullNext.slice(0, 120))} is not a stream path of ${this.#ispb}`);
    }
    return pullNext;
  }

  async #read(path: string, signal: AbortSignal | undefined): Promise<IcomStreamAnswer> {
    const requestHeaders = { accept: this.#multipart ? 'multipart/mixed, application/xml' : 'application/xml' };
    const requestDate = new Date();
    const response = await this.#http.sendRaw('GET', path, { headers: requestHeaders, maxBodyBytes: this.#maxBodyBytes, ...(signal === undefined ? {} : { signal }) });
    const receivedAt = new Date();
    const what = `GET ${path}`;
    if (response.status !== 200 && response.status !== 204) throw this.#statusError(what, response);
    const pullNext = response.headers['pi-pull-next'];
    if (pullNext === undefined || pullNext === '') throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: a ${response.status} without PI-Pull-Next`, { status: response.status });
    this.#checkedPath(pullNext);
    const exchange = { requestDate, method: 'GET' as const, path, requestHeaders: { ...requestHeaders, 'accept-encoding': 'gzip' }, responseHeaders: response.headers, receivedAt };
    if (response.status === 204) return { status: 204, pullNext, messages: [], exchange };
    return { status: 200, pullNext, messages: this.#messages(what, response), exchange };
  }

  #messages(what: string, response: BcbRawResponse): IcomStreamMessage[] {
    const contentType = response.headers['content-type'] ?? '';
    const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (type === 'multipart/mixed') {
      const boundary = multipartBoundary(contentType);
      if (boundary === undefined) throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: multipart/mixed without boundary`, { status: 200 });
      // A MultipartError (ICOM_MULTIPART_INVALID) propagates as is: the caller logs its code.
      const parts = parseMultipart(response.body, boundary);
      if (parts.length === 0) throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: a multipart answer without parts`, { status: 200 });
      return parts.map((part, i) => {
        const resourceId = part.headers['pi-resourceid'];
        if (resourceId === undefined || resourceId === '') throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: part ${i + 1} has no PI-ResourceId`, { status: 200 });
        return { resourceId, contentType: part.headers['content-type'] ?? '', body: part.body, headers: part.headers };
      });
    }
    if (type === 'application/xml') {
      const resourceId = response.headers['pi-resourceid'];
      if (resourceId === undefined || resourceId === '') throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: a message without PI-ResourceId`, { status: 200 });
      return [{ resourceId, contentType, body: response.body, headers: response.headers }];
    }
    throw new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', `${what}: unexpected Content-Type ${JSON.stringify(contentType.slice(0, 100))}`, { status: 200 });
  }

  #statusError(what: string, response: BcbRawResponse): IcomStreamError {
    const { status } = response;
    const retryAfter = retryAfterMs(response.headers['retry-after']);
    const options = { status, ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }) };
    if (status === 429) return new IcomStreamError('ICOM_STREAM_THROTTLED', `${what}: the BCB answered 429`, options);
    if (status >= 500) return new IcomStreamError('ICOM_STREAM_UNAVAILABLE', `${what}: the BCB answered ${status}`, options);
    const onPullNext = !what.endsWith(this.startPath);
    if ((status === 404 || status === 410) && onPullNext) return new IcomStreamError('ICOM_STREAM_EXPIRED', `${what}: the stream is closed or expired (${status})`, options);
    if (status === 409 && onPullNext && what.startsWith('GET ')) return new IcomStreamError('ICOM_STREAM_BUSY', `${what}: the stream is answering another request (409)`, options);
    return new IcomStreamError('ICOM_STREAM_REFUSED', `${what}: the BCB answered ${status}`, options);
  }
}
