import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Agent } from 'undici';
import type { BcbSimulator, InboundTrafficStatus } from '../../../infra/bcb-simulator/index.ts';
import { END_TO_END_ID, buildPacs002, checkSpiSchema, compileSpiSchemas, generateMessageId, parsePacs008 } from '../../../shared/iso20022/index.ts';
import type { CreditTransfer } from '../../../shared/iso20022/index.ts';
import { signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey, TrustStore } from '../../../shared/xmldsig/index.ts';
import {
  BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, describe as describeMessage, drainStream, postMessages, signedPacs008, startTestSimulator, testParticipants,
} from './simulator-fixture.ts';
import type { SimulatorTestPki, StreamedMessage, TestParticipants } from './simulator-fixture.ts';

const PAYERS = ['99999010', '99999011'];
const SETTLEMENT_LIMIT_MS = 2_000;

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
  sim = await startTestSimulator(pki, { settlementLimitMs: SETTLEMENT_LIMIT_MS });
  parties = testParticipants(pki);
  ({ agentA, agentB, keyA, keyB, bcbTrust } = parties);
  await compileSpiSchemas();
});

afterAll(async () => {
  await parties.close();
  await sim.close();
});

beforeEach(async () => {
  sim.inbound.stop();
  sim.participants.setReceiver(ISPB_B, { mode: 'live' });
  await sim.idle();
  await drainStream(agentA, sim, ISPB_A);
  await drainStream(agentB, sim, ISPB_B);
});

/** Reads `ispb`'s stream until `enough` holds for what came, or fails after `timeoutMs`. */
async function readUntil(agent: Agent, ispb: string, enough: (messages: StreamedMessage[]) => boolean, timeoutMs = 5_000): Promise<StreamedMessage[]> {
  const deadline = Date.now() + timeoutMs;
  const all: StreamedMessage[] = [];
  while (!enough(all)) {
    if (Date.now() > deadline) throw new Error(`the stream of ${ispb} did not bring the expected messages within ${timeoutMs} ms (got ${all.length})`);
    all.push(...(await drainStream(agent, sim, ispb)));
  }
  return all;
}

/** Waits (bounded) until the generator's status satisfies `probe`. */
function statusWhen(probe: (status: InboundTrafficStatus) => boolean, timeoutMs = 5_000): Promise<InboundTrafficStatus> {
  return sim.ledger.waitFor(() => {
    const status = sim.inbound.status();
    return probe(status) ? status : undefined;
  }, timeoutMs);
}

/** The pacs.008 the SPI forwarded, verified with the BCB's signature and checked against the pacs.008 1.16 XSD. */
function forwardedTransactions(messages: StreamedMessage[]): CreditTransfer[] {
  return messages
    .filter((m) => describeMessage(m.xml).type === 'pacs.008')
    .map((m) => {
      const verified = verifySpi(m.xml, { trustStore: bcbTrust });
      expect(verified.fromIspb).toBe(BCB_ISPB);
      checkSpiSchema(m.xml, 'pacs.008.spi.1.16');
      return parsePacs008({ appHdr: verified.appHdr, document: verified.document }).transactions[0] as CreditTransfer;
    });
}

/** B's signed pacs.002 answering `endToEndId`. */
async function answerAsB(endToEndId: string, status: 'ACSP' | 'RJCT', code?: string): Promise<void> {
  const id = generateMessageId(ISPB_B);
  const now = new Date().toISOString();
  const xml = await signSpi(
    buildPacs002({
      appHdr: { fromIspb: ISPB_B, toIspb: BCB_ISPB, bizMsgIdr: id, creDt: now }, msgId: id, creDtTm: now,
      statuses: [{ originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status, ...(code === undefined ? {} : { reason: { code } }) }],
    }),
    keyB,
  );
  expect((await postMessages(agentB, sim, ISPB_B, xml)).status).toBe(201);
}

