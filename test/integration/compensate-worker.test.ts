import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { KinesisAuditProducer, kinesisPutRecordsPort } from '../../shared/audit/index.ts';
import { decodeEventBody, encodeEventBody, newTraceparent } from '../../shared/events/index.ts';
import { EventBridgePublisher, eventBridgePutEventsPort } from '../../shared/runtime/index.ts';
import type { HandlerContext, Outcome } from '../../shared/runtime/index.ts';
import { DedupeStore, SagaStore } from '../../shared/saga/index.ts';
import { pemSigningKey, TrustStore } from '../../shared/xmldsig/index.ts';
import { InDoubtSweeper, startCompensateWorker } from '../../workers/compensate/index.ts';
import type { CompensateWorker } from '../../workers/compensate/index.ts';
import { createVerifyHandler, decodeVerifyInput } from '../../workers/verify/index.ts';
import type { VerifyInput } from '../../workers/verify/index.ts';
import { silentLogger } from '../unit/runtime/fakes.ts';
import { bcbMessageReceived, signedPacs002, statusOf } from '../unit/workers/verify-messages.ts';
import type { BcbSender } from '../unit/workers/verify-messages.ts';
import { readAuditRecords, receiveMatching } from '../support/local-aws.ts';
import { createTestPki } from '../support/test-pki.ts';
import type { TestPki } from '../support/test-pki.ts';
import { waitUntil } from '../support/wait-until.ts';
import { Subscriber, newEndToEndId, publishFailure, seedPayment } from './compensate-support.ts';

const topology = resolveTopology('local');
let stack: LocalStack;
let worker: CompensateWorker;
let sagas: SagaStore;
/** Everything selo.compensate publishes, and the operations alerts (CompensationFailed comes from the runtime). */
let downstream: Subscriber;
let pki: TestPki;
/** The BCB as the verify handler trusts it. */
let bcb: BcbSender;
let trustStore: TrustStore;

const RJCT = { channel: 'spi', status: 'RJCT', reason: { code: 'AM04', additionalInformation: 'saldo insuficiente' }, resourceId: 'R1' };

beforeAll(async () => {
  pki = createTestPki();
  const bcbLeaf = pki.issue('bcb signing');
  bcb = { key: pemSigningKey(bcbLeaf.keyPem, bcbLeaf.certPem), toIspb: '99999004' };
  trustStore = new TrustStore();
  trustStore.add(bcbLeaf.certPem, { ispb: '00038166' });
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  downstream = new Subscriber(stack);
  await downstream.start('downstream-compensate', { source: ['selo.compensate'] });
  worker = await startCompensateWorker({
    env: {
      ...stack.env(),
      SELO_HEALTH_PORT: '0',
      SELO_SQS_WAIT_SECONDS: '1',
      SELO_BACKOFF_BASE_SECONDS: '0',
      SELO_BACKOFF_MAX_SECONDS: '1',
      SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent',
    },
  });
}, 120_000);

afterAll(async () => {
  pki?.dispose();
  await worker?.close();
  await downstream?.stop();
  await stack?.close();
});

/** Messages on the compensate queue: waiting, received and not yet deleted, or delayed. */
async function compensateQueueDepth(): Promise<number> {
  const { Attributes } = await stack.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.provisioned?.queues.compensate?.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages ?? 'NaN') + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 'NaN') + Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 'NaN');
}

/**
 * Waits until the worker has dealt with everything queued (duplicates included), so counts are
 * final: the compensate queue is empty (the runtime deletes a message only after its events were
 * accepted), then a marker payment rejected after that is compensated, which shows the worker
 * still alive and events published before it delivered downstream.
 */
