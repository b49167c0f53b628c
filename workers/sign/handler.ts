import { createHash } from 'node:crypto';
import { transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { DICT_OPERATIONS, buildDictBody } from '../../shared/dict/index.ts';
import { deriveDetail, dictSagaId, echoSagaId, paymentSagaId } from '../../shared/events/index.ts';
import type { EventDetail, MessageSignedData } from '../../shared/events/index.ts';
import { buildPacs004, buildPacs008, buildPibr001, generateMessageId, validateSpiMessage } from '../../shared/iso20022/index.ts';
import type { Handler, Outcome } from '../../shared/runtime/index.ts';
import type { BizMsgIndex, SagaStore } from '../../shared/saga/index.ts';
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
  sagas: Pick<SagaStore, 'create' | 'transition'>;
  /** Where payloads too large for an event go. */
  claimCheck: ClaimCheckStore;
  /**
   * Pointers from a signed message's BizMsgIdr (and an echo's Data) to its saga, so that the
   * verify worker can correlate an admi.002 or a pibr.002 that quotes only those.
   */
  bizMsgIndex: Pick<BizMsgIndex, 'recordMessage' | 'recordEcho'>;
  /**
   * Validates a signed SPI message against its XSD.
   * @defaultValue validateSpiMessage against pacs.008.spi.1.16
   */
  validateSpi?: (xml: string) => Promise<void>;
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
  /** The official XSD, when selo has it (pacs.004: none in the catalogue copy, checked structurally by the builder). */
  schema: 'pacs.008.spi.1.16' | undefined;
  compensation: { step: string; action: string; params: Readonly<Record<string, unknown>> } | undefined;
}

function draftSpi(data: PaymentRequestedData, ispb: string, requestId: string | undefined): SpiDraft {
  if (data.message === 'pibr.001') {
    const bizMsgIdr = generateMessageId(ispb, { random: seededIndex(`${echoSagaId(requestId ?? '')}:pibr.001`) });
    const createdAt = new Date(data.echo.requestedAt).toISOString();
    const unsigned = buildPibr001({ appHdr: { fromIspb: ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt: createdAt }, msgId: bizMsgIdr, creDtTm: createdAt, data: data.echo.data });
    return { paymentId: requestId ?? '', unsigned, bizMsgIdr, schema: undefined, compensation: undefined };
  }
  if (data.message === 'pacs.008') {
    const tx = data.transaction;
    const bizMsgIdr = generateMessageId(ispb, { random: seededIndex(`${paymentSagaId(tx.endToEndId)}:pacs.008`) });
    // Everything in the message derives from the request itself (not from when the event was
    // published), so the same request always gives the same bytes.
    const createdAt = new Date(tx.acceptanceDateTime).toISOString();
    const unsigned = buildPacs008({
      appHdr: { fromIspb: ispb, toIspb: SPI_ISPB, bizMsgIdr, creDt: createdAt },
      msgId: bizMsgIdr,
      creDtTm: createdAt,
      transactions: [{ ...tx, debtorAgentIspb: ispb }],
    });
    // Core banking reserved the amount before asking; a definite failure later releases it.
    return { paymentId: tx.endToEndId, unsigned, bizMsgIdr, schema: 'pacs.008.spi.1.16', compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: tx.endToEndId, amount: tx.amount } } };
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
  return { paymentId: ret.returnId, unsigned, bizMsgIdr, schema: undefined, compensation: { step: 'sign', action: 'PaymentReversalRequested', params: { returnId: ret.returnId, amount: ret.amount } } };
}

async function signPayment(detail: EventDetail<SignRequest>, data: PaymentRequestedData, attempt: number, deps: SignHandlerDeps): Promise<Outcome> {
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

  const created = await deps.sagas.create({ sagaId, ids, reason: 'PaymentRequested', attempt });
  const draft = draftSpi(data, deps.ispb, detail.requestId);
  const { bizMsgIdr } = draft;
  const signed = await signSpi(draft.unsigned, deps.signingKey, { keyInfoId: keyInfoIdFor(bizMsgIdr) });
  // The XSD requires the ds:Signature in AppHdr/Sgntr, so what is validated is the signed
  // message, exactly as the BCB will validate it.
  const schema = draft.schema;
  if (schema !== undefined) await (deps.validateSpi ?? ((xml: string) => validateSpiMessage(xml, schema)))(signed);
  const digest = createHash('sha256').update(signed).digest('hex');
  if (created.status === 'already-applied') {
    const signedBefore = created.saga.history.find((t) => t.key === 'sign');
    if (signedBefore !== undefined && !signedBefore.reason.includes(`sha256=${digest}`)) {
      // Same EndToEndId, other content: never a second, different message for one payment.
      return conflict(detail, sagaId, attempt, `a different request for ${draft.paymentId} was signed already`);
    }
  }
  // Content-addressed, so a stored payload is never replaced by other bytes.
  const payload = await payloadOf(signed, `claim-check/${draft.paymentId}/${digest}.xml`, deps);
  const written = await deps.sagas.transition({
    sagaId,
    to: 'SIGNED',
    from: ['REQUESTED'],
    reason: `${data.message} ${bizMsgIdr} signed sha256=${digest}`,
    attempt,
    idempotencyKey: 'sign',
    ids: { bizMsgIdr },
    current: created.saga,
    ...(draft.compensation === undefined ? {} : { compensation: draft.compensation }),
  });
  // Written on every delivery (idempotent), so a crash between the transition and the pointer is
  // repaired by the redelivery; always before MessageSigned, so before the BCB can answer.
  await deps.bizMsgIndex.recordMessage(bizMsgIdr, sagaId);
  if (data.message === 'pibr.001') await deps.bizMsgIndex.recordEcho(data.echo.data, sagaId);
  const messageSigned: MessageSignedData = { channel: 'spi', messageType: data.message, bizMsgIdr, payload };
  return outcome(detail, messageSigned, { bizMsgIdr }, written.status === 'applied', sagaId, attempt, 'spi');
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
    payload,
  };
  return outcome(detail, messageSigned, {}, written.status === 'applied', sagaId, attempt, 'dict');
}

function outcome(
  cause: EventDetail<unknown>,
  data: MessageSignedData,
  ids: { bizMsgIdr?: string },
  transitioned: boolean,
  sagaId: string,
  attempt: number,
  system: 'spi' | 'dict',
): Outcome {
  const detail = deriveDetail(cause, data, { attempt, ids });
  const audit: AuditRecord[] = [];
  if (transitioned) {
    audit.push(
      transitionAuditRecord(
        { worker: 'sign', system, sagaId, attempt, traceparent: detail.traceparent, ...pickIds(detail) },
        { from: 'REQUESTED', to: 'SIGNED', reason: `${data.messageType} signed` },
      ),
    );
  }
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
    if (request.kind === 'payment') return signPayment(detail, request.data, context.attempt, deps);
    return signDictRequest(detail, request.data, context.attempt, deps);
  };
}
