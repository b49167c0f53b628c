import { transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditSink } from '../../shared/audit/index.ts';
import { OUTCOME_QUERY_REQUESTED, outcomeQueryDetail } from '../../shared/bcb-query/index.ts';
import { classifyError } from '../../shared/errors/index.ts';
import { END_TO_END_ID, generateMessageId } from '../../shared/iso20022/index.ts';
import { IllegalTransitionError } from '../../shared/saga/index.ts';
import type { Saga, SagaStore } from '../../shared/saga/index.ts';
import { COMPENSATE_SOURCE, COMPENSATION_FACTS, inboundSagaId, newTraceparent } from '../../shared/events/index.ts';
import type { EventDetail } from '../../shared/events/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import type { EventPublisher } from '../../shared/runtime/index.ts';

/** The SPI settles or rejects within 40 s of `AccptncDtTm` (DESIGN §2). */
export const SPI_SETTLEMENT_LIMIT_MS = 40_000;

/** Options of {@link InDoubtSweeper}. */
export interface InDoubtSweeperOptions {
  sagas: Pick<SagaStore, 'pageByState' | 'transition'>;
  /** Where `PaymentInDoubt` goes (an EventBridgePublisher on selo's bus). */
  publisher: EventPublisher;
  /**
   * Where the TRANSMITTED → IN_DOUBT transition is audited (the Kinesis audit producer). The sink
   * buffers and retries on its own, so a slow audit stream never holds up the sweep.
   */
  audit: Pick<AuditSink, 'put'>;
  logger: Logger;
  /** Time between sweeps (`SELO_SWEEP_INTERVAL_MS`). @defaultValue 5000 */
  intervalMs?: number;
  /** Added to the SPI limit before a payment counts as in doubt (`SELO_IN_DOUBT_MARGIN_MS`). @defaultValue 20000 */
  marginMs?: number;
  /** The SPI's own limit. @defaultValue {@link SPI_SETTLEMENT_LIMIT_MS} */
  settlementLimitMs?: number;
  /** Sagas read per page. @defaultValue 100 */
  pageSize?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
  /**
   * Asks the BCB how each IN_DOUBT payment ended: publishes `OutcomeQueryRequested` (a camt.060
   * through sign and transmit; the camt.054 comes back through receive and verify, which resolves
   * the payment when the answer is definite; `shared/bcb-query`).
   * @defaultValue no query: IN_DOUBT payments wait for a person or a late pacs.002
   */
  /** Where each pass records how many sagas are IN_DOUBT (`SagasInDoubt`). @defaultValue metrics off (and not counted) */
  metrics?: Metrics;
  bcbQuery?: {
    /** Our ISPB: the camt.060's MsgId is `M` + it + 23 alphanumerics. */
    ispb: string;
    /** Least time between two questions about one payment (`SELO_IN_DOUBT_QUERY_INTERVAL_MS`). @defaultValue 60000 */
    intervalMs?: number;
    /** Mints the camt.060's MsgId. @defaultValue generateMessageId */
    messageId?: (ispb: string) => string;
  };
}

/** What one sweep did. */
export interface SweepResult {
  /** Payments moved to IN_DOUBT (and announced) by this sweep. */
  inDoubt: string[];
  /** PaymentInDoubt events still to publish (the bus refused them); retried on the next sweep. */
  unpublished: number;
  /** IN_DOUBT payments asked about in this sweep (`OutcomeQueryRequested` accepted by the bus). */
  asked: string[];
}

/**
 * Whether the BCB can be asked about this IN_DOUBT saga with a camt.060 for one EndToEndId: our
 * payments, and payments to our customers (`IN#<EndToEndId>`; not a return, `IN#<RtrId>`).
 */
function askable(saga: Saga): boolean {
  if (saga.kind === 'payment') return true;
  return saga.kind === 'inbound' && saga.endToEndId !== undefined && saga.sagaId === inboundSagaId(saga.endToEndId) && END_TO_END_ID.test(saga.endToEndId);
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`InDoubtSweeperOptions.${name} must be an integer ≥ ${min}, got ${String(value)}`);
  return value;
}

