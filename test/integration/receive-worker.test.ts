import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { BcbSimulator } from '../../infra/bcb-simulator/index.ts';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { BCB_MESSAGE_RECEIVED, RECEIVE_SOURCE, decodeBcbMessageReceived, decodeEventBody, inboxSagaId } from '../../shared/events/index.ts';
import type { BcbMessageReceivedData, EventEnvelope } from '../../shared/events/index.ts';
import { TrustStore, pemSigningKey, verifySpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { startReceiveWorker } from '../../workers/receive/index.ts';
import type { ReceiveWorker } from '../../workers/receive/index.ts';
import { readAuditRecords } from '../support/local-aws.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, postMessages, pull, signedPacs008, startTestSimulator } from './bcb-simulator/simulator-fixture.ts';
import type { SimulatorTestPki } from './bcb-simulator/simulator-fixture.ts';

// The worker reads ISPB_A's stream; ISPB_B pays ISPB_A, so ISPB_A receives a pacs.008 and a
// pacs.002 ACCC per payment (the simulator answers for ISPB_A, which accepts).
const topology = resolveTopology('local');
const VERIFY_QUEUE = topology.queues.find((q) => q.key === 'verify')?.name ?? '';
const STREAM_IDLE_MS = 1_500;
let pki: SimulatorTestPki;
let dir: string;
let stack: LocalStack;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyB: SigningKey;
let verifyUrl: string;
let worker: ReceiveWorker | undefined;
const bcbTrust = new TrustStore();

function workerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...stack.env(),
    SELO_ISPB: ISPB_A,
    SELO_BCB_URL: sim.url,
    SELO_BCB_CA: join(dir, 'ca.pem'),
    SELO_TLS_CERT: join(dir, 'client.pem'),
    SELO_TLS_KEY: join(dir, 'client.key'),
    SELO_BCB_TIMEOUT_MS: '3000',
    SELO_RECEIVE_POLL_TIMEOUT_MS: '3000',
    SELO_RECEIVE_BACKOFF_BASE_MS: '50',
    SELO_RECEIVE_BACKOFF_MAX_MS: '400',
    SELO_RECEIVE_CLOSE_TIMEOUT_MS: '3000',
    SELO_HEALTH_PORT: '0',
    SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent',
    ...extra,
  };
}

async function restartWorker(extra: Record<string, string> = {}): Promise<ReceiveWorker> {
  await worker?.close();
  worker = await startReceiveWorker({ env: workerEnv(extra) });
  return worker;
}

/** Pays ISPB_A `count` times from ISPB_B; resolves with the PI-ResourceIds ISPB_A is sent about them. */
async function paymentsToA(count: number): Promise<string[]> {
  const endToEndIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const { xml, endToEndId } = await signedPacs008(keyB, { from: ISPB_B, to: ISPB_A });
    expect((await postMessages(agentB, sim, ISPB_B, xml)).status).toBe(201);
    endToEndIds.push(endToEndId);
  }
  for (const id of endToEndIds) expect((await sim.ledger.waitForDecision(id, 10_000)).status).toBe('settled');
  const ids = sim.ledger.sent(ISPB_A).filter((m) => endToEndIds.includes(m.reference)).map((m) => m.resourceId);
  expect(ids).toHaveLength(2 * count);
  return ids;
}

type Received = EventEnvelope<BcbMessageReceivedData>;

/** Receives (and deletes) verify-queue messages until every id in `ids` arrived; then `settleMs` more for late copies. */
async function collect(ids: readonly string[], options: { timeoutMs?: number; settleMs?: number } = {}): Promise<Map<string, Received[]>> {
  const wanted = new Set(ids);
  const got = new Map<string, Received[]>();
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let settleUntil: number | undefined;
  while (settleUntil === undefined ? Date.now() < deadline : Date.now() < settleUntil) {
    const answer = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: verifyUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = answer.Messages ?? [];
    for (const m of messages) {
      const event = decodeEventBody(m.Body, decodeBcbMessageReceived, m.MessageId ?? '');
      if (!wanted.has(event.detail.data.resourceId)) continue;
      got.set(event.detail.data.resourceId, [...(got.get(event.detail.data.resourceId) ?? []), event]);
    }
    if (messages.length > 0) {
      await stack.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: verifyUrl, Entries: messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle ?? '' })) }));
    }
    if (settleUntil === undefined && [...wanted].every((id) => got.has(id))) settleUntil = Date.now() + (options.settleMs ?? 0);
  }
  const missing = [...wanted].filter((id) => !got.has(id));
  if (missing.length > 0) throw new Error(`${missing.length} of ${wanted.size} messages never reached the verify queue`);
  return got;
}

function inline(event: Received): string {
  const { payload } = event.detail.data;
  if (!('inline' in payload)) throw new Error('expected an inline payload');
  return payload.inline;
}

