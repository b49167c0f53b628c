import { describe, expect, it } from 'vitest';
import { IcomStreamError } from '../../shared/bcb-client/index.ts';
import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import { STREAM_SLOTS, StreamLeaseLostError, StreamReader } from '../../workers/receive/index.ts';
import type { ForwardResult, IcomStreamPort, SlotClaim, StreamPositionPort } from '../../workers/receive/index.ts';
import { deferred, silentLogger } from './runtime/fakes.ts';
import { BASE, answer, forwarded, until } from './receive-fakes.ts';

/** An ICOM whose answers are chosen per request path; unknown paths long-poll briefly and answer 204. */
class PathIcom implements IcomStreamPort {
  readonly calls: string[] = [];
  readonly routes = new Map<string, (IcomStreamAnswer | Error)[]>();
  #n = 0;

  route(path: string, ...steps: (IcomStreamAnswer | Error)[]): this {
    this.routes.set(path, steps);
    return this;
  }

  #answer(path: string): Promise<IcomStreamAnswer> {
    const step = this.routes.get(path)?.shift() ?? answer(`${BASE}/idle${++this.#n}-1`);
    if (step instanceof Error) return Promise.reject(step);
    return new Promise((resolve) => setTimeout(() => resolve(step), 2));
  }

  start(): Promise<IcomStreamAnswer> {
    this.calls.push('start');
    return this.#answer('start');
  }
  next(pullNext: string): Promise<IcomStreamAnswer> {
    this.calls.push(`next ${pullNext}`);
    return this.#answer(pullNext);
  }
  close(pullNext: string): Promise<void> {
    this.calls.push(`delete ${pullNext}`);
    return Promise.resolve();
  }
}

interface SlotItem {
  pullNext: string | undefined;
  owner: string | undefined;
  leaseUntil: number;
}

/** The lease rules of the DynamoDB store, in memory, shared by several "processes" (owners). */
class MemoryPositions {
  readonly items = new Map<number, SlotItem>();
  now = 1_000_000;
  failClaims = false;

  port(owner: string, leaseMs = 3_000): StreamPositionPort & { log: string[] } {
    const log: string[] = [];
    const ours = (slot: number): SlotItem | undefined => {
      const item = this.items.get(slot);
      return item?.owner === owner ? item : undefined;
    };
    return {
      leaseMs,
      log,
      claim: (slot): Promise<SlotClaim> => {
        if (this.failClaims) return Promise.reject(new Error('table unavailable'));
        const item = this.items.get(slot);
        if (item !== undefined && item.owner !== undefined && item.owner !== owner && item.leaseUntil > this.now) {
          return Promise.resolve({ status: 'held', until: item.leaseUntil });
        }
        this.items.set(slot, { pullNext: item?.pullNext, owner, leaseUntil: this.now + leaseMs });
        log.push(`claim ${slot}`);
        return Promise.resolve({ status: 'claimed', pullNext: item?.pullNext });
      },
      save: (slot, pullNext) => {
        const item = ours(slot);
        if (item === undefined) return Promise.reject(new StreamLeaseLostError(slot));
        item.pullNext = pullNext;
        item.leaseUntil = this.now + leaseMs;
        log.push(`save ${slot} ${pullNext}`);
        return Promise.resolve();
      },
      renew: (slot) => {
        const item = ours(slot);
        if (item === undefined) return Promise.reject(new StreamLeaseLostError(slot));
        item.leaseUntil = this.now + leaseMs;
        return Promise.resolve();
      },
      release: (slot, closed) => {
        const item = this.items.get(slot);
        if (item?.owner === owner) {
          if (closed) this.items.delete(slot);
          else Object.assign(item, { owner: undefined, leaseUntil: 0 });
        }
        log.push(`release ${slot} ${closed ? 'closed' : 'kept'}`);
        return Promise.resolve();
      },
    };
  }
}

function reader(icom: IcomStreamPort, positions: StreamPositionPort, options: { streams?: number; forward?: (a: IcomStreamAnswer) => Promise<ForwardResult> } = {}): StreamReader {
  return new StreamReader({ icom, forward: options.forward ?? forwarded, logger: silentLogger(), streams: options.streams ?? 1, backoff: { baseMs: 1, maxMs: 5 }, closeTimeoutMs: 1_000, positions });
}

