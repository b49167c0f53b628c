import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimCheckReference, ClaimCheckStore } from '../../../shared/claim-check/index.ts';
import { buildDictProblem } from '../../../shared/dict/index.ts';
import {
  decodeDictOperationFailed, decodeDictResponseVerified, decodeEchoAnswered, decodeEchoReceived, decodeEventBody, decodeInboundPaymentDecisionRequested,
  decodeInboundPaymentRejected, decodeInboundPaymentSettled, decodeMessageRejected,
  decodeOutcomeConflict, decodePaymentRejected, decodeRejectionAmbiguous, decodeInboundReturnDecisionRequested, decodePaymentSettled, decodeSignatureInvalid, dictSagaId, echoSagaId, encodeEventBody,
  inboundSagaId, newTraceparent, parseEventDetail, paymentSagaId,
} from '../../../shared/events/index.ts';
import type { EventDetail } from '../../../shared/events/index.ts';
import { buildPacs002, buildPacs008, generateEndToEndId, generateMessageId, generateReturnId, paymentMessageId } from '../../../shared/iso20022/index.ts';
import type { EventToPublish, HandlerContext, Outcome } from '../../../shared/runtime/index.ts';
import { pemSigningKey, signDict, signSpi, TrustStore } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createVerifyHandler, decodeVerifyInput } from '../../../workers/verify/index.ts';
import type { QuarantineEntry, VerifyHandlerDeps, VerifyInput } from '../../../workers/verify/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { silentLogger } from '../runtime/fakes.ts';
import { FakeSagas, fakeMarkers } from './fake-sagas.ts';
import {
  bcbMessageReceived, corruptSignatureValue, inboundTransfer, signedAdmi002, signedPacs002, signedPacs004, signedPacs008, signedPibr001, signedPibr002, signedUnsupported, statusOf,
} from './verify-messages.ts';
import type { BcbSender } from './verify-messages.ts';

const ISPB = '99999004';
const BCB = '00038166';
let pki: TestPki;
let bcb: BcbSender;
let bcbKey: SigningKey;
/** A trusted-looking key that is not in the BCB trust store. */
let stranger: SigningKey;
let trustStore: TrustStore;

beforeAll(() => {
  pki = createTestPki();
  const bcbLeaf = pki.issue('bcb signing');
  const other = pki.issue('another psp');
  bcbKey = pemSigningKey(bcbLeaf.keyPem, bcbLeaf.certPem);
  stranger = pemSigningKey(other.keyPem, other.certPem);
  bcb = { key: bcbKey, toIspb: ISPB };
  trustStore = new TrustStore();
  trustStore.add(bcbLeaf.certPem, { ispb: BCB });
});

afterAll(() => pki.dispose());

interface World {
  deps: VerifyHandlerDeps;
  sagas: FakeSagas;
  quarantined: QuarantineEntry[];
  pointers: Map<string, string>;
  kept: Map<string, string>;
  /** Seen-before markers: key → holder. */
  markers: Map<string, string>;
}

function world(): World {
  const sagas = new FakeSagas();
  const quarantined: QuarantineEntry[] = [];
  const pointers = new Map<string, string>();
  const kept = new Map<string, string>();
  const markers = new Map<string, string>();
  const claimCheck: ClaimCheckStore = {
    put: (key, body) => Promise.resolve(void kept.set(key, body)).then((): ClaimCheckReference => ({ bucket: 'payloads', key })),
    get: (ref) => Promise.resolve(kept.get(ref.key) ?? ''),
  };
  return {
    sagas, quarantined, pointers, kept, markers,
    deps: {
      ispb: ISPB,
      bcbIspb: BCB,
      trustStore,
      sagas,
      index: { sagaOfMessage: (b) => Promise.resolve(pointers.get(`message:${b}`)), sagaOfEcho: (d) => Promise.resolve(pointers.get(`echo:${d}`)) },
      claimCheck,
      quarantine: { put: (entry) => Promise.resolve(void quarantined.push(entry)).then(() => ({ bucket: 'payloads', key: entry.key })) },
      markers: fakeMarkers(markers),
    },
  };
}

const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };

/** The published contract: every fact the handler emits must decode with its own decoder. */
const DECODERS: Readonly<Record<string, (data: unknown) => unknown>> = {
  PaymentSettled: decodePaymentSettled,
  PaymentRejected: decodePaymentRejected,
  MessageRejected: decodeMessageRejected,
  InboundPaymentDecisionRequested: decodeInboundPaymentDecisionRequested,
  InboundPaymentSettled: decodeInboundPaymentSettled,
  InboundPaymentRejected: decodeInboundPaymentRejected,
  EchoReceived: decodeEchoReceived,
  UnsupportedMessageReceived: (data) => data,
  InboundReturnDecisionRequested: decodeInboundReturnDecisionRequested,
  EchoAnswered: decodeEchoAnswered,
  DictResponseVerified: decodeDictResponseVerified,
  DictOperationFailed: decodeDictOperationFailed,
  SignatureInvalid: decodeSignatureInvalid,
  OutcomeConflict: decodeOutcomeConflict,
  RejectionAmbiguous: decodeRejectionAmbiguous,
};

/** Runs the handler on an event as the runtime would decode it from the queue; checks what it publishes against the contract. */
async function deliver(deps: VerifyHandlerDeps, event: { detailType: string; source: string; detail: EventDetail<unknown> }): Promise<Outcome> {
  const decoded = decodeEventBody<VerifyInput>(encodeEventBody(event), decodeVerifyInput, 'm');
  const outcome = await createVerifyHandler(deps)({ event: decoded, sqs: { messageId: 'm', receiveCount: 1 } }, context);
  for (const published of outcome.events) {
    const decode = DECODERS[published.detailType];
    expect(decode, published.detailType).toBeDefined();
    const detail = parseEventDetail(JSON.parse(JSON.stringify(published.detail)));
    expect(decode?.(detail.data)).toEqual(published.detail.data);
  }
  return outcome;
}

async function spi(deps: VerifyHandlerDeps, xml: string, resourceId = randomUUID().replace(/-/g, ''), copy?: string): Promise<Outcome> {
  return deliver(deps, bcbMessageReceived(resourceId, xml, copy));
}

function dispositions(outcome: Outcome): string[] {
  return outcome.audit.filter((r) => r.kind === 'response').map((r) => (JSON.parse(r.response_header ?? '{}') as Record<string, string>)['selo-disposition'] ?? '');
}

