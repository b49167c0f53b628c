import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_REJECT_REASON, RECEIVER_OF, demoPayment } from '../../bin/demo/demo-plan.ts';
import type { BcbSimulator } from '../../infra/bcb-simulator/index.ts';
import { startLocalPipeline, startLocalStack } from '../../infra/local/index.ts';
import type { LocalPipeline, LocalStack } from '../../infra/local/index.ts';
import { prepareLocalHsm } from '../../infra/local/local-hsm.ts';
import { resolveTopology } from '../../infra/topology.ts';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import type { Saga } from '../../shared/saga/index.ts';
import { readAuditRecords } from '../support/local-aws.ts';
import { createTestToken } from '../support/softhsm.ts';
import type { TestToken } from '../support/softhsm.ts';
import { waitUntil } from '../support/wait-until.ts';
import { Subscriber, seedPayment } from './compensate-support.ts';

/**
 * Issue 17's acceptance, through the real local stack: core banking's payment goes sign (SoftHSM)
 * → transmit (mTLS) → the BCB simulator, which decides it but drops its pacs.002 to us
 * (`dropPayerStatusRate`); the compensation worker's sweeper marks it in doubt and asks the BCB
 * (`OutcomeQueryRequested`) → sign signs a camt.060 in the HSM → transmit POSTs it to ICOM → the
 * simulator answers a signed camt.054 on our ICOM stream → receive → verify, which matches it to
 * the in-doubt payment and resolves it through resolveSaga; `selo saga resolve` runs as a child
 * process. EventBridge emulator and its rules, SQS, DynamoDB and Kinesis are the real stand-ins.
 */

const SELO = fileURLToPath(new URL('../../bin/selo.ts', import.meta.url));
const topology = resolveTopology('local');
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let pipeline: LocalPipeline;
let sim: BcbSimulator;
let ispb: string;
let sagas: SagaStore;
let downstream: Subscriber;

const OUTCOMES = ['PaymentInDoubt', 'PaymentSettled', 'PaymentRejected', 'PaymentReversalRequested', 'PaymentCompensated', 'OutcomeConflict', 'SignatureInvalid'];

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-in-doubt-'));
  const env = { SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin };
  await prepareLocalHsm(pkiDir, env);
  stack = await startLocalStack();
  ispb = loadConfig(stack.env()).ispb;
  pipeline = await startLocalPipeline({
    stack,
    pkiDir,
    env: { ...env, SOFTHSM2_CONF: token.conf, SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent' },
    logger: createLogger({ name: 'in-doubt-test', level: 'silent' }),
    // The SPI decides every payment at once (one receiver accepts, one rejects) and every pacs.002
    // to us is lost: for selo each payment is in doubt.
    simulator: {
      longPollMs: 500,
      faults: { dropPayerStatusRate: 1 },
      participants: [{ ispb: RECEIVER_OF.accept, receiver: { mode: 'accept' } }, { ispb: RECEIVER_OF.reject, receiver: { mode: 'reject', reasonCode: DEMO_REJECT_REASON } }],
    },
    workerEnv: {
      SELO_SQS_WAIT_SECONDS: '1',
      SELO_BACKOFF_BASE_SECONDS: '0',
      SELO_BACKOFF_MAX_SECONDS: '1',
      // Payments count as in doubt 100 ms after TRANSMITTED (the SPI's 40 s, shortened), and the
      // BCB is asked about each at most every 5 s.
      SELO_SWEEP_INTERVAL_MS: '200',
      SELO_SPI_SETTLEMENT_LIMIT_MS: '100',
      SELO_IN_DOUBT_MARGIN_MS: '0',
      SELO_IN_DOUBT_QUERY_INTERVAL_MS: '5000',
    },
  });
  sim = pipeline.simulator;
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  downstream = new Subscriber(stack);
  await downstream.start(`downstream-in-doubt-${randomUUID().slice(0, 8)}`, { source: [{ prefix: 'selo.' }], 'detail-type': OUTCOMES });
}, 120_000);

