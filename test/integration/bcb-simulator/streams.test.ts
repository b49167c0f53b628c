import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { buildPacs002, generateMessageId } from '../../../shared/iso20022/index.ts';
import { pemSigningKey, signSpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, describe as describeMessage, drainStream, mtlsAgent, postMessages, pull, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
const START_B = `/api/v1/out/${ISPB_B}/stream/start`;

// A generous settlement limit: tests about the limit send a pacs.008 accepted most of it ago, so
// that its end is a few seconds away however busy the machine, and the others never reach it.
const SETTLEMENT_LIMIT_MS = 10_000;
const NEAR_THE_LIMIT_MS = 7_000;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { streamIdleTimeoutMs: 300, longPollMs: 150, settlementLimitMs: SETTLEMENT_LIMIT_MS });
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

/** ISPB_B's signed pacs.002 accepting `endToEndId`. */
async function acsp(endToEndId: string): Promise<string> {
  const id = generateMessageId(ISPB_B);
  const now = new Date().toISOString();
  return await signSpi(
    buildPacs002({ appHdr: { fromIspb: ISPB_B, toIspb: '00038166', bizMsgIdr: id, creDt: now }, msgId: id, creDtTm: now, statuses: [{ originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status: 'ACSP' }] }),
    pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem),
  );
}

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
    const expired = sim.streamCounters(ISPB_B).expired;
    await expect.poll(() => sim.streamCounters(ISPB_B).expired, { timeout: 10_000 }).toBe(expired + 1); // streamIdleTimeoutMs 300
    expect(sim.openStreams(ISPB_B)).toBe(0);
    const again = await drainStream(agentB, sim, ISPB_B);
    expect(again.map((m) => m.resourceId)).toEqual(ids);
  });

  it('lets any client continue an abandoned stream with its PI-Pull-Next, which confirms the batch before it, while the stream still counts', async () => {
    await settleOne();
    const first = await pull(agentB, sim, START_B);
    expect(first.messages).toHaveLength(2);
    expect(sim.openStreams(ISPB_B)).toBe(1);
    // A restarted reader, on a new connection, follows the position its predecessor left.
    const successor = mtlsAgent(pki, pki.tlsB);
    try {
      const next = await pull(successor, sim, first.pullNext ?? '');
      expect(next.status).toBe(204);
      const ids = first.messages.map((m) => m.resourceId);
      expect(sim.ledger.sent(ISPB_B).filter((m) => ids.includes(m.resourceId)).every((m) => m.confirmed)).toBe(true);
      expect(sim.openStreams(ISPB_B)).toBe(1);
      await pull(successor, sim, next.pullNext ?? '', { method: 'DELETE' });
    } finally {
      await successor.close();
    }
    expect(sim.openStreams(ISPB_B)).toBe(0);
  });

  it('delivers an unconfirmed batch again, same PI-ResourceIds and confirming nothing, to a client that re-reads the iteration whose answer it lost', async () => {
    const idle = await pull(agentB, sim, START_B);
    expect(idle.status).toBe(204);
    await settleOne();
    const lost = await pull(agentB, sim, idle.pullNext ?? '');
    const ids = lost.messages.map((m) => m.resourceId);
    expect(ids).toHaveLength(2);
    const rereads = sim.streamCounters(ISPB_B).reread;
    const again = await pull(agentB, sim, idle.pullNext ?? '');
    expect(again.messages.map((m) => m.resourceId)).toEqual(ids);
    expect(again.pullNext).toBe(lost.pullNext);
    expect(sim.streamCounters(ISPB_B).reread).toBe(rereads + 1);
    const sent = (): Readonly<{ confirmed: boolean; deliveries: number }>[] => sim.ledger.sent(ISPB_B).filter((m) => ids.includes(m.resourceId));
    expect(sent().map((m) => [m.confirmed, m.deliveries])).toEqual([[false, 2], [false, 2]]);
    // Following the PI-Pull-Next of the answer confirms it, as always.
    await pull(agentB, sim, again.pullNext ?? '', { method: 'DELETE' });
    expect(sent().every((m) => m.confirmed)).toBe(true);
  });

  it('answers 404 for a position two iterations back and for a stream that expired', async () => {
    const first = await pull(agentB, sim, START_B);
    const second = await pull(agentB, sim, first.pullNext ?? '');
    await pull(agentB, sim, second.pullNext ?? '');
    expect((await pull(agentB, sim, first.pullNext ?? '')).status).toBe(404);
    const expired = sim.streamCounters(ISPB_B).expired;
    await expect.poll(() => sim.streamCounters(ISPB_B).expired, { timeout: 10_000 }).toBe(expired + 1);
    expect((await pull(agentB, sim, second.pullNext ?? '')).status).toBe(404);
  });

  it('answers the 7th concurrent stream with 429', async () => {
    const opened = await Promise.all(Array.from({ length: 6 }, () => pull(agentB, sim, START_B)));
    expect(opened.every((a) => a.status === 204)).toBe(true);
    const refused = sim.streamCounters(ISPB_B).refused;
    const seventh = await pull(agentB, sim, START_B);
    expect(seventh.status).toBe(429);
    expect(sim.streamCounters(ISPB_B).refused).toBe(refused + 1);
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
    const { xml, endToEndId } = await signedPacs008(keyA, { acceptance: new Date(Date.now() - NEAR_THE_LIMIT_MS) });
    await postMessages(agentA, sim, ISPB_A, xml);
    const decided = await sim.ledger.waitForDecision(endToEndId, 20_000);
    expect(decided).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    const a = await drainStream(agentA, sim, ISPB_A);
    expect(a.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ status: 'RJCT', reason: 'AB03' })]);
    const b = await drainStream(agentB, sim, ISPB_B);
    expect(b.map((m) => describeMessage(m.xml).type)).toEqual(['pacs.008', 'pacs.002']);
  });

  it('ignores a late answer: a receiver answering after the limit leaves the payment rejected AB03', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'live' });
    const { xml, endToEndId } = await signedPacs008(keyA, { acceptance: new Date(Date.now() - NEAR_THE_LIMIT_MS) });
    await postMessages(agentA, sim, ISPB_A, xml);
    expect(await sim.ledger.waitForDecision(endToEndId, 20_000)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    await drainStream(agentB, sim, ISPB_B);
    // The receiver's ACSP arrives only now, after the decision.
    expect((await postMessages(agentB, sim, ISPB_B, await acsp(endToEndId))).status).toBe(201);
    await sim.idle();
    expect(sim.ledger.payment(endToEndId)).toMatchObject({ status: 'rejected', receiverAnswers: ['ACSP'] });
  });

  it('settles with a live receiver that answers its pacs.008 with a signed pacs.002 ACSP', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'live' });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    await sim.idle();
    const forwarded = await drainStream(agentB, sim, ISPB_B);
    expect(describeMessage(forwarded[0]?.xml ?? '')).toMatchObject({ type: 'pacs.008', endToEndId });
    expect((await postMessages(agentB, sim, ISPB_B, await acsp(endToEndId))).status).toBe(201);
    expect(await sim.ledger.waitForDecision(endToEndId, 20_000)).toMatchObject({ status: 'settled' });
  });
});
