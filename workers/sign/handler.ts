import { createHash } from 'node:crypto';
import { transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditOrigin, AuditRecord } from '../../shared/audit/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { buildEntryQuery } from '../../shared/bcb-query/index.ts';
import type { OutcomeQueryRequestedData } from '../../shared/bcb-query/index.ts';
import { DICT_OPERATIONS, buildDictBody } from '../../shared/dict/index.ts';
import { PermanentError, TransientError, classifyError } from '../../shared/errors/index.ts';
import { INBOUND_EVENTS, deriveDetail, describeDecision, dictSagaId, echoSagaId, inboundSagaId, paymentSagaId, querySagaId } from '../../shared/events/index.ts';
import type { CorrelationIds, EchoReceivedData, EventDetail, InboundDecisionLateData, InboundPaymentDecidedData, MessageSignedData } from '../../shared/events/index.ts';
import { END_TO_END_ID_TIME_REASON, PAYMENT_PRIORITIES, SPI_MESSAGES, buildPacs002, buildPacs004, buildPacs008, buildPibr001, buildPibr002, endToEndIdTimeProblem, generateMessageId, paymentMessageId, spiSchemaOfNamespace, validateSpiMessage } from '../../shared/iso20022/index.ts';
import type { SpiSchema } from '../../shared/iso20022/index.ts';
import type { EventToPublish, Handler, Outcome } from '../../shared/runtime/index.ts';
import type { BizMsgIndex, Saga, SagaState, SagaStore } from '../../shared/saga/index.ts';
import { signDict, signSpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { SignRequestInvalidError } from './sign-request.ts';
import type { DictRequestedData, PaymentRequestedData, SignRequest } from './sign-request.ts';

/** ISPB of the SPI (operated by the BCB) as the receiver in AppHdr/To: the catalogue's examples address PSP → SPI messages to 00038166. */
export const SPI_ISPB = '00038166';

/** Dependencies of the sign handler, passed in by `main` (HOUSE_STYLE 6). */
export interface SignHandlerDeps {
  /** The PSP's ISPB: AppHdr/Fr and the debtor agent. */
  ispb: string;
  /** The signing key: in the HSM in production, PEM in some tests. */
  signingKey: SigningKey;
  /** The saga store. */
  sagas: Pick<SagaStore, 'create' | 'createWithStep' | 'transition' | 'get'>;
  /** Where payloads too large for an event go. */
  claimCheck: ClaimCheckStore;
  /**
   * Pointers from a signed message's BizMsgIdr (and an echo's Data) to its saga, so that the
   * verify worker can correlate an admi.002 or a pibr.002 that quotes only those.
   */
  bizMsgIndex: Pick<BizMsgIndex, 'recordMessage' | 'recordEcho'>;
  /**
   * Sign a pacs.008 as versions before the BizMsgIdr derived from the EndToEndId did: its
   * BizMsgIdr drawn from the saga id, with a pointer item (`SELO_SIGN_LEGACY_MESSAGE_IDS`,
   * docs/deploying.md). Only for a rolling deploy or rollback across that change: an older sign
   * task re-signs a redelivered request with the id it draws (a derived one would make it see
   * other bytes, a conflict), an older verify task finds payments only through pointers.
   * @defaultValue false
   */
  legacyMessageIds?: boolean;
  /**
   * Validates a signed SPI message against its XSD (those the repository has: pacs.008 1.16, pacs.002 1.17).
   * @defaultValue validateSpiMessage
   */
  validateSpi?: (xml: string, schema: SpiSchema) => Promise<void>;
  /** Clock (the deadline of a decision on an inbound payment; a pacs.008's creation time at its first signing). @defaultValue () => new Date() */
  now?: () => Date;
  /**
   * Payloads over this many bytes go to S3.
   * @defaultValue CLAIM_CHECK_THRESHOLD_BYTES
   */
  claimCheckThresholdBytes?: number;
}

/**
 * A random source seeded from `seed`: the same saga always gets the same MsgId, so a redelivered
 * request signs byte-for-byte the same message (RSA PKCS#1 v1.5 is deterministic) and nothing
 * different is ever sent for one payment.
 */
function seededIndex(seed: string): (maxExclusive: number) => number {
  let counter = 0;
  return (maxExclusive) => {
    const digest = createHash('sha256').update(`${seed}:${counter++}`).digest();
    return digest.readUInt32BE(0) % maxExclusive;
  };
}

function keyInfoIdFor(seed: string): string {
  return `KI${createHash('sha256').update(seed).digest('hex').slice(0, 32)}`;
}

async function payloadOf(xml: string, key: string, deps: SignHandlerDeps): Promise<MessageSignedData['payload']> {
  if (Buffer.byteLength(xml, 'utf8') <= (deps.claimCheckThresholdBytes ?? CLAIM_CHECK_THRESHOLD_BYTES)) return { inline: xml };
  return { claimCheck: await deps.claimCheck.put(key, xml) };
}

/** What one SPI request becomes before signing. */
interface SpiDraft {
  /** The id keying the saga: EndToEndId (pacs.008) or RtrId (pacs.004). */
  paymentId: string;
  unsigned: string;
  bizMsgIdr: string;
  compensation: { step: string; action: string; params: Readonly<Record<string, unknown>> } | undefined;
}

/**
 * `creDt=<ISO date-time>` at the end of a `sign` step's reason: the creation time a payment's
 * pacs.008 was first signed with, reused on redelivery so that the same bytes are signed again.
 */
const SIGNED_CREATION = / creDt=(\S+)$/;

/**
 * `AppHdr/CreDt` and `GrpHdr/CreDtTm` of a pacs.008: when selo creates the message (both are the
 * message's creation date-time in the catalogue, not the payer's acceptance, AccptncDtTm), fixed at
 * the first signing and reused from the saga's `sign` step afterwards (a redelivery signs the same
 * bytes). A step recorded before creDt= was kept used the acceptance time: that is reused too.
 */
function creationTimeOf(signedBefore: { reason: string } | undefined, transaction: { acceptanceDateTime: string }, now: Date): string {
  if (signedBefore === undefined) return now.toISOString();
  return SIGNED_CREATION.exec(signedBefore.reason)?.[1] ?? new Date(transaction.acceptanceDateTime).toISOString();
}

/** The BizMsgIdr a pacs.008's `sign` step recorded (SignedRequest.reason). */
const SIGNED_PAYMENT_MESSAGE_ID = /^pacs\.008 (M[0-9A-Z]{8}[a-zA-Z0-9]{23}) signed /;

/**
 * `recordedBizMsgIdr`: the pacs.008's BizMsgIdr as its first signing recorded it, so a redelivery
 * signs the same bytes even when that signing was done by a version that drew the id otherwise.
 */
function draftSpi(data: PaymentRequestedData, ispb: string, requestId: string | undefined, creDt: string, recordedBizMsgIdr: string | undefined, legacyMessageIds: boolean): SpiDraft {
  if (data.message === 'pibr.001') {
    const bizMsgIdr = generateMessageId(ispb, { random: seededIndex(`${echoSagaId(requestId ?? '')}:pibr.001`) });
    const createdAt = new Date(data.echo.requestedAt).toISOString();
    const unsigned = buildPibr001({ appHdr: { fromIspb: ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt: createdAt }, msgId: bizMsgIdr, creDtTm: createdAt, data: data.echo.data });
    return { paymentId: requestId ?? '', unsigned, bizMsgIdr, compensation: undefined };
  }
  if (data.message === 'pacs.008') {
    const tx = data.transaction;
    const bizMsgIdr = recordedBizMsgIdr ?? (legacyMessageIds ? generateMessageId(ispb, { random: seededIndex(`${paymentSagaId(tx.endToEndId)}:pacs.008`) }) : paymentMessageId(tx.endToEndId));
    // Everything else in the message derives from the request itself; the creation time is the
    // first signing's (creationTimeOf), so the same request always gives the same bytes.
    const unsigned = buildPacs008({
      appHdr: { fromIspb: ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt },
      msgId: bizMsgIdr,
      creDtTm: creDt,
      ...(data.serviceLevel === undefined ? {} : { serviceLevel: data.serviceLevel }),
      transactions: [{ ...tx, debtorAgentIspb: ispb }],
    });
    // Core banking reserved the amount before asking; a definite failure later releases it.
    return { paymentId: tx.endToEndId, unsigned, bizMsgIdr, compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: tx.endToEndId, amount: tx.amount } } };
  }
  const { returnedAt, ...ret } = data.return;
  const bizMsgIdr = generateMessageId(ispb, { random: seededIndex(`${paymentSagaId(ret.returnId)}:pacs.004`) });
  const createdAt = new Date(returnedAt).toISOString();
  const unsigned = buildPacs004({
    appHdr: { fromIspb: ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt: createdAt },
    msgId: bizMsgIdr,
    creDtTm: createdAt,
    returns: [{ ...ret, debtorAgentIspb: ispb }],
  });
  return { paymentId: ret.returnId, unsigned, bizMsgIdr, compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { returnId: ret.returnId, amount: ret.amount } } };
}

