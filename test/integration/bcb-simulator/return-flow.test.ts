import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { buildPacs004, generateMessageId, generateReturnId, parsePacs002, parsePacs004 } from '../../../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, drainStream, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
let keyB: SigningKey;
const bcbTrust = new TrustStore();

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { participants: [] });
  sim.participants.addSigningCertificate(ISPB_A, pki.signingA.certPem);
  sim.participants.addSigningCertificate(ISPB_B, pki.signingB.certPem);
  sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  agentA = mtlsAgent(pki, pki.tlsA);
  agentB = mtlsAgent(pki, pki.tlsB);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
  keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
});

afterAll(async () => {
  await agentA.close();
  await agentB.close();
  await sim.close();
});

/** B returns `amount` of the payment `originalEndToEndId` it received from A. */
async function returnFromB(originalEndToEndId: string, amount: string): Promise<string> {
  const returnId = generateReturnId(ISPB_B);
  const bizMsgIdr = generateMessageId(ISPB_B);
  const now = new Date().toISOString();
  const xml = buildPacs004({
    appHdr: { fromIspb: ISPB_B, toIspb: BCB_ISPB, bizMsgIdr, creDt: now },
    msgId: bizMsgIdr,
    creDtTm: now,
    returns: [{ returnId, originalEndToEndId, amount, reason: { code: 'MD06' }, debtorAgentIspb: ISPB_B, creditorAgentIspb: ISPB_A }],
  });
  expect((await postMessages(agentB, sim, ISPB_B, await signSpi(xml, keyB))).status).toBe(201);
  await sim.idle();
  return returnId;
}

describe('BCB simulator return flow (pacs.004)', () => {
  it('settles a return of a settled payment: ACSC to the returning PSP, the pacs.004 to the original payer', async () => {
    const { xml, endToEndId } = await signedPacs008(keyA, { amount: '10.50' });
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
    expect((await sim.ledger.waitForDecision(endToEndId)).status).toBe('settled');
    await drainStream(agentA, sim, ISPB_A);
    await drainStream(agentB, sim, ISPB_B);

    const returnId = await returnFromB(endToEndId, '4.00');
    expect(sim.ledger.payment(returnId)).toMatchObject({ kind: 'pacs.004', status: 'settled', payerIspb: ISPB_B, receiverIspb: ISPB_A, amount: '4.00', originalEndToEndId: endToEndId });
    const toB = (await drainStream(agentB, sim, ISPB_B)).map((m) => verifySpi(m.xml, { trustStore: bcbTrust }));
    expect(toB.map((v) => parsePacs002({ appHdr: v.appHdr, document: v.document }).statuses[0])).toEqual([expect.objectContaining({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACSC' })]);
    const toA = (await drainStream(agentA, sim, ISPB_A)).map((m) => verifySpi(m.xml, { trustStore: bcbTrust }));
    expect(parsePacs004({ appHdr: toA[0]?.appHdr ?? toB[0]!.appHdr, document: toA[0]?.document ?? toB[0]!.document }).returns[0]).toMatchObject({ returnId, originalEndToEndId: endToEndId, amount: '4.00' });

    // What is left can still be returned; more than that cannot.
    const over = await returnFromB(endToEndId, '7.00');
    expect(sim.ledger.payment(over)).toBeUndefined();
    const refusal = (await drainStream(agentB, sim, ISPB_B)).map((m) => verifySpi(m.xml, { trustStore: bcbTrust }));
    expect(parsePacs002({ appHdr: refusal[0]!.appHdr, document: refusal[0]!.document }).statuses[0]).toMatchObject({ originalInstructionId: over, status: 'RJCT', reason: { code: 'AM09' } });
    const rest = await returnFromB(endToEndId, '6.50');
    expect(sim.ledger.payment(rest)?.status).toBe('settled');
  });

  it('refuses the return of a payment the sender never received', async () => {
    const returnId = await returnFromB('E99999004202611281700zzzzzzzzzzz', '1.00');
    expect(sim.ledger.payment(returnId)).toBeUndefined();
    const statuses = (await drainStream(agentB, sim, ISPB_B))
      .map((m) => verifySpi(m.xml, { trustStore: bcbTrust }))
      .flatMap((v) => parsePacs002({ appHdr: v.appHdr, document: v.document }).statuses);
    expect(statuses.find((st) => st.originalInstructionId === returnId)).toMatchObject({ status: 'RJCT', reason: { code: 'AG09' } });
  });
});
