import { describe, expect, it } from 'vitest';
import { BcbRequestRejectedError, BcbUnavailableError, answerError } from '../../../shared/bcb-client/index.ts';
import type { IcomPosted } from '../../../shared/bcb-client/index.ts';
import type { ClaimCheckStore } from '../../../shared/claim-check/index.ts';
import { newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import type { MessageSignedData } from '../../../shared/events/index.ts';
import type { DecodedMessage, HandlerContext } from '../../../shared/runtime/index.ts';
import { IllegalTransitionError, isLegalTransition } from '../../../shared/saga/index.ts';
import type { Saga, SagaState, SagaStore, DedupeStore } from '../../../shared/saga/index.ts';
import { MAY_HAVE_ARRIVED_FACT, createTransmitHandler } from '../../../workers/transmit/index.ts';
import type { IcomPort } from '../../../workers/transmit/index.ts';
import { silentLogger } from '../runtime/fakes.ts';
import { auditRecordsOf } from '../../../shared/runtime/index.ts';

const E2E = 'E99999004202611281700aaaaaaaaaaa';

/**
 * An in-memory saga store with the real rules: idempotency keys, the expected `from` states and
 * the legal transition table. `failWrites` makes writes to the given states fail like an outage.
 */
function fakeSagas(initial: SagaState = 'SIGNED', failWrites: ReadonlySet<SagaState> = new Set()): Pick<SagaStore, 'get' | 'transition' | 'applyUnread' | 'claimFact' | 'releaseFact'> & { saga: Saga; reads: number } {
  const saga: Saga = { sagaId: paymentSagaId(E2E), kind: 'payment', state: initial, version: 1, createdAt: '', updatedAt: '', history: [], compensations: [], facts: {} };
  const write = (input: Parameters<SagaStore['transition']>[0]): Promise<Saga> => {
    if (failWrites.has(input.to)) return Promise.reject(new Error('DynamoDB unavailable'));
    (saga.history as Saga['history'][number][]).push({ at: '', from: saga.state, to: input.to, reason: input.reason, attempt: input.attempt, key: input.idempotencyKey });
    saga.state = input.to;
    saga.facts = { ...saga.facts, ...input.facts };
    return Promise.resolve(saga);
  };
  return {
    saga,
    reads: 0,
    get() {
      this.reads += 1;
      return Promise.resolve(structuredClone(saga));
    },
    transition: (input) => {
      if (saga.history.some((t) => t.key === input.idempotencyKey)) return Promise.resolve({ status: 'already-applied', saga });
      if ((input.from !== undefined && !input.from.includes(saga.state)) || !isLegalTransition('payment', saga.state, input.to)) {
        return Promise.reject(new IllegalTransitionError(saga.sagaId, saga.state, input.to, input.from));
      }
      return write(input).then((written) => ({ status: 'applied', saga: written }));
    },
    claimFact: (name, fact, value) => {
      if (saga.facts[fact] !== undefined) return Promise.resolve(false);
      saga.facts = { ...saga.facts, [fact]: value };
      return Promise.resolve(true);
    },
    releaseFact: (_name, fact) => {
      const { [fact]: _released, ...rest } = saga.facts;
      saga.facts = rest;
      return Promise.resolve();
    },
    // As the store: the write conditioned on the one `from` state and the key being absent, without a read.
    applyUnread: (input) => {
      const from = input.from?.length === 1 ? input.from[0] : undefined;
      if (from === undefined || saga.state !== from || !isLegalTransition('payment', from, input.to) || saga.history.some((t) => t.key === input.idempotencyKey)) return Promise.resolve(undefined);
      return write(input);
    },
  };
}

function fakeDedupe(): Pick<DedupeStore, 'claim' | 'isClaimed' | 'release'> & { keys: Set<string> } {
  const keys = new Set<string>();
  return {
    keys,
    claim: (key) => Promise.resolve(!keys.has(key) && keys.add(key) !== undefined),
    isClaimed: (key) => Promise.resolve(keys.has(key)),
    release: (key) => Promise.resolve(void keys.delete(key)),
  };
}

const noClaimCheck: ClaimCheckStore = { put: () => Promise.reject(new Error('unused')), get: () => Promise.reject(new Error('unused')) };

/** A transmit handler for SPI messages over `icom` and `sagas`, with fakes for the rest (`deps` overrides). */
function spiHandler(icom: IcomPort, sagas: ReturnType<typeof fakeSagas>, deps: Partial<Parameters<typeof createTransmitHandler>[0]> = {}): ReturnType<typeof createTransmitHandler> {
  return createTransmitHandler({ icom, dict: { send: () => Promise.reject(new Error('unused')) }, sagas, dedupe: fakeDedupe(), claimCheck: noClaimCheck, claimCheckBucket: 'payloads', ...deps });
}

function icomAnswering(...answers: (IcomPosted | Error)[]): IcomPort & { posts: string[] } {
  const posts: string[] = [];
  return {
    postPath: '/api/v1/in/99999004/msgs',
    posts,
    post(xml) {
      posts.push(xml);
      const answer = answers.shift() ?? new Error('no more answers');
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
}

function message(): DecodedMessage<MessageSignedData> {
  return {
    event: {
      id: 'e',
      detailType: 'MessageSigned',
      source: 'selo.sign',
      time: undefined,
      detail: { version: 1, sagaId: paymentSagaId(E2E), endToEndId: E2E, attempt: 1, traceparent: newTraceparent(), data: { channel: 'spi', messageType: 'pacs.008', payload: { inline: '<Envelope/>' } } },
    },
    sqs: { messageId: 'm', receiveCount: 1 },
  };
}

function context(attempt: number, maxReceiveCount = 3): HandlerContext {
  return { logger: silentLogger(), attempt, maxReceiveCount, signal: new AbortController().signal };
}

const created = (id: string): IcomPosted => ({ resourceId: id, response: { status: 201, headers: { 'pi-resourceid': id }, body: '' } });
const answer = (status: number): { status: number; headers: Record<string, string>; body: string } => ({ status, headers: {}, body: '<Problem><Title>Bad</Title></Problem>' });

describe('transmit handler', () => {
  it('records TRANSMITTING before the POST and TRANSMITTED with the PI-ResourceId after the 201', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(created('R1'));
    const handler = spiHandler(icom, sagas);
    const outcome = await handler(message(), context(1));
    expect(outcome.events.map((e) => [e.detailType, (e.detail.data as { resourceId?: string }).resourceId])).toEqual([['MessageTransmitted', 'R1']]);
    expect(sagas.saga.history.map((t) => t.to)).toEqual(['TRANSMITTING', 'TRANSMITTED']);
    expect(outcome.audit.map((r) => r.kind)).toEqual(['transition', 'response', 'transition']);
    // The first delivery writes its steps without reading the saga.
    expect(sagas.reads).toBe(0);
  });

  it('never sends again after a 201, and publishes MessageTransmitted again on redelivery', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(created('R2'), created('R3'));
    const handler = spiHandler(icom, sagas);
    await handler(message(), context(1));
    const again = await handler(message(), context(2));
    expect(icom.posts).toHaveLength(1);
    expect((again.events[0]?.detail.data as { resourceId: string }).resourceId).toBe('R2');
  });

  it('turns a 4xx into TransmissionRejected and a FAILED saga, without retrying', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(new BcbRequestRejectedError('POST', answer(403)));
    const handler = spiHandler(icom, sagas);
    const outcome = await handler(message(), context(1));
    expect(outcome.events[0]?.detailType).toBe('TransmissionRejected');
    expect(outcome.events[0]?.detail.data).toMatchObject({ status: 403 });
    expect(sagas.saga.state).toBe('FAILED');
    const redelivered = await handler(message(), context(2));
    expect(icom.posts).toHaveLength(1);
    expect(redelivered.events[0]?.detailType).toBe('TransmissionRejected');
  });

  it('throws transient errors for retry while the budget lasts, resending the same bytes', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(answerError('POST', answer(503)), created('R4'));
    const handler = spiHandler(icom, sagas);
    await expect(handler(message(), context(1))).rejects.toMatchObject({ code: 'BCB_SERVER_ERROR', retryability: 'transient', delivery: 'not-sent' });
    expect((await handler(message(), context(2))).events[0]?.detailType).toBe('MessageTransmitted');
    expect(icom.posts[0]).toBe(icom.posts[1]);
  });

  it('ends in TransmissionFailed when no attempt can have reached the BCB', async () => {
    const sagas = fakeSagas();
    const refused = (): BcbUnavailableError => new BcbUnavailableError('BCB_UNREACHABLE', 'refused', 'not-sent', undefined);
    const icom = icomAnswering(refused(), refused());
    const handler = spiHandler(icom, sagas);
    await expect(handler(message(), context(1, 2))).rejects.toMatchObject({ code: 'BCB_UNREACHABLE' });
    const outcome = await handler(message(), context(2, 2));
    expect(outcome.events[0]?.detailType).toBe('TransmissionFailed');
    expect(sagas.saga.state).toBe('FAILED');
  });

  it('ends in PaymentInDoubt, not failure, when an earlier attempt may have reached the BCB', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(
      new BcbUnavailableError('BCB_TIMEOUT', 'no answer', 'unknown', undefined),
      new BcbUnavailableError('BCB_UNREACHABLE', 'refused', 'not-sent', undefined),
    );
    const handler = spiHandler(icom, sagas);
    await expect(handler(message(), context(1, 2))).rejects.toMatchObject({ code: 'BCB_TIMEOUT' });
    const outcome = await handler(message(), context(2, 2));
    expect(outcome.events[0]?.detailType).toBe('PaymentInDoubt');
    expect(sagas.saga.state).toBe('IN_DOUBT');
  });

  it('never concludes FAILED after a 201 whose saga write failed: resends the same bytes, stays TRANSMITTING', async () => {
    const sagas = fakeSagas('SIGNED', new Set<SagaState>(['TRANSMITTED']));
    const icom = icomAnswering(created('R5'), new BcbUnavailableError('BCB_UNREACHABLE', 'refused', 'not-sent', undefined));
    const handler = spiHandler(icom, sagas);
    await expect(handler(message(), context(1, 2))).rejects.toThrow('DynamoDB unavailable');
    const last = await handler(message(), context(2, 2));
    expect(last.events.map((e) => e.detailType)).toEqual(['PaymentInDoubt']);
    expect(sagas.saga.state).toBe('IN_DOUBT');
  });

  it('treats a 4xx after an attempt that may have arrived as in doubt, not as a refusal', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(new BcbUnavailableError('BCB_TIMEOUT', 'no answer', 'unknown', undefined), new BcbRequestRejectedError('POST', answer(409)));
    const handler = spiHandler(icom, sagas);
    const timedOut = await handler(message(), context(1)).then(() => undefined, (error: unknown) => error);
    expect(timedOut).toMatchObject({ code: 'BCB_TIMEOUT' });
    // The transition and the request that may have arrived are audited although no answer came.
    expect(auditRecordsOf(timedOut).map((r) => [r.kind, r.transition_to ?? r.request_method, r.response_status_code ?? null])).toEqual([
      ['transition', 'TRANSMITTING', null],
      ['request', 'POST', null],
    ]);
    const second = await handler(message(), context(2));
    expect(second.events[0]?.detailType).toBe('PaymentInDoubt');
    expect(sagas.saga.state).toBe('IN_DOUBT');
  });

  it('writes the may-have-arrived marker in the TRANSMITTING write itself: no other item, no extra call', async () => {
    const sagas = fakeSagas();
    const dedupe = fakeDedupe();
    const icom = icomAnswering(new BcbUnavailableError('BCB_TIMEOUT', 'no answer', 'unknown', undefined));
    const handler = spiHandler(icom, sagas, { dedupe, now: () => new Date('2026-12-07T13:00:00.000Z') });
    await expect(handler(message(), context(1))).rejects.toMatchObject({ code: 'BCB_TIMEOUT' });
    expect(sagas.saga.facts[MAY_HAVE_ARRIVED_FACT]).toBe('2026-12-07T13:00:00.000Z');
    expect(sagas.saga.history.map((t) => t.to)).toEqual(['TRANSMITTING']);
    expect(dedupe.keys.size).toBe(0);
  });

  it('removes the marker after a first attempt that provably never left, so the next one may still prove a refusal', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(new BcbUnavailableError('BCB_UNREACHABLE', 'refused', 'not-sent', undefined), new BcbRequestRejectedError('POST', answer(403)));
    const handler = spiHandler(icom, sagas);
    await expect(handler(message(), context(1))).rejects.toMatchObject({ code: 'BCB_UNREACHABLE' });
    expect(sagas.saga.facts[MAY_HAVE_ARRIVED_FACT]).toBeUndefined();
    const second = await handler(message(), context(2));
    expect(second.events[0]?.detailType).toBe('TransmissionRejected');
    // The retry claimed the marker again before its POST.
    expect(sagas.saga.facts[MAY_HAVE_ARRIVED_FACT]).toBeDefined();
  });

  it('counts a marker an earlier version kept in its own item: a 4xx then is in doubt (rolling deploys)', async () => {
    const sagas = fakeSagas();
    const dedupe = fakeDedupe();
    // An earlier version's attempt: TRANSMITTING recorded, its marker in its own item, none in the saga.
    await sagas.transition({ sagaId: paymentSagaId(E2E), to: 'TRANSMITTING', from: ['SIGNED'], reason: 'POST to ICOM', attempt: 1, idempotencyKey: 'transmitting' });
    await dedupe.claim(`transmit-unknown#${paymentSagaId(E2E)}`, 60);
    const icom = icomAnswering(new BcbRequestRejectedError('POST', answer(409)));
    const handler = spiHandler(icom, sagas, { dedupe });
    const outcome = await handler(message(), context(2));
    expect(outcome.events[0]?.detailType).toBe('PaymentInDoubt');
    expect(sagas.saga.state).toBe('IN_DOUBT');
  });

  it('with markerItem, also writes the marker in its own item, where an earlier version looks for it', async () => {
    const sagas = fakeSagas();
    const dedupe = fakeDedupe();
    const icom = icomAnswering(new BcbUnavailableError('BCB_TIMEOUT', 'no answer', 'unknown', undefined));
    const handler = spiHandler(icom, sagas, { dedupe, markerItem: true });
    await expect(handler(message(), context(1))).rejects.toMatchObject({ code: 'BCB_TIMEOUT' });
    expect([...dedupe.keys]).toEqual([`transmit-unknown#${paymentSagaId(E2E)}`]);
    expect(sagas.saga.facts[MAY_HAVE_ARRIVED_FACT]).toBeDefined();
  });

  it('with markerItem, a retry after a first attempt that never left may still prove a refusal', async () => {
    const sagas = fakeSagas();
    const dedupe = fakeDedupe();
    const icom = icomAnswering(new BcbUnavailableError('BCB_UNREACHABLE', 'refused', 'not-sent', undefined), new BcbRequestRejectedError('POST', answer(403)));
    const handler = spiHandler(icom, sagas, { dedupe, markerItem: true });
    await expect(handler(message(), context(1))).rejects.toMatchObject({ code: 'BCB_UNREACHABLE' });
    expect(dedupe.keys.size).toBe(0);
    expect((await handler(message(), context(2))).events[0]?.detailType).toBe('TransmissionRejected');
  });

  it('never fails a payment when a concurrent duplicate delivery gets a 4xx while the other got a 201', async () => {
    const sagas = fakeSagas();
    const icom = icomAnswering(created('R6'), new BcbRequestRejectedError('POST', answer(409)));
    const handler = spiHandler(icom, sagas);
    const [a, b] = await Promise.all([handler(message(), context(1)), handler(message(), context(1))]);
    const facts = [...a.events, ...b.events].map((e) => e.detailType).sort();
    expect(facts).not.toContain('TransmissionRejected');
    expect(sagas.saga.history.map((t) => t.to)).not.toContain('FAILED');
    expect(facts).toContain('MessageTransmitted');
  });

  it('counts an unexpected status (502) as maybe delivered and a 503 as not taken', () => {
    expect(answerError('POST', answer(502))).toMatchObject({ delivery: 'unknown', retryability: 'transient' });
    expect(answerError('POST', answer(408))).toMatchObject({ delivery: 'unknown' });
    expect(answerError('POST', answer(503))).toMatchObject({ delivery: 'not-sent' });
    expect(answerError('POST', answer(422))).toBeInstanceOf(BcbRequestRejectedError);
  });

  it('sends PI-RequestingParticipant on the DICT reads whose OpenAPI requires it, and not on others', async () => {
    const sent: { path: string; headers: Readonly<Record<string, string>> }[] = [];
    const kept = new Map<string, string>();
    const claimCheck: ClaimCheckStore = {
      put: (key, body) => {
        kept.set(key, body);
        return Promise.resolve({ bucket: 'payloads', key });
      },
      get: (reference) => Promise.resolve(kept.get(reference.key) ?? ''),
    };
    const dict = {
      send: (_method: string, path: string, _body?: string, headers: Readonly<Record<string, string>> = {}) => {
        sent.push({ path, headers });
        return Promise.resolve({ status: 200, headers: {}, body: '<GetClaimResponse/>' });
      },
    };
    for (const [messageType, pathParameters] of [['getClaim', { ClaimId: 'c0ffee00-0000-4000-8000-000000000001' }], ['listClaims', {}]] as const) {
      const handler = createTransmitHandler({ icom: icomAnswering(), dict, sagas: fakeSagas(), dedupe: fakeDedupe(), claimCheck, claimCheckBucket: 'payloads', ispb: '99999004' });
      const signed = message();
      signed.event.detail.data = { channel: 'dict', messageType, pathParameters, payload: null, requestHeaders: { 'PI-PayerId': '70000000000' } };
      await handler(signed, context(1));
    }
    expect(sent.map((s) => s.headers['PI-RequestingParticipant'])).toEqual(['99999004', undefined]);
    // Headers from the request (DictRequested data.headers) travel as they came.
    expect(sent.map((s) => s.headers['PI-PayerId'])).toEqual(['70000000000', '70000000000']);
  });

  function dictAnswering(...statuses: number[]): { send: (method: string, path: string) => Promise<{ status: number; headers: Record<string, string>; body: string }>; paths: string[] } {
    const paths: string[] = [];
    return {
      paths,
      send: (_method, path) => {
        paths.push(path);
        const status = statuses.shift() ?? 500;
        return Promise.resolve({ status, headers: { 'content-type': 'application/xml' }, body: status === 409 ? '<problem xmlns="urn:ietf:rfc:7807"><type>https://dict.pi.rsfn.net.br/api/v2/error/ResourceConflict</type><title>Conflict</title><status>409</status></problem>' : '<CreateEntryResponse/>' });
      },
    };
  }

  function keepingClaimCheck(): ClaimCheckStore {
    const kept = new Map<string, string>();
    return {
      put: (key, body) => Promise.resolve(void kept.set(key, body)).then(() => ({ bucket: 'payloads', key })),
      get: (reference) => Promise.resolve(kept.get(reference.key) ?? ''),
    };
  }

  function dictMessage(data: MessageSignedData): DecodedMessage<MessageSignedData> {
    const signed = message();
    signed.event.detail.data = data;
    return signed;
  }

  it("sends listClaims' required Participant query parameter (our ISPB) and the request's own query parameters", async () => {
    const dict = dictAnswering(200, 200);
    const handler = createTransmitHandler({ icom: icomAnswering(), dict, sagas: fakeSagas(), dedupe: fakeDedupe(), claimCheck: keepingClaimCheck(), claimCheckBucket: 'payloads', ispb: '99999004' });
    await handler(dictMessage({ channel: 'dict', messageType: 'listClaims', payload: null, queryParameters: { IsDonor: 'true', Status: ['OPEN', 'CONFIRMED'] } }), context(1));
    const url = new URL(dict.paths[0] ?? '', 'https://dict');
    expect(url.pathname).toBe('/api/v2/claims/');
    expect(url.searchParams.get('Participant')).toBe('99999004');
    expect(url.searchParams.get('IsDonor')).toBe('true');
    expect(url.searchParams.getAll('Status')).toEqual(['OPEN', 'CONFIRMED']);
  });

  it('refuses a listClaims it cannot give a Participant (no ISPB configured) as TRANSMIT_REQUEST_INVALID, without sending', async () => {
    const dict = dictAnswering(200);
    const handler = createTransmitHandler({ icom: icomAnswering(), dict, sagas: fakeSagas(), dedupe: fakeDedupe(), claimCheck: keepingClaimCheck(), claimCheckBucket: 'payloads' });
    await expect(handler(dictMessage({ channel: 'dict', messageType: 'listClaims', payload: null }), context(1))).rejects.toMatchObject({ code: 'TRANSMIT_REQUEST_INVALID', retryability: 'permanent' });
    expect(dict.paths).toEqual([]);
  });

  it('retries a DICT 409 ResourceConflict as a transient error with the same request, and passes the next answer on', async () => {
    const dict = dictAnswering(409, 201);
    const sagas = fakeSagas();
    const handler = createTransmitHandler({ icom: icomAnswering(), dict, sagas, dedupe: fakeDedupe(), claimCheck: keepingClaimCheck(), claimCheckBucket: 'payloads', ispb: '99999004' });
    const signed = dictMessage({ channel: 'dict', messageType: 'createEntry', payload: { inline: '<CreateEntryRequest/>' } });
    let thrown: unknown;
    try {
      await handler(signed, context(1));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'DICT_RESOURCE_CONFLICT', retryability: 'transient' });
    // The 409 exchange is audited even though no event is published.
    expect(auditRecordsOf(thrown).map((r) => r.response_status_code)).toEqual([409]);
    expect(sagas.saga.state).toBe('TRANSMITTING');
    const outcome = await handler(signed, context(2));
    expect(outcome.events.map((e) => [e.detailType, (e.detail.data as { status: number }).status])).toEqual([['DictResponseReceived', 201]]);
    expect(dict.paths).toEqual(['/api/v2/entries/', '/api/v2/entries/']);
  });
});
