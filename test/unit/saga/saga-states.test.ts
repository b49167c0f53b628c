import { describe, expect, it } from 'vitest';
import { SAGA_STATES, SAGA_TRANSITIONS, isLegalTransition, sagaKindOf } from '../../../shared/saga/index.ts';

describe('saga transition table', () => {
  it('walks the happy path of a payment to SETTLED', () => {
    const path = ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'SETTLED'] as const;
    for (let i = 1; i < path.length; i += 1) expect(isLegalTransition('payment', path[i - 1]!, path[i]!), `${path[i - 1]} → ${path[i]}`).toBe(true);
  });

  it('never compensates a settled payment and never settles a compensated one', () => {
    expect(isLegalTransition('payment', 'SETTLED', 'COMPENSATING')).toBe(false);
    expect(isLegalTransition('payment', 'COMPENSATED', 'SETTLED')).toBe(false);
    expect(isLegalTransition('payment', 'COMPENSATING', 'SETTLED')).toBe(false);
    expect(isLegalTransition('payment', 'SETTLED', 'OUTCOME_CONFLICT')).toBe(true);
    expect(isLegalTransition('payment', 'COMPENSATED', 'OUTCOME_CONFLICT')).toBe(true);
  });

  it('never compensates an in-doubt payment directly, but lets a late outcome settle or reject it', () => {
    expect(isLegalTransition('payment', 'IN_DOUBT', 'COMPENSATING')).toBe(false);
    expect(isLegalTransition('payment', 'IN_DOUBT', 'SETTLED')).toBe(true);
    expect(isLegalTransition('payment', 'IN_DOUBT', 'REJECTED')).toBe(true);
    expect(isLegalTransition('payment', 'REJECTED', 'COMPENSATING')).toBe(true);
  });

  it('lets a failed compensation be retried or resolved, never silently finished', () => {
    expect(isLegalTransition('payment', 'COMPENSATION_FAILED', 'COMPENSATING')).toBe(true);
    expect(isLegalTransition('payment', 'COMPENSATION_FAILED', 'COMPENSATED')).toBe(false);
  });

  it('accepts a settlement read before the 201 was recorded', () => {
    expect(isLegalTransition('payment', 'TRANSMITTING', 'SETTLED')).toBe(true);
  });

  it('completes DICT operations instead of settling them', () => {
    expect(isLegalTransition('dict', 'TRANSMITTED', 'COMPLETED')).toBe(true);
    expect(isLegalTransition('dict', 'TRANSMITTED', 'SETTLED')).toBe(false);
    expect(isLegalTransition('payment', 'TRANSMITTED', 'COMPLETED')).toBe(false);
  });

  it('names only known states, and no state may move to itself', () => {
    for (const kind of ['payment', 'dict'] as const) {
      for (const from of SAGA_STATES) {
        for (const to of SAGA_TRANSITIONS[kind][from]) {
          expect(SAGA_STATES).toContain(to);
          expect(to).not.toBe(from);
        }
      }
    }
  });

  it('lets an OUTCOME_CONFLICT payment end only SETTLED or REJECTED (an operator resolves it) and nothing returns to REQUESTED', () => {
    expect(SAGA_TRANSITIONS.payment.OUTCOME_CONFLICT).toEqual(['SETTLED', 'REJECTED']);
    expect(SAGA_TRANSITIONS.dict.OUTCOME_CONFLICT).toEqual([]);
    for (const from of SAGA_STATES) expect(isLegalTransition('payment', from, 'REQUESTED')).toBe(false);
  });

  it('tells payments from DICT operations by their saga id', () => {
    expect(sagaKindOf('PAY#E1')).toBe('payment');
    expect(sagaKindOf('DICT#abc')).toBe('dict');
    expect(sagaKindOf('X#1')).toBeUndefined();
  });
});