function types(outcome: Outcome): string[] {
  return outcome.events.map((e) => e.detailType);
}

function only(outcome: Outcome): EventToPublish {
  expect(outcome.events).toHaveLength(1);
  return outcome.events[0] as EventToPublish;
}

function e2e(): string {
  return generateEndToEndId(ISPB);
}

/** A payment waiting in TRANSMITTED and the BCB-signed pacs.002 ACSC that settles it. */
async function transmittedWithAcsc(sagas: FakeSagas): Promise<{ id: string; xml: string }> {
  const id = e2e();
  sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
  return { id, xml: await signedPacs002(bcb, statusOf(id, 'ACSC')) };
}

/** A payment in `state` whose pacs.008 (`bizMsgIdr`, indexed as the sign worker does) got its 201 on `attempt`; its EndToEndId. */
function sentPayment(w: Pick<World, 'sagas' | 'pointers'>, state: 'TRANSMITTED' | 'IN_DOUBT', attempt: number, bizMsgIdr: string): string {
  const id = e2e();
  const transmitted = { at: '2026-11-28T17:00:00.000Z', from: 'TRANSMITTING' as const, to: 'TRANSMITTED' as const, reason: 'ICOM 201', attempt, key: 'transmitted' };
  w.sagas.add(paymentSagaId(id), state, { endToEndId: id, bizMsgIdr, history: [transmitted] });
  w.pointers.set(`message:${bizMsgIdr}`, paymentSagaId(id));
  return id;
}

