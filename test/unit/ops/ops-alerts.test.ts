import { describe, expect, it } from 'vitest';
import { alertFacts, alertIdOf, alertResolution, formatAge, groupAlertsByKind, raisedAlertOf, raisedInOf } from '../../../shared/ops/index.ts';
import type { OperationsAlert } from '../../../shared/ops/index.ts';
import type { SagaState, SagaTransition } from '../../../shared/saga/index.ts';

function history(...states: SagaState[]): SagaTransition[] {
  return states.map((to, i) => ({ at: `2026-12-07T10:00:0${i}.000Z`, from: i === 0 ? null : (states[i - 1] ?? null), to, reason: 'r', attempt: 1, key: `k${i}` }));
}

function alert(overrides: Partial<OperationsAlert>): OperationsAlert {
  return { alertId: 'a', kind: 'PaymentInDoubt', source: 'selo.compensate', sagaId: 'PAY#E1', endToEndId: undefined, bizMsgIdr: undefined, requestId: undefined, raisedIn: 'IN_DOUBT', firstRaisedAt: '2026-12-07T10:00:00.000Z', lastRaisedAt: '2026-12-07T10:00:00.000Z', count: 1, status: 'OPEN', facts: {}, ...overrides };
}

describe('operations alerts', () => {
  it('stays open while the saga is in the state that raised it, or has not reached it yet', () => {
    expect(alertResolution({ raisedIn: 'IN_DOUBT' }, { state: 'IN_DOUBT', history: history('REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT') })).toBeUndefined();
    expect(alertResolution({ raisedIn: 'IN_DOUBT' }, { state: 'TRANSMITTED', history: history('REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED') })).toBeUndefined();
  });

  it('is settled once the saga has left that state, or reached an outcome without it', () => {
    expect(alertResolution({ raisedIn: 'IN_DOUBT' }, { state: 'REJECTED', history: history('TRANSMITTED', 'IN_DOUBT', 'REJECTED') })).toBe('saga left IN_DOUBT: now REJECTED');
    expect(alertResolution({ raisedIn: 'IN_DOUBT' }, { state: 'SETTLED', history: history('TRANSMITTING', 'TRANSMITTED', 'SETTLED') })).toBe('saga left IN_DOUBT: now SETTLED');
    expect(alertResolution({ raisedIn: 'COMPENSATION_FAILED' }, { state: 'COMPENSATING', history: history('COMPENSATING', 'COMPENSATION_FAILED', 'COMPENSATING') })).toBe('saga left COMPENSATION_FAILED: now COMPENSATING');
    expect(alertResolution({ raisedIn: undefined }, { state: 'SETTLED', history: history('SETTLED') })).toBeUndefined();
    // A payment to our customer rejected (a late RJCT) before the sweeper could write IN_DOUBT: REJECTED is final for it.
    expect(alertResolution({ raisedIn: 'IN_DOUBT' }, { state: 'REJECTED', history: history('RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED') })).toBe('saga left IN_DOUBT: now REJECTED');
    // Not for a conflict: a REJECTED saga may still be about to enter OUTCOME_CONFLICT.
    expect(alertResolution({ raisedIn: 'OUTCOME_CONFLICT' }, { state: 'REJECTED', history: history('TRANSMITTED', 'REJECTED') })).toBeUndefined();
  });

  it('takes the raising state from the kind, else from the event\'s recordedState', () => {
    expect(raisedInOf('OutcomeConflict', {})).toBe('OUTCOME_CONFLICT');
    expect(raisedInOf('RejectionAmbiguous', { recordedState: 'TRANSMITTED' })).toBe('TRANSMITTED');
    expect(raisedInOf('SignatureInvalid', { recordedState: 'nonsense' })).toBeUndefined();
  });

  it('keeps only the allowed fields of an event\'s data, cut to 500 characters', () => {
    expect(alertFacts({ reason: 'x'.repeat(600), code: 'C', debtor: { name: 'Fulano', taxId: '70000000000' }, limitMs: 40000, receivedOutcome: { code: 'ACSC' }, answer: 'RJCT AC03' })).toEqual({ reason: 'x'.repeat(500), code: 'C', limitMs: '40000', receivedOutcome: 'ACSC', answer: 'RJCT AC03' });
  });

  it('is one alert per kind and saga, and one per event for messages not tied to a saga', () => {
    expect(alertIdOf({ kind: 'PaymentInDoubt', sagaId: 'PAY#E1', eventId: 'e1' })).toBe(alertIdOf({ kind: 'PaymentInDoubt', sagaId: 'PAY#E1', eventId: 'e2' }));
    expect(alertIdOf({ kind: 'PaymentInDoubt', sagaId: 'PAY#E1', eventId: 'e1' })).not.toBe(alertIdOf({ kind: 'OutcomeConflict', sagaId: 'PAY#E1', eventId: 'e1' }));
    expect(alertIdOf({ kind: 'SignatureInvalid', sagaId: 'INBOX#r', eventId: 'e1' })).not.toBe(alertIdOf({ kind: 'SignatureInvalid', sagaId: 'INBOX#r', eventId: 'e2' }));
  });

  it('reads an EventBridge body leniently and an unreadable one without its content', () => {
    const at = new Date('2026-12-07T10:00:00.000Z');
    const body = JSON.stringify({ id: 'ev-1', 'detail-type': 'OutcomeConflict', source: 'selo.verify', time: '2026-12-07T09:59:00Z', detail: { sagaId: 'PAY#E1', endToEndId: 'E1', data: { reason: 'ACSC after RJCT' } } });
    expect(raisedAlertOf({ MessageId: 'm-1', Body: body }, at)).toEqual({ eventId: 'ev-1', kind: 'OutcomeConflict', source: 'selo.verify', time: '2026-12-07T09:59:00.000Z', sagaId: 'PAY#E1', endToEndId: 'E1', data: { reason: 'ACSC after RJCT' } });
    const unreadable = raisedAlertOf({ MessageId: 'm-2', Body: '{"secret":"70000000000"}' }, at);
    expect(unreadable).toMatchObject({ eventId: 'm-2', kind: 'Unreadable', time: at.toISOString() });
    expect(JSON.stringify(unreadable)).not.toContain('70000000000');
  });

  it('groups open alerts by kind, oldest first, with their age', () => {
    const now = new Date('2026-12-07T11:00:00.000Z');
    const groups = groupAlertsByKind([alert({ alertId: 'b', firstRaisedAt: '2026-12-07T10:59:00.000Z' }), alert({ alertId: 'c', kind: 'CompensationFailed' }), alert({ alertId: 'a' })], now);
    expect(groups.map((g) => [g.kind, g.alerts.map((a) => [a.alertId, a.ageSeconds])])).toEqual([
      ['CompensationFailed', [['c', 3600]]],
      ['PaymentInDoubt', [['a', 3600], ['b', 60]]],
    ]);
    expect([formatAge(42), formatAge(420), formatAge(3 * 3600 + 300), formatAge(2 * 86_400 + 4 * 3600)]).toEqual(['42s', '7m', '3h 05m', '2d 04h']);
  });
});
