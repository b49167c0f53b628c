import { describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { WorkerRuntime } from '../../../shared/runtime/index.ts';
import type { WorkerRuntimeOptions } from '../../../shared/runtime/index.ts';
import { FakeAudit, FakePublisher, FakeQueue, deferred, paymentMessage, silentLogger } from './fakes.ts';

/** An SQS client that hands out the given messages once, then long-polls empty until aborted. */
function fakeSqs(messages: Message[]): SQSClient {
  let served = false;
  const client = {
    send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
      if (command instanceof ReceiveMessageCommand) {
        if (!served) {
          served = true;
          return Promise.resolve({ Messages: messages });
        }
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => resolve({ Messages: [] }), 50);
          options?.abortSignal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          });
        });
      }
      return Promise.resolve({});
    },
  };
  return client as unknown as SQSClient;
}

/** A runtime over `sqs` whose handler does nothing, with fakes for everything else. */
function idleRuntime(sqs: SQSClient, options: Pick<WorkerRuntimeOptions<unknown>, 'pollers' | 'receiveBackoff' | 'random'>): WorkerRuntime<unknown> {
  return new WorkerRuntime<unknown>({
    name: 'sign',
    handler: () => Promise.resolve({ events: [], audit: [] }),
    decode: (data) => data,
    sqs,
    queue: { key: 'sign', url: 'http://q/sign', dlqUrl: 'http://q/sign-dlq', visibilityTimeoutSeconds: 30, maxReceiveCount: 5 },
    queuePort: new FakeQueue(),
    publisher: new FakePublisher(),
    audit: new FakeAudit(),
    logger: silentLogger(),
    health: false,
    ...options,
  });
}

describe('WorkerRuntime', () => {
  it('on close stops polling, finishes the message in flight, flushes audit, and closes every closeable even if one fails', async () => {
    const gate = deferred();
    const queue = new FakeQueue();
    const audit = new FakeAudit();
    const closed: string[] = [];
    let started = 0;
    const runtime = new WorkerRuntime<unknown>({
      name: 'sign',
      handler: async () => {
        started += 1;
        await gate.promise;
        return { events: [], audit: [] };
      },
      decode: (data) => data,
      sqs: fakeSqs([paymentMessage('1')]),
      queue: { key: 'sign', url: 'http://q/sign', dlqUrl: 'http://q/sign-dlq', visibilityTimeoutSeconds: 30, maxReceiveCount: 5 },
      queuePort: queue,
      publisher: new FakePublisher(),
      audit,
      logger: silentLogger(),
      health: false,
      closeables: [
        { name: 'broken', close: () => Promise.reject(new Error('boom')) },
        { name: 'hsm', close: () => (closed.push('hsm'), Promise.resolve()) },
      ],
    });
    await runtime.start();
    while (started === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const closing = runtime.close();
    expect(runtime.close()).toBe(closing);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(queue.calls).toEqual([]);
    gate.resolve();
    await expect(closing).rejects.toThrow(/did not close cleanly/);
    expect(queue.calls).toEqual([{ op: 'delete', messageId: '1' }]);
    expect(audit.flushed).toBe(1);
    expect(closed).toEqual(['hsm']);
    expect((await runtime.ready()).checks.sqs?.ok).toBe(false);
  });

  it('pauses a poller after failed receives, longer each time, and polls at once again after an answer', async () => {
    let receives = 0;
    let reachable = false;
    const sqs = {
      send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
        if (!(command instanceof ReceiveMessageCommand)) return Promise.resolve({});
        receives += 1;
        if (!reachable) return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { name: 'Error', code: 'ECONNREFUSED' }));
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => resolve({ Messages: [] }), 5);
          options?.abortSignal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          });
        });
      },
    } as unknown as SQSClient;
    const runtime = idleRuntime(sqs, { pollers: 1, receiveBackoff: { initialMs: 100, maxMs: 400 }, random: () => 1 });
    await runtime.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Receives at 0, 100, 300 and 700 ms (pauses of 100, 200, 400, 400… ms after each failure),
      // where a poller without pauses makes hundreds in a second.
      expect(receives).toBeGreaterThanOrEqual(3);
      expect(receives).toBeLessThanOrEqual(6);
      expect((await runtime.ready()).checks.sqs).toMatchObject({ ok: false, detail: 'receive failing: ECONNREFUSED' });
      reachable = true;
      // The receive due at ~1,100 ms is answered; from then on receives follow one another without
      // a pause (each long-polls 5 ms here), not after one more pause of 400 ms.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const afterRecovery = receives;
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(receives - afterRecovery).toBeGreaterThan(5);
      expect((await runtime.ready()).checks.sqs?.ok).toBe(true);
    } finally {
      await runtime.close();
    }
  });

  it('reports not ready while any one poller fails, even when another receives', async () => {
    // Each poller sends with its own abort signal: the first one seen always fails.
    let failingSignal: AbortSignal | undefined;
    const sqs = {
      send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
        if (!(command instanceof ReceiveMessageCommand)) return Promise.resolve({});
        failingSignal ??= options?.abortSignal;
        if (options?.abortSignal === failingSignal) return Promise.reject(Object.assign(new Error('AccessDenied'), { name: 'AccessDenied' }));
        return new Promise((resolve) => setTimeout(() => resolve({ Messages: [] }), 5));
      },
    } as unknown as SQSClient;
    const runtime = idleRuntime(sqs, { pollers: 2, receiveBackoff: { initialMs: 20, maxMs: 40 } });
    await runtime.start();
    try {
      for (let i = 0; i < 10; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect((await runtime.ready()).checks.sqs).toMatchObject({ ok: false, detail: 'receive failing: AccessDenied' });
      }
    } finally {
      await runtime.close();
    }
  });

  it('validates its options, naming the field and the value', () => {
    expect(
      () =>
        new WorkerRuntime<unknown>({
          name: 'sign',
          handler: () => Promise.resolve({ events: [], audit: [] }),
          decode: (d) => d,
          sqs: fakeSqs([]),
          queue: { key: 'sign', url: 'u', dlqUrl: 'd', visibilityTimeoutSeconds: 30, maxReceiveCount: 5 },
          publisher: new FakePublisher(),
          audit: new FakeAudit(),
          logger: silentLogger(),
          batchSize: 11,
        }),
    ).toThrow(/batchSize must be an integer from 1 to 10, got 11/);
  });
});
