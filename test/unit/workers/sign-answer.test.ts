import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimCheckReference, ClaimCheckStore } from '../../../shared/claim-check/index.ts';
import { decodeInboundPaymentDecided, echoSagaId, inboundSagaId, newTraceparent } from '../../../shared/events/index.ts';
import type { EventDetail, MessageSignedData } from '../../../shared/events/index.ts';
import { generateEndToEndId, generateMessageId, generateReturnId, parsePacs002, parsePibr002, validateSpiMessage } from '../../../shared/iso20022/index.ts';
import type { HandlerContext, Outcome } from '../../../shared/runtime/index.ts';
import { TrustStore, pemSigningKey, verifySpi } from '../../../shared/xmldsig/index.ts';
import { createSignHandler, decodeSignRequest } from '../../../workers/sign/index.ts';
import type { SignRequest } from '../../../workers/sign/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { silentLogger } from '../runtime/fakes.ts';
import { FakeSagas } from './fake-sagas.ts';

const ISPB = '99999004';
const PAYER = '99999005';
let pki: TestPki;
let deps: Parameters<typeof createSignHandler>[0];
let trustStore: TrustStore;
let sagas: FakeSagas;
const pointers = new Map<string, string>();
const claimCheck: ClaimCheckStore = {
  put: (key: string): Promise<ClaimCheckReference> => Promise.resolve({ bucket: 'payloads', key }),
  get: () => Promise.reject(new Error('unused')),
};
const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };
/** The clock the handler reads. */
let clock = new Date('2026-12-07T10:00:05.000Z');

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('psp signing');
  trustStore = new TrustStore();
  trustStore.add(leaf.certPem, { ispb: ISPB });
  deps = {
    ispb: ISPB,
    signingKey: pemSigningKey(leaf.keyPem, leaf.certPem),
    sagas: { get: (id) => sagas.get(id), create: (input) => sagas.create(input), createWithStep: () => Promise.reject(new Error('an answer is signed on a saga that exists')), transition: (input) => sagas.transition(input) },
    claimCheck,
    bizMsgIndex: { recordMessage: (b, s) => Promise.resolve(void pointers.set(b, s)), recordEcho: () => Promise.reject(new Error('unused')) },
    // The official pacs.002 1.17 XSD, in process.
    validateSpi: validateSpiMessage,
    now: () => clock,
  };
});

afterAll(() => pki.dispose());

/** An inbound payment as the verify worker leaves it: RECEIVED at 10:00:00, answer deadline 10:00:32. */
function received(): string {
  sagas = new FakeSagas();
  const e2e = generateEndToEndId(PAYER, { at: new Date('2026-12-07T10:00:00.000Z') });
  sagas.add(inboundSagaId(e2e), 'RECEIVED', {
    endToEndId: e2e,
    facts: { receivedAt: '2026-12-07T10:00:00.100Z', answerDeadline: '2026-12-07T10:00:32.000Z', amount: '10.00' },
    history: [{ at: '', from: null, to: 'RECEIVED', reason: 'pacs.008 received [source P1]', attempt: 1, key: 'create' }],
  });
  return e2e;
}

function decision(e2e: string, data: unknown, detailType = 'InboundPaymentDecided'): { event: { id: string; detailType: string; source: string; time: string; detail: EventDetail<SignRequest> }; sqs: { messageId: string; receiveCount: number } } {
  return {
    event: {
      id: 'evt', detailType, source: 'core.banking', time: '2026-12-07T10:00:01Z',
      detail: { version: 1, sagaId: inboundSagaId(e2e), endToEndId: e2e, attempt: 1, traceparent: newTraceparent(), data: decodeSignRequest(data, detailType) },
    },
    sqs: { messageId: 'm', receiveCount: 1 },
  };
}

