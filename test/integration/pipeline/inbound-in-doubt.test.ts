import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTopology } from '../../../infra/topology.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { readAuditRecords } from '../../support/local-aws.ts';
import { runSeloCli } from '../../support/selo-cli.ts';
import type { SeloCliRun } from '../../support/selo-cli.ts';
import { waitUntil } from '../../support/wait-until.ts';
import { Subscriber } from '../compensate-support.ts';
import { InboundWorld } from './inbound-support.ts';

/**
 * A payment to one of our customers whose final pacs.002 never reaches us, through the real local
 * stack: the simulator's payer PSP pays our customer, core banking accepts, selo answers ACSP (signed
 * in SoftHSM, POSTed over mTLS), the SPI settles, and its ACCC to us is lost
 * (`dropReceiverStatusRate`). The compensation worker's sweeper raises it (`PaymentInDoubt`,
 * IN_DOUBT, nothing credited) and `selo saga resolve`, a child process, closes it with
 * `InboundPaymentSettled`: the credit core banking was waiting for, once.
 */

const topology = resolveTopology('local');
const EVENTS = ['PaymentInDoubt', 'InboundPaymentSettled', 'InboundPaymentRejected', 'PaymentSettled', 'PaymentRejected'];
let world: InboundWorld;
let downstream: Subscriber;

beforeAll(async () => {
  world = await InboundWorld.start(20_000, {
    faults: { dropReceiverStatusRate: 1 },
    // In doubt 100 ms after TRANSMITTED (the SPI's 40 s, shortened), swept every 200 ms.
    workerEnv: { SELO_SWEEP_INTERVAL_MS: '200', SELO_SPI_SETTLEMENT_LIMIT_MS: '100', SELO_IN_DOUBT_MARGIN_MS: '0' },
  });
  downstream = new Subscriber(world.stack);
  await downstream.start('downstream-inbound-in-doubt', { source: [{ prefix: 'selo.' }], 'detail-type': EVENTS });
}, 60_000);

afterAll(async () => {
  await downstream?.stop();
  await world?.close();
});

/** `selo <args…>` in a child process: the stand-ins it talks to live in this process. */
function selo(args: readonly string[]): Promise<SeloCliRun> {
  return runSeloCli(world.stack.env(), ...args);
}

describe('a payment to our customer whose ACCC never came (in doubt)', () => {
  it('is raised to operations and never credited until `selo saga resolve` settles it: one InboundPaymentSettled, audited with the operator', async () => {
    await world.startWorkers();
    const core = await world.decider('selo-local-inbound-in-doubt-core', { reject: 0, never: 0 });
    world.pipeline.simulator.inbound.start({ toIspb: world.ispb, ratePerSecond: 1, count: 1 });
    const endToEndId = await waitUntil('the payment in the ledger', () => [...world.ledger().keys()][0]);
    const sagaId = `IN#${endToEndId}`;

    const [alert] = await downstream.waitFor(sagaId, 'PaymentInDoubt', { timeoutMs: 60_000 });
    expect(alert?.source).toBe('selo.compensate');
    expect(alert?.detail.data).toMatchObject({ channel: 'spi', answer: 'ACSP', limitMs: 100 });
    const sagas = new SagaStore({ client: world.stack.clients.dynamodb, tableName: topology.sagaTable.name });
    expect((await sagas.get(sagaId))?.state).toBe('IN_DOUBT');
    // The SPI settled it; the ACCC to us is what was lost. Nothing told core banking to credit.
    expect(world.ledger().get(endToEndId)?.status).toBe('settled');
    expect(world.pipeline.simulator.faults.counts.droppedReceiverStatus).toBe(1);
    expect(core.observations.get(endToEndId)?.outcomes).toEqual([]);

    const resolved = await selo(['saga', 'resolve', endToEndId, '--outcome', 'settled', '--evidence', 'BCB statement: credit booked', '--operator', 'alice']);
    expect(resolved.stderr).toBe('');
    expect(resolved.status).toBe(0);
    expect(resolved.stdout).toContain(`${sagaId}: resolved settled, now SETTLED; published InboundPaymentSettled`);
    const [settled] = await downstream.waitFor(sagaId, 'InboundPaymentSettled');
    expect(settled?.source).toBe('selo.operations');
    expect(settled?.detail.data).toMatchObject({ endToEndId, originalInstructionId: endToEndId, resolution: { by: 'operator', operators: ['alice'], evidence: 'BCB statement: credit booked' } });
    await waitUntil('core banking told to credit', () => (core.observations.get(endToEndId)?.outcomes.length ?? 0) > 0 || undefined);
    expect(core.observations.get(endToEndId)?.outcomes).toEqual(['settled']);

    // A resolve the other way is refused; nothing else was published.
    const contradicting = await selo(['saga', 'resolve', sagaId, '--outcome', 'rejected', '--evidence', 'oops', '--operator', 'bob']);
    expect(contradicting.status).toBe(1);
    expect(contradicting.stderr).toContain('RESOLUTION_CONTRADICTED');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(EVENTS.map((type) => downstream.of(sagaId, type).length)).toEqual([1, 1, 0, 0, 0]);
    const transitions = await waitUntil('the resolution audited', async () => {
      const records = (await readAuditRecords(world.stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.saga_id === sagaId && r.kind === 'transition');
      return records.some((r) => r.transition_to === 'SETTLED') ? records.map((r) => `${r.worker} ${r.transition_from ?? ''}→${r.transition_to ?? ''}`) : undefined;
    });
    expect(transitions.slice(-2)).toEqual(['compensate TRANSMITTED→IN_DOUBT', 'operations IN_DOUBT→SETTLED']);
  }, 120_000);
});