/**
 * Checks a signed SPI message against the official XSD of its type when the repository has it
 * (`shared/iso20022/xsd/SOURCES.md`: pacs.008 1.16 and pacs.002 1.17; none yet for pacs.004,
 * pibr.001 and pibr.002, which their builders check field by field), so that a message the BCB's
 * schema refuses never leaves.
 */
async function validateIfSchema(signed: string, type: keyof typeof SPI_MESSAGES, deps: SignHandlerDeps): Promise<void> {
  const schema = spiSchemaOfNamespace(SPI_MESSAGES[type].namespace);
  if (schema !== undefined) await (deps.validateSpi ?? validateSpiMessage)(signed, schema);
}

/** The saga a payment request (pacs.008, pacs.004) or an echo request (pibr.001) keys, checked against the request. */
function requestSagaOf(detail: EventDetail<SignRequest>, data: PaymentRequestedData, deps: SignHandlerDeps): { sagaId: string; ids: { endToEndId: string } | { requestId: string } } {
  let sagaId: string;
  let ids: { endToEndId: string } | { requestId: string };
  if (data.message === 'pibr.001') {
    // An echo is no payment: it is keyed by the requester's RequestId.
    if (detail.requestId === undefined) throw new SignRequestInvalidError('detail.requestId is required for a pibr.001 echo');
    sagaId = echoSagaId(detail.requestId);
    ids = { requestId: detail.requestId };
  } else {
    const requested = data.message === 'pacs.008' ? data.transaction.endToEndId : data.return.returnId;
    const endToEndId = detail.endToEndId;
    if (endToEndId === undefined || endToEndId !== requested) {
      throw new SignRequestInvalidError(`detail.endToEndId (${endToEndId ?? 'missing'}) must equal the ${data.message === 'pacs.008' ? 'transfer\'s endToEndId' : 'return\'s returnId'} (${requested})`);
    }
    const prefix = data.message === 'pacs.008' ? 'E' : 'D';
    if (!endToEndId.startsWith(`${prefix}${deps.ispb}`)) throw new SignRequestInvalidError(`${endToEndId} was not issued by ISPB ${deps.ispb}`);
    sagaId = paymentSagaId(endToEndId);
    ids = { endToEndId };
  }
  if (detail.sagaId !== sagaId) throw new SignRequestInvalidError(`detail.sagaId must be ${sagaId}, got ${detail.sagaId}`);
  return { sagaId, ids };
}

