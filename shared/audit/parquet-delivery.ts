import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../logging/index.ts';
import { hasMore } from './audit-stream-reader.ts';
import { AuditParquetWriter } from './audit-parquet.ts';
import { auditPartitionPrefix, hourPath, objectTimestamp, parseAuditRecord, partitionOf } from './audit-schema.ts';
import type { AuditConversionFailure } from './audit-schema.ts';
import type { AuditRecord } from './audit-record.ts';

/** Where a shard is read from. */
export type ShardPosition = { type: 'TRIM_HORIZON' } | { type: 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string };

/** One Kinesis record as the delivery sees it. */
export interface StreamRecord {
  data: Uint8Array;
  sequenceNumber: string;
  /** Kinesis's approximate arrival time (names the error objects' hour, as Firehose does). */
  arrivedAt: Date;
}

/** The Kinesis calls the delivery makes. */
export interface AuditStreamPort {
  /** Ids of the stream's shards, open and closed. */
  listShards(streamName: string): Promise<string[]>;
  getShardIterator(streamName: string, shardId: string, position: ShardPosition): Promise<string | undefined>;
  /** One page; `nextIterator` undefined once a closed shard is read to its end. */
  getRecords(iterator: string, limit: number): Promise<{ records: StreamRecord[]; nextIterator: string | undefined; millisBehindLatest: number | undefined }>;
}

/** The S3 calls the delivery makes. */
export interface AuditObjectStorePort {
  put(bucket: string, key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void>;
  /** The object's bytes, or undefined when there is no such key. */
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
}

/** {@link AuditStreamPort} over the SDK client. */
export function kinesisAuditStreamPort(kinesis: KinesisClient): AuditStreamPort {
  return {
    async listShards(streamName) {
      const ids: string[] = [];
      let token: string | undefined;
      do {
        const page = await kinesis.send(new ListShardsCommand(token === undefined ? { StreamName: streamName } : { NextToken: token }));
        for (const shard of page.Shards ?? []) if (shard.ShardId !== undefined) ids.push(shard.ShardId);
        token = page.NextToken;
      } while (token !== undefined);
      return ids;
    },
    async getShardIterator(streamName, shardId, position) {
      const out = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: shardId,
          ShardIteratorType: position.type,
          ...(position.type === 'AFTER_SEQUENCE_NUMBER' ? { StartingSequenceNumber: position.sequenceNumber } : {}),
        }),
      );
      return out.ShardIterator;
    },
    async getRecords(iterator, limit) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }));
      return {
        records: (page.Records ?? []).map((r) => ({ data: r.Data ?? new Uint8Array(), sequenceNumber: r.SequenceNumber ?? '', arrivedAt: r.ApproximateArrivalTimestamp ?? new Date() })),
        nextIterator: page.NextShardIterator ?? undefined,
        millisBehindLatest: page.MillisBehindLatest,
      };
    },
  };
}

/** {@link AuditObjectStorePort} over the SDK client. */
export function s3AuditObjectStorePort(s3: S3Client): AuditObjectStorePort {
  return {
    async put(bucket, key, body, metadata) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(metadata === undefined ? {} : { Metadata: metadata }) }));
    },
    async get(bucket, key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return out.Body === undefined ? new Uint8Array() : await out.Body.transformToByteArray();
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
        throw error;
      }
    },
  };
}

