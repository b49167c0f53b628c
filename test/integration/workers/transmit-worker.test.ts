import { randomUUID } from 'node:crypto';
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
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { dictSagaId, echoSagaId, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { startTransmitWorker } from '../../../workers/transmit/index.ts';
import type { TransmitWorker } from '../../../workers/transmit/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import { creditTransfer, paymentRequestedEntry, readAuditRecords, subscribeQueue, workerTestEnv } from '../../support/local-aws.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let simulator: BcbSimulator;
let sign: SignWorker;
let transmit: TransmitWorker;
let sagas: SagaStore;
/** A downstream subscriber: its own rule and queue for selo.transmit's facts. */
let outcomesUrl: string;

function newEndToEndId(): string {
  return generateEndToEndId(ISPB);
}

async function requestPayment(endToEndId: string): Promise<void> {
  const transaction = creditTransfer(endToEndId, { amount: '75.30', acceptanceDateTime: new Date().toISOString() });
  const put = await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(topology.eventBusName, endToEndId, { message: 'pacs.008', transaction })] }));
  expect(put.FailedEntryCount).toBe(0);
}

async function outcomeOf(endToEndId: string, timeoutMs = 40_000): Promise<{ detailType: string; data: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: outcomesUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of got.Messages ?? []) {
      const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: { endToEndId?: string; data: Record<string, unknown> } };
      if (body.detail.endToEndId === endToEndId) return { detailType: body['detail-type'], data: body.detail.data };
    }
  }
  throw new Error(`no outcome for ${endToEndId} within ${timeoutMs} ms`);
}

async function auditFor(endToEndId: string): Promise<AuditRecord[]> {
  return (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.end_to_end_id === endToEndId);
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-transmit-pki-'));
  await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  simulator = await startBcbSimulator({ ...loadSimulatorPki(pkiDir), adminPort: null, settlementLimitMs: 5_000 });
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });

  outcomesUrl = await subscribeQueue(stack.clients, topology.eventBusName, 'downstream-transmit', { source: ['selo.transmit'] });

  const env = workerTestEnv({
    stackEnv: stack.env(), token, pkiDir, bcbUrl: simulator.url,
    extra: { SELO_BCB_TIMEOUT_MS: '1500', SELO_BACKOFF_BASE_SECONDS: '0', SELO_BACKOFF_MAX_SECONDS: '1' },
  });
  sign = await startSignWorker({ env });
  transmit = await startTransmitWorker({ env });
}, 120_000);