/**
 * Finds payments TRANSMITTED with no outcome after the SPI limit (40 s) plus a margin, moves each
 * to IN_DOUBT (a conditional write, key `in-doubt`) and publishes `PaymentInDoubt` for operations.
 * Nothing is reversed: money safety beats liveness (DESIGN §1). A late ACSC still settles an
 * IN_DOUBT payment and a late RJCT still rejects (and then compensates) it — the table allows both.
 *
 * Payments to our customers (`IN#`) too: our pacs.002 answer was accepted (201) and the SPI's
 * final pacs.002 (ACCC or RJCT) never came. Core banking credits on ACCC only, so without this the
 * customer would wait for a credit nobody raised; the SPI may well have settled. Operations close it
 * (`selo saga resolve`: `InboundPaymentSettled` or `InboundPaymentRejected`); a late pacs.002 still
 * does, and so does the BCB's answer to the query below (a camt.054 entry BOOK CRDT settles it).
 *
 * The age is measured from the TRANSMITTED transition, not from `AccptncDtTm` (which the saga does
 * not hold): the 201 comes after acceptance, so this never calls a payment in doubt early.
 * A long-lived component (HOUSE_STYLE 7): `start()` schedules sweeps that never overlap,
 * `close()` stops them and waits for the one running.
 */
export class InDoubtSweeper {
  readonly #options: InDoubtSweeperOptions;
  readonly #intervalMs: number;
  readonly #thresholdMs: number;
  readonly #pageSize: number;
  readonly #now: () => Date;
  /** Moved to IN_DOUBT but not yet announced: the bus refused; retried first on every sweep. */
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  /** When each IN_DOUBT payment was last asked about (ms), so one is asked at most every interval. */
  readonly #asked = new Map<string, number>();

  constructor(options: InDoubtSweeperOptions) {
    this.#intervalMs = positiveInteger('intervalMs', options.intervalMs ?? 5_000, 1);
    this.#thresholdMs = positiveInteger('settlementLimitMs', options.settlementLimitMs ?? SPI_SETTLEMENT_LIMIT_MS, 0) + positiveInteger('marginMs', options.marginMs ?? 20_000, 0);
    this.#pageSize = positiveInteger('pageSize', options.pageSize ?? 100, 1);
    this.#now = options.now ?? (() => new Date());
    this.#options = options;
  }

