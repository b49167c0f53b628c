import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PermanentError } from '../../shared/errors/index.ts';
import { EventBridgeApiError, internalError, unknownOperationError, validationError } from './errors.ts';
import { isJsonObject } from './event-pattern.ts';
import type { JsonObject } from './event-pattern.ts';
import { EventBusModel } from './event-bus-model.ts';
import { SqsTargetDispatcher } from './sqs-delivery.ts';
import type { SqsJsonTransport } from './sqs-delivery.ts';
import type { DeliveryStats } from './sqs-delivery.ts';

/** Options of {@link EventBridgeEmulator}. */
export interface EventBridgeEmulatorOptions {
  /**
   * Interface to listen on.
   * @defaultValue '127.0.0.1'
   */
  host?: string;
  /**
   * Port to listen on; 0 picks a free ephemeral port.
   * @defaultValue 0
   */
  port?: number;
  /**
   * Region written into ARNs and events.
   * @defaultValue 'us-east-1'
   */
  region?: string;
  /**
   * Account id (12 digits) written into ARNs and events.
   * @defaultValue '000000000000'
   */
  accountId?: string;
  /** Where SQS targets are delivered: an SQS endpoint URL (a local fauxqs). */
  sqsEndpoint: string;
  /**
   * Attempts per target message before it counts as failed.
   * @defaultValue 3
   */
  deliveryAttempts?: number;
  /**
   * Delay before the first delivery retry, in milliseconds; doubles on each further retry.
   * @defaultValue 100
   */
  retryDelayMs?: number;
  /**
   * Largest request body accepted, in bytes. Above AWS's own limits so that an oversized
   * PutEvents entry reaches the per-entry size check.
   * @defaultValue 4194304
   */
  maxRequestBytes?: number;
  /**
   * Delivers to SQS through this rather than the SDK's SQS client over HTTP (the local stack
   * hands in fauxqs's own request handling when both run in one process).
   * @defaultValue the SDK's SQS client at `sqsEndpoint`
   */
  sqsTransport?: SqsJsonTransport;
}

interface ResolvedOptions {
  host: string;
  port: number;
  region: string;
  accountId: string;
  sqsEndpoint: string;
  deliveryAttempts: number;
  retryDelayMs: number;
  maxRequestBytes: number;
}

/** Raised by the {@link EventBridgeEmulator} constructor for a bad option; names the field and the value. */
export class EventBridgeEmulatorOptionsError extends PermanentError {
  constructor(field: string, value: unknown, expected: string) {
    super('INVALID_EVENTBRIDGE_EMULATOR_OPTION', `EventBridgeEmulatorOptions.${field} must be ${expected}; got ${JSON.stringify(value)}`, {
      details: { field },
    });
  }
}

function resolveOptions(options: EventBridgeEmulatorOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    region: options.region ?? 'us-east-1',
    accountId: options.accountId ?? '000000000000',
    sqsEndpoint: options.sqsEndpoint,
    deliveryAttempts: options.deliveryAttempts ?? 3,
    retryDelayMs: options.retryDelayMs ?? 100,
    maxRequestBytes: options.maxRequestBytes ?? 4 * 1024 * 1024,
  };
  const integerIn = (field: keyof ResolvedOptions, min: number, max: number): void => {
    const value = resolved[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new EventBridgeEmulatorOptionsError(field, value, `an integer from ${min} to ${max}`);
    }
  };
  if (typeof resolved.host !== 'string' || resolved.host === '') throw new EventBridgeEmulatorOptionsError('host', resolved.host, 'a host name or address');
  integerIn('port', 0, 65_535);
  if (typeof resolved.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/u.test(resolved.region)) {
    throw new EventBridgeEmulatorOptionsError('region', resolved.region, 'an AWS region such as us-east-1');
  }
  if (typeof resolved.accountId !== 'string' || !/^\d{12}$/u.test(resolved.accountId)) {
    throw new EventBridgeEmulatorOptionsError('accountId', resolved.accountId, 'a 12-digit account id');
  }
  if (typeof resolved.sqsEndpoint !== 'string' || !URL.canParse(resolved.sqsEndpoint) || !/^https?:$/u.test(new URL(resolved.sqsEndpoint).protocol)) {
    throw new EventBridgeEmulatorOptionsError('sqsEndpoint', resolved.sqsEndpoint, 'an http(s) URL');
  }
  integerIn('deliveryAttempts', 1, 20);
  integerIn('retryDelayMs', 0, 60_000);
  integerIn('maxRequestBytes', 1024, 64 * 1024 * 1024);
  return resolved;
}

const TARGET_PREFIX = 'AWSEvents.';
const JSON_11 = 'application/x-amz-json-1.1';

/**
 * A local EventBridge: an HTTP server speaking the AWS JSON 1.1 protocol the way
 * `@aws-sdk/client-eventbridge` v3 sends it (POST /, `X-Amz-Target: AWSEvents.<Action>`),
 * with event buses, rules, event patterns and SQS targets delivered through the real
 * `@aws-sdk/client-sqs` (or an {@link EventBridgeEmulatorOptions.sqsTransport}). SigV4
 * signatures are accepted without being checked. Bad input never crashes the server; delivery
 * failures are retried and counted in {@link EventBridgeEmulator.stats}.
 */
