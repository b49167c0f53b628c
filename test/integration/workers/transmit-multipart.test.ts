import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { loadSimulatorPki, startBcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { paymentSagaId } from '../../../shared/events/index.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { startTransmitWorker } from '../../../workers/transmit/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import { creditTransfer, paymentRequestedEntry, readAuditRecords, subscribeQueue, workerTestEnv } from '../../support/local-aws.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { waitUntil } from '../../support/wait-until.ts';

// SELO_ICOM_MULTIPART_MAX: SPI messages that the transmit worker handles together go to the
// simulator in multipart/mixed POSTs of up to MAX messages, each keeping its own saga and outcome.
const topology = resolveTopology('local');
const ISPB = '99999004';
const MAX = 4;
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let simulator: BcbSimulator;
let sign: SignWorker;
let sagas: SagaStore;
let env: Record<string, string>;
let outcomesUrl: string;

/** Publishes one PaymentRequested per id and waits until every one is signed (waiting in the transmit queue). */
async function signPayments(count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => generateEndToEndId(ISPB));
  const entries = ids.map((id) => paymentRequestedEntry(topology.eventBusName, id, { message: 'pacs.008', transaction: creditTransfer(id, { acceptanceDateTime: new Date().toISOString() }) }));
  const put = await stack.clients.events.send(new PutEventsCommand({ Entries: entries }));
  expect(put.FailedEntryCount).toBe(0);
  await waitUntil('every payment signed', async () => (await Promise.all(ids.map((id) => sagas.get(paymentSagaId(id))))).every((s) => s?.state === 'SIGNED'), { timeoutMs: 60_000 });
  return ids;
}

/** The transmit worker's facts about `ids`, once there is one for each. */
async function outcomesOf(ids: readonly string[]): Promise<Map<string, { detailType: string; data: Record<string, unknown> }>> {
  const wanted = new Set(ids);
  const found = new Map<string, { detailType: string; data: Record<string, unknown> }>();
  await waitUntil('a transmit outcome for every payment', async () => {
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: outcomesUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of got.Messages ?? []) {
      const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: { endToEndId?: string; data: Record<string, unknown> } };
      const id = body.detail.endToEndId ?? '';
      if (wanted.has(id)) {
        // A second fact about one payment would be a duplicate transmission.
        expect(found.has(id), `a second transmit fact for ${id}`).toBe(false);
        found.set(id, { detailType: body['detail-type'], data: body.detail.data });
      }
    }
    return found.size === wanted.size;
  }, { timeoutMs: 60_000 });
  return found;
}

/** The simulator's received messages of these payments, by the POST that carried them. */
function postsCarrying(ids: readonly string[]): Map<number, string[]> {
  const bizMsgIdrs = new Map(ids.map((id) => [simulator.ledger.payment(id)?.bizMsgIdr ?? '', id]));
  const posts = new Map<number, string[]>();
  for (const received of simulator.ledger.received()) {
    const id = bizMsgIdrs.get(received.bizMsgIdr ?? '');
    if (id === undefined || received.post === undefined) continue;
    posts.set(received.post, [...(posts.get(received.post) ?? []), id]);
  }
  return posts;
}

async function expectSettledOnce(ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    expect((await simulator.ledger.waitForDecision(id, 20_000)).status).toBe('settled');
    const saga = await sagas.get(paymentSagaId(id));
    // Every transition exactly once.
    expect(saga?.history.map((t) => t.to)).toEqual(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
  }
  // Each message stored once by the simulator: never resent after its 201.
  const stored = Array.from(postsCarrying(ids).values()).flat();
  expect(stored.sort()).toEqual([...ids].sort());
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-transmit-multipart-pki-'));
  await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  simulator = await startBcbSimulator({ ...loadSimulatorPki(pkiDir), adminPort: null, settlementLimitMs: 10_000 });
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  outcomesUrl = await subscribeQueue(stack.clients, topology.eventBusName, 'downstream-multipart', { source: ['selo.transmit'] });
  env = workerTestEnv({
    stackEnv: stack.env(), token, pkiDir, bcbUrl: simulator.url,
    extra: {
      SELO_BCB_TIMEOUT_MS: '5000', SELO_BACKOFF_BASE_SECONDS: '0', SELO_BACKOFF_MAX_SECONDS: '1',
      // A full batch goes at once; the linger only decides when a partial one goes. Generous, so
      // that a loaded machine cannot split the messages the worker received together.
      SELO_ICOM_MULTIPART_MAX: String(MAX), SELO_ICOM_MULTIPART_LINGER_MS: '1000',
    },
  });
  sign = await startSignWorker({ env });
}, 120_000);

afterAll(async () => {
  await sign?.close();
  await stack?.close();
  await simulator?.close();
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('transmit worker with SELO_ICOM_MULTIPART_MAX', () => {
  it('sends 10 payments waiting together in ceil(10/4) = 3 multipart POSTs, each with its own PI-ResourceId, saga and settlement', async () => {
    const ids = await signPayments(10);
    const transmit = await startTransmitWorker({ env });
    try {
      const outcomes = await outcomesOf(ids);
      expect([...outcomes.values()].map((o) => o.detailType)).toEqual(Array(10).fill('MessageTransmitted'));
      expect(new Set([...outcomes.values()].map((o) => o.data.resourceId)).size).toBe(10);
      await expectSettledOnce(ids);
      const posts = postsCarrying(ids);
      expect(posts.size).toBe(Math.ceil(10 / MAX));
      expect([...posts.values()].map((p) => p.length).sort()).toEqual([2, 4, 4]);
    } finally {
      await transmit.close();
    }
    // Each payment's audit trail has its exchange: the multipart request and the ICOM's 201.
    await expect
      .poll(async () => {
        const records = (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.kind === 'response' && ids.includes(r.end_to_end_id ?? ''));
        return records.filter((r) => r.response_status_code === 201 && (r.request_header ?? '').includes('multipart/mixed; boundary=')).length;
      }, { timeout: 15_000 })
      .toBe(10);
  });

  it('retries every message of a multipart POST answered 503 with the same bytes, without duplicates, each settling once', async () => {
    const ids = await signPayments(MAX);
    simulator.faults.set({ scope: 'icom', errorRate: 1, errorStatus: 503, budget: 1 });
    const before = simulator.faults.counts.error;
    const transmit = await startTransmitWorker({ env });
    try {
      const outcomes = await outcomesOf(ids);
      expect([...outcomes.values()].map((o) => o.detailType)).toEqual(Array(MAX).fill('MessageTransmitted'));
      expect(simulator.faults.counts.error - before).toBe(1);
      await expectSettledOnce(ids);
    } finally {
      simulator.faults.clear();
      await transmit.close();
    }
    // The refused POST carried all four: each has the 503 in its audit trail, then its 201.
    await expect
      .poll(async () => {
        const records = (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.kind === 'response' && ids.includes(r.end_to_end_id ?? ''));
        return ids.map((id) => records.filter((r) => r.end_to_end_id === id).map((r) => r.response_status_code).sort().join(','));
      }, { timeout: 15_000 })
      .toEqual(Array(MAX).fill('201,503'));
  });
});
