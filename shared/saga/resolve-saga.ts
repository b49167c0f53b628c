import { randomUUID } from 'node:crypto';
import { transitionAuditRecord } from '../audit/index.ts';
import type { AuditRecord, AuditSink } from '../audit/index.ts';
import { PermanentError } from '../errors/index.ts';
import { INBOUND_EVENTS, inboundOutcomeFacts, newTraceparent, refusalCodeOf } from '../events/index.ts';
import type { EventDetail, InboundPaymentRejectedData, InboundPaymentSettledData, ResolutionData } from '../events/index.ts';
import type { EventPublisher, EventToPublish } from '../runtime/index.ts';
import { SagaContendedError, SagaNotFoundError } from './saga-errors.ts';
import { IllegalTransitionError } from './saga-errors.ts';
import type { SagaKind, SagaState } from './saga-states.ts';
import type { Saga, SagaStore, SagaTransition } from './saga-store.ts';

/**
 * Resolving what selo raised and could not decide alone (issue 17): an IN_DOUBT payment (no
 * pacs.002 within the SPI's limit) or an OUTCOME_CONFLICT payment, once operations (or the BCB's
 * answer to a query, see `shared/bcb-query`) know how it ended; and retrying a
 * COMPENSATION_FAILED saga's compensation. `selo saga resolve | approve | retry-compensation`
 * and the web console call these very functions, with the same injected dependencies.
 *
 * A resolution is one conditional write of the saga (the store's transition rules), then the same
 * fact an automatic outcome publishes: `PaymentSettled`, or `PaymentRejected`, which the
 * compensation worker turns into the reversal exactly as it does for a pacs.002 RJCT; for an
 * inbound payment (`IN#`), `InboundPaymentSettled` or `InboundPaymentRejected`. It is
 * audited as a transition whose reason names who, why and, with four eyes, who approved.
 */

/** How an IN_DOUBT or OUTCOME_CONFLICT payment ended. */
export type ResolutionOutcome = 'settled' | 'rejected';

/** Who found the outcome out: a person, or the BCB's answer to selo's query. */
export type ResolutionSource = 'operator' | 'bcb-query';

