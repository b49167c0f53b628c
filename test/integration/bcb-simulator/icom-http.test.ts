import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { BcbHttpClient, BcbUnavailableError, IcomClient } from '../../../shared/bcb-client/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agent: Agent;
let http: BcbHttpClient;
let key: SigningKey;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki);
  agent = mtlsAgent(pki, pki.tlsA);
  http = new BcbHttpClient({ origin: sim.url, tls: { cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, ca: pki.caPem, servername: 'localhost', minVersion: 'TLSv1.2' } });
  key = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
});

afterAll(async () => {
  await http.close();
  await agent.close();
  await sim.close();
});

describe('ICOM HTTP rules (issue 16 item 2)', () => {
  it('answers 406 to Accept-Encoding: identity (only gzip is allowed)', async () => {
    const { xml } = await signedPacs008(key);
    const answer = await postMessages(agent, sim, ISPB_A, xml, { 'accept-encoding': 'identity' });
    expect(answer.status).toBe(406);
    expect(answer.body).toContain('Accept-Encoding');
  });

  it('answers 406 to an Accept other than application/xml, multipart/mixed or */*', async () => {
    const { xml } = await signedPacs008(key);
    const answer = await postMessages(agent, sim, ISPB_A, xml, { accept: 'application/json' });
    expect(answer.status).toBe(406);
  });

  it.each(['traceparent', 'tracestate', 'x-request-id'])('answers 400 to a request carrying %s (not on the ICOM header list)', async (header) => {
    const { xml } = await signedPacs008(key);
    const answer = await postMessages(agent, sim, ISPB_A, xml, { [header]: header === 'traceparent' ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : 'x' });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain(`header ${header} is not allowed`);
  });

  it("posts one message with selo's client and gets its PI-ResourceId", async () => {
    const { xml } = await signedPacs008(key);
    const posted = await new IcomClient({ http, ispb: ISPB_A }).post(xml);
    expect(posted.resourceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sim.ledger.received().some((m) => m.resourceId === posted.resourceId)).toBe(true);
  });

  it('posts a gzip-compressed body (Content-Encoding: gzip) that the simulator decodes and processes', async () => {
    const { xml, bizMsgIdr } = await signedPacs008(key);
    const client = new IcomClient({ http, ispb: ISPB_A, gzip: true });
    const posted = await client.post(xml);
    await sim.idle();
    const record = sim.ledger.received().find((m) => m.resourceId === posted.resourceId);
    expect(record?.bizMsgIdr).toBe(bizMsgIdr);
    expect(record?.outcome).toBe('accepted');
  });

  it('posts several messages as multipart/mixed and returns one PI-ResourceId per message, in order', async () => {
    const messages = await Promise.all([signedPacs008(key), signedPacs008(key), signedPacs008(key)]);
    const posted = await new IcomClient({ http, ispb: ISPB_A, gzip: true }).postMany(messages.map((m) => m.xml));
    expect(posted.resourceIds).toHaveLength(3);
    expect(new Set(posted.resourceIds).size).toBe(3);
    await sim.idle();
    const received = sim.ledger.received();
    posted.resourceIds.forEach((id, i) => {
      expect(received.find((m) => m.resourceId === id)?.bizMsgIdr).toBe(messages[i]?.bizMsgIdr);
    });
    // The simulator records which POST carried each message: one for the three.
    expect(new Set(posted.resourceIds.map((id) => received.find((m) => m.resourceId === id)?.post)).size).toBe(1);
  });

  it('answers 400 to a multipart POST of 11 messages (the ICOM limit is 10) and stores none of them', async () => {
    const messages = await Promise.all(Array.from({ length: 11 }, () => signedPacs008(key)));
    const before = sim.ledger.received().length;
    const answer = await postMessages(agent, sim, ISPB_A, messages.map((m) => m.xml));
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('1 to 10 messages');
    expect(answer.headers['pi-resourceid']).toBeUndefined();
    await sim.idle();
    expect(sim.ledger.received()).toHaveLength(before);
  });

  it('refuses to post more messages than the ICOM limit of 10 per POST', async () => {
    const client = new IcomClient({ http, ispb: ISPB_A });
    await expect(client.postMany(Array.from({ length: 11 }, () => '<x/>'))).rejects.toThrow(/1 to 10 messages/);
    await expect(client.postMany([])).rejects.toThrow(/1 to 10 messages/);
  });

  it("carries a 429's Retry-After seconds into the transient error", async () => {
    const { xml } = await signedPacs008(key);
    sim.faults.set({ scope: 'icom', throttleRate: 1, budget: 1 });
    try {
      const error: unknown = await new IcomClient({ http, ispb: ISPB_A }).post(xml).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BcbUnavailableError);
      expect((error as BcbUnavailableError).code).toBe('BCB_THROTTLED');
      expect((error as BcbUnavailableError).retryAfterSeconds).toBe(1);
    } finally {
      sim.faults.clear();
    }
  });
});