/** A request's message, signed and checked against its XSD. */
interface SignedRequest {
  draft: SpiDraft;
  signed: string;
  digest: string;
  /** The reason of the `sign` step: type, BizMsgIdr, digest and (pacs.008) creation time, which a redelivery reads back. */
  reason: string;
}

/**
 * Signs the message of `data` created at `creDt`. A pacs.008 signed for the first time
 * (`firstSigning`) must have an EndToEndId the SPI still accepts (pacs.002 RJCT FF08: 1 h 30 min
 * behind for a priority order, 12 h either way for any; END_TO_END_ID_TIME_TOLERANCE names the
 * BCB sources); a redelivery of what was signed is never refused for its age.
 */
async function signRequest(detail: EventDetail<SignRequest>, data: PaymentRequestedData, creDt: string, signedBefore: { reason: string } | undefined, deps: SignHandlerDeps): Promise<SignedRequest> {
  const firstSigning = signedBefore === undefined;
  if (data.message === 'pacs.008' && firstSigning) {
    const priority = PAYMENT_PRIORITIES[data.serviceLevel ?? 'PAGPRI'] === 'HIGH';
    const late = endToEndIdTimeProblem(data.transaction.endToEndId, new Date(creDt), { priority });
    if (late !== undefined) throw new SignRequestInvalidError(`data.transaction.endToEndId: ${late.message} (the SPI would refuse it with ${END_TO_END_ID_TIME_REASON})`);
  }
  const draft = draftSpi(data, deps.ispb, detail.requestId, creDt, signedBefore === undefined ? undefined : SIGNED_PAYMENT_MESSAGE_ID.exec(signedBefore.reason)?.[1], deps.legacyMessageIds === true);
  const signed = await signSpi(draft.unsigned, deps.signingKey, { keyInfoId: keyInfoIdFor(draft.bizMsgIdr) });
  // The XSD requires the ds:Signature in AppHdr/Sgntr, so what is validated is the signed
  // message, exactly as the BCB will validate it.
  await validateIfSchema(signed, data.message, deps);
  const digest = createHash('sha256').update(signed).digest('hex');
  const reason = `${data.message} ${draft.bizMsgIdr} signed sha256=${digest}${data.message === 'pacs.008' ? ` creDt=${creDt}` : ''}`;
  return { draft, signed, digest, reason };
}

/**
 * The BizMsgIdr pointer (and an echo's Data pointer), written on every delivery (idempotent; a
 * crash between it and the saga write is repaired by the redelivery) and always before
 * MessageSigned, so before the BCB can answer; it does not depend on the saga write, so both go
 * in one round trip. None for a pacs.008 whose BizMsgIdr derives from its EndToEndId (the verify
 * worker derives it back); one for a pacs.008 signed with a drawn id ({@link SignHandlerDeps.legacyMessageIds}, or recorded so by an older version).
 */