  /** Starts sweeping every `intervalMs` (the first sweep after one interval). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#schedule();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#running = this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'in-doubt sweep failed; trying again next interval'))
        .finally(() => {
          this.#running = undefined;
          if (!this.#closed) this.#schedule();
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * One sweep: every payment TRANSMITTED before now − (limit + margin) becomes IN_DOUBT with
   * `PaymentInDoubt`. Sagas that moved on meanwhile (settled, rejected) are left alone.
   */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { inDoubt: [], unpublished: 0, asked: [] };
    const cutoff = new Date(this.#now().getTime() - this.#thresholdMs);
    let cursor: string | undefined;
    do {
      const page = await this.#options.sagas.pageByState('TRANSMITTED', { updatedBefore: cutoff, limit: this.#pageSize, ...(cursor === undefined ? {} : { cursor }) });
      cursor = page.cursor;
      for (const saga of page.sagas) {
        if (this.#closed) break;
        const marked = await this.#markInDoubt(saga, cutoff);
        if (marked === 'in-doubt') result.inDoubt.push(saga.sagaId);
        if (marked === 'unpublished') result.unpublished += 1;
      }
    } while (cursor !== undefined && !this.#closed);
    // One walk of the IN_DOUBT sagas a sweep, for the BCB query and the metric alike.
    if (this.#options.bcbQuery === undefined && this.#options.metrics === undefined) return result;
    const inDoubt = await this.#walkInDoubt(this.#options.bcbQuery, result);
    if (this.#options.metrics !== undefined && !this.#closed) this.#options.metrics.observe('SagasInDoubt', {}, inDoubt);
    return result;
  }

  /**
   * Walks the IN_DOUBT sagas once and returns how many there are; with `bcbQuery`, asks the BCB
   * about every IN_DOUBT payment not asked within the interval: publishes one
   * `OutcomeQueryRequested` per payment (shared/bcb-query), which the sign worker turns into a
   * signed camt.060, the transmit worker POSTs to ICOM, and whose camt.054 the verify worker
   * matches and acts on (a definite settlement resolves the payment through `resolveSaga`; nothing
   * else does: a rejection is never inferred). Nothing is decided here.
   */
  async #walkInDoubt(bcbQuery: InDoubtSweeperOptions['bcbQuery'], result: SweepResult): Promise<number> {
    const intervalMs = bcbQuery?.intervalMs ?? 60_000;
    const now = this.#now().getTime();
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.#options.sagas.pageByState('IN_DOUBT', { limit: this.#pageSize, ...(cursor === undefined ? {} : { cursor }) });
      cursor = page.cursor;
      for (const saga of page.sagas) {
        if (this.#closed) return seen.size;
        seen.add(saga.sagaId);
        if (bcbQuery === undefined || saga.endToEndId === undefined || !askable(saga)) continue;
        const last = this.#asked.get(saga.sagaId);
        if (last !== undefined && now - last < intervalMs) continue;
        this.#asked.set(saga.sagaId, now);
        // Ours: the amount the reversal would release; to our customer: the amount of the pacs.008.
        const amount = saga.kind === 'inbound' ? saga.facts.amount : saga.compensations.map((c) => c.params.amount).find((a): a is string => typeof a === 'string');
        const msgId = (bcbQuery.messageId ?? generateMessageId)(bcbQuery.ispb);
        const detail = outcomeQueryDetail({ sagaId: saga.sagaId, endToEndId: saga.endToEndId, ...(amount === undefined ? {} : { amount }) }, msgId, this.#now());
        try {
          await this.#options.publisher.publish([{ detailType: OUTCOME_QUERY_REQUESTED, source: COMPENSATE_SOURCE, detail }]);
          result.asked.push(saga.sagaId);
        } catch (error) {
          // Asked again next sweep, not next interval.
          this.#asked.delete(saga.sagaId);
          this.#options.logger.warn({ err: error, sagaId: saga.sagaId, code: classifyError(error).code }, 'could not ask the BCB about an in-doubt payment; asked again next sweep');
        }
      }
    } while (cursor !== undefined && !this.#closed);
    for (const sagaId of this.#asked.keys()) if (!seen.has(sagaId)) this.#asked.delete(sagaId);
    return seen.size;
  }

  /**
   * Announces first, then writes IN_DOUBT: the saga stays TRANSMITTED (and is swept again) until
   * `PaymentInDoubt` was accepted, so a refused publication or a crash can repeat the alert but
   * never lose it. A payment settled in between gets an alert its settlement answers.
   */
  async #markInDoubt(saga: Saga, cutoff: Date): Promise<'in-doubt' | 'unpublished' | 'skipped'> {
    if (saga.kind !== 'payment' && saga.kind !== 'inbound') return 'skipped';
    const transmitted = saga.history.findLast((t) => t.to === 'TRANSMITTED');
    if (transmitted === undefined || Date.parse(transmitted.at) >= cutoff.getTime()) return 'skipped';
    const reason = `no outcome ${this.#thresholdMs} ms after TRANSMITTED at ${transmitted.at}`;
    const detail: EventDetail<unknown> = {
      version: 1,
      sagaId: saga.sagaId,
      ...(saga.endToEndId === undefined ? {} : { endToEndId: saga.endToEndId }),
      ...(saga.bizMsgIdr === undefined ? {} : { bizMsgIdr: saga.bizMsgIdr }),
      attempt: 1,
      traceparent: newTraceparent(),
      // For a payment to our customer, what we answered (ACSP, RJCT AC03…): operations' first question.
      data: { channel: 'spi', reason, transmittedAt: transmitted.at, limitMs: this.#thresholdMs, ...(saga.kind === 'inbound' && saga.facts.answer !== undefined ? { answer: saga.facts.answer } : {}) },
    };
    try {
      await this.#options.publisher.publish([{ detailType: COMPENSATION_FACTS.inDoubt, source: COMPENSATE_SOURCE, detail }]);
    } catch (error) {
      this.#options.logger.warn({ err: error, sagaId: saga.sagaId }, 'could not publish PaymentInDoubt; the payment stays TRANSMITTED and is swept again');
      return 'unpublished';
    }
    try {
      const written = await this.#options.sagas.transition({ sagaId: saga.sagaId, to: 'IN_DOUBT', from: ['TRANSMITTED'], reason, attempt: 1, idempotencyKey: 'in-doubt', current: saga });
      if (written.status === 'already-applied') return 'skipped';
    } catch (error) {
      // Settled or rejected since the index was read: its outcome stands.
      if (error instanceof IllegalTransitionError) return 'skipped';
      throw error;
    }
    this.#options.logger.warn({ sagaId: saga.sagaId, endToEndId: saga.endToEndId, transmittedAt: transmitted.at }, saga.kind === 'inbound' ? 'payment to our customer in doubt (no final pacs.002 after our answer); raised to operations, nothing credited' : 'payment in doubt; raised to operations, nothing reversed');
    const record = transitionAuditRecord(
      { worker: 'compensate', system: 'spi', sagaId: saga.sagaId, endToEndId: saga.endToEndId, bizMsgIdr: saga.bizMsgIdr, traceparent: detail.traceparent, attempt: 1 },
      { from: 'TRANSMITTED', to: 'IN_DOUBT', reason },
      this.#now(),
    );
    // Not awaited: the sink keeps the record until the stream accepts it (the saga's own history holds the transition regardless).
    this.#options.audit.put([record]).catch((error: unknown) => this.#options.logger.error({ err: error, sagaId: saga.sagaId }, 'the IN_DOUBT transition could not be audited (the audit sink closed first)'));
    return 'in-doubt';
  }

  /** Stops sweeping and waits for a sweep in progress; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
