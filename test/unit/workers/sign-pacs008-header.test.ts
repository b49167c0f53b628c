import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimCheckReference, ClaimCheckStore } from '../../../shared/claim-check/index.ts';
import { newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import type { MessageSignedData } from '../../../shared/events/index.ts';
import { classifyError } from '../../../shared/errors/index.ts';
import { generateEndToEndId, parsePacs008, validateSpiMessage } from '../../../shared/iso20022/index.ts';
import type { DecodedMessage, HandlerContext, Outcome } from '../../../shared/runtime/index.ts';
import type { BizMsgIndex } from '../../../shared/saga/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import { createSignHandler, decodeSignRequest } from '../../../workers/sign/index.ts';
import type { SignRequest } from '../../../workers/sign/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { silentLogger } from '../runtime/fakes.ts';
import { FakeSagas } from './fake-sagas.ts';

const ISPB = '99999004';
const ACCEPTED_AT = '2026-12-07T10:00:00.000Z';
let pki: TestPki;
let signingKey: ReturnType<typeof pemSigningKey>;

const index: Pick<BizMsgIndex, 'recordMessage' | 'recordEcho'> = { recordMessage: () => Promise.resolve(), recordEcho: () => Promise.resolve() };
const claimCheck: ClaimCheckStore = { put: (key: string): Promise<ClaimCheckReference> => Promise.resolve({ bucket: 'b', key }), get: () => Promise.reject(new Error('unused')) };
const context: HandlerContext = { logger: silentLogger(), attempt: 1, maxReceiveCount: 5, signal: new AbortController().signal };

function transaction(endToEndId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endToEndId, amount: '12.34', acceptanceDateTime: ACCEPTED_AT, localInstrument: 'MANU',
    debtor: { name: 'Fulano', taxId: '70000000000' }, debtorAccount: { number: '1', type: 'CACC' },
    creditorAgentIspb: '20000000', creditor: { taxId: '80000000000' }, creditorAccount: { number: '2', type: 'CACC' },
    purpose: 'IPAY', ...overrides,
  };
}

function request(endToEndId: string, data: Record<string, unknown>): DecodedMessage<SignRequest> {
  return {
    event: {
      id: 'evt', detailType: 'PaymentRequested', source: 'core.banking', time: ACCEPTED_AT,
      detail: { version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data: decodeSignRequest(data, 'PaymentRequested') },
    },
    sqs: { messageId: 'm', receiveCount: 1 },
  };
}

function signedXml(outcome: Outcome): string {
  const payload = (outcome.events[0]?.detail.data as MessageSignedData).payload;
  if (payload === null || !('inline' in payload)) throw new Error('expected an inline payload');
  return payload.inline;
}

/** A handler on an in-memory saga store, with a clock the test moves. */
function world(): { sagas: FakeSagas; clock: { now: Date }; handler: ReturnType<typeof createSignHandler> } {
  const sagas = new FakeSagas();
  const clock = { now: new Date('2026-12-07T10:00:01.250Z') };
  const handler = createSignHandler({ ispb: ISPB, signingKey, sagas, claimCheck, bizMsgIndex: index, validateSpi: validateSpiMessage, now: () => clock.now });
  return { sagas, clock, handler };
}

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('psp signing');
  signingKey = pemSigningKey(leaf.keyPem, leaf.certPem);
});

afterAll(() => pki.dispose());

