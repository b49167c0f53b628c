import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { TransientError } from '../../../shared/errors/index.ts';
import { decodeInboundPaymentRejected, decodeInboundPaymentSettled, decodePaymentRejected, decodePaymentSettled } from '../../../shared/events/index.ts';
import { approveResolution, resolveSaga, retryCompensation } from '../../../shared/saga/index.ts';
import type { ResolveSagaDeps, SagaState } from '../../../shared/saga/index.ts';
import { FakeSagaStore, ScriptedPublisher } from '../compensate-fakes.ts';

const SAGA = 'PAY#E99999004202611281700resolveabcd';
const E2E = SAGA.slice(4);
const IN_DOUBT: readonly SagaState[] = ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'];
const REVERSAL = { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: E2E, amount: '150.00' } };

/** A saga store `seed` filled, a bus and an audit sink that keep what they get, and the dependencies over them. */
function world(seed: (sagas: FakeSagaStore) => void, approvals: 1 | 2 = 1) {
  const sagas = new FakeSagaStore();
  seed(sagas);
  const publisher = new ScriptedPublisher();
  const audited: AuditRecord[] = [];
  const deps: ResolveSagaDeps = { sagas, publisher, audit: { put: (records) => Promise.resolve(void audited.push(...records)) }, approvals };
  return { sagas, publisher, audited, deps };
}

function setup(path: readonly SagaState[] = IN_DOUBT, approvals: 1 | 2 = 1) {
  return world((sagas) => sagas.seed(SAGA, path, { compensations: [REVERSAL], ids: { endToEndId: E2E, bizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa' } }), approvals);
}

/** What the verify worker writes for a late pacs.002 ACSC (workers/verify/handler.ts: key `settled`, `[source <PI-ResourceId>]`). */
async function latePacs002(sagas: FakeSagaStore): Promise<void> {
  await sagas.transition({ sagaId: SAGA, to: 'SETTLED', from: ['IN_DOUBT'], reason: 'pacs.002 ACSC M00038166x [source R-late]', attempt: 1, idempotencyKey: 'settled' });
}

describe('resolveSaga', () => {
  it('settles an IN_DOUBT payment once: SETTLED, PaymentSettled with who and why, one audited transition', async () => {
    const { sagas, publisher, audited, deps } = setup();
    const result = await resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'statement line 17', operator: 'alice' });
    expect(result).toMatchObject({ status: 'resolved', outcome: 'settled', events: ['PaymentSettled'] });
    expect(sagas.state(SAGA)).toBe('SETTLED');
    expect(publisher.published).toHaveLength(1);
    expect(publisher.published[0]).toMatchObject({
      detailType: 'PaymentSettled',
      source: 'selo.operations',
      detail: { sagaId: SAGA, endToEndId: E2E, data: { status: 'ACSC', originalInstructionId: E2E, originalBizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa', resolution: { by: 'operator', operators: ['alice'], evidence: 'statement line 17' } } },
    });
    expect(audited).toEqual([expect.objectContaining({ kind: 'transition', worker: 'operations', saga_id: SAGA, transition_from: 'IN_DOUBT', transition_to: 'SETTLED' })]);
    expect(audited[0]?.transition_reason).toMatch(/^resolved settled by operator alice: "statement line 17" \[source resolution:[\w-]+\]$/);
  });

  it('rejects with PaymentRejected carrying the reason code and the evidence as AddtlInf (at most 105 characters)', async () => {
    const { publisher, deps } = setup();
    await resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: `AB03 per the SPI desk ${'x'.repeat(200)}`, operator: 'alice', reasonCode: 'AB03' });
    const data = publisher.published[0]?.detail.data as { status: string; reason: { code: string; additionalInformation: string } };
    expect(publisher.published[0]?.detailType).toBe('PaymentRejected');
    expect(data.status).toBe('RJCT');
    expect(data.reason.code).toBe('AB03');
    expect(data.reason.additionalInformation).toHaveLength(105);
  });

  it('does nothing twice: a second resolve with the same outcome publishes nothing and says already-resolved', async () => {
    const { publisher, audited, deps } = setup();
    await resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: 'e', operator: 'alice' });
    const again = await resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: 'e', operator: 'bob' });
    expect(again).toMatchObject({ status: 'already-resolved', outcome: 'rejected', republished: false });
    expect(publisher.published).toHaveLength(1);
    expect(audited).toHaveLength(1);
  });

  it('republishes, once, the fact of a resolution whose first publication failed', async () => {
    const { sagas, publisher, deps } = setup();
    publisher.failures = [new TransientError('EVENTBRIDGE_UNAVAILABLE', 'down')];
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice' })).rejects.toThrow('down');
    expect(sagas.state(SAGA)).toBe('SETTLED');
    const retried = await resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice' });
    expect(retried).toMatchObject({ status: 'already-resolved', republished: true });
    const third = await resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice' });
    expect(third).toMatchObject({ status: 'already-resolved', republished: false });
    expect(publisher.of('PaymentSettled')).toHaveLength(1);
    expect(publisher.of('PaymentSettled')[0]?.detail.data).toMatchObject({ resolution: { operators: ['alice'], evidence: 'e' } });
  });

  it('loses the race to a late pacs.002 without writing or publishing: the same outcome is already-resolved, the other is refused', async () => {
    const { sagas, publisher, deps } = setup();
    await latePacs002(sagas);
    expect(await resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice' })).toMatchObject({ status: 'already-resolved', resolvedBy: 'R-late', republished: false });
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: 'e', operator: 'alice' })).rejects.toMatchObject({ code: 'RESOLUTION_CONTRADICTED' });
    expect(publisher.published).toEqual([]);
    expect(sagas.state(SAGA)).toBe('SETTLED');
  });

  it('resolves an OUTCOME_CONFLICT payment, and names the compensations that already ran when it settled', async () => {
    const { sagas, publisher, deps } = setup(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED', 'COMPENSATING', 'COMPENSATED', 'OUTCOME_CONFLICT']);
    await sagas.recordCompensation({ sagaId: SAGA, step: 'sign', outcome: 'DONE' });
    const result = await resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'the camt.053 shows it debited', operator: 'alice' });
    expect(result).toMatchObject({ status: 'resolved', outcome: 'settled' });
    expect((await sagas.get(SAGA))?.history.at(-1)).toMatchObject({ from: 'OUTCOME_CONFLICT', to: 'SETTLED', key: 'resolved-settled#1' });
    expect(publisher.published[0]?.detail.data).toMatchObject({ resolution: { compensationsDone: ['sign'] } });
  });

  it('refuses what is not an IN_DOUBT or OUTCOME_CONFLICT payment, and bad input', async () => {
    const { deps } = setup(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice' })).rejects.toMatchObject({ code: 'SAGA_NOT_RESOLVABLE' });
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: ' ', operator: 'alice' })).rejects.toMatchObject({ code: 'RESOLUTION_INVALID' });
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'e', operator: 'alice smith' })).rejects.toMatchObject({ code: 'RESOLUTION_INVALID' });
    await expect(resolveSaga(deps, { sagaId: 'PAY#nothing', outcome: 'settled', evidence: 'e', operator: 'alice' })).rejects.toMatchObject({ code: 'SAGA_NOT_FOUND' });
  });
});

