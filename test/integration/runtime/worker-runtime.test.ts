import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { KinesisAuditProducer, kinesisPutRecordsPort, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { TransientError } from '../../../shared/errors/index.ts';
import { deriveDetail, encodeEventBody, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { EventBridgePublisher, WorkerRuntime, eventBridgePutEventsPort } from '../../../shared/runtime/index.ts';
import type { Handler } from '../../../shared/runtime/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';

const topology = resolveTopology('local');
let stack: LocalStack;
let producer: KinesisAuditProducer;
let runtime: WorkerRuntime<{ amount: string }>;
const attemptsBySaga = new Map<string, number>();

function queue(key: string): { url: string; dlqUrl: string } {
  const found = stack.provisioned?.queues[key];
  if (found === undefined) throw new Error(`queue ${key} not provisioned`);
  return found;
}

function endToEndId(): string {
  return `E99999004202601011200${randomUUID().replace(/-/g, '').slice(0, 11)}`;
}

function paymentRequested(e2e: string, data: unknown = { amount: '10.00' }): string {
  return encodeEventBody({
    detailType: 'PaymentRequested',
    source: 'core.banking',
    detail: { version: 1, sagaId: paymentSagaId(e2e), endToEndId: e2e, attempt: 1, traceparent: newTraceparent(), data },
  });
}

/** Fails transiently the first time it sees a saga whose amount is "flaky", then succeeds. */
const handler: Handler<{ amount: string }> = (message) => {
  const { detail } = message.event;
  const seen = (attemptsBySaga.get(detail.sagaId) ?? 0) + 1;
  attemptsBySaga.set(detail.sagaId, seen);
  if (detail.data.amount === 'flaky' && seen === 1) return Promise.reject(new TransientError('HSM_BUSY', 'all sessions busy'));
  const origin = { worker: 'sign', system: 'spi' as const, sagaId: detail.sagaId, endToEndId: detail.endToEndId ?? '' };
  // Longer than the queue's visibility timeout: only the runtime's heartbeat keeps it invisible.
  const pause = detail.data.amount === 'slow' ? 9_000 : 0;
  return new Promise((resolve) => setTimeout(resolve, pause)).then(() => ({
    events: [{ detailType: 'MessageSigned', detail: deriveDetail(detail, { signed: true }) }],
    audit: [transitionAuditRecord(origin, { from: 'REQUESTED', to: 'SIGNED', reason: 'signed' })],
  }));
};

async function receiveUntil(url: string, predicate: (body: string) => boolean, timeoutMs = 8_000): Promise<{ body: string; attributes: Record<string, string> }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    for (const m of got.Messages ?? []) {
      if (predicate(m.Body ?? '')) {
        const attributes = Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']));
        return { body: m.Body ?? '', attributes };
      }
    }
  }
  throw new Error('no matching message arrived');
}

async function auditRecords(): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  const shards = await stack.clients.kinesis.send(new ListShardsCommand({ StreamName: topology.auditStream.name }));
  for (const shard of shards.Shards ?? []) {
    const it = await stack.clients.kinesis.send(new GetShardIteratorCommand({ StreamName: topology.auditStream.name, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const got = await stack.clients.kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
    for (const r of got.Records ?? []) records.push(JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as AuditRecord);
  }
  return records;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The runtime's log lines, parsed. */
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  stack = await startLocalStack();
  producer = new KinesisAuditProducer({ port: kinesisPutRecordsPort(stack.clients.kinesis), streamName: topology.auditStream.name });
  const declared = topology.queues.find((q) => q.key === 'sign')!;
  runtime = new WorkerRuntime({
    name: 'sign',
    handler,
    decode: (data) => {
      if (typeof (data as { amount?: unknown }).amount !== 'string') throw new TransientError('NEVER', 'unused');
      return data as { amount: string };
    },
    sqs: stack.clients.sqs,
    queue: { key: 'sign', ...queue('sign'), visibilityTimeoutSeconds: declared.visibilityTimeoutSeconds, maxReceiveCount: declared.maxReceiveCount },
    publisher: new EventBridgePublisher({ port: eventBridgePutEventsPort(stack.clients.events), eventBusName: topology.eventBusName, defaultSource: 'selo.sign' }),
    audit: producer,
    logger: createLogger({ name: 'test', level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, cb) => cb(void logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)) }) }),
    failureDetailType: 'SigningFailed',
    waitTimeSeconds: 1,
    backoff: { baseSeconds: 1, maxSeconds: 1 },
    closeables: [{ name: 'audit producer', close: () => producer.close() }],
  });
  await runtime.start();
});