describe('sign handler: the pacs.008 header', () => {
  it('stamps AppHdr/CreDt and GrpHdr/CreDtTm with the time of the first signing, not AccptncDtTm', async () => {
    const { handler, sagas } = world();
    const e2e = generateEndToEndId(ISPB, { at: new Date(ACCEPTED_AT) });
    const pacs008 = parsePacs008(signedXml(await handler(request(e2e, { message: 'pacs.008', transaction: transaction(e2e) }), context)));
    expect(pacs008.appHdr.creDt).toBe('2026-12-07T10:00:01.250Z');
    expect(pacs008.creDtTm).toBe('2026-12-07T10:00:01.250Z');
    expect(pacs008.transactions[0]?.acceptanceDateTime).toBe(ACCEPTED_AT);
    expect(sagas.sagas.get(paymentSagaId(e2e))?.history.find((t) => t.key === 'sign')?.reason).toMatch(/ creDt=2026-12-07T10:00:01\.250Z$/);
  });

  it('signs the same bytes on a redelivery an hour later, with the creation time its sign step recorded', async () => {
    const { handler, clock } = world();
    const e2e = generateEndToEndId(ISPB, { at: new Date(ACCEPTED_AT) });
    const data = { message: 'pacs.008', transaction: transaction(e2e) };
    const first = signedXml(await handler(request(e2e, data), context));
    clock.now = new Date('2026-12-07T11:00:00.000Z');
    expect(signedXml(await handler(request(e2e, data), context))).toBe(first);
  });

  it('publishes nothing when another delivery signed first at another time: the retry signs what that one recorded', async () => {
    const { handler, sagas, clock } = world();
    const e2e = generateEndToEndId(ISPB, { at: new Date(ACCEPTED_AT) });
    const data = { message: 'pacs.008', transaction: transaction(e2e) };
    // The other delivery's result, recorded in the saga: signed at 10:00:00.900.
    const other = world();
    other.clock.now = new Date('2026-12-07T10:00:00.900Z');
    await other.handler(request(e2e, data), context);
    const recorded = other.sagas.sagas.get(paymentSagaId(e2e))?.history.find((t) => t.key === 'sign');
    sagas.beforeNextTransition = (saga) => {
      if (recorded === undefined) throw new Error('the other delivery recorded no sign step');
      saga.history = [...saga.history, recorded];
      saga.state = 'SIGNED';
    };
    // A redelivery (attempt 2) takes the ordinary path: create, sign, transition.
    const redelivery = { ...context, attempt: 2 };
    const raced = await handler(request(e2e, data), redelivery).then(() => undefined, (error: unknown) => error);
    expect(classifyError(raced)).toMatchObject({ code: 'SIGN_RACED', retryability: 'transient' });
    clock.now = new Date('2026-12-07T10:05:00.000Z');
    expect(parsePacs008(signedXml(await handler(request(e2e, data), redelivery))).appHdr.creDt).toBe('2026-12-07T10:00:00.900Z');
  });

  it('writes a first delivery\'s saga once, already SIGNED; one that finds the saga created meanwhile publishes what was recorded', async () => {
    const { handler, sagas } = world();
    const e2e = generateEndToEndId(ISPB, { at: new Date(ACCEPTED_AT) });
    const data = { message: 'pacs.008', transaction: transaction(e2e) };
    await handler(request(e2e, data), context);
    expect(sagas.writes).toBe(1);
    expect(sagas.reads).toBe(0);
    const saga = sagas.sagas.get(paymentSagaId(e2e));
    expect(saga?.history.map((t) => [t.from, t.to, t.key])).toEqual([[null, 'REQUESTED', 'create'], ['REQUESTED', 'SIGNED', 'sign']]);
    expect(saga?.bizMsgIdr).toMatch(/^M99999004/);

    // Another first delivery of the same request, an hour later: its saga exists, so it signs
    // again with the creation time recorded and publishes the very same bytes.
    const other = world();
    other.sagas.sagas.set(paymentSagaId(e2e), structuredClone(saga) as NonNullable<typeof saga>);
    const first = sagas.sagas.get(paymentSagaId(e2e));
    other.clock.now = new Date('2026-12-07T11:00:00.000Z');
    const again = await other.handler(request(e2e, data), context);
    expect(parsePacs008(signedXml(again)).appHdr.creDt).toBe(first?.history[1]?.reason.split('creDt=')[1]);
    expect(other.sagas.writes).toBe(0);
  });

  it('writes the requested service level with its priority (PAGAGD and PAGFRD are NORM), PAGPRI/HIGH by default, valid under the pacs.008 1.16 XSD', async () => {
    for (const [serviceLevel, priority] of [[undefined, 'HIGH'], ['PAGPRI', 'HIGH'], ['PAGAGD', 'NORM'], ['PAGFRD', 'NORM']] as const) {
      const { handler } = world();
      const e2e = generateEndToEndId(ISPB, { at: new Date(ACCEPTED_AT) });
      const xml = signedXml(await handler(request(e2e, { message: 'pacs.008', transaction: transaction(e2e), ...(serviceLevel === undefined ? {} : { serviceLevel }) }), context));
      // validateSpi (the real XSD check) ran on the signed message before it was published.
      expect(xml.replace(/>\s+</g, '><')).toContain(`<PmtTpInf><InstrPrty>${priority}</InstrPrty><SvcLvl><Prtry>${serviceLevel ?? 'PAGPRI'}</Prtry></SvcLvl></PmtTpInf>`);
    }
  });
});

describe('decodeSignRequest: pacs.008 fields the XSD requires or restricts', () => {
  const e2e = 'E99999004202612071000abcdefghijk';

  it('refuses a transfer without Purp, or with a code outside ExternalPurpose1Code, as SIGN_REQUEST_INVALID naming data.transaction.purpose', () => {
    const { purpose: _omitted, ...withoutPurpose } = transaction(e2e);
    for (const tx of [withoutPurpose, transaction(e2e, { purpose: 'CASH' })]) {
      let thrown: unknown;
      try {
        decodeSignRequest({ message: 'pacs.008', transaction: tx }, 'PaymentRequested');
      } catch (error) {
        thrown = error;
      }
      expect(classifyError(thrown)).toMatchObject({ code: 'SIGN_REQUEST_INVALID', retryability: 'permanent' });
      expect((thrown as Error).message).toContain('data.transaction.purpose');
      expect((thrown as Error).message).toContain('GSCB, IPAY, IPRT, OTHR, REFU');
    }
  });

  it('refuses a service level the XSD does not list, naming data.serviceLevel', () => {
    expect(() => decodeSignRequest({ message: 'pacs.008', transaction: transaction(e2e), serviceLevel: 'PAGURG' }, 'PaymentRequested')).toThrow('data.serviceLevel must be one of PAGPRI, PAGAGD, PAGFRD');
  });
});
