import { describe, expect, it } from 'vitest';
import type { Message } from '@aws-sdk/client-sqs';
import { COMPENSATION_TRIGGERS } from '../../infra/topology.ts';
import { TransientError } from '../../shared/errors/index.ts';
import { decodeCompensationTrigger, encodeEventBody, newTraceparent, paymentSagaId } from '../../shared/events/index.ts';
import type { CompensationTrigger, EventDetail } from '../../shared/events/index.ts';
import { MessageProcessor } from '../../shared/runtime/index.ts';
import type { DecodedMessage, HandlerContext } from '../../shared/runtime/index.ts';
import type { CompensationRegistration, SagaState } from '../../shared/saga/index.ts';
import { createCompensateHandler } from '../../workers/compensate/index.ts';
import { FakeSagaStore, ScriptedPublisher } from './compensate-fakes.ts';
import { FakeAudit, FakePublisher, FakeQueue, silentLogger } from './runtime/fakes.ts';

const E2E = 'E99999004202611281700aaaaaaaaaaa';
const SAGA = paymentSagaId(E2E);
const REVERSAL: CompensationRegistration = { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: E2E, amount: '150.00' } };
const MAX = 6;

function setup(path: readonly SagaState[], compensations: readonly CompensationRegistration[] = [REVERSAL], sagaId = SAGA) {
  const sagas = new FakeSagaStore();
  sagas.seed(sagaId, path, { compensations, ids: { endToEndId: E2E } });
  const actions = new ScriptedPublisher();
  const handler = createCompensateHandler({ sagas, publisher: actions, triggers: COMPENSATION_TRIGGERS });
  return { sagas, actions, handler };
}

function failure(detailType: string, data: unknown, options: { id?: string; sagaId?: string; ids?: Partial<EventDetail> } = {}): DecodedMessage<CompensationTrigger> {
  const sagaId = options.sagaId ?? SAGA;
  return {
    event: {
      id: options.id ?? 'event-1',
      detailType,
      source: 'selo.verify',
      time: undefined,
      detail: { version: 1, sagaId, endToEndId: E2E, attempt: 1, traceparent: newTraceparent(), ...options.ids, data: decodeCompensationTrigger(data, detailType) },
    },
    sqs: { messageId: 'm', receiveCount: 1 },
  };
}

function context(attempt = 1): HandlerContext {
  return { logger: silentLogger(), attempt, maxReceiveCount: MAX, signal: new AbortController().signal };
}

/** PaymentRejected data as the verify worker publishes it (shared/events/verified-events.ts). */
const RJCT = { channel: 'spi', status: 'RJCT', endToEndId: E2E, reason: { code: 'AM04', additionalInformation: 'saldo insuficiente' }, resourceId: 'R1' };

