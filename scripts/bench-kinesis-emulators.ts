// Measures the two Kinesis emulators the foundation issue names, side by side in one run, each in
// its own child process on loopback: kinesalite and kinesis-local (the kinesis-mock engine
// LocalStack uses). Prints PutRecords and GetRecords rates and their ratio. A script, not a test:
// it never fails on timing.
//   node scripts/bench-kinesis-emulators.ts [--batches 40] [--json]
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { dirname } from 'node:path';
import { Agent } from 'node:http';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const require = createRequire(import.meta.url);
const { values } = parseArgs({ options: { batches: { type: 'string', default: '40' }, json: { type: 'boolean', default: false } } });
const BATCHES = Number(values.batches);
const RECORDS_PER_BATCH = 500; // the PutRecords maximum
const RECORD = Buffer.alloc(1024, 'a'); // ~ one audit record

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        if (Date.now() > deadline) reject(new Error(`port ${port} not open after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

interface Figures {
  emulator: string;
  startMs: number;
  putRecordsPerSecond: number;
  getRecordsPerSecond: number;
  lastBatchPutMs: number;
  firstBatchPutMs: number;
}

async function measure(emulator: string, start: (port: number) => ChildProcess, port: number): Promise<Figures> {
  const started = performance.now();
  const child = start(port);
  try {
    await waitForPort(port, 60_000);
    const startMs = performance.now() - started;
    const client = new KinesisClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      // kinesis-local needs HTTP/1.1 (DESIGN §3); used for both for equal footing.
      requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true }) }),
    });
    const StreamName = 'bench';
    await client.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
    for (;;) {
      const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName }));
      if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const batchTimes: number[] = [];
    const putStart = performance.now();
    for (let b = 0; b < BATCHES; b += 1) {
      const t = performance.now();
      const result = await client.send(
        new PutRecordsCommand({ StreamName, Records: Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ Data: RECORD, PartitionKey: `k${i}` })) }),
      );
      if ((result.FailedRecordCount ?? 0) > 0) throw new Error(`${emulator}: ${result.FailedRecordCount} records failed`);
      batchTimes.push(performance.now() - t);
    }
    const putSeconds = (performance.now() - putStart) / 1000;
    const shards = await client.send(new ListShardsCommand({ StreamName }));
    let read = 0;
    const getStart = performance.now();
    let iterator = (await client.send(new GetShardIteratorCommand({ StreamName, ShardId: shards.Shards?.[0]?.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (iterator !== undefined && read < BATCHES * RECORDS_PER_BATCH) {
      const got = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      read += got.Records?.length ?? 0;
      iterator = got.NextShardIterator;
    }
    const getSeconds = (performance.now() - getStart) / 1000;
    client.destroy();
    return {
      emulator,
      startMs: Math.round(startMs),
      putRecordsPerSecond: Math.round((BATCHES * RECORDS_PER_BATCH) / putSeconds),
      getRecordsPerSecond: Math.round(read / getSeconds),
      firstBatchPutMs: Math.round(batchTimes[0] ?? 0),
      lastBatchPutMs: Math.round(batchTimes.at(-1) ?? 0),
    };
  } finally {
    child.kill('SIGTERM');
  }
}

const node = process.execPath;
const kinesalite = await measure('kinesalite', (port) => spawn(node, [require.resolve('kinesalite/cli.js'), '--port', String(port), '--createStreamMs', '0'], { stdio: 'ignore' }), 45_671);
const kinesisLocal = await measure(
  'kinesis-local',
  (port) =>
    spawn(node, [require.resolve('kinesis-local/main.js')], {
      stdio: 'ignore',
      // It reads its TLS certificate from ./server.json, next to main.js.
      cwd: dirname(require.resolve('kinesis-local/main.js')),
      env: { ...process.env, KINESIS_MOCK_PLAIN_PORT: String(port), KINESIS_MOCK_TLS_PORT: String(port + 1), CREATE_STREAM_DURATION: '0ms', LOG_LEVEL: 'ERROR' },
    }),
  45_681,
);
const ratios = {
  put: +(kinesalite.putRecordsPerSecond / kinesisLocal.putRecordsPerSecond).toFixed(2),
  get: +(kinesalite.getRecordsPerSecond / kinesisLocal.getRecordsPerSecond).toFixed(2),
};
if (values.json) {
  process.stdout.write(`${JSON.stringify({ records: BATCHES * RECORDS_PER_BATCH, recordBytes: RECORD.length, kinesalite, kinesisLocal, kinesaliteOverKinesisLocal: ratios })}\n`);
} else {
  process.stdout.write(`Kinesis emulators, ${BATCHES} × PutRecords(${RECORDS_PER_BATCH} × ${RECORD.length} B), then GetRecords of all, one shard\n`);
  for (const f of [kinesalite, kinesisLocal]) {
    process.stdout.write(
      `  ${f.emulator.padEnd(14)} start ${String(f.startMs).padStart(5)} ms  put ${String(f.putRecordsPerSecond).padStart(7)} rec/s  get ${String(f.getRecordsPerSecond).padStart(7)} rec/s  batch 1 ${f.firstBatchPutMs} ms, batch ${BATCHES} ${f.lastBatchPutMs} ms\n`,
    );
  }
  process.stdout.write(`  kinesalite / kinesis-local: put ${ratios.put}×, get ${ratios.get}×\n`);
}
