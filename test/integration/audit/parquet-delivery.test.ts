import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { KinesisAuditProducer, exchangeAuditRecord, kinesisPutRecordsPort, readAuditStream, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { AuditRecord, AuditSystem } from '../../../shared/audit/index.ts';
import { AUDIT_COLUMNS } from '../../../shared/audit/audit-schema.ts';
import { LocalAuditDelivery, kinesisAuditStreamPort, s3AuditObjectStorePort } from '../../../shared/audit/parquet-delivery.ts';
import type { LocalAuditDeliveryOptions } from '../../../shared/audit/parquet-delivery.ts';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ provision: false });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

/** A fresh two-shard stream and bucket, so tests do not see each other's records. */
async function freshTarget(): Promise<{ streamName: string; bucket: string; producer: KinesisAuditProducer }> {
  const id = randomUUID().slice(0, 8);
  const streamName = `parquet-${id}`;
  const bucket = `parquet-${id}`;
  await stack.clients.kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }));
  while ((await stack.clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await stack.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return { streamName, bucket, producer: new KinesisAuditProducer({ port: kinesisPutRecordsPort(stack.clients.kinesis), streamName }) };
}

function delivery(target: { streamName: string; bucket: string }, options: Partial<LocalAuditDeliveryOptions> = {}): LocalAuditDelivery {
  return new LocalAuditDelivery({
    stream: kinesisAuditStreamPort(stack.clients.kinesis),
    store: s3AuditObjectStorePort(stack.clients.s3),
    streamName: target.streamName,
    bucket: target.bucket,
    pollIntervalMs: 50,
    bufferIntervalMs: 300,
    ...options,
  });
}

let counter = 0;
function endToEndId(): string {
  counter += 1;
  return `E99999004202605011000${String(counter).padStart(5, '0')}${randomUUID().replaceAll('-', '').slice(0, 6)}`;
}

/** A response record (every request/response column set) recorded at `at`. */
function exchange(at: string, system: AuditSystem = 'spi'): AuditRecord {
  const e2e = endToEndId();
  return exchangeAuditRecord(
    { worker: 'transmit', system, sagaId: `PAY#${e2e}`, endToEndId: e2e, bizMsgIdr: 'M99999004abcdefghijklmnopqrstuvw', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', attempt: 2 },
    {
      requestDate: new Date(Date.parse(at) - 120),
      method: 'post',
      path: '/api/v1/in/99999004/msgs',
      requestHeaders: { 'content-type': 'application/xml', authorization: 'Bearer x' },
      requestBody: '<Envelope>\n  <AppHdr/>\n</Envelope>',
      response: { statusCode: 201, headers: { 'pi-resourceid': 'r-1' }, body: '', signatureValid: true, receivedAt: new Date(at) },
    },
    new Date(at),
  );
}

/** A transition record (transition columns set, exchange columns null) recorded at `at`. */
function transition(at: string, system: AuditSystem = 'dict'): AuditRecord {
  const requestId = randomUUID();
  return transitionAuditRecord({ worker: 'verify', system, sagaId: `DICT#${requestId}`, requestId }, { from: 'TRANSMITTED', to: 'SETTLED', reason: "pacs.002 ACSC (it's fine)" }, new Date(at));
}

async function listKeys(bucket: string, prefix = ''): Promise<string[]> {
  const out = await stack.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
}

async function getBytes(bucket: string, key: string): Promise<Uint8Array> {
  const out = await stack.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await out.Body?.transformToByteArray()) ?? new Uint8Array();
}

/** Reads Parquet objects back with DuckDB: rows as AuditRecords (times back to ISO strings) and the column types. */
async function readBack(bucket: string, keys: readonly string[]): Promise<{ rows: AuditRecord[]; types: Record<string, string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'parquet-test-'));
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const files: string[] = [];
    for (const key of keys) {
      const file = join(dir, `${files.length}.parquet`);
      await writeFile(file, await getBytes(bucket, key));
      files.push(`'${file}'`);
    }
    const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet([${files.join(', ')}])`);
    const types = Object.fromEntries(reader.columnNames().map((name, i) => [name, String(reader.columnTypes()[i])]));
    const rows = reader.getRowObjectsJS().map((row) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) out[k] = v instanceof Date ? v.toISOString() : v;
      return out as unknown as AuditRecord;
    });
    return { rows, types };
  } finally {
    connection.closeSync();
    instance.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const byId = (a: AuditRecord, b: AuditRecord): number => a.record_id.localeCompare(b.record_id);

describe('local Firehose delivery', () => {
  it('writes one Parquet object per system and hour of recorded_at, holding exactly the records with every column typed', async () => {
    const target = await freshTarget();
    const tenOClock = [exchange('2026-05-01T10:15:00.000Z'), exchange('2026-05-01T10:59:59.999Z'), transition('2026-05-01T10:30:00.123Z', 'spi')];
    const elevenOClock = [exchange('2026-05-01T11:00:00.000Z'), transition('2026-05-01T11:45:10.500Z', 'spi')];
    const dict = [transition('2026-05-01T10:20:00.000Z', 'dict')];
    const d = delivery(target);
    await d.start();
    try {
      await target.producer.put([...tenOClock, ...elevenOClock, ...dict]);
      await waitFor('six records delivered', () => d.stats().delivered === 6);
    } finally {
      await d.close();
      await target.producer.close();
    }

    const keys = await listKeys(target.bucket, 'audit/');
    const name = `${target.streamName}-\\d{4}-\\d\\d-\\d\\d-\\d\\d-\\d\\d-\\d\\d-[0-9a-f-]{36}\\.parquet`;
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(new RegExp(`^audit/dict/year=2026/month=05/day=01/hour=10/${name}$`));
    expect(keys[1]).toMatch(new RegExp(`^audit/spi/year=2026/month=05/day=01/hour=10/${name}$`));
    expect(keys[2]).toMatch(new RegExp(`^audit/spi/year=2026/month=05/day=01/hour=11/${name}$`));

    const ten = await readBack(target.bucket, [keys[1] ?? '']);
    expect(ten.rows.sort(byId)).toEqual([...tenOClock].sort(byId));
    expect((await readBack(target.bucket, [keys[2] ?? ''])).rows.sort(byId)).toEqual([...elevenOClock].sort(byId));
    expect((await readBack(target.bucket, [keys[0] ?? ''])).rows).toEqual(dict);
    expect(Object.keys(ten.types)).toEqual(AUDIT_COLUMNS.map((c) => c.name));
    expect(ten.types).toMatchObject({ recorded_at: 'TIMESTAMP', request_date: 'TIMESTAMP', response_status_code: 'INTEGER', duration_ms: 'INTEGER', attempt: 'INTEGER', response_signature_valid: 'BOOLEAN', request_body: 'VARCHAR' });
    // Headers were filtered by the producer's record builder; the trail holds no credential.
    expect(ten.rows.map((r) => r.request_header).join()).not.toContain('Bearer');
  });

  it('writes a record repeated by record_id once per flush', async () => {
    const target = await freshTarget();
    const record = exchange('2026-05-01T12:00:00.000Z');
    const other = exchange('2026-05-01T12:01:00.000Z');
    await target.producer.put([record, record, other, record]);
    await target.producer.close();
    const d = delivery(target);
    try {
      const result = await d.drainOnce();
      expect(result).toMatchObject({ records: 2, duplicates: 2, errors: [] });
      expect((await readBack(target.bucket, result.objects)).rows.sort(byId)).toEqual([record, other].sort(byId));
    } finally {
      await d.close();
    }
  });

  it('writes a record that is not an audit record as-is under audit/errors/, never dropping it', async () => {
    const target = await freshTarget();
    const garbage = Buffer.from('{"record_id": "r-1", "system": "spi", oops');
    const wrongType = Buffer.from(JSON.stringify({ ...exchange('2026-05-01T13:00:00.000Z'), response_status_code: '201' }));
    await stack.clients.kinesis.send(new PutRecordCommand({ StreamName: target.streamName, PartitionKey: 'p', Data: garbage }));
    await stack.clients.kinesis.send(new PutRecordCommand({ StreamName: target.streamName, PartitionKey: 'q', Data: wrongType }));
    const good = exchange('2026-05-01T13:00:00.000Z');
    await target.producer.put([good]);
    await target.producer.close();
    const d = delivery(target);
    try {
      const result = await d.drainOnce();
      expect(result.records).toBe(1);
      expect(result.errors).toHaveLength(2);
      const keys = await listKeys(target.bucket, 'audit/errors/');
      const hour = '/year=\\d{4}/month=\\d\\d/day=\\d\\d/hour=\\d\\d/';
      const partitioning = keys.filter((k) => new RegExp(`^audit/errors/partitioning-failed${hour}${target.streamName}-`).test(k));
      const conversion = keys.filter((k) => new RegExp(`^audit/errors/format-conversion-failed${hour}${target.streamName}-`).test(k));
      expect(partitioning).toHaveLength(1);
      expect(conversion).toHaveLength(1);
      expect(Buffer.from(await getBytes(target.bucket, partitioning[0] ?? ''))).toEqual(garbage);
      expect(Buffer.from(await getBytes(target.bucket, conversion[0] ?? ''))).toEqual(wrongType);
      expect(await listKeys(target.bucket, 'audit/spi/')).toHaveLength(1);
    } finally {
      await d.close();
    }
  });

  it('flushes what it has buffered when closed, and resumes after its checkpoint in the bucket', async () => {
    const target = await freshTarget();
    const first = [exchange('2026-05-01T14:00:00.000Z'), transition('2026-05-01T14:00:01.000Z')];
    const d = delivery(target, { bufferIntervalMs: 600_000 });
    await d.start();
    await target.producer.put(first);
    await waitFor('two records read', () => d.stats().read === 2);
    expect(await listKeys(target.bucket, 'audit/')).toEqual([]);
    await d.close();
    await d.close();
    const afterClose = await listKeys(target.bucket, 'audit/');
    expect(afterClose).toHaveLength(2);
    expect((await readBack(target.bucket, afterClose)).rows.sort(byId)).toEqual([...first].sort(byId));

    const later = exchange('2026-05-01T14:30:00.000Z');
    await target.producer.put([later]);
    await target.producer.close();
    const resumed = delivery(target);
    try {
      const result = await resumed.drainOnce();
      expect(result.records).toBe(1);
      expect((await readBack(target.bucket, result.objects)).rows).toEqual([later]);
    } finally {
      await resumed.close();
    }
    const again = delivery(target, { checkpoint: 'memory' });
    try {
      expect((await again.drainOnce()).records).toBe(3);
    } finally {
      await again.close();
    }
  });

  it('flushes when the buffer reaches its record count, before the interval', async () => {
    const target = await freshTarget();
    const d = delivery(target, { bufferIntervalMs: 600_000, bufferRecords: 4 });
    await d.start();
    try {
      await target.producer.put(Array.from({ length: 5 }, (_, i) => exchange(`2026-05-01T15:0${i}:00.000Z`)));
      // The records may sit on two shards: wait until all five were read, four of them written.
      await waitFor('four or more records delivered, all five read', () => d.stats().delivered >= 4 && d.stats().delivered + d.stats().buffered === 5);
      expect(d.stats().buffered).toBeLessThanOrEqual(1);
    } finally {
      await d.close();
      await target.producer.close();
    }
    expect(d.stats().delivered).toBe(5);
  });

  it('reads past a full page to the end of each shard (kinesalite reports 0 ms behind for a full page)', async () => {
    const target = await freshTarget();
    try {
      await target.producer.put(Array.from({ length: 12 }, (_, i) => exchange(`2026-05-01T16:${String(i).padStart(2, '0')}:00.000Z`)));
      await target.producer.flush();
      let read = 0;
      // Pages of 2: every shard holding more than 2 of the 12 needs several pages.
      const counted = await readAuditStream(stack.clients.kinesis, target.streamName, () => (read += 1), 2);
      expect([counted.records, read]).toEqual([12, 12]);
      const d = delivery(target, { recordsPerRead: 2 });
      const drained = await d.drainOnce();
      await d.close();
      expect(drained.records).toBe(12);
    } finally {
      await target.producer.close();
    }
  });
});
