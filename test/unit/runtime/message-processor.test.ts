import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { transitionAuditRecord } from '../../../shared/audit/index.ts';
import { PermanentError, TransientError } from '../../../shared/errors/index.ts';
import { deriveDetail } from '../../../shared/events/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { MessageProcessor, RETRY_BUDGET_EXHAUSTED, visibilityBackoffSeconds } from '../../../shared/runtime/index.ts';
import type { Handler, MessageProcessorOptions } from '../../../shared/runtime/index.ts';
import { drainEventLoop, waitUntil } from '../../support/wait-until.ts';
import { FakeAudit, FakePublisher, FakeQueue, deferred, paymentMessage, silentLogger } from './fakes.ts';

interface Payment {
  amount: string;
}

function decodePayment(data: unknown): Payment {
  if (typeof data !== 'object' || data === null || typeof (data as { amount?: unknown }).amount !== 'string') {
    throw new PermanentError('PAYMENT_INVALID', 'data.amount must be a string');
  }
  return data as Payment;
}

const signed: Handler<Payment> = (message) =>
  Promise.resolve({
    events: [{ detailType: 'MessageSigned', detail: deriveDetail(message.event.detail, { signed: true }) }],
    audit: [transitionAuditRecord({ worker: 'sign', system: 'spi', sagaId: message.event.detail.sagaId }, { from: 'REQUESTED', to: 'SIGNED', reason: 'signed' })],
  });

function setup(handler: Handler<Payment>, overrides: Partial<MessageProcessorOptions<Payment>> = {}) {
  const queue = new FakeQueue();
  const publisher = new FakePublisher();
  const audit = new FakeAudit();
  const processor = new MessageProcessor<Payment>({
    worker: 'sign',
    handler,
    decode: decodePayment,
    queue,
    publisher,
    audit,
    logger: silentLogger(),
    maxReceiveCount: 5,
    failureDetailType: 'SigningFailed',
    random: () => 0.5,
    ...overrides,
  });
  return { queue, publisher, audit, processor };
}

