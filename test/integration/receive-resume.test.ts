import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startWorkerProcesses } from '../../bin/demo/worker-processes.ts';
import type { WorkerProcesses } from '../../bin/demo/worker-processes.ts';
import type { BcbSimulator } from '../../infra/bcb-simulator/index.ts';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { decodeBcbMessageReceived, decodeEventBody } from '../../shared/events/index.ts';
import { pemSigningKey } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { DynamoStreamPositions, StreamLeaseLostError } from '../../workers/receive/index.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './bcb-simulator/simulator-fixture.ts';

// A receive worker in a child process (`selo worker receive`, what an ECS task runs) reads
// ISPB_A's stream; it is SIGKILLed (no DELETE, no release: its 6 streams stay open at the
// simulator, which keeps an abandoned stream for 30 s) and a new one is started.
const topology = resolveTopology('local');
const LEASE_MS = 1_500;
let dir: string;
let stack: LocalStack;
let sim: BcbSimulator;
let agentB: Agent;
let keyB: SigningKey;
let verifyUrl: string;
const running: WorkerProcesses[] = [];

function workerEnv(): Record<string, string> {
  return {
    ...stack.env(),
    SELO_ISPB: ISPB_A,
    SELO_BCB_URL: sim.url,
    SELO_BCB_CA: join(dir, 'ca.pem'),
    SELO_TLS_CERT: join(dir, 'client.pem'),
    SELO_TLS_KEY: join(dir, 'client.key'),
    SELO_BCB_TIMEOUT_MS: '5000',
    SELO_RECEIVE_POLL_TIMEOUT_MS: '5000',
    SELO_RECEIVE_BACKOFF_BASE_MS: '50',
    SELO_RECEIVE_BACKOFF_MAX_MS: '400',
    SELO_RECEIVE_LEASE_MS: String(LEASE_MS),
    SELO_HEALTH_PORT: '0',
    SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent',
  };
}

async function startWorker(): Promise<WorkerProcesses> {
  const workers = await startWorkerProcesses([['receive']], workerEnv());
  running.push(workers);
  return workers;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Posts `count` payments from ISPB_B to ISPB_A (each gives ISPB_A a pacs.008 and an ACCC); resolves with their EndToEndIds. */
async function payA(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { xml, endToEndId } = await signedPacs008(keyB, { from: ISPB_B, to: ISPB_A });
    expect((await postMessages(agentB, sim, ISPB_B, xml)).status).toBe(201);
    ids.push(endToEndId);
  }
  return ids;
}

/** Every PI-ResourceId the simulator put on ISPB_A's stream about these payments (two per payment once settled). */
async function queuedFor(endToEndIds: readonly string[]): Promise<string[]> {
  for (const id of endToEndIds) expect((await sim.ledger.waitForDecision(id, 20_000)).status).toBe('settled');
  return sim.ledger.sent(ISPB_A).filter((m) => endToEndIds.includes(m.reference)).map((m) => m.resourceId);
}

/** Drains the verify queue until every id in `ids` was seen in `seen` (or the bound passes). */
async function drainUntil(ids: readonly string[], seen: Set<string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !ids.every((id) => seen.has(id))) {
    const answer = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: verifyUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = answer.Messages ?? [];
    for (const m of messages) seen.add(decodeEventBody(m.Body, decodeBcbMessageReceived, m.MessageId ?? '').detail.data.resourceId);
    if (messages.length > 0) {
      await stack.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: verifyUrl, Entries: messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle ?? '' })) }));
    }
  }
}

