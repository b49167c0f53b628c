import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { RETURN_TIMEOUT_REASON } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { buildPacs002, generateMessageId, parseSpiMessage } from '../../../shared/iso20022/index.ts';
import type { SpiMessage, TransactionStatus } from '../../../shared/iso20022/index.ts';
import { signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey, TrustStore } from '../../../shared/xmldsig/index.ts';
import type { SimulatorTestPki, TestParticipants } from './simulator-fixture.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, drainStream, postMessages, signedPacs004, signedPacs008, startTestSimulator, testParticipants } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let parties: TestParticipants;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
let keyB: SigningKey;
let bcbTrust: TrustStore;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { participants: [] });
  sim.participants.addSigningCertificate(ISPB_A, pki.signingA.certPem);
  sim.participants.addSigningCertificate(ISPB_B, pki.signingB.certPem);
  sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  parties = testParticipants(pki);
  ({ agentA, agentB, keyA, keyB, bcbTrust } = parties);
});

afterAll(async () => {
  await parties.close();
  await sim.close();
});

/** Everything on `ispb`'s stream of `on`, each message's BCB signature verified and read. */
async function readStream(on: BcbSimulator, agent: Agent, ispb: string): Promise<SpiMessage[]> {
  await on.idle();
  return (await drainStream(agent, on, ispb)).map((m) => {
    const verified = verifySpi(m.xml, { trustStore: bcbTrust });
    return parseSpiMessage({ appHdr: verified.appHdr, document: verified.document });
  });
}

/** The transaction statuses of the pacs.002 among `messages`. */
function statusesIn(messages: readonly SpiMessage[]): TransactionStatus[] {
  return messages.flatMap((m) => (m.type === 'pacs.002' ? m.message.statuses : []));
}

/** A pacs.008 from A to B, settled (B accepts), both streams drained; its EndToEndId. */
async function settledPaymentFromA(on: BcbSimulator, amount: string): Promise<string> {
  const { xml, endToEndId } = await signedPacs008(keyA, { amount });
  expect((await postMessages(agentA, on, ISPB_A, xml)).status).toBe(201);
  expect((await on.ledger.waitForDecision(endToEndId)).status).toBe('settled');
  await drainStream(agentA, on, ISPB_A);
  await drainStream(agentB, on, ISPB_B);
  return endToEndId;
}

/** B returns `amount` of the payment `originalEndToEndId` it received from A; the RtrId. */
async function returnFromB(on: BcbSimulator, originalEndToEndId: string, amount: string): Promise<string> {
  const { xml, returnId } = await signedPacs004(keyB, { originalEndToEndId, amount });
  expect((await postMessages(agentB, on, ISPB_B, xml)).status).toBe(201);
  await on.idle();
  return returnId;
}

/** A, the participant credited by a return, answers it as a live client does. */
async function answerFromA(status: Omit<TransactionStatus, 'status'> & { status: 'ACSP' | 'RJCT' }): Promise<void> {
  const bizMsgIdr = generateMessageId(ISPB_A);
  const now = new Date().toISOString();
  const xml = buildPacs002({ appHdr: { fromIspb: ISPB_A, toIspb: BCB_ISPB, bizMsgIdr, creDt: now }, msgId: bizMsgIdr, creDtTm: now, statuses: [status] });
  expect((await postMessages(agentA, sim, ISPB_A, await signSpi(xml, keyA))).status).toBe(201);
  await sim.idle();
}

