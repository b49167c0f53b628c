import { PermanentError, TransientError } from '../errors/index.ts';
import type { BcbHttpClient, BcbResponse } from './bcb-http-client.ts';

/** The BCB answered a message with a 4xx: it will not accept it as sent (permanent). */
export class BcbRequestRejectedError extends PermanentError {
  /** HTTP status. */
  readonly status: number;
  constructor(what: string, response: BcbResponse) {
    super('BCB_REQUEST_REJECTED', `${what}: the BCB answered ${response.status}${problemTitle(response.body)}`, { details: { status: response.status } });
    this.status = response.status;
  }
}

/** The BCB answered with 429 or a 5xx: it did not take the message; try again later. */
export class BcbServerError extends TransientError {
  /** HTTP status. */
  readonly status: number;
  constructor(what: string, response: BcbResponse) {
    super(response.status === 429 ? 'BCB_THROTTLED' : 'BCB_SERVER_ERROR', `${what}: the BCB answered ${response.status}${problemTitle(response.body)}`, {
      details: { status: response.status },
    });
    this.status = response.status;
  }
}

/** The short title/detail of an application/problem+xml body, for messages (never the whole body). */
function problemTitle(body: string): string {
  const match = /<(?:\w+:)?(?:Title|Detail|title|detail)>([^<]{1,200})</.exec(body);
  return match?.[1] === undefined ? '' : ` (${match[1]})`;
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
    if (!/^\d{8}$/.test(options.ispb)) throw new RangeError(`ispb must be 8 digits, got ${JSON.stringify(options.ispb)}`);
    this.#http = options.http;
    this.#ispb = options.ispb;
  }

  /** The request path of {@link IcomClient.post}. */
  get postPath(): string {
    return `/api/v1/in/${this.#ispb}/msgs`;
  }

  /**
   * Posts one signed message. Resolves on 201; rejects with {@link BcbRequestRejectedError}
   * (4xx, permanent), {@link BcbServerError} (429/5xx, transient) or a transport error
   * (transient, saying whether the message may have arrived).
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
    if (response.status === 429 || response.status >= 500) throw new BcbServerError(what, response);
    throw new BcbRequestRejectedError(what, response);
  }
}