/** Options of {@link LocalAuditDelivery}. */
export interface LocalAuditDeliveryOptions {
  stream: AuditStreamPort;
  store: AuditObjectStorePort;
  /** The audit stream (topology `auditStream.name`); also names the objects, as Firehose's delivery stream does. */
  streamName: string;
  /** The audit bucket (topology `auditBucket`). */
  bucket: string;
  logger?: Logger;
  /** Pause between polls of the shards once they are read to their tip. @defaultValue 1000 */
  pollIntervalMs?: number;
  /** Records per GetRecords call (Kinesis maximum 10,000). @defaultValue 10000 */
  recordsPerRead?: number;
  /** Buffering hint: flush once this many bytes of record data are buffered. @defaultValue 5 MiB */
  bufferSizeBytes?: number;
  /** Flush once this many records are buffered. @defaultValue 100000 */
  bufferRecords?: number;
  /** Buffering hint: flush once the oldest buffered record waited this long. @defaultValue 60000 */
  bufferIntervalMs?: number;
  /**
   * Where the per-shard sequence numbers of delivered records are kept. `bucket`: the object
   * {@link checkpointKey} in the audit bucket, so a restart resumes after what was delivered.
   * `memory`: a restart re-delivers from the trim horizon (at-least-once, like Firehose itself).
   * @defaultValue 'bucket'
   */
  checkpoint?: 'bucket' | 'memory';
  /** Ignore a stored checkpoint and start every shard at the trim horizon. @defaultValue false */
  fromTrimHorizon?: boolean;
  /** First delay after a failed write; doubles up to 30 s. @defaultValue 1000 */
  retryBaseDelayMs?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** What one flush delivered. */
export interface AuditFlushResult {
  /** Rows written (after de-duplication). */
  records: number;
  /** Buffered records dropped as repeats of a `record_id` in the same flush. */
  duplicates: number;
  /** Parquet objects written, one per (system, hour). */
  objects: string[];
  /** Error objects written, one per record that could not become a row. */
  errors: string[];
}

/** Running totals of a delivery. */
export interface AuditDeliveryStats {
  read: number;
  delivered: number;
  duplicates: number;
  failed: number;
  objects: number;
  buffered: number;
}

interface Buffered {
  record: AuditRecord;
  bytes: number;
}

interface Failed {
  raw: Uint8Array;
  failure: AuditConversionFailure;
  reason: string;
  shardId: string;
  sequenceNumber: string;
  arrivedAt: Date;
}

interface ShardState {
  iterator: string | undefined;
  /** Sequence number of the last record read (buffered), if any. */
  lastRead: string | undefined;
  closed: boolean;
}

interface Checkpoint {
  streamName: string;
  updatedAt: string;
  shards: Record<string, string>;
}

/** Key of the delivery's checkpoint in the audit bucket (outside `audit/`, so no query sees it). */
export function checkpointKey(streamName: string): string {
  return `firehose-local/checkpoints/${streamName}.json`;
}

function integer(field: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) {
    throw new RangeError(`LocalAuditDeliveryOptions.${field} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return chosen;
}

/**
 * The local stand-in for Kinesis Data Firehose (DESIGN §3): reads every shard of the audit stream
 * from the trim horizon (or after its checkpoint), buffers records until a buffering hint is
 * reached (size, record count or age), then writes one Parquet object per (system, hour) of
 * `recorded_at` under `audit/<system>/year=YYYY/month=MM/day=DD/hour=HH/`, named
 * `<stream>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.parquet`. Records repeated by `record_id` within a
 * flush are written once. A record that cannot become a row is written as-is to
 * `audit/errors/<partitioning-failed|format-conversion-failed>/year=…/hour=…/` (Firehose's error
 * output prefix, hour of arrival), never dropped. Delivery is at-least-once: a record read
 * again after a restart (no checkpoint, or one older than the last flush) is written again, and
 * readers drop duplicates by `record_id`, as they must with Firehose. A failed write keeps the
 * records buffered and retries with backoff; reading pauses while the buffer is full.
 */
export class LocalAuditDelivery {
  readonly #stream: AuditStreamPort;
  readonly #store: AuditObjectStorePort;
  readonly #streamName: string;
  readonly #bucket: string;
  readonly #logger: Logger | undefined;
  readonly #pollIntervalMs: number;
  readonly #recordsPerRead: number;
  readonly #bufferSizeBytes: number;
  readonly #bufferRecords: number;
  readonly #bufferIntervalMs: number;
  readonly #checkpointInBucket: boolean;
  readonly #fromTrimHorizon: boolean;
  readonly #retryBaseDelayMs: number;
  readonly #now: () => Date;
  readonly #shards = new Map<string, ShardState>();
  #buffer: Buffered[] = [];
  #failed: Failed[] = [];
  #bufferedBytes = 0;
  #oldestAt: number | undefined;
  /** Per shard, the last sequence number written to S3. */
  #delivered: Record<string, string> = {};
  #writer: AuditParquetWriter | undefined;
  #tmpDir: string | undefined;
  #loop: Promise<void> | undefined;
  #flushing: Promise<AuditFlushResult> | undefined;
  #wake: (() => void) | undefined;
  #writeFailures = 0;
  #nextWriteAt = 0;
  #started = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** During {@link drainOnce}: what every flush of the pass wrote. */
  #passTotal: AuditFlushResult | undefined;
  readonly #stats = { read: 0, delivered: 0, duplicates: 0, failed: 0, objects: 0 };

  constructor(options: LocalAuditDeliveryOptions) {
    for (const field of ['streamName', 'bucket'] as const) {
      if (options[field] === '') throw new RangeError(`LocalAuditDeliveryOptions.${field} must not be empty, got ""`);
    }
    if (options.checkpoint !== undefined && options.checkpoint !== 'bucket' && options.checkpoint !== 'memory') {
      throw new RangeError(`LocalAuditDeliveryOptions.checkpoint must be "bucket" or "memory", got ${JSON.stringify(options.checkpoint)}`);
    }
    this.#stream = options.stream;
    this.#store = options.store;
    this.#streamName = options.streamName;
    this.#bucket = options.bucket;
    this.#logger = options.logger;
    this.#pollIntervalMs = integer('pollIntervalMs', options.pollIntervalMs, 1_000, 1);
    this.#recordsPerRead = integer('recordsPerRead', options.recordsPerRead, 10_000, 1, 10_000);
    this.#bufferSizeBytes = integer('bufferSizeBytes', options.bufferSizeBytes, 5 * 1024 * 1024, 1);
    this.#bufferRecords = integer('bufferRecords', options.bufferRecords, 100_000, 1);
    this.#bufferIntervalMs = integer('bufferIntervalMs', options.bufferIntervalMs, 60_000, 0);
    this.#retryBaseDelayMs = integer('retryBaseDelayMs', options.retryBaseDelayMs, 1_000, 0);
    this.#checkpointInBucket = (options.checkpoint ?? 'bucket') === 'bucket';
    this.#fromTrimHorizon = options.fromTrimHorizon ?? false;
    this.#now = options.now ?? (() => new Date());
  }

  /** Loads the checkpoint, opens the Parquet writer and starts polling. */
  async start(): Promise<void> {
    if (this.#started) throw new Error('LocalAuditDelivery already started');
    this.#started = true;
    await this.#open();
    this.#loop = this.#run();
  }

  /**
   * Instead of {@link start}: reads every shard up to its tip once, writes what it read (below the
   * buffering hints too) and stores the checkpoint; what `selo audit deliver --once` does.
   * {@link close} afterwards.
   */
  async drainOnce(): Promise<AuditFlushResult> {
    if (this.#started) throw new Error('LocalAuditDelivery.drainOnce cannot run while the delivery polls (started)');
    await this.#open();
    // A full buffer is written on the way, so the pass may take several flushes: report them all.
    const total: AuditFlushResult = { records: 0, duplicates: 0, objects: [], errors: [] };
    this.#passTotal = total;
    try {
      await this.#pollAll(true);
      await this.flush();
    } finally {
      this.#passTotal = undefined;
    }
    return total;
  }

  async #open(): Promise<void> {
    if (this.#writer !== undefined) return;
    this.#tmpDir = await mkdtemp(join(tmpdir(), 'selo-audit-delivery-'));
    this.#writer = await AuditParquetWriter.open();
    if (this.#checkpointInBucket && !this.#fromTrimHorizon) {
      const stored = await this.#store.get(this.#bucket, checkpointKey(this.#streamName));
      if (stored !== undefined) this.#delivered = { ...(JSON.parse(Buffer.from(stored).toString('utf8')) as Checkpoint).shards };
    }
  }

  /** Totals so far. */
  stats(): AuditDeliveryStats {
    return { ...this.#stats, buffered: this.#buffer.length + this.#failed.length };
  }

  /** Writes what is buffered now (even below the buffering hints). */
  flush(): Promise<AuditFlushResult> {
    const previous = this.#flushing ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.#flush());
    this.#flushing = next;
    return next;
  }

  /** Stops polling, waits for the read in flight, flushes the tail, stores the checkpoint. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#wake?.();
    const failures: unknown[] = [];
    const step = async (action: () => Promise<unknown>): Promise<void> => {
      try {
        await action();
      } catch (error) {
        failures.push(error);
      }
    };
    await step(async () => this.#loop);
    if (this.#writer !== undefined) await step(() => this.flush());
    await step(async () => this.#writer?.close());
    await step(async () => (this.#tmpDir === undefined ? undefined : rm(this.#tmpDir, { recursive: true, force: true })));
    if (failures.length > 0) throw new AggregateError(failures, 'audit delivery did not close cleanly');
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      try {
        await this.#pollAll(false);
      } catch (error) {
        this.#logger?.warn({ err: error, stream: this.#streamName }, 'audit delivery could not list the shards; retrying');
      }
      if (this.#closing) break;
      if (this.#due() && this.#now().getTime() >= this.#nextWriteAt) {
        await this.flush().catch(() => undefined);
      }
      await this.#sleep(this.#pollIntervalMs);
    }
  }

  /** Waits `ms`, or less when close wakes it. */
  async #sleep(ms: number): Promise<void> {
    const wake = new AbortController();
    this.#wake = () => wake.abort();
    await sleep(ms, undefined, { signal: wake.signal }).catch(() => undefined);
    this.#wake = undefined;
  }

  #due(): boolean {
    const count = this.#buffer.length + this.#failed.length;
    if (count === 0) return false;
    return this.#bufferedBytes >= this.#bufferSizeBytes || count >= this.#bufferRecords || this.#now().getTime() - (this.#oldestAt ?? 0) >= this.#bufferIntervalMs;
  }

  #full(): boolean {
    return this.#bufferedBytes >= this.#bufferSizeBytes || this.#buffer.length + this.#failed.length >= this.#bufferRecords;
  }

  async #refreshShards(): Promise<void> {
    for (const shardId of await this.#stream.listShards(this.#streamName)) {
      if (!this.#shards.has(shardId)) this.#shards.set(shardId, { iterator: undefined, lastRead: undefined, closed: false });
    }
  }

  /** Reads each shard until it is at its tip (or the buffer is full and a flush is due). */
  async #pollAll(once: boolean): Promise<void> {
    if (this.#shards.size === 0 || [...this.#shards.values()].some((s) => s.closed)) await this.#refreshShards();
    for (const [shardId, shard] of this.#shards) {
      if (shard.closed) continue;
      while (!this.#closing || once) {
        if (this.#full()) {
          // The buffer is full: write before reading more (a failing S3 pauses reading, Kinesis keeps the data).
          if (this.#now().getTime() < this.#nextWriteAt && !once) return;
          const flushed = await this.flush().then(() => true, () => false);
          if (!flushed) return;
        }
        const more = await this.#readPage(shardId, shard);
        if (!more) break;
      }
    }
  }

  /** Reads one page; true when the shard has more to read right now. */
  async #readPage(shardId: string, shard: ShardState): Promise<boolean> {
    try {
      if (shard.iterator === undefined) shard.iterator = await this.#iteratorFor(shardId, shard);
      if (shard.iterator === undefined) return false;
      const page = await this.#stream.getRecords(shard.iterator, this.#recordsPerRead);
      for (const r of page.records) this.#accept(shardId, r);
      if (page.records.length > 0) shard.lastRead = page.records.at(-1)?.sequenceNumber;
      shard.iterator = page.nextIterator;
      if (page.nextIterator === undefined) {
        shard.closed = true;
        return false;
      }
      return hasMore(page.records.length, this.#recordsPerRead, page.millisBehindLatest);
    } catch (error) {
      // An expired or refused iterator is replaced from the last record read on the next poll.
      shard.iterator = undefined;
      this.#logger?.warn({ err: error, shardId, stream: this.#streamName }, 'audit delivery could not read a shard; retrying');
      return false;
    }
  }

  async #iteratorFor(shardId: string, shard: ShardState): Promise<string | undefined> {
    const after = shard.lastRead ?? this.#delivered[shardId];
    if (after === undefined) return this.#stream.getShardIterator(this.#streamName, shardId, { type: 'TRIM_HORIZON' });
    try {
      return await this.#stream.getShardIterator(this.#streamName, shardId, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: after });
    } catch (error) {
      if (shard.lastRead !== undefined) throw error;
      // A checkpoint of another incarnation of the stream (local stand-ins restarted): start over.
      this.#logger?.warn({ err: error, shardId, sequenceNumber: after }, 'audit delivery checkpoint does not fit the stream; reading from the trim horizon');
      delete this.#delivered[shardId];
      return this.#stream.getShardIterator(this.#streamName, shardId, { type: 'TRIM_HORIZON' });
    }
  }

  #accept(shardId: string, r: StreamRecord): void {
    this.#stats.read += 1;
    this.#oldestAt ??= this.#now().getTime();
    const parsed = parseAuditRecord(r.data);
    if (parsed.ok) {
      this.#buffer.push({ record: parsed.record, bytes: r.data.byteLength });
      this.#bufferedBytes += r.data.byteLength;
    } else {
      this.#failed.push({ raw: r.data, failure: parsed.failure, reason: parsed.reason, shardId, sequenceNumber: r.sequenceNumber, arrivedAt: r.arrivedAt });
      this.#bufferedBytes += r.data.byteLength;
    }
  }

  async #flush(): Promise<AuditFlushResult> {
    const result: AuditFlushResult = { records: 0, duplicates: 0, objects: [], errors: [] };
    const writer = this.#writer;
    const tmpDir = this.#tmpDir;
    if (writer === undefined || tmpDir === undefined || this.#buffer.length + this.#failed.length === 0) return result;
    // Take the buffer and the read positions together: after a successful write, every record read
    // so far is in S3, so the positions are the new checkpoint.
    const buffer = this.#buffer;
    const failed = this.#failed;
    const bytes = this.#bufferedBytes;
    const oldestAt = this.#oldestAt;
    const positions: Record<string, string> = { ...this.#delivered };
    for (const [shardId, shard] of this.#shards) if (shard.lastRead !== undefined) positions[shardId] = shard.lastRead;
    this.#buffer = [];
    this.#failed = [];
    this.#bufferedBytes = 0;
    this.#oldestAt = undefined;
    const stamp = objectTimestamp(this.#now());
    try {
      const partitions = new Map<string, AuditRecord[]>();
      const seen = new Set<string>();
      for (const { record } of buffer) {
        if (seen.has(record.record_id)) {
          result.duplicates += 1;
          continue;
        }
        seen.add(record.record_id);
        const prefix = auditPartitionPrefix(partitionOf(record));
        const rows = partitions.get(prefix);
        if (rows === undefined) partitions.set(prefix, [record]);
        else rows.push(record);
      }
      // Write before publishing anything, then put: a failure rewrites the whole flush (at-least-once).
      for (const [prefix, rows] of partitions) {
        const key = `${prefix}${this.#streamName}-${stamp}-${randomUUID()}.parquet`;
        const file = join(tmpDir, `${randomUUID()}.parquet`);
        try {
          await writer.write(rows, file);
          await this.#store.put(this.#bucket, key, await readFile(file));
        } finally {
          await rm(file, { force: true });
        }
        result.objects.push(key);
        result.records += rows.length;
      }
      for (const f of failed) {
        const key = `audit/errors/${f.failure}/${hourPath(f.arrivedAt)}${this.#streamName}-${stamp}-${randomUUID()}`;
        await this.#store.put(this.#bucket, key, f.raw, { 'error-code': f.failure, 'shard-id': f.shardId, 'sequence-number': f.sequenceNumber });
        result.errors.push(key);
      }
      if (this.#checkpointInBucket && JSON.stringify(positions) !== JSON.stringify(this.#delivered)) {
        const checkpoint: Checkpoint = { streamName: this.#streamName, updatedAt: this.#now().toISOString(), shards: positions };
        await this.#store.put(this.#bucket, checkpointKey(this.#streamName), Buffer.from(JSON.stringify(checkpoint)));
      }
    } catch (error) {
      // Put everything back in front of what arrived meanwhile, and retry later with backoff.
      this.#buffer = [...buffer, ...this.#buffer];
      this.#failed = [...failed, ...this.#failed];
      this.#bufferedBytes += bytes;
      this.#oldestAt = oldestAt ?? this.#oldestAt;
      this.#writeFailures += 1;
      const delay = Math.min(30_000, this.#retryBaseDelayMs * 2 ** Math.min(this.#writeFailures - 1, 15));
      this.#nextWriteAt = this.#now().getTime() + delay;
      this.#logger?.warn({ err: error, records: buffer.length, failures: this.#writeFailures, retryInMs: delay }, 'audit delivery could not write to S3; keeping the records and retrying');
      throw error;
    }
    this.#writeFailures = 0;
    this.#nextWriteAt = 0;
    this.#delivered = positions;
    this.#stats.delivered += result.records;
    this.#stats.duplicates += result.duplicates;
    this.#stats.failed += result.errors.length;
    this.#stats.objects += result.objects.length;
    if (this.#passTotal !== undefined) {
      this.#passTotal.records += result.records;
      this.#passTotal.duplicates += result.duplicates;
      this.#passTotal.objects.push(...result.objects);
      this.#passTotal.errors.push(...result.errors);
    }
    if (result.records + result.errors.length > 0) {
      this.#logger?.info({ records: result.records, duplicates: result.duplicates, objects: result.objects.length, errors: result.errors.length }, 'audit records delivered');
    }
    return result;
  }
}

/** What {@link startLocalAuditDelivery} needs: SDK clients and the topology's names. */
export interface StartLocalAuditDeliveryOptions extends Omit<LocalAuditDeliveryOptions, 'stream' | 'store' | 'streamName' | 'bucket'> {
  clients: { kinesis: KinesisClient; s3: S3Client };
  topology: { auditStream: { name: string }; auditBucket: string };
}

/**
 * Starts the local Firehose stand-in on the topology's audit stream and bucket, for `selo up`
 * and `selo demo`: `const delivery = await startLocalAuditDelivery({ clients: stack.clients,
 * topology, logger })`, then `await delivery.close()` on the way down (it flushes the tail).
 */
export async function startLocalAuditDelivery(options: StartLocalAuditDeliveryOptions): Promise<LocalAuditDelivery> {
  const { clients, topology, ...rest } = options;
  const delivery = new LocalAuditDelivery({
    ...rest,
    stream: kinesisAuditStreamPort(clients.kinesis),
    store: s3AuditObjectStorePort(clients.s3),
    streamName: topology.auditStream.name,
    bucket: topology.auditBucket,
  });
  await delivery.start();
  return delivery;
}