describe('four eyes (approvals: 2)', () => {
  it('records the request, refuses its author\'s approval, applies another operator\'s, and audits both', async () => {
    const { sagas, publisher, audited, deps } = setup(IN_DOUBT, 2);
    const requested = await resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: 'never received', operator: 'alice' });
    expect(requested).toMatchObject({ status: 'pending-approval', request: { outcome: 'rejected', operator: 'alice', evidence: 'never received' } });
    expect(sagas.state(SAGA)).toBe('IN_DOUBT');
    expect(publisher.published).toEqual([]);
    await expect(approveResolution(deps, { sagaId: SAGA, operator: 'alice' })).rejects.toMatchObject({ code: 'RESOLUTION_SELF_APPROVAL' });
    await expect(resolveSaga(deps, { sagaId: SAGA, outcome: 'settled', evidence: 'x', operator: 'bob' })).rejects.toMatchObject({ code: 'RESOLUTION_ALREADY_REQUESTED' });
    const approved = await approveResolution(deps, { sagaId: SAGA, operator: 'bob' });
    expect(approved).toMatchObject({ status: 'resolved', outcome: 'rejected' });
    expect(publisher.of('PaymentRejected')[0]?.detail.data).toMatchObject({ resolution: { operators: ['alice', 'bob'] } });
    expect(audited.map((r) => r.transition_reason)).toEqual([
      expect.stringMatching(/^resolution rejected requested by operator alice, awaiting a second operator/),
      expect.stringMatching(/^resolved rejected by operator alice approved by bob: "never received"/),
    ]);
    expect(await approveResolution(deps, { sagaId: SAGA, operator: 'carol' })).toMatchObject({ status: 'already-resolved' });
  });

  it('voids a request whose saga moved since (a late pacs.002): nothing left to approve', async () => {
    const { sagas, publisher, deps } = setup(IN_DOUBT, 2);
    await resolveSaga(deps, { sagaId: SAGA, outcome: 'rejected', evidence: 'e', operator: 'alice' });
    await latePacs002(sagas);
    await expect(approveResolution(deps, { sagaId: SAGA, operator: 'bob' })).rejects.toMatchObject({ code: 'RESOLUTION_CONTRADICTED' });
    expect(publisher.published).toEqual([]);
  });

  it('never waits for approval when the BCB\'s answer is the evidence', async () => {
    const { sagas, deps } = setup(IN_DOUBT, 2);
    expect(await resolveSaga({ ...deps, source: 'selo.compensate' }, { sagaId: SAGA, outcome: 'settled', evidence: 'camt.054 BOOK', operator: 'selo.compensate', by: 'bcb-query' })).toMatchObject({ status: 'resolved' });
    expect(sagas.state(SAGA)).toBe('SETTLED');
  });
});

