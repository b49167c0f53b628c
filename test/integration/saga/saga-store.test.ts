import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { LOCAL_DYNAMODB_STAND_INS, startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import type { AuditSink } from '../../../shared/audit/index.ts';
import { encodeEventBody, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { DedupeStore, IllegalTransitionError, STATE_INDEX_SHARDS, SagaStore, pendingCompensations, stateShardOf } from '../../../shared/saga/index.ts';
import { MessageProcessor, sqsQueuePort } from '../../../shared/runtime/index.ts';
import type { EventPublisher } from '../../../shared/runtime/index.ts';
import { silentLogger } from '../../unit/runtime/fakes.ts';

const topology = resolveTopology('local');
let stack: LocalStack;
let store: SagaStore;

function newPayment(): { e2e: string; sagaId: string } {
  const e2e = `E99999004202601011200${randomUUID().replace(/-/g, '').slice(0, 11)}`;
  return { e2e, sagaId: paymentSagaId(e2e) };
}

// The saga store's operations on both DynamoDB stand-ins: dynalite (the stack's) and AWS's own
// DynamoDB Local, for fidelity (docs/local-stack.md).
describe.each(LOCAL_DYNAMODB_STAND_INS)('on %s', (dynamodb) => {
  beforeAll(async () => {
    stack = await startLocalStack({ dynamodb });
    store = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  });

  afterAll(async () => {
    await stack.close();
  });

  describe('SagaStore', () => {
    it('creates a saga once and reports a second create as already applied', async () => {
      const { e2e, sagaId } = newPayment();
      const first = await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'PaymentRequested', attempt: 1 });
      const second = await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'PaymentRequested', attempt: 2 });
      expect(first).toMatchObject({ status: 'applied', saga: { state: 'REQUESTED', version: 1, endToEndId: e2e, kind: 'payment' } });
      expect(second.status).toBe('already-applied');
      expect(second.saga.history).toHaveLength(1);
    });

    it('creates a saga with its first step in one write, the same saga as a create and a transition give', async () => {
      const { e2e, sagaId } = newPayment();
      const other = newPayment();
      const step = { to: 'SIGNED', reason: 'pacs.008 signed', idempotencyKey: 'sign', ids: { bizMsgIdr: 'M99999004abcdefghijklmnopqrstuvw' }, compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { amount: '1.00' } } } as const;
      const written = await store.createWithStep({ sagaId, ids: { endToEndId: e2e }, reason: 'PaymentRequested', attempt: 1, step });
      await store.create({ sagaId: other.sagaId, ids: { endToEndId: other.e2e }, reason: 'PaymentRequested', attempt: 1 });
      const twoWrites = (await store.transition({ sagaId: other.sagaId, from: ['REQUESTED'], attempt: 1, ...step })).saga;
      const read = await store.get(sagaId);
      expect(read).toEqual(written);
      const shape = (saga: typeof read): unknown => ({ ...saga, sagaId: undefined, endToEndId: undefined, createdAt: undefined, updatedAt: undefined, history: saga?.history.map((t) => ({ ...t, at: undefined })), compensations: saga?.compensations.map((c) => ({ ...c, registeredAt: undefined })) });
      expect(shape(read)).toEqual(shape(twoWrites));
      expect(read).toMatchObject({ state: 'SIGNED', version: 2, bizMsgIdr: 'M99999004abcdefghijklmnopqrstuvw', compensations: [{ step: 'sign', seq: 1, status: 'PENDING' }] });
      // Listed under its state, as a saga moved by a transition is.
      expect((await store.listByState('SIGNED', { limit: 1000 })).map((saga) => saga.sagaId)).toContain(sagaId);
      // The step's key counts as applied: a later transition with it is already applied.
      expect((await store.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'again', attempt: 2, idempotencyKey: 'sign' })).status).toBe('already-applied');
      // A saga that exists is left as it is.
      expect(await store.createWithStep({ sagaId, ids: { endToEndId: e2e }, reason: 'PaymentRequested', attempt: 3, step: { ...step, reason: 'other bytes' } })).toBeUndefined();
      expect(await store.get(sagaId)).toEqual(read);
      // An illegal first step is refused before anything is written.
      const illegal = newPayment();
      await expect(store.createWithStep({ sagaId: illegal.sagaId, ids: {}, reason: 'x', attempt: 1, step: { to: 'SETTLED', reason: 'x', idempotencyKey: 'settled' } })).rejects.toBeInstanceOf(IllegalTransitionError);
      expect(await store.get(illegal.sagaId)).toBeUndefined();
    });

    it('claims a fact once, without a step or a new version, and claims it again once released', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      const written = await store.transition({ sagaId, to: 'SIGNED', reason: 'signed', attempt: 1, idempotencyKey: 'sign', facts: { marker: 'a' } });
      expect(await store.claimFact(sagaId, 'marker', 'b')).toBe(false);
      expect((await store.get(sagaId))?.facts.marker).toBe('a');
      await store.releaseFact(sagaId, 'marker');
      expect((await store.get(sagaId))?.facts.marker).toBeUndefined();
      expect(await store.claimFact(sagaId, 'marker', 'c')).toBe(true);
      const read = await store.get(sagaId);
      expect(read).toMatchObject({ state: 'SIGNED', version: written.saga.version, facts: { marker: 'c' } });
      expect(read?.history).toHaveLength(2);
      const absent = newPayment();
      await expect(store.claimFact(absent.sagaId, 'marker', 'x')).rejects.toMatchObject({ code: 'SAGA_NOT_FOUND' });
      await store.releaseFact(absent.sagaId, 'marker');
      expect(await store.get(absent.sagaId)).toBeUndefined();
    });

    it('applies a legal transition with its history entry and bumps the version', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      const result = await store.transition({ sagaId, to: 'SIGNED', reason: 'signed in HSM', attempt: 1, idempotencyKey: 'sign', ids: { bizMsgIdr: 'M99999004abcdefghijklmnopqrstuvw' } });
      expect(result.status).toBe('applied');
      expect(result.saga).toMatchObject({ state: 'SIGNED', version: 2, bizMsgIdr: 'M99999004abcdefghijklmnopqrstuvw' });
      expect(result.saga.history.at(-1)).toMatchObject({ from: 'REQUESTED', to: 'SIGNED', reason: 'signed in HSM', attempt: 1, key: 'sign' });
    });

    it('reports the same step applied twice as already applied and writes nothing', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      await store.transition({ sagaId, to: 'SIGNED', reason: 'signed', attempt: 1, idempotencyKey: 'sign' });
      const again = await store.transition({ sagaId, to: 'SIGNED', reason: 'signed', attempt: 2, idempotencyKey: 'sign' });
      expect(again.status).toBe('already-applied');
      expect(again.saga.version).toBe(2);
      expect((await store.get(sagaId))?.history).toHaveLength(2);
    });

    it('lets only one of two racing steps from the same state win', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      await store.transition({ sagaId, to: 'SIGNED', reason: 'signed', attempt: 1, idempotencyKey: 'sign' });
      await store.transition({ sagaId, to: 'TRANSMITTING', reason: 'sending', attempt: 1, idempotencyKey: 'transmit' });
      const results = await Promise.allSettled([
        store.transition({ sagaId, to: 'SETTLED', reason: 'ACSC', attempt: 1, idempotencyKey: 'outcome:a', from: ['TRANSMITTING', 'TRANSMITTED'] }),
        store.transition({ sagaId, to: 'REJECTED', reason: 'RJCT', attempt: 1, idempotencyKey: 'outcome:b', from: ['TRANSMITTING', 'TRANSMITTED'] }),
      ]);
      const applied = results.filter((r) => r.status === 'fulfilled' && r.value.status === 'applied');
      const refused = results.filter((r) => r.status === 'rejected');
      expect(applied).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(IllegalTransitionError);
      expect((await store.get(sagaId))?.version).toBe(4);
    });

    it('writes a step with one named from state without reading the saga, and reads only when that write is refused', async () => {
      const { e2e, sagaId } = newPayment();
      const calls: string[] = [];
      const client = new DynamoDBClient({ region: stack.endpoints.region, endpoint: stack.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
      client.middlewareStack.add((next, context) => (args) => {
        calls.push(context.commandName ?? '?');
        return next(args);
      }, { step: 'initialize' });
      const counted = new SagaStore({ client, tableName: topology.sagaTable.name });
      try {
        await counted.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
        calls.length = 0;
        const signed = await counted.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 1, idempotencyKey: 'sign' });
        expect(signed).toMatchObject({ status: 'applied', saga: { state: 'SIGNED', version: 2 } });
        expect(signed.saga.history.at(-1)).toMatchObject({ from: 'REQUESTED', to: 'SIGNED', key: 'sign' });
        expect(calls).toEqual(['UpdateItemCommand']);

        // The same step again: the write is refused (its key is there), the saga read, nothing written.
        calls.length = 0;
        const again = await counted.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 2, idempotencyKey: 'sign' });
        expect(again.status).toBe('already-applied');
        expect(calls).toEqual(['UpdateItemCommand', 'GetItemCommand']);

        // A step whose state has gone: refused, read, and refused with the state it found.
        const late = counted.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 1, idempotencyKey: 'sign-again' });
        await expect(late).rejects.toMatchObject({ code: 'ILLEGAL_SAGA_TRANSITION', from: 'SIGNED', to: 'SIGNED' });
        expect((await store.get(sagaId))?.version).toBe(2);

        // No saga: the conditional write creates nothing.
        const missing = newPayment();
        await expect(counted.transition({ sagaId: missing.sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 1, idempotencyKey: 'sign' })).rejects.toMatchObject({ code: 'SAGA_NOT_FOUND' });
        expect(await store.get(missing.sagaId)).toBeUndefined();

        // The unread write alone: a refused condition answers undefined after one call, reading nothing.
        calls.length = 0;
        expect(await counted.applyUnread({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 3, idempotencyKey: 'sign' })).toBeUndefined();
        expect(await counted.applyUnread({ sagaId: missing.sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 1, idempotencyKey: 'sign' })).toBeUndefined();
        expect(calls).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
        expect(await store.get(missing.sagaId)).toBeUndefined();
        const transmitting = await counted.applyUnread({ sagaId, to: 'TRANSMITTING', from: ['SIGNED'], reason: 'POST', attempt: 1, idempotencyKey: 'transmitting' });
        expect(transmitting).toMatchObject({ state: 'TRANSMITTING', version: 3 });
        // Conditioned on a fact too: refused while it begins with the prefix, applied when absent or other.
        await store.transition({ sagaId, to: 'TRANSMITTED', from: ['TRANSMITTING'], reason: '201', attempt: 1, idempotencyKey: 'transmitted', facts: { answer: 'RJCT AC03' } });
        expect(await counted.applyUnread({ sagaId, to: 'SETTLED', from: ['TRANSMITTED'], reason: 'ACSC', attempt: 1, idempotencyKey: 'settled', unlessFact: { name: 'answer', prefix: 'RJCT' } })).toBeUndefined();
        expect(await counted.applyUnread({ sagaId, to: 'SETTLED', from: ['TRANSMITTED'], reason: 'ACSC', attempt: 1, idempotencyKey: 'settled', unlessFact: { name: 'answer', prefix: 'ACSP' } })).toMatchObject({ state: 'SETTLED' });
        const other = newPayment();
        await store.create({ sagaId: other.sagaId, ids: { endToEndId: other.e2e }, reason: 'requested', attempt: 1 });
        expect(await counted.applyUnread({ sagaId: other.sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt: 1, idempotencyKey: 'sign', unlessFact: { name: 'answer', prefix: 'RJCT' } })).toMatchObject({ state: 'SIGNED' });
      } finally {
        client.destroy();
      }
    });

    it('lets one of two racing unread writes of the same step apply and reports the other as already applied', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      const results = await Promise.all([1, 2, 3].map((attempt) => store.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: 'signed', attempt, idempotencyKey: 'sign' })));
      expect(results.map((r) => r.status).sort()).toEqual(['already-applied', 'already-applied', 'applied']);
      const saga = await store.get(sagaId);
      expect(saga?.version).toBe(2);
      expect(saga?.history.map((t) => t.key)).toEqual(['create', 'sign']);
    });

    it('refuses an illegal transition with a permanent typed error', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      const attempt = store.transition({ sagaId, to: 'SETTLED', reason: 'ACSC', attempt: 1, idempotencyKey: 'outcome' });
      await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(attempt).rejects.toMatchObject({ code: 'ILLEGAL_SAGA_TRANSITION', retryability: 'permanent', from: 'REQUESTED', to: 'SETTLED' });
    });

    it('runs a registered compensation exactly once, newest first', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      await store.transition({ sagaId, to: 'SIGNED', reason: 'signed', attempt: 1, idempotencyKey: 'sign', compensation: { step: 'reserve', action: 'PaymentReversalRequested', params: { amount: '10.00' } } });
      await store.transition({ sagaId, to: 'TRANSMITTING', reason: 'sending', attempt: 1, idempotencyKey: 'transmit', compensation: { step: 'notify', action: 'CoreNotified', params: {} } });
      await store.transition({ sagaId, to: 'REJECTED', reason: 'AB03', attempt: 1, idempotencyKey: 'outcome' });
      await store.transition({ sagaId, to: 'COMPENSATING', reason: 'RJCT', attempt: 1, idempotencyKey: 'compensate' });
      const saga = await store.get(sagaId);
      expect(pendingCompensations(saga!).map((c) => c.step)).toEqual(['notify', 'reserve']);
      expect((await store.recordCompensation({ sagaId, step: 'notify', outcome: 'DONE' })).status).toBe('applied');
      expect((await store.recordCompensation({ sagaId, step: 'notify', outcome: 'DONE' })).status).toBe('already-applied');
      const after = await store.recordCompensation({ sagaId, step: 'reserve', outcome: 'FAILED', errorCode: 'CORE_UNAVAILABLE' });
      expect(after.saga.compensations.find((c) => c.step === 'reserve')).toMatchObject({ status: 'FAILED', attempts: 1, lastError: 'CORE_UNAVAILABLE' });
      expect(pendingCompensations(after.saga).map((c) => c.step)).toEqual(['reserve']);
    });

    it('lists sagas by state through the by-state index', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      await store.transition({ sagaId, to: 'FAILED', reason: 'XSD_INVALID', attempt: 1, idempotencyKey: 'sign' });
      const failed = await store.listByState('FAILED', { limit: 50 });
      expect(failed.map((s) => s.sagaId)).toContain(sagaId);
    });

    it('lists every saga of a state across the shards of the index, in order, page by page, each once', async () => {
      const created: string[] = [];
      for (let i = 0; i < 40; i += 1) {
        // Every shard gets five (40 random ids leave one of 8 shards empty about once in 25 runs).
        let payment = newPayment();
        while (stateShardOf(payment.sagaId) !== i % STATE_INDEX_SHARDS) payment = newPayment();
        const { e2e, sagaId } = payment;
        await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
        await store.transition({ sagaId, to: 'FAILED', reason: 'XSD_INVALID', attempt: 1, idempotencyKey: 'sign' });
        created.push(sagaId);
      }
      const listed: { sagaId: string; updatedAt: string }[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.pageByState('FAILED', { limit: 7, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.sagas.length).toBeLessThanOrEqual(7);
        listed.push(...page.sagas.map((saga) => ({ sagaId: saga.sagaId, updatedAt: saga.updatedAt })));
        cursor = page.cursor;
        pages += 1;
      } while (cursor !== undefined);
      const ids = listed.map((l) => l.sagaId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual(expect.arrayContaining(created));
      expect(pages).toBeGreaterThan(5);
      const times = listed.map((l) => l.updatedAt);
      expect(times).toEqual([...times].sort());
    });

    it('does not repeat a transition when the same SQS message is delivered again', async () => {
      const { e2e, sagaId } = newPayment();
      await store.create({ sagaId, ids: { endToEndId: e2e }, reason: 'requested', attempt: 1 });
      const sign = stack.provisioned?.queues.sign;
      if (sign === undefined) throw new Error('sign queue missing');
      const effects: string[] = [];
      const processor = new MessageProcessor<unknown>({
        worker: 'sign',
        decode: (data) => data,
        handler: async (message, context) => {
          const result = await store.transition({ sagaId: message.event.detail.sagaId, to: 'SIGNED', reason: 'signed', attempt: context.attempt, idempotencyKey: 'sign' });
          effects.push(result.status);
          return { events: [], audit: [] };
        },
        queue: { ...sqsQueuePort(stack.clients.sqs, { key: 'sign', ...sign }), delete: () => Promise.resolve() },
        publisher: { publish: () => Promise.resolve() } satisfies EventPublisher,
        audit: { put: () => Promise.resolve(), flush: () => Promise.resolve(), health: () => ({ ok: true, buffered: 0, consecutiveFailures: 0, lastError: undefined }) } satisfies AuditSink,
        logger: silentLogger(),
        maxReceiveCount: 5,
      });
      const body = encodeEventBody({ detailType: 'PaymentRequested', source: 'core.banking', detail: { version: 1, sagaId, endToEndId: e2e, attempt: 1, traceparent: newTraceparent(), data: {} } });
      await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: sign.url, MessageBody: body }));
      for (let delivery = 1; delivery <= 2; delivery += 1) {
        const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: sign.url, WaitTimeSeconds: 1, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
        const message = got.Messages?.find((m) => m.Body === body);
        expect(message, `delivery ${delivery}`).toBeDefined();
        expect(message?.Attributes?.ApproximateReceiveCount).toBe(String(delivery));
        await processor.process(message!);
        // Forced redelivery: the message is made visible again as if the worker had crashed before deleting.
        await stack.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: sign.url, ReceiptHandle: message?.ReceiptHandle, VisibilityTimeout: 0 }));
      }
      expect(effects).toEqual(['applied', 'already-applied']);
      const saga = await store.get(sagaId);
      expect(saga?.history.map((t) => t.to)).toEqual(['REQUESTED', 'SIGNED']);
    });
  });

  describe('DedupeStore', () => {
    it('claims a key once and again only after its marker expired', async () => {
      let now = new Date('2026-01-01T12:00:00Z');
      const dedupe = new DedupeStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name, now: () => now });
      const key = `resource-${randomUUID()}`;
      expect(await dedupe.claim(key, 60)).toBe(true);
      expect(await dedupe.claim(key, 60)).toBe(false);
      expect(await dedupe.isClaimed(key)).toBe(true);
      now = new Date('2026-01-01T12:01:01Z');
      expect(await dedupe.isClaimed(key)).toBe(false);
      expect(await dedupe.claim(key, 60)).toBe(true);
    });

    it('claims a key for a holder: the same holder again (a redelivery) yes, another holder no, anyone once it expired', async () => {
      let now = new Date('2026-01-01T12:00:00Z');
      const dedupe = new DedupeStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name, now: () => now });
      const key = `icom-resource#R${randomUUID()}`;
      expect(await dedupe.claimAs(key, 'copy-a', 60)).toBe(true);
      expect(await dedupe.claimAs(key, 'copy-a', 60)).toBe(true);
      expect(await dedupe.claimAs(key, 'copy-b', 60)).toBe(false);
      // A marker without a holder (written by claim()) is nobody's copy: refused.
      const legacy = `icom-resource#R${randomUUID()}`;
      expect(await dedupe.claim(legacy, 60)).toBe(true);
      expect(await dedupe.claimAs(legacy, 'copy-a', 60)).toBe(false);
      now = new Date('2026-01-01T12:01:01Z');
      expect(await dedupe.claimAs(key, 'copy-b', 60)).toBe(true);
      expect(await dedupe.claimAs(key, 'copy-a', 60)).toBe(false);
    });
  });
});
