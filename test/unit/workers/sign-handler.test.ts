import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimCheckReference, ClaimCheckStore } from '../../../shared/claim-check/index.ts';
import { echoSagaId, inboundSagaId, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import type { EventDetail, MessageSignedData } from '../../../shared/events/index.ts';
import type { DecodedMessage, HandlerContext } from '../../../shared/runtime/index.ts';
import type { BizMsgIndex, SagaStore } from '../../../shared/saga/index.ts';
import { TrustStore, pemSigningKey, verifySpi } from '../../../shared/xmldsig/index.ts';
import { generateEndToEndId, generateReturnId, parsePacs004, paymentMessageId, parsePibr001 } from '../../../shared/iso20022/index.ts';
import { outcomeQueryDetail, readEntryQuery } from '../../../shared/bcb-query/index.ts';
import { createSignHandler, decodeSignRequest, readSignWorkerConfig } from '../../../workers/sign/index.ts';
import type { SignRequest } from '../../../workers/sign/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { silentLogger } from '../runtime/fakes.ts';

const ISPB = '99999004';
let pki: TestPki;
let deps: Parameters<typeof createSignHandler>[0];
const transitions: { sagaId: string; to: string; idempotencyKey: string }[] = [];
const claimChecked: string[] = [];
/** Pointers the handler wrote: `message:<BizMsgIdr>` or `echo:<Data>` → saga id. */
const pointers = new Map<string, string>();
const fakeIndex: Pick<BizMsgIndex, 'recordMessage' | 'recordEcho'> = {
  recordMessage: (bizMsgIdr, sagaId) => Promise.resolve(void pointers.set(`message:${bizMsgIdr}`, sagaId)),
  recordEcho: (data, sagaId) => Promise.resolve(void pointers.set(`echo:${data}`, sagaId)),
};

/** A saga store that records calls; the first `sign` transition applies, later ones are already applied. */
const fakeSagas: Pick<SagaStore, 'create' | 'createWithStep' | 'transition' | 'get'> = {
  create: () => Promise.resolve({ status: 'applied', saga: undefined as never }),
  createWithStep: (input) => {
    const seen = transitions.some((t) => t.sagaId === input.sagaId && t.idempotencyKey === input.step.idempotencyKey);
    transitions.push({ sagaId: input.sagaId, to: input.step.to, idempotencyKey: input.step.idempotencyKey });
    return Promise.resolve(seen ? undefined : ({ sagaId: input.sagaId } as never));
  },
  get: () => Promise.reject(new Error('a request from core banking is signed without reading its saga')),
  transition: (input) => {
    const seen = transitions.some((t) => t.sagaId === input.sagaId && t.idempotencyKey === input.idempotencyKey);
    transitions.push({ sagaId: input.sagaId, to: input.to, idempotencyKey: input.idempotencyKey });
    return Promise.resolve({ status: seen ? 'already-applied' : 'applied', saga: undefined as never });
  },
};

const fakeClaimCheck: ClaimCheckStore = {
  put: (key: string): Promise<ClaimCheckReference> => {
    claimChecked.push(key);
    return Promise.resolve({ bucket: 'payloads', key });
  },
  get: () => Promise.reject(new Error('unused')),
};

function message(endToEndId: string, overrides: Partial<EventDetail<unknown>> = {}, amount = '42.00'): DecodedMessage<SignRequest> {
  const data = {
    message: 'pacs.008',
    transaction: {
      endToEndId,
      amount,
      acceptanceDateTime: '2026-11-28T17:00:00.000Z',
      localInstrument: 'MANU',
      debtor: { name: 'Fulano', taxId: '70000000000' },
      debtorAccount: { number: '1', type: 'CACC' },
      creditorAgentIspb: '20000000',
      creditor: { taxId: '80000000000' },
      creditorAccount: { number: '2', type: 'CACC' },
      purpose: 'IPAY',
    },
  };
  return {
    event: {
      id: 'evt-1',
      detailType: 'PaymentRequested',
      source: 'core.banking',
      time: '2026-11-28T17:00:01Z',
      detail: { version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), ...overrides, data: decodeSignRequest(data, 'PaymentRequested') },
    },
    sqs: { messageId: 'm-1', receiveCount: 1 },
  };
}

