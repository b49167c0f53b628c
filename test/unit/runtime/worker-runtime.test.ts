import { describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { WorkerRuntime } from '../../../shared/runtime/index.ts';
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