describe('verify handler: SPI outcomes of our payments', () => {
  it('turns a BCB-signed pacs.002 ACSC into PaymentSettled and the saga SETTLED, audited with a valid signature', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id, bizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa' });
    const outcome = await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACSC')), 'R1');
    const settled = only(outcome);
    expect(settled.detailType).toBe('PaymentSettled');
    expect(settled.detail).toMatchObject({ sagaId: paymentSagaId(id), endToEndId: id, bizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa' });
    expect(settled.detail.data).toMatchObject({ status: 'ACSC', endToEndId: id, originalBizMsgIdr: 'M99999004aaaaaaaaaaaaaaaaaaaaaaa', resourceId: 'R1', settlementDateTime: expect.any(String) as unknown });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('SETTLED');
    expect(outcome.audit.map((r) => [r.kind, r.response_signature_valid ?? r.transition_to])).toEqual([['response', true], ['transition', 'SETTLED']]);
    // A saga waiting in TRANSMITTED is settled by one conditional write, without a read.
    expect([sagas.reads, sagas.writes]).toEqual([0, 1]);
  });

  it('settles a payment whose pacs.002 is read before its 201 was recorded (TRANSMITTING), from what it reads', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTING', { endToEndId: id });
    const settled = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACSC')), 'R1'));
    expect(settled.detailType).toBe('PaymentSettled');
    expect(sagas.sagas.get(paymentSagaId(id))?.history.map((t) => [t.from, t.to])).toEqual([['TRANSMITTING', 'SETTLED']]);
    expect([sagas.reads, sagas.writes]).toEqual([1, 1]);
  });

  it('publishes the same fact again on redelivery and nothing for a duplicate from another resource, transitioning once', async () => {
    const { deps, sagas } = world();
    const { id, xml } = await transmittedWithAcsc(sagas);
    const first = await spi(deps, xml, 'R1');
    const again = await spi(deps, xml, 'R1');
    const duplicate = await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACSC')), 'R2');
    expect(again.events.map((e) => e.detail.data)).toEqual(first.events.map((e) => e.detail.data));
    expect(again.audit.filter((r) => r.kind === 'transition')).toHaveLength(0);
    expect(duplicate.events).toHaveLength(0);
    expect(duplicate.audit.map((r) => JSON.parse(r.response_header ?? '{}') as Record<string, string>)).toEqual([expect.objectContaining({ 'selo-disposition': 'duplicate' })]);
    expect(sagas.writes).toBe(1);
  });

  it('turns a RJCT into PaymentRejected with its reason code and the saga REJECTED', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'IN_DOUBT', { endToEndId: id });
    const rejected = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AB03'))));
    expect(rejected.detailType).toBe('PaymentRejected');
    expect(rejected.detail.data).toMatchObject({ status: 'RJCT', reason: { code: 'AB03', additionalInformation: 'conta inexistente' } });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
  });

  it('turns a RJCT after SETTLED into OUTCOME_CONFLICT and OutcomeConflict, never PaymentRejected', async () => {
    const { deps, sagas } = world();
    const { id, xml } = await transmittedWithAcsc(sagas);
    await spi(deps, xml);
    const conflict = await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AB03')), 'R9');
    expect(types(conflict)).toEqual(['OutcomeConflict']);
    expect(conflict.events[0]?.detail.data).toMatchObject({ recordedState: 'SETTLED', receivedOutcome: 'REJECTED', resourceId: 'R9' });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('OUTCOME_CONFLICT');
    // The conflicting message redelivered reports the same conflict, a further one nothing.
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AB03')), 'R10'))).toEqual([]);
  });

  it('turns an ACSC after the payment was compensated into OutcomeConflict', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'COMPENSATED', { endToEndId: id });
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACSC'))))).toEqual(['OutcomeConflict']);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('OUTCOME_CONFLICT');
  });

  it('records an outcome for a saga that is not ours without publishing anything', async () => {
    const { deps } = world();
    const outcome = await spi(deps, await signedPacs002(bcb, statusOf(e2e(), 'ACSC')));
    expect(outcome.events).toHaveLength(0);
    expect(outcome.audit.map((r) => [r.kind, r.response_signature_valid])).toEqual([['response', true]]);
    expect(outcome.audit[0]?.response_header).toContain('unknown-saga');
  });

  it('ignores a RJCT DU03 about a duplicate of our payment: the original decides', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'DU03'))))).toEqual([]);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('TRANSMITTED');
  });

  it("rejects our payment on a receiver's RJCT DUPL: a duplicate by IdConciliacaoRecebedor is a definite refusal", async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'DUPL'))))).toEqual(['PaymentRejected']);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
  });

  it('rejects a payment whose RJCT carries no reason code, with no invented code in the event', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    const rejected = only(await spi(deps, await signedPacs002(bcb, { originalInstructionId: id, originalEndToEndId: id, status: 'RJCT' })));
    expect(rejected.detailType).toBe('PaymentRejected');
    expect(rejected.detail.data).toMatchObject({ status: 'RJCT', reason: {} });
    expect((rejected.detail.data as { reason: Record<string, unknown> }).reason).not.toHaveProperty('code');
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
  });

  it('correlates an admi.002 to its saga through the BizMsgIdr index: MessageRejected and REJECTED', async () => {
    const { deps, sagas, pointers } = world();
    const id = e2e();
    const bizMsgIdr = 'M99999004bbbbbbbbbbbbbbbbbbbbbbb';
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id, bizMsgIdr });
    pointers.set(`message:${bizMsgIdr}`, paymentSagaId(id));
    const rejected = only(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SIGNATURE_INVALID', 'assinatura inválida')));
    expect(rejected.detailType).toBe('MessageRejected');
    expect(rejected.detail).toMatchObject({ sagaId: paymentSagaId(id), endToEndId: id, bizMsgIdr });
    expect(rejected.detail.data).toMatchObject({ rejectedBizMsgIdr: bizMsgIdr, reason: { code: 'SIGNATURE_INVALID', description: 'assinatura inválida' } });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
    // The saga read to judge the refusal is the one the outcome is applied to: one read.
    expect(sagas.reads).toBe(1);
  });

  it('finds the payment of an admi.002 about a pacs.008 whose BizMsgIdr derives from its EndToEndId, with no pointer, only when its saga recorded that BizMsgIdr', async () => {
    const { deps, sagas } = world();
    const id = e2e();
    const bizMsgIdr = paymentMessageId(id);
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id, bizMsgIdr });
    const rejected = only(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SIGNATURE_INVALID')));
    expect(rejected.detailType).toBe('MessageRejected');
    expect(rejected.detail).toMatchObject({ sagaId: paymentSagaId(id), endToEndId: id, bizMsgIdr });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
    // A payment signed by an older version under another BizMsgIdr is not this message's.
    const other = e2e();
    sagas.add(paymentSagaId(other), 'TRANSMITTED', { endToEndId: other, bizMsgIdr: 'M99999004ddddddddddddddddddddddd' });
    expect(types(await spi(deps, await signedAdmi002(bcb, paymentMessageId(other), 'SIGNATURE_INVALID')))).toEqual([]);
    expect(sagas.sagas.get(paymentSagaId(other))?.state).toBe('TRANSMITTED');
  });

  it('rejects a payment sent once on an admi.002 whatever its reason text (the SPI has no duplicate code to spare it)', async () => {
    const { deps, sagas, pointers } = world();
    const id = e2e();
    const bizMsgIdr = 'M99999004ccccccccccccccccccccccc';
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id, bizMsgIdr });
    pointers.set(`message:${bizMsgIdr}`, paymentSagaId(id));
    expect(types(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'DUPLICATE_BIZMSGIDR')))).toEqual(['MessageRejected']);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('REJECTED');
  });

  it('raises an admi.002 for a message sent more than once (or in doubt) to operations instead of rejecting the payment', async () => {
    const { deps, sagas, pointers } = world();
    for (const [state, attempt, bizMsgIdr] of [['TRANSMITTED', 2, 'M99999004ffffffffffffffffffffff1'], ['IN_DOUBT', 1, 'M99999004ffffffffffffffffffffff2']] as const) {
      const id = sentPayment({ sagas, pointers }, state, attempt, bizMsgIdr);
      const alert = only(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID')));
      expect(alert.detailType).toBe('RejectionAmbiguous');
      expect(alert.detail.data).toMatchObject({ recordedState: state, rejectedBizMsgIdr: bizMsgIdr, code: 'SCHEMA_INVALID' });
      expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe(state);
    }
  });

  it('does not reject a payment that the in-doubt sweeper moved to IN_DOUBT while the admi.002 was being applied', async () => {
    const { deps, sagas, pointers } = world();
    const bizMsgIdr = 'M99999004ffffffffffffffffffffff4';
    const id = sentPayment({ sagas, pointers }, 'TRANSMITTED', 1, bizMsgIdr);
    // Read as TRANSMITTED; the write then loses to the sweeper, and the saga is read again.
    sagas.beforeNextTransition = (saga) => {
      saga.history = [...saga.history, { at: '', from: saga.state, to: 'IN_DOUBT', reason: 'sweeper', attempt: 1, key: 'in-doubt' }];
      saga.state = 'IN_DOUBT';
    };
    const alert = only(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID')));
    expect(alert.detailType).toBe('RejectionAmbiguous');
    expect(alert.detail.data).toMatchObject({ recordedState: 'IN_DOUBT', rejectedBizMsgIdr: bizMsgIdr });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('IN_DOUBT');
    expect(sagas.reads).toBe(2);
  });

  it('retries an admi.002 that arrives before the transmission was recorded', async () => {
    const { deps, sagas, pointers } = world();
    const id = e2e();
    const bizMsgIdr = 'M99999004ffffffffffffffffffffff3';
    sagas.add(paymentSagaId(id), 'TRANSMITTING', { endToEndId: id, bizMsgIdr });
    pointers.set(`message:${bizMsgIdr}`, paymentSagaId(id));
    await expect(spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID'))).rejects.toMatchObject({ code: 'VERIFY_REFUSAL_BEFORE_TRANSMITTED' });
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('TRANSMITTING');
  });

  it('records an admi.002 for an echo in a state its table cannot leave for FAILED, without crashing', async () => {
    const { deps, sagas, pointers } = world();
    const requestId = randomUUID();
    const bizMsgIdr = 'M99999004ddddddddddddddddddddddd';
    sagas.add(echoSagaId(requestId), 'COMPLETED', { requestId });
    pointers.set(`message:${bizMsgIdr}`, echoSagaId(requestId));
    const outcome = await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID'));
    expect(outcome.events).toHaveLength(0);
    expect(outcome.audit[0]?.response_header).toContain('not-applicable');
    expect(sagas.sagas.get(echoSagaId(requestId))?.state).toBe('COMPLETED');
  });

  it('fails a transmitted echo that an admi.002 refuses', async () => {
    const { deps, sagas, pointers } = world();
    const requestId = randomUUID();
    const bizMsgIdr = 'M99999004eeeeeeeeeeeeeeeeeeeeeee';
    sagas.add(echoSagaId(requestId), 'TRANSMITTED', { requestId });
    pointers.set(`message:${bizMsgIdr}`, echoSagaId(requestId));
    const outcome = await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID'));
    expect(types(outcome)).toEqual(['MessageRejected']);
    expect(sagas.sagas.get(echoSagaId(requestId))?.state).toBe('FAILED');
  });
});

describe('verify handler: stream duplicates forwarded as another copy (same PI-ResourceId, another copy id)', () => {
  it('applies the first copy of a pacs.002, republishes on a redelivery of that copy, records another copy only', async () => {
    const { deps, sagas } = world();
    const { xml } = await transmittedWithAcsc(sagas);
    const first = await spi(deps, xml, 'R1', 'c1');
    const redelivered = await spi(deps, xml, 'R1', 'c1');
    const duplicate = await spi(deps, xml, 'R1', 'c2');
    expect(types(first)).toEqual(['PaymentSettled']);
    expect(redelivered.events.map((e) => e.detail.data)).toEqual(first.events.map((e) => e.detail.data));
    expect(duplicate.events).toEqual([]);
    expect(dispositions(duplicate)).toEqual(['duplicate']);
    expect(sagas.writes).toBe(1);
  });

  it('asks core banking once about an inbound pacs.008 read twice from the stream', async () => {
    const { deps, sagas } = world();
    const xml = await signedPacs008(bcb, inboundTransfer(generateEndToEndId('99999005'), ISPB));
    const first = only(await spi(deps, xml, 'P1', 'c1'));
    expect(only(await spi(deps, xml, 'P1', 'c1')).detail.data).toEqual(first.detail.data);
    expect(types(await spi(deps, xml, 'P1', 'c2'))).toEqual([]);
    expect(sagas.writes).toBe(1);
  });

  it('publishes EchoReceived for the first copy of a pibr.001 (again on its redelivery), not for another copy', async () => {
    const { deps, markers } = world();
    const xml = await signedPibr001(bcb, 'ping-9');
    expect(types(await spi(deps, xml, 'E1', 'c1'))).toEqual(['EchoReceived']);
    expect(types(await spi(deps, xml, 'E1', 'c1'))).toEqual(['EchoReceived']);
    const duplicate = await spi(deps, xml, 'E1', 'c2');
    expect(types(duplicate)).toEqual([]);
    expect(dispositions(duplicate)).toEqual(['duplicate']);
    expect([...markers]).toEqual([['icom-resource#E1', 'c1']]);
  });

  it('keeps an unsupported or unverifiable message once: another copy is neither kept nor reported', async () => {
    const { deps, quarantined } = world();
    const unsupported = await signedUnsupported(bcb, 'camt.060');
    expect(types(await spi(deps, unsupported, 'U1', 'c1'))).toEqual(['UnsupportedMessageReceived']);
    const unsupportedAgain = await spi(deps, unsupported, 'U1', 'c2');
    const forged = corruptSignatureValue(unsupported);
    expect(types(await spi(deps, forged, 'F1', 'c1'))).toEqual(['SignatureInvalid']);
    const forgedAgain = await spi(deps, forged, 'F1', 'c2');
    expect([types(unsupportedAgain), types(forgedAgain)]).toEqual([[], []]);
    expect([dispositions(unsupportedAgain), dispositions(forgedAgain)]).toEqual([['duplicate'], ['duplicate']]);
    expect(quarantined.map((q) => q.code)).toEqual(['SPI_MESSAGE_UNSUPPORTED', 'XMLDSIG_SIGNATURE_MISMATCH']);
  });

  it('publishes again, for a copy of the same resource, a fact an older verify task recorded under the bare PI-ResourceId (it may have died before publishing)', async () => {
    const { deps, sagas } = world();
    const { id, xml } = await transmittedWithAcsc(sagas);
    const old = await spi(deps, xml, 'R7');
    expect((await sagas.get(paymentSagaId(id)))?.history.at(-1)?.reason).toMatch(/\[source R7\]$/);
    const again = await spi(deps, xml, 'R7', 'c1');
    expect(again.events.map((e) => e.detail.data)).toEqual(old.events.map((e) => e.detail.data));
    expect(dispositions(again)).toEqual(['redelivered']);
    // A resource whose id merely starts the same is another resource.
    expect(dispositions(await spi(deps, xml, 'R', 'c1'))).toEqual(['duplicate']);
    expect(sagas.writes).toBe(1);
  });

  it('raises an ambiguous admi.002 to operations once, not again for another copy of it', async () => {
    const { deps, sagas, pointers } = world();
    const bizMsgIdr = 'M99999004ffffffffffffffffffffff9';
    sentPayment({ sagas, pointers }, 'TRANSMITTED', 2, bizMsgIdr);
    const xml = await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID');
    expect(types(await spi(deps, xml, 'A1', 'c1'))).toEqual(['RejectionAmbiguous']);
    expect(types(await spi(deps, xml, 'A1', 'c1'))).toEqual(['RejectionAmbiguous']);
    const other = await spi(deps, xml, 'A1', 'c2');
    expect(types(other)).toEqual([]);
    expect(dispositions(other)).toEqual(['duplicate']);
  });

  it('claims no marker for an envelope without a copy id (a receive worker before copy ids dropped stream duplicates itself)', async () => {
    const { deps, markers } = world();
    const xml = await signedPibr001(bcb, 'ping-10');
    expect(types(await spi(deps, xml, 'E2'))).toEqual(['EchoReceived']);
    expect(types(await spi(deps, xml, 'E2'))).toEqual(['EchoReceived']);
    expect(markers.size).toBe(0);
  });
});

describe('verify handler: other SPI messages', () => {
  it('turns a pibr.001 from the SPI into EchoReceived for the sign worker to answer, keyed by its BizMsgIdr', async () => {
    const { deps, sagas } = world();
    const received = only(await spi(deps, await signedPibr001(bcb, 'ping-7'), 'E1'));
    expect(received.detailType).toBe('EchoReceived');
    const bizMsgIdr = (received.detail.data as { bizMsgIdr: string }).bizMsgIdr;
    expect(received.detail).toMatchObject({ sagaId: echoSagaId(bizMsgIdr), requestId: bizMsgIdr, data: { originalData: 'ping-7', resourceId: 'E1' } });
    expect(sagas.writes).toBe(0);
  });

  it('keeps a correctly signed message of a type selo does not handle and tells operations, without a security alert', async () => {
    const { deps, quarantined } = world();
    const xml = await signedUnsupported(bcb, 'camt.060');
    const outcome = await spi(deps, xml, 'U1');
    const unsupported = only(outcome);
    expect(unsupported.detailType).toBe('UnsupportedMessageReceived');
    expect(unsupported.detail.data).toMatchObject({ messageType: 'camt.060', resourceId: 'U1', kept: { key: expect.stringMatching(/^unsupported\/\d{4}\/\d{2}\/\d{2}\/U1\.xml$/) as unknown } });
    expect(quarantined.map((q) => [q.body === xml, q.code])).toEqual([[true, 'SPI_MESSAGE_UNSUPPORTED']]);
    expect(outcome.audit.map((r) => [r.kind, r.response_signature_valid])).toEqual([['response', true]]);
  });

  it('still reports a message of an unknown type whose signature fails as SignatureInvalid', async () => {
    const { deps } = world();
    const xml = corruptSignatureValue(await signedUnsupported(bcb, 'camt.060'));
    expect(types(await spi(deps, xml, 'U2'))).toEqual(['SignatureInvalid']);
  });

  it('asks core banking to decide on a pacs.004 returning our payment (saga IN#<RtrId>, never a credit), and settles it on ACCC', async () => {
    const { deps, sagas } = world();
    const original = e2e();
    const returnId = generateReturnId('99999005');
    const xml = await signedPacs004(bcb, { returnId, originalEndToEndId: original, amount: '10.00', reason: { code: 'MD06' }, debtorAgentIspb: '99999005', creditorAgentIspb: ISPB });
    const requested = only(await spi(deps, xml));
    expect(requested.detailType).toBe('InboundReturnDecisionRequested');
    expect(requested.detail).toMatchObject({ sagaId: inboundSagaId(returnId), endToEndId: returnId, data: { returnId, originalEndToEndId: original, amount: '10.00', reason: { code: 'MD06' } } });
    expect(sagas.sagas.get(inboundSagaId(returnId))).toMatchObject({ state: 'RECEIVED', facts: { originalEndToEndId: original, amount: '10.00' } });
    await sagas.transition({ sagaId: inboundSagaId(returnId), to: 'SIGNED', reason: 'test', attempt: 1, idempotencyKey: 'sign' });
    await sagas.transition({ sagaId: inboundSagaId(returnId), to: 'TRANSMITTING', reason: 'test', attempt: 1, idempotencyKey: 'transmitting' });
    await sagas.transition({ sagaId: inboundSagaId(returnId), to: 'TRANSMITTED', reason: 'test', attempt: 1, idempotencyKey: 'transmitted' });
    // The SPI's pacs.002 about a return names the RtrId as OrgnlInstrId and the original EndToEndId.
    const settled = only(await spi(deps, await signedPacs002(bcb, { ...statusOf(original, 'ACCC'), originalInstructionId: returnId })));
    expect(settled.detailType).toBe('InboundPaymentSettled');
    expect(settled.detail.data).toMatchObject({ endToEndId: original, originalInstructionId: returnId, amount: '10.00' });
    expect(sagas.sagas.get(inboundSagaId(returnId))?.state).toBe('SETTLED');
  });

  it('turns a pibr.002 into EchoAnswered and the echo saga COMPLETED', async () => {
    const { deps, sagas, pointers } = world();
    const requestId = randomUUID();
    sagas.add(echoSagaId(requestId), 'TRANSMITTED', { requestId });
    pointers.set('echo:ping-42', echoSagaId(requestId));
    const answered = only(await spi(deps, await signedPibr002(bcb, 'ping-42')));
    expect(answered.detail).toMatchObject({ sagaId: echoSagaId(requestId), requestId, data: { originalData: 'ping-42' } });
    expect(sagas.sagas.get(echoSagaId(requestId))?.state).toBe('COMPLETED');
  });
});

describe('verify handler: what fails verification is quarantined, never acted on', () => {
  async function expectQuarantined(xml: string, code: string): Promise<void> {
    const { deps, sagas, quarantined } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    const outcome = await spi(deps, xml, 'Q1');
    const invalid = only(outcome);
    expect(invalid.detailType).toBe('SignatureInvalid');
    expect(invalid.detail.sagaId).toBe('INBOX#Q1');
    expect(invalid.detail.data).toMatchObject({ path: 'inbound', channel: 'spi', resourceId: 'Q1', code, quarantine: { bucket: 'payloads', key: expect.stringMatching(/^quarantine\/\d{4}\/\d{2}\/\d{2}\/Q1\.xml$/) as unknown } });
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]?.body).toBe(xml);
    expect(quarantined[0]?.code).toBe(code);
    expect(sagas.writes).toBe(0);
    expect(outcome.audit.map((r) => r.kind)).toEqual(['response']);
  }

  it('quarantines a pacs.002 whose signature value was corrupted', async () => {
    const id = 'E99999004202611281700zzzzzzzzzzz';
    const { deps, sagas, quarantined } = world();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    const xml = corruptSignatureValue(await signedPacs002(bcb, statusOf(id, 'ACSC')));
    const outcome = await spi(deps, xml, 'Q0');
    expect(types(outcome)).toEqual(['SignatureInvalid']);
    expect(outcome.events[0]?.detail.data).toMatchObject({ code: 'XMLDSIG_SIGNATURE_MISMATCH' });
    expect(quarantined[0]?.body).toBe(xml);
    expect(outcome.audit[0]?.response_signature_valid).toBe(false);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('TRANSMITTED');
  });

  it('quarantines a RJCT turned into ACSC after signing (digest mismatch)', async () => {
    const xml = await signedPacs002(bcb, statusOf('E99999004202611281700yyyyyyyyyyy', 'RJCT', 'AB03'));
    await expectQuarantined(xml.replace('<TxSts>RJCT</TxSts>', '<TxSts>ACSC</TxSts>'), 'XMLDSIG_DIGEST_MISMATCH');
  });

  it('quarantines a message signed by a certificate outside the BCB trust store', async () => {
    await expectQuarantined(await signedPacs002({ key: stranger, toIspb: ISPB }, statusOf('E99999004202611281700xxxxxxxxxxx', 'ACSC')), 'XMLDSIG_SIGNER_UNKNOWN');
  });

  it('quarantines a message signed with the BCB key whose AppHdr/Fr is another participant', async () => {
    await expectQuarantined(await signedPacs002({ key: bcbKey, fromIspb: '99999005', toIspb: ISPB }, statusOf('E99999004202611281700wwwwwwwwwww', 'ACSC')), 'XMLDSIG_SIGNER_ISPB_MISMATCH');
  });

  it('quarantines a BCB message addressed to another participant', async () => {
    await expectQuarantined(await signedPacs002({ key: bcbKey, toIspb: '99999005' }, statusOf('E99999004202611281700vvvvvvvvvvv', 'ACSC')), 'SPI_RECIPIENT_MISMATCH');
  });

  it('quarantines XML with a DTD (XXE) and XML that is not well-formed', async () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Envelope>&x;</Envelope>';
    await expectQuarantined(xxe, 'XML_DTD_FORBIDDEN');
    await expectQuarantined('<Envelope><AppHdr>', 'XML_MALFORMED');
  });

  it('reads a claim-checked SPI message and quarantines it under its exact bytes', async () => {
    const { deps, kept, quarantined } = world();
    const xml = corruptSignatureValue(await signedPacs002(bcb, statusOf(e2e(), 'ACSC')));
    kept.set('inbox/big.xml', xml);
    const event = bcbMessageReceived('B1', '');
    (event.detail.data as { payload: unknown }).payload = { claimCheck: { bucket: 'payloads', key: 'inbox/big.xml' } };
    expect(types(await deliver(deps, event))).toEqual(['SignatureInvalid']);
    expect(quarantined[0]?.body).toBe(xml);
  });

  it('quarantines a message over the size limit', async () => {
    const { deps, quarantined } = world();
    const big = `<Envelope>${'x'.repeat(5000)}</Envelope>`;
    const outcome = await spi({ ...deps, maxXmlBytes: 4096 }, big);
    expect(outcome.events[0]?.detail.data).toMatchObject({ code: 'XML_TOO_LARGE' });
    expect(quarantined[0]?.body).toBe(big);
  });
});