/** What {@link resolveSaga}, {@link approveResolution} and {@link retryCompensation} need. */
export interface ResolveSagaDeps {
  /** The saga table. */
  sagas: Pick<SagaStore, 'get' | 'transition' | 'recordFacts'>;
  /** selo's bus: `PaymentSettled`, `PaymentRejected`, `CompensationRetryRequested` go there. */
  publisher: EventPublisher;
  /** The audit stream (a Kinesis producer); each call awaits its records' acceptance. */
  audit: Pick<AuditSink, 'put'>;
  /**
   * Operators who must agree before a resolution takes effect: 1 (the one who resolves), or 2
   * (a second, different operator approves; `SELO_RESOLVE_APPROVALS`). Resolutions from the BCB's
   * answer never wait for approval: the BCB's signed message is the evidence.
   * @defaultValue 1
   */
  approvals?: 1 | 2;
  /** `source` of the events published (`selo.operations` for people, `selo.compensate` for the BCB query). @defaultValue 'selo.operations' */
  source?: string;
  /** The `worker` column of the audit records. @defaultValue 'operations' */
  auditWorker?: string;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** Input of {@link resolveSaga}. */
export interface ResolveSagaInput {
  /** `PAY#<EndToEndId>`. */
  sagaId: string;
  outcome: ResolutionOutcome;
  /** Why: what operations found (a BCB statement line, a call with the SPI desk…), or the BCB's answer. 1–500 characters; never personal data. */
  evidence: string;
  /** Who resolves: an operator's name, or the component for a BCB query. 1–100 characters. */
  operator: string;
  /** @defaultValue 'operator' */
  by?: ResolutionSource;
  /**
   * The reason code `PaymentRejected` carries (and so the reversal): an ISO 20022 / SPI code when
   * the BCB gave one (e.g. `AB03`).
   * @defaultValue 'NARR' (narrative: the reason is in the evidence)
   */
  reasonCode?: string;
}

/** A resolution waiting for a second operator (four eyes); kept in the saga's facts as JSON. */
export interface PendingResolution {
  outcome: ResolutionOutcome;
  evidence: string;
  operator: string;
  reasonCode: string;
  requestedAt: string;
  /** The saga's history length when it was requested: a saga that moved since makes it void. */
  historyLength: number;
}

/** What a resolve, approve or retry did. */
export type ResolutionResult =
  /** Written now; `events` were published (their detail-types). */
  | { status: 'resolved'; saga: Saga; outcome: ResolutionOutcome; events: string[] }
  /** Recorded; takes effect when another operator approves (`selo saga approve`). */
  | { status: 'pending-approval'; saga: Saga; request: PendingResolution }
  /**
   * Already resolved with this outcome (by `resolvedBy`: an operator, the BCB query, or a late
   * pacs.002 whose `[source …]` is its PI-ResourceId and copy id): nothing written again; the events are
   * republished only when their first publication had not completed (`republished`).
   */
  | { status: 'already-resolved'; saga: Saga; outcome: ResolutionOutcome; resolvedBy: string; republished: boolean }
  /** {@link retryCompensation}: `CompensationRetryRequested` published; the compensation worker retries. */
  | { status: 'retry-requested'; saga: Saga; events: string[] };

/** Stable codes of {@link ResolutionError}. */
export type ResolutionErrorCode =
  /** The saga is not in a state a person may resolve (only IN_DOUBT and OUTCOME_CONFLICT payments). */
  | 'SAGA_NOT_RESOLVABLE'
  /** The saga already ended the other way (e.g. a late pacs.002 settled it): the resolution is refused. */
  | 'RESOLUTION_CONTRADICTED'
  /** Bad input: empty evidence or operator, unknown outcome. */
  | 'RESOLUTION_INVALID'
  /** Another resolution is already waiting for approval. */
  | 'RESOLUTION_ALREADY_REQUESTED'
  /** Nothing is waiting for approval (never requested, or void because the saga moved). */
  | 'RESOLUTION_NOT_PENDING'
  /** The operator who requested a resolution tried to approve it. */
  | 'RESOLUTION_SELF_APPROVAL'
  /** retry-compensation on a saga that is not COMPENSATION_FAILED. */
  | 'COMPENSATION_NOT_FAILED';

/** A resolution selo refuses; retrying the same call cannot help. */
export class ResolutionError extends PermanentError {
  declare readonly code: ResolutionErrorCode;
  constructor(code: ResolutionErrorCode, message: string, details: Record<string, unknown>) {
    super(code, message, { details });
  }
}

/** States a person may resolve. */
export const RESOLVABLE_STATES: readonly SagaState[] = ['IN_DOUBT', 'OUTCOME_CONFLICT'];
/**
 * Sagas a person may resolve: our payments (`PAY#`), and payments to our customers (`IN#`), whose
 * outcome decides whether core banking credits (`InboundPaymentSettled`) or never does
 * (`InboundPaymentRejected`).
 */
export const RESOLVABLE_KINDS: readonly SagaKind[] = ['payment', 'inbound'];
/** Where a four-eyes request waits. */
export const PENDING_RESOLUTION_FACT = 'resolutionRequest';
/** The key of the resolution whose events were accepted by the bus. */
const PUBLISHED_FACT = 'resolutionPublished';
/** The source events an operator's actions publish. */
export const OPERATIONS_SOURCE = 'selo.operations';
/** detail-type that asks the compensation worker to retry a COMPENSATION_FAILED saga (a compensation trigger). */
export const COMPENSATION_RETRY_REQUESTED = 'CompensationRetryRequested';
const TARGET: Readonly<Record<ResolutionOutcome, SagaState>> = { settled: 'SETTLED', rejected: 'REJECTED' };
const EVIDENCE_MAX = 500;
/** pacs.002 `AddtlInf` is at most 105 characters (pacs.002.spi.1.17.xsd, Max105Text). */
const ADDITIONAL_INFORMATION_MAX = 105;
const REASON_CODE = /^[A-Z0-9]{4}$/;
const RESOLUTION_SOURCE = /\[source (resolution:[^\]]+)\]$/;

