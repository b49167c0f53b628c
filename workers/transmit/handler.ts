import { exchangeAuditRecord, transitionAuditRecord } from '../../shared/audit/index.ts';
import type { AuditOrigin, AuditRecord } from '../../shared/audit/index.ts';
import { BcbRequestRejectedError, BcbUnavailableError, answerError } from '../../shared/bcb-client/index.ts';
import type { BcbResponse, IcomPosted } from '../../shared/bcb-client/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { DICT_OPERATIONS } from '../../shared/dict/index.ts';
import type { DictOperation } from '../../shared/dict/index.ts';
import { classifyError, PermanentError, TransientError } from '../../shared/errors/index.ts';
import { deriveDetail } from '../../shared/events/index.ts';
import type { EventDetail, MessageSignedData } from '../../shared/events/index.ts';
import { withAuditRecords } from '../../shared/runtime/index.ts';
import type { EventToPublish, Handler, HandlerContext, Outcome } from '../../shared/runtime/index.ts';
import type { DedupeStore, Saga, SagaState, SagaStore, SagaWriteResult } from '../../shared/saga/index.ts';
import { exchangesOf } from './multipart-icom-port.ts';
import type { IcomExchange } from './multipart-icom-port.ts';

/** The ICOM call the transmit handler needs (an {@link IcomClient} in production). */
export interface IcomPort {
  readonly postPath: string;
  /** Whether POST bodies go gzip-compressed (recorded in the audit trail's request headers). @defaultValue false */
  readonly gzip?: boolean;
  post(signedXml: string): Promise<IcomPosted>;
}

/** The DICT call the transmit handler needs: any answer resolves, no answer rejects. */
export interface DictPort {
  send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string, headers?: Readonly<Record<string, string>>): Promise<BcbResponse>;
}

/** Dependencies of the transmit handler, passed in by `main`. */
export interface TransmitHandlerDeps {
  icom: IcomPort;
  dict: DictPort;
  sagas: Pick<SagaStore, 'get' | 'transition' | 'applyUnread' | 'claimFact' | 'releaseFact'>;
  /**
   * Where transmit workers before the marker moved into the saga (issue 20) kept it: an item of its
   * own (`DEDUPE#transmit-unknown#<sagaId>`). Always read, so that a delivery never misses an
   * earlier version's attempt; written too with {@link TransmitHandlerDeps.markerItem}.
   */
  dedupe: Pick<DedupeStore, 'claim' | 'isClaimed' | 'release'>;
  /**
   * Also write the marker in its own item, as earlier versions did and still read: on while a
   * rolling deploy runs tasks of a version from before the move beside this one
   * (`SELO_TRANSMIT_MARKER_ITEM`, docs/deploying.md). @defaultValue false
   */
  markerItem?: boolean;
  claimCheck: ClaimCheckStore;
  /** Bucket of {@link TransmitHandlerDeps.claimCheck}, where DICT answers are kept for redeliveries. */
  claimCheckBucket: string;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
  /**
   * The PSP's ISPB, sent as `PI-RequestingParticipant` on the DICT operations whose OpenAPI
   * requires it (getEntry, getClaim). @defaultValue not sent
   */
  ispb?: string;
}

