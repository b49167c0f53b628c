import { describe, expect, it } from 'vitest';
import { transitionAuditRecord } from '../../../shared/audit/index.ts';
import { LocalAuditDelivery, checkpointKey } from '../../../shared/audit/parquet-delivery.ts';
import type { AuditObjectStorePort, AuditStreamPort, ShardPosition, StreamRecord } from '../../../shared/audit/parquet-delivery.ts';

/** A two-shard stream in memory; iterators are `<shard>@<index>`. */
function fakeStream(shards: Record<string, StreamRecord[]>): AuditStreamPort & { positions: ShardPosition[] } {
  const positions: ShardPosition[] = [];
  return {
    positions,
    listShards: () => Promise.resolve(Object.keys(shards)),
    getShardIterator(_stream, shardId, position) {
      positions.push(position);
      const records = shards[shardId] ?? [];
      const index = position.type === 'TRIM_HORIZON' ? 0 : records.findIndex((r) => r.sequenceNumber === position.sequenceNumber) + 1;
      if (index === 0 && position.type !== 'TRIM_HORIZON') return Promise.reject(new Error('InvalidArgumentException'));
      return Promise.resolve(`${shardId}@${index}`);
    },
    getRecords(iterator, limit) {
      const [shardId, at] = iterator.split('@') as [string, string];
      const records = (shards[shardId] ?? []).slice(Number(at), Number(at) + limit);
      const next = Number(at) + records.length;
      return Promise.resolve({ records, nextIterator: `${shardId}@${next}`, millisBehindLatest: next < (shards[shardId] ?? []).length ? 1000 : 0 });
    },
  };
}

function fakeStore(): AuditObjectStorePort & { objects: Map<string, Uint8Array>; failPuts: number } {
  const objects = new Map<string, Uint8Array>();
  const store = {
    objects,
    failPuts: 0,
    put(bucket: string, key: string, body: Uint8Array) {
      if (store.failPuts > 0) {
        store.failPuts -= 1;
        return Promise.reject(new Error('S3 unavailable'));
      }
      objects.set(`${bucket}/${key}`, body);
      return Promise.resolve();
    },
    get: (bucket: string, key: string) => Promise.resolve(objects.get(`${bucket}/${key}`)),
  };
  return store;
}

function kinesisRecord(seq: number, minute: number): StreamRecord {
  const record = transitionAuditRecord({ worker: 'sign', system: 'spi', sagaId: `PAY#E${seq}` }, { from: null, to: 'REQUESTED', reason: 'r' }, new Date(Date.UTC(2026, 4, 1, 10, minute)));
  return { data: Buffer.from(JSON.stringify(record)), sequenceNumber: String(seq).padStart(5, '0'), arrivedAt: new Date() };
}

function parquetKeys(store: { objects: Map<string, Uint8Array> }): string[] {
  return [...store.objects.keys()].filter((k) => k.endsWith('.parquet'));
}

describe('LocalAuditDelivery', () => {
  it('keeps the records when a write fails, and writes them on the next flush', async () => {
    const stream = fakeStream({ a: [kinesisRecord(1, 0), kinesisRecord(2, 1)], b: [kinesisRecord(3, 2)] });
    const store = fakeStore();
    store.failPuts = 1;
    const delivery = new LocalAuditDelivery({ stream, store, streamName: 's', bucket: 'b', retryBaseDelayMs: 0 });
    await expect(delivery.drainOnce()).rejects.toThrow('S3 unavailable');
    expect(delivery.stats()).toMatchObject({ read: 3, delivered: 0, buffered: 3 });
    expect(store.objects.has(`b/${checkpointKey('s')}`)).toBe(false);
    const result = await delivery.flush();
    expect(result.records).toBe(3);
    expect(parquetKeys(store)).toHaveLength(1);
    expect(JSON.parse(Buffer.from(store.objects.get(`b/${checkpointKey('s')}`) ?? []).toString())).toMatchObject({ streamName: 's', shards: { a: '00002', b: '00003' } });
    await delivery.close();
  });

  it('starts each shard after its checkpoint, and at the trim horizon when the checkpoint is from another stream', async () => {
    const stream = fakeStream({ a: [kinesisRecord(1, 0), kinesisRecord(2, 1)], b: [kinesisRecord(3, 2)] });
    const store = fakeStore();
    await store.put('b', checkpointKey('s'), Buffer.from(JSON.stringify({ streamName: 's', updatedAt: '', shards: { a: '00001', b: '99999' } })));
    const delivery = new LocalAuditDelivery({ stream, store, streamName: 's', bucket: 'b' });
    const result = await delivery.drainOnce();
    await delivery.close();
    expect(result.records).toBe(2);
    expect(stream.positions).toEqual([{ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '00001' }, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '99999' }, { type: 'TRIM_HORIZON' }]);
  });

  it('writes before reading on once the buffer holds bufferRecords', async () => {
    const stream = fakeStream({ a: Array.from({ length: 7 }, (_, i) => kinesisRecord(i + 1, i)) });
    const store = fakeStore();
    const delivery = new LocalAuditDelivery({ stream, store, streamName: 's', bucket: 'b', recordsPerRead: 3, bufferRecords: 3 });
    const result = await delivery.drainOnce();
    await delivery.close();
    expect(parquetKeys(store)).toHaveLength(3);
    // The pass reports every flush it made, not only the last one.
    expect(result.records).toBe(7);
    expect(result.objects.map((k) => `b/${k}`).sort()).toEqual(parquetKeys(store).sort());
    expect(delivery.stats()).toMatchObject({ read: 7, delivered: 7, objects: 3, buffered: 0 });
  });

  it('names the field and the value of a bad option', () => {
    const base = { stream: fakeStream({}), store: fakeStore(), streamName: 's', bucket: 'b' };
    expect(() => new LocalAuditDelivery({ ...base, pollIntervalMs: 0 })).toThrow('LocalAuditDeliveryOptions.pollIntervalMs must be an integer from 1 to');
    expect(() => new LocalAuditDelivery({ ...base, recordsPerRead: 20_000 })).toThrow('recordsPerRead must be an integer from 1 to 10000, got 20000');
    expect(() => new LocalAuditDelivery({ ...base, bucket: '' })).toThrow('LocalAuditDeliveryOptions.bucket must not be empty');
    expect(() => new LocalAuditDelivery({ ...base, checkpoint: 'disk' as 'memory' })).toThrow('checkpoint must be "bucket" or "memory", got "disk"');
  });
});
