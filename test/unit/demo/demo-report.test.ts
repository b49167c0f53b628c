import { describe, expect, it } from 'vitest';
import { assignOutcomes, parseMix } from '../../../bin/demo/demo-plan.ts';
import { isDuplicated, percentile, renderProgress, renderReport, summarise } from '../../../bin/demo/demo-report.ts';
import type { PaymentObservation } from '../../../bin/demo/demo-report.ts';

function observation(publishedAt: number, terminal: PaymentObservation['terminal'], compensations = 0): PaymentObservation {
  return { publishedAt, terminal, compensations, ...(compensations > 0 ? { compensatedAt: publishedAt + 500 } : {}) };
}

describe('demo plan', () => {
  it('parses a mix and refuses one that does not add up to 100 or names an unknown outcome', () => {
    expect(parseMix('accept=90,reject=10')).toEqual({ accept: 90, reject: 10, late: 0, never: 0 });
    expect(() => parseMix('accept=90,reject=5')).toThrow(/add up to 100, got 95/);
    expect(() => parseMix('accept=90,lost=10')).toThrow(/unknown outcome "lost"/);
    expect(() => parseMix('accept')).toThrow(/must look like/);
  });

  it('assigns exact counts per share and spreads them through the run', () => {
    const outcomes = assignOutcomes(200, { accept: 85, reject: 7, late: 5, never: 3 });
    const count = (name: string): number => outcomes.filter((o) => o === name).length;
    expect([count('accept'), count('reject'), count('late'), count('never')]).toEqual([170, 14, 10, 6]);
    // Spread: the first half holds about half of each outcome.
    const firstHalf = outcomes.slice(0, 100);
    expect(firstHalf.filter((o) => o === 'reject').length).toBeGreaterThanOrEqual(6);
    expect(firstHalf.filter((o) => o === 'reject').length).toBeLessThanOrEqual(8);
  });

  it('rounds by largest remainder so that the counts add up to the payments', () => {
    const outcomes = assignOutcomes(7, { accept: 85, reject: 7, late: 5, never: 3 });
    expect(outcomes).toHaveLength(7);
    expect(outcomes.filter((o) => o === 'accept').length).toBe(6);
  });
});

describe('demo report', () => {
  it('computes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 0.5)).toBe(50);
    expect(percentile(values, 0.95)).toBe(95);
    expect(percentile(values, 0.99)).toBe(99);
    expect(percentile([], 0.5)).toBe(0);
    expect(percentile([7], 0.99)).toBe(7);
  });

  it('counts final outcomes, lost and duplicated payments and the latency to the first terminal event', () => {
    const observations = new Map<string, PaymentObservation>([
      ['a', observation(1000, [{ outcome: 'settled', detailType: 'PaymentSettled', at: 1050 }])],
      ['b', observation(1000, [{ outcome: 'rejected', detailType: 'PaymentRejected', at: 1100 }], 1)],
      // In doubt, then settled late: the allowed resolution, not a duplicate.
      ['c', observation(1000, [{ outcome: 'inDoubt', detailType: 'PaymentInDoubt', at: 1200 }, { outcome: 'settled', detailType: 'PaymentSettled', at: 1300 }])],
      ['d', observation(1000, [])],
      ['e', observation(1000, [{ outcome: 'settled', detailType: 'PaymentSettled', at: 1150 }, { outcome: 'rejected', detailType: 'PaymentRejected', at: 1160 }])],
    ]);
    const summary = summarise(observations, 42);
    expect(summary).toMatchObject({ payments: 5, settled: 2, rejected: 2, inDoubt: 0, compensated: 1, lost: 1, duplicated: 1, auditRecords: 42 });
    expect(summary.p50Ms).toBe(100);
    expect(summary.p99Ms).toBe(200);
    // 4 payments ended between the first publish (1000) and the last first-terminal event (1200).
    expect(summary.throughputPerSecond).toBe(20);
  });

  it('calls a second compensation or a repeated outcome a duplicate', () => {
    expect(isDuplicated(observation(0, [{ outcome: 'rejected', detailType: 'PaymentRejected', at: 1 }], 2))).toBe(true);
    expect(isDuplicated(observation(0, [{ outcome: 'settled', detailType: 'PaymentSettled', at: 1 }, { outcome: 'settled', detailType: 'PaymentSettled', at: 2 }]))).toBe(true);
    expect(isDuplicated(observation(0, [{ outcome: 'inDoubt', detailType: 'PaymentInDoubt', at: 1 }, { outcome: 'rejected', detailType: 'PaymentRejected', at: 2 }], 1))).toBe(false);
  });

  it('renders a report that says whether anything was lost and whether the ledger agrees', () => {
    const summary = { payments: 2, settled: 2, rejected: 0, compensated: 0, inDoubt: 0, lost: 0, duplicated: 0, p50Ms: 40, p95Ms: 60, p99Ms: 60, throughputPerSecond: 10, auditRecords: 8 };
    const good = renderReport(summary, { settled: 2, rejected: 0, pending: 0, duplicates: 0 }, { elapsedSeconds: 1, publishedPerSecond: 2 });
    expect(good).toContain('every payment reached exactly one outcome');
    expect(good).toContain('(agrees)');
    const bad = renderReport({ ...summary, lost: 1 }, { settled: 1, rejected: 0, pending: 1, duplicates: 0 }, { elapsedSeconds: 1, publishedPerSecond: 2 });
    expect(bad).toContain('PROBLEM');
    expect(bad).toContain('DISAGREES');
  });

  it('draws a progress bar proportional to the payments done', () => {
    const line = renderProgress({ total: 10, published: 10, counts: { settled: 4, rejected: 1, inDoubt: 0 }, compensated: 1, elapsedMs: 1000, width: 10 });
    expect(line.startsWith('[#####.....] 5/10')).toBe(true);
    expect(line).toContain('settled 4 rejected 1 compensated 1 in doubt 0');
  });
});