const SENT_STATES: ReadonlySet<SagaState> = new Set(['TRANSMITTED', 'SETTLED', 'COMPLETED', 'REJECTED', 'IN_DOUBT', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED', 'OUTCOME_CONFLICT']);
const RESOURCE_ID = /PI-ResourceId=(\S+)/;
/** Saga steps of this worker that end it, and the fact each one published. */
const FINISHED_STEPS: Readonly<Record<string, string>> = {
  'transmission-rejected': 'TransmissionRejected',
  'transmission-failed': 'TransmissionFailed',
  'in-doubt': 'PaymentInDoubt',
};
/** How long the "outcome unknown" marker of a payment is kept in its own item: well past any retry budget. */
const UNKNOWN_MARKER_TTL_SECONDS = 7 * 86_400;
/**
 * The saga fact that says an attempt may have reached the BCB (when it was made): written with
 * TRANSMITTING, in the same UpdateItem, removed only when that attempt provably never left.
 */
export const MAY_HAVE_ARRIVED_FACT = 'mayHaveArrivedAt';

function unknownMarker(sagaId: string): string {
  return `transmit-unknown#${sagaId}`;
}

async function payloadOf(data: MessageSignedData, deps: TransmitHandlerDeps): Promise<string | undefined> {
  if (data.payload === null) return undefined;
  if ('inline' in data.payload) return data.payload.inline;
  return deps.claimCheck.get(data.payload.claimCheck);
}

function originOf(detail: EventDetail<unknown>, data: MessageSignedData, attempt: number): AuditOrigin {
  return {
    worker: 'transmit',
    system: data.channel,
    sagaId: detail.sagaId,
    attempt,
    traceparent: detail.traceparent,
    ...(detail.endToEndId === undefined ? {} : { endToEndId: detail.endToEndId }),
    ...(detail.bizMsgIdr === undefined ? {} : { bizMsgIdr: detail.bizMsgIdr }),
    ...(detail.requestId === undefined ? {} : { requestId: detail.requestId }),
  };
}

function responseOf(response: BcbResponse | undefined, receivedAt: Date): { statusCode: number; headers: Readonly<Record<string, string>>; body: string; signatureValid: null; receivedAt: Date } {
  return { statusCode: response?.status ?? 0, headers: response?.headers ?? {}, body: response?.body ?? '', signatureValid: null, receivedAt };
}

function event(detailType: string, cause: EventDetail<unknown>, data: unknown, attempt: number): EventToPublish {
  return { detailType, detail: deriveDetail(cause, data, { attempt }) };
}

/**
 * Fills `{Key}`-style path parameters, URL-encoded, and appends the query parameters (a list
 * repeats the parameter); a missing path parameter is a permanent error.
 */
function dictPath(operation: DictOperation, parameters: Readonly<Record<string, string>> = {}, query: Readonly<Record<string, string | readonly string[]>> = {}): string {
  const template = DICT_OPERATIONS[operation].path;
  const path = `/api/v2${template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = parameters[name];
    if (value === undefined) throw new PermanentError('TRANSMIT_REQUEST_INVALID', `DICT ${operation} needs path parameter ${name}`);
    return encodeURIComponent(value);
  })}`;
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const v of typeof value === 'string' ? [value] : value) search.append(name, v);
  }
  const text = search.toString();
  return text === '' ? path : `${path}?${text}`;
}

/**
 * The transmit worker's handler: a `MessageSigned` is sent to the BCB over mutual TLS.
 *
 * SPI: the saga records TRANSMITTING before the POST and TRANSMITTED after the 201
 * (`MessageTransmitted`, with `PI-ResourceId`). After a recorded 201 nothing is sent again. A 4xx
 * on the first attempt is a definite refusal (`TransmissionRejected`); after an attempt that may
 * have arrived it proves nothing (`PaymentInDoubt`). 429, 5xx, timeouts and resets are retried
 * with the same bytes through the queue's backoff; when the receive budget runs out, a payment
 * none of whose attempts can have reached the BCB becomes `TransmissionFailed`, and one that may
 * have reached it becomes `PaymentInDoubt`, never compensated automatically (DESIGN §1).
 *
 * DICT: the operation's answer (any status, signed) goes to the verify worker as
 * `DictResponseReceived`.
 */