function signedXml(outcome: Outcome): string {
  expect(outcome.events.map((e) => e.detailType)).toEqual(['MessageSigned']);
  const data = outcome.events[0]?.detail.data as MessageSignedData;
  if (data.payload === null || !('inline' in data.payload)) throw new Error('expected an inline payload');
  return data.payload.inline;
}

describe('sign worker: answering inbound payments', () => {
  it('answers ACSP with a pacs.002 signed by us, valid against pacs.002.spi.1.17.xsd, and moves RECEIVED → SIGNED', async () => {
    const e2e = received();
    const outcome = await createSignHandler(deps)(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:00.900Z' }), context);
    const xml = signedXml(outcome);
    await expect(validateSpiMessage(xml, 'pacs.002.spi.1.17')).resolves.toBeUndefined();
    // The certificate's validity by the real clock: it was issued when the test started.
    const verified = verifySpi(xml, { trustStore });
    expect(verified.fromIspb).toBe(ISPB);
    const pacs002 = parsePacs002(xml);
    expect(pacs002.appHdr).toMatchObject({ fromIspb: ISPB, toIspb: '00038166', creDt: '2026-12-07T10:00:00.900Z' });
    expect(pacs002.statuses).toEqual([{ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'ACSP' }]);
    const saga = sagas.sagas.get(inboundSagaId(e2e));
    expect(saga?.state).toBe('SIGNED');
    expect(saga?.facts.answer).toBe('ACSP');
    expect(pointers.get(pacs002.appHdr.bizMsgIdr)).toBe(inboundSagaId(e2e));
    expect(outcome.audit.map((r) => [r.transition_from, r.transition_to])).toEqual([['RECEIVED', 'SIGNED']]);
  });

  it('answers a return of our payment naming the RtrId and the returned payment, valid against the XSD', async () => {
    sagas = new FakeSagas();
    const returnId = generateReturnId(PAYER);
    const original = generateEndToEndId(ISPB);
    sagas.add(inboundSagaId(returnId), 'RECEIVED', { endToEndId: returnId, facts: { receivedAt: '2026-12-07T10:00:00.100Z', answerDeadline: '2026-12-07T10:00:32.000Z', amount: '10.00', originalEndToEndId: original } });
    const xml = signedXml(await createSignHandler(deps)(decision(returnId, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:01.000Z' }), context));
    await expect(validateSpiMessage(xml, 'pacs.002.spi.1.17')).resolves.toBeUndefined();
    expect(parsePacs002(xml).statuses).toEqual([{ originalInstructionId: returnId, originalEndToEndId: original, status: 'ACSP' }]);
  });

  it('answers RJCT with the reason core banking gave', async () => {
    const e2e = received();
    const xml = signedXml(await createSignHandler(deps)(decision(e2e, { decision: 'RJCT', decidedAt: '2026-12-07T10:00:01.000Z', reason: { code: 'AC03', additionalInformation: 'conta inexistente' } }), context));
    await expect(validateSpiMessage(xml, 'pacs.002.spi.1.17')).resolves.toBeUndefined();
    expect(parsePacs002(xml).statuses[0]).toMatchObject({ status: 'RJCT', reason: { code: 'AC03', additionalInformation: 'conta inexistente' } });
    expect(sagas.sagas.get(inboundSagaId(e2e))?.facts.answer).toBe('RJCT AC03');
  });

  it('publishes byte-identical answers for a redelivery and for the same decision said again later, transitioning once', async () => {
    const e2e = received();
    const handler = createSignHandler(deps);
    const first = signedXml(await handler(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:00.900Z' }), context));
    const redelivered = signedXml(await handler(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:00.900Z' }), context));
    const repeated = signedXml(await handler(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:02.000Z' }), context));
    expect(redelivered).toBe(first);
    expect(repeated).toBe(first);
    expect(sagas.writes).toBe(1);
  });

  it('never sends a second, different answer: another decision is a RequestConflict for operations', async () => {
    const e2e = received();
    const handler = createSignHandler(deps);
    signedXml(await handler(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:00.900Z' }), context));
    const other = await handler(decision(e2e, { decision: 'RJCT', decidedAt: '2026-12-07T10:00:01.000Z', reason: { code: 'AM02' } }), context);
    expect(other.events.map((e) => e.detailType)).toEqual(['RequestConflict']);
    expect(sagas.writes).toBe(1);
  });

  it('does not send a decision made after the answer deadline: LATE and InboundDecisionLate', async () => {
    const e2e = received();
    clock = new Date('2026-12-07T10:00:33.000Z');
    try {
      const outcome = await createSignHandler(deps)(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:32.500Z' }), context);
      expect(outcome.events.map((e) => e.detailType)).toEqual(['InboundDecisionLate']);
      expect(outcome.events[0]?.detail.data).toMatchObject({ decision: 'ACSP', answerDeadline: '2026-12-07T10:00:32.000Z', recordedState: 'LATE' });
      expect(sagas.sagas.get(inboundSagaId(e2e))?.state).toBe('LATE');
    } finally {
      clock = new Date('2026-12-07T10:00:05.000Z');
    }
  });

  it('does not answer a payment the SPI already rejected (AB03 before the decision came)', async () => {
    const e2e = received();
    await sagas.transition({ sagaId: inboundSagaId(e2e), to: 'REJECTED', reason: 'pacs.002 RJCT AB03', attempt: 1, idempotencyKey: 'rejected' });
    const outcome = await createSignHandler(deps)(decision(e2e, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:01.000Z' }), context);
    expect(outcome.events.map((e) => e.detailType)).toEqual(['InboundDecisionLate']);
    expect(outcome.events[0]?.detail.data).toMatchObject({ recordedState: 'REJECTED' });
  });

  it('refuses a decision for a payment selo never received, and a reason a receiver may not give', async () => {
    sagas = new FakeSagas();
    const unknown = generateEndToEndId(PAYER);
    await expect(createSignHandler(deps)(decision(unknown, { decision: 'ACSP', decidedAt: '2026-12-07T10:00:01.000Z' }), context)).rejects.toMatchObject({ code: 'INBOUND_PAYMENT_UNKNOWN' });
    expect(() => decodeInboundPaymentDecided({ decision: 'RJCT', decidedAt: '2026-12-07T10:00:01.000Z', reason: { code: 'AB03' } })).toThrow(/reason code a receiver may give/);
    expect(() => decodeInboundPaymentDecided({ decision: 'ACCC', decidedAt: '2026-12-07T10:00:01.000Z' })).toThrow(/"ACSP" or "RJCT"/);
  });
});

describe('sign worker: answering the SPI\'s echo', () => {
  it('answers a pibr.001 with a signed pibr.002 returning its data, once', async () => {
    sagas = new FakeSagas();
    const bizMsgIdr = generateMessageId('00038166');
    const data = { channel: 'spi', originalData: 'ping-9', bizMsgIdr, resourceId: 'E1', receivedAt: '2026-12-07T10:00:00.000Z' };
    const message = {
      event: { id: 'e', detailType: 'EchoReceived', source: 'selo.verify', time: undefined, detail: { version: 1 as const, sagaId: echoSagaId(bizMsgIdr), requestId: bizMsgIdr, attempt: 1, traceparent: newTraceparent(), data: decodeSignRequest(data, 'EchoReceived') } },
      sqs: { messageId: 'm', receiveCount: 1 },
    };
    const handler = createSignHandler(deps);
    const xml = signedXml(await handler(message, context));
    expect(verifySpi(xml, { trustStore }).fromIspb).toBe(ISPB);
    expect(parsePibr002(xml)).toMatchObject({ originalData: 'ping-9', appHdr: { fromIspb: ISPB, toIspb: '00038166' } });
    expect(signedXml(await handler(message, context))).toBe(xml);
    expect(sagas.sagas.get(echoSagaId(bizMsgIdr))?.state).toBe('SIGNED');
  });
});
