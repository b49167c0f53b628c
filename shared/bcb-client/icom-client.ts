import { PermanentError } from '../errors/index.ts';
import { ISPB_PATTERN } from '../iso20022/identifiers.ts';
import { BcbUnavailableError } from './bcb-http-client.ts';
import type { BcbHttpClient, BcbResponse } from './bcb-http-client.ts';

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
  if (status === 429) return new BcbUnavailableError('BCB_THROTTLED', said, 'not-sent', undefined, response);
  if (status === 503) return new BcbUnavailableError('BCB_SERVER_ERROR', said, 'not-sent', undefined, response);
  return new BcbUnavailableError('BCB_ANSWER_UNEXPECTED', said, 'unknown', undefined, response);
}

/** What ICOM said when it took a message. */
export interface IcomPosted {
  /** `PI-ResourceId` of the accepted message. */
  resourceId: string;
  /** The full answer, for the audit trail. */
  response: BcbResponse;
}

/**
 * ICOM (the SPI's message interface, DESIGN §2). `POST /api/v1/in/{ispb}/msgs` answers 201 with
 * `PI-ResourceId`; a 201 means "received", not "valid": schema and signature errors come later
 * as admi.002 on the stream, and after a 201 the message must not be sent again.
 */
export class IcomClient {
  readonly #http: BcbHttpClient;
  readonly #ispb: string;

  constructor(options: { http: BcbHttpClient; ispb: string }) {
    // ISPBType of the SPI XSDs: [0-9A-Z]{8} (shared/spec/spi-5.13.1/xsd/*.xsd), letters included.
    if (!ISPB_PATTERN.test(options.ispb)) throw new RangeError(`ispb must be 8 characters [0-9A-Z] (XSD ISPBType), got ${JSON.stringify(options.ispb)}`);
    this.#http = options.http;
    this.#ispb = options.ispb;
  }

  /** The request path of {@link IcomClient.post}. */
  get postPath(): string {
    return `/api/v1/in/${this.#ispb}/msgs`;
  }

  /**
   * Posts one signed message. Resolves on 201; rejects with {@link BcbRequestRejectedError}
   * (a 4xx refusal, permanent) or {@link BcbUnavailableError} (transient, saying whether the
   * message may have arrived).
   */
  async post(signedXml: string): Promise<IcomPosted> {
    const what = `POST ${this.postPath}`;
    const response = await this.#http.send('POST', this.postPath, signedXml, { 'content-type': 'application/xml; charset=utf-8', accept: 'application/xml' });
    if (response.status === 201) {
      const resourceId = response.headers['pi-resourceid'];
      if (resourceId === undefined || resourceId === '') {
        // A 201 without its id still means the BCB has the message: never resend it.
        return { resourceId: '(none)', response };
      }
      return { resourceId, response };
    }
    throw answerError(what, response);
  }
}
