import { createHash } from 'node:crypto';
import { transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditOrigin, AuditRecord } from '../../shared/audit/index.ts';
import { DICT_OPERATIONS } from '../../shared/dict/index.ts';
import { PermanentError, TransientError, classifyError } from '../../shared/errors/index.ts';
import { COMPENSATE_SOURCE, COMPENSATION_FACTS, childTraceparent, deriveDetail, dictSagaId } from '../../shared/events/index.ts';
import type { CompensationTrigger, EventDetail, EventEnvelope } from '../../shared/events/index.ts';
import { withAuditRecords } from '../../shared/runtime/index.ts';
import type { EventPublisher, EventToPublish, Handler, HandlerContext, Outcome } from '../../shared/runtime/index.ts';
import { IllegalTransitionError, SagaContendedError, SagaNotFoundError, pendingCompensations, sagaKindOf } from '../../shared/saga/index.ts';
import type { Compensation, Saga, SagaState, SagaStore, SagaTransition } from '../../shared/saga/index.ts';

/** Dependencies of the compensation handler, passed in by `main` (HOUSE_STYLE 6). */
export interface CompensateHandlerDeps {
  sagas: Pick<SagaStore, 'get' | 'transition' | 'recordCompensation'>;
  /**
   * Publishes each compensation's action (`PaymentReversalRequested`, `DictRequested`) before the
   * compensation is marked DONE, so DONE always means "accepted by the bus".
   */
  publisher: EventPublisher;
  /** detail-types that start a compensation (topology `COMPENSATION_TRIGGERS`); others are ignored. */
  triggers: readonly string[];
}

/** The saga's outcome is not recorded yet (e.g. TRANSMITTED while a PaymentRejected arrives): retried. */
export class CompensationOutcomePendingError extends TransientError {
  constructor(sagaId: string, state: SagaState, detailType: string) {
    super('COMPENSATION_OUTCOME_PENDING', `saga ${sagaId} is ${state}, not yet REJECTED or FAILED, when ${detailType} arrived`, { details: { sagaId, state, detailType } });
  }
}

/** A registered compensation cannot be turned into its action event; retrying cannot help. */
export class CompensationInvalidError extends PermanentError {
  constructor(sagaId: string, step: string, problem: string) {
    super('COMPENSATION_INVALID', `saga ${sagaId} compensation ${step}: ${problem}`, { details: { sagaId, step } });
  }
}

/**
 * A compensation kept failing within the queue's budget (or failed permanently): the saga is
 * COMPENSATION_FAILED and the runtime publishes `CompensationFailed` and dead-letters the trigger,
 * from where `selo dlq replay compensate` retries it.
 */
export class CompensationEscalatedError extends PermanentError {
  constructor(sagaId: string, step: string, attempt: number, maxReceiveCount: number, cause: unknown) {
    const classified = classifyError(cause);
    super('COMPENSATION_FAILED', `saga ${sagaId} compensation ${step} failed on attempt ${attempt} of ${maxReceiveCount}: ${classified.code}: ${classified.message}`, {
      cause,
      details: { sagaId, step, causeCode: classified.code },
    });
  }
}