function recordPointers(data: PaymentRequestedData, bizMsgIdr: string, sagaId: string, deps: SignHandlerDeps): Promise<unknown> {
  const derived = data.message === 'pacs.008' && bizMsgIdr === paymentMessageId(data.transaction.endToEndId);
  return Promise.all([
    derived ? undefined : deps.bizMsgIndex.recordMessage(bizMsgIdr, sagaId),
    data.message === 'pibr.001' ? deps.bizMsgIndex.recordEcho(data.echo.data, sagaId) : undefined,
  ]);
}

async function signPayment(detail: EventDetail<SignRequest>, data: PaymentRequestedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
  const { sagaId, ids } = requestSagaOf(detail, data, deps);
  if (attempt === 1) {
    const first = await signFirstDelivery(detail, data, sagaId, ids, deps);
    if (first !== undefined) return first;
  }
  const created = await deps.sagas.create({ sagaId, ids, reason: 'PaymentRequested', attempt });
  const signedBefore = created.status === 'already-applied' ? created.saga.history.find((t) => t.key === 'sign') : undefined;
  const now = (deps.now ?? (() => new Date()))();
  // Only a pacs.008 carries the creation time of its first signing; the others derive theirs from the request.
  const creDt = data.message === 'pacs.008' ? creationTimeOf(signedBefore, data.transaction, now) : now.toISOString();
  const { draft, signed, digest, reason } = await signRequest(detail, data, creDt, signedBefore, deps);
  const { bizMsgIdr } = draft;
  if (created.status === 'already-applied') {
    if (signedBefore !== undefined && !signedBefore.reason.includes(`sha256=${digest}`)) {
      // Same EndToEndId, other content: never a second, different message for one payment.
      return conflict(detail, sagaId, attempt, `a different request for ${draft.paymentId} was signed already`);
    }
  }
  // Content-addressed, so a stored payload is never replaced by other bytes.
  const payload = await payloadOf(signed, `claim-check/${draft.paymentId}/${digest}.xml`, deps);
  const transitioned = deps.sagas.transition({
    sagaId,
    to: 'SIGNED',
    from: ['REQUESTED'],
    reason,
    attempt,
    idempotencyKey: 'sign',
    ids: { bizMsgIdr },
    current: created.saga,
    ...(draft.compensation === undefined ? {} : { compensation: draft.compensation }),
  });
  const [written] = await bothOrFirstFailure(transitioned, recordPointers(data, bizMsgIdr, sagaId, deps));
  // Another delivery signed first, possibly at another creation time: publish only what it
  // recorded; the next delivery signs again with its creDt (the same bytes).
  if (written.status !== 'applied' && data.message === 'pacs.008') {
    const recorded = written.saga?.history.find((t) => t.key === 'sign');
    if (recorded !== undefined && !recorded.reason.includes(`sha256=${digest}`)) {
      throw new TransientError('SIGN_RACED', `another delivery signed ${draft.paymentId} first with another creation time; signed again from the saga`);
    }
  }
  const messageSigned: MessageSignedData = { channel: 'spi', messageType: data.message, bizMsgIdr, payload };
  return outcome(detail, messageSigned, { bizMsgIdr }, written.status === 'applied', sagaId, attempt, 'spi');
}

/**
 * The first delivery of a request, the common case: signed before its saga exists, and the saga
 * then created already SIGNED in one write (SagaStore.createWithStep: the same item as a creation
 * followed by the `sign` step), beside the pointers: one round trip instead of two after
 * signing. Undefined, and nothing written to the saga, when the saga exists (a duplicate
 * delivery, an operator's replay, an earlier delivery that got further) or the request is
 * refused for good (e.g. an EndToEndId too old, which a replay of a request signed before may
 * have): the ordinary path then decides from what it reads, and a refused request leaves its saga
 * in REQUESTED for the compensation worker to close, as before.
 */
