import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { INBOUND_REJECT_REASON } from '../../../bin/demo/inbound-decider.ts';
import type { InboundDecider } from '../../../bin/demo/inbound-decider.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { readAuditRecords } from '../../support/local-aws.ts';
import { runSeloCli } from '../../support/selo-cli.ts';
import type { SeloCliRun } from '../../support/selo-cli.ts';
import { waitUntil } from '../../support/wait-until.ts';
import { Subscriber } from '../compensate-support.ts';
import { InboundWorld } from './inbound-support.ts';

/**
 * Payments to our customers whose final pacs.002 never reaches us, through the real local stack:
 * the simulator's payer PSP pays our customer, core banking decides, selo answers (signed in
 * SoftHSM, POSTed over mTLS), the SPI decides, and its pacs.002 to us is lost
 * (`dropReceiverStatusRate`). The compensation worker's sweeper raises each (`PaymentInDoubt`,
 * IN_DOUBT, nothing credited) and asks the BCB (camt.060 signed in the HSM, camt.054 on the ICOM
 * stream): a booked credit settles it (`InboundPaymentSettled`, the credit core banking waited
 * for); anything else leaves it to `selo saga resolve`, run as a child process.
 */

const topology = resolveTopology('local');
const EVENTS = ['PaymentInDoubt', 'InboundPaymentSettled', 'InboundPaymentRejected', 'PaymentSettled', 'PaymentRejected'];
let world: InboundWorld;
let downstream: Subscriber;
let sagas: SagaStore;
/** Core banking of the running test: closed after it, passed or not, so that it never decides the next test's payment. */
let core: InboundDecider | undefined;

beforeAll(async () => {
  world = await InboundWorld.start(20_000, {
    faults: { dropReceiverStatusRate: 1 },
    // In doubt 100 ms after TRANSMITTED (the SPI's 40 s, shortened), swept every 200 ms.
    workerEnv: { SELO_SWEEP_INTERVAL_MS: '200', SELO_SPI_SETTLEMENT_LIMIT_MS: '100', SELO_IN_DOUBT_MARGIN_MS: '0' },
  });
  sagas = new SagaStore({ client: world.stack.clients.dynamodb, tableName: topology.sagaTable.name });
  downstream = new Subscriber(world.stack);
  await downstream.start('downstream-inbound-in-doubt', { source: [{ prefix: 'selo.' }], 'detail-type': EVENTS });
  await world.startWorkers();
}, 60_000);

afterEach(async () => {
  await core?.close();
  core = undefined;
});

afterAll(async () => {
  await downstream?.stop();
  await world?.close();
});

/** `selo <args…>` in a child process: the stand-ins it talks to live in this process. */
function selo(args: readonly string[]): Promise<SeloCliRun> {
  return runSeloCli(world.stack.env(), ...args);
}

/** One payment to our customer, paid by the simulator; its EndToEndId once the SPI has it. */
async function paidToUs(): Promise<string> {
  const before = new Set(world.ledger().keys());
  world.pipeline.simulator.inbound.start({ toIspb: world.ispb, ratePerSecond: 1, count: 1 });
  return waitUntil('the payment in the ledger', () => [...world.ledger().keys()].find((id) => !before.has(id)));
}

