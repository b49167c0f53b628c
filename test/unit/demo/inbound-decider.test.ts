import { describe, expect, it } from 'vitest';
import { decide, parseDecisionMix } from '../../../bin/demo/inbound-decider.ts';
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