async function signFirstDelivery(detail: EventDetail<SignRequest>, data: PaymentRequestedData, sagaId: string, ids: CorrelationIds, deps: SignHandlerDeps): Promise<Outcome | undefined> {
  const attempt = 1;
  const now = (deps.now ?? (() => new Date()))();
  let request: SignedRequest;
  let payload: MessageSignedData['payload'];
  try {
    request = await signRequest(detail, data, now.toISOString(), undefined, deps);
    payload = await payloadOf(request.signed, `claim-check/${request.draft.paymentId}/${request.digest}.xml`, deps);
  } catch (error) {
    if (classifyError(error).retryability === 'permanent') return undefined;
    throw error;
  }
  const { draft, reason } = request;
  const { bizMsgIdr } = draft;
  const step = { to: 'SIGNED', reason, idempotencyKey: 'sign', ids: { bizMsgIdr }, ...(draft.compensation === undefined ? {} : { compensation: draft.compensation }) } as const;
  const [written] = await bothOrFirstFailure(deps.sagas.createWithStep({ sagaId, ids, reason: 'PaymentRequested', attempt, step }), recordPointers(data, bizMsgIdr, sagaId, deps));
  if (written === undefined) return undefined;
  return outcome(detail, { channel: 'spi', messageType: data.message, bizMsgIdr, payload }, { bizMsgIdr }, true, sagaId, attempt, 'spi');
}

/** What the `sign` step of an inbound payment records: the decision, the answer's BizMsgIdr, digest and creation time. */
const SIGNED_ANSWER = /^pacs\.002 (ACSP|RJCT [A-Z0-9]{4}) (\S+) signed sha256=([0-9a-f]{64}) creDt=(\S+)$/;

/** A signed answer to an inbound payment. */
interface SignedAnswer {
  xml: string;
  bizMsgIdr: string;
  digest: string;
}

/**
 * The pacs.002 answering the inbound payment `endToEndId` with `decision`, signed and validated
 * against `pacs.002.spi.1.17.xsd`. Everything in it derives from the saga, the decision and
 * `creDt`, so the same decision always gives the same bytes (RSA PKCS#1 v1.5 is deterministic).
 */
async function signAnswer(saga: Saga, instructionId: string, decision: InboundPaymentDecidedData, creDt: string, deps: SignHandlerDeps): Promise<SignedAnswer> {
  const { sagaId } = saga;
  // A return's pacs.002 names the RtrId as OrgnlInstrId and the returned payment's EndToEndId
  // (pacs.002.spi.1.17.xsd: OrgnlInstrId E|D…, OrgnlEndToEndId E… only).
  const endToEndId = saga.facts.originalEndToEndId ?? instructionId;
  const bizMsgIdr = generateMessageId(deps.ispb, { random: seededIndex(`${sagaId}:pacs.002`) });
  const unsigned = buildPacs002({
    appHdr: { fromIspb: deps.ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt },
    msgId: bizMsgIdr,
    creDtTm: creDt,
    statuses: [{ originalInstructionId: instructionId, originalEndToEndId: endToEndId, status: decision.decision, ...(decision.decision === 'RJCT' ? { reason: decision.reason } : {}) }],
  });
  const xml = await signSpi(unsigned, deps.signingKey, { keyInfoId: keyInfoIdFor(bizMsgIdr) });
  await validateIfSchema(xml, 'pacs.002', deps);
  return { xml, bizMsgIdr, digest: createHash('sha256').update(xml).digest('hex') };
}

/** `InboundDecisionLate`, for operations: the decision was not sent. */
function lateDecision(cause: EventDetail<unknown>, saga: Saga, decision: InboundPaymentDecidedData, attempt: number, reason: string): EventToPublish {
  const data: InboundDecisionLateData = {
    channel: 'spi',
    decision: describeDecision(decision),
    decidedAt: decision.decidedAt,
    ...(saga.facts.answerDeadline === undefined ? {} : { answerDeadline: saga.facts.answerDeadline }),
    recordedState: saga.state,
    reason,
  };
  return { detailType: INBOUND_EVENTS.decisionLate, detail: deriveDetail(cause, data, { attempt }) };
}

/**
 * Core banking's decision on a payment to one of our customers (or on a return of one of our
 * payments, `IN#<RtrId>`) becomes a signed pacs.002 (ACSP,
 * or RJCT with its reason), once: the saga moves RECEIVED → SIGNED with the decision, the bytes'
 * digest and their creation time, so a redelivery (or core banking saying the same again)
 * publishes the same bytes, and a different decision is a `RequestConflict`, never a second
 * answer. A decision after the saga's `answerDeadline`, or for a payment the SPI already
 * rejected, is not sent: `InboundDecisionLate` tells operations.
 */
