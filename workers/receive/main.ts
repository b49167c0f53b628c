import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { resolveTopology } from '../../infra/topology.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { BcbHttpClient, IcomStreamClient, bcbTlsOptions, readBcbConnectionConfig } from '../../shared/bcb-client/index.ts';
import { S3ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { loadWorkerConfig } from '../../shared/config/index.ts';
import type { Env, EnvReader, SeloConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import { startHealthServer, workerAuditProducer } from '../../shared/runtime/index.ts';
import type { HealthServer, ProcessOutputs } from '../../shared/runtime/index.ts';
import { createAnswerForwarder } from './forward-answer.ts';
import { RecentResources } from './recent-resources.ts';
import { DynamoStreamPositions } from './stream-positions.ts';
import { StreamReader } from './stream-reader.ts';
import type { ReceiveStats } from './stream-reader.ts';
import { sqsVerifyQueuePort } from './verify-queue.ts';

/** A running receive worker. */
export interface ReceiveWorker {
  /** Port of the `/live` and `/ready` endpoint. */
  healthPort: number;
  /** Stream counters (streams open, messages read, duplicates dropped, batches confirmed…). */
  stats(): ReceiveStats;
  /** TLS handshakes and requests to the BCB so far (connection reuse). */
  bcbStats(): { handshakes: number; requests: number };
  /** Stops reading (see `StreamReader.close`), flushes the audit trail, closes every client; idempotent. */
  close(): Promise<void>;
}

/** Options of {@link startReceiveWorker}. */
export interface ReceiveWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.receive` */
  logger?: Logger;
  /** The process's metrics (one emitter per process: `startWorkerSet` passes it). @defaultValue metrics off */
  metrics?: Metrics;
  /** The process's audit producer and PutEvents port, shared with its other workers; closed by its owner, not here. @defaultValue outputs of the worker's own */
  outputs?: ProcessOutputs;
}

/** The receive worker's own settings, parsed once at start. */
interface ReceiveSettings {
  streams: number;
  pollTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxBodyBytes: number;
  closeTimeoutMs: number;
  healthPort: number;
  resumeStreams: boolean;
  leaseMs: number;
}

function readReceiveSettings(reader: EnvReader): ReceiveSettings {
  const settings: ReceiveSettings = {
    streams: reader.integer('SELO_RECEIVE_STREAMS', { default: 6, min: 1, max: 6 }),
    pollTimeoutMs: reader.integer('SELO_RECEIVE_POLL_TIMEOUT_MS', { default: 60_000, min: 1_000, max: 600_000 }),
    backoffBaseMs: reader.integer('SELO_RECEIVE_BACKOFF_BASE_MS', { default: 500, min: 1, max: 600_000 }),
    backoffMaxMs: reader.integer('SELO_RECEIVE_BACKOFF_MAX_MS', { default: 30_000, min: 1, max: 600_000 }),
    maxBodyBytes: reader.integer('SELO_RECEIVE_MAX_BODY_BYTES', { default: 32 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024 }),
    closeTimeoutMs: reader.integer('SELO_RECEIVE_CLOSE_TIMEOUT_MS', { default: 10_000, min: 1, max: 600_000 }),
    healthPort: reader.integer('SELO_HEALTH_PORT', { default: 8080, min: 0, max: 65_535 }),
    resumeStreams: reader.boolean('SELO_RECEIVE_RESUME_STREAMS', { default: true }),
    leaseMs: reader.integer('SELO_RECEIVE_LEASE_MS', { default: 3_000, min: 300, max: 60_000 }),
  };
  if (settings.backoffMaxMs < settings.backoffBaseMs) reader.problem('SELO_RECEIVE_BACKOFF_MAX_MS', `must not be below SELO_RECEIVE_BACKOFF_BASE_MS (${settings.backoffBaseMs}), got ${settings.backoffMaxMs}`);
  return settings;
}

/** Reads and checks the receive worker's configuration, without I/O; a `ConfigError` names every problem. */
export function readReceiveWorkerConfig(env: Env): { config: SeloConfig; bcb: ReturnType<typeof readBcbConnectionConfig>; settings: ReceiveSettings } {
  return loadWorkerConfig(env, (reader) => ({ bcb: readBcbConnectionConfig(reader), settings: readReceiveSettings(reader) }));
}

/**
 * The receive worker's `main` (not SQS-fed): reads the BCB's ICOM stream over mutual TLS and puts
 * every message, unverified, on the verify queue as `BcbMessageReceived`. Reads the BCB
 * connection like the transmit worker (`SELO_BCB_URL`, `SELO_BCB_CA`, `SELO_TLS_CERT`,
 * `SELO_TLS_KEY` | `SELO_TLS_KEY_LABEL`, `SELO_BCB_TIMEOUT_MS`: body timeout) and its own:
 * `SELO_RECEIVE_STREAMS` (1-6, default 6), `SELO_RECEIVE_POLL_TIMEOUT_MS` (wait for a stream
 * answer, longer than the BCB's long poll; default 60000), `SELO_RECEIVE_BACKOFF_BASE_MS` /
 * `SELO_RECEIVE_BACKOFF_MAX_MS` (default 500 / 30000), `SELO_RECEIVE_MAX_BODY_BYTES` (default
 * 32 MiB, after decompression too),
 * `SELO_RECEIVE_CLOSE_TIMEOUT_MS` (default 10000), `SELO_HEALTH_PORT` (default 8080),
 * `SELO_RECEIVE_RESUME_STREAMS` (default true: stream positions are kept in the saga table and a
 * restarted worker resumes its predecessor's streams, see `StreamReader`) and
 * `SELO_RECEIVE_LEASE_MS` (a stream slot's lease, default 3000; a crashed worker's streams are
 * resumed this long after its last renewal, so keep it well under the BCB's expiry of an
 * abandoned stream; short because the receiver is held to seconds: issue 15 asks for the first
 * outcome within 5 s of a restart. Each save renews it; a slot no save renewed for a third of it
 * is renewed by itself: up to 6 UpdateItem a second for 6 idle slots, none for busy ones).
 */
export async function startReceiveWorker(options: ReceiveWorkerOptions = {}): Promise<ReceiveWorker> {
  const env = options.env ?? process.env;
  const { config, bcb, settings } = readReceiveWorkerConfig(env);
  const logger = options.logger ?? createLogger({ name: 'selo.receive', level: config.logLevel });
  const topology = resolveTopology(config.environment);
  const queue = topology.queues.find((q) => q.key === 'verify');
  if (queue === undefined) throw new Error('the topology declares no verify queue');

  const clients = createAwsClients(config.aws);
  // One connection per stream (a long poll holds its connection) and one to spare.
  const http = new BcbHttpClient({ origin: bcb.url, tls: bcbTlsOptions(bcb), connections: settings.streams + 1, headersTimeoutMs: settings.pollTimeoutMs, bodyTimeoutMs: bcb.timeoutMs, ...(options.metrics === undefined ? {} : { metrics: options.metrics }) });
  const audit = options.outputs?.audit() ?? workerAuditProducer(clients, topology.auditStream.name, logger);
  let health: HealthServer | undefined;
  let icomReader: StreamReader | undefined;
  const cleanup = async (): Promise<void> => {
    const steps: [string, () => Promise<void> | void][] = [
      ['stream reader', () => icomReader?.close()],
      ['audit producer', () => audit.close()],
      ['bcb http client', () => http.close()],
      ['health server', () => health?.close()],
      ['aws clients', () => clients.destroy()],
    ];
    const errors: unknown[] = [];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        logger.error({ err: error, step: name }, 'receive worker cleanup step failed');
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'the receive worker did not close cleanly');
  };
  try {
    const queueUrl = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue.name }))).QueueUrl;
    if (queueUrl === undefined) throw new Error(`queue ${queue.name} has no URL`);
    const streamReader = new StreamReader({
      icom: new IcomStreamClient({ http, ispb: config.ispb, maxBodyBytes: settings.maxBodyBytes }),
      forward: createAnswerForwarder({
        queue: sqsVerifyQueuePort(clients.sqs, queueUrl),
        claimCheck: new S3ClaimCheckStore({ client: clients.s3, bucket: topology.payloadBucket }),
        audit,
        recent: new RecentResources(),
        logger,
      }),
      logger,
      streams: settings.streams,
      backoff: { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
      closeTimeoutMs: settings.closeTimeoutMs,
      ...(settings.resumeStreams
        ? {
            positions: new DynamoStreamPositions({
              client: clients.dynamodb,
              tableName: topology.sagaTable.name,
              ttlAttribute: topology.sagaTable.ttlAttribute,
              ispb: config.ispb,
              leaseMs: settings.leaseMs,
            }),
          }
        : {}),
    });
    icomReader = streamReader;
    health = await startHealthServer({
      port: settings.healthPort,
      checks: () => [
        { name: 'icom streams', check: () => ({ ok: streamReader.stats().streamsOpen > 0, detail: `${streamReader.stats().streamsOpen} of ${settings.streams} open` }) },
        { name: 'audit', check: () => ({ ok: audit.health().ok, detail: `${audit.health().buffered} buffered` }) },
      ],
    });
    streamReader.start();
    logger.info({ streams: settings.streams, ispb: config.ispb, queue: queue.name }, 'receive worker reading the ICOM stream');
    let closing: Promise<void> | undefined;
    const healthPort = health.port;
    return {
      healthPort,
      stats: () => streamReader.stats(),
      bcbStats: () => http.stats(),
      close() {
        closing ??= cleanup();
        return closing;
      },
    };
  } catch (error) {
    await cleanup().catch(() => undefined);
    throw error;
  }
}
