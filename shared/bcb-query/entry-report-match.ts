import { PermanentError } from '../errors/index.ts';
import { isRefusal } from '../events/index.ts';
import { IllegalTransitionError, ResolutionError, sagaKindOf } from '../saga/index.ts';
import type { BizMsgIndex, ResolutionResult, ResolveSagaInput, Saga, SagaState, SagaStore } from '../saga/index.ts';
import { judgeEntryReport } from './account-report.ts';
import type { EntryReport, EntryVerdict } from './account-report.ts';

/** What {@link applyEntryReport} needs (the verify worker's clients). */
export interface EntryReportDeps {
  /** Our ISPB: the account the answer must be about. */
  readonly ispb: string;
  readonly sagas: Pick<SagaStore, 'get' | 'transition' | 'recordFacts'>;
  /** MsgId of our camt.060 → its `QUERY#` saga (written by the sign worker before it was sent). */
  readonly index: Pick<BizMsgIndex, 'sagaOfMessage'>;
  /** `resolveSaga` (shared/saga/resolve-saga.ts) with the worker's saga store, bus and audit stream. */
  readonly resolve: (input: ResolveSagaInput) => Promise<ResolutionResult>;
  /** Clock. @defaultValue () => new Date() */
  readonly now?: () => Date;
}

/** A camt.054 that answers no question of ours about an in-doubt payment: quarantined, never acted on. */
export class EntryReportUnmatchedError extends PermanentError {
  constructor(message: string, details: Record<string, unknown>) {
    super('ENTRY_REPORT_UNMATCHED', message, { details });
  }
}

/** What a matched answer did. */
export interface EntryReportApplied {
  /** `resolved`: the payment was settled now, or already by this answer; `unresolved`: the answer proves nothing, the payment stays IN_DOUBT; `contradicted`: it ended otherwise meanwhile, nothing done. */
  readonly status: 'resolved' | 'unresolved' | 'contradicted';
  readonly querySagaId: string;
  readonly paymentSagaId: string;
  readonly endToEndId: string;
  readonly verdict: EntryVerdict;
  /** The query saga's own transition, when this delivery wrote it (for the audit trail). */
  readonly queryTransition?: { from: SagaState; to: SagaState; reason: string };
  /** The resolution's result, when the answer was definite. */
  readonly resolution?: ResolutionResult;
}

/** States of a query saga in which its answer is awaited (a transmission given up on may still have arrived). */
const AWAITING: readonly SagaState[] = ['TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT', 'FAILED'];
const ANSWERED_KEY = 'answered';

function sourceMark(resourceId: string): string {
  return `[source ${resourceId}]`;
}

/**
 * Matches a verified camt.054 from the SPI to the question it answers and acts on it, exactly once.
 *
 * The answer names our camt.060 in `Ntfctn/Id` (its MsgId; bacen/pix-perguntas-e-respostas #52:
 * `Ntfctn/Id` M1337… answering the participant's query); the sign worker indexed that MsgId to the
 * `QUERY#` saga, which names the in-doubt payment. Not ours, not a query, or a payment no longer
 * IN_DOUBT: {@link EntryReportUnmatchedError} (the caller quarantines it). Otherwise the query saga
 * moves to COMPLETED (key `answered`, the answer's `PI-ResourceId` as its source, so a redelivery
 * of the same resource is recognised and a second, different answer is refused), then:
 *
 * - settled (`judgeEntryReport`: BOOK, DBIT — CRDT for a payment to our customer, `IN#` —, our
 *   amount) → `resolve` settles the payment with the answer as evidence, `by: 'bcb-query'`
 *   (IN_DOUBT → SETTLED and `PaymentSettled`, or `InboundPaymentSettled`, once: the resolution's
 *   conditional write shares the key `settled` with a late pacs.002 ACSC or ACCC);
 * - anything else → the payment stays IN_DOUBT, the answer is kept in its facts (`bcbQuery`) for the
 *   person who decides. A rejection is never inferred from the absence of a booking (docs/operations.md).
 */
