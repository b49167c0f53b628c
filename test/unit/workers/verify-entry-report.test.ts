import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEntryReport } from '../../../shared/bcb-query/index.ts';
import type { EntryReportInput } from '../../../shared/bcb-query/index.ts';
import { decodeEventBody, encodeEventBody } from '../../../shared/events/index.ts';
import type { HandlerContext, Outcome } from '../../../shared/runtime/index.ts';
import { resolveSaga } from '../../../shared/saga/index.ts';
import type { ResolveSagaInput } from '../../../shared/saga/index.ts';
import { pemSigningKey, signSpi, TrustStore } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createVerifyHandler, decodeVerifyInput } from '../../../workers/verify/index.ts';
import type { QuarantineEntry, VerifyHandlerDeps, VerifyInput } from '../../../workers/verify/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { FakeSagaStore, ScriptedPublisher } from '../compensate-fakes.ts';
import { silentLogger } from '../runtime/fakes.ts';
import { FakeSagas, fakeMarkers } from './fake-sagas.ts';
import { bcbMessageReceived, corruptSignatureValue } from './verify-messages.ts';

/**
 * The verify worker's side of issue 17: the SPI's camt.054 answering our camt.060, read from the
 * ICOM stream, is matched to its question (`QUERY#<MsgId>`) and the in-doubt payment it names,
 * and resolves it through resolveSaga, exactly once; anything that matches no such question, or
 * whose signature does not verify, is quarantined and acts on nothing.
 */

const ISPB = '99999004';
const BCB = '00038166';
const E2E = 'E99999004202612071000abcdefghijk';
const PAYMENT = `PAY#${E2E}`;
const MSG = 'M99999004querymsgid000000000000a';
const QUERY = `QUERY#${MSG}`;
let pki: TestPki;
let bcbKey: SigningKey;
let stranger: SigningKey;
let trustStore: TrustStore;

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('bcb signing');
  const other = pki.issue('another psp');
  bcbKey = pemSigningKey(leaf.keyPem, leaf.certPem);
  stranger = pemSigningKey(other.keyPem, other.certPem);
  trustStore = new TrustStore();
  trustStore.add(leaf.certPem, { ispb: BCB });
});

afterAll(() => pki.dispose());

const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };

/**
 * Our in-doubt payment (or, with `inbound`, a payment to our customer in doubt, its `answer`) and
 * the camt.060 asked about it (`QUERY#`, amount 10.50), and the verify worker's dependencies.
 */
function world(paymentPath: Parameters<FakeSagaStore['seed']>[1] = ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'], inbound?: { endToEndId: string; answer: string }) {
  const store = new FakeSagaStore();
  const endToEndId = inbound?.endToEndId ?? E2E;
  const paymentSagaId = inbound === undefined ? PAYMENT : `IN#${endToEndId}`;
  if (inbound === undefined) store.seed(PAYMENT, paymentPath, { ids: { endToEndId: E2E }, compensations: [{ step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId: E2E, amount: '10.50' } }] });
  else store.seed(paymentSagaId, ['RECEIVED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'], { ids: { endToEndId, facts: { amount: '10.50', answer: inbound.answer } } });
  store.seed(QUERY, ['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED'], { ids: { endToEndId, requestId: MSG, facts: { paymentSagaId, endToEndId, amount: '10.50' } } });
  const publisher = new ScriptedPublisher();
  const resolutions: ResolveSagaInput[] = [];
  const quarantined: QuarantineEntry[] = [];
  const deps: VerifyHandlerDeps = {
    ispb: ISPB, bcbIspb: BCB, trustStore,
    sagas: new FakeSagas(),
    index: { sagaOfMessage: (b) => Promise.resolve(b === MSG ? QUERY : undefined), sagaOfEcho: () => Promise.resolve(undefined) },
    claimCheck: { put: () => Promise.reject(new Error('unused')), get: () => Promise.reject(new Error('unused')) },
    quarantine: { put: (entry) => Promise.resolve(void quarantined.push(entry)).then(() => ({ bucket: 'payloads', key: entry.key })) },
    markers: { claimAs: () => Promise.reject(new Error('no marker for a message without a copy id')) },
    entryReports: {
      sagas: store,
      index: { sagaOfMessage: (b) => Promise.resolve(b === MSG ? QUERY : undefined) },
      resolve: (input) => {
        resolutions.push(input);
        return resolveSaga({ sagas: store, publisher, audit: { put: () => Promise.resolve() }, source: 'selo.verify', auditWorker: 'verify' }, input);
      },
    },
  };
  return { store, publisher, resolutions, quarantined, deps };
}

