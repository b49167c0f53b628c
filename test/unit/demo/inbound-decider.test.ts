import { describe, expect, it } from 'vitest';
import { bcbAnswerTimes, decide, parseDecisionMix, renderInbound } from '../../../bin/demo/inbound-decider.ts';
import { sagaIdCandidates } from '../../../bin/commands/saga.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';

describe('the demo\'s core banking decisions', () => {
  it('decides each EndToEndId the same way every time, close to the mix over many payments', () => {
    const ids = Array.from({ length: 4000 }, () => generateEndToEndId('99999010'));
    const decisions = ids.map((id) => decide(id, { reject: 10, never: 5 }));
    expect(ids.map((id) => decide(id, { reject: 10, never: 5 }))).toEqual(decisions);
    const share = (d: string): number => decisions.filter((x) => x === d).length / ids.length;
    expect(share('reject')).toBeGreaterThan(0.07);
    expect(share('reject')).toBeLessThan(0.13);
    expect(share('never')).toBeGreaterThan(0.03);
    expect(share('never')).toBeLessThan(0.07);
    expect(ids.every((id) => decide(id, { reject: 0, never: 0 }) === 'accept')).toBe(true);
  });

  it('reads --inbound-mix and refuses what it cannot mean', () => {
    expect(parseDecisionMix('reject=10,never=5')).toEqual({ reject: 10, never: 5 });
    expect(parseDecisionMix('never=2')).toEqual({ reject: 0, never: 2 });
    expect(() => parseDecisionMix('accept=90')).toThrow(/reject=10,never=5/);
    expect(() => parseDecisionMix('reject=60,never=50')).toThrow(/more than 100/);
  });

  it('lets an operator name an inbound payment by its EndToEndId', () => {
    expect(sagaIdCandidates('E99999010202612071000abcdefghijk')).toContain('IN#E99999010202612071000abcdefghijk');
  });
});

describe('the receiver\'s answer time as the SPI sees it', () => {
  const US = '99999004';
  const sent = [
    { toIspb: US, type: 'pacs.008', reference: 'E1', createdAt: '2026-12-08T10:00:00.000Z' },
    // Put on the stream again later (e.g. after a restart): the first time counts.
    { toIspb: US, type: 'pacs.008', reference: 'E1', createdAt: '2026-12-08T10:00:05.000Z' },
    { toIspb: US, type: 'pacs.008', reference: 'E2', createdAt: '2026-12-08T10:00:01.000Z' },
    // Each of these fails one condition only: the answer is not timed from it.
    { toIspb: US, type: 'pacs.002', reference: 'E6', createdAt: '2026-12-08T10:00:00.000Z' },
    { toIspb: '11111111', type: 'pacs.008', reference: 'E4', createdAt: '2026-12-08T10:00:00.000Z' },
    { toIspb: US, type: 'pacs.008', reference: 'E3', createdAt: '2026-12-08T10:00:00.000Z' },
    { toIspb: US, type: 'pacs.008', reference: 'D7', createdAt: '2026-12-08T10:00:00.000Z' },
    { toIspb: US, type: 'pacs.008', reference: 'E5', createdAt: '2026-12-08T10:00:00.000Z' },
  ];
  const payments = [
    { endToEndId: 'E1', kind: 'pacs.008', receiverIspb: US, answeredAt: '2026-12-08T10:00:00.120Z' },
    { endToEndId: 'E2', kind: 'pacs.008', receiverIspb: US, answeredAt: '2026-12-08T10:00:01.300Z' },
    // To us, answered, but only a pacs.002 about it was on our stream.
    { endToEndId: 'E6', kind: 'pacs.008', receiverIspb: US, answeredAt: '2026-12-08T10:00:00.900Z' },
    // To us, answered, but its pacs.008 went to another participant's stream.
    { endToEndId: 'E4', kind: 'pacs.008', receiverIspb: US, answeredAt: '2026-12-08T10:00:00.700Z' },
    // Its pacs.008 was on our stream, but the payment credits another participant.
    { endToEndId: 'E3', kind: 'pacs.008', receiverIspb: '22222222', answeredAt: '2026-12-08T10:00:00.500Z' },
    // A return to us: not a pacs.008.
    { endToEndId: 'D7', kind: 'pacs.004', receiverIspb: US, answeredAt: '2026-12-08T10:00:00.800Z' },
    // Never answered.
    { endToEndId: 'E5', kind: 'pacs.008', receiverIspb: US },
  ];

  it('counts from the first time a pacs.008 to us was put on our stream to our first answer, for payments to us only', () => {
    // 120 ms (E1, from its first forwarding) and 300 ms (E2); nearest-rank percentiles.
    expect(bcbAnswerTimes(US, sent, payments)).toEqual({ count: 2, p50Ms: 120, p95Ms: 300, p99Ms: 300 });
  });

  it('is a line of the receiving report when the ledger was read, and absent otherwise', () => {
    const summary = { received: 2, accepted: 2, rejected: 0, settled: 2, spiRejected: 0, late: 0, lost: 0, duplicated: 0, answerP50Ms: 80, answerP95Ms: 90, answerP99Ms: 95, atBcb: { count: 2, p50Ms: 120, p95Ms: 290, p99Ms: 300 } };
    expect(renderInbound(summary, undefined)).toContain('at the SPI      p50 120 ms, p95 290 ms, p99 300 ms (2 answers;');
    const { atBcb: _ignored, ...without } = summary;
    expect(renderInbound(without, undefined)).not.toContain('at the SPI');
  });
});