export class EventBridgeEmulator {
  readonly #options: ResolvedOptions;
  readonly #dispatcher: SqsTargetDispatcher;
  readonly #model: EventBusModel;
  #server: Server | undefined;
  #url: string | undefined;
  #closing: Promise<void> | undefined;

  /** @throws EventBridgeEmulatorOptionsError when an option is invalid. */
  constructor(options: EventBridgeEmulatorOptions) {
    this.#options = resolveOptions(options);
    this.#dispatcher = new SqsTargetDispatcher({
      endpoint: this.#options.sqsEndpoint,
      maxAttempts: this.#options.deliveryAttempts,
      retryDelayMs: this.#options.retryDelayMs,
      ...(options.sqsTransport === undefined ? {} : { transport: options.sqsTransport }),
    });
    this.#model = new EventBusModel({ region: this.#options.region, accountId: this.#options.accountId, dispatcher: this.#dispatcher });
  }

  /** The endpoint URL to give SDK clients, e.g. `http://127.0.0.1:41234`; set once started. */
  get url(): string {
    if (this.#url === undefined) throw new Error('EventBridgeEmulator is not started');
    return this.#url;
  }

  /** Starts listening; resolves with the endpoint URL. Calling it again returns the same URL. */
  async start(): Promise<string> {
    if (this.#url !== undefined) return this.#url;
    if (this.#closing !== undefined) throw new Error('EventBridgeEmulator is closed');
    const server = createServer((request, response) => {
      this.#onRequest(request, response);
    });
    server.on('clientError', (_error, socket) => {
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#url = `http://${host}:${address.port}`;
    return this.#url;
  }

  /** Delivery counters (delivered, failed, retried, in flight). */
  stats(): DeliveryStats {
    return this.#dispatcher.stats();
  }

  /** Resolves when every delivery started so far has been delivered or given up on. */
  drain(): Promise<void> {
    return this.#dispatcher.drain();
  }

  /**
   * Stops accepting requests, drains in-flight deliveries and releases the SQS clients.
   * Idempotent; every step runs even if an earlier one fails.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const errors: unknown[] = [];
    const server = this.#server;
    if (server !== undefined) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.close((error) => {
            if (error === undefined) resolve();
            else reject(error);
          });
          // SDK clients keep connections alive; without this close() waits for them.
          server.closeAllConnections();
        });
      } catch (error) {
        errors.push(error);
      }
    }
    try {
      await this.#dispatcher.close();
    } catch (error) {
      errors.push(error);
    }
    if (errors.length > 0) throw new AggregateError(errors, 'EventBridgeEmulator did not close cleanly');
  }

  #onRequest(request: IncomingMessage, response: ServerResponse): void {
    request.on('error', () => {
      response.destroy();
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#options.maxRequestBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        if (tooLarge) throw validationError(`Request body exceeds ${this.#options.maxRequestBytes} bytes.`);
        this.#respond(response, 200, this.#dispatch(request, Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        const apiError = error instanceof EventBridgeApiError ? error : internalError('The emulator failed to process the request.');
        this.#respond(response, apiError.statusCode, { __type: apiError.awsType, message: apiError.message }, apiError.awsType);
      }
    });
  }

  #dispatch(request: IncomingMessage, body: string): JsonObject {
    if (request.method === 'GET' && request.url === '/health') return { status: 'ok' };
    const target = request.headers['x-amz-target'];
    if (request.method !== 'POST' || typeof target !== 'string' || !target.startsWith(TARGET_PREFIX)) {
      throw unknownOperationError('Expected POST / with an X-Amz-Target header of the form AWSEvents.<Action>.');
    }
    const action = target.slice(TARGET_PREFIX.length);
    if (!EventBusModel.actions.includes(action)) throw unknownOperationError(`Operation ${action} is not supported.`);
    let input: unknown = {};
    if (body.trim() !== '') {
      try {
        input = JSON.parse(body);
      } catch {
        throw validationError('The request body is not valid JSON.');
      }
    }
    if (!isJsonObject(input)) throw validationError('The request body must be a JSON object.');
    return this.#model.handle(action, input);
  }

  #respond(response: ServerResponse, status: number, body: JsonObject, errorType?: string): void {
    if (response.headersSent || response.destroyed) return;
    const payload = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': JSON_11,
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomUUID(),
      ...(errorType === undefined ? {} : { 'x-amzn-errortype': errorType }),
    });
    response.end(payload);
  }
}

/** A started emulator: its endpoint URL and how to stop it. */
export interface StartedEventBridgeEmulator {
  /** Endpoint URL for SDK clients. */
  url: string;
  /** Delivery counters. */
  stats(): DeliveryStats;
  /** Resolves when every delivery started so far has finished. */
  drain(): Promise<void>;
  /** Stops the emulator; idempotent. */
  close(): Promise<void>;
}

/**
 * Creates and starts an {@link EventBridgeEmulator}.
 *
 * @throws EventBridgeEmulatorOptionsError when an option is invalid.
 */
export async function startEventBridgeEmulator(options: EventBridgeEmulatorOptions): Promise<StartedEventBridgeEmulator> {
  const emulator = new EventBridgeEmulator(options);
  const url = await emulator.start();
  return {
    url,
    stats: () => emulator.stats(),
    drain: () => emulator.drain(),
    close: () => emulator.close(),
  };
}
