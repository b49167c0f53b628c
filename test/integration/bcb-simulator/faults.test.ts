import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { TrustStore, XmlSignatureError, pemSigningKey, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, drainStream, mtlsAgent, postMessages, pull, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let keyA: SigningKey;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { settlementLimitMs: 300 });
  agentA = mtlsAgent(pki, pki.tlsA);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
});

afterAll(async () => {
  await agentA.close();
  await sim.close();
});

beforeEach(() => sim.faults.clear());

describe('BCB simulator faults', () => {
  it('adds latency to answers', async () => {
    sim.faults.set({ latencyMs: 300 });
    const { xml } = await signedPacs008(keyA);
    const started = performance.now();
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('answers a share of requests with 5xx, within a budget', async () => {
    sim.faults.set({ errorRate: 1, errorStatus: 500, budget: 2 });
    const { xml } = await signedPacs008(keyA);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await postMessages(agentA, sim, ISPB_A, xml)).status);
    expect(statuses).toEqual([500, 500, 201]);
    expect(sim.faults.counts.error).toBeGreaterThanOrEqual(2);
  });

  it('resets connections', async () => {
    sim.faults.set({ resetRate: 1, budget: 1 });
    const { xml } = await signedPacs008(keyA);
    await expect(postMessages(agentA, sim, ISPB_A, xml)).rejects.toThrow(/socket|closed|reset/i);
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
  });

  it('leaves requests unanswered until the client times out', async () => {
    sim.faults.set({ hangRate: 1, budget: 1 });
    const { xml } = await signedPacs008(keyA);
    const a = mtlsAgent(pki, pki.tlsA);
    await expect(
      request(`${sim.icomUrl}/in/${ISPB_A}/msgs`, { method: 'POST', dispatcher: a, headers: { host: 'localhost', 'content-type': 'application/xml; charset=utf-8' }, body: xml, headersTimeout: 300 }),
    ).rejects.toThrow(/timeout/i);
    await a.destroy();
  });

  it('throttles with 429', async () => {
    sim.faults.set({ throttleRate: 1, budget: 1 });
    const { xml } = await signedPacs008(keyA);
    const answer = await postMessages(agentA, sim, ISPB_A, xml);
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('1');
  });

  it('breaks the signature of answers on the stream', async () => {
    await sim.idle();
    await drainStream(agentA, sim, ISPB_A);
    sim.faults.set({ invalidSignatureRate: 1 });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    await sim.ledger.waitForDecision(endToEndId);
    const [message] = await drainStream(agentA, sim, ISPB_A);
    const trust = new TrustStore();
    trust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
    expect(() => verifySpi(message?.xml ?? '', { trustStore: trust })).toThrow(XmlSignatureError);
    expect(sim.faults.counts.invalidSignature).toBeGreaterThan(0);
  });

  it('drops the receiver answer, so the payment ends in AB03', async () => {
    sim.faults.set({ dropAnswerRate: 1 });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    expect(await sim.ledger.waitForDecision(endToEndId, 3000)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });
  });

  it('fails TLS handshakes', async () => {
    sim.faults.set({ tlsHandshakeFailure: true });
    const fresh = mtlsAgent(pki, pki.tlsA);
    await expect(pull(fresh, sim, `/api/v1/out/${ISPB_A}/stream/start`)).rejects.toThrow();
    expect(sim.faults.counts.tlsHandshakeFailure).toBeGreaterThan(0);
    sim.faults.clear();
    const answer = await pull(fresh, sim, `/api/v1/out/${ISPB_A}/stream/start`);
    expect([200, 204]).toContain(answer.status);
    if (answer.pullNext !== undefined) await pull(fresh, sim, answer.pullNext, { method: 'DELETE' });
    await fresh.close();
  });

  it('sets faults and receiver behaviour and reads the ledger through the admin endpoint', async () => {
    const admin = sim.adminUrl ?? '';
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const put = await request(`${admin}/faults`, { method: 'PUT', body: JSON.stringify({ errorRate: 1, budget: 1 }) });
    expect(put.statusCode).toBe(200);
    await put.body.dump();
    const { xml } = await signedPacs008(keyA);
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(503);
    const receiver = await request(`${admin}/participants/${ISPB_B}/receiver`, { method: 'PUT', body: JSON.stringify({ mode: 'reject', reasonCode: 'AM04' }) });
    await receiver.body.dump();
    expect(sim.participants.receiverOf(ISPB_B)).toEqual({ mode: 'reject', reasonCode: 'AM04' });
    const second = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, second.xml);
    await sim.ledger.waitForDecision(second.endToEndId);
    const payment = (await (await request(`${admin}/ledger/payments/${second.endToEndId}`)).body.json()) as { status: string; reasonCode: string };
    expect(payment).toMatchObject({ status: 'rejected', reasonCode: 'AM04' });
    const summary = (await (await request(`${admin}/ledger/summary`)).body.json()) as { rejected: number };
    expect(summary.rejected).toBeGreaterThan(0);
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  });
});