/** One generated payment, forwarded to B and read from B's stream. */
async function onePaymentToB(): Promise<CreditTransfer> {
  sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 20, count: 1 });
  const [transaction] = forwardedTransactions(await readUntil(agentB, ISPB_B, (m) => forwardedTransactions(m).length >= 1));
  if (transaction === undefined) throw new Error('no pacs.008 forwarded');
  return transaction;
}

describe('BCB simulator inbound traffic', () => {
  it('forwards count generated pacs.008 to a live receiver, each signed by the BCB, valid against the pacs.008 XSD and pending in the ledger', async () => {
    const status = sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 50, count: 8 });
    expect(status).toMatchObject({ running: true, settings: { toIspb: ISPB_B, payerIspbs: PAYERS, count: 8 } });
    const transactions = forwardedTransactions(await readUntil(agentB, ISPB_B, (m) => forwardedTransactions(m).length >= 8));
    expect(transactions).toHaveLength(8);
    expect(await statusWhen((s) => !s.running)).toMatchObject({ sent: 8, pending: 8, settled: 0, rejected: 0 });
    for (const tx of transactions) {
      expect(tx.endToEndId).toMatch(END_TO_END_ID);
      expect(PAYERS).toContain(tx.debtorAgentIspb);
      expect(tx.endToEndId.slice(1, 9)).toBe(tx.debtorAgentIspb);
      expect(tx.creditorAgentIspb).toBe(ISPB_B);
      expect(tx.acceptanceDateTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(tx.debtor.taxId).toMatch(/^\d{11}$/);
      expect(tx.localInstrument === 'MANU' || (tx.localInstrument === 'DICT' && tx.creditorAccount.proxy !== undefined)).toBe(true);
      expect(sim.ledger.payment(tx.endToEndId)).toMatchObject({ kind: 'pacs.008', status: 'pending', payerIspb: tx.debtorAgentIspb, receiverIspb: ISPB_B, amount: tx.amount });
    }
    expect(new Set(transactions.map((t) => t.debtorAgentIspb))).toEqual(new Set(PAYERS));
    expect(new Set(transactions.map((t) => t.amount)).size).toBeGreaterThan(1);
  });

  it('settles on the receiver ACSP: ACCC on the receiver stream, ACSC recorded for the simulated payer and never queued', async () => {
    const tx = await onePaymentToB();
    await answerAsB(tx.endToEndId, 'ACSP');
    expect(await sim.ledger.waitForDecision(tx.endToEndId)).toMatchObject({ status: 'settled', payerIspb: tx.debtorAgentIspb });
    const toB = await readUntil(agentB, ISPB_B, (m) => m.some((x) => describeMessage(x.xml).endToEndId === tx.endToEndId));
    expect(toB.map((m) => describeMessage(m.xml)).filter((d) => d.endToEndId === tx.endToEndId)).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'ACCC' })]);
    expect(sim.ledger.sent(tx.debtorAgentIspb).filter((m) => m.reference === tx.endToEndId)).toEqual([
      expect.objectContaining({ type: 'pacs.002', status: 'ACSC', simulatedRecipient: true, deliveries: 0 }),
    ]);
    expect(sim.queued(tx.debtorAgentIspb)).toBe(0);
    expect(await statusWhen((s) => s.settled === 1)).toMatchObject({ sent: 1, settled: 1, rejected: 0, pending: 0 });
  });

  it('rejects on the receiver RJCT and sends the RJCT to the receiver too, recording it for the simulated payer', async () => {
    const tx = await onePaymentToB();
    await answerAsB(tx.endToEndId, 'RJCT', 'AC03');
    expect(await sim.ledger.waitForDecision(tx.endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'AC03' });
    const toB = await readUntil(agentB, ISPB_B, (m) => m.some((x) => describeMessage(x.xml).endToEndId === tx.endToEndId));
    expect(toB.map((m) => describeMessage(m.xml)).filter((d) => d.endToEndId === tx.endToEndId)).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'AC03' })]);
    expect(sim.ledger.sent(tx.debtorAgentIspb).filter((m) => m.reference === tx.endToEndId)).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT' })]);
    expect(await statusWhen((s) => s.rejected === 1)).toMatchObject({ sent: 1, rejected: 1, pending: 0, rejectedByReason: { AC03: 1 } });
  });

  it('tells a real payer and the receiver when the receiver rejects a posted pacs.008', async () => {
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    await readUntil(agentB, ISPB_B, (m) => m.some((x) => describeMessage(x.xml).endToEndId === endToEndId));
    await answerAsB(endToEndId, 'RJCT', 'AM18');
    expect(await sim.ledger.waitForDecision(endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'AM18' });
    const toA = await readUntil(agentA, ISPB_A, (m) => m.length >= 1);
    expect(toA.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'AM18', endToEndId })]);
    const toB = await readUntil(agentB, ISPB_B, (m) => m.some((x) => describeMessage(x.xml).endToEndId === endToEndId));
    expect(toB.map((m) => describeMessage(m.xml)).filter((d) => d.endToEndId === endToEndId)).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'AM18' })]);
  });

  it('rejects AB03 to the payer only a pacs.008 already past the settlement limit, which the receiver never saw', async () => {
    const { xml, endToEndId } = await signedPacs008(keyA, { acceptance: new Date(Date.now() - SETTLEMENT_LIMIT_MS - 1_000) });
    await postMessages(agentA, sim, ISPB_A, xml);
    expect(await sim.ledger.waitForDecision(endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    const toA = await readUntil(agentA, ISPB_A, (m) => m.length >= 1);
    expect(toA.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'AB03', endToEndId })]);
    await sim.idle();
    expect((await drainStream(agentB, sim, ISPB_B)).filter((m) => describeMessage(m.xml).endToEndId === endToEndId)).toEqual([]);
    expect(sim.ledger.sent(ISPB_B).filter((m) => m.reference === endToEndId)).toEqual([]);
  });

  it('ends an unanswered payment in AB03 with RJCT to the receiver, recorded for the simulated payer', async () => {
    const tx = await onePaymentToB();
    expect(await sim.ledger.waitForDecision(tx.endToEndId, SETTLEMENT_LIMIT_MS + 3_000)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
    const toB = await readUntil(agentB, ISPB_B, (m) => m.some((x) => describeMessage(x.xml).endToEndId === tx.endToEndId));
    expect(toB.map((m) => describeMessage(m.xml)).filter((d) => d.endToEndId === tx.endToEndId)).toEqual([expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'AB03' })]);
    expect(sim.ledger.sent(tx.debtorAgentIspb).filter((m) => m.reference === tx.endToEndId)).toEqual([expect.objectContaining({ status: 'RJCT' })]);
    expect(await statusWhen((s) => s.rejected === 1)).toMatchObject({ rejectedByReason: { AB03: 1 }, pending: 0 });
  });

  it('generates nothing more once stopped, while what it sent is still decided', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'never' });
    sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 20 });
    await statusWhen((s) => s.sent >= 3);
    const stopped = sim.inbound.stop();
    expect(stopped.running).toBe(false);
    // Every payment it sent ends in AB03 after the settlement limit, several ticks later.
    const decided = await statusWhen((s) => s.pending === 0, SETTLEMENT_LIMIT_MS + 3_000);
    expect(decided).toMatchObject({ sent: stopped.sent, rejected: stopped.sent, rejectedByReason: { AB03: stopped.sent } });
    const fromPayers = sim.ledger.payments().filter((p) => PAYERS.includes(p.payerIspb) && Date.parse(p.receivedAt) >= Date.parse(stopped.startedAt ?? ''));
    expect(fromPayers).toHaveLength(stopped.sent);
  });

  it('replaces the current run on start and restarts its counts', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
    sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 20 });
    await statusWhen((s) => s.sent >= 2);
    sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 100, count: 3, payerIspbs: ['9999901A'] });
    expect(await statusWhen((s) => !s.running && s.settled === 3)).toMatchObject({ sent: 3, settled: 3, pending: 0, settings: { payerIspbs: ['9999901A'] } });
  });

  it('refuses bad options naming the field, and leaves the current run going', () => {
    sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 5 });
    expect(() => sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 0 })).toThrow('InboundTrafficOptions.ratePerSecond must be a number more than 0 and at most 1000, got 0');
    expect(() => sim.inbound.start({ toIspb: 'b', ratePerSecond: 1 })).toThrow(/InboundTrafficOptions\.toIspb/);
    expect(() => sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 1, count: 0 })).toThrow(/InboundTrafficOptions\.count/);
    expect(() => sim.inbound.start({ toIspb: ISPB_B, ratePerSecond: 1, payerIspbs: [ISPB_A] })).toThrow(/InboundTrafficOptions\.payerIspbs\[0\] must not be the BCB or a configured participant/);
    expect(sim.inbound.status()).toMatchObject({ running: true, settings: { ratePerSecond: 5 } });
  });

  it('starts, reports and stops the generator through the admin endpoint, refusing a bad body with 400', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
    const admin = sim.adminUrl ?? '';
    const bad = await request(`${admin}/inbound-traffic`, { method: 'POST', body: JSON.stringify({ toIspb: ISPB_B, ratePerSecond: -1 }) });
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: string }).error).toMatch(/ratePerSecond/);
    const started = await request(`${admin}/inbound-traffic`, { method: 'POST', body: JSON.stringify({ toIspb: ISPB_B, ratePerSecond: 100, count: 4 }) });
    expect(started.statusCode).toBe(200);
    expect(await started.body.json()).toMatchObject({ running: true, settings: { toIspb: ISPB_B, count: 4 } });
    const read = async (): Promise<InboundTrafficStatus> => (await (await request(`${admin}/inbound-traffic`)).body.json()) as InboundTrafficStatus;
    await expect.poll(read, { timeout: 5_000 }).toMatchObject({ running: false, sent: 4, settled: 4, pending: 0 });
    await request(`${admin}/inbound-traffic`, { method: 'POST', body: JSON.stringify({ toIspb: ISPB_B, ratePerSecond: 5 }) }).then((r) => r.body.dump());
    const stopped = await request(`${admin}/inbound-traffic`, { method: 'DELETE' });
    expect(stopped.statusCode).toBe(200);
    expect(await stopped.body.json()).toMatchObject({ running: false, stoppedAt: expect.any(String) as unknown });
    expect((await read()).running).toBe(false);
  });
});

describe('BCB simulator started with inbound traffic', () => {
  it('generates from BcbSimulatorOptions.inboundTraffic and stops on close', async () => {
    const started = await startTestSimulator(pki, { inboundTraffic: { toIspb: ISPB_B, ratePerSecond: 50 } });
    try {
      await started.ledger.waitFor(() => (started.inbound.status().sent >= 3 ? true : undefined), 5_000);
      expect(started.inbound.status()).toMatchObject({ running: true, settings: { toIspb: ISPB_B } });
    } finally {
      await started.close();
    }
    expect(started.inbound.status()).toMatchObject({ running: false, stoppedAt: expect.any(String) as unknown });
    expect(() => started.inbound.start({ toIspb: ISPB_B, ratePerSecond: 1 })).toThrow(/closed/);
  });

  it('refuses bad inbound options at start, naming BcbSimulatorOptions.inboundTraffic', async () => {
    await expect(startTestSimulator(pki, { inboundTraffic: { toIspb: ISPB_B, ratePerSecond: 5000 } })).rejects.toThrow(/BcbSimulatorOptions\.inboundTraffic\.ratePerSecond/);
  });
});