export function createTransmitHandler(deps: TransmitHandlerDeps): Handler<MessageSignedData> {
  const now = deps.now ?? (() => new Date());

  /**
   * A redelivery after this step finished: publish its fact again (the first publication may
   * have been lost; consumers are idempotent), never the message.
   */
  function alreadyDone(saga: Saga | undefined, detail: EventDetail<MessageSignedData>, attempt: number): Outcome | undefined {
    if (saga === undefined) return undefined;
    const channel = detail.data.channel;
    for (const step of saga.history) {
      if (step.key === 'transmitted') {
        const resourceId = RESOURCE_ID.exec(step.reason)?.[1] ?? '(unknown)';
        return { events: [event('MessageTransmitted', detail, { channel, messageType: detail.data.messageType, resourceId }, attempt)], audit: [] };
      }
      const fact = FINISHED_STEPS[step.key];
      if (fact !== undefined) return { events: [event(fact, detail, { channel, reason: step.reason }, attempt)], audit: [] };
    }
    // Past TRANSMITTING without a record of this worker's (e.g. settled from the stream first).
    return SENT_STATES.has(saga.state) ? { events: [], audit: [] } : undefined;
  }

  async function transmitSpi(detail: EventDetail<MessageSignedData>, context: HandlerContext): Promise<Outcome> {
    const { data } = detail;
    const attempt = context.attempt;
    const origin = originOf(detail, data, attempt);
    const sagaId = detail.sagaId;
    let xml: string | undefined;
    try {
      xml = await payloadOf(data, deps);
    } catch (error) {
      // A redelivery after this step finished needs no payload (its claim-check may be gone).
      const done = alreadyDone(await deps.sagas.get(sagaId), detail, attempt);
      if (done !== undefined) return done;
      throw error;
    }
    if (xml === undefined) throw new PermanentError('TRANSMIT_REQUEST_INVALID', 'an SPI MessageSigned carries no payload');

    // The first delivery (the common case) writes TRANSMITTING without reading the saga; any
    // other finds the step there, or the saga elsewhere, and decides from what it read.
    //
    // From here until proven otherwise the message may reach the BCB: the may-have-arrived marker
    // (MAY_HAVE_ARRIVED_FACT) is written before the POST, in the TRANSMITTING write itself, so a
    // crash after it still counts. Only the first claimant ever counts as the first attempt: any
    // other delivery (a retry, or a concurrent duplicate) knows an earlier attempt may have
    // arrived, and then no refusal can prove the payment failed.
    const audit: AuditRecord[] = [];
    const at = now().toISOString();
    const step = { sagaId, to: 'TRANSMITTING', from: ['SIGNED'], reason: 'POST to ICOM', attempt, idempotencyKey: 'transmitting', facts: { [MAY_HAVE_ARRIVED_FACT]: at } } as const;
    const marker = unknownMarker(sagaId);
    // The marker in its own item too, for tasks of an earlier version during a rolling deploy.
    const claimingItem = deps.markerItem === true
      ? deps.dedupe.claim(marker, UNKNOWN_MARKER_TTL_SECONDS).then((first) => ({ first }), (error: unknown) => ({ error }))
      : undefined;
    let started: SagaWriteResult;
    let firstAttempt: boolean;
    const unread = await deps.sagas.applyUnread(step);
    if (unread === undefined) {
      const current = await deps.sagas.get(sagaId);
      const done = alreadyDone(current, detail, attempt);
      if (done !== undefined) return done;
      started = await deps.sagas.transition({ ...step, ...(current === undefined ? {} : { current }) });
      // Unless this delivery wrote TRANSMITTING just now, an earlier one did, with the marker; a
      // marker removed since (that attempt provably never left) is claimed again. An earlier
      // version kept the marker in its own item only: it counts as well (with markerItem, this
      // delivery's own claim of that item, below, tells).
      firstAttempt = (started.status === 'applied' || (await deps.sagas.claimFact(sagaId, MAY_HAVE_ARRIVED_FACT, at))) && (claimingItem !== undefined || !(await deps.dedupe.isClaimed(marker)));
    } else {
      started = { status: 'applied', saga: unread };
      firstAttempt = true;
    }
    if (started.status === 'applied') audit.push(transitionAuditRecord(origin, { from: 'SIGNED', to: 'TRANSMITTING', reason: 'POST to ICOM' }));
    if (claimingItem !== undefined) {
      const claimed = await claimingItem;
      if ('error' in claimed) throw claimed.error;
      firstAttempt &&= claimed.first;
    }
    const requestDate = now();
    const requestHeaders: Record<string, string> = { 'content-type': 'application/xml; charset=utf-8', ...(deps.icom.gzip === true ? { 'content-encoding': 'gzip' } : {}) };
    // The exchanges that carried the message: as a port that batches reports them (a multipart
    // POST, then perhaps the message alone), or this one request.
    const exchangeAudit = (exchanges: readonly IcomExchange[]): AuditRecord[] =>
      exchanges.map((e) =>
        exchangeAuditRecord(origin, {
          requestDate: e.requestDate, method: 'POST', path: deps.icom.postPath, requestHeaders: e.requestHeaders, requestBody: xml,
          ...(e.response === undefined ? {} : { response: responseOf(e.response, e.receivedAt ?? now()) }),
        }),
      );
    let posted: IcomPosted;
    try {
      posted = await deps.icom.post(xml);
    } catch (error) {
      // Every request that may have left is audited, answered or not.
      const response = error instanceof BcbRequestRejectedError || error instanceof BcbUnavailableError ? error.response : undefined;
      audit.push(...exchangeAudit(exchangesOf(error) ?? [{ requestDate, requestHeaders, ...(response === undefined ? {} : { response, receivedAt: now() }) }]));
      if (error instanceof BcbRequestRejectedError) {
        if (!firstAttempt) {
          return settle(detail, attempt, origin, audit, 'IN_DOUBT', 'in-doubt', 'PaymentInDoubt', `refused with ${error.status} after an earlier attempt that may have arrived`, { status: error.status, code: error.code });
        }
        return settle(detail, attempt, origin, audit, 'FAILED', 'transmission-rejected', 'TransmissionRejected', error.message, { status: error.status, code: error.code });
      }
      const classified = classifyError(error);
      // This attempt provably never reached the BCB: it does not count as "may have arrived".
      if (firstAttempt && error instanceof BcbUnavailableError && error.delivery === 'not-sent') {
        await deps.sagas.releaseFact(sagaId, MAY_HAVE_ARRIVED_FACT);
        if (deps.markerItem === true) await deps.dedupe.release(marker);
      }
      if (attempt < context.maxReceiveCount) throw withAuditRecords(error, audit);
      // The retry budget is spent.
      if ((await deps.sagas.get(sagaId))?.facts[MAY_HAVE_ARRIVED_FACT] !== undefined || (await deps.dedupe.isClaimed(marker))) {
        return settle(detail, attempt, origin, audit, 'IN_DOUBT', 'in-doubt', 'PaymentInDoubt', `retry budget spent; an attempt may have reached the BCB (${classified.code})`, { code: classified.code });
      }
      return settle(detail, attempt, origin, audit, 'FAILED', 'transmission-failed', 'TransmissionFailed', `retry budget spent; no attempt reached the BCB (${classified.code})`, { code: classified.code });
    }

    audit.push(...exchangeAudit(exchangesOf(posted) ?? [{ requestDate, requestHeaders, response: posted.response, receivedAt: now() }]));
    // An answer to an inbound payment: the BCB's time indicators hold the receiver to its answer
    // time, from receiving the pacs.008 to the SPI receiving our pacs.002 (Manual de Tempos do
    // Pix); selo measures receipt → this 201, logs it and keeps it in the saga and the audit trail.
    const answeredAt = now();
    // Only a saga of something the BCB sent us records when it was received.
    const receivedAt = Date.parse(started.saga.facts.receivedAt ?? '');
    const answerMs = Number.isFinite(receivedAt) ? answeredAt.getTime() - receivedAt : undefined;
    const reason = `ICOM 201 PI-ResourceId=${posted.resourceId}${answerMs === undefined ? '' : ` answered ${answerMs} ms after receipt`}`;
    if (answerMs !== undefined) context.logger.info({ sagaId, endToEndId: detail.endToEndId, resourceId: posted.resourceId, answerMs }, 'answer to an inbound payment accepted by the ICOM');
    const events: EventToPublish[] = [event('MessageTransmitted', detail, { channel: 'spi', messageType: data.messageType, resourceId: posted.resourceId, ...(answerMs === undefined ? {} : { answerMs }) }, attempt)];
    try {
      const written = await deps.sagas.transition({
        sagaId, to: 'TRANSMITTED', from: ['TRANSMITTING'], reason, attempt, idempotencyKey: 'transmitted', current: started.saga,
        ...(answerMs === undefined ? {} : { facts: { answeredAt: answeredAt.toISOString() } }),
      });
      if (written.status === 'applied') audit.push(transitionAuditRecord(origin, { from: 'TRANSMITTING', to: 'TRANSMITTED', reason }));
    } catch (error) {
      if (classifyError(error).code !== 'ILLEGAL_SAGA_TRANSITION') {
        // The BCB has the message but the saga does not say so yet. The marker stays, so a
        // redelivery resends the same bytes (the BCB's idempotency) and can never conclude FAILED.
        throw error;
      }
      const current = await deps.sagas.get(sagaId);
      if (current?.state === 'FAILED') {
        // Another delivery concluded FAILED while this one got a 201: operations decide.
        const conflict = `ICOM 201 PI-ResourceId=${posted.resourceId} for a payment recorded as FAILED`;
        await deps.sagas.transition({ sagaId, to: 'OUTCOME_CONFLICT', from: ['FAILED'], reason: conflict, attempt, idempotencyKey: 'outcome-conflict' });
        audit.push(transitionAuditRecord(origin, { from: 'FAILED', to: 'OUTCOME_CONFLICT', reason: conflict }));
        events.push(event('OutcomeConflict', detail, { channel: 'spi', reason: conflict }, attempt));
      }
      // Otherwise the saga is already further along (the pacs.002 was read first, or it is in doubt).
    }
    return { events, audit };
  }

  /** Records a final outcome of this step and the fact that tells everyone. */
  async function settle(
    detail: EventDetail<MessageSignedData>,
    attempt: number,
    origin: AuditOrigin,
    audit: AuditRecord[],
    to: 'FAILED' | 'IN_DOUBT',
    key: string,
    fact: string,
    reason: string,
    extra: Readonly<Record<string, unknown>>,
  ): Promise<Outcome> {
    try {
      await deps.sagas.transition({ sagaId: detail.sagaId, to, from: ['TRANSMITTING'], reason, attempt, idempotencyKey: key });
    } catch (error) {
      if (classifyError(error).code !== 'ILLEGAL_SAGA_TRANSITION') throw error;
      // A concurrent delivery moved the saga on (e.g. its 201 was recorded): its outcome stands.
      return alreadyDone(await deps.sagas.get(detail.sagaId), detail, attempt) ?? { events: [], audit };
    }
    audit.push(transitionAuditRecord(origin, { from: 'TRANSMITTING', to, reason }));
    return { events: [event(fact, detail, { channel: 'spi', reason, ...extra }, attempt)], audit };
  }

  async function transmitDict(detail: EventDetail<MessageSignedData>, context: HandlerContext): Promise<Outcome> {
    const { data } = detail;
    const attempt = context.attempt;
    const origin = originOf(detail, data, attempt);
    const operation = data.messageType;
    if (!Object.hasOwn(DICT_OPERATIONS, operation)) throw new PermanentError('TRANSMIT_REQUEST_INVALID', `unknown DICT operation ${operation}`);
    const spec = DICT_OPERATIONS[operation as DictOperation];
    const query: Record<string, string | readonly string[]> = { ...data.queryParameters };
    // DICT OpenAPI 2.12.1, GET /claims/ (listClaims): query parameter `Participant` ("ISPB do
    // participante direto ou indireto interessado") is `required: true`; the PSP's own ISPB unless
    // the request names another (an indirect participant's).
    const queryRules: Readonly<Record<string, string>> = spec.query;
    for (const [name, rule] of Object.entries(queryRules)) {
      if (rule !== 'required' || query[name] !== undefined) continue;
      if (name === 'Participant' && deps.ispb !== undefined) query[name] = deps.ispb;
      else throw new PermanentError('TRANSMIT_REQUEST_INVALID', `DICT ${operation} needs query parameter ${name}`);
    }
    const path = dictPath(operation as DictOperation, data.pathParameters, query);
    const body = await payloadOf(data, deps);
    const answerKey = `dict-answers/${detail.sagaId}.json`;
    const saga = await deps.sagas.get(detail.sagaId);
    if (saga !== undefined && (SENT_STATES.has(saga.state) || saga.state === 'FAILED')) {
      // Redelivered after the answer was recorded: publish it again (the first publication may
      // have been lost), from where it was kept.
      if (!saga.history.some((t) => t.key === 'transmitted')) return { events: [], audit: [] };
      const kept = JSON.parse(await deps.claimCheck.get({ bucket: deps.claimCheckBucket, key: answerKey })) as Record<string, unknown>;
      return { events: [{ detailType: 'DictResponseReceived', detail: deriveDetail(detail, kept, { attempt }) }], audit: [] };
    }
    await deps.sagas.transition({ sagaId: detail.sagaId, to: 'TRANSMITTING', from: ['SIGNED'], reason: `DICT ${operation}`, attempt, idempotencyKey: 'transmitting' });
    const requestDate = now();
    const requestHeaders: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/xml; charset=utf-8' };
    for (const [name, value] of Object.entries(data.requestHeaders ?? {})) {
      if (name === 'PI-PayerId' || name === 'PI-EndToEndId') requestHeaders[name] = value;
    }
    if (deps.ispb !== undefined && (spec.headers as readonly string[]).includes('PI-RequestingParticipant')) requestHeaders['PI-RequestingParticipant'] = deps.ispb;
    // 5xx and transport errors are retried: the DICT's RequestId makes a resend safe.
    const response = await deps.dict.send(spec.method, path, body, requestHeaders);
    if (response.status === 429 || response.status >= 500) throw answerError(`DICT ${operation}`, response);
    const audit: AuditRecord[] = [
      exchangeAuditRecord(origin, {
        requestDate, method: spec.method, path, requestHeaders, requestBody: body ?? '',
        // The verify worker checks the signature; here it is not yet known.
        response: { statusCode: response.status, headers: response.headers, body: response.body, signatureValid: null, receivedAt: now() },
      }),
    ];
    if (response.status === 409) {
      // DICT OpenAPI 2.12.1, "Tratamento de erros": ResourceConflict (409) "Este recurso está
      // sendo processado por outra operação no momento. Indica-se que a requisição seja feita
      // novamente em instantes" (components/responses/Conflict, answered by createEntry,
      // createClaim and the claim's acknowledge/confirm/cancel/complete). Not a refusal: the same
      // signed request (same RequestId, so a resend is safe) goes again with the queue's backoff,
      // bounded by its receive budget like a 5xx, and never reaches compensation from here.
      throw withAuditRecords(new TransientError('DICT_RESOURCE_CONFLICT', `DICT ${operation}: the DICT answered 409 ResourceConflict (the resource is being processed by another operation)`, { details: { status: 409 } }), audit);
    }
    const reason = `DICT ${operation} answered ${response.status}`;
    const answer = await keepDictAnswer(answerKey, { channel: 'dict', operation, status: response.status, contentType: response.headers['content-type'] ?? '', body: response.body });
    const written = await deps.sagas.transition({ sagaId: detail.sagaId, to: 'TRANSMITTED', from: ['TRANSMITTING'], reason, attempt, idempotencyKey: 'transmitted' });
    if (written.status === 'applied') audit.push(transitionAuditRecord(origin, { from: 'TRANSMITTING', to: 'TRANSMITTED', reason }));
    return { events: [{ detailType: 'DictResponseReceived', detail: deriveDetail(detail, answer, { attempt }) }], audit };
  }

  /** Keeps a DICT answer where a redelivery finds it; large answers travel by claim check. */
  async function keepDictAnswer(key: string, answer: Record<string, unknown>): Promise<Record<string, unknown>> {
    const text = JSON.stringify(answer);
    const reference = await deps.claimCheck.put(key, text);
    if (Buffer.byteLength(text, 'utf8') <= CLAIM_CHECK_THRESHOLD_BYTES) return answer;
    return { ...answer, body: undefined, claimCheck: reference };
  }

  return async (message, context) => {
    const detail = message.event.detail;
    if (detail.data.channel === 'spi') return transmitSpi(detail, context);
    return transmitDict(detail, context);
  };
}