describe('verify handler: a signed message that breaks its XSD is quarantined, never acted on', () => {
  /** A BCB header to us, now. */
  function bcbHeader(): { fromIspb: string; toIspb: string; bizMsgIdr: string; creDt: string } {
    return { fromIspb: BCB, toIspb: ISPB, bizMsgIdr: generateMessageId(BCB), creDt: new Date().toISOString() };
  }

  it('quarantines a BCB-signed pacs.002 RJCT whose reason code is not in the 1.17 code list (ISO20022_SCHEMA_INVALID); the payment stays TRANSMITTED', async () => {
    const { deps, sagas, quarantined } = world();
    const id = e2e();
    sagas.add(paymentSagaId(id), 'TRANSMITTED', { endToEndId: id });
    const h = bcbHeader();
    // AM05 parses (four characters) but ExternalStatusReason1Code of pacs.002.spi.1.17.xsd has no AM05.
    const xml = await signSpi(buildPacs002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, statuses: [statusOf(id, 'RJCT', 'AM05')] }), bcbKey);
    const outcome = await spi(deps, xml, 'S1');
    const invalid = only(outcome);
    expect(invalid.detailType).toBe('SignatureInvalid');
    expect(invalid.detail.data).toMatchObject({ code: 'ISO20022_SCHEMA_INVALID', resourceId: 'S1', quarantine: { key: expect.stringMatching(/^quarantine\/.*\/S1\.xml$/) as unknown } });
    const reason = (invalid.detail.data as { reason: string }).reason;
    expect(reason).toContain('pacs.002.spi.1.17: /Envelope/Document/FIToFIPmtStsRpt/TxInfAndSts/StsRsnInf/Rsn/Cd');
    expect(reason).not.toContain('AM05'); // the value is left out of what reaches logs and events
    expect(quarantined.map((q) => [q.code, q.body === xml])).toEqual([['ISO20022_SCHEMA_INVALID', true]]);
    expect(sagas.writes).toBe(0);
    expect(sagas.sagas.get(paymentSagaId(id))?.state).toBe('TRANSMITTED');
    // The signature was good: the audit record says so.
    expect(outcome.audit.map((r) => [r.kind, r.response_signature_valid])).toEqual([['response', true]]);
  });

  it('quarantines a BCB-signed pacs.008 whose debtor name is longer than the XSD allows, opening no inbound saga', async () => {
    const { deps, sagas, quarantined } = world();
    const id = generateEndToEndId('99999005');
    const h = bcbHeader();
    const transfer = { ...inboundTransfer(id, ISPB), debtor: { name: 'N'.repeat(141), taxId: '70000000000' } }; // Max140Text
    const xml = await signSpi(buildPacs008({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, transactions: [transfer] }), bcbKey);
    const invalid = only(await spi(deps, xml, 'S2'));
    expect(invalid.detailType).toBe('SignatureInvalid');
    expect(invalid.detail.data).toMatchObject({ code: 'ISO20022_SCHEMA_INVALID' });
    expect((invalid.detail.data as { reason: string }).reason).toContain('/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Dbtr/Nm');
    expect(quarantined).toHaveLength(1);
    expect(sagas.sagas.has(inboundSagaId(id))).toBe(false);
    expect(sagas.writes).toBe(0);
  });

  it('checks the schema only after the signature: a forged message is refused for its signature without reaching libxml2', async () => {
    const { deps } = world();
    const checked: string[] = [];
    const outcome = await spi({ ...deps, validateSpi: (_xml, schema) => Promise.resolve(void checked.push(schema)) }, corruptSignatureValue(await signedPacs002(bcb, statusOf(e2e(), 'ACSC'))));
    expect(outcome.events[0]?.detail.data).toMatchObject({ code: 'XMLDSIG_SIGNATURE_MISMATCH' });
    expect(checked).toEqual([]);
  });

  it('checks each verified message against the XSD of its namespace, and those selo has no XSD of not at all', async () => {
    const { deps, sagas } = world();
    const checked: string[] = [];
    const counting = { ...deps, validateSpi: (_xml: string, schema: string) => Promise.resolve(void checked.push(schema)) };
    await spi(counting, (await transmittedWithAcsc(sagas)).xml);
    await spi(counting, await signedPacs008(bcb, inboundTransfer(generateEndToEndId('99999005'), ISPB)));
    await spi(counting, await signedPibr001(bcb, 'ping'));
    expect(checked).toEqual(['pacs.002.spi.1.17', 'pacs.008.spi.1.16']);
  });

  it('retries (throws) when the schema check itself cannot run, instead of quarantining a message that may be valid', async () => {
    const { deps, quarantined } = world();
    const broken = { ...deps, validateSpi: () => Promise.reject(new Error('libxml2 failed to load')) };
    const error: unknown = await spi(broken, await signedPacs002(bcb, statusOf(e2e(), 'ACSC'))).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'ISO20022_SCHEMA_CHECK_UNAVAILABLE', retryability: 'transient', cause: { message: 'libxml2 failed to load' } });
    expect(quarantined).toEqual([]);
  });
});