describe('compensation handler', () => {
  it('reverses a rejected payment once: PaymentReversalRequested with amount, reason code and compensationId, then PaymentCompensated', async () => {
    const { sagas, actions, handler } = setup(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    const outcome = await handler(failure('PaymentRejected', RJCT), context());
    expect(actions.published).toHaveLength(1);
    const reversal = actions.published[0];
    expect(reversal?.detailType).toBe('PaymentReversalRequested');
    expect(reversal?.source).toBe('selo.compensate');
    expect(reversal?.detail).toMatchObject({ sagaId: SAGA, endToEndId: E2E });
    expect(reversal?.detail.data).toEqual({ compensationId: `${SAGA}#sign`, step: 'sign', amount: '150.00', endToEndId: E2E, trigger: 'PaymentRejected', reasonCode: 'AM04', description: 'saldo insuficiente' });
    expect(outcome.events.map((e) => e.detailType)).toEqual(['PaymentCompensated']);
    expect(sagas.state(SAGA)).toBe('COMPENSATED');
    const saga = await sagas.get(SAGA);
    expect(saga?.compensations.map((c) => c.status)).toEqual(['DONE']);
    expect(saga?.history.slice(-2).map((t) => [t.from, t.to, t.reason])).toEqual([
      ['REJECTED', 'COMPENSATING', 'PaymentRejected AM04 event=event-1'],
      ['COMPENSATING', 'COMPENSATED', 'PaymentRejected AM04 event=event-1'],
    ]);
    expect(outcome.audit.map((r) => r.transition_to)).toEqual(['COMPENSATING', 'COMPENSATED']);
  });

  it.each([
    ['PaymentRejected', ['TRANSMITTED', 'REJECTED'], RJCT, 'AM04'],
    ['MessageRejected', ['TRANSMITTED', 'REJECTED'], { channel: 'spi', rejectedBizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa', reason: { code: 'AB09', description: 'assinatura inválida' } }, 'AB09'],
    ['TransmissionRejected', ['TRANSMITTING', 'FAILED'], { channel: 'spi', status: 403, code: 'BCB_REQUEST_REJECTED', reason: 'refused' }, 'BCB_REQUEST_REJECTED'],
    ['TransmissionFailed', ['TRANSMITTING', 'FAILED'], { channel: 'spi', code: 'BCB_UNAVAILABLE' }, 'BCB_UNAVAILABLE'],
    ['SigningFailed', ['SIGNED'], { code: 'RETRY_BUDGET_EXHAUSTED', reason: 'EventBridge down', failedDetailType: 'PaymentRequested', worker: 'sign' }, 'RETRY_BUDGET_EXHAUSTED'],
    ['SignatureInvalid', ['SIGNED'], { path: 'outbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest' }, 'XMLDSIG_DIGEST_MISMATCH'],
    ['DictOperationFailed', ['TRANSMITTED', 'REJECTED'], { channel: 'dict', operation: 'createClaim', status: 400, problem: { type: 'https://dict.pi.rsfn.net.br/api/v2/error/EntryInvalid', title: 'Entry invalid' } }, 'EntryInvalid'],
  ] as const)('compensates %s exactly once (saga %s, data %j → reason code %s)', async (detailType, path, data, reasonCode) => {
    const { sagas, actions, handler } = setup(['REQUESTED', ...path]);
    await handler(failure(detailType, data), context());
    await handler(failure(detailType, data, { id: 'duplicate' }), context());
    expect(actions.published.map((e) => [e.detailType, (e.detail.data as { reasonCode: string }).reasonCode])).toEqual([['PaymentReversalRequested', reasonCode]]);
    expect(sagas.state(SAGA)).toBe('COMPENSATED');
  });

  it('publishes nothing for a different duplicate after COMPENSATED, and PaymentCompensated again for a redelivery of the driving event', async () => {
    const { actions, handler } = setup(['TRANSMITTED', 'REJECTED']);
    await handler(failure('PaymentRejected', RJCT, { id: 'A' }), context());
    const duplicate = await handler(failure('MessageRejected', { reason: { code: 'AB09' } }, { id: 'B' }), context());
    expect(duplicate.events).toEqual([]);
    const redelivered = await handler(failure('PaymentRejected', RJCT, { id: 'A' }), context(2));
    expect(redelivered.events.map((e) => e.detailType)).toEqual(['PaymentCompensated']);
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
  });

  it('lets only one of two concurrent failure events compensate', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'REJECTED']);
    const outcomes = await Promise.all([handler(failure('PaymentRejected', RJCT, { id: 'A' }), context()), handler(failure('MessageRejected', RJCT, { id: 'B' }), context())]);
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
    expect(outcomes.flatMap((o) => o.events.map((e) => e.detailType))).toEqual(['PaymentCompensated']);
    expect(sagas.state(SAGA)).toBe('COMPENSATED');
  });

  it('runs the compensations newest first', async () => {
    const older: CompensationRegistration = { step: 'reserve', action: 'PaymentReversalRequested', params: { endToEndId: E2E, amount: '1.00' } };
    const { actions, handler } = setup(['TRANSMITTED', 'REJECTED'], [older, REVERSAL]);
    await handler(failure('PaymentRejected', RJCT), context());
    expect(actions.published.map((e) => (e.detail.data as { step: string }).step)).toEqual(['sign', 'reserve']);
  });

  it('retries a compensation whose publication fails within the queue budget, then resumes it on redelivery without starting over', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'REJECTED']);
    actions.failures = [new TransientError('EVENTBRIDGE_UNAVAILABLE', 'bus down')];
    await expect(handler(failure('PaymentRejected', RJCT), context(1))).rejects.toMatchObject({ code: 'EVENTBRIDGE_UNAVAILABLE' });
    expect(sagas.state(SAGA)).toBe('COMPENSATING');
    expect((await sagas.get(SAGA))?.compensations[0]).toMatchObject({ status: 'FAILED', attempts: 1, lastError: 'EVENTBRIDGE_UNAVAILABLE' });
    // A duplicate while the driver is retrying does nothing.
    expect((await handler(failure('PaymentRejected', RJCT, { id: 'other' }), context(1))).events).toEqual([]);
    const outcome = await handler(failure('PaymentRejected', RJCT), context(2));
    expect(outcome.events.map((e) => e.detailType)).toEqual(['PaymentCompensated']);
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
    expect((await sagas.get(SAGA))?.history.filter((t) => t.to === 'COMPENSATING')).toHaveLength(1);
  });

  it('escalates a compensation that still fails on the last receive: COMPENSATION_FAILED, and the runtime publishes CompensationFailed and dead-letters it', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'REJECTED']);
    actions.failures = Array.from({ length: MAX }, () => new TransientError('EVENTBRIDGE_UNAVAILABLE', 'bus down'));
    const queue = new FakeQueue();
    const runtimePublisher = new FakePublisher();
    const processor = new MessageProcessor<CompensationTrigger>({
      worker: 'compensate', handler, decode: decodeCompensationTrigger, queue, publisher: runtimePublisher, audit: new FakeAudit(), logger: silentLogger(),
      maxReceiveCount: MAX, failureDetailType: 'CompensationFailed', random: () => 0.5,
    });
    const results = [];
    for (let receive = 1; receive <= MAX; receive += 1) results.push(await processor.process(sqsMessage('PaymentRejected', RJCT, 'A', receive)));
    expect(results).toEqual([...Array.from({ length: MAX - 1 }, () => 'retried'), 'dead-lettered']);
    expect(sagas.state(SAGA)).toBe('COMPENSATION_FAILED');
    expect((await sagas.get(SAGA))?.compensations[0]).toMatchObject({ status: 'FAILED', attempts: MAX });
    expect(runtimePublisher.published.map((e) => [e.detailType, (e.detail.data as { code: string }).code])).toEqual([['CompensationFailed', 'COMPENSATION_FAILED']]);
    expect(queue.calls.filter((c) => c.op === 'dlq')).toHaveLength(1);
    expect(actions.published).toEqual([]);

    // Operations replay the dead letter once the bus is back: a new round from COMPENSATION_FAILED.
    const replayed = await processor.process(sqsMessage('PaymentRejected', RJCT, 'A', 1));
    expect(replayed).toBe('deleted');
    expect(sagas.state(SAGA)).toBe('COMPENSATED');
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
    expect(runtimePublisher.published.map((e) => e.detailType)).toEqual(['CompensationFailed', 'PaymentCompensated']);
  });

  it('escalates at once a compensation that can never be published (unknown action)', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'REJECTED'], [{ step: 'x', action: 'TeleportMoney', params: {} }]);
    await expect(handler(failure('PaymentRejected', RJCT), context(1))).rejects.toMatchObject({ code: 'COMPENSATION_FAILED', retryability: 'permanent' });
    expect(sagas.state(SAGA)).toBe('COMPENSATION_FAILED');
    expect(actions.published).toEqual([]);
  });

  it('republishes when the runtime failed to publish PaymentCompensated, and only for that event', async () => {
    const { actions, handler } = setup(['TRANSMITTED', 'REJECTED']);
    const queue = new FakeQueue();
    const runtimePublisher = new FakePublisher();
    runtimePublisher.failWith = new TransientError('EVENTBRIDGE_UNAVAILABLE', 'bus down');
    const processor = new MessageProcessor<CompensationTrigger>({
      worker: 'compensate', handler, decode: decodeCompensationTrigger, queue, publisher: runtimePublisher, audit: new FakeAudit(), logger: silentLogger(),
      maxReceiveCount: MAX, failureDetailType: 'CompensationFailed', random: () => 0.5,
    });
    expect(await processor.process(sqsMessage('PaymentRejected', RJCT, 'A', 1))).toBe('retried');
    runtimePublisher.failWith = undefined;
    expect(await processor.process(sqsMessage('PaymentRejected', RJCT, 'A', 2))).toBe('deleted');
    expect(await processor.process(sqsMessage('PaymentRejected', RJCT, 'B', 1))).toBe('deleted');
    expect(runtimePublisher.published.map((e) => e.detailType)).toEqual(['PaymentCompensated']);
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
  });

  it('never reverses a SETTLED payment: OUTCOME_CONFLICT and OutcomeConflict, republished only for the same event', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'SETTLED']);
    const outcome = await handler(failure('PaymentRejected', RJCT, { id: 'A' }), context());
    expect(outcome.events.map((e) => [e.detailType, e.source])).toEqual([['OutcomeConflict', 'selo.compensate']]);
    expect(outcome.events[0]?.detail.data).toMatchObject({ state: 'SETTLED', reasonCode: 'AM04' });
    expect(sagas.state(SAGA)).toBe('OUTCOME_CONFLICT');
    expect((await handler(failure('PaymentRejected', RJCT, { id: 'A' }), context(2))).events.map((e) => e.detailType)).toEqual(['OutcomeConflict']);
    expect((await handler(failure('PaymentRejected', RJCT, { id: 'B' }), context())).events).toEqual([]);
    expect(actions.published).toEqual([]);
  });

  it.each(['TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'] as const)('never compensates a %s payment: the outcome is not recorded yet, so it is retried', async (state) => {
    const { sagas, actions, handler } = setup(['SIGNED', 'TRANSMITTING', ...(state === 'TRANSMITTING' ? [] : ['TRANSMITTED' as const]), ...(state === 'IN_DOUBT' ? ['IN_DOUBT' as const] : [])]);
    await expect(handler(failure('PaymentRejected', RJCT), context())).rejects.toMatchObject({ code: 'COMPENSATION_OUTCOME_PENDING', retryability: 'transient' });
    expect(sagas.state(SAGA)).toBe(state);
    expect(actions.published).toEqual([]);
  });

  it('compensates an IN_DOUBT payment once a late RJCT was recorded (IN_DOUBT → REJECTED by the verify side)', async () => {
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'IN_DOUBT']);
    await sagas.transition({ sagaId: SAGA, to: 'REJECTED', from: ['IN_DOUBT'], reason: 'late RJCT', attempt: 1, idempotencyKey: 'outcome:R9' });
    await handler(failure('PaymentRejected', RJCT), context());
    expect(actions.of('PaymentReversalRequested')).toHaveLength(1);
    expect(sagas.state(SAGA)).toBe('COMPENSATED');
  });

  it('ignores inbound signature failures, INBOX# and ECHO# sagas, and SigningFailed without a saga', async () => {
    const { sagas, actions, handler } = setup(['SIGNED']);
    expect((await handler(failure('SignatureInvalid', { path: 'inbound' }), context())).events).toEqual([]);
    expect((await handler(failure('SignatureInvalid', {}), context())).events).toEqual([]);
    expect((await handler(failure('SignatureInvalid', { path: 'outbound' }, { sagaId: 'INBOX#R1' }), context())).events).toEqual([]);
    expect((await handler(failure('TransmissionFailed', {}, { sagaId: 'ECHO#0c6d5d53-7b4c-4c57-9c4e-2f3c5c8e9a11', ids: { endToEndId: undefined, requestId: '0c6d5d53-7b4c-4c57-9c4e-2f3c5c8e9a11' } }), context())).events).toEqual([]);
    expect((await handler(failure('SigningFailed', { code: 'SIGN_REQUEST_INVALID' }, { sagaId: 'PAY#E99999004202611281700bbbbbbbbbbb' }), context())).events).toEqual([]);
    expect((await handler(failure('PaymentSettled', {}), context())).events).toEqual([]);
    expect(sagas.state(SAGA)).toBe('SIGNED');
    expect(actions.published).toEqual([]);
  });

  it('retries a failure for a saga that does not exist yet (its writer may lag)', async () => {
    const { handler } = setup(['SIGNED']);
    await expect(handler(failure('PaymentRejected', RJCT, { sagaId: 'PAY#E99999004202611281700ccccccccccc' }), context())).rejects.toMatchObject({ code: 'SAGA_NOT_FOUND' });
  });

  it('turns a DICT compensation into a DictRequested from selo.compensate with a stable RequestId, then DictOperationCompensated', async () => {
    const requestId = '7d1f6e0a-3c0b-4f4e-8a57-1b2c3d4e5f60';
    const sagaId = `DICT#${requestId}`;
    const cancel: CompensationRegistration = { step: 'createClaim', action: 'DictRequested', params: { operation: 'cancelClaim', pathParameters: { ClaimId: 'c-1' }, body: { ClaimId: 'c-1', Reason: 'FRAUD' } } };
    const { sagas, actions, handler } = setup(['TRANSMITTED', 'REJECTED'], [cancel], sagaId);
    const message = failure('DictOperationFailed', { status: 400, code: 'EntryInvalid' }, { sagaId, ids: { endToEndId: undefined, requestId } });
    const outcome = await handler(message, context());
    const request = actions.published[0];
    expect(request?.detailType).toBe('DictRequested');
    expect(request?.source).toBe('selo.compensate');
    expect(request?.detail.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(request?.detail.sagaId).toBe(`DICT#${request?.detail.requestId ?? ''}`);
    expect(request?.detail.data).toMatchObject({ operation: 'cancelClaim', pathParameters: { ClaimId: 'c-1' }, compensationId: `${sagaId}#createClaim`, compensates: sagaId, reasonCode: 'EntryInvalid' });
    expect(outcome.events.map((e) => e.detailType)).toEqual(['DictOperationCompensated']);
    expect(sagas.state(sagaId)).toBe('COMPENSATED');

    // The same compensation always yields the same request.
    const again = setup(['TRANSMITTED', 'REJECTED'], [cancel], sagaId);
    await again.handler(message, context());
    expect(again.actions.published[0]?.detail.requestId).toBe(request?.detail.requestId);
  });

  it('closes a saga with nothing registered as COMPENSATED without any reversal', async () => {
    const { sagas, actions, handler } = setup(['REQUESTED'], []);
    const outcome = await handler(failure('SigningFailed', { code: 'HSM_UNAVAILABLE' }), context());
    expect(actions.published).toEqual([]);
    expect(outcome.events[0]?.detail.data).toMatchObject({ compensations: [] });
    expect((await sagas.get(SAGA))?.history.map((t) => t.to)).toEqual(['REQUESTED', 'FAILED', 'COMPENSATING', 'COMPENSATED']);
  });
});

