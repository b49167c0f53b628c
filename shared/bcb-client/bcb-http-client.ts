import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { Agent, buildConnector, request } from 'undici';
import { TransientError } from '../errors/index.ts';
import { CertificateRevokedError, RevocationUnknownError } from '../pki/index.ts';
import type { RevocationChecker } from '../pki/index.ts';
import type { BcbTlsOptions } from './bcb-connection-config.ts';
import { NO_METRICS } from '../metrics/index.ts';
import type { Metrics } from '../metrics/index.ts';

const gunzipAsync = promisify(gunzip);

/** Options of {@link BcbHttpClient}. Defaults are applied once, in the constructor. */
export interface BcbHttpClientOptions {
  /** `https://host:port` of the BCB (or the simulator). */
  origin: string;
  /**
   * TLS client options: client certificate and key (PEM or HSM engine), the pinned BCB CA, TLS ≥
   * 1.2, and the revocation check applied to the server's chain after every handshake (resumed
   * sessions included), before any byte of a request is written.
   */
  tls: BcbTlsOptions;
  /**
   * Connections kept alive per origin (the BCB allows a few; ICOM asks for reuse).
   * @defaultValue 8
   */
  connections?: number;
  /**
   * Time to wait for the response headers.
   * @defaultValue 10000
   */
  headersTimeoutMs?: number;
  /**
   * Time to wait for the whole body.
   * @defaultValue 10000
   */
  bodyTimeoutMs?: number;
  /**
   * Time to establish a connection (TCP + TLS).
   * @defaultValue 5000
   */
  connectTimeoutMs?: number;
  /**
   * Largest answer body accepted by {@link BcbHttpClient.send}, on the wire and after gzip
   * decoding, bytes (ICOM answers to a POST are empty or a short problem document).
   * @defaultValue 1048576
   */
  maxAnswerBytes?: number;
  /** Where each answer's HTTP status (`BcbResponses`, `none` for no answer) is counted. @defaultValue metrics off */
  metrics?: Metrics;
}

/** A response from the BCB. */
export interface BcbResponse {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: string;
}

/** A response whose body is kept as bytes (decoded from gzip when the BCB compressed it). */
export interface BcbRawResponse {
  status: number;
  /** Header names in lower case, as the BCB sent them (`content-encoding` included). */
  headers: Readonly<Record<string, string>>;
  /** The body after content decoding. */
  body: Buffer;
  /** Bytes on the wire (before decoding). */
  encodedBytes: number;
}

/** Options of {@link BcbHttpClient.sendRaw}. */
export interface BcbRawRequestOptions {
  /** Request headers; `accept-encoding: gzip` is added. */
  headers?: Readonly<Record<string, string>>;
  /** Largest body accepted, on the wire and after decompression, bytes. */
  maxBodyBytes: number;
  /** Aborts the request (a long poll at shutdown); the rejection is a {@link BcbUnavailableError}. */
  signal?: AbortSignal;
}

/**
 * A response body that cannot be read: larger than allowed (`BCB_BODY_TOO_LARGE`), or a
 * content encoding that does not decode (`BCB_BODY_INVALID`). Transient: the answer is not
 * used, and what it carried is asked for again.
 */