afterAll(async () => {
  await runtime.close();
  await stack.close();
});

describe('WorkerRuntime against the local stack', () => {
  it('runs a handler end to end: event on the rule\'s target queue, audit record on the stream, message deleted', async () => {
    const e2e = endToEndId();
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: paymentRequested(e2e) }));
    const signed = await receiveUntil(queue('transmit').url, (body) => body.includes(e2e));
    expect(JSON.parse(signed.body)).toMatchObject({ 'detail-type': 'MessageSigned', source: 'selo.sign', detail: { endToEndId: e2e, sagaId: paymentSagaId(e2e), data: { signed: true } } });
    await waitFor('audit record', async () => (await auditRecords()).some((r) => r.end_to_end_id === e2e && r.transition_to === 'SIGNED'));
    await waitFor('deletion', () => runtime.inFlight === 0);
    const again = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue('sign').url, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
    expect((again.Messages ?? []).filter((m) => m.Body?.includes(e2e))).toEqual([]);
    expect(attemptsBySaga.get(paymentSagaId(e2e))).toBe(1);
    // Where its time went, with the wait in the queue from SQS's SentTimestamp.
    const handled = logLines.find((line) => line['msg'] === 'message handled' && line['endToEndId'] === e2e);
    expect(handled).toMatchObject({ queueMs: expect.any(Number) as unknown, handlerMs: expect.any(Number) as unknown, publishMs: expect.any(Number) as unknown });
  });

  it('moves a malformed message to the DLQ with its reason and keeps consuming', async () => {
    const poison = `{"detail-type":"PaymentRequested","source":"core.banking","detail":{"version":1,"probe":"${randomUUID()}"}}`;
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: poison }));
    const dead = await receiveUntil(queue('sign').dlqUrl, (body) => body === poison);
    expect(dead.attributes).toMatchObject({ 'selo-error-code': 'EVENT_DETAIL_INVALID', 'selo-source-queue': 'sign' });
    expect(dead.attributes['selo-error-reason']).toContain('sagaId');
    const e2e = endToEndId();
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: paymentRequested(e2e) }));
    await receiveUntil(queue('transmit').url, (body) => body.includes(e2e));
  });

  it('retries a transient failure after a backoff and then succeeds', async () => {
    const e2e = endToEndId();
    const sent = Date.now();
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: paymentRequested(e2e, { amount: 'flaky' }) }));
    await receiveUntil(queue('transmit').url, (body) => body.includes(e2e));
    expect(attemptsBySaga.get(paymentSagaId(e2e))).toBe(2);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(500);
  });

  it('keeps a message whose handler outlasts the visibility timeout from being delivered twice (heartbeat)', async () => {
    const declared = topology.queues.find((q) => q.key === 'sign')!;
    expect(declared.visibilityTimeoutSeconds).toBeLessThan(9);
    const e2e = endToEndId();
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: paymentRequested(e2e, { amount: 'slow' }) }));
    await receiveUntil(queue('transmit').url, (body) => body.includes(e2e), 20_000);
    await waitFor('deletion', () => runtime.inFlight === 0, 5_000);
    expect(attemptsBySaga.get(paymentSagaId(e2e))).toBe(1);
  }, 30_000);

  it('reports ready while polling with a healthy audit producer', async () => {
    const response = await fetch(`http://127.0.0.1:${runtime.healthPort ?? 0}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true, checks: { sqs: { ok: true }, audit: { ok: true } } });
  });
});