describe('verify handler: DICT answers', () => {
  async function dictAnswer(deps: VerifyHandlerDeps, requestId: string, status: number, body: string): Promise<Outcome> {
    return deliver(deps, {
      detailType: 'DictResponseReceived',
      source: 'selo.transmit',
      detail: { version: 1, sagaId: dictSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { channel: 'dict', operation: 'createEntry', status, contentType: 'application/xml', body } },
    });
  }

  const entryAnswer = '<CreateEntryResponse><ResponseTime>2026-11-28T17:00:00.000Z</ResponseTime><CorrelationId>c1</CorrelationId></CreateEntryResponse>';

  it('turns a signed 201 into DictResponseVerified and the saga COMPLETED; a redelivery publishes it again', async () => {
    const { deps, sagas } = world();
    const requestId = randomUUID();
    sagas.add(dictSagaId(requestId), 'TRANSMITTED', { requestId });
    const body = await signDict(entryAnswer, bcbKey);
    const verified = only(await dictAnswer(deps, requestId, 201, body));
    expect(verified.detail).toMatchObject({ sagaId: dictSagaId(requestId), requestId, data: { channel: 'dict', operation: 'createEntry', status: 201, body } });
    expect(sagas.sagas.get(dictSagaId(requestId))?.state).toBe('COMPLETED');
    expect(types(await dictAnswer(deps, requestId, 201, body))).toEqual(['DictResponseVerified']);
    expect(sagas.writes).toBe(1);
  });

  it('turns a signed 4xx problem into DictOperationFailed with its type and title, the saga REJECTED', async () => {
    const { deps, sagas } = world();
    const requestId = randomUUID();
    sagas.add(dictSagaId(requestId), 'TRANSMITTED', { requestId });
    const problem = await signDict(buildDictProblem({ type: 'https://dict.pi.rsfn.net.br/api/v2/error/EntryAlreadyExists', title: 'EntryAlreadyExists', status: 409, detail: 'key exists' }), bcbKey);
    const failed = only(await dictAnswer(deps, requestId, 409, problem));
    expect(failed.detailType).toBe('DictOperationFailed');
    expect(failed.detail.data).toMatchObject({ status: 409, problem: { type: 'https://dict.pi.rsfn.net.br/api/v2/error/EntryAlreadyExists', title: 'EntryAlreadyExists', detail: 'key exists' } });
    expect(sagas.sagas.get(dictSagaId(requestId))?.state).toBe('REJECTED');
  });

  it('quarantines a DICT answer signed by someone else, leaving the saga as it was', async () => {
    const { deps, sagas, quarantined } = world();
    const requestId = randomUUID();
    sagas.add(dictSagaId(requestId), 'TRANSMITTED', { requestId });
    const body = await signDict(entryAnswer, stranger);
    const invalid = only(await dictAnswer(deps, requestId, 201, body));
    expect(invalid.detail).toMatchObject({ sagaId: dictSagaId(requestId), requestId, data: { path: 'inbound', channel: 'dict', operation: 'createEntry', code: 'XMLDSIG_SIGNER_UNKNOWN' } });
    expect(quarantined[0]?.body).toBe(body);
    expect(quarantined[0]?.key).toMatch(/\/DICT_[0-9a-f-]+\.xml$/);
    expect(sagas.sagas.get(dictSagaId(requestId))?.state).toBe('TRANSMITTED');
  });

  it('reads a claim-checked DICT answer from where the transmit worker kept it', async () => {
    const { deps, sagas, kept } = world();
    const requestId = randomUUID();
    sagas.add(dictSagaId(requestId), 'TRANSMITTED', { requestId });
    const body = await signDict(entryAnswer, bcbKey);
    kept.set('dict-answers/x.json', JSON.stringify({ channel: 'dict', operation: 'createEntry', status: 201, contentType: 'application/xml', body }));
    const outcome = await deliver(deps, {
      detailType: 'DictResponseReceived',
      source: 'selo.transmit',
      detail: { version: 1, sagaId: dictSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { channel: 'dict', operation: 'createEntry', status: 201, contentType: 'application/xml', claimCheck: { bucket: 'payloads', key: 'dict-answers/x.json' } } },
    });
    expect(types(outcome)).toEqual(['DictResponseVerified']);
  });
});