async function drained(): Promise<void> {
  await waitUntil('compensate queue drained', async () => (await compensateQueueDepth()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
  const marker = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
  await publishFailure(stack, 'PaymentRejected', marker, RJCT);
  await downstream.waitFor(marker.sagaId, 'PaymentCompensated');
}

/**
 * A signed pacs.002 from the BCB about `endToEndId`, handled by the verify worker's handler on the
 * real saga table; its events are published on selo's bus as the verify runtime would.
 */
async function lateAnswer(endToEndId: string, status: 'ACSC' | 'RJCT'): Promise<Outcome> {
  const handler = createVerifyHandler({
    ispb: '99999004',
    bcbIspb: '00038166',
    trustStore,
    sagas,
    index: { sagaOfMessage: () => Promise.resolve(undefined), sagaOfEcho: () => Promise.resolve(undefined) },
    claimCheck: { put: () => Promise.reject(new Error('no claim check here')), get: () => Promise.reject(new Error('no claim check here')) },
    quarantine: { put: () => Promise.reject(new Error('nothing should be quarantined')) },
    markers: new DedupeStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name }),
  });
  const xml = await signedPacs002(bcb, statusOf(endToEndId, status, 'AM04'));
  const event = decodeEventBody<VerifyInput>(encodeEventBody(bcbMessageReceived(randomUUID().replace(/-/g, ''), xml)), decodeVerifyInput, 'm');
  const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };
  const outcome = await handler({ event, sqs: { messageId: 'm', receiveCount: 1 } }, context);
  await new EventBridgePublisher({ port: eventBridgePutEventsPort(stack.clients.events), eventBusName: topology.eventBusName, defaultSource: 'selo.verify' }).publish(outcome.events);
  return outcome;
}