function check(input: ResolveSagaInput): void {
  if (input.outcome !== 'settled' && input.outcome !== 'rejected') throw new ResolutionError('RESOLUTION_INVALID', `outcome must be settled or rejected, got ${JSON.stringify(input.outcome)}`, { sagaId: input.sagaId });
  if (input.evidence.trim() === '' || input.evidence.length > EVIDENCE_MAX) throw new ResolutionError('RESOLUTION_INVALID', `evidence must be 1 to ${EVIDENCE_MAX} characters, got ${input.evidence.length}`, { sagaId: input.sagaId });
  checkOperator(input.sagaId, input.operator);
  if (input.reasonCode !== undefined && !REASON_CODE.test(input.reasonCode)) throw new ResolutionError('RESOLUTION_INVALID', `reason code must be 4 upper-case letters or digits, got ${JSON.stringify(input.reasonCode)}`, { sagaId: input.sagaId });
}

function checkOperator(sagaId: string, operator: string): void {
  if (!/^[\w.@+-]{1,100}$/.test(operator)) throw new ResolutionError('RESOLUTION_INVALID', `operator must be 1 to 100 letters, digits or . _ @ + -, got ${JSON.stringify(operator)}`, { sagaId });
}

async function read(deps: ResolveSagaDeps, sagaId: string): Promise<Saga> {
  const saga = await deps.sagas.get(sagaId);
  if (saga === undefined) throw new SagaNotFoundError(sagaId);
  return saga;
}

/** The resolution key of a saga in `state`: an IN_DOUBT outcome shares the verify worker's key (one outcome, whoever writes it first). */
function resolutionKey(saga: Saga, outcome: ResolutionOutcome): string {
  if (saga.state === 'IN_DOUBT') return outcome;
  return `resolved-${outcome}#${saga.history.filter((t) => t.to === 'OUTCOME_CONFLICT').length}`;
}

/** The last transition that ended an IN_DOUBT or OUTCOME_CONFLICT payment. */
function lastResolution(saga: Saga): SagaTransition | undefined {
  return saga.history.findLast((t) => (t.from === 'IN_DOUBT' || t.from === 'OUTCOME_CONFLICT') && (t.to === 'SETTLED' || t.to === 'REJECTED'));
}

/** The request waiting for approval, if one is and the saga has not moved since. */
export function pendingResolution(saga: Saga): PendingResolution | undefined {
  const text = saga.facts[PENDING_RESOLUTION_FACT];
  if (text === undefined || text === '' || !RESOLVABLE_STATES.includes(saga.state)) return undefined;
  try {
    const request = JSON.parse(text) as PendingResolution;
    return request.historyLength === saga.history.length ? request : undefined;
  } catch {
    return undefined;
  }
}