async function camt054(overrides: Partial<EntryReportInput> = {}, key = bcbKey): Promise<string> {
  return signSpi(buildEntryReport({
    bcbIspb: BCB, ispb: ISPB, bizMsgIdr: 'M00038166reportmsgid00000000000b', createdAt: '2026-12-07T10:00:01.000Z', queryMsgId: MSG, endToEndId: E2E,
    entry: { status: 'BOOK', creditDebit: 'DBIT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: ISPB, receiverIspb: '99999005' },
    ...overrides,
  }), key);
}

async function deliver(deps: VerifyHandlerDeps, xml: string, resourceId = 'R1', copy?: string): Promise<Outcome> {
  const decoded = decodeEventBody<VerifyInput>(encodeEventBody(bcbMessageReceived(resourceId, xml, copy)), decodeVerifyInput, 'm');
  return createVerifyHandler(deps)({ event: decoded, sqs: { messageId: 'm', receiveCount: 1 } }, context);
}

describe('verify: the BCB\'s camt.054 answering our camt.060 (issue 17)', () => {
  it('settles the in-doubt payment once from a BOOK debit of our amount: PaymentSettled by bcb-query, the query COMPLETED, a redelivery changes nothing', async () => {
    const { store, publisher, resolutions, quarantined, deps } = world();
    const xml = await camt054();
    const outcome = await deliver(deps, xml);
    expect(store.state(PAYMENT)).toBe('SETTLED');
    expect(store.state(QUERY)).toBe('COMPLETED');
    expect(publisher.published.map((e) => `${e.source ?? ''} ${e.detailType}`)).toEqual(['selo.verify PaymentSettled']);
    expect(publisher.published[0]?.detail.data).toMatchObject({ status: 'ACSC', endToEndId: E2E, resolution: { by: 'bcb-query' } });
    expect(resolutions).toEqual([expect.objectContaining({ sagaId: PAYMENT, outcome: 'settled', by: 'bcb-query', evidence: expect.stringContaining(`answering camt.060 ${MSG} for ${E2E}: entry BOOK DBIT 10.50`) as unknown })]);
    expect(outcome.events).toEqual([]);
    expect(outcome.audit.map((r) => `${r.kind} ${r.saga_id} ${r.transition_to ?? String(r.response_signature_valid)}`)).toEqual([`response ${PAYMENT} true`, `transition ${QUERY} COMPLETED`]);
    expect(quarantined).toEqual([]);

    // The same resource again (the stream redelivers, a crash before the delete): nothing more.
    await deliver(deps, xml);
    expect(publisher.published).toHaveLength(1);
    expect((await store.get(PAYMENT))?.history.filter((t) => t.to === 'SETTLED')).toHaveLength(1);
    // Another answer to the same question is not believed a second time.
    await deliver(deps, xml, 'R2');
    expect(quarantined.map((q) => q.code)).toEqual(['ENTRY_REPORT_UNMATCHED']);
  });

  it('acts on the first copy of an answer only: another copy of the same resource (a stream duplicate read again) resolves and publishes nothing', async () => {
    const { store, publisher, resolutions, quarantined, deps } = world();
    deps.markers = fakeMarkers();
    const xml = await camt054();
    await deliver(deps, xml, 'R1', 'c1');
    expect(store.state(PAYMENT)).toBe('SETTLED');
    const other = await deliver(deps, xml, 'R1', 'c2');
    expect(other).toEqual({ events: [], audit: [expect.objectContaining({ kind: 'response', response_header: expect.stringContaining('"selo-disposition":"duplicate"') as unknown })] });
    expect(resolutions).toHaveLength(1);
    expect(publisher.published.map((e) => e.detailType)).toEqual(['PaymentSettled']);
    expect(quarantined).toEqual([]);
  });

  it('settles a payment to our customer from a BOOK credit (InboundPaymentSettled), never from a debit, and never one we answered RJCT', async () => {
    const theirs = 'E99999005202612071000abcdefghijk';
    const inbound = `IN#${theirs}`;
    const setup = (answer: string) => world(undefined, { endToEndId: theirs, answer });
    const credit = { status: 'BOOK', creditDebit: 'CRDT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: '99999005', receiverIspb: ISPB } as const;

    const accepted = setup('ACSP');
    await deliver(accepted.deps, await camt054({ endToEndId: theirs, entry: credit }));
    expect(accepted.store.state(inbound)).toBe('SETTLED');
    expect(accepted.publisher.published.map((e) => `${e.source ?? ''} ${e.detailType}`)).toEqual(['selo.verify InboundPaymentSettled']);
    expect(accepted.publisher.published[0]?.detail.data).toMatchObject({ endToEndId: theirs, amount: '10.50', resolution: { by: 'bcb-query' } });

    const debited = setup('ACSP');
    await deliver(debited.deps, await camt054({ endToEndId: theirs, entry: { ...credit, creditDebit: 'DBIT' } }));
    expect(debited.store.state(inbound)).toBe('IN_DOUBT');
    expect(debited.publisher.published).toEqual([]);

    const refused = setup('RJCT AC03');
    await deliver(refused.deps, await camt054({ endToEndId: theirs, entry: credit }));
    expect(refused.store.state(inbound)).toBe('IN_DOUBT');
    expect(refused.publisher.published).toEqual([]);
    expect((await refused.store.get(inbound))?.facts.bcbQuery).toMatch(/entry BOOK CRDT 10\.50 .*; we answered RJCT AC03: a person decides$/);
  });

  it('keeps the payment IN_DOUBT when the answer books nothing (never read as a rejection), keeping the answer for a person', async () => {
    const { store, publisher, deps } = world();
    await deliver(deps, await camt054({ entry: undefined, error: { code: 'ENNF', detail: 'no booked entry' } }));
    expect(store.state(PAYMENT)).toBe('IN_DOUBT');
    expect(store.state(QUERY)).toBe('COMPLETED');
    expect((await store.get(PAYMENT))?.facts.bcbQuery).toMatch(/camt\.054 M00038166\w+ answering camt\.060 M99999004\w+ for E\w+: entry INFO DBIT 0\.00 error ENNF/);
    expect(publisher.published).toEqual([]);
  });

  it('quarantines an answer to no question of ours, and one about a payment no longer IN_DOUBT, resolving nothing', async () => {
    const strangerQuery = world();
    const unknown = await deliver(strangerQuery.deps, await camt054({ queryMsgId: 'M99999004someotherquery000000000' }));
    expect(unknown.events.map((e) => [e.detailType, (e.detail.data as { code?: string }).code])).toEqual([['SignatureInvalid', 'ENTRY_REPORT_UNMATCHED']]);
    expect(strangerQuery.quarantined[0]?.reason).toContain('which is no camt.060 of ours');
    expect(strangerQuery.resolutions).toEqual([]);

    const settledMeanwhile = world(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT', 'SETTLED']);
    await deliver(settledMeanwhile.deps, await camt054());
    expect(settledMeanwhile.quarantined.map((q) => q.reason)).toEqual([expect.stringContaining(`payment ${PAYMENT} is SETTLED, not IN_DOUBT`) as unknown]);
    expect(settledMeanwhile.resolutions).toEqual([]);
    expect(settledMeanwhile.store.state(QUERY)).toBe('TRANSMITTED');
  });

  it('quarantines a camt.054 whose signature does not verify or whose signer is not the BCB, resolving nothing', async () => {
    for (const xml of [corruptSignatureValue(await camt054()), await camt054({}, stranger)]) {
      const { store, publisher, resolutions, quarantined, deps } = world();
      const outcome = await deliver(deps, xml);
      expect(outcome.events.map((e) => e.detailType)).toEqual(['SignatureInvalid']);
      expect(quarantined).toHaveLength(1);
      expect(resolutions).toEqual([]);
      expect(store.state(PAYMENT)).toBe('IN_DOUBT');
      expect(store.state(QUERY)).toBe('TRANSMITTED');
      expect(publisher.published).toEqual([]);
    }
  });
});
