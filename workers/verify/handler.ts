import { createHash } from 'node:crypto';
import { exchangeAuditRecord, transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditOrigin, AuditRecord } from '../../shared/audit/index.ts';
import { CAMT_054, EntryReportUnmatchedError, applyEntryReport, readEntryReport } from '../../shared/bcb-query/index.ts';
import type { EntryReport, EntryReportDeps } from '../../shared/bcb-query/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckReference, ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { DICT_OPERATIONS, parseDictProblem } from '../../shared/dict/index.ts';
import { PermanentError, SeloError, TransientError, classifyError } from '../../shared/errors/index.ts';
import { EVENT_DETAIL_VERSION, INBOUND_EVENTS, REFUSAL_PREFIX, VERIFIED_EVENTS, childTraceparent, copySource, echoSagaId, inboundOutcomeFacts, inboundSagaId, paymentSagaId } from '../../shared/events/index.ts';
import type {
  BcbMessageReceivedData,
  CorrelationIds,
  DictOperationFailedData,
  DictResponseVerifiedData,
  EchoAnsweredData,
  EchoReceivedData,
  EventDetail,
  InboundOutcomeData,
  InboundPaymentDecisionRequestedData,
  InboundPaymentRejectedData,
  InboundPaymentSettledData,
  MessageRejectedData,
  OutcomeConflictData,
  PaymentRejectedData,
  InboundReturnDecisionRequestedData,
  PaymentSettledData,
  SignatureInvalidData,
  UnsupportedMessageReceivedData,
} from '../../shared/events/index.ts';
import { SchemaValidationError, UnsupportedSpiMessageError, endToEndIdOfPaymentMessageId, parseAppHdr, parseSpiMessage, spiSchemaOfNamespace, validateSpiMessage } from '../../shared/iso20022/index.ts';
import type { Admi002, CreditTransfer, Pacs002, PaymentReturn, Pibr001, Pibr002, SpiMessage, SpiSchema, TransactionStatus } from '../../shared/iso20022/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { EventToPublish, Handler, HandlerContext, Outcome } from '../../shared/runtime/index.ts';
import { SagaContendedError, isLegalTransition, sagaKindOf } from '../../shared/saga/index.ts';
import type { BizMsgIndex, DedupeStore, FactPrefix, Saga, SagaState, SagaStore } from '../../shared/saga/index.ts';
import { verifyDict, verifySpi } from '../../shared/xmldsig/index.ts';
import type { TrustStore } from '../../shared/xmldsig/index.ts';
import { quarantineKey } from './quarantine.ts';
import type { QuarantinePort } from './quarantine.ts';
import type { DictResponseReceivedData, VerifyInput } from './verify-input.ts';

