import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, describe as describeMessage, drainStream, mtlsAgent, postMessages, pull, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
const START_B = `/api/v1/out/${ISPB_B}/stream/start`;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { streamIdleTimeoutMs: 300, longPollMs: 150, settlementLimitMs: 400 });
  agentA = mtlsAgent(pki, pki.tlsA, {});
  agentB = mtlsAgent(pki, pki.tlsB);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
});

afterAll(async () => {
  await agentA.close();
  await agentB.close();
  await sim.close();
});

beforeEach(async () => {
  sim.faults.clear();
  sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  await sim.idle();
  await drainStream(agentA, sim, ISPB_A);
  await drainStream(agentB, sim, ISPB_B);
});

async function settleOne(): Promise<string> {
  const { xml, endToEndId } = await signedPacs008(keyA);
  await postMessages(agentA, sim, ISPB_A, xml);
  await sim.ledger.waitForDecision(endToEndId);
  return endToEndId;
}

describe('BCB simulator streams', () => {
  it('answers 204 with a PI-Pull-Next after the long-poll wait when idle', async () => {
    const started = Date.now();
    const answer = await pull(agentB, sim, START_B);
    expect(answer.status).toBe(204);
    expect(answer.pullNext).toMatch(new RegExp(`^/api/v1/out/${ISPB_B}/stream/[0-9a-f]+-1$`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await pull(agentB, sim, answer.pullNext ?? '', { method: 'DELETE' });
  });

  it('delivers up to 10 messages as multipart/mixed, each part with its own PI-ResourceId', async () => {
    for (let i = 0; i < 6; i++) await settleOne(); // B gets pacs.008 + ACCC for each: 12 messages
    const first = await pull(agentB, sim, START_B, { gzip: true });
    expect(first.status).toBe(200);
    expect(first.messages).toHaveLength(10);
    const ids = first.messages.map((m) => m.resourceId);
    expect(new Set(ids).size).toBe(10);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    const second = await pull(agentB, sim, first.pullNext ?? '');
    expect(second.messages).toHaveLength(2);
    await pull(agentB, sim, second.pullNext ?? '', { method: 'DELETE' });
    expect(sim.ledger.sent(ISPB_B).filter((m) => ids.includes(m.resourceId)).every((m) => m.confirmed)).toBe(true);
  });

  it('delivers one message as application/xml with PI-ResourceId when multipart is not accepted', async () => {
    await settleOne();
    const answer = await pull(agentB, sim, START_B, { multipart: false });
    expect(answer.messages).toHaveLength(1);
    expect(answer.messages[0]?.resourceId).toMatch(/^[0-9a-f]{32}$/);
    expect(describeMessage(answer.messages[0]?.xml ?? '').type).toBe('pacs.008');
    await drainStream(agentB, sim, ISPB_B);
  });

  it('DELETE confirms: a new stream does not see the batch again', async () => {
    await settleOne();
    const answer = await pull(agentB, sim, START_B);
    expect(answer.messages).toHaveLength(2);
    await pull(agentB, sim, answer.pullNext ?? '', { method: 'DELETE' });
    expect((await pull(agentB, sim, START_B)).status).toBe(204);
  });

  it('redelivers an unconfirmed batch with the same PI-ResourceId after the stream goes idle', async () => {
    await settleOne();
    const abandoned = await pull(agentB, sim, START_B);
    const ids = abandoned.messages.map((m) => m.resourceId);
    expect(ids).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 450)); // streamIdleTimeoutMs 300
    const again = await drainStream(agentB, sim, ISPB_B);
    expect(again.map((m) => m.resourceId)).toEqual(ids);
  });

  it('answers the 7th concurrent stream with 429', async () => {
    const opened = await Promise.all(Array.from({ length: 6 }, () => pull(agentB, sim, START_B)));
    expect(opened.every((a) => a.status === 204)).toBe(true);
    const seventh = await pull(agentB, sim, START_B);
    expect(seventh.status).toBe(429);
    expect(seventh.body).toContain('at most 6 parallel streams');
    await Promise.all(opened.map((a) => pull(agentB, sim, a.pullNext ?? '', { method: 'DELETE' })));
    expect(sim.openStreams(ISPB_B)).toBe(0);
  });

  it('delivers deliberate duplicates with the same PI-ResourceId when the fault is on', async () => {
    sim.faults.set({ streamDuplicateRate: 1, budget: 1 });
    await settleOne();
    const seen = await drainStream(agentB, sim, ISPB_B);
    sim.faults.clear();
    const ids = seen.map((m) => m.resourceId);
    expect(ids.length).toBeGreaterThan(new Set(ids).size);
  });

  it('rejects AB03 at the settlement limit when the receiver never answers, and tells both sides', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'never' });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    const decided = await sim.ledger.waitForDecision(endToEndId, 3000);
    expect(decided).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    const a = await drainStream(agentA, sim, ISPB_A);
    expect(a.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ status: 'RJCT', reason: 'AB03' })]);
    const b = await drainStream(agentB, sim, ISPB_B);
    expect(b.map((m) => describeMessage(m.xml).type)).toEqual(['pacs.008', 'pacs.002']);
  });

  it('ignores a late answer: a receiver answering after the limit ends in AB03', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'accept', delayMs: 700 });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    expect(await sim.ledger.waitForDecision(endToEndId, 3000)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    await new Promise((r) => setTimeout(r, 400));
    expect(sim.ledger.payment(endToEndId)?.status).toBe('rejected');
  });

  it('settles with a live receiver that answers its pacs.008 with a signed pacs.002 ACSP', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'live' });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    await sim.idle();
    const forwarded = await drainStream(agentB, sim, ISPB_B);
    expect(describeMessage(forwarded[0]?.xml ?? '')).toMatchObject({ type: 'pacs.008', endToEndId });
    const { buildPacs002, generateMessageId } = await import('../../../shared/iso20022/index.ts');
    const { signSpi } = await import('../../../shared/xmldsig/index.ts');
    const id = generateMessageId(ISPB_B);
    const now = new Date().toISOString();
    const answer = await signSpi(
      buildPacs002({ appHdr: { fromIspb: ISPB_B, toIspb: '00038166', bizMsgIdr: id, creDt: now }, msgId: id, creDtTm: now, statuses: [{ originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status: 'ACSP' }] }),
      pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem),
    );
    expect((await postMessages(agentB, sim, ISPB_B, answer)).status).toBe(201);
    expect(await sim.ledger.waitForDecision(endToEndId, 2000)).toMatchObject({ status: 'settled' });
  });
});