/** The states a compensation starts from (COMPENSATION_FAILED: a retry; COMPLETED: DICT only, per the table). */
const COMPENSABLE: readonly SagaState[] = ['REJECTED', 'FAILED', 'COMPENSATION_FAILED', 'COMPLETED'];
/** States whose outcome the verify or transmit side has not recorded yet: never compensated now. */
const OUTCOME_PENDING: ReadonlySet<SagaState> = new Set(['TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
/** Triggers that prove, on their own, that nothing left selo: a saga not yet transmitted may be failed by them. */
const FAILS_BEFORE_TRANSMISSION: ReadonlySet<string> = new Set(['SigningFailed', 'SignatureInvalid']);
const EVENT_IN_REASON = /\bevent=(\S+)$/;
const AMOUNT = /^\d{1,16}\.\d{2}$/;
/** Re-reads after a concurrent writer moved the saga, before giving up as contended. */
const MAX_DISPATCHES = 3;

/** The stable id core banking dedupes a compensation by: one per saga and step. */
export function compensationId(sagaId: string, step: string): string {
  return `${sagaId}#${step}`;
}

/** A UUID-shaped DICT RequestId derived from a compensation id, the same on every redelivery. */
export function compensationRequestId(id: string): string {
  const hex = createHash('sha256').update(id).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((Number.parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The event id recorded in a transition this worker wrote (`… event=<id>`). */
function eventOf(transition: SagaTransition | undefined): string | undefined {
  return transition === undefined ? undefined : EVENT_IN_REASON.exec(transition.reason)?.[1];
}

function lastEntering(saga: Saga, state: SagaState): SagaTransition | undefined {
  return saga.history.findLast((t) => t.to === state);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One failure event being handled. */
interface Run {
  event: EventEnvelope<CompensationTrigger>;
  detail: EventDetail<CompensationTrigger>;
  context: HandlerContext;
  origin: AuditOrigin;
  audit: AuditRecord[];
  /** `<detail-type> <reason code> event=<id>`: the reason of every transition this run writes. */
  reason: string;
}

/**
 * The compensation worker's handler. A definite failure (`PaymentRejected`, `MessageRejected`,
 * `TransmissionRejected`, `TransmissionFailed`, `SigningFailed`, `SignatureInvalid` on our outbound
 * path, `DictOperationFailed`) undoes the saga's registered steps, newest first, exactly once:
 *
 * 1. REJECTED | FAILED | COMPENSATION_FAILED (| COMPLETED for DICT) → COMPENSATING, a conditional
 *    write whose reason names the event that drove it (`event=<EventBridge id>`);
 * 2. each PENDING compensation's action is published (`PaymentReversalRequested` with the amount,
 *    the reason code and `compensationId` = `<sagaId>#<step>`; `DictRequested` from
 *    `selo.compensate` for DICT undo operations), then marked DONE;
 * 3. COMPENSATING → COMPENSATED and `PaymentCompensated` (`DictOperationCompensated` for DICT),
 *    returned to the runtime.
 *
 * A redelivery of the driving event republishes what the runtime may have failed to publish; any
 * other failure event for the saga publishes nothing. A SETTLED saga is never compensated: it
 * becomes OUTCOME_CONFLICT with `OutcomeConflict`. A saga whose outcome is not recorded yet
 * (TRANSMITTING, TRANSMITTED, IN_DOUBT) is retried through the queue's backoff — the verify worker
 * is the one writer of outcomes — and dead-lettered with `CompensationFailed` when the budget runs
 * out. A compensation that keeps failing is retried within the budget, then the saga goes
 * COMPENSATION_FAILED and {@link CompensationEscalatedError} hands it to operations.
 */
export function createCompensateHandler(deps: CompensateHandlerDeps): Handler<CompensationTrigger> {
  function transitionAudit(run: Run, from: SagaState, to: SagaState): void {
    run.audit.push(transitionAuditRecord(run.origin, { from, to, reason: run.reason }));
  }

  function fact(run: Run, detailType: string, data: Record<string, unknown>): EventToPublish {
    return { detailType, source: COMPENSATE_SOURCE, detail: deriveDetail(run.detail, data, { attempt: run.context.attempt }) };
  }

  function triggerData(run: Run): Record<string, unknown> {
    const { data } = run.detail;
    return { trigger: run.event.detailType, reasonCode: data.reasonCode, ...(data.description === undefined ? {} : { description: data.description }) };
  }

  /** The action event of one registered compensation. */
  function actionEvent(run: Run, saga: Saga, compensation: Compensation): EventToPublish {
    const id = compensationId(saga.sagaId, compensation.step);
    const { params } = compensation;
    if (compensation.action === COMPENSATION_FACTS.reversal) {
      const amount = params.amount;
      if (typeof amount !== 'string' || !AMOUNT.test(amount)) throw new CompensationInvalidError(saga.sagaId, compensation.step, 'amount must be a decimal string with two places');
      const ids: Record<string, string> = {};
      for (const field of ['endToEndId', 'returnId']) {
        const value = params[field];
        if (typeof value === 'string') ids[field] = value;
      }
      return fact(run, COMPENSATION_FACTS.reversal, { compensationId: id, step: compensation.step, amount, ...ids, ...triggerData(run) });
    }
    if (compensation.action === COMPENSATION_FACTS.dictRequest) {
      const operation = params.operation;
      if (typeof operation !== 'string' || !Object.hasOwn(DICT_OPERATIONS, operation)) throw new CompensationInvalidError(saga.sagaId, compensation.step, `unknown DICT operation ${JSON.stringify(operation)}`);
      const { body, pathParameters } = params;
      if (body !== undefined && !isRecord(body)) throw new CompensationInvalidError(saga.sagaId, compensation.step, 'body must be an object');
      if (pathParameters !== undefined && !(isRecord(pathParameters) && Object.values(pathParameters).every((v) => typeof v === 'string'))) {
        throw new CompensationInvalidError(saga.sagaId, compensation.step, 'pathParameters must map names to strings');
      }
      // The undo is a DICT request of its own (its own saga), keyed by a RequestId derived from the
      // compensation, so a republished request is the same request to the sign worker and the DICT.
      const requestId = compensationRequestId(id);
      const detail: EventDetail<unknown> = {
        version: 1,
        sagaId: dictSagaId(requestId),
        requestId,
        attempt: 1,
        traceparent: childTraceparent(run.detail.traceparent),
        data: { operation, ...(body === undefined ? {} : { body }), ...(pathParameters === undefined ? {} : { pathParameters }), compensationId: id, compensates: saga.sagaId, ...triggerData(run) },
      };
      return { detailType: COMPENSATION_FACTS.dictRequest, source: COMPENSATE_SOURCE, detail };
    }
    throw new CompensationInvalidError(saga.sagaId, compensation.step, `unknown action ${JSON.stringify(compensation.action)}`);
  }

  function compensatedFact(run: Run, saga: Saga): EventToPublish {
    const detailType = saga.kind === 'dict' ? 'DictOperationCompensated' : COMPENSATION_FACTS.compensated;
    const compensations = saga.compensations.map((c) => ({ compensationId: compensationId(saga.sagaId, c.step), step: c.step, action: c.action, status: c.status }));
    return fact(run, detailType, { ...triggerData(run), compensations });
  }

  /** Runs the saga's pending compensations, newest first, then closes it as COMPENSATED. */
  async function compensate(run: Run, start: Saga): Promise<Outcome> {
    const { sagas } = deps;
    const { attempt, maxReceiveCount } = run.context;
    for (const compensation of pendingCompensations(start)) {
      try {
        await deps.publisher.publish([actionEvent(run, start, compensation)]);
        await sagas.recordCompensation({ sagaId: start.sagaId, step: compensation.step, outcome: 'DONE' });
      } catch (error) {
        const classified = classifyError(error);
        run.context.logger.warn({ err: error, step: compensation.step, code: classified.code }, 'compensation failed');
        await sagas.recordCompensation({ sagaId: start.sagaId, step: compensation.step, outcome: 'FAILED', errorCode: classified.code }).catch((recordError: unknown) => {
          run.context.logger.warn({ err: recordError, step: compensation.step }, 'could not record the failed compensation');
        });
        if (classified.retryability === 'transient' && attempt < maxReceiveCount) throw withAuditRecords(error, run.audit);
        await escalate(run, compensation.step);
        throw withAuditRecords(new CompensationEscalatedError(start.sagaId, compensation.step, attempt, maxReceiveCount, error), run.audit);
      }
    }
    const done = await sagas.transition({ sagaId: start.sagaId, to: 'COMPENSATED', from: ['COMPENSATING'], reason: run.reason, attempt, idempotencyKey: 'compensated' });
    if (done.status === 'applied') transitionAudit(run, 'COMPENSATING', 'COMPENSATED');
    return { events: [compensatedFact(run, done.saga)], audit: run.audit };
  }

  /** COMPENSATING → COMPENSATION_FAILED; a failed write is logged, the escalation goes on regardless. */
  async function escalate(run: Run, step: string): Promise<void> {
    const sagaId = run.detail.sagaId;
    try {
      const saga = await deps.sagas.get(sagaId);
      const round = saga === undefined ? 1 : saga.history.filter((t) => t.to === 'COMPENSATION_FAILED').length + 1;
      const written = await deps.sagas.transition({ sagaId, to: 'COMPENSATION_FAILED', from: ['COMPENSATING'], reason: `${step} ${run.reason}`, attempt: run.context.attempt, idempotencyKey: `compensation-failed#${round}` });
      if (written.status === 'applied') run.audit.push(transitionAuditRecord(run.origin, { from: 'COMPENSATING', to: 'COMPENSATION_FAILED', reason: `${step} ${run.reason}` }));
    } catch (error) {
      run.context.logger.error({ err: error }, 'could not record COMPENSATION_FAILED; escalating anyway');
    }
  }

  /** A definite failure for a settled payment: never a reversal, operations decide. */
  async function conflict(run: Run, saga: Saga): Promise<Outcome | 'moved'> {
    try {
      const written = await deps.sagas.transition({ sagaId: saga.sagaId, to: 'OUTCOME_CONFLICT', from: ['SETTLED'], reason: run.reason, attempt: run.context.attempt, idempotencyKey: 'outcome-conflict' });
      if (written.status === 'already-applied') return republishConflict(run, written.saga);
      transitionAudit(run, 'SETTLED', 'OUTCOME_CONFLICT');
      return { events: [conflictFact(run, 'SETTLED')], audit: run.audit };
    } catch (error) {
      if (error instanceof IllegalTransitionError) return 'moved';
      throw error;
    }
  }

  function conflictFact(run: Run, state: SagaState): EventToPublish {
    return fact(run, COMPENSATION_FACTS.conflict, { ...triggerData(run), state, reason: `${run.event.detailType} for a ${state} saga: never compensated` });
  }

  function republishConflict(run: Run, saga: Saga): Outcome {
    const entry = lastEntering(saga, 'OUTCOME_CONFLICT');
    if (eventOf(entry) !== run.event.id) return ignore(run, `already OUTCOME_CONFLICT (${entry?.reason ?? 'no reason'})`);
    return { events: [conflictFact(run, entry?.from ?? 'SETTLED')], audit: run.audit };
  }

  /** Starts (or, for a redelivery of the driving event, resumes) the compensation. */
  async function begin(run: Run, saga: Saga): Promise<Outcome | 'moved'> {
    const round = saga.history.filter((t) => t.to === 'COMPENSATING').length + 1;
    let written;
    try {
      written = await deps.sagas.transition({ sagaId: saga.sagaId, to: 'COMPENSATING', from: COMPENSABLE, reason: run.reason, attempt: run.context.attempt, idempotencyKey: `compensating#${round}` });
    } catch (error) {
      if (error instanceof IllegalTransitionError) return 'moved';
      throw error;
    }
    if (written.status === 'already-applied') {
      // Another event took this round first (a concurrent duplicate): it drives, this one stops.
      if (eventOf(lastEntering(written.saga, 'COMPENSATING')) !== run.event.id) return ignore(run, 'a concurrent failure event is compensating it');
    } else {
      transitionAudit(run, saga.state, 'COMPENSATING');
    }
    return compensate(run, written.saga);
  }

  function ignore(run: Run, why: string): Outcome {
    run.context.logger.info({ why }, 'failure event recorded, nothing to compensate');
    return { events: [], audit: run.audit };
  }

  async function dispatch(run: Run, saga: Saga): Promise<Outcome | 'moved'> {
    const id = run.event.id;
    switch (saga.state) {
      case 'REJECTED':
      case 'FAILED':
      case 'COMPENSATION_FAILED':
      case 'COMPLETED':
        return begin(run, saga);
      case 'COMPENSATING':
        // Only the delivery of the event that started it resumes it (its earlier delivery stopped
        // half-way); any other failure event is a duplicate.
        return eventOf(lastEntering(saga, 'COMPENSATING')) === id ? compensate(run, saga) : ignore(run, 'already being compensated');
      case 'COMPENSATED':
        // The runtime publishes after the handler: a redelivery of the driving event means that
        // publication may have failed, so the closing fact goes out again. Actions published
        // before DONE are not repeated.
        return eventOf(lastEntering(saga, 'COMPENSATING')) === id ? { events: [compensatedFact(run, saga)], audit: run.audit } : ignore(run, 'already compensated');
      case 'SETTLED':
        return conflict(run, saga);
      case 'OUTCOME_CONFLICT':
        return republishConflict(run, saga);
      case 'REQUESTED':
      case 'SIGNED':
        if (FAILS_BEFORE_TRANSMISSION.has(run.event.detailType)) return failBeforeTransmission(run, saga);
        throw new CompensationOutcomePendingError(saga.sagaId, saga.state, run.event.detailType);
      default:
        if (OUTCOME_PENDING.has(saga.state)) throw new CompensationOutcomePendingError(saga.sagaId, saga.state, run.event.detailType);
        return ignore(run, `unexpected state ${saga.state}`);
    }
  }

  /**
   * A saga that never reached TRANSMITTING cannot have reached the BCB: the conditional write to
   * FAILED also stops the transmit worker (its SIGNED → TRANSMITTING write then fails).
   */
  async function failBeforeTransmission(run: Run, saga: Saga): Promise<'moved'> {
    try {
      const written = await deps.sagas.transition({ sagaId: saga.sagaId, to: 'FAILED', from: ['REQUESTED', 'SIGNED'], reason: run.reason, attempt: run.context.attempt, idempotencyKey: `failed:${run.event.detailType}` });
      if (written.status === 'applied') transitionAudit(run, saga.state, 'FAILED');
    } catch (error) {
      if (!(error instanceof IllegalTransitionError)) throw error;
    }
    return 'moved';
  }

  return async (message, context) => {
    const { event } = message;
    const { detail } = event;
    const kind = sagaKindOf(detail.sagaId);
    const run: Run = {
      event,
      detail,
      context,
      audit: [],
      reason: `${event.detailType} ${detail.data.reasonCode} event=${event.id}`,
      origin: {
        worker: 'compensate',
        system: kind === 'dict' ? 'dict' : 'spi',
        sagaId: detail.sagaId,
        attempt: context.attempt,
        traceparent: detail.traceparent,
        ...(detail.endToEndId === undefined ? {} : { endToEndId: detail.endToEndId }),
        ...(detail.bizMsgIdr === undefined ? {} : { bizMsgIdr: detail.bizMsgIdr }),
        ...(detail.requestId === undefined ? {} : { requestId: detail.requestId }),
      },
    };
    if (!deps.triggers.includes(event.detailType)) return ignore(run, `${event.detailType} is not a compensation trigger`);
    // INBOX#: a message read from the BCB before verification; ECHO#: nothing to undo; IN#: a
    // payment to one of our customers, whose money moves only when the SPI settles it (our
    // answer refused or lost ends in the SPI's RJCT, InboundPaymentRejected).
    if (kind === undefined || kind === 'echo' || kind === 'inbound' || kind === 'query') return ignore(run, `a ${detail.sagaId.split('#')[0] ?? ''} saga has nothing to compensate`);
    // A bad signature on something the BCB sent us proves nothing about our own steps.
    if (event.detailType === 'SignatureInvalid' && detail.data.path !== 'outbound') return ignore(run, 'SignatureInvalid on the inbound path');
    for (let i = 0; i < MAX_DISPATCHES; i += 1) {
      const saga = await deps.sagas.get(detail.sagaId);
      if (saga === undefined) {
        // Refused before the saga was created: selo took no step, so there is nothing to undo.
        if (event.detailType === 'SigningFailed') return ignore(run, 'no saga: the request was refused before any step');
        throw new SagaNotFoundError(detail.sagaId);
      }
      const outcome = await dispatch(run, saga);
      if (outcome !== 'moved') return outcome;
    }
    throw withAuditRecords(new SagaContendedError(detail.sagaId, MAX_DISPATCHES), run.audit);
  };
}
