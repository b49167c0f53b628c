import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { PermanentError } from '../errors/index.ts';
import { ISPB_PATTERN } from '../iso20022/identifiers.ts';
import { BcbUnavailableError } from './bcb-http-client.ts';
import type { BcbHttpClient, BcbResponse } from './bcb-http-client.ts';
import { buildMultipart } from './multipart.ts';

const gzipAsync = promisify(gzip);
/** A multipart boundary selo writes: RFC 2046 §5.1.1 `bchars` without the space, 1 to 70 of them. */
const MULTIPART_BOUNDARY = /^[0-9A-Za-z'()+_,./:=?-]{1,70}$/;

/**
 * Messages one POST may carry as `multipart/mixed`: ICOM manual 1.12 §2.2.1 ("Entrada: envio de
 * mensagens pelo PSP"), restated in apolzek/open-pix docs/reference/icom-api.md ("Multipart
 * (`multipart/mixed`) works in both directions, with at most **10 messages** per request"); DESIGN
 * §2 ("POST 1–10 messages").
 */
export const ICOM_MAX_MESSAGES_PER_POST = 10;

/**
 * The seconds of a `Retry-After` header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), or
 * undefined when absent or unreadable.
 */
export function retryAfterSeconds(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The BCB answered a message with a 4xx: it will not accept it as sent (permanent). */
export class BcbRequestRejectedError extends PermanentError {
  /** HTTP status. */
  readonly status: number;
  /** The answer, for the audit trail. */
  readonly response: BcbResponse;
  constructor(what: string, response: BcbResponse) {
    super('BCB_REQUEST_REJECTED', `${what}: the BCB answered ${response.status}${problemTitle(response.body)}`, { details: { status: response.status } });
    this.status = response.status;
    this.response = response;
  }
}

/** The short title/detail of an application/problem+xml body, for messages (never the whole body). */
function problemTitle(body: string): string {
  const match = /<(?:\w+:)?(?:Title|Detail|title|detail)>([^<]{1,200})</.exec(body);
  return match?.[1] === undefined ? '' : ` (${match[1]})`;
}

/**
 * The error for an answer other than 201: a 4xx (but 408 and 429) is a definite refusal; 429 and
 * 503 say the BCB did not take the message; anything else (500, 502, 504, 408, an unexpected
 * 2xx or 3xx) leaves it unknown whether the message arrived.
 */
export function answerError(what: string, response: BcbResponse): BcbRequestRejectedError | BcbUnavailableError {
  const { status } = response;
  const said = `${what}: the BCB answered ${status}${problemTitle(response.body)}`;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return new BcbRequestRejectedError(what, response);
  // ICOM answers 429 (token bucket empty) with Retry-After, seconds: ICOM manual 1.12 (rate
  // limiting), restated in apolzek/open-pix docs/reference/icom-api.md ("new messages are rejected
  // with 429 and a Retry-After header (seconds)"; "Honor Retry-After"). Carried into the retry delay.
  const after = retryAfterSeconds(response.headers['retry-after']);
  if (status === 429) return new BcbUnavailableError('BCB_THROTTLED', said, 'not-sent', undefined, response, after);
  if (status === 503) return new BcbUnavailableError('BCB_SERVER_ERROR', said, 'not-sent', undefined, response, after);
  return new BcbUnavailableError('BCB_ANSWER_UNEXPECTED', said, 'unknown', undefined, response);
}

/** What ICOM said when it took a message. */
export interface IcomPosted {
  /** `PI-ResourceId` of the accepted message. */
  resourceId: string;
  /** The full answer, for the audit trail. */
  response: BcbResponse;
}

/** What ICOM said when it took several messages in one `multipart/mixed` POST. */
export interface IcomPostedBatch {
  /**
   * `PI-ResourceId` of each message, in the order posted; empty when ICOM answered 201 without
   * one id per message (the messages were taken all the same: never resend them).
   */
  resourceIds: readonly string[];
  /** The full answer, for the audit trail. */
  response: BcbResponse;
}

/** Options of {@link IcomClient}; validated at construction. */
export interface IcomClientOptions {
  /** The mTLS HTTP client to the ICOM origin. */
  http: BcbHttpClient;
  /** The participant's own ISPB, 8 characters `[0-9A-Z]` (XSD ISPBType). */
  ispb: string;
  /**
   * Compress POST bodies (`Content-Encoding: gzip`). The ICOM manual 1.12 §2.1.5 ("Compactação")
   * makes gzip support mandatory for the PSP and the API, recommends compressing on the primary
   * channel and requires it on the secondary one (restated in apolzek/open-pix
   * docs/reference/icom-api.md, "Gzip Compression").
   * @defaultValue false
   */
  gzip?: boolean;
}

/**
 * ICOM (the SPI's message interface, DESIGN §2). `POST /api/v1/in/{ispb}/msgs` answers 201 with
 * `PI-ResourceId`; a 201 means "received", not "valid": schema and signature errors come later
 * as admi.002 on the stream, and after a 201 the message must not be sent again.
 */
export class IcomClient {
  readonly #http: BcbHttpClient;
  readonly #ispb: string;
  readonly #gzip: boolean;

  constructor(options: IcomClientOptions) {
    // ISPBType of the SPI XSDs: [0-9A-Z]{8} (shared/spec/spi-5.13.1/xsd/*.xsd), letters included.
    if (!ISPB_PATTERN.test(options.ispb)) throw new RangeError(`ispb must be 8 characters [0-9A-Z] (XSD ISPBType), got ${JSON.stringify(options.ispb)}`);
    if (options.gzip !== undefined && typeof options.gzip !== 'boolean') throw new RangeError(`gzip must be a boolean, got ${JSON.stringify(options.gzip)}`);
    this.#http = options.http;
    this.#ispb = options.ispb;
    this.#gzip = options.gzip ?? false;
  }

  /** The request path of {@link IcomClient.post}. */
  get postPath(): string {
    return `/api/v1/in/${this.#ispb}/msgs`;
  }

  /** Whether POST bodies are gzip-compressed ({@link IcomClientOptions.gzip}). */
  get gzip(): boolean {
    return this.#gzip;
  }

  /**
   * Posts one signed message. Resolves on 201; rejects with {@link BcbRequestRejectedError}
   * (a 4xx refusal, permanent) or {@link BcbUnavailableError} (transient, saying whether the
   * message may have arrived, and carrying the BCB's `Retry-After` on 429 and 503).
   */
  async post(signedXml: string): Promise<IcomPosted> {
    const response = await this.#post(Buffer.from(signedXml, 'utf8'), 'application/xml; charset=utf-8');
    const resourceId = response.headers['pi-resourceid'];
    // A 201 without its id still means the BCB has the message: never resend it.
    return { resourceId: resourceId === undefined || resourceId === '' ? '(none)' : resourceId, response };
  }

  /**
   * Posts 1 to {@link ICOM_MAX_MESSAGES_PER_POST} signed messages in one `multipart/mixed` body,
   * each part `application/xml; charset=utf-8`. ICOM takes or refuses the POST as a whole: resolves
   * on 201 with one `PI-ResourceId` per message (the answer's comma-separated list, in order);
   * rejects as {@link IcomClient.post} does.
   * @param options.boundary - the multipart boundary (RFC 2046 §5.1.1: 1 to 70 characters of
   *   `bchars`, not ending in a space), so that a caller can record the request's content type;
   *   @defaultValue a random one
   */
  async postMany(signedXmls: readonly string[], options: { boundary?: string } = {}): Promise<IcomPostedBatch> {
    if (signedXmls.length < 1 || signedXmls.length > ICOM_MAX_MESSAGES_PER_POST) {
      throw new RangeError(`signedXmls must hold 1 to ${ICOM_MAX_MESSAGES_PER_POST} messages (ICOM limit per POST), got ${signedXmls.length}`);
    }
    if (options.boundary !== undefined && !MULTIPART_BOUNDARY.test(options.boundary)) {
      throw new RangeError(`boundary must be 1 to 70 characters [0-9A-Za-z'()+_,./:=?-] (RFC 2046 bchars, without space), got ${JSON.stringify(options.boundary)}`);
    }
    const parts = signedXmls.map((xml) => ({ headers: { 'Content-Type': 'application/xml; charset=utf-8' }, body: xml }));
    const { boundary, body } = options.boundary === undefined ? buildMultipart(parts) : buildMultipart(parts, options.boundary);
    const response = await this.#post(body, `multipart/mixed; boundary=${boundary}`);
    // One PI-ResourceId per stored message, comma separated for a multipart POST (ICOM manual 1.12
    // §2.2.1, restated in apolzek/open-pix docs/reference/icom-api.md: "PI-ResourceId carries the id
    // of each stored message (comma separated for multipart)").
    const ids = (response.headers['pi-resourceid'] ?? '').split(',').map((id) => id.trim()).filter((id) => id !== '');
    return { resourceIds: ids.length === signedXmls.length ? ids : [], response };
  }

  async #post(body: Buffer, contentType: string): Promise<BcbResponse> {
    const what = `POST ${this.postPath}`;
    const headers: Record<string, string> = { 'content-type': contentType, accept: 'application/xml' };
    let payload = body;
    if (this.#gzip) {
      // Content-Encoding, never `Transfer-Encoding: gzip, chunked` (ICOM manual 1.12 §2.1.5).
      payload = await gzipAsync(body);
      headers['content-encoding'] = 'gzip';
    }
    const response = await this.#http.send('POST', this.postPath, payload, headers);
    if (response.status === 201) return response;
    throw answerError(what, response);
  }
}