const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('psp signing');
  deps = { ispb: ISPB, signingKey: pemSigningKey(leaf.keyPem, leaf.certPem), sagas: fakeSagas, claimCheck: fakeClaimCheck, bizMsgIndex: fakeIndex, validateSpi: () => Promise.resolve(), now: () => new Date('2026-11-28T17:00:02.000Z') };
});

afterAll(() => pki.dispose());

function signedData(outcome: Awaited<ReturnType<ReturnType<typeof createSignHandler>>>): MessageSignedData {
  return outcome.events[0]?.detail.data as MessageSignedData;
}

describe('sign handler', () => {
  it('signs the same bytes with the same MsgId for every delivery of one request', async () => {
    const handler = createSignHandler(deps);
    const e2e = 'E99999004202611281700aaaaaaaaaaa';
    const first = await handler(message(e2e), context);
    const second = await handler(message(e2e), context);
    expect(signedData(second)).toEqual(signedData(first));
    expect(first.audit).toHaveLength(1);
    // The redelivery publishes again (its first event may have been lost) but audits no new transition.
    expect(second.events).toHaveLength(1);
    expect(second.audit).toHaveLength(0);
  });

  it('gives different payments different MsgIds', async () => {
    const handler = createSignHandler(deps);
    const a = signedData(await handler(message('E99999004202611281700bbbbbbbbbbb'), context));
    const b = signedData(await handler(message('E99999004202611281700ccccccccccc'), context));
    expect(a.bizMsgIdr).toMatch(/^M99999004[A-Za-z0-9]{23}$/);
    expect(a.bizMsgIdr).not.toBe(b.bizMsgIdr);
  });

  it('derives a pacs.008\'s BizMsgIdr from its EndToEndId and writes no pointer for it (verify derives it back); with legacyMessageIds it draws it from the saga id, as older versions, with a pointer', async () => {
    const e2e = 'E99999004202611281700jjjjjjjjjjj';
    const data = signedData(await createSignHandler(deps)(message(e2e), context));
    expect(data.bizMsgIdr).toBe('M99999004202611281700jjjjjjjjjjj');
    expect(pointers.has(`message:${data.bizMsgIdr ?? ''}`)).toBe(false);
    // For a rolling deploy beside older sign and verify tasks (SELO_SIGN_LEGACY_MESSAGE_IDS): the
    // id an older version draws for this payment (its MsgId derived from the saga id by seeded draws).
    const e2eOld = 'E99999004202611281700jjjjjjjjjjk';
    const legacy = signedData(await createSignHandler({ ...deps, legacyMessageIds: true })(message(e2eOld), context));
    expect(legacy.bizMsgIdr).toMatch(/^M99999004[a-zA-Z0-9]{23}$/);
    expect(legacy.bizMsgIdr).not.toBe(paymentMessageId(e2eOld));
    expect(signedData(await createSignHandler({ ...deps, legacyMessageIds: true })(message(e2eOld), context)).bizMsgIdr).toBe(legacy.bizMsgIdr);
    expect(pointers.get(`message:${legacy.bizMsgIdr ?? ''}`)).toBe(paymentSagaId(e2eOld));
  });

  it('re-signs a redelivered pacs.008 with the BizMsgIdr its first signing recorded, also one an older version drew otherwise', async () => {
    const e2e = 'E99999004202611281700lllllllllll';
    const olderId = 'M99999004Ab3dE5gH7jK9mN1pQ3sT5vW';
    const creDt = '2026-11-28T17:00:01.500Z';
    let validated = '';
    const signedBefore = (digest: string): Pick<SagaStore, 'create' | 'createWithStep' | 'transition' | 'get'> => ({
      ...fakeSagas,
      create: () =>
        Promise.resolve({
          status: 'already-applied',
          saga: { sagaId: paymentSagaId(e2e), kind: 'payment', state: 'SIGNED', version: 2, createdAt: '', updatedAt: '', compensations: [], facts: {},
            history: [{ at: '', from: 'REQUESTED', to: 'SIGNED', reason: `pacs.008 ${olderId} signed sha256=${digest} creDt=${creDt}`, attempt: 1, key: 'sign' }] },
        }),
    });
    const capture = { ...deps, validateSpi: (xml: string) => Promise.resolve(void (validated = xml)) };
    const redelivered = { ...context, attempt: 2 };
    // First with a digest that cannot match, to see the bytes signed again.
    await createSignHandler({ ...capture, sagas: signedBefore('0'.repeat(64)) })(message(e2e), redelivered);
    expect(validated).toMatch(new RegExp(`BizMsgIdr>${olderId}</`));
    const digest = createHash('sha256').update(validated).digest('hex');
    const again = signedData(await createSignHandler({ ...capture, sagas: signedBefore(digest) })(message(e2e), redelivered));
    expect(again).toMatchObject({ messageType: 'pacs.008', bizMsgIdr: olderId });
  });

  it('signs in the SPI profile with our ISPB in AppHdr/Fr', async () => {
    const handler = createSignHandler(deps);
    const data = signedData(await handler(message('E99999004202611281700ddddddddddd'), context));
    const trust = new TrustStore();
    trust.add(pki.issue('unused').certPem);
    const inline = data.payload !== null && 'inline' in data.payload ? data.payload.inline : '';
    const trustStore = new TrustStore();
    trustStore.add((deps.signingKey.certificate.toString()), { ispb: ISPB });
    expect(verifySpi(inline, { trustStore }).fromIspb).toBe(ISPB);
  });

  it('puts a payload over the threshold in the claim-check store', async () => {
    const handler = createSignHandler({ ...deps, claimCheckThresholdBytes: 100 });
    const data = signedData(await handler(message('E99999004202611281700eeeeeeeeeee'), context));
    expect(data.payload).toEqual({ claimCheck: { bucket: 'payloads', key: expect.stringContaining('E99999004202611281700eeeeeeeeeee') as unknown } });
    expect(claimChecked).toHaveLength(1);
  });

  it('refuses an EndToEndId issued by another ISPB', async () => {
    const handler = createSignHandler(deps);
    await expect(handler(message('E12345678202611281700fffffffffff'), context)).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID', retryability: 'permanent' });
  });

  it('refuses a detail whose EndToEndId differs from the transfer\'s', async () => {
    const handler = createSignHandler(deps);
    const mismatched = message('E99999004202611281700ggggggggggg', { endToEndId: 'E99999004202611281700hhhhhhhhhhh' });
    await expect(handler(mismatched, context)).rejects.toThrow(/must equal the transfer's endToEndId/);
  });

  it('refuses a second request for the same payment with other content, alerting operations instead of signing', async () => {
    const e2e = 'E99999004202611281700iiiiiiiiiii';
    const signedOnce: Pick<SagaStore, 'create' | 'createWithStep' | 'transition' | 'get'> = {
      get: () => Promise.reject(new Error('must not read')),
      createWithStep: () => Promise.resolve(undefined),
      create: () =>
        Promise.resolve({
          status: 'already-applied',
          saga: { sagaId: paymentSagaId(e2e), kind: 'payment', state: 'SIGNED', version: 2, createdAt: '', updatedAt: '', compensations: [], facts: {},
            history: [{ at: '', from: 'REQUESTED', to: 'SIGNED', reason: 'pacs.008 M… signed sha256=0000', attempt: 1, key: 'sign' }] },
        }),
      transition: () => Promise.reject(new Error('must not transition')),
    };
    const handler = createSignHandler({ ...deps, sagas: signedOnce });
    const outcome = await handler(message(e2e, {}, '99.99'), context);
    expect(outcome.events.map((e) => e.detailType)).toEqual(['RequestConflict']);
  });

  it('signs a pacs.004 return keyed by its RtrId, with our ISPB as the returning agent', async () => {
    const returnId = generateReturnId(ISPB, { at: new Date('2026-11-28T17:00:00Z') });
    const data = decodeSignRequest(
      { message: 'pacs.004', return: { returnId, originalEndToEndId: 'E99999005202611281600abcdefghijk', amount: '10.00', creditorAgentIspb: '99999005', reason: { code: 'MD06' }, returnedAt: '2026-11-28T17:00:00.000Z' } },
      'PaymentRequested',
    );
    const handler = createSignHandler(deps);
    const outcome = await handler(
      { event: { id: 'r', detailType: 'PaymentRequested', source: 'core.banking', time: undefined, detail: { version: 1, sagaId: paymentSagaId(returnId), endToEndId: returnId, attempt: 1, traceparent: newTraceparent(), data } }, sqs: { messageId: 'm', receiveCount: 1 } },
      context,
    );
    const signed = signedData(outcome);
    expect(signed.messageType).toBe('pacs.004');
    const trustStore = new TrustStore();
    trustStore.add(deps.signingKey.certificate.toString(), { ispb: ISPB });
    const inline = signed.payload !== null && 'inline' in signed.payload ? signed.payload.inline : '';
    const parsed = parsePacs004(verifySpi(inline, { trustStore }));
    expect(parsed.returns[0]).toMatchObject({ returnId, amount: '10.00', debtorAgentIspb: ISPB });
  });

  it('signs the in-doubt sweeper\'s question as a camt.060 asking for the camt.054 of that payment, on a QUERY# saga holding the payment, indexed by its MsgId (issue 17)', async () => {
    const msgId = 'M99999004query000000000000000001';
    const e2e = 'E99999004202611281700aaaaaaaaaaa';
    const detail = outcomeQueryDetail({ sagaId: paymentSagaId(e2e), endToEndId: e2e, amount: '10.50' }, msgId, new Date('2026-11-28T17:01:00.000Z'));
    const created: Parameters<SagaStore['create']>[0][] = [];
    const handler = createSignHandler({ ...deps, sagas: { ...fakeSagas, create: (input) => (created.push(input), fakeSagas.create(input)) } });
    const deliver = () => handler({ event: { id: 'e', detailType: 'OutcomeQueryRequested', source: 'selo.compensate', time: undefined, detail: { ...detail, data: decodeSignRequest(detail.data, 'OutcomeQueryRequested') } }, sqs: { messageId: 'm', receiveCount: 1 } }, context);
    const outcome = await deliver();
    const signed = signedData(outcome);
    expect(signed).toMatchObject({ channel: 'spi', messageType: 'camt.060', bizMsgIdr: msgId });
    const trustStore = new TrustStore();
    trustStore.add(deps.signingKey.certificate.toString(), { ispb: ISPB });
    const inline = signed.payload !== null && 'inline' in signed.payload ? signed.payload.inline : '';
    const verified = verifySpi(inline, { trustStore });
    expect(verified.fromIspb).toBe(ISPB);
    expect(readEntryQuery(verified.document)).toEqual({ msgId, requested: 'camt.054', id: e2e, ownerIspb: ISPB });
    expect(created).toEqual([expect.objectContaining({ sagaId: `QUERY#${msgId}`, facts: { paymentSagaId: paymentSagaId(e2e), endToEndId: e2e, amount: '10.50' } })]);
    expect(pointers.get(`message:${msgId}`)).toBe(`QUERY#${msgId}`);
    // A redelivery signs the same bytes (MsgId and creation time come with the request).
    expect(signedData(await deliver())).toEqual(signed);
    // Our payments (PAY#, our ISPB in the EndToEndId) and payments to our customers (IN#, the payer's ISPB), nothing else.
    const ask = (query: ReturnType<typeof outcomeQueryDetail>) => handler({ event: { id: 'e', detailType: 'OutcomeQueryRequested', source: 'selo.compensate', time: undefined, detail: { ...query, data: decodeSignRequest(query.data, 'OutcomeQueryRequested') } }, sqs: { messageId: 'm', receiveCount: 1 } }, context);
    const theirs = 'E20000000202611281700aaaaaaaaaaa';
    await expect(ask(outcomeQueryDetail({ sagaId: paymentSagaId(theirs), endToEndId: theirs }, msgId, new Date()))).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID', message: expect.stringContaining(`${theirs} is not a payment of ISPB ${ISPB}`) as unknown });
    await expect(ask(outcomeQueryDetail({ sagaId: inboundSagaId(e2e), endToEndId: e2e }, msgId, new Date()))).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID', message: expect.stringContaining(`${e2e} is a payment of ISPB ${ISPB}, not one to its customer`) as unknown });
    const toCustomer = 'M99999004query000000000000000002';
    const inbound = signedData(await ask(outcomeQueryDetail({ sagaId: inboundSagaId(theirs), endToEndId: theirs, amount: '3.00' }, toCustomer, new Date('2026-11-28T17:02:00.000Z'))));
    const asked = verifySpi(inbound.payload !== null && 'inline' in inbound.payload ? inbound.payload.inline : '', { trustStore });
    expect(readEntryQuery(asked.document)).toEqual({ msgId: toCustomer, requested: 'camt.054', id: theirs, ownerIspb: ISPB });
    expect(created.at(-1)).toMatchObject({ sagaId: `QUERY#${toCustomer}`, facts: { paymentSagaId: inboundSagaId(theirs), endToEndId: theirs, amount: '3.00' } });
  });

  it('signs a pibr.001 echo keyed by the requester\'s RequestId, with nothing to compensate', async () => {
    const requestId = '6f1c2a4e-0d0b-4c1e-9d3a-7a2f5e8b9c10';
    const data = decodeSignRequest({ message: 'pibr.001', echo: { data: 'ping', requestedAt: '2026-11-28T17:00:00.000Z' } }, 'PaymentRequested');
    const recorded: { compensation?: unknown; sagaId: string }[] = [];
    const handler = createSignHandler({
      ...deps,
      sagas: { ...fakeSagas, createWithStep: (input) => (recorded.push({ sagaId: input.sagaId, ...input.step }), fakeSagas.createWithStep(input)) },
    });
    const outcome = await handler(
      { event: { id: 'e', detailType: 'PaymentRequested', source: 'ops', time: undefined, detail: { version: 1, sagaId: echoSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data } }, sqs: { messageId: 'm', receiveCount: 1 } },
      context,
    );
    const signed = signedData(outcome);
    expect(signed.messageType).toBe('pibr.001');
    const trustStore = new TrustStore();
    trustStore.add(deps.signingKey.certificate.toString(), { ispb: ISPB });
    const inline = signed.payload !== null && 'inline' in signed.payload ? signed.payload.inline : '';
    expect(parsePibr001(verifySpi(inline, { trustStore })).data).toBe('ping');
    expect(recorded).toEqual([expect.objectContaining({ sagaId: echoSagaId(requestId) })]);
    expect(recorded[0]?.compensation).toBeUndefined();
    expect(pointers.get('echo:ping')).toBe(echoSagaId(requestId));
    expect(pointers.get(`message:${signed.bizMsgIdr ?? ''}`)).toBe(echoSagaId(requestId));
  });

  describe("the EndToEndId's time rule (SPI: pacs.002 RJCT FF08)", () => {
    // The handler's clock reads 2026-11-28T17:00:02Z (deps.now).
    const at = (stamp: string, suffix: string): string => `E${ISPB}${stamp}${suffix}`;
    function scheduled(m: DecodedMessage<SignRequest>): DecodedMessage<SignRequest> {
      const data = m.event.detail.data.data as Extract<SignRequest, { kind: 'payment' }>['data'];
      return { ...m, event: { ...m.event, detail: { ...m.event.detail, data: { kind: 'payment', data: { ...data, serviceLevel: 'PAGAGD' } as typeof data } } } };
    }

    it('refuses to sign a priority pacs.008 whose EndToEndId time is over 1 h 30 min behind, naming the field', async () => {
      const handler = createSignHandler(deps);
      await expect(handler(message(at('202611281529', 'late0000001')), context)).rejects.toMatchObject({
        code: 'SIGN_REQUEST_INVALID', retryability: 'permanent', message: expect.stringMatching(/data\.transaction\.endToEndId: .*91 min behind.*1 h 30 min.*FF08/) as unknown,
      });
      expect(signedData(await handler(message(at('202611281531', 'inside00001')), context)).bizMsgIdr).toMatch(/^M/);
    });

    it('signs a scheduled (PAGAGD) pacs.008 up to 12 h either way, not beyond', async () => {
      const handler = createSignHandler(deps);
      expect(signedData(await handler(scheduled(message(at('202611280600', 'sched000001'))), context)).bizMsgIdr).toMatch(/^M/);
      await expect(handler(scheduled(message(at('202611290501', 'sched000002'))), context)).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID', message: expect.stringMatching(/ahead of.*12 h/) as unknown });
      await expect(handler(scheduled(message(at('202611280459', 'sched000003'))), context)).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID' });
    });

    it('signs again, without the time check, a request signed before (a redelivery hours later sends the same bytes)', async () => {
      const e2e = at('202611281700', 'redeliver01');
      const first = signedData(await createSignHandler(deps)(message(e2e), context));
      const signStep = transitions.find((t) => t.sagaId === paymentSagaId(e2e) && t.idempotencyKey === 'sign');
      expect(signStep).toBeDefined();
      const recorded = { key: 'sign', reason: `pacs.008 ${first.bizMsgIdr ?? ''} signed sha256=x creDt=2026-11-28T17:00:02.000Z` };
      const later = createSignHandler({
        ...deps,
        now: () => new Date('2026-11-28T23:00:00.000Z'),
        sagas: { ...fakeSagas, createWithStep: () => Promise.resolve(undefined), create: () => Promise.resolve({ status: 'already-applied', saga: { history: [recorded] } as never }) },
      });
      // Not refused for its time: the digest differs from the fake record, so it is a conflict, not SIGN_REQUEST_INVALID.
      await expect(later(message(e2e), context)).resolves.toBeDefined();
    });
  });

  it('checks what it signs against the official XSD of its type, where the repository has one (pacs.008 1.16, pacs.004 1.5; none for pibr.001)', async () => {
    const checked: string[] = [];
    const handler = createSignHandler({ ...deps, validateSpi: (_xml, schema) => Promise.resolve(void checked.push(schema)) });
    await handler(message(generateEndToEndId(ISPB, { at: new Date('2026-11-28T17:00:00Z') })), context);
    expect(checked).toEqual(['pacs.008.spi.1.16']);
    const returnId = generateReturnId(ISPB, { at: new Date('2026-11-28T17:00:00Z') });
    const ret = decodeSignRequest(
      { message: 'pacs.004', return: { returnId, originalEndToEndId: 'E99999005202611281600abcdefghijk', amount: '1.00', creditorAgentIspb: '99999005', reason: { code: 'MD06' }, returnedAt: '2026-11-28T17:00:00.000Z' } },
      'PaymentRequested',
    );
    await handler({ event: { id: 'r', detailType: 'PaymentRequested', source: 'core.banking', time: undefined, detail: { version: 1, sagaId: paymentSagaId(returnId), endToEndId: returnId, attempt: 1, traceparent: newTraceparent(), data: ret } }, sqs: { messageId: 'm', receiveCount: 1 } }, context);
    const requestId = '0b6f7a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b';
    const echo = decodeSignRequest({ message: 'pibr.001', echo: { data: 'schema', requestedAt: '2026-11-28T17:00:00.000Z' } }, 'PaymentRequested');
    await handler({ event: { id: 'e', detailType: 'PaymentRequested', source: 'ops', time: undefined, detail: { version: 1, sagaId: echoSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: echo } }, sqs: { messageId: 'm', receiveCount: 1 } }, context);
    expect(checked).toEqual(['pacs.008.spi.1.16', 'pacs.004.spi.1.5']);
  });

  it('refuses an echo without a RequestId', async () => {
    const data = decodeSignRequest({ message: 'pibr.001', echo: { data: 'ping', requestedAt: '2026-11-28T17:00:00.000Z' } }, 'PaymentRequested');
    const handler = createSignHandler(deps);
    await expect(
      handler({ event: { id: 'e', detailType: 'PaymentRequested', source: 'ops', time: undefined, detail: { version: 1, sagaId: 'ECHO#x', endToEndId: 'E1', attempt: 1, traceparent: newTraceparent(), data } }, sqs: { messageId: 'm', receiveCount: 1 } }, context),
    ).rejects.toMatchObject({ code: 'SIGN_REQUEST_INVALID' });
  });
});

describe('decodeSignRequest', () => {
  it('names the field that is wrong', () => {
    expect(() => decodeSignRequest({ message: 'pacs.008', transaction: { endToEndId: 'E1' } }, 'PaymentRequested')).toThrow('data.transaction.amount must be a non-empty string');
    expect(() => decodeSignRequest({ operation: 'nope' }, 'DictRequested')).toThrow(/data.operation must be one of createEntry/);
    expect(() => decodeSignRequest({ operation: 'createEntry' }, 'DictRequested')).toThrow('data.body is required for createEntry');
    expect(() => decodeSignRequest({}, 'Whatever')).toThrow(/not Whatever/);
  });

  it('takes the DICT request headers only core banking knows, checks their format and never quotes them', () => {
    const read = { operation: 'getEntry', pathParameters: { Key: '+5561988880000' } };
    const decoded = decodeSignRequest({ ...read, headers: { 'PI-PayerId': '70000000000', 'PI-EndToEndId': 'E9999900420261128170012345678901' } }, 'DictRequested');
    expect(decoded).toMatchObject({ kind: 'dict', data: { headers: { 'PI-PayerId': '70000000000', 'PI-EndToEndId': 'E9999900420261128170012345678901' } } });
    expect(() => decodeSignRequest({ ...read, headers: { 'PI-RequestingParticipant': '99999004' } }, 'DictRequested')).toThrow(/PI-RequestingParticipant is not a header a DictRequested may set/);
    let message = '';
    try {
      decodeSignRequest({ ...read, headers: { 'PI-PayerId': '7000000000X' } }, 'DictRequested');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('data.headers.PI-PayerId does not have the DICT\'s format');
    expect(message).not.toContain('7000000000X');
  });

  it('refuses a getEntry without PI-PayerId or PI-EndToEndId (required by GET /entries/{Key}), naming the header', () => {
    const read = { operation: 'getEntry', pathParameters: { Key: '+5561988880000' } };
    const refusal = (data: unknown): { code?: string; message?: string } => {
      try {
        decodeSignRequest(data, 'DictRequested');
      } catch (error) {
        return error as { code?: string; message?: string };
      }
      return {};
    };
    expect(refusal(read)).toMatchObject({ code: 'SIGN_REQUEST_INVALID', message: expect.stringContaining('data.headers.PI-PayerId is required for getEntry') as unknown });
    expect(refusal({ ...read, headers: { 'PI-PayerId': '70000000000' } })).toMatchObject({ code: 'SIGN_REQUEST_INVALID', message: expect.stringContaining('data.headers.PI-EndToEndId is required for getEntry') as unknown });
    // getClaim requires only PI-RequestingParticipant, which the transmit worker adds.
    expect(decodeSignRequest({ operation: 'getClaim', pathParameters: { ClaimId: 'c0ffee00-0000-4000-8000-000000000001' } }, 'DictRequested').kind).toBe('dict');
  });

  it("takes the query parameters the operation's OpenAPI defines and refuses others", () => {
    const decoded = decodeSignRequest({ operation: 'listClaims', query: { IsDonor: 'true', Status: ['OPEN', 'WAITING_RESOLUTION'] } }, 'DictRequested');
    expect(decoded).toMatchObject({ kind: 'dict', data: { query: { IsDonor: 'true', Status: ['OPEN', 'WAITING_RESOLUTION'] } } });
    expect(() => decodeSignRequest({ operation: 'listClaims', query: { Colour: 'blue' } }, 'DictRequested')).toThrow('data.query.Colour is not a query parameter of listClaims');
    expect(() => decodeSignRequest({ operation: 'getClaim', pathParameters: { ClaimId: 'c' }, query: { Limit: '5' } }, 'DictRequested')).toThrow('it takes none');
    expect(() => decodeSignRequest({ operation: 'listClaims', query: { Limit: 5 } }, 'DictRequested')).toThrow('data.query.Limit must be a non-empty string');
  });
});

describe('readSignWorkerConfig', () => {
  const base = { SELO_ISPB: ISPB, SELO_SIGNING_CERT: 'cert.pem' };

  it('reads SELO_SIGN_LEGACY_MESSAGE_IDS, off unless set (for rolling deploys across the derived BizMsgIdr)', () => {
    expect(readSignWorkerConfig(base).legacyMessageIds).toBe(false);
    expect(readSignWorkerConfig({ ...base, SELO_SIGN_LEGACY_MESSAGE_IDS: 'true' }).legacyMessageIds).toBe(true);
    expect(() => readSignWorkerConfig({ ...base, SELO_SIGN_LEGACY_MESSAGE_IDS: 'perhaps' })).toThrow(/SELO_SIGN_LEGACY_MESSAGE_IDS/);
  });
});
