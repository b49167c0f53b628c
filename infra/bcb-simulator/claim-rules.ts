/** Claim states (DICT API 2.12.1 `ClaimStatus`). */
export type ClaimStatus = 'OPEN' | 'WAITING_RESOLUTION' | 'CONFIRMED' | 'CANCELLED' | 'COMPLETED';

/** Claim types (DICT API 2.12.1 `ClaimType`): ownership claim (posse) or portability. */
export type ClaimType = 'OWNERSHIP' | 'PORTABILITY';

/** The operations on an existing claim. */
export type ClaimOperation = 'acknowledge' | 'confirm' | 'cancel' | 'complete';

/** The side a participant takes in a claim; in an ownership claim one participant may be both. */
export type ClaimRole = 'donor' | 'claimer';

/** What the rules need to know about a claim. */
export interface ClaimFacts {
  readonly type: ClaimType;
  readonly status: ClaimStatus;
  readonly resolutionPeriodEnd: Date;
  /** Ownership claims only. */
  readonly completionPeriodEnd: Date | undefined;
  /** Reason of the confirmation or cancellation that brought the claim to its status. */
  readonly decidedReason: string | undefined;
  /** Who cancelled it, for a CANCELLED claim. */
  readonly cancelledBy: ClaimRole | undefined;
}

/** A request the DICT refuses: HTTP status and the DICT error type (`…/api/v2/error/<type>`). */
export class ClaimRuleViolation extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, detail: string) {
    super(detail);
    this.name = 'ClaimRuleViolation';
    this.status = status;
    this.type = type;
  }
}

/** What an allowed operation does. */
export interface ClaimDecision {
  /** The status after the operation. */
  readonly to: ClaimStatus;
  /** True when the operation repeats the one that brought the claim to its status (idempotent: same answer, nothing changes). */
  readonly repeated: boolean;
  /** For an ownership claim confirmed at the user's request: the completion period ends now (OpenAPI, confirmClaim). */
  readonly completionPeriodEndsNow: boolean;
}

/**
 * Who may do what, by claim type and reason (DICT API 2.12.1, confirmClaim and cancelClaim
 * tables). `PARTICIPANT_EXCLUSION` is internal to the DICT: nobody may use it.
 */
export const CLAIM_REASON_RULES: Readonly<Record<'confirm' | 'cancel', Readonly<Record<ClaimType, Readonly<Record<string, readonly ClaimRole[]>>>>>> = {
  confirm: {
    OWNERSHIP: { USER_REQUESTED: ['donor'], DEFAULT_OPERATION: ['donor'] },
    PORTABILITY: { USER_REQUESTED: ['donor'], ACCOUNT_CLOSURE: ['donor'] },
  },
  cancel: {
    OWNERSHIP: {
      USER_REQUESTED: ['claimer'], ACCOUNT_CLOSURE: ['claimer'], DEFAULT_OPERATION: ['claimer'], RECONCILIATION: ['claimer'], RFB_VALIDATION: ['claimer'],
      FRAUD: ['claimer', 'donor'],
    },
    PORTABILITY: {
      USER_REQUESTED: ['donor', 'claimer'], ACCOUNT_CLOSURE: ['claimer'], DEFAULT_OPERATION: ['donor'], FRAUD: ['donor', 'claimer'],
      RECONCILIATION: ['claimer'], RFB_VALIDATION: ['claimer'],
    },
  },
};

/**
 * The claim state machine (DICT API 2.12.1, "Reivindicação"): the donor acknowledges (OPEN →
 * WAITING_RESOLUTION) and confirms (WAITING_RESOLUTION → CONFIRMED), the claimer completes
 * (CONFIRMED → COMPLETED), cancellation depends on type, reason and role.
 */
export const CLAIM_TRANSITIONS: Readonly<Record<ClaimOperation, { from: readonly ClaimStatus[]; to: ClaimStatus; by: 'donor' | 'claimer' | 'either' }>> = {
  acknowledge: { from: ['OPEN'], to: 'WAITING_RESOLUTION', by: 'donor' },
  confirm: { from: ['WAITING_RESOLUTION'], to: 'CONFIRMED', by: 'donor' },
  cancel: { from: ['OPEN', 'WAITING_RESOLUTION', 'CONFIRMED'], to: 'CANCELLED', by: 'either' },
  complete: { from: ['CONFIRMED'], to: 'COMPLETED', by: 'claimer' },
};

/** Portability reasons that let the claimer cancel even a CONFIRMED claim (cancelClaim, "Exceções"). */
const PORTABILITY_LATE_CANCEL = new Set(['FRAUD', 'RECONCILIATION', 'RFB_VALIDATION']);

function rolesText(roles: ReadonlySet<ClaimRole>): string {
  return [...roles].join(' and ');
}

function allowedRoles(operation: ClaimOperation, type: ClaimType, reason: string | undefined): readonly ClaimRole[] {
  if (operation === 'acknowledge') return ['donor'];
  if (operation === 'complete') return ['claimer'];
  if (reason === undefined) return [];
  return CLAIM_REASON_RULES[operation][type][reason] ?? [];
}

