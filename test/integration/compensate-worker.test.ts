import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { KinesisAuditProducer, kinesisPutRecordsPort } from '../../shared/audit/index.ts';
import { encodeEventBody, newTraceparent } from '../../shared/events/index.ts';
import { EventBridgePublisher, eventBridgePutEventsPort } from '../../shared/runtime/index.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import { InDoubtSweeper, startCompensateWorker } from '../../workers/compensate/index.ts';
import type { CompensateWorker } from '../../workers/compensate/index.ts';
import { silentLogger } from '../unit/runtime/fakes.ts';
import { readAuditRecords, receiveMatching } from '../support/local-aws.ts';
import { Subscriber, newEndToEndId, publishFailure, seedPayment } from './compensate-support.ts';

const topology = resolveTopology('local');
let stack: LocalStack;
let worker: CompensateWorker;
let sagas: SagaStore;
/** Everything selo.compensate publishes, and the operations alerts (CompensationFailed comes from the runtime). */
let downstream: Subscriber;

const RJCT = { channel: 'spi', status: 'RJCT', reason: { code: 'AM04', additionalInformation: 'saldo insuficiente' }, resourceId: 'R1' };

beforeAll(async () => {
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
  await worker?.close();
  await downstream?.stop();
  await stack?.close();
});

/** Gives the worker time to act on anything still queued (duplicates), so counts are final. */
async function settle(ms = 3_000): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
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
    await settle(1_000);
    const reversals = downstream.of(sagaId, 'PaymentReversalRequested');
    expect(reversals).toHaveLength(1);
    expect(reversals[0]?.detail.data).toMatchObject({ compensationId: `${sagaId}#sign`, amount: '150.00', endToEndId, reasonCode, trigger: detailType });
    const saga = await sagas.get(sagaId);
    expect(saga?.state).toBe('COMPENSATED');
    expect(saga?.compensations.map((c) => c.status)).toEqual(['DONE']);
  });

  it('ignores SignatureInvalid on the inbound path', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await publishFailure(stack, 'SignatureInvalid', { sagaId, endToEndId }, { path: 'inbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest' });
    await settle();
    expect(downstream.of(sagaId)).toEqual([]);
    expect((await sagas.get(sagaId))?.state).toBe('REJECTED');
  });

  it('gives one reversal for duplicated failure events, republishes PaymentCompensated for a redelivery of the driving event only', async () => {
    const { sagaId, endToEndId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await Promise.all([
      publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT),
      publishFailure(stack, 'PaymentRejected', { sagaId, endToEndId }, RJCT),
      publishFailure(stack, 'MessageRejected', { sagaId, endToEndId }, { reason: { code: 'AB09' } }),
    ]);
    await downstream.waitFor(sagaId, 'PaymentCompensated');
    await settle();
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
    await settle();
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
    await settle(1_000);
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

  it('sweeps an old TRANSMITTED payment into IN_DOUBT with PaymentInDoubt and no reversal; a late RJCT then compensates, a late ACSC settles', async () => {
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
    await settle(1_000);
    expect(downstream.of(late.sagaId).map((e) => e.detailType)).toEqual(['PaymentInDoubt']);

    // Late outcomes, as the verify side handles them: record, then publish.
    await sagas.transition({ sagaId: late.sagaId, to: 'REJECTED', from: ['IN_DOUBT'], reason: 'late pacs.002 RJCT', attempt: 1, idempotencyKey: 'rejected' });
    await publishFailure(stack, 'PaymentRejected', { sagaId: late.sagaId, endToEndId: late.endToEndId }, RJCT);
    await downstream.waitFor(late.sagaId, 'PaymentCompensated');
    expect(downstream.of(late.sagaId, 'PaymentReversalRequested')).toHaveLength(1);
    await sagas.transition({ sagaId: settled.sagaId, to: 'SETTLED', from: ['IN_DOUBT'], reason: 'late pacs.002 ACSC', attempt: 1, idempotencyKey: 'settled' });
    expect((await sagas.get(settled.sagaId))?.state).toBe('SETTLED');
    expect(downstream.of(settled.sagaId).map((e) => e.detailType)).toEqual(['PaymentInDoubt']);
  });
});