describe('BCB simulator return flow (pacs.004)', () => {
  it('settles a return only after the original payer accepts it: ACSC to the returning PSP, ACCC to the original payer, both naming RtrId and the original EndToEndId', async () => {
    sim.participants.setReceiver(ISPB_A, { mode: 'live' });
    const endToEndId = await settledPaymentFromA(sim, '10.00');

    const returnId = await returnFromB(sim, endToEndId, '4.00');
    expect(sim.ledger.payment(returnId)).toMatchObject({ kind: 'pacs.004', status: 'pending', payerIspb: ISPB_B, receiverIspb: ISPB_A, amount: '4.00', originalEndToEndId: endToEndId });
    const forwarded = await readStream(sim, agentA, ISPB_A);
    expect(forwarded.map((m) => m.type)).toEqual(['pacs.004']);
    expect(forwarded[0]?.type === 'pacs.004' ? forwarded[0].message.returns[0] : undefined).toMatchObject({ returnId, originalEndToEndId: endToEndId, amount: '4.00' });
    // Nothing settles, and B hears nothing, before A's answer.
    expect(await readStream(sim, agentB, ISPB_B)).toEqual([]);
    expect(sim.ledger.payment(returnId)?.status).toBe('pending');

    // While it is pending its amount is held: no second return may take more than the 6.00 left.
    const over = await returnFromB(sim, endToEndId, '6.01');
    expect(sim.ledger.payment(over)).toBeUndefined();
    expect(statusesIn(await readStream(sim, agentB, ISPB_B))).toEqual([expect.objectContaining({ originalInstructionId: over, status: 'RJCT', reason: expect.objectContaining({ code: 'AM09' }) as unknown })]);

    await answerFromA({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACSP' });
    expect(await sim.ledger.waitForDecision(returnId)).toMatchObject({ status: 'settled', receiverAnswers: ['ACSP'] });
    expect(statusesIn(await readStream(sim, agentB, ISPB_B))).toEqual([expect.objectContaining({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACSC' })]);
    expect(statusesIn(await readStream(sim, agentA, ISPB_A))).toEqual([expect.objectContaining({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACCC' })]);
  });

  it('ignores an answer that names the return by the original EndToEndId as OrgnlInstrId', async () => {
    sim.participants.setReceiver(ISPB_A, { mode: 'live' });
    const endToEndId = await settledPaymentFromA(sim, '3.00');
    const returnId = await returnFromB(sim, endToEndId, '3.00');
    await drainStream(agentA, sim, ISPB_A);
    await answerFromA({ originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status: 'ACSP' });
    expect(sim.ledger.payment(returnId)?.status).toBe('pending');
    await answerFromA({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACSP' });
    expect((await sim.ledger.waitForDecision(returnId)).status).toBe('settled');
  });

  it('rejects a return the original payer refuses: RJCT with its reason to both', async () => {
    sim.participants.setReceiver(ISPB_A, { mode: 'live' });
    const endToEndId = await settledPaymentFromA(sim, '5.00');
    const returnId = await returnFromB(sim, endToEndId, '5.00');
    await drainStream(agentA, sim, ISPB_A);

    await answerFromA({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'RJCT', reason: { code: 'AC06' } });
    expect(await sim.ledger.waitForDecision(returnId)).toMatchObject({ status: 'rejected', reasonCode: 'AC06', receiverAnswers: ['RJCT AC06'] });
    const rejected = { originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'RJCT', reason: expect.objectContaining({ code: 'AC06' }) as unknown };
    expect(statusesIn(await readStream(sim, agentB, ISPB_B))).toEqual([expect.objectContaining(rejected)]);
    expect(statusesIn(await readStream(sim, agentA, ISPB_A))).toEqual([expect.objectContaining(rejected)]);
    // Rejected, the return holds nothing: the whole amount can still be returned.
    const again = await returnFromB(sim, endToEndId, '5.00');
    expect(sim.ledger.payment(again)?.status).toBe('pending');
  });

  it(`rejects a return nobody answers with ${RETURN_TIMEOUT_REASON} to both once the settlement limit from its receipt passes`, async () => {
    const limited = await startTestSimulator(pki, { participants: [], settlementLimitMs: 1_500, inspectionThreads: 0 });
    try {
      limited.participants.addSigningCertificate(ISPB_A, pki.signingA.certPem);
      limited.participants.addSigningCertificate(ISPB_B, pki.signingB.certPem);
      limited.participants.setReceiver(ISPB_B, { mode: 'accept' });
      limited.participants.setReceiver(ISPB_A, { mode: 'never' });
      const endToEndId = await settledPaymentFromA(limited, '2.00');
      const returnId = await returnFromB(limited, endToEndId, '2.00');
      expect(limited.ledger.payment(returnId)?.status).toBe('pending');

      const decided = await limited.ledger.waitForDecision(returnId, 5_000);
      expect(decided).toMatchObject({ status: 'rejected', reasonCode: RETURN_TIMEOUT_REASON });
      expect(Date.parse(decided.decidedAt ?? '') - Date.parse(decided.receivedAt)).toBeGreaterThanOrEqual(1_500 - 5);
      const timedOut = { originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'RJCT', reason: expect.objectContaining({ code: RETURN_TIMEOUT_REASON }) as unknown };
      expect(statusesIn(await readStream(limited, agentB, ISPB_B))).toEqual([expect.objectContaining(timedOut)]);
      const toA = await readStream(limited, agentA, ISPB_A);
      expect(toA.map((m) => m.type)).toEqual(['pacs.004', 'pacs.002']);
      expect(statusesIn(toA)).toEqual([expect.objectContaining(timedOut)]);
    } finally {
      await limited.close();
    }
  });

  it('settles by itself a return to a participant in mode accept, and refuses returning more than what is left', async () => {
    sim.participants.setReceiver(ISPB_A, { mode: 'accept' });
    const endToEndId = await settledPaymentFromA(sim, '10.50');

    const returnId = await returnFromB(sim, endToEndId, '4.00');
    expect(sim.ledger.payment(returnId)).toMatchObject({ kind: 'pacs.004', status: 'settled', payerIspb: ISPB_B, receiverIspb: ISPB_A, amount: '4.00', originalEndToEndId: endToEndId });
    expect(statusesIn(await readStream(sim, agentB, ISPB_B))).toEqual([expect.objectContaining({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACSC' })]);
    const toA = await readStream(sim, agentA, ISPB_A);
    expect(toA.map((m) => m.type)).toEqual(['pacs.004', 'pacs.002']);
    expect(toA[0]?.type === 'pacs.004' ? toA[0].message.returns[0] : undefined).toMatchObject({ returnId, originalEndToEndId: endToEndId, amount: '4.00' });
    expect(statusesIn(toA)).toEqual([expect.objectContaining({ originalInstructionId: returnId, originalEndToEndId: endToEndId, status: 'ACCC' })]);

    // What is left can still be returned; more than that cannot.
    const over = await returnFromB(sim, endToEndId, '7.00');
    expect(sim.ledger.payment(over)).toBeUndefined();
    expect(statusesIn(await readStream(sim, agentB, ISPB_B))).toEqual([expect.objectContaining({ originalInstructionId: over, status: 'RJCT', reason: expect.objectContaining({ code: 'AM09' }) as unknown })]);
    const rest = await returnFromB(sim, endToEndId, '6.50');
    expect(sim.ledger.payment(rest)?.status).toBe('settled');
  });

  it('refuses the return of a payment the sender never received', async () => {
    const returnId = await returnFromB(sim, 'E99999004202611281700zzzzzzzzzzz', '1.00');
    expect(sim.ledger.payment(returnId)).toBeUndefined();
    const statuses = statusesIn(await readStream(sim, agentB, ISPB_B));
    expect(statuses.find((st) => st.originalInstructionId === returnId)).toMatchObject({ status: 'RJCT', reason: { code: 'CH16' } });
  });
});
