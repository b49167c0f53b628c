import type { AuditRecord } from '../audit/index.ts';
import type { Message } from '@aws-sdk/client-sqs';
import type { AuditSink } from '../audit/index.ts';
import { classifyError } from '../errors/index.ts';
import type { ErrorClassification } from '../errors/index.ts';
import { decodeEventBody, deriveDetail } from '../events/index.ts';
import type { DataDecoder, EventEnvelope } from '../events/index.ts';
import type { Logger } from '../logging/index.ts';
import { visibilityBackoffSeconds } from './backoff.ts';
import type { BackoffOptions } from './backoff.ts';
import type { EventPublisher } from './event-publisher.ts';
import { NO_METRICS, recordStage } from '../metrics/index.ts';
import type { Metrics } from '../metrics/index.ts';
import type { QueuePort } from './queue-port.ts';
import type { Handler } from './types.ts';

/** What became of one message. */
export type ProcessResult =
  /** Handled; its events and audit records were accepted; deleted. */
  | 'deleted'
  /** Failed transiently; hidden for a backoff and left for redelivery. */
  | 'retried'
  /** Failed permanently (or ran out of receives); failure event published, moved to the DLQ. */
  | 'dead-lettered'
  /** Arrived while the runtime was closing; made visible again at once. */
  | 'released';

/** Data of the failure event the runtime publishes for a permanent failure. */
export interface FailureEventData {
  /** The error's stable code. */
  code: string;
  /** A message safe to show operators. */
  reason: string;
  /** The fact whose handling failed. */
  failedDetailType: string;
  /** The worker that failed. */
  worker: string;
}

/** Options of {@link MessageProcessor}. */
export interface MessageProcessorOptions<T> {
  /** Worker name, for logs and failure events. */
  worker: string;
  handler: Handler<T>;
  /** Validates an event's `data`. */
  decode: DataDecoder<T>;
  queue: QueuePort;
  publisher: EventPublisher;
  audit: AuditSink;
  logger: Logger;
  /** The queue's receive budget (topology); a transient failure on the last receive is final. */
  maxReceiveCount: number;
  /**
   * detail-type of the failure event published before a permanent failure leaves the queue
   * (`SigningFailed`, `TransmissionFailed`). @defaultValue none: no failure event
   */
  failureDetailType?: string;
  /** Visibility backoff after transient failures. @defaultValue {@link BackoffOptions} defaults */
  backoff?: BackoffOptions;
  /** Random source for jitter. @defaultValue Math.random */
  random?: () => number;
  /** Where the stage latency of each handled message is recorded ({@link recordStage}). @defaultValue metrics off */
  metrics?: Metrics;
}

/**
 * An error that carries the audit records of the attempt that failed (a request sent, an answer
 * received): the runtime writes them before it backs off or dead-letters the message.
 */
export interface AuditedFailure {
  readonly auditRecords: readonly AuditRecord[];
}

/** The audit records an error carries, if any. */
export function auditRecordsOf(error: unknown): readonly AuditRecord[] {
  if (typeof error === 'object' && error !== null && 'auditRecords' in error && Array.isArray(error.auditRecords)) {
    return error.auditRecords as readonly AuditRecord[];
  }
  return [];
}

/** Attaches audit records to an error (see {@link AuditedFailure}) and returns it. */
export function withAuditRecords<E>(error: E, records: readonly AuditRecord[]): E {
  if (typeof error === 'object' && error !== null && records.length > 0) {
    Object.defineProperty(error, 'auditRecords', { value: [...auditRecordsOf(error), ...records], enumerable: false, configurable: true });
  }
  return error;
}

/** SQS ChangeMessageVisibility maximum: 12 hours (SQS API reference). */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

/** Error code of a transient failure that used the queue's last receive. */
export const RETRY_BUDGET_EXHAUSTED = 'RETRY_BUDGET_EXHAUSTED';