async function signDecision(detail: EventDetail<SignRequest>, decision: InboundPaymentDecidedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
  const endToEndId = detail.endToEndId;
  if (endToEndId === undefined) throw new SignRequestInvalidError('detail.endToEndId is required for InboundPaymentDecided');
  const sagaId = inboundSagaId(endToEndId);
  if (detail.sagaId !== sagaId) throw new SignRequestInvalidError(`detail.sagaId must be ${sagaId}, got ${detail.sagaId}`);
  const saga = await deps.sagas.get(sagaId);
  if (saga === undefined) throw new PermanentError('INBOUND_PAYMENT_UNKNOWN', `no inbound payment ${endToEndId} was received: a decision is answered only for a pacs.008 selo verified`);
  const described = describeDecision(decision);
  const signedBefore = saga.history.find((t) => t.key === 'sign');
  if (signedBefore !== undefined) {
    const recorded = SIGNED_ANSWER.exec(signedBefore.reason);
    if (recorded?.[1] !== described || recorded[4] === undefined) {
      return conflict(detail, sagaId, attempt, `a different decision (${recorded?.[1] ?? 'unreadable'}) was answered already for ${endToEndId}; ${described} is not sent`);
    }
    // The same decision again: the same bytes, made with the creation time first recorded.
    const again = await signAnswer(saga, endToEndId, decision, recorded[4], deps);
    if (again.digest !== recorded[3]) return conflict(detail, sagaId, attempt, `the answer for ${endToEndId} signs differently now (key or builder changed); not sent again`);
    const payload = await payloadOf(again.xml, `claim-check/${endToEndId}/${again.digest}.xml`, deps);
    return outcome(detail, { channel: 'spi', messageType: 'pacs.002', bizMsgIdr: again.bizMsgIdr, payload }, { bizMsgIdr: again.bizMsgIdr }, false, sagaId, attempt, 'spi', 'RECEIVED');
  }
  if (saga.state !== 'RECEIVED') return { events: [lateDecision(detail, saga, decision, attempt, `the payment is already ${saga.state}`)], audit: [] };
  const now = (deps.now ?? (() => new Date()))();
  const deadline = saga.facts.answerDeadline;
  if (deadline !== undefined && now.getTime() > Date.parse(deadline)) {
    const reason = `${described} decided at ${decision.decidedAt}, after the answer deadline ${deadline}; not sent`;
    const written = await deps.sagas.transition({ sagaId, to: 'LATE', from: ['RECEIVED'], reason, attempt, idempotencyKey: 'late', current: saga });
    const audit = written.status === 'applied' ? [transitionAuditRecord(auditOrigin(detail, sagaId, attempt, 'spi'), { from: 'RECEIVED', to: 'LATE', reason })] : [];
    return { events: [lateDecision(detail, written.saga, decision, attempt, reason)], audit };
  }
  const creDt = new Date(decision.decidedAt).toISOString();
  const answer = await signAnswer(saga, endToEndId, decision, creDt, deps);
  // Before MessageSigned, so before the BCB can refuse it: an admi.002 finds the saga. Beside the
  // saga write, one round trip (a pointer to an answer never sent is harmless).
  const indexed = deps.bizMsgIndex.recordMessage(answer.bizMsgIdr, sagaId);
  try {
    const [written] = await bothOrFirstFailure(
      deps.sagas.transition({
        sagaId, to: 'SIGNED', from: ['RECEIVED'], attempt, idempotencyKey: 'sign', current: saga,
        reason: `pacs.002 ${described} ${answer.bizMsgIdr} signed sha256=${answer.digest} creDt=${creDt}`,
        ids: { bizMsgIdr: answer.bizMsgIdr },
        facts: { answer: described },
      }),
      indexed,
    );
    // Another delivery signed first: decide from what it recorded (same bytes, or a conflict).
    if (written.status !== 'applied') throw new TransientError('INBOUND_ANSWER_RACED', `another delivery answered ${endToEndId} first; decided again from the saga`);
  } catch (error) {
    if (classifyError(error).code !== 'ILLEGAL_SAGA_TRANSITION') throw error;
    // The saga moved meanwhile (the SPI's AB03, a LATE decision): the next delivery decides from it.
    throw new TransientError('INBOUND_SAGA_MOVED', `inbound payment ${endToEndId} moved while its answer was signed; decided again`, { cause: error });
  }
  const payload = await payloadOf(answer.xml, `claim-check/${endToEndId}/${answer.digest}.xml`, deps);
  return outcome(detail, { channel: 'spi', messageType: 'pacs.002', bizMsgIdr: answer.bizMsgIdr, payload }, { bizMsgIdr: answer.bizMsgIdr }, true, sagaId, attempt, 'spi', 'RECEIVED');
}

/**
 * The SPI's pibr.001 to us becomes a signed pibr.002 returning its data, once per echo
 * (`ECHO#<BizMsgIdr of the pibr.001>`): the bytes derive from the echo alone, and a copy whose
 * bytes would differ (another receipt time) is not published.
 */
