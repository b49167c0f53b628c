import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { TransientError } from '../../../shared/errors/index.ts';
import { WorkerRuntime } from '../../../shared/runtime/index.ts';
import type { WorkerRuntimeOptions } from '../../../shared/runtime/index.ts';
import { drainEventLoop, waitUntil } from '../../support/wait-until.ts';
import { FakeAudit, FakePublisher, FakeQueue, deferred, paymentMessage, silentLogger } from './fakes.ts';

/** An SQS client that hands out the given messages once, then long-polls empty until aborted. */
function fakeSqs(messages: Message[], onAbort: () => void = () => undefined): SQSClient {
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
            onAbort();
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          });
        });
      }
      return Promise.resolve({});
    },
  };
  return client as unknown as SQSClient;
}

/** A runtime over `sqs` whose handler does nothing (unless `options` gives one), with fakes for everything else. */
function idleRuntime(sqs: SQSClient, options: Partial<WorkerRuntimeOptions<unknown>>): WorkerRuntime<unknown> {
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

/** An SQS client that hands out one batch per receive, in order, then long-polls empty until aborted; counts receives. */
function batchesSqs(batches: Message[][]): { sqs: SQSClient; receives: () => number } {
  let receives = 0;
  const client = {
    send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
      if (!(command instanceof ReceiveMessageCommand)) return Promise.resolve({});
      receives += 1;
      const batch = batches.shift();
      if (batch !== undefined) return Promise.resolve({ Messages: batch });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve({ Messages: [] }), 50);
        options?.abortSignal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      });
    },
  };
  return { sqs: client as unknown as SQSClient, receives: () => receives };
}

/** A runtime with one poller whose handler waits for the gate of the message's id, if it has one. */
function gatedRuntime(sqs: SQSClient, queue: FakeQueue, gates: Map<string, Promise<void>>, handled: string[], options: Partial<WorkerRuntimeOptions<unknown>> = {}): WorkerRuntime<unknown> {
  return idleRuntime(sqs, {
    handler: async (message) => {
      await gates.get(message.sqs.messageId);
      handled.push(message.sqs.messageId);
      return { events: [], audit: [] };
    },
    queuePort: queue,
    pollers: 1,
    ...options,
  });
}