function sanitize(text: string): string {
  // One audit line: no control characters, quotes kept visible.
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** The fact an outcome publishes, shaped as the verify worker's for a pacs.002 (plus `resolution`). */
function outcomeEvent(deps: ResolveSagaDeps, saga: Saga, outcome: ResolutionOutcome, resolution: ResolutionData, reasonCode: string, evidence: string): EventToPublish {
  const instruction = saga.sagaId.slice(saga.sagaId.indexOf('#') + 1);
  // A return to us (`IN#<RtrId>`) names the payment it returns, as the verify worker's events do.
  const endToEndId = (saga.kind === 'inbound' ? saga.facts.originalEndToEndId : undefined) ?? saga.endToEndId ?? instruction;
  const reason = { code: reasonCode, additionalInformation: sanitize(evidence).slice(0, ADDITIONAL_INFORMATION_MAX) };
  let detailType: string;
  let data: unknown;
  if (saga.kind === 'inbound') {
    // A payment to one of our customers: settled means credit, rejected means never credit.
    const common = { channel: 'spi' as const, endToEndId, originalInstructionId: instruction, resolution, ...inboundOutcomeFacts(saga.facts) };
    detailType = outcome === 'settled' ? INBOUND_EVENTS.settled : INBOUND_EVENTS.rejected;
    data = outcome === 'settled' ? (common satisfies InboundPaymentSettledData) : ({ ...common, reason, ...(saga.facts.answer === undefined ? {} : { answer: saga.facts.answer }) } satisfies InboundPaymentRejectedData);
  } else {
    const base = { channel: 'spi', endToEndId, originalInstructionId: endToEndId, ...(saga.bizMsgIdr === undefined ? {} : { originalBizMsgIdr: saga.bizMsgIdr }), resolution };
    detailType = outcome === 'settled' ? 'PaymentSettled' : 'PaymentRejected';
    data = outcome === 'settled' ? { ...base, status: 'ACSC' } : { ...base, status: 'RJCT', reason };
  }
  const detail: EventDetail<unknown> = {
    version: 1,
    sagaId: saga.sagaId,
    endToEndId,
    ...(saga.bizMsgIdr === undefined ? {} : { bizMsgIdr: saga.bizMsgIdr }),
    attempt: 1,
    traceparent: newTraceparent(),
    data,
  };
  return { detailType, source: deps.source ?? OPERATIONS_SOURCE, detail };
}

function auditOf(deps: ResolveSagaDeps, saga: Saga, transition: { from: string; to: string; reason: string }): AuditRecord {
  const origin = {
    worker: deps.auditWorker ?? 'operations',
    system: 'spi' as const,
    sagaId: saga.sagaId,
    attempt: 1,
    ...(saga.endToEndId === undefined ? {} : { endToEndId: saga.endToEndId }),
    ...(saga.bizMsgIdr === undefined ? {} : { bizMsgIdr: saga.bizMsgIdr }),
  };
  return transitionAuditRecord(origin, transition, (deps.now ?? (() => new Date()))());
}

/** What a resolution's transition records: who, why, which event, in one line. */
interface Decision {
  outcome: ResolutionOutcome;
  evidence: string;
  reasonCode: string;
  by: ResolutionSource;
  operators: string[];
}

function reasonOf(decision: Decision, id: string): string {
  const who = decision.by === 'bcb-query' ? `the BCB's answer (${decision.operators.join(', ')})` : `operator ${decision.operators[0] ?? '?'}${decision.operators.length > 1 ? ` approved by ${decision.operators.slice(1).join(', ')}` : ''}`;
  return `resolved ${decision.outcome} by ${who}: ${JSON.stringify(sanitize(decision.evidence))} [source resolution:${id}]`;
}

/** A rejection's code when the operator gives none: what we answered a payment to our customer (`RJCT AC03` → AC03), else NARR. */
function defaultReasonCode(saga: Saga): string {
  return (saga.kind === 'inbound' ? refusalCodeOf(saga.facts.answer) : undefined) ?? 'NARR';
}

/** Publishes a written resolution's fact and records that it was accepted. */
async function publishResolution(deps: ResolveSagaDeps, saga: Saga, entry: SagaTransition, decision: Decision): Promise<string[]> {
  const done = saga.compensations.filter((c) => c.status === 'DONE').map((c) => c.step);
  const resolution: ResolutionData = {
    by: decision.by, operators: decision.operators, evidence: sanitize(decision.evidence), resolvedAt: entry.at,
    ...(done.length > 0 ? { compensationsDone: done } : {}),
    // A payment to our customer that settled before the conflict: core banking credited it already.
    ...(saga.kind === 'inbound' && saga.history.some((t) => t.to === 'SETTLED' && t.key !== entry.key) ? { creditedBefore: true } : {}),
  };
  const event = outcomeEvent(deps, saga, decision.outcome, resolution, decision.reasonCode, decision.evidence);
  await deps.publisher.publish([event]);
  // Best effort: without this mark a later resolve republishes (consumers deduplicate on sagaId and detail-type).
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const current = await deps.sagas.get(saga.sagaId);
    if (current === undefined || current.facts[PUBLISHED_FACT] === entry.key) break;
    if ((await deps.sagas.recordFacts({ sagaId: saga.sagaId, facts: { [PUBLISHED_FACT]: entry.key }, expectedVersion: current.version })) !== undefined) break;
  }
  return [event.detailType];
}

