import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { closeServer, listen } from '../../../infra/local/node-server.ts';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { KinesisAuditProducer, kinesisPutRecordsPort, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { deriveDetail, encodeEventBody, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { EventBridgePublisher, WorkerRuntime, eventBridgePutEventsPort } from '../../../shared/runtime/index.ts';
import { silentLogger } from '../../unit/runtime/fakes.ts';

const require = createRequire(import.meta.url);
const topology = resolveTopology('local');
const STREAM = 'outage-audit';

let stack: LocalStack;
let kinesalite: Server;
let kinesisPort: number;
let dataDir: string;
let kinesis: KinesisClient;
let producer: KinesisAuditProducer;
let runtime: WorkerRuntime<unknown>;
const handled: string[] = [];
let visibilityChanges = 0;

async function streamRecords(): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  const shards = await kinesis.send(new ListShardsCommand({ StreamName: STREAM }));
  for (const shard of shards.Shards ?? []) {
    const it = await kinesis.send(new GetShardIteratorCommand({ StreamName: STREAM, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator, Limit: 10_000 }));
    for (const r of got.Records ?? []) out.push(JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as AuditRecord);
  }
  return out;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  stack = await startLocalStack();
  // A private kinesalite on disk, so it can be stopped and restarted on the same port with its data.
  dataDir = mkdtempSync(join(tmpdir(), 'selo-kinesis-'));
  kinesalite = (require('kinesalite') as (o: Record<string, unknown>) => Server)({ path: dataDir, createStreamMs: 0 });
  kinesisPort = await listen(kinesalite, 0, '127.0.0.1');
  kinesis = new KinesisClient({
    region: 'sa-east-1',
    endpoint: `http://127.0.0.1:${kinesisPort}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: new NodeHttpHandler({ connectionTimeout: 300, requestTimeout: 2_000 }),
    maxAttempts: 1,
  });
  await kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
  await waitFor('stream', async () => (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: STREAM }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
  producer = new KinesisAuditProducer({ port: kinesisPutRecordsPort(kinesis), streamName: STREAM, retryBaseDelayMs: 50, retryMaxDelayMs: 200, unhealthyAfterFailures: 1 });
  const sign = stack.provisioned?.queues.sign;
  if (sign === undefined) throw new Error('sign queue missing');
  // Counts the runtime's visibility heartbeats: the proof that it was alive while the test waited.
  stack.clients.sqs.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'ChangeMessageVisibilityCommand' || context.commandName === 'ChangeMessageVisibilityBatchCommand') visibilityChanges += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countVisibilityChanges' },
  );
  runtime = new WorkerRuntime({
    name: 'sign',
    handler: (message) => {
      handled.push(message.sqs.messageId);
      const d = message.event.detail;
      return Promise.resolve({
        events: [{ detailType: 'MessageSigned', detail: deriveDetail(d, {}) }],
        audit: [1, 2, 3].map((i) => transitionAuditRecord({ worker: 'sign', system: 'spi', sagaId: d.sagaId, endToEndId: d.endToEndId ?? '' }, { from: 'REQUESTED', to: 'SIGNED', reason: `step ${i}` })),
      });
    },
    decode: (data) => data,
    sqs: stack.clients.sqs,
    queue: { key: 'sign', ...sign, visibilityTimeoutSeconds: 3, maxReceiveCount: 5 },
    publisher: new EventBridgePublisher({ port: eventBridgePutEventsPort(stack.clients.events), eventBusName: topology.eventBusName, defaultSource: 'selo.sign' }),
    audit: producer,
    logger: silentLogger(),
    waitTimeSeconds: 1,
    heartbeatIntervalSeconds: 1,
    health: false,
  });
  await runtime.start();
});

afterAll(async () => {
  await runtime.close();
  await producer.close(1_000);
  kinesis.destroy();
  await closeServer(kinesalite);
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a Kinesis outage', () => {
  it('delays deletion of the message and loses no audit record once Kinesis returns', async () => {
    await closeServer(kinesalite);
    const e2e = `E99999004202601011200${randomUUID().replace(/-/g, '').slice(0, 11)}`;
    await stack.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.provisioned?.queues.sign?.url,
        MessageBody: encodeEventBody({
          detailType: 'PaymentRequested',
          source: 'core.banking',
          detail: { version: 1, sagaId: paymentSagaId(e2e), endToEndId: e2e, attempt: 1, traceparent: newTraceparent(), data: {} },
        }),
      }),
    );
    await waitFor('handler run', () => handled.length === 1);
    // Longer than the 3 s visibility timeout, and three heartbeats (every second) seen in it: the
    // runtime is alive and keeps the message hidden, not deleted, not redelivered.
    const [since, changesBefore] = [Date.now(), visibilityChanges];
    await waitFor('3.5 s and three heartbeats', () => Date.now() - since >= 3_500 && visibilityChanges - changesBefore >= 3, 20_000);
    expect(runtime.inFlight).toBe(1);
    expect(producer.health()).toMatchObject({ ok: false, buffered: 3 });
    expect((await runtime.ready()).checks.audit?.ok).toBe(false);
    expect(handled).toHaveLength(1);

    await listen(kinesalite, kinesisPort, '127.0.0.1');
    await waitFor('deletion', () => runtime.inFlight === 0);
    const records = (await streamRecords()).filter((r) => r.end_to_end_id === e2e);
    expect(records.map((r) => r.transition_reason).sort()).toEqual(['step 1', 'step 2', 'step 3']);
    const left = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.provisioned?.queues.sign?.url, WaitTimeSeconds: 0 }));
    expect((left.Messages ?? []).filter((m) => m.Body?.includes(e2e))).toEqual([]);
    expect(handled).toHaveLength(1);
  });
});