async function receiveAudit(ids: readonly string[]): Promise<AuditRecord[]> {
  const sagas = new Set(ids.map((id) => inboxSagaId(id)));
  return (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.worker === 'receive' && sagas.has(r.saga_id));
}

/** Established TCP connections to the simulator's port (Linux /proc/net/tcp: remote address column, state 01). */
function connectionsToSimulator(): number {
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, , remote, state] = line.trim().split(/\s+/);
      if (state === '01' && Number.parseInt(remote?.split(':').at(-1) ?? '', 16) === sim.port) count++;
    }
  }
  return count;
}

function allConfirmed(ids: readonly string[]): boolean {
  const sent = sim.ledger.sent(ISPB_A).filter((m) => ids.includes(m.resourceId));
  return sent.length === ids.length && sent.every((m) => m.confirmed);
}

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  dir = mkdtempSync(join(tmpdir(), 'selo-receive-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'client.pem'), pki.tlsA.certPem);
  writeFileSync(join(dir, 'client.key'), pki.tlsA.keyPem);
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
  sim = await startTestSimulator(pki, { adminPort: null, longPollMs: 200, streamIdleTimeoutMs: STREAM_IDLE_MS, settlementLimitMs: 10_000 });
  stack = await startLocalStack();
  verifyUrl = stack.provisioned?.queues.verify?.url ?? '';
  agentA = mtlsAgent(pki, pki.tlsA);
  agentB = mtlsAgent(pki, pki.tlsB);
  keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
  await restartWorker();
}, 120_000);

afterEach(() => {
  sim.faults.clear();
});