/** Decision recorded in a resolution's reason, for a republication. */
function decisionOf(saga: Saga, entry: SagaTransition): Decision {
  const outcome: ResolutionOutcome = entry.to === 'SETTLED' ? 'settled' : 'rejected';
  const evidence = /: ("(?:[^"\\]|\\.)*") \[source /.exec(entry.reason)?.[1];
  const by: ResolutionSource = entry.reason.includes("by the BCB's answer") ? 'bcb-query' : 'operator';
  const operators = /by operator (\S+)(?: approved by (\S+))?:/.exec(entry.reason)?.slice(1).filter((o): o is string => o !== undefined) ?? [];
  const code = saga.facts.resolutionReasonCode ?? 'NARR';
  return { outcome, evidence: evidence === undefined ? entry.reason : (JSON.parse(evidence) as string), reasonCode: code, by, operators };
}

/** The saga has left IN_DOUBT / OUTCOME_CONFLICT: already resolved this way, or refused. */
async function alreadyEnded(deps: ResolveSagaDeps, saga: Saga, outcome: ResolutionOutcome): Promise<ResolutionResult> {
  const entry = lastResolution(saga);
  if (entry === undefined) {
    throw new ResolutionError('SAGA_NOT_RESOLVABLE', `saga ${saga.sagaId} is ${saga.state}: only IN_DOUBT and OUTCOME_CONFLICT payments are resolved`, { sagaId: saga.sagaId, state: saga.state });
  }
  const ended: ResolutionOutcome = entry.to === 'SETTLED' ? 'settled' : 'rejected';
  const source = /\[source ([^\]]+)\]$/.exec(entry.reason)?.[1] ?? entry.key;
  if (ended !== outcome) {
    throw new ResolutionError('RESOLUTION_CONTRADICTED', `saga ${saga.sagaId} was already ${ended} (${entry.at}, ${source}); ${outcome} is not applied`, { sagaId: saga.sagaId, state: saga.state, ended, source });
  }
  const ours = RESOLUTION_SOURCE.test(entry.reason);
  let republished = false;
  if (ours && saga.facts[PUBLISHED_FACT] !== entry.key) {
    await publishResolution(deps, saga, entry, decisionOf(saga, entry));
    republished = true;
  }
  return { status: 'already-resolved', saga, outcome, resolvedBy: source, republished };
}

/** Writes the resolution (one conditional transition), audits it, publishes its fact. */
async function apply(deps: ResolveSagaDeps, start: Saga, decision: Decision): Promise<ResolutionResult> {
  let saga = start;
  for (let pass = 0; pass < 3; pass += 1) {
    if (!RESOLVABLE_STATES.includes(saga.state) || !RESOLVABLE_KINDS.includes(saga.kind)) return alreadyEnded(deps, saga, decision.outcome);
    const key = resolutionKey(saga, decision.outcome);
    const reason = reasonOf(decision, randomUUID());
    let written;
    try {
      written = await deps.sagas.transition({
        sagaId: saga.sagaId,
        to: TARGET[decision.outcome],
        from: [saga.state],
        reason,
        attempt: 1,
        idempotencyKey: key,
        current: saga,
        // A four-eyes request stays as it was: void once the saga moved (see pendingResolution).
        facts: { resolutionReasonCode: decision.reasonCode },
      });
    } catch (error) {
      // Moved under us (a late pacs.002, another operator): decide again from what is there now.
      if (error instanceof IllegalTransitionError) {
        saga = await read(deps, saga.sagaId);
        continue;
      }
      throw error;
    }
    if (written.status === 'already-applied') return alreadyEnded(deps, written.saga, decision.outcome);
    const entry = written.saga.history.at(-1);
    if (entry === undefined) throw new Error('a written transition is in the history');
    await deps.audit.put([auditOf(deps, written.saga, { from: saga.state, to: entry.to, reason })]);
    const events = await publishResolution(deps, written.saga, entry, decision);
    return { status: 'resolved', saga: written.saga, outcome: decision.outcome, events };
  }
  throw new SagaContendedError(saga.sagaId, 3);
}