describe('decodeCompensationTrigger', () => {
  it('takes the reason code, else the code, else the detail-type, and never throws', () => {
    expect(decodeCompensationTrigger({ reasonCode: 'AM04', code: 'X' }, 'PaymentRejected').reasonCode).toBe('AM04');
    expect(decodeCompensationTrigger({ code: 'BCB_REQUEST_REJECTED' }, 'TransmissionRejected').reasonCode).toBe('BCB_REQUEST_REJECTED');
    expect(decodeCompensationTrigger(null, 'DictOperationFailed')).toEqual({ reasonCode: 'DictOperationFailed' });
    expect(decodeCompensationTrigger({ path: 'sideways' }, 'SignatureInvalid')).toEqual({ reasonCode: 'SignatureInvalid' });
    // As the verify worker publishes them (shared/events/verified-events.ts).
    expect(decodeCompensationTrigger({ status: 'RJCT', reason: { code: 'AM04', additionalInformation: 'saldo' } }, 'PaymentRejected')).toEqual({ reasonCode: 'AM04', description: 'saldo' });
    expect(decodeCompensationTrigger({ reason: { code: 'AB09', description: 'assinatura' } }, 'MessageRejected')).toEqual({ reasonCode: 'AB09', description: 'assinatura' });
    expect(decodeCompensationTrigger({ status: 400, problem: { type: 'https://dict.pi.rsfn.net.br/api/v2/error/EntryInvalid', title: 'Entry invalid' } }, 'DictOperationFailed')).toEqual({ reasonCode: 'EntryInvalid', description: 'Entry invalid' });
    expect(decodeCompensationTrigger({ path: 'outbound', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest' }, 'SignatureInvalid')).toEqual({ reasonCode: 'XMLDSIG_DIGEST_MISMATCH', description: 'digest', path: 'outbound' });
  });
});

function sqsMessage(detailType: string, data: unknown, id: string, receiveCount: number): Message {
  const body = encodeEventBody({ id, detailType, source: 'selo.verify', detail: { version: 1, sagaId: SAGA, endToEndId: E2E, attempt: 1, traceparent: newTraceparent(), data } });
  return { MessageId: `sqs-${id}`, ReceiptHandle: `rh-${id}-${receiveCount}`, Body: body, Attributes: { ApproximateReceiveCount: String(receiveCount) } };
}
