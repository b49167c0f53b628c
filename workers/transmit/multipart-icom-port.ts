import { randomBytes } from 'node:crypto';
import { BcbRequestRejectedError, BcbUnavailableError, ICOM_MAX_MESSAGES_PER_POST } from '../../shared/bcb-client/index.ts';
import type { BcbResponse, IcomPosted, IcomPostedBatch } from '../../shared/bcb-client/index.ts';
import { Coalescer } from '../../shared/runtime/index.ts';
import type { IcomPort } from './handler.ts';

/** One HTTP exchange with ICOM that carried a message: what that message's audit trail records. */
export interface IcomExchange {
  readonly requestDate: Date;
  /** The request's headers as sent (its content type, with the multipart boundary, and encoding). */
  readonly requestHeaders: Readonly<Record<string, string>>;
  /** The answer, when there was one. */
  readonly response?: BcbResponse;
  /** When the answer arrived (with `response`). */
  readonly receivedAt?: Date;
}

/** An {@link IcomPosted} with every exchange that carried the message, the last one the 201. */
export interface IcomPostedWithExchanges extends IcomPosted {
  readonly icomExchanges: readonly IcomExchange[];
}

/** The calls of an `IcomClient` that {@link MultipartIcomPort} makes. */
export interface MultipartIcomClient {
  readonly postPath: string;
  readonly gzip: boolean;
  post(signedXml: string): Promise<IcomPosted>;
  postMany(signedXmls: readonly string[], options: { boundary: string }): Promise<IcomPostedBatch>;
}

/** Options of {@link MultipartIcomPort}; validated at construction. */
export interface MultipartIcomPortOptions {
  client: MultipartIcomClient;
  /**
   * Messages one POST carries at most: 2 to {@link ICOM_MAX_MESSAGES_PER_POST} (the ICOM's limit).
   * A batch that fills up is posted at once.
   */
  maxMessages: number;
  /**
   * How long the first message of a batch waits for batch-mates, ms. Messages of one SQS receive
   * reach the POST within a few milliseconds of each other (each after its own saga writes).
   * @defaultValue 10
   */
  lingerMs?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

type Result = { posted: IcomPostedWithExchanges } | { error: unknown };

const EXCHANGES = 'icomExchanges';

/** The exchanges a {@link MultipartIcomPort} recorded on a result or an error it gave, if any. */
export function exchangesOf(value: unknown): readonly IcomExchange[] | undefined {
  if (typeof value !== 'object' || value === null || !(EXCHANGES in value)) return undefined;
  return (value as { [EXCHANGES]: readonly IcomExchange[] })[EXCHANGES];
}

function withExchanges(error: unknown, exchanges: readonly IcomExchange[]): unknown {
  if (typeof error === 'object' && error !== null) Object.defineProperty(error, EXCHANGES, { value: exchanges, enumerable: false, configurable: true });
  return error;
}

/**
 * A copy of `error` for one message of a batch: same class, code, message, cause and answer. Each
 * message's handler adds its own audit records to the error it throws (withAuditRecords), so the
 * messages of one POST must never share one error object.
 */
function copyOf(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  return Object.create(Object.getPrototypeOf(error) as object, Object.getOwnPropertyDescriptors(error)) as unknown;
}

function answerOf(error: unknown): BcbResponse | undefined {
  if (error instanceof BcbRequestRejectedError) return error.response;
  if (error instanceof BcbUnavailableError) return error.response;
  return undefined;
}

/**
 * The transmit worker's ICOM port when `SELO_ICOM_MULTIPART_MAX` > 1: SPI messages whose handlers
 * post at about the same time (the messages of one SQS receive) go together in one
 * `multipart/mixed` POST of up to `maxMessages` (ICOM manual 1.12 §2.2.1: 1 to 10 messages per
 * POST). Each message keeps its own fate, as if it had been posted alone:
 * - 201: each gets its own `PI-ResourceId` (the answer's list, in order).
 * - a 4xx: ICOM stored nothing (manual: "4xx: nothing was stored"), and the refusal may be due to
 *   one message (its size, its bytes); each message is then posted alone at once, so that only
 *   the message the ICOM refuses is refused (HOUSE_STYLE 3).
 * - 429, 5xx, a timeout or a reset: each message gets its own copy of the error, saying whether
 *   the POST may have arrived, and is retried through its own queue backoff with the same bytes.
 * Each result and error lists the exchanges that carried the message ({@link exchangesOf}), for
 * its audit trail.
 */
export class MultipartIcomPort implements IcomPort {
  readonly #client: MultipartIcomClient;
  readonly #now: () => Date;
  readonly #batches: Coalescer<string, Result>;

