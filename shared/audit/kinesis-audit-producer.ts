import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { PermanentError, TransientError, classifyError } from '../errors/index.ts';
import type { Logger } from '../logging/index.ts';
import { auditPartitionKey } from './audit-record.ts';
import type { AuditRecord } from './audit-record.ts';

/** Kinesis limits (Kinesis API reference, PutRecords): 500 records and 5 MiB per request, 1 MiB per record. */
export const KINESIS_LIMITS = { recordsPerRequest: 500, bytesPerRequest: 5 * 1024 * 1024, bytesPerRecord: 1024 * 1024 } as const;

/** One record as the port sends it. */
export interface KinesisEntry {
  data: Uint8Array;
  partitionKey: string;
}

/**
 * The one Kinesis call the producer makes. The result has one slot per entry, in order:
 * undefined when accepted, the error code when rejected. A thrown error means the whole request
 * failed.
 */
export interface KinesisPutRecordsPort {
  putRecords(streamName: string, entries: readonly KinesisEntry[]): Promise<readonly (string | undefined)[]>;
}

/** The port over the real SDK client. */
export function kinesisPutRecordsPort(client: KinesisClient): KinesisPutRecordsPort {
  return {
    async putRecords(streamName, entries) {
      const output = await client.send(
        new PutRecordsCommand({ StreamName: streamName, Records: entries.map((e) => ({ Data: e.data, PartitionKey: e.partitionKey })) }),
      );
      const results = output.Records ?? [];
      return entries.map((_, i) => {
        const result = results[i];
        if (result === undefined) return 'MissingResult';
        return result.ErrorCode === undefined || result.ErrorCode === null ? undefined : result.ErrorCode;
      });
    },
  };
}

/** Where audit records go; the runtime depends on this, not on Kinesis. */
export interface AuditSink {
  /** Resolves once every record was accepted; rejects only when the sink closes first. */
  put(records: readonly AuditRecord[]): Promise<void>;
  /** Resolves when nothing is buffered or in flight. */
  flush(): Promise<void>;
  /** Whether the sink currently delivers (for readiness). */
  health(): AuditSinkHealth;
}

/** What {@link AuditSink.health} reports. */
export interface AuditSinkHealth {
  /** False after `unhealthyAfterFailures` consecutive failed requests, or once closed. */
  ok: boolean;
  /** Records waiting to be accepted. */
  buffered: number;
  /** Failed requests since the last success. */
  consecutiveFailures: number;
  /** Code or name of the last failure, if any. */
  lastError: string | undefined;
}

/** Options of {@link KinesisAuditProducer}. */
export interface KinesisAuditProducerOptions {
  /** The Kinesis call (see {@link kinesisPutRecordsPort}). */
  port: KinesisPutRecordsPort;
  /** The audit stream's name (topology `auditStream.name`). */
  streamName: string;
  /** Diagnostic logger. */
  logger?: Logger;
  /** Records per PutRecords request. @defaultValue 500 (Kinesis maximum) */
  maxBatchRecords?: number;
  /** Bytes (data + partition keys) per PutRecords request. @defaultValue 5 MiB (Kinesis maximum) */
  maxBatchBytes?: number;
  /** How long records wait for batch-mates before a request goes out. @defaultValue 5 */
  lingerMs?: number;
  /** Records buffered at most; `put` waits for room beyond it (backpressure). @defaultValue 10000 */
  maxBufferedRecords?: number;
  /** First retry delay after a failed request or failed records. @defaultValue 100 */
  retryBaseDelayMs?: number;
  /** Longest retry delay. @defaultValue 5000 */
  retryMaxDelayMs?: number;
  /** Consecutive failures after which health reports not ok. @defaultValue 3 */
  unhealthyAfterFailures?: number;
  /** Random source for jitter, in [0, 1). @defaultValue Math.random */
  random?: () => number;
}