describe('verified-event decoders', () => {
  it('name the field that breaks the contract', () => {
    expect(() => decodePaymentSettled({ channel: 'spi', status: 'ACSC', endToEndId: 'E1', originalInstructionId: 'E1', bizMsgIdr: 'M1' })).toThrow('data.resourceId');
    expect(() => decodePaymentRejected({ channel: 'spi', status: 'RJCT', endToEndId: 'E1', originalInstructionId: 'E1', bizMsgIdr: 'M1', resourceId: 'R', reason: { code: 5 } })).toThrow('data.reason.code');
    expect(() => decodeSignatureInvalid({ path: 'sideways', channel: 'spi', code: 'X' })).toThrow('data.path');
    expect(() => decodeDictResponseVerified({ channel: 'dict', operation: 'getEntry', status: 200 })).toThrow('data.body');
  });
});

describe('decodeVerifyInput', () => {
  it('tells the two inputs apart by detail-type and refuses any other', () => {
    expect(decodeVerifyInput({ channel: 'dict', operation: 'getEntry', status: 200, contentType: '', body: '<a/>' }, 'DictResponseReceived').kind).toBe('dict');
    expect(() => decodeVerifyInput({}, 'PaymentRequested')).toThrow(/detail-type/);
    expect(() => decodeVerifyInput({ channel: 'dict', operation: 'getEntry', status: 200 }, 'DictResponseReceived')).toThrow(/data.body/);
  });
});