beforeAll(async () => {
  const pki = await createSimulatorTestPki();
  dir = mkdtempSync(join(tmpdir(), 'selo-receive-resume-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'client.pem'), pki.tlsA.certPem);
  writeFileSync(join(dir, 'client.key'), pki.tlsA.keyPem);
  // The default 30 s expiry of an abandoned stream; payments get 60 s so that none ends AB03 here.
  sim = await startTestSimulator(pki, { adminPort: null, longPollMs: 500, streamIdleTimeoutMs: 30_000, settlementLimitMs: 60_000 });
  stack = await startLocalStack();
  verifyUrl = stack.provisioned?.queues.verify?.url ?? '';
  agentB = mtlsAgent(pki, pki.tlsB);
  keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
}, 120_000);

afterAll(async () => {
  for (const workers of running) await workers.stop(5_000);
  await agentB?.close();
  await stack?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('receive worker across a SIGKILL', () => {
  it('continues the killed worker’s streams: no 429 after the restart, and every message queued for the participant reaches the verify queue', async () => {
    const first = await startWorker();
    await expect.poll(() => sim.openStreams(ISPB_A), { timeout: 20_000 }).toBe(6);
    const seen = new Set<string>();
    const before = await payA(5);
    await drainUntil(await queuedFor(before), seen, 20_000);

    // Payments keep coming while the worker dies: some of their messages are read and not yet
    // confirmed (or not read at all) when it goes.
    const during = await payA(5);
    const [child] = first.children;
    if (child === undefined) throw new Error('no worker process');
    child.kill('SIGKILL');
    await exited(child);
    const after = await payA(5);
    // The killed worker's streams still count: a new stream/start would be answered 429.
    expect(sim.openStreams(ISPB_A)).toBe(6);
    const atRestart = sim.streamCounters(ISPB_A);

    await startWorker();
    const ids = await queuedFor([...before, ...during, ...after]);
    expect(ids).toHaveLength(30);
    await drainUntil(ids, seen, 60_000);
    expect(ids.filter((id) => !seen.has(id))).toEqual([]);
    const now = sim.streamCounters(ISPB_A);
    // Nothing waited for the killed worker's streams to expire, and the new worker was never refused.
    expect(now.refused - atRestart.refused).toBe(0);
    expect(now.expired - atRestart.expired).toBe(0);
    // It continued the 6 streams rather than opening new ones.
    expect(now.started - atRestart.started).toBe(0);
    expect(sim.openStreams(ISPB_A)).toBe(6);
    await expect.poll(() => sim.ledger.sent(ISPB_A).filter((m) => ids.includes(m.resourceId)).every((m) => m.confirmed), { timeout: 15_000 }).toBe(true);
  }, 180_000);

  it('leaves no saved position behind after a clean shutdown (SIGTERM DELETEs the streams and forgets them)', async () => {
    for (const workers of running.splice(0)) await workers.stop(15_000);
    expect(sim.openStreams(ISPB_A)).toBe(0);
    const positions = new DynamoStreamPositions({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name, ispb: ISPB_A, owner: 'inspector' });
    for (let slot = 0; slot < 6; slot++) expect(await positions.claim(slot)).toEqual({ status: 'claimed', pullNext: undefined });
    for (let slot = 0; slot < 6; slot++) await positions.release(slot, true);
  }, 60_000);
});

describe('stream positions in the saga table', () => {
  const ISPB = '99999077';
  let clock = 1_700_000_000_000;
  const store = (owner: string): DynamoStreamPositions =>
    new DynamoStreamPositions({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name, ispb: ISPB, owner, leaseMs: 1_000, now: () => clock });

  it('lets one owner hold a slot until its lease ends, and hands the saved position to the next', async () => {
    const a = store('a');
    const b = store('b');
    expect(await a.claim(0)).toEqual({ status: 'claimed', pullNext: undefined });
    await a.save(0, `/api/v1/out/${ISPB}/stream/x-1`);
    expect(await b.claim(0)).toEqual({ status: 'held', until: clock + 1_000 });
    clock += 600;
    await a.renew(0);
    clock += 600;
    expect((await b.claim(0)).status).toBe('held');
    clock += 1_001;
    expect(await b.claim(0)).toEqual({ status: 'claimed', pullNext: `/api/v1/out/${ISPB}/stream/x-1` });
    await expect(a.save(0, `/api/v1/out/${ISPB}/stream/x-2`)).rejects.toBeInstanceOf(StreamLeaseLostError);
    await expect(a.renew(0)).rejects.toMatchObject({ code: 'STREAM_LEASE_LOST' });
    // A release by the former owner changes nothing.
    await a.release(0, true);
    expect((await a.claim(0)).status).toBe('held');
  });

  it('keeps the position of a slot released without DELETE, and forgets a closed one', async () => {
    const a = store('a');
    const b = store('b');
    await a.claim(1);
    await a.save(1, `/api/v1/out/${ISPB}/stream/y-4`);
    await a.release(1, false);
    expect(await b.claim(1)).toEqual({ status: 'claimed', pullNext: `/api/v1/out/${ISPB}/stream/y-4` });
    await b.release(1, true);
    expect(await a.claim(1)).toEqual({ status: 'claimed', pullNext: undefined });
  });

  it('validates its options, naming the field', () => {
    expect(() => new DynamoStreamPositions({ client: stack.clients.dynamodb, tableName: 't', ispb: '123' })).toThrow(/ispb must be an ISPB \(8 characters \[0-9A-Z\]\), got "123"/);
    expect(() => new DynamoStreamPositions({ client: stack.clients.dynamodb, tableName: 't', ispb: ISPB, leaseMs: 10 })).toThrow(/leaseMs must be an integer of at least 300, got 10/);
  });
});
