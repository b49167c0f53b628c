import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BcbSimulator } from '../../infra/bcb-simulator/index.ts';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import { startCompensateWorker } from '../../workers/compensate/index.ts';
import type { CompensateWorker } from '../../workers/compensate/index.ts';
import { readAuditRecords } from '../support/local-aws.ts';
import { waitUntil } from '../support/wait-until.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './bcb-simulator/simulator-fixture.ts';
import type { SimulatorTestPki } from './bcb-simulator/simulator-fixture.ts';
import { pemSigningKey } from '../../shared/xmldsig/index.ts';
import { Subscriber, seedPayment, signReversal } from './compensate-support.ts';

/**
 * Issue 17's acceptance, through the real local stack: the compensation worker (its in-doubt
 * sweeper asking the BCB simulator over mTLS with camt.060 → signed camt.054), the EventBridge
 * emulator and its rules, SQS, DynamoDB and Kinesis, and `selo saga resolve` run as a child process.
 */

const SELO = fileURLToPath(new URL('../../bin/selo.ts', import.meta.url));
const topology = resolveTopology('local');
let stack: LocalStack;
let sim: BcbSimulator;
let pki: SimulatorTestPki;
let agentA: Agent;
let worker: CompensateWorker;
let sagas: SagaStore;
let downstream: Subscriber;
let pkiDir: string;

