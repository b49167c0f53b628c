import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { TransientError } from '../../shared/errors/index.ts';
import { InDoubtSweeper } from '../../workers/compensate/index.ts';
import { FakeSagaStore, ScriptedPublisher } from './compensate-fakes.ts';
import { silentLogger } from './runtime/fakes.ts';

const T0 = Date.parse('2026-11-28T17:00:00.000Z');
const OLD = 'PAY#E99999004202611281700oldoldoldol';
const RECENT = 'PAY#E99999004202611281700recentrecen';
const DICT = 'DICT#0c6d5d53-7b4c-4c57-9c4e-2f3c5c8e9a11';

function setup(nowMs: number, options: { pageSize?: number } = {}) {
  const sagas = new FakeSagaStore();
  const at = (ms: number) => () => new Date(ms).toISOString();
  sagas.seed(OLD, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { at: at(T0), ids: { endToEndId: OLD.slice(4), bizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa' } });
  sagas.seed(RECENT, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { at: at(T0 + 50_000), ids: { endToEndId: RECENT.slice(4) } });
  sagas.seed(DICT, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { at: at(T0 - 10_000), ids: { requestId: DICT.slice(5) } });
  const publisher = new ScriptedPublisher();
  sagas.now = () => new Date(nowMs);
  const audited: AuditRecord[] = [];
  const audit = { put: (records: readonly AuditRecord[]) => Promise.resolve(void audited.push(...records)) };
  const sweeper = new InDoubtSweeper({ sagas, publisher, audit, logger: silentLogger(), now: () => new Date(nowMs), marginMs: 20_000, ...options });
  return { sagas, publisher, sweeper, audited };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('in-doubt sweeper', () => {
  it('moves a payment TRANSMITTED more than 40 s + margin ago to IN_DOUBT with PaymentInDoubt, and nothing else', async () => {
    const { sagas, publisher, sweeper, audited } = setup(T0 + 60_001);
    const result = await sweeper.sweep();
    expect(result).toEqual({ inDoubt: [OLD], unpublished: 0, resolved: [], unresolved: [] });
    expect(audited).toEqual([
      expect.objectContaining({ kind: 'transition', worker: 'compensate', saga_id: OLD, end_to_end_id: OLD.slice(4), biz_msg_idr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa', transition_from: 'TRANSMITTED', transition_to: 'IN_DOUBT' }),
    ]);
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    expect(sagas.state(RECENT)).toBe('TRANSMITTED');
    // DICT operations are not payments: the sweeper leaves them alone.
    expect(sagas.state(DICT)).toBe('TRANSMITTED');
    expect(publisher.published.map((e) => [e.detailType, e.source, e.detail.sagaId, e.detail.endToEndId])).toEqual([['PaymentInDoubt', 'selo.compensate', OLD, OLD.slice(4)]]);
    expect(publisher.published[0]?.detail.data).toMatchObject({ channel: 'spi', transmittedAt: new Date(T0).toISOString(), limitMs: 60_000 });
    expect((await sagas.get(OLD))?.history.at(-1)).toMatchObject({ from: 'TRANSMITTED', to: 'IN_DOUBT', key: 'in-doubt' });
    // Nothing is reversed: the sweeper publishes nothing else, and a second sweep nothing at all.
    await sweeper.sweep();
    expect(publisher.published).toHaveLength(1);
  });

  it('waits the whole limit plus margin', async () => {
    const { sagas, publisher, sweeper } = setup(T0 + 59_999);
    expect((await sweeper.sweep()).inDoubt).toEqual([]);
    expect(sagas.state(OLD)).toBe('TRANSMITTED');
    expect(publisher.published).toEqual([]);
  });

  it('walks every page, past the sagas it skips', async () => {
    const { sagas, sweeper } = setup(T0 + 60_001, { pageSize: 1 });
    // The DICT saga is the oldest: with one saga per page it fills the first page alone.
    expect((await sweeper.sweep()).inDoubt).toEqual([OLD]);
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
  });

  it('leaves a payment that settled while the sweep ran', async () => {
    const { sagas, publisher, sweeper } = setup(T0 + 60_001);
    const page = sagas.pageByState.bind(sagas);
    sagas.pageByState = async (state, options) => {
      const result = await page(state, options);
      await sagas.transition({ sagaId: OLD, to: 'SETTLED', from: ['TRANSMITTED'], reason: 'ACSC', attempt: 1, idempotencyKey: 'settled' });
      return result;
    };
    expect((await sweeper.sweep()).inDoubt).toEqual([]);
    expect(sagas.state(OLD)).toBe('SETTLED');
    // The alert goes out before the write (so that it is never lost); the settlement answers it.
    expect(publisher.of('PaymentInDoubt').map((e) => e.detail.sagaId)).toEqual([OLD]);
  });

  it('keeps a payment TRANSMITTED until PaymentInDoubt was accepted, so a refused alert is sent on a later sweep', async () => {
    const { sagas, publisher, sweeper } = setup(T0 + 60_001);
    publisher.failures = [new TransientError('EVENTBRIDGE_UNAVAILABLE', 'down')];
    // Not announced, so not IN_DOUBT yet: the payment stays TRANSMITTED and is swept again.
    expect(await sweeper.sweep()).toEqual({ inDoubt: [], unpublished: 1, resolved: [], unresolved: [] });
    expect(sagas.state(OLD)).toBe('TRANSMITTED');
    expect(await sweeper.sweep()).toEqual({ inDoubt: [OLD], unpublished: 0, resolved: [], unresolved: [] });
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    expect(publisher.of('PaymentInDoubt').map((e) => e.detail.sagaId)).toEqual([OLD]);
  });

  it('lets a late ACSC settle and a late RJCT reject an IN_DOUBT payment (the table allows both)', async () => {
    const { sagas, sweeper } = setup(T0 + 200_000);
    await sweeper.sweep();
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    expect(sagas.state(RECENT)).toBe('IN_DOUBT');
    await sagas.transition({ sagaId: OLD, to: 'SETTLED', from: ['IN_DOUBT'], reason: 'late ACSC', attempt: 1, idempotencyKey: 'settled' });
    await sagas.transition({ sagaId: RECENT, to: 'REJECTED', from: ['IN_DOUBT'], reason: 'late RJCT', attempt: 1, idempotencyKey: 'rejected' });
    expect([sagas.state(OLD), sagas.state(RECENT)]).toEqual(['SETTLED', 'REJECTED']);
  });

  it('sweeps every interval once started, never starting a sweep while one still runs, and stops on close', async () => {
    vi.useFakeTimers();
    const { sagas, sweeper } = setup(T0 + 60_001);
    // The first sweep's page takes 12 s: two intervals end while that sweep still runs.
    const page = sagas.pageByState.bind(sagas);
    let pages = 0;
    sagas.pageByState = async (state, options) => {
      pages += 1;
      if (pages === 1) await new Promise((resolve) => setTimeout(resolve, 12_000));
      return page(state, options);
    };
    const sweepOnce = sweeper.sweep.bind(sweeper);
    let running = 0;
    let mostAtOnce = 0;
    const sweep = vi.spyOn(sweeper, 'sweep').mockImplementation(async () => {
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      try {
        return await sweepOnce();
      } finally {
        running -= 1;
      }
    });
    sweeper.start();
    sweeper.start();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(sweep).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sweep).toHaveBeenCalledTimes(1);
    // 5 s and 10 s into the slow sweep: a fixed-rate schedule would have started two more here.
    await vi.advanceTimersByTimeAsync(11_999);
    expect(running).toBe(1);
    expect(sweep).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(running).toBe(0);
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    // The next interval counts from the end of the slow sweep.
    await vi.advanceTimersByTimeAsync(4_999);
    expect(sweep).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sweep).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sweep).toHaveBeenCalledTimes(3);
    expect(mostAtOnce).toBe(1);
    await sweeper.close();
    await sweeper.close();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sweep).toHaveBeenCalledTimes(3);
  });

  it('rejects a bad option naming it', () => {
    expect(() => new InDoubtSweeper({ sagas: new FakeSagaStore(), publisher: new ScriptedPublisher(), audit: { put: () => Promise.resolve() }, logger: silentLogger(), intervalMs: 0 })).toThrow(/intervalMs must be an integer ≥ 1, got 0/);
  });
});

describe('in-doubt sweeper asking the BCB', () => {
  function asking(answers: Record<string, 'settled' | 'unknown' | 'fails'>) {
    const { sagas, publisher, audited } = setup(T0 + 60_001);
    const asked: string[] = [];
    const query = {
      ask: (question: { endToEndId: string }) => {
        asked.push(question.endToEndId);
        const answer = answers[question.endToEndId];
        if (answer === 'fails') return Promise.reject(new TransientError('BCB_UNAVAILABLE', 'no answer'));
        return Promise.resolve({ outcome: answer === 'settled' ? ('settled' as const) : ('unknown' as const), evidence: `camt.054 says ${answer ?? 'nothing'}`, request: '<camt.060/>', path: '/api/v1/in/99999004/account-reports', response: '<camt.054/>' });
      },
    };
    let now = T0 + 60_001;
    const sweeper = new InDoubtSweeper({
      sagas, publisher, audit: { put: (records: readonly AuditRecord[]) => Promise.resolve(void audited.push(...records)) }, logger: silentLogger(), now: () => new Date(now), marginMs: 20_000,
      bcbQuery: { query, resolve: { sagas, publisher, audit: { put: (records) => Promise.resolve(void audited.push(...records)) }, source: 'selo.compensate', auditWorker: 'compensate' }, intervalMs: 10_000 },
    });
    return { sagas, publisher, audited, sweeper, asked, advance: (ms: number) => (now += ms) };
  }

  it('settles an IN_DOUBT payment the BCB booked, with PaymentSettled from selo.compensate and the exchange audited', async () => {
    const { sagas, publisher, audited, sweeper } = asking({ [OLD.slice(4)]: 'settled' });
    expect(await sweeper.sweep()).toEqual({ inDoubt: [OLD], unpublished: 0, resolved: [OLD], unresolved: [] });
    expect(sagas.state(OLD)).toBe('SETTLED');
    expect(publisher.published.map((e) => `${e.source ?? ''} ${e.detailType}`)).toEqual(['selo.compensate PaymentInDoubt', 'selo.compensate PaymentSettled']);
    expect(audited.map((r) => `${r.kind} ${r.transition_to ?? r.request_body ?? ''}`)).toEqual(['transition IN_DOUBT', 'response <camt.060/>', 'transition SETTLED']);
  });

  it('leaves a payment IN_DOUBT when the answer is not definite or the query fails, records the answer, and asks again only after the interval', async () => {
    const { sagas, publisher, sweeper, asked, advance } = asking({ [OLD.slice(4)]: 'unknown' });
    expect(await sweeper.sweep()).toMatchObject({ resolved: [], unresolved: [OLD] });
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    expect((await sagas.get(OLD))?.facts.bcbQuery).toBe('2026-11-28T17:01:00.001Z camt.054 says unknown');
    expect(publisher.published.map((e) => e.detailType)).toEqual(['PaymentInDoubt']);
    expect(await sweeper.sweep()).toMatchObject({ unresolved: [] });
    advance(10_000);
    expect(await sweeper.sweep()).toMatchObject({ unresolved: [OLD] });
    expect(asked).toEqual([OLD.slice(4), OLD.slice(4)]);

    const failing = asking({ [OLD.slice(4)]: 'fails' });
    expect(await failing.sweeper.sweep()).toMatchObject({ inDoubt: [OLD], resolved: [], unresolved: [] });
    expect(failing.sagas.state(OLD)).toBe('IN_DOUBT');
  });
});
