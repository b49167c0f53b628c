import { connect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
const agents: Agent[] = [];

function agent(...args: Parameters<typeof mtlsAgent>): Agent {
  const a = mtlsAgent(...args);
  agents.push(a);
  return a;
}

function tlsHandshake(options: ConnectionOptions): Promise<{ ok: boolean; alpn?: string | false | null; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: sim.port, ca: pki.caPem, servername: 'localhost', ...options });
    socket.once('secureConnect', () => {
      // TLS 1.3 reports a refused client certificate only after the handshake: wait for the alert.
      socket.once('error', (error: Error) => resolve({ ok: false, error: error.message }));
      socket.once('close', () => resolve({ ok: false, error: 'closed' }));
      setTimeout(() => {
        resolve({ ok: true, alpn: socket.alpnProtocol });
        socket.destroy();
      }, 200);
    });
    socket.once('error', (error: Error) => resolve({ ok: false, error: error.message }));
  });
}

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await sim.close();
});

describe('BCB simulator mTLS', () => {
  it('answers 201 with a PI-ResourceId to a correct client certificate', async () => {
    const { xml } = await signedPacs008(pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem));
    const answer = await postMessages(agent(pki, pki.tlsA), sim, ISPB_A, xml);
    expect(answer.status).toBe(201);
    expect(answer.headers['pi-resourceid']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a client without a certificate', async () => {
    const result = await tlsHandshake({});
    expect(result.ok).toBe(false);
  });

  it('refuses a client certificate from another CA', async () => {
    const result = await tlsHandshake({ cert: pki.foreignTls.certPem, key: pki.foreignTls.keyPem });
    expect(result.ok).toBe(false);
    const a = new Agent({ connect: { cert: pki.foreignTls.certPem, key: pki.foreignTls.keyPem, ca: pki.caPem } });
    agents.push(a);
    await expect(request(`${sim.icomUrl}/out/${ISPB_A}/stream/start`, { dispatcher: a, headers: { host: 'localhost' } })).rejects.toThrow();
  });

  it('refuses TLS 1.1', async () => {
    const result = await tlsHandshake({ cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(result.ok).toBe(false);
  });

  it('refuses a client that offers only h2 (HTTP/1.1 only)', async () => {
    const result = await tlsHandshake({ cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, ALPNProtocols: ['h2'] });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/no.application.protocol|alert/i);
  });

  it('negotiates http/1.1 and offers ECDHE-RSA-AES128-GCM-SHA256 on TLS 1.2', async () => {
    const result = await tlsHandshake({ cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, ALPNProtocols: ['h2', 'http/1.1'], maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    expect(result).toEqual({ ok: true, alpn: 'http/1.1' });
  });

  it('refuses a TLS 1.2 client that offers only AES128-SHA (no forward secrecy)', async () => {
    const result = await tlsHandshake({ cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' });
    expect(result.ok).toBe(false);
  });

  it('refuses a TLS 1.2 client that offers only ECDHE with CBC', async () => {
    const result = await tlsHandshake({ cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384' });
    expect(result.ok).toBe(false);
  });

  it('negotiates ECDHE-RSA-AES128-GCM-SHA256 with a TLS 1.2 client that offers it among CBC suites', async () => {
    const socket = connect({ host: '127.0.0.1', port: sim.port, ca: pki.caPem, servername: 'localhost', cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256' });
    try {
      const cipher = await new Promise<string>((resolve, reject) => {
        socket.once('secureConnect', () => resolve(socket.getCipher().standardName));
        socket.once('error', reject);
      });
      expect(cipher).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
    } finally {
      socket.destroy();
    }
  });

  it("answers 403 when ISPB A's certificate posts to ISPB B's path", async () => {
    const { xml } = await signedPacs008(pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem));
    const answer = await postMessages(agent(pki, pki.tlsA), sim, ISPB_B, xml);
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+xml/);
    expect(answer.body).toContain('Forbidden');
  });

  it('answers 400 to a Host header with a port', async () => {
    const { xml } = await signedPacs008(pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem));
    const answer = await postMessages(agent(pki, pki.tlsA), sim, ISPB_A, xml, { host: `localhost:${sim.port}` });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('Host must not carry a port');
  });
});
