import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer } from 'sqs-consumer';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { AuditSink } from '../audit/index.ts';
import type { DataDecoder } from '../events/index.ts';
import type { Logger } from '../logging/index.ts';
import { jitteredBackoff } from './backoff.ts';
import type { BackoffOptions } from './backoff.ts';
import type { EventPublisher } from './event-publisher.ts';
import type { Metrics } from '../metrics/index.ts';
import { startHealthServer, runChecks } from './health-server.ts';
import type { HealthReport, HealthServer } from './health-server.ts';
import { MessageProcessor } from './message-processor.ts';
import { sqsQueuePort } from './queue-port.ts';
import type { QueueAddress, QueuePort } from './queue-port.ts';
import type { Closeable, Handler, ReadinessCheck } from './types.ts';

/** The queue a runtime consumes: its addresses plus the topology's retry budget (HOUSE_STYLE 4). */
export interface RuntimeQueue extends QueueAddress {
  /** Topology `visibilityTimeoutSeconds`; also what each heartbeat extends the visibility to. */
  visibilityTimeoutSeconds: number;
  /** Topology `maxReceiveCount`. */
  maxReceiveCount: number;
}

/** Options of {@link WorkerRuntime}. */
export interface WorkerRuntimeOptions<T> {
  /** Worker name (`sign`), for logs and failure events. */
  name: string;
  handler: Handler<T>;
  /** Validates an incoming event's `data`; throw a PermanentError for bad input. */
  decode: DataDecoder<T>;
  sqs: SQSClient;
  queue: RuntimeQueue;
  publisher: EventPublisher;
  audit: AuditSink;
  logger: Logger;
  /** detail-type of the failure event for permanent failures. @defaultValue none */
  failureDetailType?: string;
  /** Messages per receive (≤10). @defaultValue 10 */
  batchSize?: number;
  /**
   * Independent pollers of the queue. A queue fed a message at a time returns small batches, so a
   * single poller leaves the worker idle while it waits for SQS.
   * @defaultValue 4
   */
  pollers?: number;
  /**
   * Messages handled at once at most (at least `batchSize`). A poller receives again as soon as
   * its batch has started, not when the batch's slowest message is done (sqs-consumer's way, under
   * which a message waited in the queue for an unrelated one); it receives only when a whole batch
   * more still fits under this cap, counting the places the other pollers' receives (long polls
   * included) hold, else it waits.
   * @defaultValue 2 × pollers × batchSize: the pollers' receives hold half, messages in flight
   *   take up to the other half and more while pollers wait
   */
  maxInFlight?: number;
  /** Long-poll wait. @defaultValue 20 */
  waitTimeSeconds?: number;
  /** Seconds between visibility extensions of a message in flight. @defaultValue a third of the visibility timeout */
  heartbeatIntervalSeconds?: number;
  /** Backoff of transient failures. @defaultValue {@link BackoffOptions} defaults */
  backoff?: BackoffOptions;
  /** Random source for jitter. @defaultValue Math.random */
  random?: () => number;
  /** Closed last, in order, at shutdown (HSM pool, audit producer). @defaultValue [] */
  closeables?: readonly Closeable[];
  /** Extra readiness checks (HSM). @defaultValue [] */
  checks?: readonly ReadinessCheck[];
  /** Health endpoint on 127.0.0.1; `false` for none. @defaultValue \{ port: 0 \} */
  health?: { port?: number; host?: string } | false;
  /** Time allowed for in-flight messages and producer flushes at close. @defaultValue 20000 */
  drainTimeoutMs?: number;
  /**
   * Pause of a poller after a failed receive (SQS unreachable, throttled, access denied), doubled
   * per consecutive failure up to `maxMs`, with jitter; back to no pause at the first answer.
   * sqs-consumer alone polls again at once, so with SQS unreachable every poller spun.
   * @defaultValue \{ initialMs: 200, maxMs: 10000 \}
   */
  receiveBackoff?: { initialMs?: number; maxMs?: number };
  /** Where the handled messages' stage latency is recorded. @defaultValue metrics off */
  metrics?: Metrics;
  /** Queue operations; replaced in tests. @defaultValue SQS through `sqs` */
  queuePort?: QueuePort;
}

