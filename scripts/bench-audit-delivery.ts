// Throughput of the local Firehose delivery (audit stream → Parquet objects in S3), against a
// baseline measured in the same run: reading the same stream alone (readAuditStream), and writing
// the same records to one Parquet file alone. Prints figures; never fails on time (HOUSE_STYLE 15).
// Usage: node scripts/bench-audit-delivery.ts [records=20000] [body-bytes=2000]
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../infra/local/index.ts';
import { KinesisAuditProducer, exchangeAuditRecord, kinesisPutRecordsPort, readAuditStream } from '../shared/audit/index.ts';
import type { AuditRecord } from '../shared/audit/index.ts';
import { AuditParquetWriter } from '../shared/audit/audit-parquet.ts';
import { LocalAuditDelivery, kinesisAuditStreamPort, s3AuditObjectStorePort } from '../shared/audit/parquet-delivery.ts';

const total = Number(process.argv[2] ?? 20_000);
const bodyBytes = Number(process.argv[3] ?? 2_000);
const stack = await startLocalStack({ provision: false });
const streamName = `bench-${randomUUID().slice(0, 8)}`;
try {
  await stack.clients.kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }));
  while ((await stack.clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))).StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await stack.clients.s3.send(new CreateBucketCommand({ Bucket: streamName }));
  const body = `<Envelope>${'x'.repeat(bodyBytes)}</Envelope>`;
  const start = Date.now() - 3_600_000;
  const records: AuditRecord[] = Array.from({ length: total }, (_, i) => {
    const at = new Date(start + Math.floor((i * 3_600_000) / total));
    const e2e = `E99999004202605011000${String(i).padStart(11, '0')}`;
    return exchangeAuditRecord(
      { worker: 'transmit', system: i % 5 === 0 ? 'dict' : 'spi', sagaId: `PAY#${e2e}`, endToEndId: e2e, attempt: 1 },
      { requestDate: at, method: 'POST', path: '/api/v1/in/99999004/msgs', requestHeaders: { 'content-type': 'application/xml' }, requestBody: body, response: { statusCode: 201, headers: {}, body: '', signatureValid: true, receivedAt: at } },
      at,
    );
  });
  const producer = new KinesisAuditProducer({ port: kinesisPutRecordsPort(stack.clients.kinesis), streamName });
  for (let i = 0; i < records.length; i += 500) await producer.put(records.slice(i, i + 500));
  await producer.close();
  const bytes = records.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0);

  const rate = (n: number, ms: number): string => `${Math.round((n * 1000) / ms).toLocaleString('en')} records/s (${ms} ms)`;
  let t = Date.now();
  const read = await readAuditStream(stack.clients.kinesis, streamName, () => undefined);
  const readMs = Date.now() - t;

  const dir = await mkdtemp(join(tmpdir(), 'bench-parquet-'));
  const writer = await AuditParquetWriter.open();
  t = Date.now();
  await writer.write(records, join(dir, 'all.parquet'));
  const writeMs = Date.now() - t;
  const parquetBytes = (await stat(join(dir, 'all.parquet'))).size;
  await writer.close();
  await rm(dir, { recursive: true, force: true });

  const delivery = new LocalAuditDelivery({ stream: kinesisAuditStreamPort(stack.clients.kinesis), store: s3AuditObjectStorePort(stack.clients.s3), streamName, bucket: streamName, checkpoint: 'memory', bufferSizeBytes: 64 * 1024 * 1024 });
  t = Date.now();
  const result = await delivery.drainOnce();
  const deliverMs = Date.now() - t;
  await delivery.close();

  process.stdout.write(
    [
      `records ${total.toLocaleString('en')}, ${(bytes / 1024 / 1024).toFixed(1)} MiB of JSON (${Math.round(bytes / total)} B each), 2 shards`,
      `baseline readAuditStream alone          ${rate(read.records, readMs)}`,
      `Parquet write alone (one file, DuckDB)  ${rate(total, writeMs)}; ${(parquetBytes / 1024 / 1024).toFixed(1)} MiB Snappy Parquet`,
      `delivery drainOnce (read+parse+write+S3) ${rate(result.records, deliverMs)}; ${result.objects.length} objects; ${(readMs / deliverMs).toFixed(2)}× the read-only rate`,
      '',
    ].join('\n'),
  );
} finally {
  await stack.close();
}