/** Dependencies of the verify handler, passed in by `main` (HOUSE_STYLE 6). */
export interface VerifyHandlerDeps {
  /** Our ISPB: every SPI message must be addressed to it (`AppHdr/To`). */
  ispb: string;
  /** The BCB's ISPB: every SPI message must come from it (`AppHdr/Fr`). */
  bcbIspb: string;
  /** The BCB signing certificates, each bound to {@link VerifyHandlerDeps.bcbIspb}. */
  trustStore: TrustStore;
  sagas: Pick<SagaStore, 'get' | 'transition' | 'applyUnread' | 'create'>;
  /** BizMsgIdr → saga and echo Data → saga, written by the sign worker. */
  index: Pick<BizMsgIndex, 'sagaOfMessage' | 'sagaOfEcho'>;
  /**
   * Seen-before markers of the SPI messages that reach no saga (echoes, quarantined and
   * unsupported messages), claimed per `PI-ResourceId` by the first copy of it
   * (`BcbMessageReceivedData.copy`): a stream duplicate forwarded as another copy is recorded only.
   */
  markers: Pick<DedupeStore, 'claimAs'>;
  /** Lifetime of a marker, seconds. @defaultValue 86400 */
  markerTtlSeconds?: number;
  /** Reads claim-checked payloads; keeps verified DICT bodies too large for an event. */
  claimCheck: ClaimCheckStore;
  quarantine: QuarantinePort;
  /** Largest XML accepted, in bytes (larger is quarantined as `XML_TOO_LARGE`). @defaultValue 4 MiB (the parser's limit) */
  maxXmlBytes?: number;
  /**
   * How long after a pacs.008's `AccptncDtTm` (or its receipt, when earlier) core banking's
   * decision is still answered; a later one is `InboundDecisionLate`, not sent. The SPI's
   * validation limit is 34 s (IN BCB 5/2020, art. 1); the default leaves 2 s for signing and
   * sending the answer.
   * @defaultValue 32000
   */
  inboundDecisionLimitMs?: number;
  /**
   * Checks a verified SPI message against its official XSD, for the messages selo has one of
   * (pacs.008 1.16, pacs.002 1.17); throws a `SchemaValidationError` for one that does not
   * conform. `main` compiles the schemas before the first message.
   * @defaultValue validateSpiMessage
   */
  validateSpi?: (xml: string, schema: SpiSchema) => Promise<void>;
  /**
   * The SPI's answers to our questions about in-doubt payments (camt.054, issue 17): matched and
   * acted on by shared/bcb-query's `applyEntryReport` with these deps (their `resolve` is
   * `resolveSaga` with this worker's saga table, bus and audit stream).
   * @defaultValue not handled: a camt.054 is kept as `UnsupportedMessageReceived`
   */
  entryReports?: Omit<EntryReportDeps, 'ispb'>;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** Default of {@link VerifyHandlerDeps.inboundDecisionLimitMs}. */
export const DEFAULT_INBOUND_DECISION_LIMIT_MS = 32_000;

/** A message verified as far as the signature, refused by this worker's own rules. */
export class VerificationRefusedError extends PermanentError {
  constructor(code: 'BCB_SIGNER_NOT_BCB' | 'SPI_RECIPIENT_MISMATCH', message: string) {
    super(code, message);
  }
}

/** The schema check itself failed (libxml2 did not load): not the message's fault, so retried, never quarantined. */
export class SchemaCheckUnavailableError extends TransientError {
  constructor(cause: unknown) {
    super('ISO20022_SCHEMA_CHECK_UNAVAILABLE', 'the XSD check of a verified SPI message could not run', { cause });
  }
}

/** Lets a `SchemaValidationError` through; anything else the check throws becomes a {@link SchemaCheckUnavailableError}. */
function schemaRefusalOnly(error: unknown): never {
  if (error instanceof SchemaValidationError) throw error;
  throw new SchemaCheckUnavailableError(error);
}

/** What became of one verified fact; written in the audit record and the log. */
type Disposition =
  /** The saga moved (or a fact without saga was reported first): the fact is published. */
  | 'applied'
  /** The same message again: the same fact is published again, nothing changes. */
  | 'redelivered'
  /** Another message already reported this outcome: recorded, not re-acted. */
  | 'duplicate'
  /** The BCB refusing a duplicate of our own message (the original decides): recorded only. */
  | 'duplicate-notice'
  /** A refusal that may concern a resent copy, not the original: raised to operations, not acted on. */
  | 'ambiguous'
  /** No saga of ours: recorded only. */
  | 'unknown-saga'
  /** A second, different outcome for a final saga: OUTCOME_CONFLICT, for operations. */
  | 'conflict'
  /** The saga is in a state this outcome cannot move it from: recorded only. */
  | 'not-applicable'
  /** Addressed to another participant's customer: recorded only. */
  | 'not-for-us'
  /** A message type or status selo does not act on: recorded only. */
  | 'unhandled';

interface Step {
  disposition: Disposition;
  events: EventToPublish[];
  audit: AuditRecord[];
  sagaId?: string;
  ids?: CorrelationIds;
}

/** What one delivery is about: the cause, for new events' details, and where it came from. */
interface Scope {
  cause: EventDetail<unknown>;
  attempt: number;
  channel: 'spi' | 'dict';
  logger: Logger;
}

/** An SPI message's delivery: what identifies it in its saga (`copySource`). */
interface SpiScope extends Scope {
  source: string;
  /** The copy's id (`BcbMessageReceivedData.copy`), when the receive worker drew one. */
  copy: string | undefined;
}

/** A final outcome the message reports about a saga of ours. */
interface SagaOutcome {
  sagaId: string;
  to: SagaState;
  /** The outcome's idempotency key: one per outcome, never per message (a duplicate must not apply twice). */
  key: string;
  /** What identifies the reporting message (`copySource` of an SPI delivery, or the DICT answer's digest). */
  source: string;
  reason: string;
  /** States in which a saga of the same family already has the opposite outcome. */
  conflictsWith: readonly SagaState[];
  /** States in which the saga awaits this outcome. @defaultValue {@link AWAITING} */
  awaiting?: readonly SagaState[];
  /** The fact to publish, built from the saga as it is. */
  fact: (saga: Saga) => EventToPublish;
  resourceId?: string;
  /**
   * Checked on every read of the saga, before anything else is decided (a write that lost a race
   * reads again, and the saga may have moved, e.g. into IN_DOUBT): a step to return instead, or
   * undefined to go on. May throw to be retried later.
   */
  hold?: (saga: Saga) => Step | undefined;
  /**
   * A fact that contradicts this outcome whatever the saga's state, when it begins with `prefix`
   * (an ACCC for a payment to our customer that we answered RJCT: `answer` `RJCT …`): then
   * OUTCOME_CONFLICT, for operations. The unread write is conditioned on it too.
   */
  contradictedBy?: FactPrefix;
}

/** States in which a message to the BCB awaits its outcome. */
const AWAITING: readonly SagaState[] = ['TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'];

/** The saga's fact that contradicts `outcome` (see {@link SagaOutcome.contradictedBy}), if it has one. */
function contradictingFact(outcome: SagaOutcome, saga: Saga): string | undefined {
  const rule = outcome.contradictedBy;
  const fact = rule === undefined ? undefined : saga.facts[rule.name];
  return rule !== undefined && fact?.startsWith(rule.prefix) === true ? fact : undefined;
}
/** Payment states that already say it failed: a settlement now conflicts. */
const FAILED_STATES: readonly SagaState[] = ['REJECTED', 'FAILED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];
/** An admi.002 that may be about a resent copy of our message: an alert for operations. */
const AMBIGUOUS_REJECTION = VERIFIED_EVENTS.rejectionAmbiguous;
/**
 * pacs.002 RJCT codes that answer a duplicate of our instruction, not the original: the SPI's
 * refusal of an EndToEndId (or RtrId) it has seen before. The original's own answer decides the
 * payment; acting on these would compensate a payment that settles. Codes come from the pacs.002
 * 1.17 XSD's `ExternalStatusReason1Code` list (shared/spec/spi-5.13.1/xsd/pacs.002.spi.1.17.xsd);
 * the `AM05` matched before is not in it, so the SPI cannot send it. No BCB text seen names the
 * SPI's code for a duplicate: `DU03` (DuplicateTransaction) is assumed, as the simulator sends
 * (infra/bcb-simulator DUPLICATE_INSTRUCTION_REASON). `DUPL` is left out on purpose: in the
 * catalogue's domain table it is the receiver's rejection of a payment duplicating another by
 * IdConciliacaoRecebedor, a definite rejection of this payment.
 *
 * There is no admi.002 counterpart: the SPI is idempotent on a resent message (bacen/
 * pix-perguntas-e-respostas #442, #180) and an admi.002's `RjctgPtyRsn` is free text, so no code
 * can be matched; an admi.002 about a message we sent more than once is held for operations by
 * `onAdmi002`'s `hold`, whatever its text.
 */
const DUPLICATE_NOTICE_RJCT_CODES: ReadonlySet<string> = new Set(['DU03']);
const SAGA_KEY = /^[A-Za-z0-9-]{1,64}$/;
const SOURCE_MARK = / \[source (\S+)\]$/;
/** Audit bodies above this are replaced by their size and digest (a Kinesis record holds 1 MiB). */
const AUDIT_BODY_LIMIT = 256 * 1024;
const DEFAULT_MAX_XML_BYTES = 4 * 1024 * 1024;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The reason of a pacs.002 RJCT as the events carry it. `StsRsnInf/Rsn` is optional in the
 * pacs.002 1.17 XSD; a RJCT without a code stays a rejection and its event carries no code. A
 * stand-in code would claim a reason the BCB did not give, and `NARR`, used before, is not in the
 * XSD's `ExternalStatusReason1Code` list.
 */
function rejectionReason(status: TransactionStatus): { code?: string; additionalInformation?: string } {
  return {
    ...(status.reason?.code === undefined ? {} : { code: status.reason.code }),
    ...(status.reason?.additionalInformation === undefined ? {} : { additionalInformation: status.reason.additionalInformation }),
  };
}

function idsOf(saga: Saga | undefined): CorrelationIds {
  if (saga === undefined) return {};
  return {
    ...(saga.endToEndId === undefined ? {} : { endToEndId: saga.endToEndId }),
    ...(saga.bizMsgIdr === undefined ? {} : { bizMsgIdr: saga.bizMsgIdr }),
    ...(saga.requestId === undefined ? {} : { requestId: saga.requestId }),
  };
}

function sourceOf(reason: string): string | undefined {
  return SOURCE_MARK.exec(reason)?.[1];
}

/**
 * Whether the source a saga recorded is this delivery's (`copySource`): the same copy, or the
 * bare `PI-ResourceId` a verify task before copy ids recorded while handling this very envelope
 * (a rolling deploy: its publication may not have completed, so the fact is published again, at
 * least once, rather than lost). Any other source is another delivery: a duplicate.
 */
function sameDelivery(recorded: string | undefined, source: string): boolean {
  return recorded !== undefined && (recorded === source || source.startsWith(`${recorded}/`));
}

function auditBody(raw: string, keptAt?: ClaimCheckReference): string {
  if (raw.length <= AUDIT_BODY_LIMIT) return raw;
  return `[${Buffer.byteLength(raw, 'utf8')} bytes, sha256=${sha256(raw)}${keptAt === undefined ? '' : `, kept in s3://${keptAt.bucket}/${keptAt.key}`}]`;
}

function event(scope: Scope, detailType: string, sagaId: string, ids: CorrelationIds, data: unknown): EventToPublish {
  const detail: EventDetail<unknown> = { version: EVENT_DETAIL_VERSION, sagaId, attempt: scope.attempt, traceparent: childTraceparent(scope.cause.traceparent), ...ids, data };
  return { detailType, detail };
}

function origin(scope: Scope, sagaId: string, ids: CorrelationIds): AuditOrigin {
  return { worker: 'verify', system: scope.channel, sagaId, attempt: scope.attempt, traceparent: scope.cause.traceparent, ...ids };
}

/** How one verified message is audited: what was read, and how it was answered. */
interface Verification {
  requestDate: Date;
  method: string;
  path: string;
  statusCode: number;
  headers: Readonly<Record<string, string>>;
  receivedAt: Date;
}

/**
 * The audit record of one verified message (kind `response`), its disposition in the synthetic
 * header `selo-disposition`, and whether the BCB's signature verified.
 */
type VerificationRecord = (disposition: string, body: string, signatureValid: boolean) => AuditRecord;

function verificationRecord(scope: Scope, sagaId: string, ids: CorrelationIds, v: Verification): VerificationRecord {
  return (disposition, body, signatureValid) =>
    exchangeAuditRecord(origin(scope, sagaId, ids), {
      requestDate: v.requestDate,
      method: v.method,
      path: v.path,
      requestHeaders: {},
      requestBody: '',
      response: { statusCode: v.statusCode, headers: { ...v.headers, 'selo-disposition': disposition }, body, signatureValid, receivedAt: v.receivedAt },
    });
}

function recorded(disposition: Disposition, sagaId?: string, ids?: CorrelationIds): Step {
  return { disposition, events: [], audit: [], ...(sagaId === undefined ? {} : { sagaId }), ...(ids === undefined ? {} : { ids }) };
}

/**
 * The verify worker's handler. A `BcbMessageReceived` (SPI, from the ICOM stream) or a
 * `DictResponseReceived` (DICT answer) is verified against the BCB trust store before anything is
 * done with it: the signer must be the BCB and, for the SPI, `AppHdr/To` must be us and the
 * message must conform to its official XSD (when selo has it: pacs.008 1.16, pacs.002 1.17). What
 * fails (signature, signer, addressee, schema — `ISO20022_SCHEMA_INVALID` —, malformed or hostile
 * XML) is quarantined with its raw bytes and reported as `SignatureInvalid`, never acted on.
 *
 * What verifies is parsed and published as a fact, the saga advancing with conditional writes:
 * pacs.002 ACSC → `PaymentSettled`, RJCT → `PaymentRejected`, admi.002 → `MessageRejected`,
 * pacs.008 → `InboundPaymentDecisionRequested`, pacs.004 → `InboundReturnDecisionRequested`, pacs.002 ACCC/RJCT about
 * them → `InboundPaymentSettled`/`InboundPaymentRejected`, pibr.001 → `EchoReceived`, pibr.002 → `EchoAnswered`,
 * DICT 2xx → `DictResponseVerified`, 4xx → `DictOperationFailed`. Each outcome is keyed by itself,
 * not by the message: a redelivery publishes the same fact again, a duplicate from another
 * resource is recorded only, a different outcome for a final saga is an `OutcomeConflict`.
 */
export function createVerifyHandler(deps: VerifyHandlerDeps): Handler<VerifyInput> {
  const now = deps.now ?? (() => new Date());
  const parse = { maxBytes: deps.maxXmlBytes ?? DEFAULT_MAX_XML_BYTES };
  const decisionLimitMs = deps.inboundDecisionLimitMs ?? DEFAULT_INBOUND_DECISION_LIMIT_MS;
  const validateSpi = deps.validateSpi ?? validateSpiMessage;
  const markerTtl = deps.markerTtlSeconds ?? 86_400;
  if (!Number.isSafeInteger(markerTtl) || markerTtl < 1) throw new RangeError(`VerifyHandlerDeps.markerTtlSeconds must be a positive integer, got ${String(deps.markerTtlSeconds)}`);
  if (!Number.isSafeInteger(decisionLimitMs) || decisionLimitMs < 1) throw new RangeError(`VerifyHandlerDeps.inboundDecisionLimitMs must be a positive integer, got ${String(deps.inboundDecisionLimitMs)}`);

  /**
   * The common case, an outcome for a saga waiting in TRANSMITTED, written without reading the
   * saga: the store conditions the write on that state and on the outcome's key being absent
   * (no conflict key can be there either: TRANSMITTED is reached only from TRANSMITTING).
   * Undefined when the write did not apply, and the outcome is then decided from what is read.
   */
  async function applyToTransmitted(scope: Scope, outcome: SagaOutcome): Promise<Step | undefined> {
    if (outcome.hold !== undefined) return undefined;
    const written = await deps.sagas.applyUnread({
      sagaId: outcome.sagaId, to: outcome.to, from: ['TRANSMITTED'], reason: `${outcome.reason} [source ${outcome.source}]`, attempt: scope.attempt, idempotencyKey: outcome.key,
      ...(outcome.contradictedBy === undefined ? {} : { unlessFact: outcome.contradictedBy }),
    });
    return written === undefined ? undefined : appliedStep(scope, outcome, written, 'TRANSMITTED');
  }

  /** The step of an outcome applied to its saga from `from`: its fact and its transition's audit record. */
  function appliedStep(scope: Scope, outcome: SagaOutcome, saga: Saga, from: SagaState): Step {
    const ids = idsOf(saga);
    const audit = [transitionAuditRecord(origin(scope, outcome.sagaId, ids), { from, to: outcome.to, reason: outcome.reason })];
    return { disposition: 'applied', events: [outcome.fact(saga)], audit, sagaId: outcome.sagaId, ids };
  }

  /** Applies `outcome` to its saga once; see {@link Disposition}. */
  async function applyOutcome(scope: Scope, outcome: SagaOutcome): Promise<Step> {
    const applied = await applyToTransmitted(scope, outcome);
    if (applied !== undefined) return applied;
    const conflictKey = `conflict-${outcome.key}`;
    // Each pass reads the saga and decides; a write that lost a race decides again.
    for (let pass = 1; pass <= 3; pass += 1) {
      const saga = await deps.sagas.get(outcome.sagaId);
      if (saga === undefined) return recorded('unknown-saga', outcome.sagaId);
      const held = outcome.hold?.(saga);
      if (held !== undefined) return held;
      const ids = idsOf(saga);
      const done = saga.history.find((t) => t.key === outcome.key);
      if (done !== undefined) {
        if (!sameDelivery(sourceOf(done.reason), outcome.source)) return recorded('duplicate', outcome.sagaId, ids);
        return { disposition: 'redelivered', events: [outcome.fact(saga)], audit: [], sagaId: outcome.sagaId, ids };
      }
      const conflicted = saga.history.find((t) => t.key === conflictKey);
      if (conflicted !== undefined) {
        if (!sameDelivery(sourceOf(conflicted.reason), outcome.source)) return recorded('duplicate', outcome.sagaId, ids);
        return { disposition: 'redelivered', events: [conflictEvent(scope, outcome, saga, conflicted.from ?? saga.state)], audit: [], sagaId: outcome.sagaId, ids };
      }
      let to: SagaState;
      let key: string;
      let reason: string;
      const contradicted = contradictingFact(outcome, saga) !== undefined;
      if (!contradicted && (outcome.awaiting ?? AWAITING).includes(saga.state) && isLegalTransition(saga.kind, saga.state, outcome.to)) {
        to = outcome.to;
        key = outcome.key;
        reason = outcome.reason;
      } else if ((contradicted || outcome.conflictsWith.includes(saga.state)) && isLegalTransition(saga.kind, saga.state, 'OUTCOME_CONFLICT')) {
        to = 'OUTCOME_CONFLICT';
        key = conflictKey;
        reason = conflictReason(outcome, saga, saga.state);
      } else {
        scope.logger.warn({ sagaId: outcome.sagaId, state: saga.state, outcome: outcome.to }, 'verified outcome does not apply to the saga in its state: recorded only');
        return recorded('not-applicable', outcome.sagaId, ids);
      }
      try {
        const written = await deps.sagas.transition({ sagaId: outcome.sagaId, to, from: [saga.state], reason: `${reason} [source ${outcome.source}]`, attempt: scope.attempt, idempotencyKey: key, current: saga });
        if (written.status !== 'applied') continue;
      } catch (error) {
        if (classifyError(error).code === 'ILLEGAL_SAGA_TRANSITION') continue;
        throw error;
      }
      if (to === 'OUTCOME_CONFLICT') {
        scope.logger.warn({ sagaId: outcome.sagaId, state: saga.state, outcome: outcome.to }, 'conflicting outcome: saga OUTCOME_CONFLICT');
        const audit = [transitionAuditRecord(origin(scope, outcome.sagaId, ids), { from: saga.state, to, reason })];
        return { disposition: 'conflict', events: [conflictEvent(scope, outcome, saga, saga.state)], audit, sagaId: outcome.sagaId, ids };
      }
      return appliedStep(scope, outcome, saga, saga.state);
    }
    throw new SagaContendedError(outcome.sagaId, 3);
  }

  /** Why an outcome conflicts: the saga's state, or the fact that contradicts it (e.g. `we answered RJCT AC03`). */
  function conflictReason(outcome: SagaOutcome, saga: Saga, recordedState: SagaState): string {
    const fact = contradictingFact(outcome, saga);
    return fact !== undefined ? `${outcome.reason} for a payment we answered ${fact} (saga ${recordedState})` : `${outcome.reason} for a saga already ${recordedState}`;
  }

  function conflictEvent(scope: Scope, outcome: SagaOutcome, saga: Saga, recordedState: SagaState): EventToPublish {
    const data: OutcomeConflictData = {
      channel: scope.channel,
      reason: conflictReason(outcome, saga, recordedState),
      recordedState,
      receivedOutcome: outcome.to,
      ...(outcome.resourceId === undefined ? {} : { resourceId: outcome.resourceId }),
    };
    return event(scope, VERIFIED_EVENTS.outcomeConflict, outcome.sagaId, idsOf(saga), data);
  }

  async function onStatus(scope: SpiScope, message: Pacs002, status: TransactionStatus, resourceId: string): Promise<Step> {
    const instruction = status.originalInstructionId;
    if (!SAGA_KEY.test(instruction)) return recorded('unknown-saga');
    const sagaId = paymentSagaId(instruction);
    const base = { channel: 'spi' as const, endToEndId: status.originalEndToEndId, originalInstructionId: instruction, bizMsgIdr: message.appHdr.bizMsgIdr, resourceId };
    const settled = {
      ...(status.settlementDateTime === undefined ? {} : { settlementDateTime: status.settlementDateTime }),
      ...(status.interbankSettlementDate === undefined ? {} : { interbankSettlementDate: status.interbankSettlementDate }),
    };
    const original = (saga: Saga): { originalBizMsgIdr?: string } => (saga.bizMsgIdr === undefined ? {} : { originalBizMsgIdr: saga.bizMsgIdr });
    // ACCC tells the receiver (us) that a payment to our customer settled; an RJCT about an
    // instruction another participant issued (its ISPB in the id) is about a payment to us.
    if (status.status === 'ACCC' || (status.status === 'RJCT' && instruction.slice(1, 9) !== deps.ispb)) {
      return onInboundStatus(scope, message, status, resourceId);
    }
    if (status.status === 'ACSC') {
      return applyOutcome(scope, {
        sagaId, to: 'SETTLED', key: 'settled', source: scope.source, resourceId, conflictsWith: FAILED_STATES,
        reason: `pacs.002 ACSC ${message.appHdr.bizMsgIdr}`,
        fact: (saga) => event(scope, VERIFIED_EVENTS.paymentSettled, sagaId, { ...idsOf(saga), endToEndId: instruction }, { ...base, status: 'ACSC', ...original(saga), ...settled } satisfies PaymentSettledData),
      });
    }
    if (status.status === 'RJCT') {
      const reason = rejectionReason(status);
      if (reason.code !== undefined && DUPLICATE_NOTICE_RJCT_CODES.has(reason.code)) {
        scope.logger.warn({ sagaId, code: reason.code }, 'RJCT of a duplicate of our payment: the original decides, recorded only');
        return recorded('duplicate-notice', sagaId, { endToEndId: instruction });
      }
      return applyOutcome(scope, {
        sagaId, to: 'REJECTED', key: 'rejected', source: scope.source, resourceId, conflictsWith: ['SETTLED'],
        reason: `pacs.002 RJCT ${reason.code ?? '(no code)'} ${message.appHdr.bizMsgIdr}`,
        fact: (saga) => event(scope, VERIFIED_EVENTS.paymentRejected, sagaId, { ...idsOf(saga), endToEndId: instruction }, { ...base, status: 'RJCT', ...original(saga), reason } satisfies PaymentRejectedData),
      });
    }
    return recorded('unhandled', sagaId, { endToEndId: instruction });
  }

  /** The SPI's final word on a payment to one of our customers: ACCC settles it, RJCT rejects it. */
  async function onInboundStatus(scope: SpiScope, message: Pacs002, status: TransactionStatus, resourceId: string): Promise<Step> {
    const instruction = status.originalInstructionId;
    const sagaId = inboundSagaId(instruction);
    const bizMsgIdr = message.appHdr.bizMsgIdr;
    const common = (saga: Saga): InboundOutcomeData => ({
      channel: 'spi', endToEndId: status.originalEndToEndId, originalInstructionId: instruction, bizMsgIdr, resourceId, ...inboundOutcomeFacts(saga.facts),
    });
    const ids = (saga: Saga): CorrelationIds => ({ ...idsOf(saga), endToEndId: status.originalEndToEndId });
    if (status.status === 'ACCC') {
      return applyOutcome(scope, {
        sagaId, to: 'SETTLED', key: 'settled', source: scope.source, resourceId,
        // Settled although we never sent an ACSP (or sent an RJCT): operations must look.
        conflictsWith: ['RECEIVED', 'SIGNED', 'LATE', 'FAILED', 'REJECTED'],
        // We answered RJCT (the customer's account closed, blocked, a fraud suspicion…): an ACCC is
        // not a credit to make but a contradiction for a person, whatever state the saga is in.
        contradictedBy: { name: 'answer', prefix: REFUSAL_PREFIX },
        reason: `pacs.002 ACCC ${bizMsgIdr}`,
        fact: (saga) => {
          const data: InboundPaymentSettledData = {
            ...common(saga),
            ...(status.settlementDateTime === undefined ? {} : { settlementDateTime: status.settlementDateTime }),
            ...(status.interbankSettlementDate === undefined ? {} : { interbankSettlementDate: status.interbankSettlementDate }),
          };
          return event(scope, INBOUND_EVENTS.settled, sagaId, ids(saga), data);
        },
      });
    }
    const reason = rejectionReason(status);
    return applyOutcome(scope, {
      sagaId, to: 'REJECTED', key: 'rejected', source: scope.source, resourceId, conflictsWith: ['SETTLED'],
      // The SPI rejects (AB03) whether or not we answered, and whatever the answer's fate.
      awaiting: ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT', 'FAILED', 'LATE'],
      reason: `pacs.002 RJCT ${reason.code ?? '(no code)'} ${bizMsgIdr}`,
      fact: (saga) => {
        const data: InboundPaymentRejectedData = { ...common(saga), reason, ...(saga.facts.answer === undefined ? {} : { answer: saga.facts.answer }) };
        return event(scope, INBOUND_EVENTS.rejected, sagaId, ids(saga), data);
      },
    });
  }

  /**
   * The saga of a message we sent, from its BizMsgIdr: the pointer the sign worker wrote, or, for a
   * pacs.008 (no pointer: its BizMsgIdr derives from the EndToEndId, `paymentMessageId`), the
   * payment whose saga recorded exactly this BizMsgIdr.
   */
  async function sagaOfSentMessage(bizMsgIdr: string): Promise<string | undefined> {
    const pointed = await deps.index.sagaOfMessage(bizMsgIdr);
    if (pointed !== undefined) return pointed;
    const endToEndId = endToEndIdOfPaymentMessageId(bizMsgIdr);
    if (endToEndId === undefined || !endToEndId.startsWith(`E${deps.ispb}`)) return undefined;
    const saga = await deps.sagas.get(paymentSagaId(endToEndId));
    return saga?.bizMsgIdr === bizMsgIdr ? saga.sagaId : undefined;
  }

  async function onAdmi002(scope: SpiScope, message: Admi002, resourceId: string): Promise<Step> {
    const rejected = message.rejectedBizMsgIdr;
    const sagaId = await sagaOfSentMessage(rejected);
    if (sagaId === undefined) return recorded('unknown-saga');
    const kind = sagaKindOf(sagaId);
    const { reason } = message;
    // Our transmit resends the same bytes (same BizMsgIdr) after an attempt whose fate is unknown;
    // the BCB then refuses the copy while the original may settle. Whatever its code, an admi.002
    // for a message sent more than once (or in doubt) proves nothing: operations decide. Judged on
    // every read, so a saga the in-doubt sweeper moves meanwhile is never rejected.
    const hold = (saga: Saga): Step | undefined => {
      // Before the transmit worker has recorded its 201, how many copies were sent is not known yet.
      if (saga.state === 'TRANSMITTING') throw new TransientError('VERIFY_REFUSAL_BEFORE_TRANSMITTED', `admi.002 about ${rejected} arrived before the transmission was recorded; retried later`);
      const sentAttempt = saga.history.find((t) => t.key === 'transmitted')?.attempt ?? 1;
      if (saga.state !== 'IN_DOUBT' && sentAttempt <= 1) return undefined;
      scope.logger.warn({ sagaId, code: reason.code, state: saga.state, sentAttempt }, 'admi.002 for a message sent more than once: may concern a resent copy; raised to operations, not acted on');
      const step = recorded('ambiguous', sagaId, idsOf(saga));
      step.events.push(
        event(scope, AMBIGUOUS_REJECTION, sagaId, { ...idsOf(saga), bizMsgIdr: rejected }, {
          channel: 'spi',
          reason: `admi.002 ${reason.code} about ${rejected}, which was sent ${sentAttempt > 1 ? `on attempt ${sentAttempt}` : 'and is in doubt'}: it may refuse a resent copy while the original settles`,
          recordedState: saga.state,
          rejectedBizMsgIdr: rejected,
          code: reason.code,
          resourceId,
        }),
      );
      return step;
    };
    const data: MessageRejectedData = {
      channel: 'spi',
      rejectedBizMsgIdr: rejected,
      bizMsgIdr: message.appHdr.bizMsgIdr,
      reason: {
        code: reason.code,
        ...(reason.description === undefined ? {} : { description: reason.description }),
        ...(reason.errorLocation === undefined ? {} : { errorLocation: reason.errorLocation }),
        ...(reason.rejectionDateTime === undefined ? {} : { rejectionDateTime: reason.rejectionDateTime }),
        ...(reason.additionalData === undefined ? {} : { additionalData: reason.additionalData }),
      },
      resourceId,
    };
    // A refused message is a definite failure: payments are REJECTED; an echo, a query (camt.060)
    // or our answer to an inbound payment (whose outcome the SPI still decides) FAILED where the
    // table allows it, else recorded only.
    const step = await applyOutcome(scope, {
      sagaId, to: kind === 'echo' || kind === 'inbound' || kind === 'query' ? 'FAILED' : 'REJECTED',
      // An inbound payment's own outcome (the SPI's RJCT) is still to come under the key `rejected`.
      key: kind === 'inbound' ? 'answer-refused' : 'rejected', source: scope.source, resourceId, conflictsWith: ['SETTLED', 'COMPLETED'],
      reason: `admi.002 ${reason.code} ${message.appHdr.bizMsgIdr} about ${rejected}`,
      fact: (saga) => event(scope, VERIFIED_EVENTS.messageRejected, sagaId, { ...idsOf(saga), bizMsgIdr: rejected }, data),
      hold,
    });
    // An alert written nowhere in the saga: raised for the first copy of the admi.002 only.
    if (step.disposition === 'ambiguous' && !(await firstCopy(scope, resourceId))) return recorded('duplicate', sagaId, step.ids);
    return step;
  }

  /**
   * Something the SPI waits for us to accept (a pacs.008 to one of our customers, a pacs.004
   * returning one of our payments): its inbound saga `IN#<instruction>` begins RECEIVED (the first
   * resource to report it; a copy from another resource is recorded only) and core banking is
   * asked to decide before the answer deadline, counted from `start`. Not a credit: the money moves
   * only with the SPI's ACCC (`InboundPaymentSettled`).
   */
  async function openInbound(
    scope: SpiScope,
    opening: { instructionId: string; bizMsgIdr: string; resourceId: string; receivedAt: Date; start: number; amount: string; originalEndToEndId?: string },
    detailType: string,
    data: (times: { receivedAt: string; answerDeadline: string }) => unknown,
  ): Promise<Step> {
    const sagaId = inboundSagaId(opening.instructionId);
    const ids = { endToEndId: opening.instructionId };
    const reason = `${detailType === INBOUND_EVENTS.decisionRequested ? 'pacs.008' : 'pacs.004'} ${opening.bizMsgIdr} received`;
    const facts: Record<string, string> = {
      receivedAt: opening.receivedAt.toISOString(),
      answerDeadline: new Date(opening.start + decisionLimitMs).toISOString(),
      amount: opening.amount,
      ...(opening.originalEndToEndId === undefined ? {} : { originalEndToEndId: opening.originalEndToEndId }),
    };
    const created = await deps.sagas.create({ sagaId, ids, reason: `${reason} [source ${scope.source}]`, attempt: scope.attempt, facts });
    const { saga } = created;
    if (created.status === 'already-applied' && !sameDelivery(sourceOf(saga.history[0]?.reason ?? ''), scope.source)) return recorded('duplicate', sagaId, ids);
    // As first recorded, so that a redelivery publishes the same request.
    const times = { receivedAt: saga.facts.receivedAt ?? facts.receivedAt ?? '', answerDeadline: saga.facts.answerDeadline ?? facts.answerDeadline ?? '' };
    const audit = created.status === 'applied' ? [transitionAuditRecord(origin(scope, sagaId, ids), { from: null, to: 'RECEIVED', reason })] : [];
    return { disposition: created.status === 'applied' ? 'applied' : 'redelivered', events: [event(scope, detailType, sagaId, ids, data(times))], audit, sagaId, ids };
  }

  /** A payment to one of our customers: core banking decides (`InboundPaymentDecisionRequested`). */
  async function onInboundPayment(scope: SpiScope, bizMsgIdr: string, tx: CreditTransfer, resourceId: string, receivedAt: Date): Promise<Step> {
    if (tx.creditorAgentIspb !== deps.ispb) return recorded('not-for-us');
    if (!SAGA_KEY.test(tx.endToEndId)) return recorded('unknown-saga');
    const accepted = Date.parse(tx.acceptanceDateTime);
    // The SPI's limits run from AccptncDtTm (Manual de Tempos do Pix: t0'); our receipt when that is later.
    const start = Number.isFinite(accepted) ? Math.min(accepted, receivedAt.getTime()) : receivedAt.getTime();
    return openInbound(scope, { instructionId: tx.endToEndId, bizMsgIdr, resourceId, receivedAt, start, amount: tx.amount }, INBOUND_EVENTS.decisionRequested, (times): InboundPaymentDecisionRequestedData => ({
      channel: 'spi', endToEndId: tx.endToEndId, bizMsgIdr, resourceId, amount: tx.amount, acceptanceDateTime: tx.acceptanceDateTime, ...times,
      localInstrument: tx.localInstrument,
      ...(tx.txId === undefined ? {} : { txId: tx.txId }),
      ...(tx.purpose === undefined ? {} : { purpose: tx.purpose }),
      ...(tx.remittanceInformation === undefined ? {} : { remittanceInformation: tx.remittanceInformation }),
      debtor: { name: tx.debtor.name, taxId: tx.debtor.taxId }, debtorAccount: { ...tx.debtorAccount }, debtorAgentIspb: tx.debtorAgentIspb,
      creditor: { taxId: tx.creditor.taxId }, creditorAccount: { ...tx.creditorAccount }, creditorAgentIspb: tx.creditorAgentIspb,
    }));
  }

  /**
   * A pibr.001 from the SPI: the sign worker answers it with a signed pibr.002 (`EchoReceived`).
   * Every delivery of the same copy publishes it again (the echo saga `ECHO#<BizMsgIdr>` makes the
   * answer once); another copy of it (a stream duplicate) is recorded only.
   */
  async function onEcho(scope: SpiScope, message: Pibr001, resourceId: string, receivedAt: Date): Promise<Step> {
    const bizMsgIdr = message.appHdr.bizMsgIdr;
    const sagaId = echoSagaId(bizMsgIdr);
    const ids = { requestId: bizMsgIdr };
    if (!(await firstCopy(scope, resourceId))) return recorded('duplicate', sagaId, ids);
    const data: EchoReceivedData = { channel: 'spi', originalData: message.data, bizMsgIdr, resourceId, receivedAt: receivedAt.toISOString() };
    return { disposition: 'applied', events: [event(scope, INBOUND_EVENTS.echoReceived, sagaId, ids, data)], audit: [], sagaId, ids };
  }

  /**
   * A pacs.004 returning (part of) a payment we sent: the SPI waits for our pacs.002 as for a
   * pacs.008 (the credited participant answers, bacen/pix-api#184), so core banking decides
   * (`InboundReturnDecisionRequested`) on the saga `IN#<RtrId>`.
   */
  async function onReturn(scope: SpiScope, bizMsgIdr: string, ret: PaymentReturn, resourceId: string, receivedAt: Date): Promise<Step> {
    if (ret.creditorAgentIspb !== deps.ispb) return recorded('not-for-us');
    if (!SAGA_KEY.test(ret.returnId)) return recorded('unknown-saga');
    const opening = { instructionId: ret.returnId, bizMsgIdr, resourceId, receivedAt, start: receivedAt.getTime(), amount: ret.amount, originalEndToEndId: ret.originalEndToEndId };
    return openInbound(scope, opening, INBOUND_EVENTS.returnDecisionRequested, (times): InboundReturnDecisionRequestedData => ({
      channel: 'spi', returnId: ret.returnId, originalEndToEndId: ret.originalEndToEndId, amount: ret.amount,
      reason: { code: ret.reason.code, ...(ret.reason.additionalInformation === undefined ? {} : { additionalInformation: ret.reason.additionalInformation }) },
      debtorAgentIspb: ret.debtorAgentIspb, creditorAgentIspb: ret.creditorAgentIspb,
      ...(ret.remittanceInformation === undefined ? {} : { remittanceInformation: ret.remittanceInformation }),
      bizMsgIdr, resourceId, ...times,
    }));
  }

  async function onEchoAnswer(scope: SpiScope, message: Pibr002, resourceId: string): Promise<Step> {
    const sagaId = await deps.index.sagaOfEcho(message.originalData);
    if (sagaId === undefined) return recorded('unknown-saga');
    const data: EchoAnsweredData = { channel: 'spi', originalData: message.originalData, bizMsgIdr: message.appHdr.bizMsgIdr, answeredAt: message.creDtTm, resourceId };
    return applyOutcome(scope, {
      sagaId, to: 'COMPLETED', key: 'completed', source: scope.source, resourceId, conflictsWith: ['FAILED'],
      reason: `pibr.002 ${message.appHdr.bizMsgIdr}`,
      fact: (saga) => event(scope, VERIFIED_EVENTS.echoAnswered, sagaId, idsOf(saga), data),
    });
  }

  async function onSpiMessage(scope: SpiScope, message: SpiMessage, resourceId: string, receivedAt: Date): Promise<Step[]> {
    switch (message.type) {
      case 'pacs.002':
        return Promise.all(message.message.statuses.map((s) => onStatus(scope, message.message, s, resourceId)));
      case 'admi.002':
        return [await onAdmi002(scope, message.message, resourceId)];
      case 'pacs.008':
        return Promise.all(message.message.transactions.map((tx) => onInboundPayment(scope, message.message.appHdr.bizMsgIdr, tx, resourceId, receivedAt)));
      case 'pacs.004':
        return Promise.all(message.message.returns.map((ret) => onReturn(scope, message.message.appHdr.bizMsgIdr, ret, resourceId, receivedAt)));
      case 'pibr.002':
        return [await onEchoAnswer(scope, message.message, resourceId)];
      case 'pibr.001':
        return [await onEcho(scope, message.message, resourceId, receivedAt)];
    }
  }

  /**
   * Whether this delivery is the first copy of `resourceId` to reach a message without a saga
   * (or a redelivery of that copy): the marker {@link VerifyHandlerDeps.markers} is claimed for
   * its copy id. An envelope without one (a receive worker before copy ids, which dropped stream
   * duplicates itself) is always first.
   */
  async function firstCopy(scope: SpiScope, resourceId: string): Promise<boolean> {
    if (scope.copy === undefined) return true;
    const first = await deps.markers.claimAs(`icom-resource#${resourceId}`, scope.copy, markerTtl);
    if (!first) scope.logger.info({ resourceId, source: scope.source }, 'another copy of this message was handled already: recorded only');
    return first;
  }

  /** `keep` (quarantine, or keep for operations) for the first copy of an SPI message; another copy is recorded only. */
  async function keptOnce(scope: SpiScope, data: BcbMessageReceivedData, record: VerificationRecord, raw: string, signatureValid: boolean, keep: () => Promise<Outcome>): Promise<Outcome> {
    if (await firstCopy(scope, data.resourceId)) return keep();
    return { events: [], audit: [record('duplicate', auditBody(raw), signatureValid)] };
  }

  /** Puts the raw bytes in the quarantine and reports `SignatureInvalid`; nothing else happens. */
  async function quarantine(
    scope: Scope,
    raw: string,
    error: unknown,
    where: { name: string; at: Date; resourceId?: string; operation?: string },
    exchange: VerificationRecord,
    signatureValid: boolean,
  ): Promise<Outcome> {
    const code = error instanceof SeloError ? error.code : 'MESSAGE_UNREADABLE';
    const reason = (error instanceof Error ? error.message : String(error)).slice(0, 500);
    const sagaId = scope.cause.sagaId;
    const location = await deps.quarantine.put({
      key: quarantineKey(where.at, where.name),
      body: raw,
      code,
      reason,
      facts: { channel: scope.channel, 'saga-id': sagaId, ...(where.resourceId === undefined ? {} : { 'resource-id': where.resourceId }), ...(where.operation === undefined ? {} : { operation: where.operation }) },
    });
    const data: SignatureInvalidData = {
      path: 'inbound',
      channel: scope.channel,
      ...(where.resourceId === undefined ? {} : { resourceId: where.resourceId }),
      ...(where.operation === undefined ? {} : { operation: where.operation }),
      code,
      reason,
      quarantine: location,
    };
    const { cause } = scope;
    const ids: CorrelationIds = {
      ...(cause.endToEndId === undefined ? {} : { endToEndId: cause.endToEndId }),
      ...(cause.bizMsgIdr === undefined ? {} : { bizMsgIdr: cause.bizMsgIdr }),
      ...(cause.requestId === undefined ? {} : { requestId: cause.requestId }),
    };
    scope.logger.warn({ code, resourceId: where.resourceId, quarantine: location.key }, 'message failed verification: quarantined, not acted on');
    return { events: [event(scope, VERIFIED_EVENTS.signatureInvalid, sagaId, ids, data)], audit: [exchange('quarantined', auditBody(raw, location), signatureValid)] };
  }

  /**
   * The SPI's camt.054 answering one of our camt.060 (shared/bcb-query, `applyEntryReport`): a
   * definite settlement resolves the in-doubt payment through `resolveSaga`, which publishes
   * `PaymentSettled` and audits the transition itself; an answer that matches no question of ours
   * about an in-doubt payment is quarantined with its reason and acts on nothing.
   */
  async function onEntryReport(scope: SpiScope, raw: string, report: EntryReport, bizMsgIdr: string, data: BcbMessageReceivedData, verification: Verification): Promise<Outcome> {
    const entryReports = deps.entryReports;
    if (entryReports === undefined) throw new Error('camt.054 read without entryReports');
    let applied;
    try {
      applied = await applyEntryReport({ ...entryReports, ispb: deps.ispb }, report, { bizMsgIdr, resourceId: data.resourceId });
    } catch (error) {
      if (!(error instanceof EntryReportUnmatchedError)) throw error;
      return quarantine(scope, raw, error, { name: data.resourceId, at: new Date(data.receivedAt), resourceId: data.resourceId }, verificationRecord(scope, scope.cause.sagaId, {}, verification), true);
    }
    const ids = { endToEndId: applied.endToEndId, bizMsgIdr: report.notificationId ?? bizMsgIdr };
    const resolution = applied.resolution?.status ?? 'none';
    scope.logger.info({ resourceId: data.resourceId, sagaId: applied.paymentSagaId, querySagaId: applied.querySagaId, outcome: applied.verdict.outcome, status: applied.status, resolution, evidence: applied.verdict.evidence }, 'the BCB answered our query about an in-doubt payment');
    if (applied.status === 'contradicted') scope.logger.error({ sagaId: applied.paymentSagaId, evidence: applied.verdict.evidence }, 'the BCB says settled, but the payment was resolved otherwise meanwhile: operations decide');
    const audit: AuditRecord[] = [verificationRecord(scope, applied.paymentSagaId, ids, verification)(`camt.054 ${applied.status}`, auditBody(raw), true)];
    if (applied.queryTransition !== undefined) audit.push(transitionAuditRecord(origin(scope, applied.querySagaId, { ...ids, requestId: report.notificationId ?? '' }), applied.queryTransition));
    return { events: [], audit };
  }

  /** Keeps a verified message of a type selo does not handle and tells operations (`UnsupportedMessageReceived`). */
  async function unsupported(scope: Scope, raw: string, error: UnsupportedSpiMessageError, bizMsgIdr: string, data: BcbMessageReceivedData, verification: Verification): Promise<Outcome> {
    const receivedAt = new Date(data.receivedAt);
    const kept = await deps.quarantine.put({
      key: quarantineKey(receivedAt, data.resourceId, 'unsupported'),
      body: raw,
      code: error.code,
      reason: error.message.slice(0, 500),
      facts: { channel: 'spi', 'resource-id': data.resourceId, 'message-type': error.messageType },
    });
    const fact: UnsupportedMessageReceivedData = { channel: 'spi', messageType: error.messageType, bizMsgIdr, resourceId: data.resourceId, kept, reason: error.message.slice(0, 500) };
    scope.logger.warn({ resourceId: data.resourceId, messageType: error.messageType, kept: kept.key }, 'verified message of a type selo does not handle: kept for operations');
    return {
      events: [event(scope, INBOUND_EVENTS.unsupported, scope.cause.sagaId, {}, fact)],
      audit: [verificationRecord(scope, scope.cause.sagaId, {}, verification)('unsupported', auditBody(raw, kept), true)],
    };
  }

  async function verifySpiDelivery(delivery: Scope, data: BcbMessageReceivedData): Promise<Outcome> {
    const scope: SpiScope = { ...delivery, source: copySource(data), copy: data.copy };
    const raw = 'inline' in data.payload ? data.payload.inline : await deps.claimCheck.get(data.payload.claimCheck);
    const receivedAt = new Date(data.receivedAt);
    const verification: Verification = {
      requestDate: receivedAt, method: 'GET', path: `/api/v1/out/${deps.ispb}/stream`, statusCode: 200,
      headers: { 'content-type': data.contentType, 'pi-resourceid': data.resourceId }, receivedAt: now(),
    };
    let signatureValid = false;
    let message: SpiMessage | { type: 'camt.054'; report: EntryReport };
    let bizMsgIdr = '';
    // What a message without a saga records when another copy of it was handled first.
    const record = verificationRecord(scope, scope.cause.sagaId, {}, verification);
    try {
      const verified = verifySpi(raw, { trustStore: deps.trustStore, now: now(), parse });
      signatureValid = true;
      if (verified.fromIspb !== deps.bcbIspb) throw new VerificationRefusedError('BCB_SIGNER_NOT_BCB', `AppHdr/Fr is ${verified.fromIspb}, not the BCB (${deps.bcbIspb})`);
      const header = parseAppHdr(verified.appHdr);
      bizMsgIdr = header.bizMsgIdr;
      if (header.toIspb !== deps.ispb) throw new VerificationRefusedError('SPI_RECIPIENT_MISMATCH', `AppHdr/To is ${header.toIspb}, not us (${deps.ispb})`);
      // "A validação sintática das mensagens será feita por meio de arquivos de definição do
      // esquema XML (XSD)" (SPI message catalogue, Introdução, "Formato de representação das
      // mensagens"): a signed message that does not conform to its XSD is not acted on. Only the exact bytes that verified are
      // checked, and only after the signature: an unsigned forgery costs no libxml2 work.
      const schema = spiSchemaOfNamespace(verified.document.namespaceUri);
      if (schema !== undefined) await validateSpi(raw, schema).catch(schemaRefusalOnly);
      // The SPI's answer to our camt.060 (no camt.054 XSD in the repository: its reader's checks stand in).
      message = deps.entryReports !== undefined && verified.document.namespaceUri === CAMT_054.namespace ? { type: 'camt.054', report: readEntryReport(verified.document) } : parseSpiMessage(verified);
    } catch (error) {
      // Signed by the BCB and addressed to us, but of a type selo does not handle yet: no
      // security alert; operations get it with its exact bytes.
      if (error instanceof UnsupportedSpiMessageError) return keptOnce(scope, data, record, raw, true, () => unsupported(scope, raw, error, bizMsgIdr, data, verification));
      // What says "retry" is not the message's fault: the schema check could not run, or the
      // signer's CRL is missing or stale under SELO_REVOCATION=require (RevocationUnknownError,
      // until operations refresh the file: docs/certificates.md).
      if (error instanceof TransientError) throw error;
      // Verification, the schema check and parsing do no I/O: whatever they refuse, they refuse
      // every time.
      return keptOnce(scope, data, record, raw, signatureValid, () => quarantine(scope, raw, error, { name: data.resourceId, at: receivedAt, resourceId: data.resourceId }, record, signatureValid));
    }
    // The query saga keys the answer by PI-ResourceId: another copy of it would be taken for a
    // redelivery and resolve (publish) again; only the first copy is acted on.
    if (message.type === 'camt.054') {
      const { report } = message;
      return keptOnce(scope, data, record, raw, true, () => onEntryReport(scope, raw, report, bizMsgIdr, data, verification));
    }
    const steps = await onSpiMessage(scope, message, data.resourceId, receivedAt);
    const first = steps.find((s) => s.sagaId !== undefined);
    const dispositions = steps.map((s) => s.disposition).join(',');
    scope.logger.info({ resourceId: data.resourceId, messageType: message.type, sagaId: first?.sagaId, disposition: dispositions }, 'verified message from the BCB');
    return {
      events: steps.flatMap((s) => s.events),
      audit: [verificationRecord(scope, first?.sagaId ?? scope.cause.sagaId, first?.ids ?? {}, verification)(dispositions, auditBody(raw), true), ...steps.flatMap((s) => s.audit)],
    };
  }

  async function dictBodyOf(data: DictResponseReceivedData): Promise<string> {
    if ('inline' in data.payload) return data.payload.inline;
    const kept = await deps.claimCheck.get(data.payload.claimCheck);
    let parsed: unknown;
    try {
      parsed = JSON.parse(kept);
    } catch (error) {
      throw new PermanentError('DICT_ANSWER_UNREADABLE', `the kept DICT answer s3://${data.payload.claimCheck.bucket}/${data.payload.claimCheck.key} is not JSON`, { cause: error });
    }
    const body = typeof parsed === 'object' && parsed !== null ? (parsed as { body?: unknown }).body : undefined;
    if (typeof body !== 'string') throw new PermanentError('DICT_ANSWER_UNREADABLE', 'the kept DICT answer has no body');
    return body;
  }

  async function verifyDictDelivery(scope: Scope, data: DictResponseReceivedData): Promise<Outcome> {
    const raw = await dictBodyOf(data);
    const sagaId = scope.cause.sagaId;
    const ids: CorrelationIds = scope.cause.requestId === undefined ? {} : { requestId: scope.cause.requestId };
    const spec = Object.hasOwn(DICT_OPERATIONS, data.operation) ? DICT_OPERATIONS[data.operation as keyof typeof DICT_OPERATIONS] : undefined;
    const at = now();
    const exchange = verificationRecord(scope, sagaId, ids, {
      requestDate: at, method: spec?.method ?? 'POST', path: `/api/v2${spec?.path ?? `/${data.operation}`}`, statusCode: data.status,
      headers: { 'content-type': data.contentType }, receivedAt: at,
    });
    let verified;
    try {
      verified = verifyDict(raw, { trustStore: deps.trustStore, now: at, parse });
      // Every certificate in the trust store is the BCB's; the check states the rule, should it change.
      if (verified.signer.ispb !== deps.bcbIspb) throw new VerificationRefusedError('BCB_SIGNER_NOT_BCB', `the DICT answer is signed by ${verified.signer.ispb ?? 'an unbound certificate'}, not the BCB`);
    } catch (error) {
      if (error instanceof TransientError) throw error;
      return quarantine(scope, raw, error, { name: sagaId, at, operation: data.operation }, exchange, false);
    }
    const source = sha256(raw).slice(0, 32);
    let step: Step;
    if (data.status >= 200 && data.status < 300) {
      let body: Pick<DictResponseVerifiedData, 'body' | 'bodyClaimCheck'> = { body: raw };
      if (Buffer.byteLength(raw, 'utf8') > CLAIM_CHECK_THRESHOLD_BYTES) {
        body = { bodyClaimCheck: await deps.claimCheck.put(`verified/dict/${sagaId.replace('#', '-')}-${source}.xml`, raw) };
      }
      const fact: DictResponseVerifiedData = { channel: 'dict', operation: data.operation, status: data.status, contentType: data.contentType, ...body };
      step = await applyOutcome(scope, {
        sagaId, to: 'COMPLETED', key: 'completed', source, conflictsWith: ['REJECTED', 'FAILED', 'COMPENSATED'],
        reason: `DICT ${data.operation} ${data.status} verified`,
        fact: (saga) => event(scope, VERIFIED_EVENTS.dictResponseVerified, sagaId, { ...ids, ...idsOf(saga) }, fact),
      });
    } else {
      let problem: DictOperationFailedData['problem'];
      try {
        const parsed = parseDictProblem(verified.root);
        problem = { type: parsed.type, title: parsed.title, ...(parsed.detail === undefined ? {} : { detail: parsed.detail }), ...(parsed.correlationId === undefined ? {} : { correlationId: parsed.correlationId }) };
      } catch {
        // Signed by the BCB but not a problem document: the status still says the operation failed.
        problem = { type: 'about:blank', title: `HTTP ${data.status}` };
      }
      const fact: DictOperationFailedData = { channel: 'dict', operation: data.operation, status: data.status, problem };
      step = await applyOutcome(scope, {
        sagaId, to: 'REJECTED', key: 'rejected', source, conflictsWith: ['COMPLETED'],
        reason: `DICT ${data.operation} ${data.status} ${problem.title}`,
        fact: (saga) => event(scope, VERIFIED_EVENTS.dictOperationFailed, sagaId, { ...ids, ...idsOf(saga) }, fact),
      });
    }
    scope.logger.info({ operation: data.operation, status: data.status, sagaId, disposition: step.disposition }, 'verified DICT answer');
    return { events: step.events, audit: [exchange(step.disposition, auditBody(raw), true), ...step.audit] };
  }

  return async (message, context: HandlerContext) => {
    const detail = message.event.detail;
    const input = detail.data;
    const scope: Scope = { cause: detail, attempt: context.attempt, channel: input.kind, logger: context.logger };
    if (input.kind === 'spi') return verifySpiDelivery(scope, input.data);
    return verifyDictDelivery(scope, input.data);
  };
}