describe('compensation worker on the local stack', () => {
  it.each([
    ['PaymentRejected', 'selo.verify', ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED'], RJCT, 'AM04'],
    ['MessageRejected', 'selo.verify', ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED'], { channel: 'spi', rejectedBizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa', reason: { code: 'AB09' } }, 'AB09'],
    ['TransmissionRejected', 'selo.transmit', ['SIGNED', 'TRANSMITTING', 'FAILED'], { channel: 'spi', status: 403, code: 'BCB_REQUEST_REJECTED', reason: 'refused' }, 'BCB_REQUEST_REJECTED'],
    ['TransmissionFailed', 'selo.transmit', ['SIGNED', 'TRANSMITTING', 'FAILED'], { channel: 'spi', code: 'BCB_UNAVAILABLE', reason: 'budget spent' }, 'BCB_UNAVAILABLE'],
    ['SigningFailed', 'selo.sign', ['SIGNED'], { code: 'RETRY_BUDGET_EXHAUSTED', reason: 'bus down', failedDetailType: 'PaymentRequested', worker: 'sign' }, 'RETRY_BUDGET_EXHAUSTED'],
    ['SignatureInvalid', 'selo.verify', ['SIGNED'], { path: 'outbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest' }, 'XMLDSIG_DIGEST_MISMATCH'],
    ['DictOperationFailed', 'selo.verify', ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED'], { channel: 'dict', operation: 'createClaim', status: 400, problem: { type: 'https://dict/error/EntryInvalid', title: 'Entry invalid' } }, 'EntryInvalid'],
  ] as const)('turns %s (from %s) into exactly one PaymentReversalRequested', async (detailType, source, path, data, reasonCode) => {
    const { sagaId, endToEndId } = await seedPayment(sagas, path);
    await publishFailure(stack, detailType, { sagaId, endToEndId }, data, source);
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await drained();
    const reversals = downstream.of(sagaId, 'PaymentReversalRequested');
    expect(reversals).toHaveLength(1);
    expect(reversals[0]?.detail.data).toMatchObject({ compensationId: `${sagaId}#sign`, amount: '150.00', endToEndId, reasonCode, trigger: detailType });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('COMPENSATED');
    expect(saga?.compensations.map((c) => c.status)).toEqual(['DONE']);
  });

  it('ignores SignatureInvalid on the inbound path, and compensates the payment on its PaymentRejected afterwards', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await waitUntil('compensate queue empty before the test', async () => (await compensateQueueDepth()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
    // Straight onto the worker's queue (the bus routes SignatureInvalid there, see the outbound
    // case above): the worker must receive it and delete it as handled, not retry or dead-letter it.
    const queueUrl = stack.provisioned?.queues.compensate?.url ?? '';
    const ignored = { id: randomUUID(), detailType: 'SignatureInvalid', source: 'selo.verify', detail: { version: 1 as const, sagaId, endToEndId, attempt: 1, traceparent: newTraceparent(), data: { path: 'inbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest' } } };
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeEventBody(ignored) }));
    await waitUntil('the SignatureInvalid received and deleted', async () => (await compensateQueueDepth()) === 0, { timeoutMs: 30_000, intervalMs: 50 });
    const dlq = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.provisioned?.queues.compensate?.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    expect((dlq.Messages ?? []).filter((m) => (m.Body ?? '').includes(sagaId))).toEqual([]);
    expect(downstream.of(sagaId)).toEqual([]);
    const untouched = await sagas.get(sagaId);
    expect(untouched?.state).toBe('REJECTED');
    expect(untouched?.compensations.map((c) => c.status)).toEqual(['PENDING']);
    // The same worker then acts on the payment's rejection: the one reversal is the RJCT's.
    await publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT);
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await drained();
    const reversals = downstream.of(sagaId, 'PaymentReversalRequested');
    expect(reversals.map((r) => r.detail.data.trigger)).toEqual(['PaymentRejected']);
    expect((await sagas.get(sagaId))?.history.filter((t) => t.reason.includes('SignatureInvalid'))).toEqual([]);
  });

  it('gives one reversal for duplicated failure events, republishes PaymentCompensated for a redelivery of the driving event only', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await Promise.all([
      publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT),
      publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT),
      publishFailure(stack, 'MessageRejected', { sagaId, endToEndId }, { reason: { code: 'AB09' } }),
    ]);
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await drained();
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toHaveLength(1);
    expect(downstream.of(sagaId, 'PaymentCompensated')).toHaveLength(1);

    // The SQS redelivery of the driving event (its publication failed): same EventBridge id.
    const saga = await sagas.get(sagaId);
    const driver = /event=(\S+)$/.exec(saga?.history.find((t) => t.to === 'COMPENSATING')?.reason ?? '')?.[1] ?? '';
    expect(driver).not.toBe('');
    const queueUrl = stack.provisioned?.queues.compensate?.url ?? '';
    const body = (id: string) => encodeEventBody({ id, detailType: 'PaymentRejected', source: 'selo.verify', detail: { version: 1, sagaId, endToEndId, attempt: 1, traceparent: newTraceparent(), data: RJCT } });
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body(driver) }));
    await downstream.waitFor(sagaId, 'PaymentCompensated', { count: 2 });
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body(randomUUID()) }));
    await drained();
    expect(downstream.of(sagaId, 'PaymentCompensated')).toHaveLength(2);
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toHaveLength(1);
  });

  it('escalates a compensation that cannot be published: COMPENSATION_FAILED, CompensationFailed, the trigger in the DLQ', async () => {
    const endToEndId = newEndToEndId();
    const { sagaId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED'], { endToEndId, compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId, amount: 'a lot' } } });
    await publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT);
    const [alert] = await downstream.waitFor(sagaId, 'CompensationFailed');
    expect(alert?.detail.data).toMatchObject({ code: 'COMPENSATION_FAILED', failedDetailType: 'PaymentRejected', worker: 'compensate' });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('COMPENSATION_FAILED');
    expect(saga?.compensations[0]).toMatchObject({ status: 'FAILED', lastError: 'COMPENSATION_INVALID' });
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toEqual([]);
    const dlq = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.provisioned?.queues.compensate?.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    expect((dlq.Messages ?? []).some((m) => (m.Body ?? '').includes(sagaId) && m.MessageAttributes?.['selo-error-code']?.StringValue === 'COMPENSATION_FAILED')).toBe(true);
  });

  it('never reverses a SETTLED payment: a late RJCT gives OUTCOME_CONFLICT and OutcomeConflict', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'SETTLED']);
    await publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT);
    const [conflict] = await downstream.waitFor(sagaId, 'OutcomeConflict');
    expect(conflict?.detail.data).toMatchObject({ state: 'SETTLED', reasonCode: 'AM04' });
    await drained();
    expect((await sagas.get(sagaId))?.state).toBe('OUTCOME_CONFLICT');
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toEqual([]);
  });

  it('never compensates a TRANSMITTED payment whose rejection is not recorded: retried, then dead-lettered with CompensationFailed; a replay after the RJCT is recorded compensates', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT);
    const [alert] = await downstream.waitFor(sagaId, 'CompensationFailed');
    expect(alert?.detail.data).toMatchObject({ code: 'RETRY_BUDGET_EXHAUSTED', failedDetailType: 'PaymentRejected' });
    expect(alert?.detail.data.reason).toContain('COMPENSATION_OUTCOME_PENDING on receive 6 of 6');
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toEqual([]);
    // The verify side records the RJCT; operations replay the dead letter.
    await sagas.transition({ sagaId, to: 'REJECTED', from: ['TRANSMITTED'], reason: 'pacs.002 RJCT AM04', attempt: 1, idempotencyKey: 'rejected' });
    const dlq = await receiveMatching(stack.clients.sqs, stack.provisioned?.queues.compensate?.dlqUrl ?? '', (body) => body.includes(sagaId));
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: stack.provisioned?.queues.compensate?.url, MessageBody: dlq.raw }));
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    expect(downstream.of(sagaId, 'PaymentReversalRequested')).toHaveLength(1);
  });

  it('sweeps an old TRANSMITTED payment into IN_DOUBT with PaymentInDoubt and no reversal; the verify handler takes a late RJCT (then compensated) and a late ACSC (settled)', async () => {
    const late = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    const settled = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    // A sweeper whose clock is 61 s ahead: both payments are past the SPI's 40 s plus the 20 s margin.
    const audit = new KinesisAuditProducer({ port: kinesisPutRecordsPort(stack.clients.kinesis), streamName: topology.auditStream.name, logger: silentLogger() });
    const sweeper = new InDoubtSweeper({
      sagas,
      publisher: new EventBridgePublisher({ port: eventBridgePutEventsPort(stack.clients.events), eventBusName: topology.eventBusName, defaultSource: 'selo.compensate' }),
      audit,
      logger: silentLogger(),
      now: () => new Date(Date.now() + 61_000),
    });
    const swept = await sweeper.sweep();
    await sweeper.close();
    await audit.close();
    expect(swept.inDoubt).toEqual(expect.arrayContaining([late.sagaId, settled.sagaId]));
    // The transition is on the audit stream, like every other saga transition.
    const transitions = (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).filter((r) => r.kind === 'transition' && r.transition_to === 'IN_DOUBT');
    for (const { sagaId, endToEndId } of [late, settled]) {
      expect(transitions.filter((r) => r.saga_id === sagaId)).toEqual([expect.objectContaining({ worker: 'compensate', transition_from: 'TRANSMITTED', end_to_end_id: endToEndId })]);
    }
    for (const { sagaId } of [late, settled]) {
      const [inDoubt] = await downstream.waitFor(sagaId, 'PaymentInDoubt');
      expect(inDoubt?.source).toBe('selo.compensate');
      expect((await sagas.get(sagaId))?.state).toBe('IN_DOUBT');
    }
    await drained();
    expect(downstream.of(late.sagaId).map((e) => e.detailType)).toEqual(['PaymentInDoubt']);

    // Late answers from the BCB, through the verify worker's handler on the real saga table; what
    // it emits goes on the bus as the verify worker's runtime would publish it.
    const rejected = await lateAnswer(late.endToEndId, 'RJCT');
    expect(rejected.events.map((e) => e.detailType)).toEqual(['PaymentRejected']);
    expect((await sagas.get(late.sagaId))?.state).toBe('REJECTED');
    await downstream.waitFor(late.sagaId, 'PaymentCompensated');
    expect(downstream.of(late.sagaId, 'PaymentReversalRequested')).toHaveLength(1);
    const settlement = await lateAnswer(settled.endToEndId, 'ACSC');
    expect(settlement.events.map((e) => e.detailType)).toEqual(['PaymentSettled']);
    const afterSettlement = await sagas.get(settled.sagaId);
    expect(afterSettlement?.state).toBe('SETTLED');
    expect(afterSettlement?.history.at(-1)).toMatchObject({ from: 'IN_DOUBT', to: 'SETTLED' });
    await drained();
    expect(downstream.of(settled.sagaId).map((e) => e.detailType)).toEqual(['PaymentInDoubt']);
    expect((await sagas.get(settled.sagaId))?.compensations.map((c) => c.status)).toEqual(['PENDING']);
  });
});