describe('verify handler: payments to our customers (the receiving side)', () => {
  it('opens an inbound saga RECEIVED and asks core banking to decide, with the answer deadline; never a credit', async () => {
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    const transfer = inboundTransfer(id, ISPB);
    const outcome = await spi({ ...deps, inboundDecisionLimitMs: 10_000 }, await signedPacs008(bcb, transfer), 'P1');
    const requested = only(outcome);
    expect(requested.detailType).toBe('InboundPaymentDecisionRequested');
    expect(requested.detail).toMatchObject({ sagaId: inboundSagaId(id), endToEndId: id });
    expect(requested.detail.data).toMatchObject({ amount: '321.09', creditorAgentIspb: ISPB, creditorAccount: { number: '600000', proxy: '+5561988887777' }, debtor: { taxId: '70000000000' } });
    const { answerDeadline, receivedAt } = requested.detail.data as { answerDeadline: string; receivedAt: string };
    expect(Date.parse(answerDeadline)).toBe(Math.min(Date.parse(transfer.acceptanceDateTime), Date.parse(receivedAt)) + 10_000);
    expect(sagas.sagas.get(inboundSagaId(id))).toMatchObject({ kind: 'inbound', state: 'RECEIVED', facts: { answerDeadline, receivedAt, amount: '321.09' } });
    expect(outcome.audit.map((r) => [r.kind, r.transition_to ?? r.response_signature_valid])).toEqual([['response', true], ['transition', 'RECEIVED']]);
  });

  it('asks again on a redelivery of the same resource and records a copy from another resource only', async () => {
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    const xml = await signedPacs008(bcb, inboundTransfer(id, ISPB));
    const first = only(await spi(deps, xml, 'P1'));
    const again = only(await spi(deps, xml, 'P1'));
    expect(again.detail.data).toEqual(first.detail.data);
    expect(types(await spi(deps, await signedPacs008(bcb, inboundTransfer(id, ISPB)), 'P2'))).toEqual([]);
    expect(sagas.writes).toBe(1);
  });

  it('publishes InboundPaymentRejected when the SPI rejects a payment core banking was asked about (AB03 before any answer)', async () => {
    // The money-safety defect of issue 14: this RJCT used to be recorded as unknown-saga, with no event.
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    await spi(deps, await signedPacs008(bcb, inboundTransfer(id, ISPB)), 'P1');
    const rejected = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AB03')), 'R1'));
    expect(rejected.detailType).toBe('InboundPaymentRejected');
    expect(rejected.detail).toMatchObject({ sagaId: inboundSagaId(id), endToEndId: id, data: { reason: { code: 'AB03' }, amount: '321.09', resourceId: 'R1' } });
    expect(sagas.sagas.get(inboundSagaId(id))?.state).toBe('REJECTED');
  });

  it('settles an answered inbound payment on ACCC with one write, reporting the answer time', async () => {
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    sagas.add(inboundSagaId(id), 'TRANSMITTED', { endToEndId: id, facts: { receivedAt: '2026-12-07T10:00:00.000Z', answeredAt: '2026-12-07T10:00:00.120Z', amount: '5.00', answer: 'ACSP' } });
    const settled = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACCC')), 'S1'));
    expect(settled.detailType).toBe('InboundPaymentSettled');
    expect(settled.detail.data).toMatchObject({ endToEndId: id, amount: '5.00', answerMs: 120, resourceId: 'S1', settlementDateTime: expect.any(String) as unknown });
    expect(sagas.sagas.get(inboundSagaId(id))?.state).toBe('SETTLED');
    expect([sagas.reads, sagas.writes]).toEqual([0, 1]);
  });

  it('rejects an answered inbound payment on our own RJCT, naming what we answered', async () => {
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    sagas.add(inboundSagaId(id), 'TRANSMITTED', { endToEndId: id, facts: { answer: 'RJCT AC03' } });
    const rejected = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AC03')), 'R1'));
    expect(rejected.detail.data).toMatchObject({ reason: { code: 'AC03' }, answer: 'RJCT AC03' });
  });

  it('raises OutcomeConflict, never a credit, for an ACCC about a payment we answered RJCT (TRANSMITTED or IN_DOUBT)', async () => {
    for (const state of ['TRANSMITTED', 'IN_DOUBT'] as const) {
      const { deps, sagas } = world();
      const id = generateEndToEndId('99999005');
      sagas.add(inboundSagaId(id), state, { endToEndId: id, facts: { answer: 'RJCT AC03', amount: '5.00' } });
      const conflict = only(await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACCC'))));
      expect(conflict.detailType).toBe('OutcomeConflict');
      expect(conflict.detail.data).toMatchObject({ recordedState: state, receivedOutcome: 'SETTLED', reason: expect.stringContaining(`for a payment we answered RJCT AC03 (saga ${state})`) as unknown });
      expect(sagas.sagas.get(inboundSagaId(id))?.state).toBe('OUTCOME_CONFLICT');
    }
  });

  it('raises OutcomeConflict for an ACCC about a payment we never accepted, and never settles it', async () => {
    const { deps, sagas } = world();
    const id = generateEndToEndId('99999005');
    sagas.add(inboundSagaId(id), 'LATE', { endToEndId: id });
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'ACCC'))))).toEqual(['OutcomeConflict']);
    expect(sagas.sagas.get(inboundSagaId(id))?.state).toBe('OUTCOME_CONFLICT');
  });

  it('fails our answer that an admi.002 refuses, leaving the outcome to the SPI', async () => {
    const { deps, sagas, pointers } = world();
    const id = generateEndToEndId('99999005');
    const bizMsgIdr = 'M99999004fffffffffffffffffffffff';
    sagas.add(inboundSagaId(id), 'TRANSMITTED', { endToEndId: id, bizMsgIdr });
    pointers.set(`message:${bizMsgIdr}`, inboundSagaId(id));
    expect(types(await spi(deps, await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID')))).toEqual(['MessageRejected']);
    expect(sagas.sagas.get(inboundSagaId(id))?.state).toBe('FAILED');
    expect(types(await spi(deps, await signedPacs002(bcb, statusOf(id, 'RJCT', 'AB03'))))).toEqual(['InboundPaymentRejected']);
  });
});
