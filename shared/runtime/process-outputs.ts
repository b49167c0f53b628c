import { KinesisAuditProducer } from '../audit/index.ts';
import type { AuditRecord, AuditSink, AuditSinkHealth, KinesisPutRecordsPort } from '../audit/index.ts';
import { TransientError } from '../errors/index.ts';
import type { Logger } from '../logging/index.ts';
import { coalescingPutEventsPort, EventBridgePublisher } from './event-publisher.ts';
import type { PutEventsPort } from './event-publisher.ts';

/** An audit sink a worker writes to and closes when it stops. */
export interface WorkerAuditSink extends AuditSink {
  close(): Promise<void>;
}

/** Options of {@link ProcessOutputs}. */
export interface ProcessOutputsOptions {
  /** Kinesis PutRecords (see `kinesisPutRecordsPort`); its client is the caller's, destroyed after {@link ProcessOutputs.close}. */
  putRecords: KinesisPutRecordsPort;
  /** EventBridge PutEvents, coalesced here (see `eventBridgePutEventsPort`). */
  putEvents: PutEventsPort;
  /** The audit stream (topology `auditStream.name`). */
  auditStreamName: string;
  /** selo's bus (topology `eventBusName`). */
  eventBusName: string;
  /** The producer's diagnostics. */
  logger: Logger;
  /** How long a worker's {@link WorkerAuditSink.close} waits for its own records, ms. @defaultValue 10000 (as a producer's own close) */
  workerCloseTimeoutMs?: number;
}

/**
 * One audit producer and one coalesced PutEvents port for all the workers of a process, as they
 * share one HSM pool: records and events that workers produce within the same few milliseconds
 * travel in one PutRecords and one PutEvents call instead of one per worker (figures in
 * docs/performance.md). Each worker gets its own publisher (its source, `selo.<name>`) and its own
 * view of the producer: the view's `flush` and `close` wait for that worker's records only (a
 * worker stopping while the others keep writing is not held up by their records), and `close`
 * waits at most `workerCloseTimeoutMs`, leaving what is still pending to the producer, whose owner
 * closes it after every worker stopped (rejecting, after its own wait, what Kinesis never took).
 */
export class ProcessOutputs {
  readonly #audit: KinesisAuditProducer;
  readonly #port: PutEventsPort;
  readonly #eventBusName: string;
  readonly #workerCloseTimeoutMs: number;

  constructor(options: ProcessOutputsOptions) {
    const timeout = options.workerCloseTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(timeout) || timeout < 0) throw new RangeError(`ProcessOutputsOptions.workerCloseTimeoutMs must be a non-negative integer, got ${String(options.workerCloseTimeoutMs)}`);
    this.#audit = new KinesisAuditProducer({ port: options.putRecords, streamName: options.auditStreamName, logger: options.logger });
    this.#port = coalescingPutEventsPort(options.putEvents);
    this.#eventBusName = options.eventBusName;
    this.#workerCloseTimeoutMs = timeout;
  }

  /** One worker's view of the process's producer (see the class). A closed view refuses records. */
  audit(): WorkerAuditSink {
    const producer = this.#audit;
    const closeTimeoutMs = this.#workerCloseTimeoutMs;
    // This worker's puts not yet settled, each as a promise that never rejects.
    const mine = new Set<Promise<void>>();
    let closed = false;
    const settled = (): Promise<void> => Promise.all([...mine]).then(() => undefined);
    return {
      put(records: readonly AuditRecord[]): Promise<void> {
        if (closed) return Promise.reject(new TransientError('AUDIT_PRODUCER_CLOSED', "this worker's audit sink is closed; the message will be retried"));
        const put = producer.put(records);
        const done = put.then(
          () => undefined,
          () => undefined,
        );
        mine.add(done);
        void done.then(() => mine.delete(done));
        return put;
      },
      flush: settled,
      health: (): AuditSinkHealth => producer.health(),
      async close(): Promise<void> {
        closed = true;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          settled(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, closeTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
      },
    };
  }

  /** The publisher of worker `name` (source `selo.<name>`) over the process's one PutEvents port. */
  publisher(name: string, logger: Logger): EventBridgePublisher {
    return new EventBridgePublisher({ port: this.#port, eventBusName: this.#eventBusName, defaultSource: `selo.${name}`, logger });
  }

  /**
   * Flushes and closes the producer (after every worker that writes to it stopped), waiting up to
   * `timeoutMs`; what is still buffered then is rejected to its callers.
   */
  close(timeoutMs = 10_000): Promise<void> {
    return this.#audit.close(timeoutMs);
  }
}