afterAll(async () => {
  await downstream?.stop();
  await pipeline?.stop();
  await stack?.close();
  token?.cleanup();
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

/** Core banking asks selo to pay `outcome`'s receiver. */
async function pay(outcome: 'accept' | 'reject', index: number): Promise<{ endToEndId: string; sagaId: string; amount: string }> {
  const payment = demoPayment(topology.eventBusName, ispb, outcome, index, new Date());
  const result = await stack.clients.events.send(new PutEventsCommand({ Entries: [payment.entry] }));
  expect(result.FailedEntryCount ?? 0).toBe(0);
  const amount = (JSON.parse(payment.entry.Detail ?? '{}') as { data: { transaction: { amount: string } } }).data.transaction.amount;
  return { endToEndId: payment.endToEndId, sagaId: `PAY#${payment.endToEndId}`, amount };
}

/** The query sagas (`QUERY#<MsgId>`) that asked about `endToEndId`, from the simulator's record of what we posted. */
async function queriesAbout(endToEndId: string): Promise<Saga[]> {
  const posted = sim.ledger.received().filter((m) => m.type === 'camt.060' && m.bizMsgIdr !== undefined);
  const found = await Promise.all(posted.map((m) => sagas.get(`QUERY#${m.bizMsgIdr ?? ''}`)));
  return found.filter((q): q is Saga => q !== undefined && q.endToEndId === endToEndId);
}

/** Runs the CLI in a child process: the stand-ins it talks to live in this process. */
function selo(args: readonly string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SELO, ...args], { env: { PATH: process.env.PATH ?? '', ...stack.env(), ...env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

function counts(sagaId: string): Record<string, number> {
  return Object.fromEntries(OUTCOMES.map((type) => [type, downstream.of(sagaId, type).length]));
}

async function auditOf(sagaId: string): Promise<AuditRecord[]> {
  return (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.saga_id === sagaId);
}

/** Lets late duplicates (a republished fact, a second compensation) arrive before counting. */
function settle(ms = 2_000): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('in-doubt payments (issue 17)', () => {
  it('resolves a payment whose pacs.002 never came as settled from the BCB\'s signed camt.054 read on the ICOM stream, once, without any reversal, audited with the answer', async () => {
    const { endToEndId, sagaId, amount } = await pay('accept', 1);
    await downstream.waitFor(sagaId, 'PaymentInDoubt');
    const [settled] = await downstream.waitFor(sagaId, 'PaymentSettled', { timeoutMs: 60_000 });
    // The SPI did settle it: its ledger says so, and its pacs.002 to us was the one dropped.
    expect(sim.ledger.payment(endToEndId)?.status).toBe('settled');
    expect(settled?.source).toBe('selo.verify');
    expect(settled?.detail.data).toMatchObject({ status: 'ACSC', endToEndId, resolution: { by: 'bcb-query' } });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('SETTLED');
    const resolved = saga?.history.at(-1);
    expect(resolved).toMatchObject({ from: 'IN_DOUBT', to: 'SETTLED', key: 'settled' });
    expect(resolved?.reason).toMatch(new RegExp(`^resolved settled by the BCB's answer .*camt\\.054 M00038166\\w+ answering camt\\.060 M${ispb}\\w+ for ${endToEndId}: entry BOOK DBIT ${amount.replace('.', '\\.')}`));

    // The question went out through sign and transmit (a camt.060 signed in the HSM, POSTed to
    // ICOM and accepted by the simulated SPI), the answer came back through receive and verify.
    const [query] = await queriesAbout(endToEndId);
    expect(query?.state).toBe('COMPLETED');
    expect(query?.history.map((t) => t.to)).toEqual(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'COMPLETED']);
    expect(query?.facts).toMatchObject({ paymentSagaId: sagaId, amount });
    const posted = sim.ledger.received().find((m) => m.bizMsgIdr === query?.requestId);
    expect(posted).toMatchObject({ type: 'camt.060', outcome: 'accepted' });

    await settle();
    expect(counts(sagaId)).toEqual({ PaymentInDoubt: 1, PaymentSettled: 1, PaymentRejected: 0, PaymentReversalRequested: 0, PaymentCompensated: 0, OutcomeConflict: 0, SignatureInvalid: 0 });
    const audit = await waitUntil('the resolution audited', async () => {
      const records = await auditOf(sagaId);
      return records.some((r) => r.transition_to === 'SETTLED') ? records : undefined;
    });
    const transitions = audit.filter((r) => r.kind === 'transition').map((r) => `${r.worker} ${r.transition_from ?? ''}→${r.transition_to ?? ''}`);
    expect(transitions.filter((t) => t.includes('IN_DOUBT'))).toEqual(['compensate TRANSMITTED→IN_DOUBT', 'verify IN_DOUBT→SETTLED']);
    // The exchange itself: our signed camt.060 as transmitted, the BCB's camt.054 as it signed it.
    const queryAudit = await waitUntil('the query audited', async () => {
      const records = await auditOf(query?.sagaId ?? '');
      return records.some((r) => r.transition_to === 'COMPLETED') ? records : undefined;
    });
    const sent = queryAudit.find((r) => r.kind === 'response' && r.worker === 'transmit');
    expect(sent).toMatchObject({ request_method: 'POST', request_path: `/api/v1/in/${ispb}/msgs`, response_status_code: 201 });
    expect(sent?.request_body).toContain('<ReqdMsgNmId>camt.054</ReqdMsgNmId>');
    expect(sent?.request_body).toContain('ds:SignatureValue');
    const answer = audit.find((r) => r.kind === 'response' && r.worker === 'verify');
    expect(answer).toMatchObject({ response_signature_valid: true });
    expect(answer?.response_body).toContain('<Cd>BOOK</Cd>');
    expect(answer?.response_body).toContain('ds:SignatureValue');
  }, 90_000);

  it('keeps a payment the BCB does not know as settled IN_DOUBT, and `selo saga resolve` rejects it once: one PaymentRejected, one reversal, audited with the operator', async () => {
    // The SPI rejected it (the receiver refused) and that pacs.002 to us was lost: the BCB's
    // answer is "no booked entry", which never counts as a rejection.
    const { endToEndId, sagaId, amount } = await pay('reject', 2);
    await downstream.waitFor(sagaId, 'PaymentInDoubt');
    const asked = await waitUntil('the BCB answered', async () => {
      const saga = await sagas.get(sagaId);
      return saga?.facts.bcbQuery !== undefined ? saga : undefined;
    }, { timeoutMs: 60_000 });
    expect(sim.ledger.payment(endToEndId)?.status).toBe('rejected');
    expect(asked.state).toBe('IN_DOUBT');
    expect(asked.facts.bcbQuery).toMatch(new RegExp(`camt\\.054 M00038166\\w+ answering camt\\.060 M${ispb}\\w+ for ${endToEndId}: entry INFO DBIT 0\\.00 error ENNF`));
    expect((await queriesAbout(endToEndId)).map((q) => q.state)).toContain('COMPLETED');

    const resolved = await selo(['saga', 'resolve', endToEndId, '--outcome', 'rejected', '--evidence', 'SPI desk ticket 4711: rejected by the receiver', '--operator', 'alice']);
    expect(resolved.stderr).toBe('');
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toContain(`${sagaId}: resolved rejected, now REJECTED; published PaymentRejected`);

    const [rejected] = await downstream.waitFor(sagaId, 'PaymentRejected');
    expect(rejected?.source).toBe('selo.operations');
    expect(rejected?.detail.data).toMatchObject({ status: 'RJCT', reason: { code: 'NARR', additionalInformation: 'SPI desk ticket 4711: rejected by the receiver' }, resolution: { by: 'operator', operators: ['alice'] } });
    const [reversal] = await downstream.waitFor(sagaId, 'PaymentReversalRequested');
    expect(reversal?.detail.data).toMatchObject({ compensationId: `${sagaId}#sign`, amount, reasonCode: 'NARR', trigger: 'PaymentRejected' });
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await waitUntil('COMPENSATED', async () => (await sagas.get(sagaId))?.state === 'COMPENSATED');

    // A second resolve, and one that contradicts it, change nothing and say so.
    const again = await selo(['saga', 'resolve', sagaId, '--outcome', 'rejected', '--evidence', 'again', '--operator', 'bob']);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/already resolved rejected \(resolution:[\w-]+\), now COMPENSATED; nothing done\n$/);
    const contradicting = await selo(['saga', 'resolve', endToEndId, '--outcome', 'settled', '--evidence', 'oops', '--operator', 'bob']);
    expect(contradicting.status).toBe(1);
    expect(contradicting.stderr).toContain('RESOLUTION_CONTRADICTED');

    await settle();
    expect(counts(sagaId)).toEqual({ PaymentInDoubt: 1, PaymentSettled: 0, PaymentRejected: 1, PaymentReversalRequested: 1, PaymentCompensated: 1, OutcomeConflict: 0, SignatureInvalid: 0 });
    const transitions = await waitUntil('the compensation audited', async () => {
      const records = (await auditOf(sagaId)).filter((r) => r.kind === 'transition');
      return records.some((r) => r.transition_to === 'COMPENSATED') ? records : undefined;
    });
    const fromDoubt = transitions.map((r) => `${r.worker} ${r.transition_from ?? ''}→${r.transition_to ?? ''}`).slice(transitions.findIndex((r) => r.transition_to === 'IN_DOUBT'));
    expect(fromDoubt).toEqual([
      'compensate TRANSMITTED→IN_DOUBT',
      'operations IN_DOUBT→REJECTED',
      'compensate REJECTED→COMPENSATING',
      'compensate COMPENSATING→COMPENSATED',
    ]);
    const byOperator = transitions.find((r) => r.worker === 'operations');
    expect(byOperator?.transition_reason).toMatch(/^resolved rejected by operator alice: "SPI desk ticket 4711: rejected by the receiver" \[source resolution:[\w-]+\]$/);
  }, 120_000);

  it('with SELO_RESOLVE_APPROVALS=2 takes effect only when a second operator approves; the requester cannot approve', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
    const fourEyes = { SELO_RESOLVE_APPROVALS: '2' };
    const requested = await selo(['saga', 'resolve', endToEndId, '--outcome', 'settled', '--evidence', 'camt.053 statement line 17', '--operator', 'alice'], fourEyes);
    expect(requested.status).toBe(0);
    expect(requested.stdout).toContain('settled requested by alice');
    expect((await sagas.get(sagaId))?.state).toBe('IN_DOUBT');
    const self = await selo(['saga', 'approve', endToEndId, '--operator', 'alice'], fourEyes);
    expect(self.status).toBe(1);
    expect(self.stderr).toContain('RESOLUTION_SELF_APPROVAL');
    const approved = await selo(['saga', 'approve', endToEndId, '--operator', 'bob', '--json'], fourEyes);
    expect(approved.status).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({ status: 'resolved', state: 'SETTLED', outcome: 'settled', events: ['PaymentSettled'] });
    const [settled] = await downstream.waitFor(sagaId, 'PaymentSettled');
    expect(settled?.detail.data).toMatchObject({ resolution: { by: 'operator', operators: ['alice', 'bob'], evidence: 'camt.053 statement line 17' } });
    await settle(1_000);
    expect(counts(sagaId)).toMatchObject({ PaymentSettled: 1, PaymentRejected: 0, PaymentReversalRequested: 0 });
  }, 60_000);
  it('`selo saga retry-compensation` runs a COMPENSATION_FAILED saga\'s failed compensation once, through the compensation worker', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await sagas.transition({ sagaId, to: 'COMPENSATING', from: ['REJECTED'], reason: 'PaymentRejected AM04 event=e-1', attempt: 1, idempotencyKey: 'compensating#1' });
    await sagas.recordCompensation({ sagaId, step: 'sign', outcome: 'FAILED', errorCode: 'EVENTBRIDGE_UNAVAILABLE' });
    await sagas.transition({ sagaId, to: 'COMPENSATION_FAILED', from: ['COMPENSATING'], reason: 'sign PaymentRejected AM04 event=e-1', attempt: 5, idempotencyKey: 'compensation-failed#1' });

    const retried = await selo(['saga', 'retry-compensation', endToEndId, '--operator', 'alice', '--evidence', 'core banking is back']);
    expect(retried.stderr).toBe('');
    expect(retried.stdout).toBe(`${sagaId}: compensation retry requested; published CompensationRetryRequested\n`);
    const [reversal] = await downstream.waitFor(sagaId, 'PaymentReversalRequested');
    expect(reversal?.detail.data).toMatchObject({ compensationId: `${sagaId}#sign`, reasonCode: 'AM04', trigger: 'CompensationRetryRequested' });
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await waitUntil('COMPENSATED', async () => (await sagas.get(sagaId))?.state === 'COMPENSATED');
    const again = await selo(['saga', 'retry-compensation', sagaId, '--operator', 'alice']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('COMPENSATION_NOT_FAILED');
    await settle(1_000);
    expect(counts(sagaId)).toMatchObject({ PaymentReversalRequested: 1, PaymentCompensated: 1 });
  }, 60_000);
});