/** Resolves or rejects with `promise`, or rejects after `ms` naming `what`. */
function withTimeout(promise: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * What made a receive fail, for `/ready`: sqs-consumer wraps every error in an SQSError whose
 * `code` is the AWS error name; a network failure's own code (ECONNREFUSED) is on its cause.
 */
function receiveErrorCode(error: Error): string {
  const { code, cause } = error as Error & { code?: unknown };
  const causeCode = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  if (typeof causeCode === 'string' && causeCode !== '') return causeCode;
  return typeof code === 'string' && code !== '' ? code : error.name;
}

function integerIn(field: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) {
    throw new RangeError(`WorkerRuntimeOptions.${field} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return chosen;
}

/**
 * A worker's long-lived loop (HOUSE_STYLE 1 and 7): polls its queue with sqs-consumer, extends
 * the visibility of messages in flight, hands each message to a {@link MessageProcessor} (so one
 * message's failure never touches its batch-mates), serves `/live` and `/ready`, and closes in
 * order: stop polling, finish in flight, flush the audit producer, close the closeables.
 */
export class WorkerRuntime<T> {
  readonly #options: WorkerRuntimeOptions<T>;
  readonly #processor: MessageProcessor<T>;
  readonly #consumers: readonly Consumer[];
  readonly #logger: Logger;
  readonly #drainTimeoutMs: number;
  #health: HealthServer | undefined;
  #started: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** The last receive error of each poller whose latest receive failed. */
  readonly #receiveErrors = new Map<Consumer, string>();
  readonly #receiveBackoff: { initialMs: number; maxMs: number };
  readonly #stopping = new AbortController();
  readonly #queuePort: QueuePort;
  readonly #maxInFlight: number;
  readonly #visibilitySeconds: number;
  readonly #heartbeatMs: number;
  /** How often the heartbeat looks at the messages in flight, ms. */
  readonly #heartbeatTickMs: number;
  /**
   * Messages being handled: when each was received or last made invisible again (ms), and the
   * extension under way, if any. The heartbeat's list; a message leaves it before its final queue
   * operation (QueuePort wrapped in the constructor).
   */
  readonly #received = new Map<Message, { since: number; extending: Promise<void> | undefined }>();
  /** Places under `maxInFlight` that pollers reserved for the receive they are making. */
  #reserved = 0;
  /** Pollers waiting for room for a batch; all are woken when a message ends, and check again. */
  #waitingForRoom: (() => void)[] = [];
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(options: WorkerRuntimeOptions<T>) {
    const visibility = integerIn('queue.visibilityTimeoutSeconds', options.queue.visibilityTimeoutSeconds, 30, 1, 43_200);
    integerIn('queue.maxReceiveCount', options.queue.maxReceiveCount, 1, 1, 1000);
    const batchSize = integerIn('batchSize', options.batchSize, 10, 1, 10);
    const waitTimeSeconds = integerIn('waitTimeSeconds', options.waitTimeSeconds, 20, 0, 20);
    const heartbeat = integerIn('heartbeatIntervalSeconds', options.heartbeatIntervalSeconds, Math.max(1, Math.floor(visibility / 3)), 1, Math.max(1, visibility - 1));
    this.#drainTimeoutMs = integerIn('drainTimeoutMs', options.drainTimeoutMs, 20_000, 0, 600_000);
    this.#options = options;
    this.#logger = options.logger.child({ worker: options.name, queue: options.queue.key });
    this.#queuePort = options.queuePort ?? sqsQueuePort(options.sqs, options.queue);
    this.#visibilitySeconds = visibility;
    this.#heartbeatMs = heartbeat * 1000;
    this.#heartbeatTickMs = Math.max(100, Math.min(1000, Math.floor(this.#heartbeatMs / 4)));
    // A message's final queue operation (deleted, backed off, released, dead-lettered) first takes
    // it off the heartbeat's list and waits for an extension under way, which would otherwise
    // override a backoff (a peer's Retry-After) with the full visibility timeout.
    const port = this.#queuePort;
    const leaveHeartbeat = async (message: Message): Promise<void> => {
      const entry = this.#received.get(message);
      this.#received.delete(message);
      await entry?.extending;
    };
    this.#processor = new MessageProcessor<T>({
      worker: options.name,
      handler: options.handler,
      decode: options.decode,
      queue: {
        delete: (message) => leaveHeartbeat(message).then(() => port.delete(message)),
        changeVisibility: (message, seconds) => leaveHeartbeat(message).then(() => port.changeVisibility(message, seconds)),
        sendToDeadLetter: (message, reason) => leaveHeartbeat(message).then(() => port.sendToDeadLetter(message, reason)),
      },
      publisher: options.publisher,
      audit: options.audit,
      logger: options.logger,
      maxReceiveCount: options.queue.maxReceiveCount,
      ...(options.failureDetailType === undefined ? {} : { failureDetailType: options.failureDetailType }),
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
      ...(options.random === undefined ? {} : { random: options.random }),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    });
    const pollers = integerIn('pollers', options.pollers, 4, 1, 64);
    this.#maxInFlight = integerIn('maxInFlight', options.maxInFlight, 2 * pollers * batchSize, batchSize, 10_000);
    const initialMs = integerIn('receiveBackoff.initialMs', options.receiveBackoff?.initialMs, 200, 1, 600_000);
    this.#receiveBackoff = { initialMs, maxMs: integerIn('receiveBackoff.maxMs', options.receiveBackoff?.maxMs, Math.max(initialMs, 10_000), initialMs, 600_000) };
    this.#consumers = Array.from({ length: pollers }, () => this.#createConsumer(options, batchSize, waitTimeSeconds, visibility));
  }

  /**
   * Waits until a batch of `batchSize` more fits under `maxInFlight`, counting the places other
   * pollers reserved for their receives, then reserves them. Ends at once when the runtime closes.
   */
  async #reserveRoom(batchSize: number): Promise<void> {
    while (this.#processor.inFlight + this.#reserved + batchSize > this.#maxInFlight && !this.#stopping.signal.aborted) {
      await new Promise<void>((resolve) => this.#waitingForRoom.push(resolve));
    }
    this.#reserved += batchSize;
  }

  /** Gives back `places` reserved and not used; wakes the pollers waiting for room. */
  #release(places: number): void {
    this.#reserved -= places;
    for (const wake of this.#waitingForRoom.splice(0)) wake();
  }

  /**
   * Starts handling `message` (the processor deletes, retries or dead-letters it; until then the
   * heartbeat keeps it invisible) without waiting for it to end.
   */
  #admit(message: Message): void {
    this.#received.set(message, { since: Date.now(), extending: undefined });
    this.#processor
      .process(message)
      .catch((error: unknown) => this.#logger.error({ err: error, messageId: message.MessageId }, 'unexpected processing error'))
      .finally(() => {
        this.#received.delete(message);
        this.#release(0);
      });
  }

  /**
   * Extends the visibility of every message handled for longer than a heartbeat interval, so a
   * slow one (an HSM or a BCB that takes its time) is not delivered a second time meanwhile. A
   * failed extension is logged: at worst the message is redelivered, which the sagas make harmless.
   */
  #extendVisibility(): void {
    const now = Date.now();
    for (const [message, entry] of this.#received) {
      // Due within the next tick counts as due: no message goes longer than a heartbeat interval
      // unextended, even with an interval just under the visibility timeout.
      if (entry.extending !== undefined || now - entry.since + this.#heartbeatTickMs < this.#heartbeatMs) continue;
      const since = entry.since;
      entry.since = now;
      entry.extending = this.#queuePort.changeVisibility(message, this.#visibilitySeconds).then(
        () => {
          entry.extending = undefined;
        },
        (error: unknown) => {
          entry.extending = undefined;
          // Tried again at the next tick, not an interval later.
          entry.since = since;
          if (this.#received.has(message)) this.#logger.warn({ err: error, messageId: message.MessageId }, 'could not extend the visibility of a message in flight');
        },
      );
    }
  }

  #createConsumer(options: WorkerRuntimeOptions<T>, batchSize: number, waitTimeSeconds: number, visibility: number): Consumer {
    // Consecutive failed receives of this poller, and the pause before its next receive. The
    // pause is taken in preReceiveMessageCallback (sqs-consumer's own pollingWaitTimeMs is read
    // when a poll starts, so it would pause one poll late, also after SQS answered again).
    let failures = 0;
    let pauseMs = 0;
    // Places this poller reserved for its receive and not yet taken by a message.
    let reservedHere = 0;
    const received = (): void => {
      const unused = reservedHere;
      reservedHere = 0;
      this.#release(unused);
    };
    const answered = (): void => {
      received();
      this.#receiveErrors.delete(consumer);
      if (failures === 0) return;
      this.#logger.info({ failures }, 'SQS receive recovered');
      failures = 0;
      pauseMs = 0;
    };
    const consumer = Consumer.create({
      queueUrl: options.queue.url,
      sqs: options.sqs,
      batchSize,
      waitTimeSeconds,
      visibilityTimeout: visibility,
      // No heartbeatInterval: handleMessage returns before the message is done (#admit), so the
      // runtime extends the visibility itself (#extendVisibility).
      // SentTimestamp: the queue wait in each message's 'message handled' line.
      messageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      messageAttributeNames: ['All'],
      // The processor deletes, backs off and dead-letters itself: deletion must wait for the
      // events and audit records, and each message's fate is decided alone.
      shouldDeleteMessages: false,
      // Ended early by close(): the receive it precedes is aborted anyway.
      preReceiveMessageCallback: async () => {
        if (pauseMs > 0) await sleep(pauseMs, undefined, { signal: this.#stopping.signal });
        await this.#reserveRoom(batchSize);
        reservedHere = batchSize;
      },
      handleMessage: (message) => {
        if (reservedHere > 0) {
          reservedHere -= 1;
          this.#reserved -= 1;
        }
        this.#admit(message);
        return Promise.resolve(undefined);
      },
    });
    consumer.on('error', (error, message) => {
      if (message === undefined) {
        received();
        // Receives aborted by close() are the shutdown working, not a failure.
        if (this.#closing !== undefined) return;
        this.#receiveErrors.set(consumer, receiveErrorCode(error));
        failures += 1;
        pauseMs = Math.max(1, jitteredBackoff(failures, this.#receiveBackoff.initialMs, this.#receiveBackoff.maxMs, this.#options.random));
        // Logged on the 1st, 2nd, 4th, 8th… failure in a row: an outage is visible without a line per poll.
        if ((failures & (failures - 1)) === 0) this.#logger.warn({ err: error, failures, nextReceiveInMs: pauseMs }, 'SQS receive failed');
      } else {
        this.#logger.debug({ err: error }, 'SQS call about a message failed');
      }
    });
    consumer.on('processing_error', (error) => this.#logger.error({ err: error }, 'unexpected processing error'));
    consumer.on('timeout_error', (error) => this.#logger.error({ err: error }, 'handler timed out'));
    consumer.on('response_processed', answered);
    consumer.on('empty', answered);
    return consumer;
  }

  /** The health endpoint's port, once started (undefined without one). */
  get healthPort(): number | undefined {
    return this.#health?.port;
  }

  /** Messages being processed now. */
  get inFlight(): number {
    return this.#processor.inFlight;
  }

  /** Starts the health endpoint and polling. Idempotent. */
  start(): Promise<void> {
    this.#started ??= (async () => {
      if (this.#options.health !== false) {
        const health = this.#options.health ?? {};
        this.#health = await startHealthServer({
          ...(health.host === undefined ? {} : { host: health.host }),
          ...(health.port === undefined ? {} : { port: health.port }),
          checks: () => this.#checks(),
        });
      }
      this.#heartbeat = setInterval(() => this.#extendVisibility(), this.#heartbeatTickMs);
      this.#heartbeat.unref();
      for (const consumer of this.#consumers) consumer.start();
      this.#logger.info({ healthPort: this.#health?.port }, 'worker started');
    })();
    return this.#started;
  }

  /** Runs the readiness checks: SQS polling, the audit producer, and the injected ones. */
  ready(): Promise<HealthReport> {
    return runChecks(this.#checks());
  }

  #checks(): ReadinessCheck[] {
    return [
      {
        name: 'sqs',
        check: () => {
          const running = this.#consumers.every((consumer) => consumer.status.isRunning) && this.#closing === undefined;
          if (!running) return { ok: false, detail: 'not polling' };
          // Any poller failing fails the check: a healthy one does not hide a failing one.
          const [failing] = this.#receiveErrors.values();
          return failing === undefined ? { ok: true } : { ok: false, detail: `receive failing: ${failing}` };
        },
      },
      {
        name: 'audit',
        check: () => {
          const h = this.#options.audit.health();
          return { ok: h.ok, detail: `${h.buffered} buffered${h.lastError === undefined ? '' : `, last error ${h.lastError}`}` };
        },
      },
      ...(this.#options.checks ?? []),
    ];
  }

  /**
   * Stops polling, waits for messages in flight (up to `drainTimeoutMs`), flushes the audit
   * producer, closes the closeables and the health endpoint. Idempotent; every step runs even if
   * an earlier one failed; the failures are thrown together at the end.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const failures: unknown[] = [];
      const step = async (name: string, action: () => Promise<unknown>): Promise<void> => {
        try {
          await action();
        } catch (error) {
          failures.push(error);
          this.#logger.error({ err: error, step: name }, 'close step failed');
        }
      };
      this.#logger.info({ inFlight: this.#processor.inFlight }, 'closing');
      // Abort the long poll (and a poller's pause) so close does not wait up to 20 s for it.
      this.#stopping.abort();
      await step('stop polling', () => Promise.resolve(this.#consumers.forEach((consumer) => consumer.stop({ abort: true }))));
      // Pollers waiting for room receive nothing more.
      this.#release(0);
      await step('drain', async () => {
        if (!(await this.#processor.drain(this.#drainTimeoutMs))) throw new Error(`messages still in flight after ${this.#drainTimeoutMs} ms`);
      });
      // Kept beating through the drain: the messages finishing are still invisible.
      clearInterval(this.#heartbeat);
      // Bounded: with Kinesis unreachable a flush never ends, and the closeables after it (the
      // HSM pool, HTTP clients) must still close. What is not flushed belongs to messages that
      // were not deleted, so it is written again on redelivery.
      await step('flush audit', () => withTimeout(this.#options.audit.flush(), this.#drainTimeoutMs, 'audit flush'));
      for (const closeable of this.#options.closeables ?? []) await step(`close ${closeable.name}`, () => closeable.close());
      await step('close health endpoint', () => this.#health?.close() ?? Promise.resolve());
      this.#logger.info({ failures: failures.length }, 'closed');
      if (failures.length > 0) throw new AggregateError(failures, `worker ${this.#options.name} did not close cleanly`);
    })();
    return this.#closing;
  }
}