afterAll(async () => {
  await transmit?.close();
  await sign?.close();
  await stack?.close();
  await simulator?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('sign and transmit workers against the BCB simulator', () => {
  it('turns a PaymentRequested into a pacs.008 the simulator accepts and settles, with MessageTransmitted, audit and the saga TRANSMITTED', async () => {
    const endToEndId = newEndToEndId();
    await requestPayment(endToEndId);
    const outcome = await outcomeOf(endToEndId);
    expect(outcome.detailType).toBe('MessageTransmitted');
    expect(outcome.data.resourceId).toMatch(/\S+/);
    const decided = await simulator.ledger.waitForDecision(endToEndId, 10_000);
    expect(decided.status).toBe('settled');
    const saga = await sagas.get(paymentSagaId(endToEndId));
    expect(saga?.state).toBe('TRANSMITTED');
    expect(saga?.history.map((t) => t.to)).toEqual(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await expect
      .poll(async () => (await auditFor(endToEndId)).map((r) => `${r.kind}:${r.response_status_code ?? r.transition_to ?? ''}`).sort(), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(['response:201', 'transition:SIGNED', 'transition:TRANSMITTING', 'transition:TRANSMITTED']));
  });

  it('retries 5xx answers and connection resets with the same message, then succeeds, settling once', async () => {
    const endToEndId = newEndToEndId();
    simulator.faults.set({ scope: 'icom', errorRate: 1, errorStatus: 503, budget: 2 });
    await requestPayment(endToEndId);
    expect((await outcomeOf(endToEndId)).detailType).toBe('MessageTransmitted');
    expect((await simulator.ledger.waitForDecision(endToEndId, 10_000)).status).toBe('settled');
    expect(simulator.faults.counts.error).toBeGreaterThanOrEqual(2);
    // The refused attempts are in the audit trail too, not only the one that got its 201.
    await expect.poll(async () => (await auditFor(endToEndId)).filter((r) => r.response_status_code === 503).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    simulator.faults.clear();

    const reset = newEndToEndId();
    simulator.faults.set({ scope: 'icom', resetRate: 1, budget: 1 });
    await requestPayment(reset);
    expect((await outcomeOf(reset)).detailType).toBe('MessageTransmitted');
    expect((await simulator.ledger.waitForDecision(reset, 10_000)).status).toBe('settled');
    simulator.faults.clear();
  });

  it('turns a 4xx refusal into TransmissionRejected at once, without retrying', async () => {
    const endToEndId = newEndToEndId();
    simulator.faults.set({ scope: 'icom', errorRate: 1, errorStatus: 403, budget: 1 });
    const before = simulator.faults.counts.error;
    try {
      await requestPayment(endToEndId);
      const outcome = await outcomeOf(endToEndId);
      expect(outcome.detailType).toBe('TransmissionRejected');
      expect(outcome.data).toMatchObject({ status: 403, code: 'BCB_REQUEST_REJECTED' });
      expect((await sagas.get(paymentSagaId(endToEndId)))?.state).toBe('FAILED');
      expect(simulator.faults.counts.error - before).toBe(1);
    } finally {
      simulator.faults.clear();
    }
    expect(simulator.ledger.payment(endToEndId)).toBeUndefined();
  });

  it('ends a payment the BCB never took (503 on every attempt) in TransmissionFailed once the retry budget is spent', async () => {
    const endToEndId = newEndToEndId();
    simulator.faults.set({ scope: 'icom', errorRate: 1, errorStatus: 503 });
    try {
      await requestPayment(endToEndId);
      const outcome = await outcomeOf(endToEndId, 60_000);
      expect(outcome.detailType).toBe('TransmissionFailed');
      expect((await sagas.get(paymentSagaId(endToEndId)))?.state).toBe('FAILED');
    } finally {
      simulator.faults.clear();
    }
    expect(simulator.ledger.payment(endToEndId)).toBeUndefined();
  });

  it('marks a payment whose attempts may have reached the BCB as in doubt, never as failed', async () => {
    const endToEndId = newEndToEndId();
    simulator.faults.set({ scope: 'icom', hangRate: 1 });
    try {
      await requestPayment(endToEndId);
      const outcome = await outcomeOf(endToEndId, 90_000);
      expect(outcome.detailType).toBe('PaymentInDoubt');
      expect((await sagas.get(paymentSagaId(endToEndId)))?.state).toBe('IN_DOUBT');
    } finally {
      simulator.faults.clear();
    }
  });

  /** Core banking's createEntry of a fresh phone key, as a DictRequested on the bus. */
  async function requestCreateEntry(requestId: string, keyPrefix: string, accountNumber: string): Promise<{ Entry: { Key: string } }> {
    const body = {
      Entry: {
        Key: `${keyPrefix}${String(Date.now()).slice(-8)}`,
        KeyType: 'PHONE',
        Account: { Participant: ISPB, Branch: '0001', AccountNumber: accountNumber, AccountType: 'CACC', OpeningDate: '2010-01-10T03:00:00Z' },
        Owner: { Type: 'NATURAL_PERSON', TaxIdNumber: '11122233300', Name: 'João Silva' },
      },
      Reason: 'USER_REQUESTED',
      RequestId: requestId,
    };
    await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [{
          EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'DictRequested',
          Detail: JSON.stringify({ version: 1, sagaId: dictSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { operation: 'createEntry', body } }),
        }],
      }),
    );
    return body;
  }

  /** The DictResponseReceived events of `requestId` on the verify queue, once the first arrived (or the time is up). */
  async function dictAnswersOf(requestId: string, timeoutMs: number): Promise<{ status?: number; body?: string }[]> {
    const verifyUrl = stack.provisioned?.queues.verify?.url ?? '';
    const deadline = Date.now() + timeoutMs;
    const answers: { status?: number; body?: string }[] = [];
    while (answers.length === 0 && Date.now() < deadline) {
      const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: verifyUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const m of got.Messages ?? []) {
        const envelope = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: { requestId?: string; data: { status?: number; body?: string } } };
        if (envelope['detail-type'] === 'DictResponseReceived' && envelope.detail.requestId === requestId) answers.push(envelope.detail.data);
      }
    }
    return answers;
  }

  it('performs a signed DICT CreateEntry and hands the signed answer to the verify queue', async () => {
    const requestId = randomUUID();
    await requestCreateEntry(requestId, '+55619', '0007654321');
    const [answer] = await dictAnswersOf(requestId, 20_000);
    expect(answer?.status).toBe(201);
    expect(answer?.body).toContain('CreateEntryResponse');
    expect(answer?.body).toContain('Signature');
    expect((await sagas.get(dictSagaId(requestId)))?.state).toBe('TRANSMITTED');
  });

  it('resends a DICT write the DICT answered 409 ResourceConflict, and hands on the answer to the resend, not the conflict', async () => {
    const requestId = randomUUID();
    const conflictsBefore = simulator.dict.resourceConflicts;
    simulator.dict.conflictNextWrites(1);
    try {
      const body = await requestCreateEntry(requestId, '+55618', '0007654322');
      const answers = await dictAnswersOf(requestId, 40_000);
      expect(simulator.dict.resourceConflicts - conflictsBefore).toBe(1);
      expect(answers.map((a) => a.status)).toEqual([201]);
      expect(simulator.dict.entries.has(body.Entry.Key)).toBe(true);
      expect((await sagas.get(dictSagaId(requestId)))?.state).toBe('TRANSMITTED');
    } finally {
      simulator.dict.conflictNextWrites(0);
    }
  }, 60_000);

  it('sends a pibr.001 echo that the simulator takes and answers with a pibr.002', async () => {
    const requestId = randomUUID();
    await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [{
          EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested',
          Detail: JSON.stringify({ version: 1, sagaId: echoSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pibr.001', echo: { data: 'ping', requestedAt: new Date().toISOString() } } }),
        }],
      }),
    );
    const sagas2 = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
    await expect.poll(async () => (await sagas2.get(echoSagaId(requestId)))?.state, { timeout: 20_000 }).toBe('TRANSMITTED');
    await simulator.idle();
    expect(simulator.ledger.sent(ISPB).some((m) => m.type === 'pibr.002')).toBe(true);
  });

  it('reuses TLS connections: many requests per handshake', () => {
    const stats = transmit.bcbStats();
    expect(stats.requests).toBeGreaterThan(stats.handshakes);
  });
});
