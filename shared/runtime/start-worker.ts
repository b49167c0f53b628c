import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { KinesisAuditProducer, kinesisPutRecordsPort } from '../audit/index.ts';
import type { AwsClients } from '../aws/index.ts';
import type { DataDecoder } from '../events/index.ts';
import type { Logger } from '../logging/index.ts';
import type { EnvReader } from '../config/index.ts';
import { coalescingPutEventsPort, EventBridgePublisher, eventBridgePutEventsPort } from './event-publisher.ts';
import type { EventPublisher } from './event-publisher.ts';
import type { ProcessOutputs, WorkerAuditSink } from './process-outputs.ts';
import type { Closeable, Handler, ReadinessCheck } from './types.ts';
import type { BackoffOptions } from './backoff.ts';
import { WorkerRuntime } from './worker-runtime.ts';
import { countingPublisher, NO_METRICS } from '../metrics/index.ts';
import type { Metrics } from '../metrics/index.ts';

/** What {@link startWorkerRuntime} needs: the worker's own parts and where it sits in the topology. */
export interface WorkerWiring<T> {
  /** Worker name (`sign`); its events' source is `selo.<name>`. */
  name: string;
  handler: Handler<T>;
  decode: DataDecoder<T>;
  clients: AwsClients;
  logger: Logger;
  /** The queue as the topology declares it. */
  queue: { key: string; name: string; dlqName: string; visibilityTimeoutSeconds: number; maxReceiveCount: number };
  eventBusName: string;
  auditStreamName: string;
  /** detail-type of the failure event of a permanent error. @defaultValue none */
  failureDetailType?: string;
  /** @defaultValue 8080 */
  healthPort?: number;
  /** @defaultValue 20 */
  waitTimeSeconds?: number;
  /** Independent pollers of the queue. @defaultValue 4 */
  pollers?: number;
  /** Closed after the runtime's own producers (e.g. an HSM pool or HTTP client it owns). @defaultValue [] */
  closeables?: readonly Closeable[];
  /** @defaultValue [] */
  checks?: readonly ReadinessCheck[];
  /** Backoff of transient failures. @defaultValue the runtime's */
  backoff?: BackoffOptions;
  /** The process's metrics: payments by outcome (from the published events) and stage latency. @defaultValue metrics off */
  metrics?: Metrics;
  /**
   * The worker's audit sink and publisher ({@link workerOutputs}): its own producer, or its view
   * of the process's shared one; the runtime flushes and closes it (a view's close leaves the
   * shared producer to its owner).
   * @defaultValue {@link workerAuditProducer} and {@link workerPublisher}, made here
   */
  outputs?: WorkerOutputs;
}

/** Where a worker publishes its events and writes its audit records. */
export interface WorkerOutputs {
  audit: WorkerAuditSink;
  publisher: EventPublisher;
}

/** Where the topology puts a worker's outputs (`resolveTopology`'s bus and audit stream). */
export interface OutputsTopology {
  eventBusName: string;
  auditStream: { name: string };
}

/**
 * A worker's outputs: views of the process's {@link ProcessOutputs} when it runs beside other
 * workers, or a producer and publisher of its own.
 */
export function workerOutputs(name: string, options: { clients: AwsClients; topology: OutputsTopology; logger: Logger; shared?: ProcessOutputs | undefined }): WorkerOutputs {
  const { shared, logger, topology } = options;
  if (shared !== undefined) return { audit: shared.audit(), publisher: shared.publisher(name, logger) };
  return { audit: workerAuditProducer(options.clients, topology.auditStream.name, logger), publisher: workerPublisher(options.clients, topology.eventBusName, name, logger) };
}

/** The Kinesis audit producer a worker writes its audit records with. */
export function workerAuditProducer(clients: AwsClients, auditStreamName: string, logger: Logger): KinesisAuditProducer {
  return new KinesisAuditProducer({ port: kinesisPutRecordsPort(clients.kinesis), streamName: auditStreamName, logger });
}

/** The EventBridge publisher of worker `name` (source `selo.<name>`; concurrent PutEvents coalesced). */
export function workerPublisher(clients: AwsClients, eventBusName: string, name: string, logger: Logger): EventBridgePublisher {
  return new EventBridgePublisher({ port: coalescingPutEventsPort(eventBridgePutEventsPort(clients.events)), eventBusName, defaultSource: `selo.${name}`, logger });
}

/**
 * Builds a worker's runtime from real clients, the same way for every worker: resolves its queue
 * and DLQ URLs, creates the EventBridge publisher and the Kinesis audit producer, and starts
 * polling. The caller owns `clients`.
 */