function anyReasonAllows(operation: 'confirm' | 'cancel', type: ClaimType, roles: ReadonlySet<ClaimRole>): boolean {
  return Object.values(CLAIM_REASON_RULES[operation][type]).some((allowed) => allowed.some((r) => roles.has(r)));
}

function periodEnded(end: Date | undefined, now: Date): boolean {
  return end === undefined || now.getTime() >= end.getTime();
}

/**
 * Decides whether a participant in `roles` may do `operation` with `reason` on `claim` at `now`.
 * Checks, in order: the role (403 `Forbidden`), the reason for that role and type (400
 * `InvalidReason`), the status (400 `ClaimOperationInvalid`), the periods (400
 * `ClaimResolutionPeriodNotEnded` / `ClaimCompletionPeriodNotEnded`). Repeating the operation
 * that brought the claim to its status (acknowledge, confirm and cancel with the same reason) is
 * allowed and changes nothing (the OpenAPI's "Idempotência" notes); complete is idempotent by
 * its `RequestId`, which the caller handles.
 *
 * @throws {@link ClaimRuleViolation}
 */
export function decideClaimOperation(claim: ClaimFacts, operation: ClaimOperation, roles: ReadonlySet<ClaimRole>, reason: string | undefined, now: Date): ClaimDecision {
  const { type } = claim;
  if (operation === 'confirm' || operation === 'cancel') {
    if (!anyReasonAllows(operation, type, roles)) throw new ClaimRuleViolation(403, 'Forbidden', `the ${rolesText(roles)} may not ${operation} a ${type} claim`);
    if (!allowedRoles(operation, type, reason).some((r) => roles.has(r))) {
      throw new ClaimRuleViolation(400, 'InvalidReason', `the ${rolesText(roles)} may not ${operation} a ${type} claim with reason ${reason ?? '(none)'}`);
    }
  } else if (!allowedRoles(operation, type, reason).some((r) => roles.has(r))) {
    throw new ClaimRuleViolation(403, 'Forbidden', `only the ${allowedRoles(operation, type, reason).join(' or ')} may ${operation} a claim`);
  }
  const target = CLAIM_TRANSITIONS[operation].to;
  const repeated =
    claim.status === target &&
    (operation === 'acknowledge' ||
      (operation === 'confirm' && claim.decidedReason === reason) ||
      (operation === 'cancel' && claim.decidedReason === reason && claim.cancelledBy !== undefined && roles.has(claim.cancelledBy)));
  if (repeated) return { to: target, repeated: true, completionPeriodEndsNow: false };
  let from = CLAIM_TRANSITIONS[operation].from;
  if (operation === 'cancel' && type === 'PORTABILITY') {
    // Portability: OPEN or WAITING_RESOLUTION; the claimer may also cancel a CONFIRMED one for
    // FRAUD, RECONCILIATION or RFB_VALIDATION; RECONCILIATION never from WAITING_RESOLUTION.
    const lateCancel = roles.has('claimer') && reason !== undefined && PORTABILITY_LATE_CANCEL.has(reason);
    from = ['OPEN', ...(reason === 'RECONCILIATION' ? [] : ['WAITING_RESOLUTION' as const]), ...(lateCancel ? ['CONFIRMED' as const] : [])];
  }
  if (!from.includes(claim.status)) {
    throw new ClaimRuleViolation(400, 'ClaimOperationInvalid', `the claim is ${claim.status}; ${operation}${reason === undefined ? '' : ` with ${reason}`} needs ${from.join(' or ')}`);
  }
  if (reason === 'DEFAULT_OPERATION') {
    // Ownership confirm and portability cancel "por fim de prazo" wait for the resolution
    // period; an ownership cancel by default waits for the claimer's validation period.
    const resolution = (operation === 'confirm' && type === 'OWNERSHIP') || (operation === 'cancel' && type === 'PORTABILITY');
    if (resolution && !periodEnded(claim.resolutionPeriodEnd, now)) {
      throw new ClaimRuleViolation(400, 'ClaimResolutionPeriodNotEnded', `the resolution period ends at ${claim.resolutionPeriodEnd.toISOString()}`);
    }
    if (operation === 'cancel' && type === 'OWNERSHIP' && !periodEnded(claim.completionPeriodEnd, now)) {
      throw new ClaimRuleViolation(400, 'ClaimCompletionPeriodNotEnded', `the completion period ends at ${claim.completionPeriodEnd?.toISOString() ?? ''}`);
    }
  }
  if (operation === 'complete' && type === 'OWNERSHIP' && !periodEnded(claim.completionPeriodEnd, now)) {
    throw new ClaimRuleViolation(400, 'ClaimCompletionPeriodNotEnded', `the completion period ends at ${claim.completionPeriodEnd?.toISOString() ?? ''}`);
  }
  return { to: target, repeated: false, completionPeriodEndsNow: operation === 'confirm' && type === 'OWNERSHIP' && reason === 'USER_REQUESTED' };
}

/** Key types each claim type applies to (createClaim table: EVP keys are never claimed). */
export const CLAIMABLE_KEY_TYPES: Readonly<Record<ClaimType, readonly string[]>> = {
  OWNERSHIP: ['PHONE'],
  PORTABILITY: ['CPF', 'CNPJ', 'PHONE', 'EMAIL'],
};