  constructor(options: MultipartIcomPortOptions) {
    const { maxMessages } = options;
    if (!Number.isSafeInteger(maxMessages) || maxMessages < 2 || maxMessages > ICOM_MAX_MESSAGES_PER_POST) {
      throw new RangeError(`MultipartIcomPortOptions.maxMessages must be an integer from 2 to ${ICOM_MAX_MESSAGES_PER_POST} (ICOM limit per POST), got ${String(maxMessages)}`);
    }
    const lingerMs = options.lingerMs ?? 10;
    if (!Number.isSafeInteger(lingerMs) || lingerMs < 0 || lingerMs > 60_000) {
      throw new RangeError(`MultipartIcomPortOptions.lingerMs must be an integer from 0 to 60000, got ${String(options.lingerMs)}`);
    }
    this.#client = options.client;
    this.#now = options.now ?? (() => new Date());
    this.#batches = new Coalescer<string, Result>({ maxItems: maxMessages, lingerMs, flush: (xmls) => this.#flush(xmls) });
  }

  get postPath(): string {
    return this.#client.postPath;
  }

  get gzip(): boolean {
    return this.#client.gzip;
  }

  /** Posts `signedXml` with whatever batch-mates arrive within the linger time. */
  async post(signedXml: string): Promise<IcomPostedWithExchanges> {
    const result = await this.#batches.submit(signedXml);
    if ('error' in result) throw result.error;
    return result.posted;
  }

  #headers(contentType: string): Record<string, string> {
    return { 'content-type': contentType, ...(this.#client.gzip ? { 'content-encoding': 'gzip' } : {}) };
  }

  async #flush(xmls: readonly string[]): Promise<Result[]> {
    if (xmls.length === 1) return [await this.#alone(xmls[0] ?? '', [])];
    const boundary = `selo-${randomBytes(12).toString('hex')}`;
    const requestHeaders = this.#headers(`multipart/mixed; boundary=${boundary}`);
    const requestDate = this.#now();
    let batch: IcomPostedBatch;
    try {
      batch = await this.#client.postMany(xmls, { boundary });
    } catch (error) {
      const response = answerOf(error);
      const exchange: IcomExchange = { requestDate, requestHeaders, ...(response === undefined ? {} : { response, receivedAt: this.#now() }) };
      if (error instanceof BcbRequestRejectedError) return Promise.all(xmls.map((xml) => this.#alone(xml, [exchange])));
      return xmls.map(() => ({ error: withExchanges(copyOf(error), [exchange]) }));
    }
    const exchange: IcomExchange = { requestDate, requestHeaders, response: batch.response, receivedAt: this.#now() };
    // A 201 without one id per message still means ICOM has them all: never resend them.
    return xmls.map((_, i) => ({ posted: { resourceId: batch.resourceIds[i] ?? '(none)', response: batch.response, icomExchanges: [exchange] } }));
  }

  /** Posts one message on its own, after the `earlier` exchanges that carried it. */
  async #alone(xml: string, earlier: readonly IcomExchange[]): Promise<Result> {
    const requestHeaders = this.#headers('application/xml; charset=utf-8');
    const requestDate = this.#now();
    try {
      const posted = await this.#client.post(xml);
      return { posted: { ...posted, icomExchanges: [...earlier, { requestDate, requestHeaders, response: posted.response, receivedAt: this.#now() }] } };
    } catch (error) {
      const response = answerOf(error);
      return { error: withExchanges(error, [...earlier, { requestDate, requestHeaders, ...(response === undefined ? {} : { response, receivedAt: this.#now() }) }]) };
    }
  }
}