const OUTCOMES = ['PaymentInDoubt', 'PaymentSettled', 'PaymentRejected', 'PaymentReversalRequested', 'PaymentCompensated', 'OutcomeConflict'];

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  // Participant B accepts every payment: the simulated SPI settles what A sends it.
  sim = await startTestSimulator(pki);
  sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  agentA = mtlsAgent(pki, pki.tlsA);
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-in-doubt-'));
  const file = (name: string, pem: string): string => {
    writeFileSync(join(pkiDir, name), pem);
    return join(pkiDir, name);
  };
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  downstream = new Subscriber(stack);
  await downstream.start(`downstream-in-doubt-${randomUUID().slice(0, 8)}`, { source: [{ prefix: 'selo.' }], 'detail-type': OUTCOMES });
  worker = await startCompensateWorker({
    env: {
      ...stack.env(),
      SELO_ISPB: ISPB_A,
      SELO_BCB_URL: sim.url,
      SELO_BCB_CA: file('ca.pem', pki.caPem),
      SELO_TLS_CERT: file('tls-a.pem', pki.tlsA.certPem),
      SELO_TLS_KEY: file('tls-a.key', pki.tlsA.keyPem),
      SELO_BCB_SIGNING_CERT: file('bcb-signing.pem', pki.bcbSigning.certPem),
      SELO_HEALTH_PORT: '0',
      SELO_SQS_WAIT_SECONDS: '1',
      SELO_BACKOFF_BASE_SECONDS: '0',
      SELO_BACKOFF_MAX_SECONDS: '1',
      // Payments count as in doubt 100 ms after TRANSMITTED (the SPI's 40 s, shortened), and the
      // BCB is asked about each at most every 300 ms.
      SELO_SWEEP_INTERVAL_MS: '150',
      SELO_SPI_SETTLEMENT_LIMIT_MS: '100',
      SELO_IN_DOUBT_MARGIN_MS: '0',
      SELO_IN_DOUBT_QUERY_INTERVAL_MS: '300',
      SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent',
    },
  });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await downstream?.stop();
  await agentA?.close();
  await sim?.close();
  await stack?.close();
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

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
  it('resolves a payment whose pacs.002 never came as settled from the BCB\'s signed camt.054, once, without any reversal, audited with the answer', async () => {
    // Participant A pays B; the simulated SPI settles it and puts the pacs.002 ACSC on A's stream,
    // which nobody reads here: for selo the answer was dropped.
    const sent = await signedPacs008(pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem), { from: ISPB_A, to: ISPB_B, amount: '10.50' });
    expect((await postMessages(agentA, sim, ISPB_A, sent.xml)).status).toBe(201);
    await waitUntil('the SPI settled it', () => sim.ledger.payment(sent.endToEndId)?.status === 'settled').catch((error: unknown) => {
      throw new Error(`${String(error)}; ledger ${JSON.stringify({ payment: sim.ledger.payment(sent.endToEndId), received: sim.ledger.received().slice(-1) })}`);
    });
    const { sagaId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { endToEndId: sent.endToEndId, compensation: signReversal(sent.endToEndId, '10.50') });

    await downstream.waitFor(sagaId, 'PaymentInDoubt');
    const [settled] = await downstream.waitFor(sagaId, 'PaymentSettled');
    expect(settled?.source).toBe('selo.compensate');
    expect(settled?.detail.data).toMatchObject({ status: 'ACSC', endToEndId: sent.endToEndId, resolution: { by: 'bcb-query' } });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('SETTLED');
    const resolved = saga?.history.at(-1);
    expect(resolved).toMatchObject({ from: 'IN_DOUBT', to: 'SETTLED', key: 'settled' });
    expect(resolved?.reason).toMatch(/^resolved settled by the BCB's answer .*camt\.054 M00038166\w+ answering camt\.060 M99999004\w+ for E\w+: entry BOOK DBIT 10\.50/);

    await settle();
    expect(counts(sagaId)).toEqual({ PaymentInDoubt: 1, PaymentSettled: 1, PaymentRejected: 0, PaymentReversalRequested: 0, PaymentCompensated: 0, OutcomeConflict: 0 });
    const audit = await waitUntil('the resolution audited', async () => {
      const records = await auditOf(sagaId);
      return records.some((r) => r.transition_to === 'SETTLED') ? records : undefined;
    });
    expect(audit.filter((r) => r.kind === 'transition').map((r) => `${r.transition_from ?? ''}→${r.transition_to ?? ''}`)).toEqual(['TRANSMITTED→IN_DOUBT', 'IN_DOUBT→SETTLED']);
    // The exchange itself: our camt.060 and the BCB's camt.054 as it signed it.
    const exchange = audit.find((r) => r.kind === 'response');
    expect(exchange).toMatchObject({ worker: 'compensate', request_method: 'POST', request_path: '/api/v1/in/99999004/account-reports', response_status_code: 200, response_signature_valid: true });
    expect(exchange?.request_body).toContain('<ReqdMsgNmId>camt.054</ReqdMsgNmId>');
    expect(exchange?.response_body).toContain('<Cd>BOOK</Cd>');
    expect(exchange?.response_body).toContain('ds:SignatureValue');
  }, 60_000);

  it('keeps a payment the BCB does not know IN_DOUBT, and `selo saga resolve` rejects it once: one PaymentRejected, one reversal, audited with the operator', async () => {
    // Never reached the SPI (the simulator has no trace of it): the BCB's answer is "no entry".
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await downstream.waitFor(sagaId, 'PaymentInDoubt');
    const asked = await waitUntil('the BCB asked', async () => {
      const saga = await sagas.get(sagaId);
      return saga?.facts.bcbQuery !== undefined ? saga : undefined;
    });
    expect(asked.state).toBe('IN_DOUBT');
    expect(asked.facts.bcbQuery).toMatch(/camt\.054 M00038166\w+ answering camt\.060 \w+ for E\w+: entry INFO DBIT 0\.00 error ENNF/);

    const resolved = await selo(['saga', 'resolve', endToEndId, '--outcome', 'rejected', '--evidence', 'SPI desk ticket 4711: never received', '--operator', 'alice']);
    expect(resolved.stderr).toBe('');
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toContain(`${sagaId}: resolved rejected, now REJECTED; published PaymentRejected`);

    const [rejected] = await downstream.waitFor(sagaId, 'PaymentRejected');
    expect(rejected?.source).toBe('selo.operations');
    expect(rejected?.detail.data).toMatchObject({ status: 'RJCT', reason: { code: 'NARR', additionalInformation: 'SPI desk ticket 4711: never received' }, resolution: { by: 'operator', operators: ['alice'] } });
    const [reversal] = await downstream.waitFor(sagaId, 'PaymentReversalRequested');
    expect(reversal?.detail.data).toMatchObject({ compensationId: `${sagaId}#sign`, amount: '150.00', reasonCode: 'NARR', trigger: 'PaymentRejected' });
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
    expect(counts(sagaId)).toEqual({ PaymentInDoubt: 1, PaymentSettled: 0, PaymentRejected: 1, PaymentReversalRequested: 1, PaymentCompensated: 1, OutcomeConflict: 0 });
    const transitions = await waitUntil('the compensation audited', async () => {
      const records = (await auditOf(sagaId)).filter((r) => r.kind === 'transition');
      return records.some((r) => r.transition_to === 'COMPENSATED') ? records : undefined;
    });
    expect(transitions.map((r) => `${r.worker} ${r.transition_from ?? ''}→${r.transition_to ?? ''}`)).toEqual([
      'compensate TRANSMITTED→IN_DOUBT',
      'operations IN_DOUBT→REJECTED',
      'compensate REJECTED→COMPENSATING',
      'compensate COMPENSATING→COMPENSATED',
    ]);
    expect(transitions[1]?.transition_reason).toMatch(/^resolved rejected by operator alice: "SPI desk ticket 4711: never received" \[source resolution:[\w-]+\]$/);
  }, 90_000);

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
