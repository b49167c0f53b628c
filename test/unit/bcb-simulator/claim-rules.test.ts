import { describe, expect, it } from 'vitest';
import { ClaimRuleViolation, decideClaimOperation } from '../../../infra/bcb-simulator/index.ts';
import type { ClaimFacts, ClaimOperation, ClaimRole } from '../../../infra/bcb-simulator/index.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

function claim(overrides: Partial<ClaimFacts> = {}): ClaimFacts {
  return { type: 'OWNERSHIP', status: 'WAITING_RESOLUTION', resolutionPeriodEnd: at(7), completionPeriodEnd: at(30), decidedReason: undefined, cancelledBy: undefined, ...overrides };
}

const DONOR = new Set<ClaimRole>(['donor']);
const CLAIMER = new Set<ClaimRole>(['claimer']);

/** The DICT error type a refused operation gets, or 'allowed'. */
function outcome(facts: ClaimFacts, operation: ClaimOperation, roles: ReadonlySet<ClaimRole>, reason: string | undefined, now: Date): string {
  try {
    decideClaimOperation(facts, operation, roles, reason, now);
    return 'allowed';
  } catch (error) {
    if (error instanceof ClaimRuleViolation) return `${error.status} ${error.type}`;
    throw error;
  }
}

describe('claim rules (DICT API 2.12.1)', () => {
  it('refuses an ownership confirmation by default before the resolution period ends, and allows it after', () => {
    expect(outcome(claim(), 'confirm', DONOR, 'DEFAULT_OPERATION', at(6))).toBe('400 ClaimResolutionPeriodNotEnded');
    expect(outcome(claim(), 'confirm', DONOR, 'DEFAULT_OPERATION', at(7))).toBe('allowed');
  });

  it('lets the donor confirm an ownership claim at the user request at once, ending the completion period', () => {
    expect(decideClaimOperation(claim(), 'confirm', DONOR, 'USER_REQUESTED', at(0))).toEqual({ to: 'CONFIRMED', repeated: false, completionPeriodEndsNow: true });
  });

  it('refuses completing an ownership claim before the completion period ends; a portability completes once confirmed', () => {
    expect(outcome(claim({ status: 'CONFIRMED' }), 'complete', CLAIMER, undefined, at(29))).toBe('400 ClaimCompletionPeriodNotEnded');
    expect(outcome(claim({ status: 'CONFIRMED' }), 'complete', CLAIMER, undefined, at(30))).toBe('allowed');
    expect(outcome(claim({ type: 'PORTABILITY', status: 'CONFIRMED', completionPeriodEnd: undefined }), 'complete', CLAIMER, undefined, at(0))).toBe('allowed');
  });

  it('refuses a portability cancellation by default before the resolution period ends', () => {
    const portability = claim({ type: 'PORTABILITY', completionPeriodEnd: undefined });
    expect(outcome(portability, 'cancel', DONOR, 'DEFAULT_OPERATION', at(1))).toBe('400 ClaimResolutionPeriodNotEnded');
    expect(outcome(portability, 'cancel', DONOR, 'DEFAULT_OPERATION', at(8))).toBe('allowed');
    // Only the donor cancels a portability by default.
    expect(outcome(portability, 'cancel', CLAIMER, 'DEFAULT_OPERATION', at(8))).toBe('400 InvalidReason');
  });

  it('refuses an ownership cancellation by default before the claimer validation (completion) period ends', () => {
    expect(outcome(claim(), 'cancel', CLAIMER, 'DEFAULT_OPERATION', at(10))).toBe('400 ClaimCompletionPeriodNotEnded');
    expect(outcome(claim(), 'cancel', CLAIMER, 'DEFAULT_OPERATION', at(31))).toBe('allowed');
  });

  it('applies the who-may tables: reasons per type and role, Forbidden for a role with no reason at all', () => {
    expect(outcome(claim(), 'confirm', CLAIMER, 'USER_REQUESTED', at(0))).toBe('403 Forbidden');
    expect(outcome(claim(), 'confirm', DONOR, 'ACCOUNT_CLOSURE', at(0))).toBe('400 InvalidReason');
    expect(outcome(claim({ type: 'PORTABILITY' }), 'confirm', DONOR, 'ACCOUNT_CLOSURE', at(0))).toBe('allowed');
    expect(outcome(claim({ type: 'PORTABILITY' }), 'confirm', DONOR, 'DEFAULT_OPERATION', at(30))).toBe('400 InvalidReason');
    // Ownership: the donor cancels only for FRAUD.
    expect(outcome(claim(), 'cancel', DONOR, 'USER_REQUESTED', at(0))).toBe('400 InvalidReason');
    expect(outcome(claim(), 'cancel', DONOR, 'FRAUD', at(0))).toBe('allowed');
    expect(outcome(claim(), 'complete', DONOR, undefined, at(40))).toBe('403 Forbidden');
    expect(outcome(claim({ status: 'OPEN' }), 'acknowledge', CLAIMER, undefined, at(0))).toBe('403 Forbidden');
    expect(outcome(claim(), 'cancel', CLAIMER, 'PARTICIPANT_EXCLUSION', at(40))).toBe('400 InvalidReason');
  });

  it('follows the status rules, with the portability exceptions', () => {
    expect(outcome(claim({ status: 'OPEN' }), 'confirm', DONOR, 'USER_REQUESTED', at(0))).toBe('400 ClaimOperationInvalid');
    const confirmed = claim({ type: 'PORTABILITY', status: 'CONFIRMED', completionPeriodEnd: undefined });
    expect(outcome(confirmed, 'cancel', CLAIMER, 'USER_REQUESTED', at(0))).toBe('400 ClaimOperationInvalid');
    expect(outcome(confirmed, 'cancel', CLAIMER, 'FRAUD', at(0))).toBe('allowed');
    expect(outcome(claim({ type: 'PORTABILITY' }), 'cancel', CLAIMER, 'RECONCILIATION', at(0))).toBe('400 ClaimOperationInvalid');
    expect(outcome(claim({ type: 'PORTABILITY', status: 'OPEN' }), 'cancel', CLAIMER, 'RECONCILIATION', at(0))).toBe('allowed');
    expect(outcome(claim({ status: 'CONFIRMED' }), 'cancel', CLAIMER, 'USER_REQUESTED', at(0))).toBe('allowed');
    expect(outcome(claim({ status: 'COMPLETED' }), 'cancel', CLAIMER, 'USER_REQUESTED', at(0))).toBe('400 ClaimOperationInvalid');
  });

  it('answers a repeated acknowledge, confirm or cancel as the first, without a new transition', () => {
    expect(decideClaimOperation(claim(), 'acknowledge', DONOR, undefined, at(0)).repeated).toBe(true);
    expect(decideClaimOperation(claim({ status: 'CONFIRMED', decidedReason: 'USER_REQUESTED' }), 'confirm', DONOR, 'USER_REQUESTED', at(0)).repeated).toBe(true);
    expect(outcome(claim({ status: 'CONFIRMED', decidedReason: 'USER_REQUESTED' }), 'confirm', DONOR, 'DEFAULT_OPERATION', at(8))).toBe('400 ClaimOperationInvalid');
    expect(decideClaimOperation(claim({ status: 'CANCELLED', decidedReason: 'FRAUD', cancelledBy: 'claimer' }), 'cancel', CLAIMER, 'FRAUD', at(0)).repeated).toBe(true);
    expect(outcome(claim({ status: 'CANCELLED', decidedReason: 'FRAUD', cancelledBy: 'claimer' }), 'cancel', DONOR, 'FRAUD', at(0))).toBe('400 ClaimOperationInvalid');
  });

  it('lets a participant that is both donor and claimer of an ownership claim act in either role', () => {
    const both = new Set<ClaimRole>(['donor', 'claimer']);
    expect(outcome(claim(), 'confirm', both, 'USER_REQUESTED', at(0))).toBe('allowed');
    expect(outcome(claim({ status: 'CONFIRMED', completionPeriodEnd: at(0) }), 'complete', both, undefined, at(0))).toBe('allowed');
  });
});