describe('MessageProcessor', () => {
  it('deletes a handled message after its events and audit records were accepted', async () => {
    const { queue, publisher, audit, processor } = setup(signed);
    expect(await processor.process(paymentMessage('1'))).toBe('deleted');
    expect(publisher.published.map((e) => e.detailType)).toEqual(['MessageSigned']);
    expect(audit.accepted).toHaveLength(1);
    expect(queue.calls).toEqual([{ op: 'delete', messageId: '1' }]);
  });

  it('logs where a handled message\'s time went: queue wait (from SentTimestamp), handler, publishing, deletion', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ name: 'test', level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, cb) => cb(void lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)) }) });
    const { processor } = setup(signed, { logger });
    const message = paymentMessage('1');
    message.Attributes = { ...message.Attributes, SentTimestamp: String(Date.now() - 1_500) };
    expect(await processor.process(message)).toBe('deleted');
    await processor.process(paymentMessage('2'));
    const handled = lines.filter((line) => line['msg'] === 'message handled');
    expect(handled).toHaveLength(2);
    expect(handled[0]?.['queueMs']).toBeGreaterThanOrEqual(1_500);
    expect(handled[0]?.['queueMs']).toBeLessThan(60_000);
    for (const field of ['handlerMs', 'publishMs', 'deleteMs']) expect(typeof handled[0]?.[field], field).toBe('number');
    // Without the attribute there is no wait to tell.
    expect(handled[1]).not.toHaveProperty('queueMs');
  });

  it('does not delete until the audit sink accepted the records', async () => {
    const { queue, audit, processor } = setup(signed);
    const kinesis = deferred();
    audit.gate = kinesis.promise;
    const put = audit.put.bind(audit);
    let offered = 0;
    audit.put = (records) => ((offered += 1), put(records));
    const result = processor.process(paymentMessage('1'));
    // The records are offered and held: the processor has gone as far as it can without Kinesis.
    await waitUntil('audit records offered', () => offered > 0);
    await drainEventLoop();
    expect(queue.calls).toEqual([]);
    kinesis.resolve();
    expect(await result).toBe('deleted');
    expect(queue.calls.map((c) => c.op)).toEqual(['delete']);
  });

  it('does not delete until EventBridge accepted the events', async () => {
    const { queue, publisher, processor } = setup(signed);
    const bus = deferred();
    publisher.gate = bus.promise;
    const publish = publisher.publish.bind(publisher);
    let offered = 0;
    publisher.publish = (events) => ((offered += 1), publish(events));
    const result = processor.process(paymentMessage('1'));
    await waitUntil('events offered', () => offered > 0);
    await drainEventLoop();
    expect(queue.calls).toEqual([]);
    bus.resolve();
    expect(await result).toBe('deleted');
  });

  it('backs a transient failure off through the visibility timeout, growing with the receive count', async () => {
    const { queue, publisher, processor } = setup(() => Promise.reject(new TransientError('HSM_BUSY', 'busy')));
    expect(await processor.process(paymentMessage('1', { receiveCount: 1 }))).toBe('retried');
    expect(await processor.process(paymentMessage('2', { receiveCount: 3 }))).toBe('retried');
    expect(queue.calls).toEqual([
      { op: 'visibility', messageId: '1', seconds: visibilityBackoffSeconds(1, {}, () => 0.5) },
      { op: 'visibility', messageId: '2', seconds: visibilityBackoffSeconds(3, {}, () => 0.5) },
    ]);
    expect(queue.calls[1]!.seconds!).toBeGreaterThan(queue.calls[0]!.seconds!);
    expect(publisher.published).toEqual([]);
  });

  it("waits at least a transient error's retryAfterSeconds before the retry, and the backoff when it is longer", async () => {
    const { queue, processor } = setup((message) =>
      Promise.reject(new TransientError('BCB_THROTTLED', '429', { retryAfterSeconds: message.sqs.messageId === 'short' ? 1 : 120 })),
    );
    expect(await processor.process(paymentMessage('long', { receiveCount: 1 }))).toBe('retried');
    expect(await processor.process(paymentMessage('short', { receiveCount: 3 }))).toBe('retried');
    expect(visibilityBackoffSeconds(1, {}, () => 0.5)).toBeLessThan(120);
    expect(visibilityBackoffSeconds(3, {}, () => 0.5)).toBeGreaterThan(1);
    expect(queue.calls).toEqual([
      { op: 'visibility', messageId: 'long', seconds: 120 },
      { op: 'visibility', messageId: 'short', seconds: visibilityBackoffSeconds(3, {}, () => 0.5) },
    ]);
  });

  it('caps a retryAfterSeconds beyond the SQS visibility maximum at 12 hours', async () => {
    const { queue, processor } = setup(() => Promise.reject(new TransientError('BCB_THROTTLED', '429', { retryAfterSeconds: 100_000 })));
    expect(await processor.process(paymentMessage('1', { receiveCount: 1 }))).toBe('retried');
    expect(queue.calls).toEqual([{ op: 'visibility', messageId: '1', seconds: 43_200 }]);
  });

  it('treats an unknown error as transient', async () => {
    const { queue, processor } = setup(() => Promise.reject(new Error('socket hang up')));
    expect(await processor.process(paymentMessage('1'))).toBe('retried');
    expect(queue.calls.map((c) => c.op)).toEqual(['visibility']);
  });

  it('retries the message when the events are not accepted', async () => {
    const { queue, publisher, processor } = setup(signed);
    publisher.failWith = new TransientError('EVENTS_NOT_PUBLISHED', 'bus down');
    expect(await processor.process(paymentMessage('1'))).toBe('retried');
    expect(queue.calls.map((c) => c.op)).toEqual(['visibility']);
  });

  it('publishes a failure event, then dead-letters a permanent failure with its reason, then deletes it', async () => {
    const { queue, publisher, processor } = setup(() => Promise.reject(new PermanentError('XSD_INVALID', 'pacs.008 fails the XSD')));
    expect(await processor.process(paymentMessage('1', { receiveCount: 2 }))).toBe('dead-lettered');
    expect(publisher.published).toHaveLength(1);
    expect(publisher.published[0]).toMatchObject({
      detailType: 'SigningFailed',
      detail: { attempt: 2, data: { code: 'XSD_INVALID', reason: 'pacs.008 fails the XSD', failedDetailType: 'PaymentRequested', worker: 'sign' } },
    });
    expect(queue.calls).toEqual([
      { op: 'dlq', messageId: '1', reason: { code: 'XSD_INVALID', reason: 'pacs.008 fails the XSD' } },
      { op: 'delete', messageId: '1' },
    ]);
  });

  it('dead-letters a malformed body with its reason and no failure event', async () => {
    const { queue, publisher, processor } = setup(signed);
    expect(await processor.process(paymentMessage('1', { body: '{not json' }))).toBe('dead-lettered');
    expect(publisher.published).toEqual([]);
    expect(queue.calls[0]).toMatchObject({ op: 'dlq', reason: { code: 'MALFORMED_EVENT', reason: 'malformed event: body is not JSON' } });
    expect(queue.calls[1]).toEqual({ op: 'delete', messageId: '1' });
  });

  it('dead-letters an event whose data the decoder rejects, naming the field', async () => {
    const { queue, publisher, processor } = setup(signed);
    expect(await processor.process(paymentMessage('1', { data: { amount: 10 } }))).toBe('dead-lettered');
    expect(publisher.published[0]?.detail.data).toMatchObject({ code: 'PAYMENT_INVALID' });
    expect(queue.calls[0]).toMatchObject({ op: 'dlq', reason: { code: 'PAYMENT_INVALID', reason: 'data.amount must be a string' } });
  });

  it('turns a transient failure on the last receive into a dead-lettered budget exhaustion', async () => {
    const { queue, publisher, processor } = setup(() => Promise.reject(new TransientError('BCB_UNAVAILABLE', '503')));
    expect(await processor.process(paymentMessage('1', { receiveCount: 5 }))).toBe('dead-lettered');
    expect(publisher.published[0]?.detail.data).toMatchObject({ code: RETRY_BUDGET_EXHAUSTED });
    expect(queue.calls[0]).toMatchObject({ op: 'dlq', reason: { code: RETRY_BUDGET_EXHAUSTED } });
    expect(queue.calls[0]?.reason?.reason).toContain('BCB_UNAVAILABLE');
  });

  it('keeps a permanent failure in its queue when the DLQ cannot take it', async () => {
    const { queue, processor } = setup(() => Promise.reject(new PermanentError('XSD_INVALID', 'bad')));
    queue.failDeadLetter = true;
    expect(await processor.process(paymentMessage('1'))).toBe('retried');
    expect(queue.calls.map((c) => c.op)).toEqual(['visibility']);
  });

  it('decides each message of a batch alone', async () => {
    const handler: Handler<Payment> = (message) =>
      message.sqs.messageId === 'bad' ? Promise.reject(new PermanentError('XSD_INVALID', 'bad')) : message.sqs.messageId === 'slow' ? Promise.reject(new TransientError('HSM_BUSY', 'busy')) : signed(message, undefined as never);
    const { queue, processor } = setup(handler);
    const results = await Promise.all(['ok1', 'bad', 'slow', 'ok2'].map((id) => processor.process(paymentMessage(id))));
    expect(results).toEqual(['deleted', 'dead-lettered', 'retried', 'deleted']);
    const ops = (id: string): string[] => queue.calls.filter((c) => c.messageId === id).map((c) => c.op);
    expect(ops('ok1')).toEqual(['delete']);
    expect(ops('ok2')).toEqual(['delete']);
    expect(ops('bad')).toEqual(['dlq', 'delete']);
    expect(ops('slow')).toEqual(['visibility']);
  });

  it('drains: waits for messages in flight and releases the ones that arrive after', async () => {
    const gate = deferred();
    const { queue, processor } = setup(async (message) => {
      await gate.promise;
      return signed(message, undefined as never);
    });
    const first = processor.process(paymentMessage('1'));
    const drained = processor.drain(1_000);
    expect(await processor.process(paymentMessage('2'))).toBe('released');
    gate.resolve();
    expect(await drained).toBe(true);
    expect(await first).toBe('deleted');
    expect(queue.calls).toEqual([
      { op: 'visibility', messageId: '2', seconds: 0 },
      { op: 'delete', messageId: '1' },
    ]);
  });

  it('aborts the handlers\' signal when draining times out', async () => {
    let signal: AbortSignal | undefined;
    const { processor } = setup((_message, context) => {
      signal = context.signal;
      return new Promise(() => undefined);
    });
    void processor.process(paymentMessage('1'));
    expect(await processor.drain(20)).toBe(false);
    expect(signal?.aborted).toBe(true);
  });
});

describe('visibilityBackoffSeconds', () => {
  it('doubles per receive within the jitter band and stops at the cap', () => {
    expect(visibilityBackoffSeconds(1, { baseSeconds: 2 }, () => 0)).toBe(1);
    expect(visibilityBackoffSeconds(1, { baseSeconds: 2 }, () => 0.999)).toBe(2);
    expect(visibilityBackoffSeconds(4, { baseSeconds: 2 }, () => 0)).toBe(8);
    expect(visibilityBackoffSeconds(4, { baseSeconds: 2 }, () => 0.999)).toBe(16);
    expect(visibilityBackoffSeconds(30, { baseSeconds: 2, maxSeconds: 300 }, () => 0.999)).toBe(300);
  });
});