interface Group {
  remaining: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Entry {
  entry: KinesisEntry;
  size: number;
  group: Group;
}

function positiveInteger(field: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 0 || chosen > max) {
    throw new RangeError(`KinesisAuditProducerOptions.${field} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
  return chosen;
}

/**
 * Writes audit records to Kinesis in PutRecords batches (≤500 records, ≤5 MiB), retrying failed
 * records and failed requests with exponential backoff and jitter until they are accepted. It never
 * drops a record: `put` resolves only when its records were accepted, so a caller that deletes its
 * SQS message after `put` keeps the message (and its redelivery) for as long as Kinesis is down.
 * Buffering is bounded: `put` waits for room when `maxBufferedRecords` are pending.
 */
export class KinesisAuditProducer implements AuditSink {
  readonly #port: KinesisPutRecordsPort;
  readonly #streamName: string;
  readonly #logger: Logger | undefined;
  readonly #maxBatchRecords: number;
  readonly #maxBatchBytes: number;
  readonly #lingerMs: number;
  readonly #maxBuffered: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #unhealthyAfter: number;
  readonly #random: () => number;
  #pending: Entry[] = [];
  #inFlight = 0;
  #sending = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #consecutiveFailures = 0;
  #lastError: string | undefined;
  #closed = false;

  constructor(options: KinesisAuditProducerOptions) {
    if (options.streamName === '') throw new RangeError('KinesisAuditProducerOptions.streamName must not be empty, got ""');
    this.#port = options.port;
    this.#streamName = options.streamName;
    this.#logger = options.logger;
    this.#maxBatchRecords = positiveInteger('maxBatchRecords', options.maxBatchRecords, KINESIS_LIMITS.recordsPerRequest, KINESIS_LIMITS.recordsPerRequest) || 1;
    this.#maxBatchBytes = positiveInteger('maxBatchBytes', options.maxBatchBytes, KINESIS_LIMITS.bytesPerRequest, KINESIS_LIMITS.bytesPerRequest);
    this.#lingerMs = positiveInteger('lingerMs', options.lingerMs, 5);
    this.#maxBuffered = positiveInteger('maxBufferedRecords', options.maxBufferedRecords, 10_000) || 1;
    this.#baseDelay = positiveInteger('retryBaseDelayMs', options.retryBaseDelayMs, 100);
    this.#maxDelay = positiveInteger('retryMaxDelayMs', options.retryMaxDelayMs, 5_000);
    this.#unhealthyAfter = positiveInteger('unhealthyAfterFailures', options.unhealthyAfterFailures, 3) || 1;
    this.#random = options.random ?? Math.random;
  }

  /** {@inheritDoc AuditSink.put} */
  async put(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.#closed) throw new TransientError('AUDIT_PRODUCER_CLOSED', 'audit producer is closed; the message will be retried');
    const entries = records.map((record) => {
      const data = Buffer.from(JSON.stringify(record), 'utf8');
      const partitionKey = auditPartitionKey(record);
      const size = data.byteLength + Buffer.byteLength(partitionKey, 'utf8');
      if (size > KINESIS_LIMITS.bytesPerRecord) {
        throw new PermanentError('AUDIT_RECORD_TOO_LARGE', `audit record ${record.record_id} is ${size} bytes; Kinesis accepts at most ${KINESIS_LIMITS.bytesPerRecord}`, {
          details: { recordId: record.record_id, size },
        });
      }
      return { data, partitionKey, size };
    });
    // Backpressure: wait while the buffer is full (a put larger than the buffer waits for it to empty).
    while (!this.#closed && this.#pending.length > 0 && this.#pending.length + entries.length > this.#maxBuffered) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    if (this.#closed) throw new TransientError('AUDIT_PRODUCER_CLOSED', 'audit producer closed before the records were accepted');
    return new Promise<void>((resolve, reject) => {
      const group: Group = { remaining: entries.length, resolve, reject };
      for (const e of entries) this.#pending.push({ entry: { data: e.data, partitionKey: e.partitionKey }, size: e.size, group });
      this.#schedule();
    });
  }

  /** {@inheritDoc AuditSink.flush} */
  flush(): Promise<void> {
    if (this.#pending.length === 0 && this.#inFlight === 0) return Promise.resolve();
    this.#schedule(true);
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** {@inheritDoc AuditSink.health} */
  health(): AuditSinkHealth {
    return {
      ok: !this.#closed && this.#consecutiveFailures < this.#unhealthyAfter,
      buffered: this.#pending.length + this.#inFlight,
      consecutiveFailures: this.#consecutiveFailures,
      lastError: this.#lastError,
    };
  }

  /**
   * Stops accepting records, waits up to `timeoutMs` for the buffer to drain, then rejects what is
   * still pending with a transient error (the callers' SQS messages stay and are redelivered).
   * Idempotent.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.flush().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#wake?.();
    for (const waiter of this.#roomWaiters.splice(0)) waiter();
    if (!drained) this.#abandonPending();
  }

  #abandonPending(): void {
    if (this.#pending.length === 0) return;
    const error = new TransientError('AUDIT_NOT_DELIVERED', 'audit producer closed before Kinesis accepted the records');
    const groups = new Set(this.#pending.map((p) => p.group));
    this.#logger?.warn({ records: this.#pending.length, groups: groups.size }, 'audit producer closed with records not accepted');
    this.#pending = [];
    for (const group of groups) group.reject(error);
    for (const waiter of this.#idleWaiters.splice(0)) waiter();
  }

  #schedule(now = false): void {
    if (this.#sending) return;
    if (this.#timer !== undefined) {
      if (!now && this.#pending.length < this.#maxBatchRecords) return;
      clearTimeout(this.#timer);
    }
    const delay = now || this.#pending.length >= this.#maxBatchRecords ? 0 : this.#lingerMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#drain();
    }, delay);
  }

  #takeBatch(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    while (batch.length < this.#maxBatchRecords) {
      const next = this.#pending[0];
      if (next === undefined || (batch.length > 0 && bytes + next.size > this.#maxBatchBytes)) break;
      this.#pending.shift();
      batch.push(next);
      bytes += next.size;
    }
    return batch;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #backoff(): number {
    const exponential = Math.min(this.#maxDelay, this.#baseDelay * 2 ** Math.min(this.#consecutiveFailures - 1, 20));
    return exponential / 2 + this.#random() * (exponential / 2);
  }

  async #drain(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const batch = this.#takeBatch();
        this.#inFlight = batch.length;
        let failed: Entry[];
        try {
          const results = await this.#port.putRecords(this.#streamName, batch.map((b) => b.entry));
          failed = batch.filter((_, i) => results[i] !== undefined);
          if (failed.length > 0) {
            this.#lastError = results.find((r) => r !== undefined);
          }
        } catch (error) {
          failed = batch;
          this.#lastError = error instanceof Error ? error.name : classifyError(error).code;
        }
        for (const done of batch) {
          if (failed.includes(done)) continue;
          done.group.remaining -= 1;
          if (done.group.remaining === 0) done.group.resolve();
        }
        this.#inFlight = 0;
        // Failed records go back to the front: they are retried before newer ones, keeping the
        // per-partition order Kinesis readers expect as far as possible.
        this.#pending.unshift(...failed);
        for (const waiter of this.#roomWaiters.splice(0)) waiter();
        if (failed.length > 0) {
          this.#consecutiveFailures += 1;
          const delay = this.#backoff();
          this.#logger?.warn({ failed: failed.length, of: batch.length, error: this.#lastError, retryInMs: Math.round(delay) }, 'audit records not accepted; retrying');
          await this.#sleep(delay);
        } else {
          this.#consecutiveFailures = 0;
        }
      }
    } finally {
      this.#sending = false;
      // A request that was in flight when close gave up: its failures can no longer be retried.
      if (this.#closed) this.#abandonPending();
      if (this.#pending.length === 0) {
        for (const waiter of this.#idleWaiters.splice(0)) waiter();
      }
    }
  }
}
