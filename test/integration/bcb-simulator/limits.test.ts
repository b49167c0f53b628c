import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './simulator-fixture.ts';

let sim: BcbSimulator;
let agent: Agent;
let key: SigningKey;

beforeAll(async () => {
  const pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { maxBodyBytes: 2_000 });
  agent = mtlsAgent(pki, pki.tlsA);
  key = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
});

afterAll(async () => {
  await agent.close();
  await sim.close();
});

describe('BCB simulator request limits', () => {
  it('answers 413 to a body over maxBodyBytes and keeps serving the connection', async () => {
    const { xml } = await signedPacs008(key);
    expect(Buffer.byteLength(xml)).toBeGreaterThan(2_000);
    const tooLarge = await postMessages(agent, sim, ISPB_A, xml);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toContain('PayloadTooLarge');
    expect(sim.ledger.summary().received).toBe(0);
    // The same keep-alive pool still gets answers.
    expect((await postMessages(agent, sim, ISPB_A, '<x/>', { 'content-type': 'text/plain' })).status).toBe(415);
  });
});