afterAll(async () => {
  await worker?.close();
  await agentA?.close();
  await agentB?.close();
  await stack?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('receive worker against the BCB simulator', () => {
  it('puts every message of the stream on the verify queue as BcbMessageReceived, bytes intact, audited, then confirms', async () => {
    const ids = await paymentsToA(3);
    const got = await collect(ids, { settleMs: 500 });
    for (const id of ids) {
      const copies = got.get(id) ?? [];
      expect(copies).toHaveLength(1);
      const event = copies[0] as Received;
      expect(event.detailType).toBe(BCB_MESSAGE_RECEIVED);
      expect(event.source).toBe(RECEIVE_SOURCE);
      expect(event.detail).toMatchObject({ version: 1, sagaId: inboxSagaId(id), attempt: 1 });
      expect(event.detail.data).toMatchObject({ channel: 'spi', resourceId: id, contentType: 'application/xml; charset=utf-8' });
      // The BCB's signature still verifies: not one byte changed on the way.
      expect(verifySpi(inline(event), { trustStore: bcbTrust }).fromIspb).toBe(BCB_ISPB);
    }
    await expect.poll(() => allConfirmed(ids), { timeout: 10_000 }).toBe(true);
    const audit = await receiveAudit(ids);
    expect(new Set(audit.map((r) => r.saga_id))).toEqual(new Set(ids.map((id) => inboxSagaId(id))));
    for (const record of audit) {
      expect(record).toMatchObject({ kind: 'response', system: 'spi', request_method: 'GET', response_status_code: 200 });
      expect(record.request_path).toMatch(new RegExp(`^/api/v1/out/${ISPB_A}/stream/`));
      const event = got.get(record.saga_id.slice('INBOX#'.length))?.[0] as Received;
      expect(record.response_body).toBe(inline(event));
      // Answers come gzip-compressed; the audit trail keeps the decoded message.
      expect(JSON.parse(record.response_header ?? '{}')).toMatchObject({ 'content-encoding': 'gzip' });
    }
    expect(worker?.stats()).toMatchObject({ streamsOpen: 6 });
  });

  it('splits a multipart answer into one entry per part, confirmed once all are durable', async () => {
    await worker?.close();
    const ids = await paymentsToA(6); // 12 messages wait while nobody reads
    expect(sim.queued(ISPB_A)).toBe(12);
    const fresh = await restartWorker();
    const got = await collect(ids, { settleMs: 500 });
    expect([...got.values()].every((copies) => copies.length === 1)).toBe(true);
    const byAnswer = new Map<string, number>();
    for (const r of await receiveAudit(ids)) byAnswer.set(`${r.request_path ?? ''}@${r.request_date ?? ''}`, (byAnswer.get(`${r.request_path ?? ''}@${r.request_date ?? ''}`) ?? 0) + 1);
    expect(Math.max(...byAnswer.values())).toBeGreaterThan(1);
    await expect.poll(() => allConfirmed(ids), { timeout: 10_000 }).toBe(true);
    expect(fresh.stats()).toMatchObject({ messagesRead: 12, messagesForwarded: 12, duplicatesDropped: 0 });
    expect(fresh.stats().batchesConfirmed).toBeLessThan(12);
  });

  it('drops stream duplicates: one verify-queue entry per PI-ResourceId', async () => {
    const before = worker?.stats().duplicatesDropped ?? 0;
    const injected = sim.faults.counts.streamDuplicate;
    sim.faults.set({ streamDuplicateRate: 1 });
    const ids = await paymentsToA(3);
    await expect.poll(() => sim.faults.counts.streamDuplicate - injected, { timeout: 10_000 }).toBeGreaterThanOrEqual(6);
    const got = await collect(ids, { settleMs: 1_500 });
    for (const id of ids) expect(got.get(id)).toHaveLength(1);
    await expect.poll(() => (worker?.stats().duplicatesDropped ?? 0) - before, { timeout: 10_000 }).toBeGreaterThanOrEqual(6);
    expect(sim.ledger.sent(ISPB_A).filter((m) => ids.includes(m.resourceId)).every((m) => m.deliveries >= 2)).toBe(true);
  });

  it('does not confirm while the verify queue cannot be written; the BCB redelivers with the same PI-ResourceId and nothing is lost', async () => {
    const failuresBefore = worker?.stats().failures ?? 0;
    await stack.clients.sqs.send(new DeleteQueueCommand({ QueueUrl: verifyUrl }));
    let ids: string[] = [];
    try {
      ids = await paymentsToA(2);
      // Delivered, refused by SQS, abandoned unconfirmed, delivered again after the stream idled out.
      await expect
        .poll(() => sim.ledger.sent(ISPB_A).filter((m) => ids.includes(m.resourceId)).every((m) => m.deliveries >= 2), { timeout: 20_000 })
        .toBe(true);
      expect(sim.ledger.sent(ISPB_A).filter((m) => ids.includes(m.resourceId)).some((m) => m.confirmed)).toBe(false);
      expect((worker?.stats().failures ?? 0) - failuresBefore).toBeGreaterThan(0);
    } finally {
      await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: VERIFY_QUEUE }));
    }
    const got = await collect(ids, { timeoutMs: 30_000, settleMs: 500 });
    for (const id of ids) expect(got.get(id)?.map((e) => e.detail.data.resourceId)).toEqual([id]);
    await expect.poll(() => allConfirmed(ids), { timeout: 15_000 }).toBe(true);
  });

  it('backs off and recovers from 503s and connection resets', async () => {
    await worker?.close();
    const ids = await paymentsToA(3);
    const errorsBefore = sim.faults.counts.error;
    const resetsBefore = sim.faults.counts.reset;
    // Only the worker talks to ICOM now: every fault hits its stream requests.
    sim.faults.set({ scope: 'icom', errorRate: 0.5, errorStatus: 503, resetRate: 0.3, budget: 20 });
    const fresh = await restartWorker();
    const got = await collect(ids, { timeoutMs: 30_000, settleMs: 500 });
    for (const id of ids) expect(got.get(id)).toHaveLength(1);
    expect(sim.faults.counts.error - errorsBefore).toBeGreaterThan(0);
    expect(sim.faults.counts.reset - resetsBefore).toBeGreaterThan(0);
    expect(fresh.stats().failures).toBeGreaterThan(0);
    await expect.poll(() => allConfirmed(ids), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => fresh.stats().streamsOpen, { timeout: 15_000 }).toBe(6);
  });

  it('answers 429 beyond the stream limit are backed off until a stream slot frees', async () => {
    await worker?.close();
    // Three streams held by someone else leave three for the worker; they idle out after STREAM_IDLE_MS.
    const held = await Promise.all([1, 2, 3].map(() => pull(agentA, sim, `/api/v1/out/${ISPB_A}/stream/start`)));
    expect(held.map((a) => a.status)).toEqual([204, 204, 204]);
    const fresh = await restartWorker();
    await expect.poll(() => fresh.stats().failures, { timeout: 10_000 }).toBeGreaterThan(0);
    const ids = await paymentsToA(2);
    await collect(ids, { timeoutMs: 20_000 });
    await expect.poll(() => fresh.stats().streamsOpen, { timeout: 20_000 }).toBe(6);
    expect(sim.openStreams(ISPB_A)).toBe(6);
  });

  it('closes cleanly: stops reading, DELETEs its streams, leaves new messages on the BCB, keeps no connection open', async () => {
    const current = worker as ReceiveWorker;
    const health = await fetch(`http://127.0.0.1:${current.healthPort}/live`);
    expect(health.status).toBe(200);
    await current.close();
    await current.close();
    worker = undefined;
    expect(current.stats().streamsOpen).toBe(0);
    expect(sim.openStreams(ISPB_A)).toBe(0);
    await expect(fetch(`http://127.0.0.1:${current.healthPort}/live`)).rejects.toThrow();
    const ids = await paymentsToA(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sim.queued(ISPB_A)).toBe(2);
    const baseline = connectionsToSimulator();
    // A new worker picks them up, and leaves no connection behind when it closes.
    const again = await restartWorker();
    await collect(ids);
    expect(connectionsToSimulator()).toBeGreaterThan(baseline);
    await again.close();
    worker = undefined;
    await expect.poll(() => connectionsToSimulator(), { timeout: 5_000 }).toBeLessThanOrEqual(baseline);
  });
});
