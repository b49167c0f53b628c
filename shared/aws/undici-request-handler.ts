import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

/** The parts of the SDK's HttpRequest (Smithy) a request handler reads. */
interface SdkHttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | readonly (string | null)[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * The SDK's HttpResponse, as its deserializers read it (HttpResponse.isInstance is structural).
 * The body is read whole here (the JSON protocols have no streamed responses; the SDK's
 * collectBody takes bytes as they are), so a connection lost mid-body is reported like one lost
 * before the headers.
 */
interface SdkHttpResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Options of {@link UndiciRequestHandler}. */
export interface UndiciRequestHandlerOptions {
  /** Sockets per origin at most. @defaultValue 64 */
  connections?: number;
  /** Time to open a connection, ms. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /** Time to the response headers, ms: above SQS's 20 s long poll. @defaultValue 60000 */
  headersTimeoutMs?: number;
  /** Time between two chunks of a response body, ms. @defaultValue 60000 */
  bodyTimeoutMs?: number;
}

/** undici's timeout errors, which the SDK's retry strategy knows as `TimeoutError`. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/**
 * A connection that broke mid-request or mid-response: what node:http reports as ECONNRESET. Not
 * UND_ERR_CLOSED / UND_ERR_DESTROYED (this handler was closed: retrying cannot help).
 */
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH']);

/**
 * An undici error in the terms of the SDK's retry strategy (`@smithy` `isTransientError`: error
 * name `TimeoutError`, or codes such as ECONNRESET), which has no knowledge of undici's own
 * codes; a system error (ECONNREFUSED) and an abort pass as they are.
 */
function asSdkNetworkError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const message = error instanceof Error ? error.message : String(error);
  if (TIMEOUT_CODES.has(code)) return Object.assign(new Error(message, { cause: error }), { name: 'TimeoutError', code: 'ETIMEDOUT' });
  if (RESET_CODES.has(code)) return Object.assign(new Error(message, { cause: error }), { code: 'ECONNRESET' });
  return error;
}

/** RFC 3986 encoding, as SigV4 signs a query (encodeURIComponent leaves !'()* alone). */
function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/gu, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The query part of a request (the JSON protocols send none; kept exact for any that does). */
function queryString(query: SdkHttpRequest['query']): string {
  if (query === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === null) parts.push(rfc3986(key));
    else if (typeof value === 'string') parts.push(`${rfc3986(key)}=${rfc3986(value)}`);
    else for (const item of value) parts.push(item === null ? rfc3986(key) : `${rfc3986(key)}=${rfc3986(item)}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

function responseHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/**
 * The AWS SDK's HTTP transport over undici (HTTP/1.1 with keep-alive, one pool per origin) for
 * the JSON-protocol clients (SQS, EventBridge, Kinesis, DynamoDB): each call costs about 0.7× the
 * CPU of the SDK's default node:http handler over plain HTTP on loopback (docs/performance.md).
 * Request bodies are the SDK's own (strings or bytes); responses are read whole. The SDK's
 * per-request `requestTimeout` is not read: the timeouts are this handler's options.
 */
export class UndiciRequestHandler {
  readonly #pools = new Map<string, Pool>();
  readonly #options: Required<UndiciRequestHandlerOptions>;
  #destroyed = false;

  constructor(options: UndiciRequestHandlerOptions = {}) {
    this.#options = {
      connections: options.connections ?? 64,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
      bodyTimeoutMs: options.bodyTimeoutMs ?? 60_000,
    };
    for (const [name, value] of Object.entries(this.#options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`UndiciRequestHandlerOptions.${name} must be a positive integer, got ${String(value)}`);
    }
  }

  /** Sends `request`; rejects with the SDK's network error terms (see asSdkNetworkError). */
  async handle(request: SdkHttpRequest, options: { abortSignal?: unknown } = {}): Promise<{ response: SdkHttpResponse }> {
    if (this.#destroyed) throw Object.assign(new Error('the request handler was destroyed'), { code: 'ECONNRESET' });
    const origin = `${request.protocol}//${request.hostname}${request.port === undefined ? '' : `:${request.port}`}`;
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: this.#options.connections,
        connectTimeout: this.#options.connectTimeoutMs,
        headersTimeout: this.#options.headersTimeoutMs,
        bodyTimeout: this.#options.bodyTimeoutMs,
      });
      this.#pools.set(origin, pool);
    }
    try {
      const answer = await pool.request({
        method: request.method,
        path: `${request.path}${queryString(request.query)}`,
        headers: request.headers,
        body: request.body as string | Uint8Array | undefined,
        // A DOM AbortSignal (sqs-consumer's); the SDK's deprecated signal type has no listeners to offer.
        ...(options.abortSignal instanceof AbortSignal ? { signal: options.abortSignal } : {}),
      });
      const body = new Uint8Array(await answer.body.arrayBuffer());
      return { response: { statusCode: answer.statusCode, headers: responseHeaders(answer.headers), body } };
    } catch (error) {
      throw asSdkNetworkError(error);
    }
  }

  /** Part of the SDK's handler contract; this handler is configured once, at construction. */
  updateHttpClientConfig(): void {
    // Nothing to update.
  }

  /** Part of the SDK's handler contract. */
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  /** Closes every pool's sockets. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const pool of this.#pools.values()) void pool.destroy().catch(() => undefined);
    this.#pools.clear();
  }
}