/**
 * The runtime's decisions for one SQS message, independent of polling (HOUSE_STYLE 1): decode,
 * run the handler, publish events and audit records, and only then delete; back off transient
 * failures through the visibility timeout; send permanent failures, with a failure event, to the
 * DLQ with their reason. `process` never throws: each message's fate is its own (HOUSE_STYLE 3).
 */
export class MessageProcessor<T> {
  readonly #options: MessageProcessorOptions<T>;
  readonly #inFlight = new Set<Promise<ProcessResult>>();
  readonly #abort = new AbortController();
  #closing = false;

  constructor(options: MessageProcessorOptions<T>) {
    if (!Number.isSafeInteger(options.maxReceiveCount) || options.maxReceiveCount < 1) {
      throw new RangeError(`MessageProcessorOptions.maxReceiveCount must be a positive integer, got ${String(options.maxReceiveCount)}`);
    }
    if (options.worker === '') throw new RangeError('MessageProcessorOptions.worker must not be empty, got ""');
    this.#options = options;
  }

  /** Messages being processed now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Handles one message to its end (see {@link ProcessResult}). */
  process(message: Message): Promise<ProcessResult> {
    const work = this.#process(message);
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  }

  /**
   * Stops taking new messages (they are released) and waits up to `timeoutMs` for those in
   * flight; then aborts the handlers' signal. Resolves true when everything finished in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.#inFlight]).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) this.#abort.abort(new Error('runtime closing'));
    return finished;
  }

  async #process(message: Message): Promise<ProcessResult> {
    const { logger: baseLogger, worker, maxReceiveCount } = this.#options;
    const messageId = message.MessageId ?? '(none)';
    const receiveCount = Math.max(1, Number(message.Attributes?.ApproximateReceiveCount ?? '1') || 1);
    let logger = baseLogger.child({ worker, messageId, receiveCount });
    if (this.#closing) {
      await this.#safely(logger, 'release', () => this.#options.queue.changeVisibility(message, 0));
      return 'released';
    }
    // Kept once the envelope decodes, so a failure of `data` still yields a correlated failure event.
    let envelope: EventEnvelope<unknown> | undefined;
    const started = performance.now();
    // How long the message waited in its queue (SQS's SentTimestamp: when the bus delivered it).
    const sentAt = Number(message.Attributes?.SentTimestamp);
    const queueMs = Number.isFinite(sentAt) ? Math.max(0, Date.now() - sentAt) : undefined;
    let handled = started;
    let published = started;
    try {
      envelope = decodeEventBody(message.Body, (data) => data, messageId);
      const { detail } = envelope;
      logger = logger.child({
        detailType: envelope.detailType,
        sagaId: detail.sagaId,
        endToEndId: detail.endToEndId,
        bizMsgIdr: detail.bizMsgIdr,
        requestId: detail.requestId,
        traceparent: detail.traceparent,
      });
      const event: EventEnvelope<T> = { ...envelope, detail: { ...detail, data: this.#options.decode(detail.data, envelope.detailType) } };
      const outcome = await this.#options.handler(
        { event, sqs: { messageId, receiveCount } },
        { logger, attempt: receiveCount, maxReceiveCount, signal: this.#abort.signal },
      );
      handled = performance.now();
      // Deletion waits for both: an EventBridge or Kinesis outage keeps the message (DESIGN §1).
      const settled = await Promise.allSettled([this.#options.publisher.publish(outcome.events), this.#options.audit.put(outcome.audit)]);
      const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
      published = performance.now();
      recordStage(this.#options.metrics ?? NO_METRICS, this.#options.worker, { time: envelope.time, data: detail.data }, outcome.events, Date.now());
    } catch (error) {
      // What a failed attempt did (e.g. a request that may have reached the BCB) is audited too.
      await this.#auditAttempt(error, logger);
      const classification = classifyError(error);
      if (classification.retryability === 'transient' && receiveCount < maxReceiveCount) {
        return this.#retry(message, receiveCount, classification, logger, error);
      }
      const final: ErrorClassification =
        classification.retryability === 'transient'
          ? { retryability: 'permanent', code: RETRY_BUDGET_EXHAUSTED, message: `${classification.code} on receive ${receiveCount} of ${maxReceiveCount}: ${classification.message}` }
          : classification;
      return this.#deadLetter(message, receiveCount, final, envelope, logger, error);
    }
    try {
      await this.#options.queue.delete(message);
    } catch (error) {
      // The effects happened; the message will be redelivered and the saga makes that harmless.
      logger.warn({ err: error }, 'handled but not deleted; it will be redelivered');
      return 'retried';
    }
    // Where the time went, for operators looking at latency: the wait in the queue, the handler,
    // publishing the events and audit records, and the deletion.
    const done = performance.now();
    logger.info({ ...(queueMs === undefined ? {} : { queueMs }), handlerMs: Math.round(handled - started), publishMs: Math.round(published - handled), deleteMs: Math.round(done - published) }, 'message handled');
    return 'deleted';
  }

  async #auditAttempt(error: unknown, logger: Logger): Promise<void> {
    const records = auditRecordsOf(error);
    if (records.length === 0) return;
    // Best effort within this receive: if Kinesis refuses, the failure is logged and the message
    // is retried or dead-lettered all the same (its next attempt is audited again).
    await this.#safely(logger, 'audit failed attempt', () => this.#options.audit.put(records));
  }

  async #retry(message: Message, receiveCount: number, classification: ErrorClassification, logger: Logger, error: unknown): Promise<ProcessResult> {
    // A peer's Retry-After (e.g. ICOM's 429, whose token bucket refills at a known rate) is a
    // floor: retrying sooner only spends a receive on a certain refusal. Capped at SQS's maximum.
    const backoff = visibilityBackoffSeconds(receiveCount, this.#options.backoff, this.#options.random);
    const seconds = Math.max(backoff, Math.min(Math.ceil(classification.retryAfterSeconds ?? 0), SQS_MAX_VISIBILITY_SECONDS));
    logger.warn({ code: classification.code, reason: classification.message, retryInSeconds: seconds, err: error }, 'transient failure; backing off');
    await this.#safely(logger, 'back off', () => this.#options.queue.changeVisibility(message, seconds));
    return 'retried';
  }

  async #deadLetter(
    message: Message,
    receiveCount: number,
    classification: ErrorClassification,
    event: EventEnvelope<unknown> | undefined,
    logger: Logger,
    error: unknown,
  ): Promise<ProcessResult> {
    logger.error({ code: classification.code, reason: classification.message, err: error }, 'permanent failure; leaving the queue');
    try {
      const failureDetailType = this.#options.failureDetailType;
      if (event !== undefined && failureDetailType !== undefined) {
        const data: FailureEventData = { code: classification.code, reason: classification.message, failedDetailType: event.detailType, worker: this.#options.worker };
        await this.#options.publisher.publish([{ detailType: failureDetailType, detail: deriveDetail(event.detail, data, { attempt: receiveCount }) }]);
      }
      await this.#options.queue.sendToDeadLetter(message, { code: classification.code, reason: classification.message });
      await this.#options.queue.delete(message);
      return 'dead-lettered';
    } catch (handOffError) {
      // Never dropped: the message stays in its queue and the hand-off is tried again on the next
      // receive; SQS's own redrive takes it to the DLQ if this keeps failing.
      logger.warn({ err: handOffError }, 'could not hand the failure off; retrying later');
      return this.#retry(message, receiveCount, classifyError(handOffError), logger, handOffError);
    }
  }

  async #safely(logger: Logger, what: string, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      logger.warn({ err: error }, `could not ${what} the message; its visibility timeout will expire`);
    }
  }
}
