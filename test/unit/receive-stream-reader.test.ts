import { describe, expect, it } from 'vitest';
import { IcomStreamError } from '../../shared/bcb-client/index.ts';
import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import { StreamReader, backoffDelayMs } from '../../workers/receive/index.ts';
import type { ForwardResult, IcomStreamPort } from '../../workers/receive/index.ts';
import { drainEventLoop } from '../support/wait-until.ts';
import { deferred, silentLogger } from './runtime/fakes.ts';
import { BASE, answer, forwarded, until } from './receive-fakes.ts';

type Step = IcomStreamAnswer | Error | 'hang';

/** One simulated stream: answers `start` and `next` from a script, then long-polls (204) forever. */
class ScriptedIcom implements IcomStreamPort {
  readonly calls: string[] = [];
  readonly script: Step[];
  #n = 0;
  constructor(script: Step[]) {
    this.script = script;
  }

  #answer(call: string, signal: AbortSignal | undefined): Promise<IcomStreamAnswer> {
    this.calls.push(call);
    const step = this.script.shift() ?? answer(`${BASE}/idle-${++this.#n}`);
    if (step === 'hang') {
      return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    }
    if (step instanceof Error) return Promise.reject(step);
    // A long poll takes a moment even when idle.
    return new Promise((resolve) => setTimeout(() => resolve(step), 2));
  }

  start(signal?: AbortSignal): Promise<IcomStreamAnswer> {
    return this.#answer('start', signal);
  }
  next(pullNext: string, signal?: AbortSignal): Promise<IcomStreamAnswer> {
    return this.#answer(`next ${pullNext}`, signal);
  }
  close(pullNext: string): Promise<void> {
    this.calls.push(`delete ${pullNext}`);
    return Promise.resolve();
  }
}

function reader(icom: IcomStreamPort, forward: (a: IcomStreamAnswer) => Promise<ForwardResult>, options: { closeTimeoutMs?: number } = {}): StreamReader {
  return new StreamReader({ icom, forward, logger: silentLogger(), streams: 1, backoff: { baseMs: 1, maxMs: 5 }, closeTimeoutMs: options.closeTimeoutMs ?? 1_000 });
}

describe('receive: the stream loop', () => {
  it('follows PI-Pull-Next only after the answer is durable', async () => {
    const icom = new ScriptedIcom([answer(`${BASE}/s-1`, ['a', 'b'])]);
    const gate = deferred();
    let forwarding = 0;
    const r = reader(icom, async (a) => {
      forwarding += 1;
      await gate.promise;
      return forwarded(a);
    });
    r.start();
    // The answer is being forwarded and held: the loop has gone as far as it can without it.
    await until(() => forwarding === 1);
    await drainEventLoop();
    expect(icom.calls).toEqual(['start']);
    gate.resolve();
    await until(() => icom.calls.includes(`next ${BASE}/s-1`));
    await r.close();
    expect(r.stats()).toMatchObject({ messagesRead: 2, messagesForwarded: 2, batchesConfirmed: 1, streamsOpen: 0 });
  });

  it('never confirms an answer whose forwarding failed: backs off and starts a new stream', async () => {
    const icom = new ScriptedIcom([answer(`${BASE}/s-1`, ['a'])]);
    let attempts = 0;
    const r = reader(icom, (a) => (++attempts === 1 ? Promise.reject(new Error('verify queue down')) : forwarded(a)));
    r.start();
    await until(() => icom.calls.filter((c) => c === 'start').length === 2);
    await r.close();
    expect(icom.calls).not.toContain(`next ${BASE}/s-1`);
    expect(icom.calls).not.toContain(`delete ${BASE}/s-1`);
    expect(r.stats()).toMatchObject({ failures: 1, batchesConfirmed: 0, streamStarts: 2 });
  });

  it('restarts the stream after 429, 5xx, resets and malformed answers, and keeps reading', async () => {
    const icom = new ScriptedIcom([
      new IcomStreamError('ICOM_STREAM_THROTTLED', '429', { status: 429 }),
      new IcomStreamError('ICOM_STREAM_UNAVAILABLE', '503', { status: 503 }),
      new TypeError('something unexpected'),
      answer(`${BASE}/s-1`),
      new IcomStreamError('ICOM_STREAM_ANSWER_INVALID', 'bad multipart'),
      answer(`${BASE}/t-1`, ['x']),
    ]);
    const r = reader(icom, forwarded);
    r.start();
    await until(() => r.stats().batchesConfirmed === 1);
    await r.close();
    expect(icom.calls.slice(0, 6)).toEqual(['start', 'start', 'start', 'start', `next ${BASE}/s-1`, 'start']);
    expect(r.stats()).toMatchObject({ failures: 4, messagesRead: 1 });
  });

  it('confirms the last durable answer with DELETE at close', async () => {
    const icom = new ScriptedIcom([answer(`${BASE}/s-1`, ['a'])]);
    const r = reader(icom, forwarded);
    r.start();
    await until(() => r.stats().batchesConfirmed === 1);
    await r.close();
    await r.close();
    const deletes = icom.calls.filter((c) => c.startsWith('delete'));
    expect(deletes).toHaveLength(1);
    expect(icom.calls.at(-1)).toBe(deletes[0]);
    expect(r.stats().streamsOpen).toBe(0);
  });

  it('aborts a long poll still waiting when the close grace period ends, without DELETE', async () => {
    const icom = new ScriptedIcom([answer(`${BASE}/s-1`), 'hang']);
    const r = reader(icom, forwarded, { closeTimeoutMs: 50 });
    r.start();
    await until(() => icom.calls.length === 2);
    const started = Date.now();
    await r.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(icom.calls.some((c) => c.startsWith('delete'))).toBe(false);
    expect(r.stats().streamsOpen).toBe(0);
  });

  it('runs the configured number of streams and validates it (1 to 6)', async () => {
    const icom = new ScriptedIcom([]);
    const r = new StreamReader({ icom, forward: forwarded, logger: silentLogger(), streams: 3, backoff: { baseMs: 1, maxMs: 5 } });
    r.start();
    await until(() => r.stats().streamsOpen === 3);
    await r.close();
    expect(icom.calls.filter((c) => c.startsWith('delete'))).toHaveLength(3);
    expect(() => new StreamReader({ icom, forward: forwarded, logger: silentLogger(), streams: 7 })).toThrow(/streams must be an integer from 1 to 6, got 7/);
  });
});

describe('receive: backoff', () => {
  it('grows exponentially with jitter, stays within bounds, and honours Retry-After up to the cap', () => {
    const bounds = { baseMs: 100, maxMs: 1_000 };
    expect(backoffDelayMs(1, bounds, () => 0)).toBe(50);
    expect(backoffDelayMs(1, bounds, () => 0.999)).toBeLessThanOrEqual(100);
    expect(backoffDelayMs(3, bounds, () => 0)).toBe(200);
    expect(backoffDelayMs(30, bounds, () => 0.999)).toBeLessThanOrEqual(1_000);
    expect(backoffDelayMs(1, bounds, () => 0, 700)).toBe(700);
    expect(backoffDelayMs(1, bounds, () => 0, 60_000)).toBe(1_000);
  });
});