describe('WorkerRuntime', () => {
  it('receives again while a message of its last batch is still being handled: no message waits in the queue for an unrelated one', async () => {
    const slow = deferred();
    const { sqs, receives } = batchesSqs([[paymentMessage('1'), paymentMessage('2')], [paymentMessage('3')]]);
    const queue = new FakeQueue();
    const handled: string[] = [];
    const runtime = gatedRuntime(sqs, queue, new Map([['1', slow.promise]]), handled, { maxInFlight: 20 });
    await runtime.start();
    try {
      // Message 3 came in a later receive and was handled while 1 of the first batch still waits.
      await waitUntil('message 3 handled', () => handled.includes('3'));
      expect(handled).toEqual(['2', '3']);
      expect(receives()).toBeGreaterThanOrEqual(2);
      slow.resolve();
      await waitUntil('message 1 handled', () => handled.includes('1'));
      await waitUntil('all deleted', () => queue.calls.filter((c) => c.op === 'delete').length === 3);
    } finally {
      slow.resolve();
      await runtime.close();
    }
  });

  it('receives only when a whole batch more fits under maxInFlight', async () => {
    const slow = deferred();
    const { sqs, receives } = batchesSqs([[paymentMessage('1'), paymentMessage('2')], [paymentMessage('3')]]);
    const handled: string[] = [];
    const runtime = gatedRuntime(sqs, new FakeQueue(), new Map([['1', slow.promise], ['2', slow.promise]]), handled, { batchSize: 2, maxInFlight: 3 });
    await runtime.start();
    try {
      await waitUntil('the first batch in flight', () => runtime.inFlight === 2);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(receives()).toBe(1);
      expect(handled).toEqual([]);
      slow.resolve();
      await waitUntil('message 3 handled', () => handled.includes('3'));
      expect(handled).toEqual(['1', '2', '3']);
    } finally {
      slow.resolve();
      await runtime.close();
    }
  });

  it('handles every message of many batches of mixed speed, never more than maxInFlight at once, and no poller is left waiting', async () => {
    const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: 10 }, (_, i) => paymentMessage(String(b * 10 + i + 1))));
    const { sqs } = batchesSqs(batches);
    let running = 0;
    let most = 0;
    const handled: string[] = [];
    const runtime = idleRuntime(sqs, {
      handler: async (message) => {
        running += 1;
        most = Math.max(most, running);
        // Deterministic mixed speeds: 0–12 ms.
        await new Promise((resolve) => setTimeout(resolve, (Number(message.sqs.messageId) * 7) % 13));
        running -= 1;
        handled.push(message.sqs.messageId);
        return { events: [], audit: [] };
      },
      pollers: 3,
      maxInFlight: 10,
    });
    await runtime.start();
    try {
      await waitUntil('all 80 handled', () => handled.length === 80);
      expect(new Set(handled).size).toBe(80);
      expect(most).toBeLessThanOrEqual(10);
    } finally {
      await runtime.close();
    }
  });

  it('lets a backoff stand over a visibility extension still under way when the message fails', async () => {
    // Extensions take a while to be answered; each call is recorded when SQS would apply it.
    const applied: { messageId: string | undefined; seconds: number }[] = [];
    const queue = new FakeQueue();
    queue.changeVisibility = (message, seconds) =>
      new Promise<void>((resolve) => setTimeout(() => resolve(void applied.push({ messageId: message.MessageId, seconds })), seconds === 30 ? 300 : 0));
    const { sqs } = batchesSqs([[paymentMessage('1')]]);
    let extended = false;
    const runtime = idleRuntime(sqs, {
      handler: async () => {
        await waitUntil('an extension under way', () => extended);
        throw new TransientError('ICOM_THROTTLED', 'slow down', { retryAfterSeconds: 600 });
      },
      queuePort: queue,
      pollers: 1,
      heartbeatIntervalSeconds: 1,
    });
    const original = queue.changeVisibility.bind(queue);
    queue.changeVisibility = (message, seconds) => {
      if (seconds === 30) extended = true;
      return original(message, seconds);
    };
    await runtime.start();
    try {
      await waitUntil('the backoff applied', () => applied.some((a) => a.seconds === 600));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(applied.at(-1)).toEqual({ messageId: '1', seconds: 600 });
    } finally {
      await runtime.close();
    }
  });

  it('keeps extending the visibility of a message handled longer than a heartbeat interval, and stops once it is done', async () => {
    const slow = deferred();
    const { sqs } = batchesSqs([[paymentMessage('1'), paymentMessage('2')]]);
    const queue = new FakeQueue();
    const handled: string[] = [];
    const runtime = gatedRuntime(sqs, queue, new Map([['1', slow.promise]]), handled, { heartbeatIntervalSeconds: 1 });
    await runtime.start();
    try {
      await waitUntil('two extensions', () => queue.calls.filter((c) => c.op === 'visibility').length >= 2);
      // Only the slow message, each time back to the queue's full visibility timeout.
      expect(queue.calls.filter((c) => c.op === 'visibility')).toEqual([
        { op: 'visibility', messageId: '1', seconds: 30 },
        { op: 'visibility', messageId: '1', seconds: 30 },
      ]);
      slow.resolve();
      await waitUntil('message 1 deleted', () => queue.calls.some((c) => c.op === 'delete' && c.messageId === '1'));
      const extensions = queue.calls.filter((c) => c.op === 'visibility').length;
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(queue.calls.filter((c) => c.op === 'visibility')).toHaveLength(extensions);
    } finally {
      slow.resolve();
      await runtime.close();
    }
  });

  it('on close stops polling, finishes the message in flight, flushes audit, and closes every closeable even if one fails', async () => {
    const gate = deferred();
    const queue = new FakeQueue();
    const audit = new FakeAudit();
    const closed: string[] = [];
    let started = 0;
    let abortedPolls = 0;
    const runtime = new WorkerRuntime<unknown>({
      name: 'sign',
      handler: async () => {
        started += 1;
        await gate.promise;
        return { events: [], audit: [] };
      },
      decode: (data) => data,
      sqs: fakeSqs([paymentMessage('1')], () => (abortedPolls += 1)),
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
    await waitUntil('the handler started', () => started > 0);
    const closing = runtime.close();
    let closeSettled = false;
    void closing.catch(() => undefined).finally(() => (closeSettled = true));
    expect(runtime.close()).toBe(closing);
    // Close went as far as it can while the handler holds its message: polling stopped (the
    // long poll in progress aborted); nothing deleted, nothing flushed, close still pending.
    await waitUntil('the long poll aborted', () => abortedPolls > 0);
    await drainEventLoop();
    expect(closeSettled).toBe(false);
    expect(queue.calls).toEqual([]);
    expect(audit.flushed).toBe(0);
    expect(closeSettled).toBe(false);
    gate.resolve();
    await expect(closing).rejects.toThrow(/did not close cleanly/);
    expect(queue.calls).toEqual([{ op: 'delete', messageId: '1' }]);
    expect(audit.flushed).toBe(1);
    expect(closed).toEqual(['hsm']);
    expect((await runtime.ready()).checks.sqs?.ok).toBe(false);
  });

  it('pauses a poller after failed receives, longer each time, and polls at once again after an answer', async () => {
    // Receives 1-4 fail; the 5th waits for the test, then is answered, like every later one.
    const at: number[] = [];
    const fifth = deferred();
    const sqs = {
      send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
        if (!(command instanceof ReceiveMessageCommand)) return Promise.resolve({});
        at.push(performance.now());
        if (at.length <= 4) return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { name: 'Error', code: 'ECONNREFUSED' }));
        return new Promise((resolve, reject) => {
          const answer = (): void => {
            const timer = setTimeout(() => resolve({ Messages: [] }), 5);
            options?.abortSignal?.addEventListener('abort', () => clearTimeout(timer));
          };
          if (at.length === 5) void fifth.promise.then(answer);
          else answer();
          options?.abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
        });
      },
    } as unknown as SQSClient;
    const runtime = idleRuntime(sqs, { pollers: 1, receiveBackoff: { initialMs: 100, maxMs: 1_000 }, random: () => 1 });
    await runtime.start();
    try {
      await waitUntil('the fifth receive', () => at.length === 5, { timeoutMs: 10_000, intervalMs: 10 });
      // Pauses of 100, 200, 400 and 800 ms after the 1st to 4th failure (a slow machine only
      // lengthens them; a poller without pauses makes its receives a few ms apart).
      const gaps = at.slice(1).map((t, i) => t - (at[i] ?? 0));
      expect(gaps[0]).toBeGreaterThanOrEqual(99);
      expect(gaps[1]).toBeGreaterThanOrEqual(199);
      expect(gaps[2]).toBeGreaterThanOrEqual(399);
      expect(gaps[3]).toBeGreaterThanOrEqual(799);
      expect((await runtime.ready()).checks.sqs).toMatchObject({ ok: false, detail: 'receive failing: ECONNREFUSED' });
      fifth.resolve();
      await waitUntil('ready again', async () => (await runtime.ready()).checks.sqs?.ok === true, { timeoutMs: 10_000, intervalMs: 10 });
      // After the answer receives follow one another at once: ten of them take far less than the
      // 8 s they would take if each still waited the last pause of 800 ms.
      const recovered = performance.now();
      await waitUntil('ten receives after the answer', () => at.length >= 15, { timeoutMs: 7_900, intervalMs: 10 });
      expect(performance.now() - recovered).toBeLessThan(8_000);
    } finally {
      await runtime.close();
    }
  }, 20_000);

  it('reports not ready while any one poller fails, even when another receives', async () => {
    // Each poller sends with its own abort signal: the first one seen always fails.
    let failingSignal: AbortSignal | undefined;
    let failed = 0;
    let answered = 0;
    const sqs = {
      send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
        if (!(command instanceof ReceiveMessageCommand)) return Promise.resolve({});
        failingSignal ??= options?.abortSignal;
        if (options?.abortSignal === failingSignal) {
          failed += 1;
          return Promise.reject(Object.assign(new Error('AccessDenied'), { name: 'AccessDenied' }));
        }
        return new Promise((resolve) => setTimeout(() => resolve({ Messages: [] }), 5)).then((answer) => ((answered += 1), answer));
      },
    } as unknown as SQSClient;
    const runtime = idleRuntime(sqs, { pollers: 2, receiveBackoff: { initialMs: 20, maxMs: 40 } });
    await runtime.start();
    try {
      await waitUntil('the failing poller failed', () => failed > 0);
      // After each further answer of the healthy poller (and failure of the other) the check still fails.
      for (let i = 0; i < 10; i += 1) {
        const [answeredBefore, failedBefore] = [answered, failed];
        await waitUntil('another answer and another failure', () => answered > answeredBefore && failed > failedBefore);
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