describe('receive: streams that survive a restart', () => {
  it('saves each answer’s PI-Pull-Next only after the answer is durable, before following it', async () => {
    const store = new MemoryPositions();
    const port = store.port('p1');
    const icom = new PathIcom().route('start', answer(`${BASE}/s-1`, ['a']));
    const gate = deferred();
    const r = reader(icom, port, {
      forward: async (a) => {
        await gate.promise;
        return forwarded(a);
      },
    });
    r.start();
    await until(() => icom.calls.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(port.log).toEqual(['claim 0']);
    gate.resolve();
    await until(() => icom.calls.includes(`next ${BASE}/s-1`));
    await r.close();
    expect(port.log.slice(0, 2)).toEqual(['claim 0', `save 0 ${BASE}/s-1`]);
  });

  it('resumes the saved position instead of starting a stream, and counts it as resumed', async () => {
    const store = new MemoryPositions();
    store.items.set(0, { pullNext: `${BASE}/old-7`, owner: 'crashed', leaseUntil: store.now - 1 });
    const icom = new PathIcom().route(`${BASE}/old-7`, answer(`${BASE}/old-8`, ['x']));
    const r = reader(icom, store.port('p2'));
    r.start();
    await until(() => r.stats().batchesConfirmed === 1);
    await until(() => icom.calls.includes(`next ${BASE}/old-8`));
    await r.close();
    expect(icom.calls[0]).toBe(`next ${BASE}/old-7`);
    expect(icom.calls).not.toContain('start');
    expect(r.stats()).toMatchObject({ streamsResumed: 1, streamStarts: 0, messagesRead: 1 });
  });

  it('starts a new stream when the BCB no longer knows the saved position (404)', async () => {
    const store = new MemoryPositions();
    store.items.set(0, { pullNext: `${BASE}/gone-3`, owner: undefined, leaseUntil: 0 });
    const icom = new PathIcom().route(`${BASE}/gone-3`, new IcomStreamError('ICOM_STREAM_EXPIRED', '404', { status: 404 })).route('start', answer(`${BASE}/new-1`));
    const r = reader(icom, store.port('p2'));
    r.start();
    await until(() => store.items.get(0)?.pullNext === `${BASE}/new-1`);
    await r.close();
    expect(icom.calls.slice(0, 2)).toEqual([`next ${BASE}/gone-3`, 'start']);
    expect(r.stats()).toMatchObject({ streamsResumed: 0, streamStarts: 1 });
  });

  it('keeps the saved position and tries it again while the BCB answers 409 (a predecessor’s request still holds the stream)', async () => {
    const store = new MemoryPositions();
    store.items.set(0, { pullNext: `${BASE}/held-2`, owner: undefined, leaseUntil: 0 });
    const busy = new IcomStreamError('ICOM_STREAM_BUSY', '409', { status: 409 });
    const icom = new PathIcom().route(`${BASE}/held-2`, busy, busy, answer(`${BASE}/held-3`, ['y']));
    const r = reader(icom, store.port('p2'));
    r.start();
    await until(() => r.stats().batchesConfirmed === 1);
    await r.close();
    expect(icom.calls.slice(0, 3)).toEqual([`next ${BASE}/held-2`, `next ${BASE}/held-2`, `next ${BASE}/held-2`]);
    expect(icom.calls).not.toContain('start');
  });

  it('never reads a slot another live process holds; takes it over once that lease ends', async () => {
    const store = new MemoryPositions();
    for (let slot = 0; slot < STREAM_SLOTS; slot++) store.items.set(slot, { pullNext: `${BASE}/live${slot}-1`, owner: 'other', leaseUntil: store.now + 60_000 });
    const icom = new PathIcom();
    const r = reader(icom, store.port('p2', 300));
    r.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(icom.calls).toEqual([]);
    const slot3 = store.items.get(3);
    if (slot3 !== undefined) slot3.leaseUntil = store.now - 1; // the other process stopped renewing
    await until(() => icom.calls.length > 0, 3_000);
    await r.close();
    expect(icom.calls[0]).toBe(`next ${BASE}/live3-1`);
    expect(store.items.get(0)?.owner).toBe('other');
  });

  it('gives two processes different slots: no saved stream is read by both', async () => {
    const store = new MemoryPositions();
    const icom1 = new PathIcom();
    const icom2 = new PathIcom();
    const r1 = reader(icom1, store.port('p1'), { streams: 3 });
    const r2 = reader(icom2, store.port('p2'), { streams: 3 });
    r1.start();
    r2.start();
    await until(() => r1.stats().streamsOpen === 3 && r2.stats().streamsOpen === 3);
    const owners = [...store.items.values()].map((i) => i.owner);
    expect(owners.filter((o) => o === 'p1')).toHaveLength(3);
    expect(owners.filter((o) => o === 'p2')).toHaveLength(3);
    await r1.close();
    await r2.close();
  });

  it('stops using a stream whose slot passed to another process, without DELETE', async () => {
    const store = new MemoryPositions();
    const icom = new PathIcom().route('start', answer(`${BASE}/s-1`, ['a']));
    const gate = deferred();
    let first = true;
    const r = reader(icom, store.port('p1'), {
      forward: async (a) => {
        if (first) {
          first = false;
          await gate.promise;
        }
        return forwarded(a);
      },
    });
    r.start();
    await until(() => icom.calls.length === 1);
    // While the answer is being forwarded, another process takes the slot over.
    store.items.set(0, { pullNext: undefined, owner: 'thief', leaseUntil: store.now + 60_000 });
    gate.resolve();
    await until(() => store.items.get(1)?.owner === 'p1');
    await r.close();
    expect(icom.calls).not.toContain(`next ${BASE}/s-1`);
    expect(icom.calls).not.toContain(`delete ${BASE}/s-1`);
    expect(store.items.get(0)?.owner).toBe('thief');
  });

  it('at close, DELETEs the stream and forgets its position; keeps a position it could not DELETE', async () => {
    const store = new MemoryPositions();
    const icom = new PathIcom().route('start', answer(`${BASE}/a-1`));
    const port = store.port('p1');
    const r = reader(icom, port);
    r.start();
    await until(() => store.items.get(0)?.pullNext === `${BASE}/a-1`);
    await r.close();
    const lastSaved = port.log.filter((l) => l.startsWith('save 0 ')).at(-1)?.slice('save 0 '.length);
    expect(icom.calls.filter((c) => c.startsWith('delete '))).toEqual([`delete ${lastSaved ?? ''}`]);
    expect(port.log.at(-1)).toBe('release 0 closed');
    expect(store.items.has(0)).toBe(false);

    const failing = new PathIcom().route('start', answer(`${BASE}/b-1`));
    failing.close = (pullNext) => Promise.reject(new IcomStreamError('ICOM_STREAM_UNAVAILABLE', `503 ${pullNext}`, { status: 503 }));
    const r2 = reader(failing, store.port('p2'));
    r2.start();
    await until(() => store.items.get(0)?.pullNext === `${BASE}/b-1`);
    await r2.close();
    expect(store.items.get(0)).toMatchObject({ owner: undefined, leaseUntil: 0 });
    expect(store.items.get(0)?.pullNext).toMatch(/^\/api\/v1\/out\/99999004\/stream\//);
  });

  it('reads a new stream without a slot when the position store cannot be reached', async () => {
    const store = new MemoryPositions();
    store.failClaims = true;
    const icom = new PathIcom().route('start', answer(`${BASE}/s-1`, ['a']));
    const r = reader(icom, store.port('p1'));
    r.start();
    await until(() => r.stats().batchesConfirmed === 1);
    await r.close();
    expect(icom.calls[0]).toBe('start');
    expect(store.items.size).toBe(0);
  });

  it('renews the lease of a slot only when no claim or save extended it for a third of a lease: a busy stream costs no renewals', async () => {
    const store = new MemoryPositions();
    const leaseMs = 300;
    const port = store.port('p1', leaseMs);
    const timeline: { slot: number; what: 'extend' | 'renew'; at: number }[] = [];
    const traced: StreamPositionPort = {
      leaseMs,
      claim: (slot) => (timeline.push({ slot, what: 'extend', at: Date.now() }), port.claim(slot)),
      save: (slot, next) => (timeline.push({ slot, what: 'extend', at: Date.now() }), port.save(slot, next)),
      renew: (slot) => (timeline.push({ slot, what: 'renew', at: Date.now() }), port.renew(slot)),
      release: (slot, closed) => port.release(slot, closed),
    };
    // Stream 0 is busy (an answer every 2 ms, each saved); stream 1 long-polls one request that never answers.
    const idle = deferred();
    const icom = new PathIcom();
    let started = 0;
    icom.start = (): Promise<IcomStreamAnswer> => (++started === 2 ? idle.promise.then(() => answer(`${BASE}/idle-done`)) : Promise.resolve(answer(`${BASE}/busy-${started}`)));
    const r = new StreamReader({ icom, forward: forwarded, logger: silentLogger(), streams: 2, backoff: { baseMs: 1, maxMs: 5 }, closeTimeoutMs: 100, positions: traced });
    r.start();
    const renewals = (slot: number): number => timeline.filter((e) => e.slot === slot && e.what === 'renew').length;
    const idleSlot = (): number | undefined => [...store.items].find(([, item]) => item.pullNext === undefined)?.[0];
    await until(() => idleSlot() !== undefined && renewals(idleSlot() ?? -1) >= 3, 5_000);
    const busy = idleSlot() === 0 ? 1 : 0;
    idle.resolve();
    await r.close();
    // Every renewal of the busy slot came at least a third of a lease after its last claim or save (2 ms of clock slack).
    for (const [i, e] of timeline.entries()) {
      if (e.slot !== busy || e.what !== 'renew') continue;
      const last = timeline.slice(0, i).findLast((x) => x.slot === busy && x.what === 'extend');
      expect(e.at - (last?.at ?? Number.NEGATIVE_INFINITY)).toBeGreaterThanOrEqual(leaseMs / 3 - 2);
    }
    // The busy slot was busy (many saves), so the check above covered renewals due or not.
    expect(timeline.filter((e) => e.slot === busy && e.what === 'extend').length).toBeGreaterThan(20);
    // The idle slot was renewed by itself.
    const idleRenewals = timeline.filter((e) => e.slot !== busy && e.what === 'renew');
    expect(idleRenewals.length).toBeGreaterThanOrEqual(3);
  });

  it('validates the lease length of the position store it is given', () => {
    const store = new MemoryPositions();
    expect(() => reader(new PathIcom(), { ...store.port('p1'), leaseMs: 0 })).toThrow(/positions\.leaseMs must be an integer from 1 to \d+, got 0/);
  });
});