describe('retryCompensation', () => {
  it('publishes CompensationRetryRequested for a COMPENSATION_FAILED saga, naming the failed steps, and refuses other states', async () => {
    const { publisher, audited, deps } = setup(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED', 'COMPENSATING', 'COMPENSATION_FAILED']);
    const result = await retryCompensation(deps, { sagaId: SAGA, operator: 'alice', evidence: 'core banking is back' });
    expect(result).toMatchObject({ status: 'retry-requested', events: ['CompensationRetryRequested'] });
    expect(publisher.published[0]).toMatchObject({ detailType: 'CompensationRetryRequested', source: 'selo.operations', detail: { sagaId: SAGA, data: { operator: 'alice', steps: ['sign'] } } });
    expect(audited[0]?.transition_reason).toContain('compensation retry requested by operator alice: "core banking is back"');
    const other = setup();
    await expect(retryCompensation(other.deps, { sagaId: SAGA, operator: 'alice' })).rejects.toMatchObject({ code: 'COMPENSATION_NOT_FAILED' });
  });
});

describe('resolveSaga: payments to our customers (IN#)', () => {
  const INBOUND = 'IN#E00000001202611281700inboundabcd';
  const IN_E2E = INBOUND.slice(3);
  const ANSWERED: readonly SagaState[] = ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'];
  const FACTS = { amount: '150.00', answer: 'ACSP', receivedAt: '2026-11-28T17:00:00.000Z', answeredAt: '2026-11-28T17:00:00.085Z' };

  function inbound(path: readonly SagaState[] = ANSWERED, approvals: 1 | 2 = 1) {
    return world((sagas) => sagas.seed(INBOUND, path, { ids: { endToEndId: IN_E2E, facts: { ...FACTS } } }), approvals);
  }

  it('settles an IN_DOUBT inbound payment with InboundPaymentSettled (credit), never PaymentSettled, and decodes as the contract says', async () => {
    const { sagas, publisher, audited, deps } = inbound();
    const result = await resolveSaga(deps, { sagaId: INBOUND, outcome: 'settled', evidence: 'BCB statement: credited 150.00', operator: 'alice' });
    expect(result).toMatchObject({ status: 'resolved', outcome: 'settled', events: ['InboundPaymentSettled'] });
    expect(sagas.state(INBOUND)).toBe('SETTLED');
    expect(publisher.published.map((e) => [e.detailType, e.source, e.detail.sagaId, e.detail.endToEndId])).toEqual([['InboundPaymentSettled', 'selo.operations', INBOUND, IN_E2E]]);
    const data = decodeInboundPaymentSettled(publisher.published[0]?.detail.data);
    expect(data).toEqual({
      channel: 'spi', endToEndId: IN_E2E, originalInstructionId: IN_E2E, amount: '150.00', answerMs: 85,
      resolution: { by: 'operator', operators: ['alice'], evidence: 'BCB statement: credited 150.00', resolvedAt: expect.any(String) as string },
    });
    expect(audited).toEqual([expect.objectContaining({ saga_id: INBOUND, transition_from: 'IN_DOUBT', transition_to: 'SETTLED' })]);
  });

  it('rejects one with InboundPaymentRejected (never credit): what we answered, the code, no reversal asked for', async () => {
    const { publisher, deps } = inbound();
    await resolveSaga(deps, { sagaId: INBOUND, outcome: 'rejected', evidence: 'SPI desk: rejected AB03', operator: 'alice', reasonCode: 'AB03' });
    expect(publisher.published.map((e) => e.detailType)).toEqual(['InboundPaymentRejected']);
    expect(decodeInboundPaymentRejected(publisher.published[0]?.detail.data)).toMatchObject({ answer: 'ACSP', reason: { code: 'AB03', additionalInformation: 'SPI desk: rejected AB03' }, resolution: { operators: ['alice'] } });
  });

  it('resolves an inbound OUTCOME_CONFLICT (settled without our ACSP) once; a second resolve the other way is refused', async () => {
    const { sagas, publisher, deps } = inbound(['RECEIVED', 'OUTCOME_CONFLICT']);
    expect(await resolveSaga(deps, { sagaId: INBOUND, outcome: 'settled', evidence: 'credited per the BCB', operator: 'alice' })).toMatchObject({ status: 'resolved' });
    expect((await sagas.get(INBOUND))?.history.at(-1)).toMatchObject({ from: 'OUTCOME_CONFLICT', to: 'SETTLED', key: 'resolved-settled#1' });
    await expect(resolveSaga(deps, { sagaId: INBOUND, outcome: 'rejected', evidence: 'e', operator: 'bob' })).rejects.toMatchObject({ code: 'RESOLUTION_CONTRADICTED' });
    expect(publisher.of('InboundPaymentSettled')).toHaveLength(1);
  });

  it('waits for a second operator with four eyes, then publishes once', async () => {
    const { sagas, publisher, deps } = inbound(ANSWERED, 2);
    expect(await resolveSaga(deps, { sagaId: INBOUND, outcome: 'settled', evidence: 'statement', operator: 'alice' })).toMatchObject({ status: 'pending-approval' });
    expect(publisher.published).toEqual([]);
    expect(await approveResolution(deps, { sagaId: INBOUND, operator: 'bob' })).toMatchObject({ status: 'resolved', events: ['InboundPaymentSettled'] });
    expect(sagas.state(INBOUND)).toBe('SETTLED');
  });

  it('names the returned payment for a return to us (IN#<RtrId>), takes the code we answered as the default, and says when a conflict had credited the customer already', async () => {
    const { sagas, publisher, deps } = world(() => undefined);
    const returned = 'IN#D00000001202611281700returnabcd';
    sagas.seed(returned, ANSWERED, { ids: { endToEndId: returned.slice(3), facts: { amount: '5.00', answer: 'RJCT AM09', originalEndToEndId: 'E99999004202611281700originalab' } } });
    await resolveSaga(deps, { sagaId: returned, outcome: 'rejected', evidence: 'SPI desk', operator: 'alice' });
    expect(publisher.published[0]?.detail).toMatchObject({ endToEndId: 'E99999004202611281700originalab', data: { endToEndId: 'E99999004202611281700originalab', originalInstructionId: returned.slice(3), reason: { code: 'AM09' } } });

    sagas.seed(INBOUND, ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'SETTLED', 'OUTCOME_CONFLICT'], { ids: { endToEndId: IN_E2E, facts: { ...FACTS } } });
    await resolveSaga(deps, { sagaId: INBOUND, outcome: 'rejected', evidence: 'the SPI rejected it after all', operator: 'alice' });
    const rejected = publisher.of('InboundPaymentRejected').find((e) => e.detail.sagaId === INBOUND);
    expect(decodeInboundPaymentRejected(rejected?.detail.data)).toMatchObject({ reason: { code: 'NARR' }, resolution: { creditedBefore: true } });
  });

  it('refuses an inbound payment that is not in doubt (still waiting for its pacs.002, or answered already)', async () => {
    await expect(resolveSaga(inbound(['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED']).deps, { sagaId: INBOUND, outcome: 'settled', evidence: 'e', operator: 'alice' })).rejects.toMatchObject({ code: 'SAGA_NOT_RESOLVABLE' });
    await expect(resolveSaga(inbound(['RECEIVED', 'LATE']).deps, { sagaId: INBOUND, outcome: 'rejected', evidence: 'e', operator: 'alice' })).rejects.toMatchObject({ code: 'SAGA_NOT_RESOLVABLE' });
  });
});