async function signEchoAnswer(detail: EventDetail<SignRequest>, echo: EchoReceivedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
  const sagaId = echoSagaId(echo.bizMsgIdr);
  if (detail.sagaId !== sagaId) throw new SignRequestInvalidError(`detail.sagaId must be ${sagaId}, got ${detail.sagaId}`);
  const created = await deps.sagas.create({ sagaId, ids: { requestId: echo.bizMsgIdr }, reason: `pibr.001 ${echo.bizMsgIdr} received`, attempt });
  const bizMsgIdr = generateMessageId(deps.ispb, { random: seededIndex(`${sagaId}:pibr.002`) });
  const creDt = new Date(echo.receivedAt).toISOString();
  const unsigned = buildPibr002({ appHdr: { fromIspb: deps.ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt }, msgId: bizMsgIdr, creDtTm: creDt, originalData: echo.originalData });
  const signed = await signSpi(unsigned, deps.signingKey, { keyInfoId: keyInfoIdFor(bizMsgIdr) });
  await validateIfSchema(signed, 'pibr.002', deps);
  const digest = createHash('sha256').update(signed).digest('hex');
  const signedBefore = created.saga.history.find((t) => t.key === 'sign');
  if (signedBefore !== undefined && !signedBefore.reason.includes(`sha256=${digest}`)) return { events: [], audit: [] };
  const written = await deps.sagas.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: `pibr.002 ${bizMsgIdr} signed sha256=${digest}`, attempt, idempotencyKey: 'sign', ids: { bizMsgIdr }, current: created.saga });
  await deps.bizMsgIndex.recordMessage(bizMsgIdr, sagaId);
  const payload = await payloadOf(signed, `claim-check/echo/${echo.bizMsgIdr}/${digest}.xml`, deps);
  return outcome(detail, { channel: 'spi', messageType: 'pibr.002', bizMsgIdr, payload }, { bizMsgIdr }, written.status === 'applied', sagaId, attempt, 'spi');
}

/**
 * The in-doubt sweeper's question about one of our payments (or one to our customer) becomes a signed camt.060 asking the
 * SPI for the camt.054 of that entry (shared/bcb-query), once per question (`QUERY#<MsgId>`): the
 * MsgId and creation time come with the request, so a redelivery signs the same bytes. Signed in
 * the HSM like every SPI message (SPI catalogue: every message carries the participant's
 * signature; the BCB refuses an unsigned one with an admi.002). No camt.060 XSD is in the
 * repository (shared/iso20022/xsd/SOURCES.md): its builder's field checks stand in for it.
 */
async function signQuery(detail: EventDetail<SignRequest>, query: OutcomeQueryRequestedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
  const sagaId = querySagaId(query.msgId);
  if (detail.sagaId !== sagaId) throw new SignRequestInvalidError(`detail.sagaId must be ${sagaId}, got ${detail.sagaId}`);
  if (query.msgId.slice(1, 9) !== deps.ispb) throw new SignRequestInvalidError(`data.msgId ${query.msgId} was not issued by ISPB ${deps.ispb}`);
  // Our payment's EndToEndId carries our ISPB; one paid to our customer carries the payer's.
  const ours = query.endToEndId.startsWith(`E${deps.ispb}`);
  if (query.paymentSagaId === paymentSagaId(query.endToEndId) && !ours) throw new SignRequestInvalidError(`data.endToEndId ${query.endToEndId} is not a payment of ISPB ${deps.ispb}`);
  if (query.paymentSagaId === inboundSagaId(query.endToEndId) && ours) throw new SignRequestInvalidError(`data.endToEndId ${query.endToEndId} is a payment of ISPB ${deps.ispb}, not one to its customer`);
  const facts = { paymentSagaId: query.paymentSagaId, endToEndId: query.endToEndId, ...(query.amount === undefined ? {} : { amount: query.amount }) };
  const created = await deps.sagas.create({ sagaId, ids: { requestId: query.msgId, endToEndId: query.endToEndId }, reason: `OutcomeQueryRequested about ${query.paymentSagaId}`, attempt, facts });
  const unsigned = buildEntryQuery({ ispb: deps.ispb, bcbIspb: SPI_ISPB, msgId: query.msgId, createdAt: query.requestedAt, endToEndId: query.endToEndId });
  const signed = await signSpi(unsigned, deps.signingKey, { keyInfoId: keyInfoIdFor(query.msgId) });
  const digest = createHash('sha256').update(signed).digest('hex');
  // Before MessageSigned, so before the SPI can answer: the camt.054 (Ntfctn/Id) and an admi.002 find the query.
  await deps.bizMsgIndex.recordMessage(query.msgId, sagaId);
  const written = await deps.sagas.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: `camt.060 ${query.msgId} signed sha256=${digest}`, attempt, idempotencyKey: 'sign', ids: { bizMsgIdr: query.msgId }, current: created.saga });
  const payload = await payloadOf(signed, `claim-check/query/${query.msgId}/${digest}.xml`, deps);
  return outcome(detail, { channel: 'spi', messageType: 'camt.060', bizMsgIdr: query.msgId, payload }, { bizMsgIdr: query.msgId }, written.status === 'applied', sagaId, attempt, 'spi');
}