export async function applyEntryReport(deps: EntryReportDeps, report: EntryReport, answer: { bizMsgIdr: string; resourceId: string }): Promise<EntryReportApplied> {
  const msgId = report.notificationId;
  if (msgId === undefined) throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr} names no query (no Ntfctn/Id)`, { bizMsgIdr: answer.bizMsgIdr });
  const querySagaId = await deps.index.sagaOfMessage(msgId);
  if (querySagaId === undefined || sagaKindOf(querySagaId) !== 'query') {
    throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr} answers ${msgId}, which is no camt.060 of ours`, { bizMsgIdr: answer.bizMsgIdr, msgId, sagaId: querySagaId });
  }
  let query = await deps.sagas.get(querySagaId);
  const paymentSagaId = query?.facts.paymentSagaId;
  const endToEndId = query?.endToEndId ?? query?.facts.endToEndId;
  if (query === undefined || paymentSagaId === undefined || endToEndId === undefined) {
    throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr}: the query ${querySagaId} is not on record`, { bizMsgIdr: answer.bizMsgIdr, sagaId: querySagaId });
  }
  const payment = await deps.sagas.get(paymentSagaId);
  if (payment === undefined) throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr}: payment ${paymentSagaId} is not on record`, { bizMsgIdr: answer.bizMsgIdr, sagaId: paymentSagaId });
  const amount = query.facts.amount;
  // Our payment debited our account; a payment to our customer credited it.
  const inbound = sagaKindOf(paymentSagaId) === 'inbound';
  const judged = judgeEntryReport(report, { ispb: deps.ispb, msgId, endToEndId, creditDebit: inbound ? 'CRDT' : 'DBIT', ...(amount === undefined ? {} : { amount }) }, answer.bizMsgIdr);
  // A credit for a payment we refused (answered RJCT) is a contradiction for a person, never a credit to make.
  const refused = inbound && isRefusal(payment.facts.answer);
  const verdict: EntryVerdict = refused && judged.outcome === 'settled' ? { outcome: 'unknown', evidence: `${judged.evidence}; we answered ${payment.facts.answer ?? 'RJCT'}: a person decides` } : judged;
  const base = { querySagaId, paymentSagaId, endToEndId, verdict };

  let queryTransition: EntryReportApplied['queryTransition'];
  const answered = (saga: Saga): boolean => {
    const entry = saga.history.find((t) => t.key === ANSWERED_KEY);
    if (entry === undefined) return false;
    if (entry.reason.endsWith(sourceMark(answer.resourceId))) return true;
    throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr}: ${querySagaId} was already answered (${entry.reason})`, { bizMsgIdr: answer.bizMsgIdr, sagaId: querySagaId });
  };
  if (!answered(query)) {
    if (payment.state !== 'IN_DOUBT') {
      throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr}: payment ${paymentSagaId} is ${payment.state}, not IN_DOUBT; the answer resolves nothing`, { bizMsgIdr: answer.bizMsgIdr, sagaId: paymentSagaId, state: payment.state });
    }
    if (!AWAITING.includes(query.state)) {
      throw new EntryReportUnmatchedError(`camt.054 ${answer.bizMsgIdr}: ${querySagaId} is ${query.state}, not awaiting an answer`, { bizMsgIdr: answer.bizMsgIdr, sagaId: querySagaId, state: query.state });
    }
    const reason = `camt.054 ${answer.bizMsgIdr} ${verdict.outcome} ${sourceMark(answer.resourceId)}`;
    try {
      const written = await deps.sagas.transition({ sagaId: querySagaId, to: 'COMPLETED', from: AWAITING, reason, attempt: 1, idempotencyKey: ANSWERED_KEY, current: query });
      if (written.status === 'applied') queryTransition = { from: query.state, to: 'COMPLETED', reason };
      else answered(written.saga);
      query = written.saga;
    } catch (error) {
      if (!(error instanceof IllegalTransitionError)) throw error;
      // Another delivery answered it meanwhile: its source decides (the same resource goes on).
      const current = await deps.sagas.get(querySagaId);
      if (current === undefined || !answered(current)) throw error;
    }
  }

  if (verdict.outcome !== 'settled') {
    const current = await deps.sagas.get(paymentSagaId);
    const at = (deps.now ?? (() => new Date()))().toISOString();
    if (current?.state === 'IN_DOUBT') await deps.sagas.recordFacts({ sagaId: paymentSagaId, facts: { bcbQuery: `${at} ${verdict.evidence}`.slice(0, 500) }, expectedVersion: current.version });
    return { ...base, status: 'unresolved', ...(queryTransition === undefined ? {} : { queryTransition }) };
  }
  try {
    const resolution = await deps.resolve({ sagaId: paymentSagaId, outcome: 'settled', evidence: verdict.evidence.slice(0, 500), operator: 'selo.verify', by: 'bcb-query' });
    return { ...base, status: 'resolved', resolution, ...(queryTransition === undefined ? {} : { queryTransition }) };
  } catch (error) {
    // Ended the other way meanwhile (a late pacs.002 RJCT, an operator): that outcome stands.
    if (error instanceof ResolutionError) return { ...base, status: 'contradicted', ...(queryTransition === undefined ? {} : { queryTransition }) };
    throw error;
  }
}