describe('outcome decoders and resolutions', () => {
  const resolution = { by: 'operator', operators: ['alice'], evidence: 'e', resolvedAt: '2026-11-28T17:01:00.000Z' };

  it('accept a resolution in place of the pacs.002 fields, and require those fields otherwise', () => {
    expect(decodePaymentSettled({ channel: 'spi', status: 'ACSC', endToEndId: 'E1', originalInstructionId: 'E1', resolution })).toMatchObject({ resolution });
    expect(decodeInboundPaymentRejected({ channel: 'spi', endToEndId: 'E1', originalInstructionId: 'E1', reason: { code: 'NARR' }, resolution })).toMatchObject({ resolution });
    expect(() => decodeInboundPaymentSettled({ channel: 'spi', endToEndId: 'E1', originalInstructionId: 'E1' })).toThrow('data.bizMsgIdr');
    expect(() => decodePaymentSettled({ channel: 'spi', status: 'ACSC', endToEndId: 'E1', originalInstructionId: 'E1', resolution: { ...resolution, operators: [] } })).toThrow('data.resolution.operators');
    expect(() => decodePaymentRejected({ channel: 'spi', status: 'RJCT', endToEndId: 'E1', originalInstructionId: 'E1', reason: {}, resolution: { ...resolution, by: 'someone' } })).toThrow('data.resolution.by');
  });
});
