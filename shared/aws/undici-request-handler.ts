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

/** The SDK's HttpResponse, as its deserializers read it (HttpResponse.isInstance is structural). */
interface SdkHttpResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: NodeJS.ReadableStream;
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
/** A connection that broke mid-request: what node:http reports as ECONNRESET. */
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

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

function queryString(query: SdkHttpRequest['query']): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null) params.append(key, '');
    else if (typeof value === 'string') params.append(key, value);
    else for (const item of value) params.append(key, item ?? '');
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
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
 * CPU of the SDK's default node:http handler (docs/performance.md). Request and response bodies
 * are the SDK's own (strings or bytes out; a Node stream in).
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
      return { response: { statusCode: answer.statusCode, headers: responseHeaders(answer.headers), body: answer.body } };
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