/**
 * Resolves an IN_DOUBT or OUTCOME_CONFLICT payment: `settled` → SETTLED and `PaymentSettled`;
 * `rejected` → REJECTED and `PaymentRejected` (the compensation worker then reverses what was not
 * reversed yet). For a payment to one of our customers (`IN#`): `InboundPaymentSettled` (core
 * banking credits) or `InboundPaymentRejected` (never credit; nothing to reverse). Exactly once: the write is conditional on the saga's state and version and keyed
 * like the verify worker's outcome, so a second resolve, or a race with a late pacs.002, writes
 * nothing and answers `already-resolved` (or {@link ResolutionError} `RESOLUTION_CONTRADICTED` when
 * it ended the other way). With `approvals: 2` an operator's resolve records a
 * {@link PendingResolution} and answers `pending-approval`; {@link approveResolution} by another
 * operator applies it.
 */
export async function resolveSaga(deps: ResolveSagaDeps, input: ResolveSagaInput): Promise<ResolutionResult> {
  check(input);
  const by = input.by ?? 'operator';
  let saga = await read(deps, input.sagaId);
  const decision: Decision = { outcome: input.outcome, evidence: input.evidence, reasonCode: input.reasonCode ?? defaultReasonCode(saga), by, operators: [input.operator] };
  if (!RESOLVABLE_KINDS.includes(saga.kind)) throw new ResolutionError('SAGA_NOT_RESOLVABLE', `saga ${saga.sagaId} is a ${saga.kind} saga: only payments (PAY#) and payments to our customers (IN#) are resolved`, { sagaId: saga.sagaId, kind: saga.kind });
  if ((deps.approvals ?? 1) === 1 || by === 'bcb-query') return apply(deps, saga, decision);
  for (let pass = 0; pass < 3; pass += 1) {
    if (!RESOLVABLE_STATES.includes(saga.state)) return alreadyEnded(deps, saga, input.outcome);
    const pending = pendingResolution(saga);
    if (pending !== undefined) {
      if (pending.operator === input.operator && pending.outcome === input.outcome) return { status: 'pending-approval', saga, request: pending };
      throw new ResolutionError('RESOLUTION_ALREADY_REQUESTED', `saga ${saga.sagaId}: ${pending.operator} asked to resolve it ${pending.outcome} at ${pending.requestedAt}; approve or wait`, { sagaId: saga.sagaId, pending });
    }
    const request: PendingResolution = {
      outcome: input.outcome,
      evidence: sanitize(input.evidence),
      operator: input.operator,
      reasonCode: decision.reasonCode,
      requestedAt: (deps.now ?? (() => new Date()))().toISOString(),
      historyLength: saga.history.length,
    };
    const written = await deps.sagas.recordFacts({ sagaId: saga.sagaId, facts: { [PENDING_RESOLUTION_FACT]: JSON.stringify(request) }, expectedVersion: saga.version });
    if (written === undefined) {
      saga = await read(deps, saga.sagaId);
      continue;
    }
    await deps.audit.put([auditOf(deps, written, { from: saga.state, to: saga.state, reason: `resolution ${input.outcome} requested by operator ${input.operator}, awaiting a second operator: ${JSON.stringify(request.evidence)}` })]);
    return { status: 'pending-approval', saga: written, request };
  }
  throw new SagaContendedError(saga.sagaId, 3);
}