export class BcbBodyInvalidError extends TransientError {
  constructor(code: 'BCB_BODY_TOO_LARGE' | 'BCB_BODY_INVALID', message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/**
 * What is known about a request that got no usable answer. `not-sent`: the BCB cannot have taken
 * it (the connection or TLS handshake failed before anything was written, or the BCB answered 429
 * or 503, saying it did not take it). `unknown`: it may have reached the BCB (timeout, reset or
 * TLS error on an open connection, 500/502/504, an unexpected status), so only the BCB's
 * idempotency makes a resend safe, and only a later answer tells what happened.
 */
export type DeliveryKnowledge = 'not-sent' | 'unknown';

/** The BCB could not be reached or did not answer: transient, with what is known of the request. */
export class BcbUnavailableError extends TransientError {
  /** Whether the request may have reached the BCB. */
  readonly delivery: DeliveryKnowledge;
  /** The answer, when there was one (429, 5xx, unexpected status), for the audit trail. */
  readonly response: BcbResponse | undefined;
  /**
   * @param retryAfterSeconds - the BCB's `Retry-After`, when it gave one: the runtime retries no
   *   sooner (see `TransientError`'s `retryAfterSeconds`).
   */
  constructor(code: string, message: string, delivery: DeliveryKnowledge, cause: unknown, response?: BcbResponse, retryAfterSeconds?: number) {
    super(code, message, { cause, details: { delivery }, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
    this.delivery = delivery;
    this.response = response;
  }
}

/** Marks errors raised while connecting, before any byte of a request was written. */
const CONNECT_FAILURE = Symbol('selo.connectFailure');

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return '';
}

function flattenHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/**
 * Classifies a failed request. Only a failure of the connection itself (refused, unreachable,
 * handshake refused; tagged by the connector) proves the request never left; anything after
 * the connection was up (timeouts, resets, TLS alerts on a reused socket) may have delivered it.
 */
export function classifyTransportError(error: unknown, what: string): BcbUnavailableError {
  // The server's certificate (or one above it) is revoked, or its status unknown under the
  // `require` policy: the connection was refused before anything was sent.
  if (error instanceof CertificateRevokedError) {
    return new BcbUnavailableError('BCB_CERTIFICATE_REVOKED', `${what}: the BCB's TLS certificate is revoked (${error.message})`, 'not-sent', error);
  }
  if (error instanceof RevocationUnknownError) {
    return new BcbUnavailableError('BCB_REVOCATION_UNKNOWN', `${what}: the revocation status of the BCB's TLS certificate is unknown (${error.code}: ${error.message})`, 'not-sent', error);
  }
  const code = errorCode(error);
  const connecting = typeof error === 'object' && error !== null && CONNECT_FAILURE in error;
  if (connecting || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new BcbUnavailableError('BCB_UNREACHABLE', `${what}: could not connect to the BCB (${code || 'connect'})`, 'not-sent', error);
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new BcbUnavailableError('BCB_TIMEOUT', `${what}: no answer in time (${code})`, 'unknown', error);
  }
  return new BcbUnavailableError('BCB_CONNECTION_LOST', `${what}: connection lost (${code || 'socket'})`, 'unknown', error);
}

/**
 * Checks the server's certificate and the chain it presented against the CRLs; the error when
 * one is revoked (or its status is unknown under `require`), undefined when the chain is good.
 * Runs for every new connection: node skips `checkServerIdentity` on resumed TLS sessions, so
 * the check is made here rather than there.
 */
function checkPeerRevocation(socket: TLSSocket, revocation: RevocationChecker): Error | undefined {
  const chain: X509Certificate[] = [];
  let peer: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (peer?.raw !== undefined && chain.length < 10) {
    chain.push(new X509Certificate(peer.raw));
    const next: DetailedPeerCertificate | undefined = peer.issuerCertificate;
    if (next === undefined || next === peer || next.raw.equals(peer.raw)) break;
    peer = next;
  }
  const [leaf, ...intermediates] = chain;
  if (leaf === undefined) return new Error('the BCB presented no certificate');
  try {
    revocation.check(leaf, { intermediates });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * HTTP/1.1 over mutual TLS to the BCB with a keep-alive pool (DESIGN §2: HTTP/1.1 only, TLS ≥
 * 1.2, `Host` without port, keep connections alive). Counts TLS handshakes and requests so that
 * connection reuse can be measured.
 */
export class BcbHttpClient {
  readonly #origin: string;
  readonly #host: string;
  readonly #agent: Agent;
  #handshakes = 0;
  #requests = 0;
  #closed = false;
  readonly #maxAnswerBytes: number;
  readonly #metrics: Metrics;

  constructor(options: BcbHttpClientOptions) {
    let url: URL;
    try {
      url = new URL(options.origin);
    } catch {
      throw new RangeError(`origin must be an https URL, got ${JSON.stringify(options.origin)}`);
    }
    if (url.protocol !== 'https:') throw new RangeError(`origin must be an https URL, got ${JSON.stringify(options.origin)}`);
    for (const [field, value] of [['connections', options.connections], ['headersTimeoutMs', options.headersTimeoutMs], ['bodyTimeoutMs', options.bodyTimeoutMs], ['connectTimeoutMs', options.connectTimeoutMs], ['maxAnswerBytes', options.maxAnswerBytes]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new RangeError(`${field} must be a positive integer, got ${String(value)}`);
    }
    this.#origin = url.origin;
    this.#metrics = options.metrics ?? NO_METRICS;
    this.#host = url.hostname;
    this.#maxAnswerBytes = options.maxAnswerBytes ?? 1024 * 1024;
    const { revocation, ...tls } = options.tls;
    const connector = buildConnector({ ...tls, timeout: options.connectTimeoutMs ?? 5_000 });
    this.#agent = new Agent({
      connections: options.connections ?? 8,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      bodyTimeout: options.bodyTimeoutMs ?? 10_000,
      keepAliveTimeout: 30_000,
      pipelining: 1,
      allowH2: false,
      connect: (connectOptions, callback) => {
        connector(connectOptions, (error, socket) => {
          const refused = error === null && socket !== null && revocation !== undefined ? checkPeerRevocation(socket as TLSSocket, revocation) : undefined;
          if (refused !== undefined) socket?.destroy();
          if (error === null && socket !== null && refused === undefined) {
            this.#handshakes += 1;
            callback(null, socket);
          } else {
            const failure: Error = refused ?? error ?? new Error('connection failed');
            Object.defineProperty(failure, CONNECT_FAILURE, { value: true });
            callback(failure, null);
          }
        });
      },
    });
  }

  /** TLS handshakes and requests so far (reuse = requests / handshakes). */
  stats(): { handshakes: number; requests: number } {
    return { handshakes: this.#handshakes, requests: this.#requests };
  }

  /**
   * Sends one request. Resolves with any HTTP answer (the caller decides what a status means);
   * rejects with {@link BcbUnavailableError} when there is none, and with
   * {@link BcbBodyInvalidError} when the answer's body exceeds `maxAnswerBytes` or does not decode.
   * The answer may come gzip-compressed (`accept-encoding: gzip` is sent) and is decoded here.
   */
  async send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string | Buffer, headers: Readonly<Record<string, string>> = {}): Promise<BcbResponse> {
    const raw = await this.#exchange(method, path, { headers, maxBodyBytes: this.#maxAnswerBytes }, body);
    return { status: raw.status, headers: raw.headers, body: raw.body.toString('utf8') };
  }

  /**
   * Sends a request whose answer is read as bytes, accepting gzip (`Content-Encoding: gzip` is
   * decoded here) and bounding the body before and after decompression. Resolves with any HTTP
   * answer; rejects with {@link BcbUnavailableError} when there is none (or `signal` aborted) and
   * with {@link BcbBodyInvalidError} when the body is too large or does not decode.
   */
  async sendRaw(method: 'GET' | 'DELETE', path: string, options: BcbRawRequestOptions): Promise<BcbRawResponse> {
    return this.#exchange(method, path, options, undefined);
  }

  async #exchange(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: BcbRawRequestOptions, requestBody: string | Buffer | undefined): Promise<BcbRawResponse> {
    // Transient: a request caught by shutdown belongs to a message that will be delivered again.
    if (this.#closed) throw new BcbUnavailableError('BCB_CLIENT_CLOSED', 'the BCB client is closed', 'not-sent', undefined);
    const limit = options.maxBodyBytes;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`maxBodyBytes must be a positive integer, got ${String(limit)}`);
    this.#requests += 1;
    const what = `${method} ${path}`;
    let status: number | undefined;
    let headers: Record<string, string>;
    let encoded: Buffer;
    try {
      const response = await request(`${this.#origin}${path}`, {
        method,
        dispatcher: this.#agent,
        // The BCB requires Host without a port (DESIGN §2). Accept-Encoding, when sent, may only be
        // `gzip`, and gzip support is mandatory for the PSP (ICOM manual 1.12 §2.1.5 "Compactação"
        // and §2.1.8 "Cabeçalhos adicionais", restated in apolzek/open-pix
        // docs/reference/icom-api.md: "Accept-Encoding -- if present, only gzip"; "Support for gzip
        // is mandatory for both the PSP and the API"): `identity` is not on the list.
        headers: { host: this.#host, ...options.headers, 'accept-encoding': 'gzip' },
        ...(requestBody === undefined ? {} : { body: requestBody }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      status = response.statusCode;
      this.#metrics.count('BcbResponses', { Status: String(status) });
      headers = flattenHeaders(response.headers);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        size += buffer.length;
        if (size > limit) {
          response.body.destroy();
          throw new BcbBodyInvalidError('BCB_BODY_TOO_LARGE', `${what}: the answer's body exceeds ${limit} bytes`);
        }
        chunks.push(buffer);
      }
      encoded = Buffer.concat(chunks);
    } catch (error) {
      if (error instanceof BcbBodyInvalidError) throw error;
      if (status === undefined) this.#metrics.count('BcbResponses', { Status: 'none' });
      throw classifyTransportError(error, what);
    }
    const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding === 'identity' || encoding === '') return { status, headers, body: encoded, encodedBytes: encoded.length };
    if (encoding !== 'gzip') throw new BcbBodyInvalidError('BCB_BODY_INVALID', `${what}: unsupported Content-Encoding ${JSON.stringify(encoding)}`);
    try {
      const body = await gunzipAsync(encoded, { maxOutputLength: limit });
      return { status, headers, body, encodedBytes: encoded.length };
    } catch (error) {
      if (errorCode(error) === 'ERR_BUFFER_TOO_LARGE') throw new BcbBodyInvalidError('BCB_BODY_TOO_LARGE', `${what}: the answer's body exceeds ${limit} bytes once decompressed`, error);
      throw new BcbBodyInvalidError('BCB_BODY_INVALID', `${what}: the gzip body does not decode (${errorCode(error) || 'gzip'})`, error);
    }
  }

  /** Closes the connection pool; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}
