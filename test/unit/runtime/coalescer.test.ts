import { afterEach, describe, expect, it, vi } from 'vitest';
import { Coalescer } from '../../../shared/runtime/index.ts';
import { coalescingPutEventsPort } from '../../../shared/runtime/index.ts';
import type { EventEntry, PutEventsPort } from '../../../shared/runtime/index.ts';

function recorder(fail?: (items: readonly number[]) => Error | undefined): { calls: number[][]; flush: (items: readonly number[]) => Promise<readonly string[]> } {
  const calls: number[][] = [];
  return {
    calls,
    flush: (items) => {
      calls.push([...items]);
      const error = fail?.(items);
      return error === undefined ? Promise.resolve(items.map((i) => `r${i}`)) : Promise.reject(error);
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Coalescer', () => {
  it('sends items submitted together as one batch and gives each caller its own result', async () => {
    const r = recorder();
    const coalescer = new Coalescer<number, string>({ maxItems: 10, lingerMs: 0, flush: r.flush });
    const results = await Promise.all([1, 2, 3].map((i) => coalescer.submit(i)));
    expect(results).toEqual(['r1', 'r2', 'r3']);
    expect(r.calls).toEqual([[1, 2, 3]]);
  });

  it('never puts more than maxItems or more than the weight limit in one batch', async () => {
    const r = recorder();
    const coalescer = new Coalescer<number, string>({ maxItems: 2, lingerMs: 5, weight: { of: (i) => i, max: 10 }, flush: r.flush });
    await Promise.all([1, 2, 3, 8, 4].map((i) => coalescer.submit(i)));
    expect(r.calls).toEqual([[1, 2], [3], [8], [4]]);
  });

  it('fails every item of a batch whose call failed, and only that batch', async () => {
    const r = recorder((items) => (items.includes(2) ? new Error('boom') : undefined));
    const coalescer = new Coalescer<number, string>({ maxItems: 2, lingerMs: 0, flush: r.flush });
    const settled = await Promise.allSettled([1, 2, 3].map((i) => coalescer.submit(i)));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });

  it('waits lingerMs for batch-mates, so that callers a moment apart share a request', async () => {
    vi.useFakeTimers();
    const r = recorder();
    const coalescer = new Coalescer<number, string>({ maxItems: 10, lingerMs: 30, flush: r.flush });
    const first = coalescer.submit(1);
    await vi.advanceTimersByTimeAsync(29);
    expect(r.calls).toEqual([]);
    const second = coalescer.submit(2);
    await vi.advanceTimersByTimeAsync(1);
    await Promise.all([first, second]);
    expect(r.calls).toEqual([[1, 2]]);
  });
});

describe('coalescingPutEventsPort', () => {
  it('merges concurrent publications into PutEvents requests and maps entry errors back to their callers', async () => {
    const requests: string[][] = [];
    const port: PutEventsPort = {
      putEvents: (_bus, entries) => {
        requests.push(entries.map((e) => e.detailType));
        return Promise.resolve(entries.map((e) => (e.detailType === 'Bad' ? 'InternalFailure' : undefined)));
      },
    };
    const entry = (detailType: string): EventEntry => ({ source: 'selo.test', detailType, detail: '{}', resources: [] });
    const coalesced = coalescingPutEventsPort(port, { lingerMs: 0 });
    const [a, b] = await Promise.all([coalesced.putEvents('bus', [entry('A1'), entry('A2')]), coalesced.putEvents('bus', [entry('Bad')])]);
    expect(requests).toEqual([['A1', 'A2', 'Bad']]);
    expect(a).toEqual([undefined, undefined]);
    expect(b).toEqual(['InternalFailure']);
  });
});