/** The saga's audited transitions, once the one into `until` is there. */
async function transitionsOf(sagaId: string, until: string): Promise<AuditRecord[]> {
  return waitUntil(`${sagaId} ${until} audited`, async () => {
    const records = (await readAuditRecords(world.stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.saga_id === sagaId && r.kind === 'transition');
    return records.some((r) => r.transition_to === until) ? records : undefined;
  });
}

function moves(records: readonly AuditRecord[]): string[] {
  return records.map((r) => `${r.worker} ${r.transition_from ?? ''}→${r.transition_to ?? ''}`);
}

function counts(sagaId: string): number[] {
  return EVENTS.map((type) => downstream.of(sagaId, type).length);
}

describe('payments to our customers whose final pacs.002 never came (in doubt)', () => {
  it('raises one we accepted and settles it from the BCB\'s booked credit (camt.054 CRDT): one InboundPaymentSettled, credited once', async () => {
    core = await world.decider('selo-local-inbound-in-doubt-accepting', { reject: 0, never: 0 });
    const endToEndId = await paidToUs();
    const sagaId = `IN#${endToEndId}`;

    const [alert] = await downstream.waitFor(sagaId, 'PaymentInDoubt', { timeoutMs: 60_000 });
    expect(alert?.source).toBe('selo.compensate');
    expect(alert?.detail.data).toMatchObject({ channel: 'spi', answer: 'ACSP', limitMs: 100 });
    const [settled] = await downstream.waitFor(sagaId, 'InboundPaymentSettled', { timeoutMs: 60_000 });
    // The SPI settled it; its ACCC to us is what was lost.
    expect(world.ledger().get(endToEndId)?.status).toBe('settled');
    expect(settled?.source).toBe('selo.verify');
    expect(settled?.detail.data).toMatchObject({ endToEndId, originalInstructionId: endToEndId, resolution: { by: 'bcb-query' } });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('SETTLED');
    expect(saga?.history.at(-1)?.reason).toMatch(new RegExp(`^resolved settled by the BCB's answer .*camt\\.054 M00038166\\w+ answering camt\\.060 M${world.ispb}\\w+ for ${endToEndId}: entry BOOK CRDT`));
    const decider = core;
    await waitUntil('core banking told to credit', () => (decider.observations.get(endToEndId)?.outcomes.length ?? 0) > 0 || undefined);

    // Time for a second credit, were there one, before counting.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(counts(sagaId)).toEqual([1, 1, 0, 0, 0]);
    expect(decider.observations.get(endToEndId)?.outcomes).toEqual(['settled']);
    expect(moves(await transitionsOf(sagaId, 'SETTLED')).slice(-2)).toEqual(['compensate TRANSMITTED→IN_DOUBT', 'verify IN_DOUBT→SETTLED']);
  }, 120_000);

  it('keeps one we rejected IN_DOUBT when the BCB has no booked entry, never credited, until `selo saga resolve` rejects it: one InboundPaymentRejected, audited with the operator', async () => {
    core = await world.decider('selo-local-inbound-in-doubt-rejecting', { reject: 100, never: 0 });
    const dropped = world.pipeline.simulator.faults.counts.droppedReceiverStatus;
    const endToEndId = await paidToUs();
    const sagaId = `IN#${endToEndId}`;

    const [alert] = await downstream.waitFor(sagaId, 'PaymentInDoubt', { timeoutMs: 60_000 });
    expect(alert?.detail.data).toMatchObject({ answer: `RJCT ${INBOUND_REJECT_REASON}` });
    const asked = await waitUntil('the BCB answered', async () => {
      const saga = await sagas.get(sagaId);
      return saga?.facts.bcbQuery !== undefined ? saga : undefined;
    }, { timeoutMs: 60_000 });
    expect(asked.state).toBe('IN_DOUBT');
    expect(asked.facts.bcbQuery).toMatch(/error ENNF/);
    expect(world.ledger().get(endToEndId)?.status).toBe('rejected');
    expect(world.pipeline.simulator.faults.counts.droppedReceiverStatus).toBe(dropped + 1);

    const resolved = await selo(['saga', 'resolve', endToEndId, '--outcome', 'rejected', '--evidence', 'SPI desk: rejected as we answered', '--operator', 'alice', '--reason-code', INBOUND_REJECT_REASON]);
    expect(resolved.stderr).toBe('');
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toContain(`${sagaId}: resolved rejected, now REJECTED; published InboundPaymentRejected`);
    const [rejected] = await downstream.waitFor(sagaId, 'InboundPaymentRejected');
    expect(rejected?.source).toBe('selo.operations');
    expect(rejected?.detail.data).toMatchObject({ endToEndId, answer: `RJCT ${INBOUND_REJECT_REASON}`, reason: { code: INBOUND_REJECT_REASON }, resolution: { by: 'operator', operators: ['alice'] } });
    // Another resolve the other way is refused.
    const contradicting = await selo(['saga', 'resolve', sagaId, '--outcome', 'settled', '--evidence', 'oops', '--operator', 'bob']);
    expect(contradicting.status).toBe(1);
    expect(contradicting.stderr).toContain('RESOLUTION_CONTRADICTED');

    const decider = core;
    await waitUntil('core banking told never to credit', () => (decider.observations.get(endToEndId)?.outcomes.length ?? 0) > 0 || undefined);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(counts(sagaId)).toEqual([1, 0, 1, 0, 0]);
    expect(decider.observations.get(endToEndId)?.outcomes).toEqual(['rejected']);
    const transitions = await transitionsOf(sagaId, 'REJECTED');
    expect(moves(transitions).slice(-2)).toEqual(['compensate TRANSMITTED→IN_DOUBT', 'operations IN_DOUBT→REJECTED']);
    expect(transitions.at(-1)?.transition_reason).toMatch(/^resolved rejected by operator alice: "SPI desk: rejected as we answered" \[source resolution:[\w-]+\]$/);
  }, 120_000);
});