/**
 * Both results once both settled; else the first one's failure (then the second's): neither is
 * left unobserved, and nothing is published unless both writes were accepted.
 */
async function bothOrFirstFailure<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

/** A request that conflicts with what this saga already signed: operations, not compensation. */
function conflict(cause: EventDetail<unknown>, sagaId: string, attempt: number, reason: string): Outcome {
  return { events: [{ detailType: 'RequestConflict', detail: deriveDetail(cause, { sagaId, reason }, { attempt }) }], audit: [] };
}

async function signDictRequest(detail: EventDetail<SignRequest>, data: DictRequestedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
  const requestId = detail.requestId;
  if (requestId === undefined) throw new SignRequestInvalidError('detail.requestId is required for DictRequested');
  const sagaId = dictSagaId(requestId);
  if (detail.sagaId !== sagaId) throw new SignRequestInvalidError(`detail.sagaId must be ${sagaId}, got ${detail.sagaId}`);
  await deps.sagas.create({ sagaId, ids: { requestId }, reason: `DictRequested ${data.operation}`, attempt });
  const schema = DICT_OPERATIONS[data.operation].request;
  let payload: MessageSignedData['payload'] = null;
  if (schema !== undefined && data.body !== undefined) {
    // DICT write operations are signed (DESIGN §2); reads carry no body.
    const signed = await signDict(buildDictBody(schema, data.body), deps.signingKey, { keyInfoId: keyInfoIdFor(`${sagaId}:${data.operation}`) });
    payload = await payloadOf(signed, `claim-check/dict/${requestId}.xml`, deps);
  }
  const written = await deps.sagas.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: `DICT ${data.operation} signed`, attempt, idempotencyKey: 'sign' });
  const messageSigned: MessageSignedData = {
    channel: 'dict',
    messageType: data.operation,
    ...(data.pathParameters === undefined ? {} : { pathParameters: data.pathParameters }),
    ...(data.headers === undefined ? {} : { requestHeaders: data.headers }),
    ...(data.query === undefined ? {} : { queryParameters: data.query }),
    payload,
  };
  return outcome(detail, messageSigned, {}, written.status === 'applied', sagaId, attempt, 'dict');
}

function auditOrigin(detail: EventDetail<unknown>, sagaId: string, attempt: number, system: 'spi' | 'dict'): AuditOrigin {
  return { worker: 'sign', system, sagaId, attempt, traceparent: detail.traceparent, ...pickIds(detail) };
}

function outcome(
  cause: EventDetail<unknown>,
  data: MessageSignedData,
  ids: { bizMsgIdr?: string },
  transitioned: boolean,
  sagaId: string,
  attempt: number,
  system: 'spi' | 'dict',
  from: SagaState = 'REQUESTED',
): Outcome {
  const detail = deriveDetail(cause, data, { attempt, ids });
  const audit: AuditRecord[] = [];
  if (transitioned) audit.push(transitionAuditRecord(auditOrigin(detail, sagaId, attempt, system), { from, to: 'SIGNED', reason: `${data.messageType} signed` }));
  // On a redelivery the saga already says SIGNED: the same bytes are published again, because
  // the earlier delivery may have stopped before its event was accepted.
  return { events: [{ detailType: 'MessageSigned', detail }], audit };
}

function pickIds(detail: EventDetail<unknown>): { endToEndId?: string; bizMsgIdr?: string; requestId?: string } {
  return {
    ...(detail.endToEndId === undefined ? {} : { endToEndId: detail.endToEndId }),
    ...(detail.bizMsgIdr === undefined ? {} : { bizMsgIdr: detail.bizMsgIdr }),
    ...(detail.requestId === undefined ? {} : { requestId: detail.requestId }),
  };
}

/**
 * The sign worker's handler: a `PaymentRequested` becomes a signed pacs.008, a `DictRequested` a
 * signed DICT request, published as `MessageSigned`. The saga moves REQUESTED → SIGNED once;
 * a redelivered request publishes the same signed bytes again and changes nothing else.
 */
export function createSignHandler(deps: SignHandlerDeps): Handler<SignRequest> {
  return async (message, context) => {
    const { detail } = message.event;
    const request = detail.data;
    switch (request.kind) {
      case 'payment':
        return signPayment(detail, request.data, context.attempt, deps);
      case 'dict':
        return signDictRequest(detail, request.data, context.attempt, deps);
      case 'decision':
        return signDecision(detail, request.data, context.attempt, deps);
      case 'echo':
        return signEchoAnswer(detail, request.data, context.attempt, deps);
      case 'query':
        return signQuery(detail, request.data, context.attempt, deps);
    }
  };
}