export async function startWorkerRuntime<T>(wiring: WorkerWiring<T>): Promise<WorkerRuntime<T>> {
  const { clients, queue, logger } = wiring;
  const url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue.name }))).QueueUrl;
  const dlqUrl = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue.dlqName }))).QueueUrl;
  if (url === undefined || dlqUrl === undefined) throw new Error(`queue ${queue.name} or its DLQ has no URL`);
  const { audit, publisher } = wiring.outputs ?? workerOutputs(wiring.name, { clients, topology: { eventBusName: wiring.eventBusName, auditStream: { name: wiring.auditStreamName } }, logger });
  const runtime = new WorkerRuntime<T>({
    name: wiring.name,
    handler: wiring.handler,
    decode: wiring.decode,
    sqs: clients.sqs,
    queue: { key: queue.key, url, dlqUrl, visibilityTimeoutSeconds: queue.visibilityTimeoutSeconds, maxReceiveCount: queue.maxReceiveCount },
    publisher: countingPublisher(publisher, wiring.metrics ?? NO_METRICS),
    audit,
    logger,
    ...(wiring.failureDetailType === undefined ? {} : { failureDetailType: wiring.failureDetailType }),
    waitTimeSeconds: wiring.waitTimeSeconds ?? 20,
    ...(wiring.pollers === undefined ? {} : { pollers: wiring.pollers }),
    closeables: [{ name: 'audit producer', close: () => audit.close() }, ...(wiring.closeables ?? [])],
    checks: wiring.checks ?? [],
    health: { port: wiring.healthPort ?? 8080 },
    ...(wiring.backoff === undefined ? {} : { backoff: wiring.backoff }),
    ...(wiring.metrics === undefined ? {} : { metrics: wiring.metrics }),
  });
  await runtime.start();
  return runtime;
}

/**
 * Reads the retry backoff of transient failures: `SELO_BACKOFF_BASE_SECONDS` (first delay,
 * doubled per receive, with jitter) and `SELO_BACKOFF_MAX_SECONDS` (cap, at most SQS's 12 h).
 */
export function readBackoff(reader: EnvReader): BackoffOptions {
  const baseSeconds = reader.integer('SELO_BACKOFF_BASE_SECONDS', { default: 2, min: 0, max: 43_200 });
  const maxSeconds = reader.integer('SELO_BACKOFF_MAX_SECONDS', { default: 300, min: 0, max: 43_200 });
  if (maxSeconds < baseSeconds) reader.problem('SELO_BACKOFF_MAX_SECONDS', `must not be below SELO_BACKOFF_BASE_SECONDS (${baseSeconds}), got ${maxSeconds}`);
  return { baseSeconds, maxSeconds };
}

/** What every worker process reads besides its own settings. */
export interface WorkerProcessConfig {
  /** `SELO_HEALTH_PORT`: health endpoint on 127.0.0.1 (0 = any free port). @defaultValue 8080 */
  healthPort: number;
  /** `SELO_SQS_WAIT_SECONDS`: SQS long-poll wait. @defaultValue 20 */
  waitTimeSeconds: number;
  /** `SELO_SQS_POLLERS`: independent pollers of the worker's queue (each receives up to 10). */
  pollers: number;
  /** `SELO_BACKOFF_BASE_SECONDS`, `SELO_BACKOFF_MAX_SECONDS`. */
  backoff: BackoffOptions;
}

/** Reads the settings every worker process shares into `reader` (problems collected there). */
export function readWorkerProcessConfig(reader: EnvReader): WorkerProcessConfig {
  return {
    healthPort: reader.integer('SELO_HEALTH_PORT', { default: 8080, min: 0, max: 65_535 }),
    waitTimeSeconds: reader.integer('SELO_SQS_WAIT_SECONDS', { default: 20, min: 0, max: 20 }),
    pollers: reader.integer('SELO_SQS_POLLERS', { default: 4, min: 1, max: 64 }),
    backoff: readBackoff(reader),
  };
}

/** A started SQS-fed worker: its runtime, its health port, and one idempotent `close`. */
export interface LaunchedWorker<T> {
  runtime: WorkerRuntime<T>;
  /** Port of the health endpoint (`/live`, `/ready`). */
  healthPort: number | undefined;
  /** Stops polling, drains, flushes, closes what the worker owns and destroys the clients; idempotent. */
  close(): Promise<void>;
}

/** What {@link launchQueueWorker} needs besides the worker's own parts. */
export interface LaunchQueueWorkerOptions<T> {
  /** Worker name: its queue's key in the topology, `selo.<name>` source. */
  name: string;
  /** The environment's topology (`resolveTopology`): the worker's queue, the bus, the audit stream. */
  topology: { eventBusName: string; auditStream: { name: string }; queues: readonly WorkerWiring<T>['queue'][] };
  /** SDK clients; destroyed by `close` (and if the start fails). */
  clients: AwsClients;
  logger: Logger;
  /** The settings every worker process shares ({@link readWorkerProcessConfig}). */
  processConfig: WorkerProcessConfig;
  /** The worker's own parts. */
  wiring: Pick<WorkerWiring<T>, 'handler' | 'decode' | 'failureDetailType' | 'closeables' | 'checks' | 'metrics' | 'outputs'>;
}

/**
 * The common end of every SQS-fed worker's `main`: finds its queue in the topology, starts the
 * runtime, and returns one idempotent `close` that also destroys the clients; if the start
 * fails, the clients are destroyed before the error is rethrown.
 */
export async function launchQueueWorker<T>(options: LaunchQueueWorkerOptions<T>): Promise<LaunchedWorker<T>> {
  const { clients, topology, name } = options;
  try {
    const queue = topology.queues.find((q) => q.key === name);
    if (queue === undefined) throw new Error(`the topology declares no ${name} queue`);
    const runtime = await startWorkerRuntime<T>({
      name,
      ...options.wiring,
      clients,
      logger: options.logger,
      queue,
      eventBusName: topology.eventBusName,
      auditStreamName: topology.auditStream.name,
      ...options.processConfig,
    });
    let closed = false;
    return {
      runtime,
      healthPort: runtime.healthPort,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await runtime.close();
        } finally {
          clients.destroy();
        }
      },
    };
  } catch (error) {
    clients.destroy();
    throw error;
  }
}
