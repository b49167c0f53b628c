import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { decodeOutcomeQueryRequested } from '../../shared/bcb-query/index.ts';
import { TransientError } from '../../shared/errors/index.ts';
import { InDoubtSweeper } from '../../workers/compensate/index.ts';
import { FakeSagaStore, ScriptedPublisher } from './compensate-fakes.ts';
import { silentLogger } from './runtime/fakes.ts';

const T0 = Date.parse('2026-11-28T17:00:00.000Z');
const OLD = 'PAY#E99999004202611281700oldoldoldol';
const RECENT = 'PAY#E99999004202611281700recentrecen';
const DICT = 'DICT#0c6d5d53-7b4c-4c57-9c4e-2f3c5c8e9a11';
/** A payment to one of our customers (another PSP's EndToEndId). */
const INBOUND = 'IN#E00000001202611281700inboundxyzw';

/** A seed's transition time: every step at `ms`. */
const at = (ms: number) => () => new Date(ms).toISOString();

function setup(nowMs: number, options: { pageSize?: number } = {}) {
  const sagas = new FakeSagaStore();
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
    expect(result).toEqual({ inDoubt: [OLD], unpublished: 0, asked: [] });
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

  it('raises a payment to our customer whose final pacs.002 never came after our answer: IN_DOUBT, PaymentInDoubt with our answer, nothing credited', async () => {
    const { sagas, publisher, sweeper } = setup(T0 + 60_001);
    const inbound = INBOUND;
    const echo = 'ECHO#M99999004echoechoechoechoechoecho';
    sagas.seed(inbound, ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { at: at(T0), ids: { endToEndId: inbound.slice(3), facts: { answer: 'ACSP', amount: '10.00' } } });
    sagas.seed(echo, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { at: at(T0) });
    expect((await sweeper.sweep()).inDoubt.sort()).toEqual([inbound, OLD].sort());
    expect(sagas.state(inbound)).toBe('IN_DOUBT');
    // Echoes (and DICT operations) are not payments: left alone.
    expect(sagas.state(echo)).toBe('TRANSMITTED');
    const alert = publisher.of('PaymentInDoubt').find((e) => e.detail.sagaId === inbound);
    expect(alert?.detail).toMatchObject({ endToEndId: inbound.slice(3), data: { channel: 'spi', answer: 'ACSP', transmittedAt: new Date(T0).toISOString(), limitMs: 60_000 } });
    // Nothing else: no credit, no reversal.
    expect(publisher.published.map((e) => e.detailType)).toEqual(['PaymentInDoubt', 'PaymentInDoubt']);
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
    expect(await sweeper.sweep()).toEqual({ inDoubt: [], unpublished: 1, asked: [] });
    expect(sagas.state(OLD)).toBe('TRANSMITTED');
    expect(await sweeper.sweep()).toEqual({ inDoubt: [OLD], unpublished: 0, asked: [] });
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
  function asking() {
    const { sagas, publisher, audited } = setup(T0 + 60_001);
    sagas.seed(OLD, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], {
      at: () => new Date(T0).toISOString(), ids: { endToEndId: OLD.slice(4) },
      compensations: [{ step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: OLD.slice(4), amount: '10.50' } }],
    });
    let now = T0 + 60_001;
    let n = 0;
    const sweeper = new InDoubtSweeper({
      sagas, publisher, audit: { put: (records: readonly AuditRecord[]) => Promise.resolve(void audited.push(...records)) }, logger: silentLogger(), now: () => new Date(now), marginMs: 20_000,
      bcbQuery: { ispb: '99999004', intervalMs: 10_000, messageId: (ispb) => `M${ispb}query${String(++n).padStart(18, '0')}` },
    });
    return { sagas, publisher, sweeper, advance: (ms: number) => (now += ms) };
  }

  it('asks about each IN_DOUBT payment with one OutcomeQueryRequested (a camt.060 to sign), decides nothing, and asks again only after the interval', async () => {
    const { sagas, publisher, sweeper, advance } = asking();
    expect(await sweeper.sweep()).toEqual({ inDoubt: [OLD], unpublished: 0, asked: [OLD] });
    const query = publisher.published.find((e) => e.detailType === 'OutcomeQueryRequested');
    expect(query).toMatchObject({
      source: 'selo.compensate',
      detail: {
        sagaId: 'QUERY#M99999004query000000000000000001', requestId: 'M99999004query000000000000000001', endToEndId: OLD.slice(4),
        data: { message: 'camt.060', msgId: 'M99999004query000000000000000001', endToEndId: OLD.slice(4), paymentSagaId: OLD, requestedAt: '2026-11-28T17:01:00.001Z', amount: '10.50' },
      },
    });
    expect(decodeOutcomeQueryRequested(query?.detail.data)).toEqual(query?.detail.data);
    // The answer decides (the verify worker): here the payment stays IN_DOUBT, nothing reversed.
    expect(sagas.state(OLD)).toBe('IN_DOUBT');
    expect(publisher.published.map((e) => e.detailType)).toEqual(['PaymentInDoubt', 'OutcomeQueryRequested']);
    expect(await sweeper.sweep()).toMatchObject({ asked: [] });
    advance(10_000);
    expect(await sweeper.sweep()).toMatchObject({ asked: [OLD] });
    expect(publisher.published.filter((e) => e.detailType === 'OutcomeQueryRequested').map((e) => e.detail.requestId)).toEqual(['M99999004query000000000000000001', 'M99999004query000000000000000002']);
  });

  it('asks about a payment to our customer in doubt too (its pacs.008 amount), never about a return to us', async () => {
    const { sagas, publisher, sweeper } = asking();
    const inbound = INBOUND;
    const inboundReturn = 'IN#D00000001202611281700returnxyzw';
    sagas.seed(inbound, ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'], { ids: { endToEndId: inbound.slice(3), facts: { amount: '25.00' } } });
    sagas.seed(inboundReturn, ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'], { ids: { endToEndId: inboundReturn.slice(3), facts: { amount: '5.00' } } });
    expect((await sweeper.sweep()).asked.sort()).toEqual([OLD, inbound].sort());
    const query = publisher.of('OutcomeQueryRequested').find((e) => e.detail.endToEndId === inbound.slice(3));
    expect(query?.detail.data).toMatchObject({ message: 'camt.060', endToEndId: inbound.slice(3), paymentSagaId: inbound, amount: '25.00' });
    expect(decodeOutcomeQueryRequested(query?.detail.data)).toEqual(query?.detail.data);
    expect(() => decodeOutcomeQueryRequested({ ...(query?.detail.data as object), paymentSagaId: 'DICT#x' })).toThrow('data.paymentSagaId');
  });

  it('reads the IN_DOUBT sagas once a sweep for both the questions and the SagasInDoubt metric', async () => {
    const { sagas, publisher } = asking();
    const observed: number[] = [];
    const metrics = { count: () => undefined, observe: (name: string, _dimensions: unknown, value: number) => void (name === 'SagasInDoubt' && observed.push(value)) };
    const sweeper = new InDoubtSweeper({ sagas, publisher, audit: { put: () => Promise.resolve() }, logger: silentLogger(), now: () => new Date(T0 + 60_001), marginMs: 20_000, metrics, bcbQuery: { ispb: '99999004' } });
    const states: string[] = [];
    const page = sagas.pageByState.bind(sagas);
    sagas.pageByState = (state, options) => (states.push(state), page(state, options));
    expect(await sweeper.sweep()).toMatchObject({ inDoubt: [OLD], asked: [OLD] });
    expect(states.filter((s) => s === 'IN_DOUBT')).toHaveLength(1);
    expect(observed).toEqual([1]);
  });

  it('asks again on the next sweep, not the next interval, when the bus refused the question', async () => {
    const { sagas, publisher, sweeper } = asking();
    sagas.seed(OLD, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'], { ids: { endToEndId: OLD.slice(4) } });
    publisher.failures = [new Error('the bus refused')];
    expect(await sweeper.sweep()).toMatchObject({ inDoubt: [], asked: [] });
    expect(await sweeper.sweep()).toMatchObject({ asked: [OLD] });
    expect(publisher.of('OutcomeQueryRequested')).toHaveLength(1);
  });
});