/**
 * Applies the resolution another operator requested (four eyes): refused for the requester
 * (`RESOLUTION_SELF_APPROVAL`) and when nothing is pending (`RESOLUTION_NOT_PENDING`: never
 * requested, or the saga moved since, e.g. a late pacs.002 settled it).
 */
export async function approveResolution(deps: ResolveSagaDeps, input: { sagaId: string; operator: string }): Promise<ResolutionResult> {
  checkOperator(input.sagaId, input.operator);
  const saga = await read(deps, input.sagaId);
  const pending = pendingResolution(saga);
  if (pending === undefined) {
    const request = saga.facts[PENDING_RESOLUTION_FACT];
    if (request !== undefined && request !== '' && !RESOLVABLE_STATES.includes(saga.state)) {
      const asked = JSON.parse(request) as PendingResolution;
      return alreadyEnded(deps, saga, asked.outcome);
    }
    throw new ResolutionError('RESOLUTION_NOT_PENDING', `saga ${saga.sagaId} (${saga.state}) has no resolution waiting for approval`, { sagaId: saga.sagaId, state: saga.state });
  }
  if (pending.operator === input.operator) throw new ResolutionError('RESOLUTION_SELF_APPROVAL', `operator ${input.operator} requested this resolution and cannot approve it`, { sagaId: saga.sagaId, operator: input.operator });
  return apply(deps, saga, { outcome: pending.outcome, evidence: pending.evidence, reasonCode: pending.reasonCode, by: 'operator', operators: [pending.operator, input.operator] });
}

/**
 * Asks the compensation worker to retry a COMPENSATION_FAILED saga: publishes
 * `CompensationRetryRequested` (a compensation trigger), which moves the saga to COMPENSATING
 * again and runs the compensations still PENDING or FAILED, each once (keyed by saga and step).
 * Audited with the operator and why. A saga in another state is refused
 * (`COMPENSATION_NOT_FAILED`); two retries at once compensate once (the worker's conditional write).
 */
export async function retryCompensation(deps: ResolveSagaDeps, input: { sagaId: string; operator: string; evidence?: string }): Promise<ResolutionResult> {
  checkOperator(input.sagaId, input.operator);
  const saga = await read(deps, input.sagaId);
  if (saga.state !== 'COMPENSATION_FAILED') throw new ResolutionError('COMPENSATION_NOT_FAILED', `saga ${saga.sagaId} is ${saga.state}, not COMPENSATION_FAILED`, { sagaId: saga.sagaId, state: saga.state });
  const failed = saga.compensations.filter((c) => c.status !== 'DONE');
  const reasonCode = saga.history.findLast((t) => t.to === 'COMPENSATING')?.reason.split(' ')[1] ?? 'NARR';
  const why = sanitize(input.evidence ?? 'retry requested');
  const detail: EventDetail<unknown> = {
    version: 1,
    sagaId: saga.sagaId,
    ...(saga.endToEndId === undefined ? {} : { endToEndId: saga.endToEndId }),
    ...(saga.bizMsgIdr === undefined ? {} : { bizMsgIdr: saga.bizMsgIdr }),
    ...(saga.requestId === undefined ? {} : { requestId: saga.requestId }),
    attempt: 1,
    traceparent: newTraceparent(),
    data: { reasonCode, description: `retry by operator ${input.operator}: ${why}`.slice(0, 500), operator: input.operator, steps: failed.map((c) => c.step) },
  };
  await deps.audit.put([auditOf(deps, saga, { from: saga.state, to: saga.state, reason: `compensation retry requested by operator ${input.operator}: ${JSON.stringify(why)} (steps ${failed.map((c) => c.step).join(', ') || 'none'})` })]);
  await deps.publisher.publish([{ detailType: COMPENSATION_RETRY_REQUESTED, source: deps.source ?? OPERATIONS_SOURCE, detail }]);
  return { status: 'retry-requested', saga, events: [COMPENSATION_RETRY_REQUESTED] };
}
