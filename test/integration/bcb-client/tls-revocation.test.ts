import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { BcbHttpClient, BcbUnavailableError, bcbTlsOptions, readBcbConnectionConfig } from '../../../shared/bcb-client/index.ts';
import { EnvReader } from '../../../shared/config/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import { memoryCa, memoryCrl, memoryLeaf } from '../../support/memory-pki.ts';
import type { MemoryIdentity } from '../../support/memory-pki.ts';

const ISPB = '99999004';
const STREAM_START = `/api/v1/out/${ISPB}/stream/start`;

let dir: string;
let root: MemoryIdentity;
let acSpb: MemoryIdentity;
let client: MemoryIdentity;
/** Serves a TLS certificate its issuer (AC SPB) has revoked. */
let revokedSim: BcbSimulator;
/** Serves a current TLS certificate of the same chain. */
let currentSim: BcbSimulator;
let revokedServer: MemoryIdentity;
const clients: BcbHttpClient[] = [];

function write(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
  return path;
}

async function simulatorServing(server: MemoryIdentity): Promise<BcbSimulator> {
  const signing = await memoryLeaf(acSpb, 'BCB signing', 'signing', { serialNumber: '00038166' });
  return startBcbSimulator({
    // The chain as the BCB would present it: the server certificate, then the AC that issued it.
    tlsKey: server.keyPem, tlsCertificate: `${server.certPem}${acSpb.certPem}`, clientCa: root.certPem,
    signingKey: pemSigningKey(signing.keyPem, signing.certPem), participants: [{ ispb: ISPB }], longPollMs: 100, host: '127.0.0.1',
  });
}

/** A BcbHttpClient built the way the workers build theirs: from the environment, through bcbTlsOptions. */
function clientFor(sim: BcbSimulator, env: Record<string, string>): BcbHttpClient {
  const reader = new EnvReader({
    SELO_BCB_URL: new URL(sim.icomUrl).origin, SELO_BCB_CA: join(dir, 'root.pem'), SELO_TLS_CERT: join(dir, 'client.pem'), SELO_TLS_KEY: join(dir, 'client.key'),
    ...env,
  });
  const config = readBcbConnectionConfig(reader);
  reader.finish();
  const http = new BcbHttpClient({ origin: config.url, tls: { ...bcbTlsOptions(config, { logger: { info: () => undefined, warn: () => undefined, error: () => undefined } }), servername: 'localhost' } });
  clients.push(http);
  return http;
}

async function refusal(http: BcbHttpClient): Promise<BcbUnavailableError> {
  const error: unknown = await http.send('GET', STREAM_START).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(BcbUnavailableError);
  return error as BcbUnavailableError;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'selo-tls-revocation-'));
  root = await memoryCa('AC Raiz de teste');
  acSpb = await memoryCa('AC SPB de teste', root);
  client = await memoryLeaf(root, `psp-${ISPB}`, 'client', { serialNumber: ISPB });
  revokedServer = await memoryLeaf(acSpb, 'localhost', 'server');
  const currentServer = await memoryLeaf(acSpb, 'localhost', 'server');
  write('root.pem', root.certPem);
  write('ac-spb.pem', acSpb.certPem);
  write('client.pem', client.certPem);
  write('client.key', client.keyPem);
  write('ac-spb.crl', (await memoryCrl(acSpb, [revokedServer], { reason: 'keyCompromise' })).pem);
  write('root.crl', (await memoryCrl(root, [])).der);
  revokedSim = await simulatorServing(revokedServer);
  currentSim = await simulatorServing(currentServer);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await revokedSim.close();
  await currentSim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('BCB client: revocation of the TLS server certificate', () => {
  // The CA certificates that sign the CRLs: the AC that issued the server certificate (the root
  // comes from SELO_BCB_CA).
  const crlEnv = (): Record<string, string> => ({ SELO_BCB_CRL_FILES: `${join(dir, 'ac-spb.crl')},${join(dir, 'root.crl')}`, SELO_BCB_CRL_ISSUERS: join(dir, 'ac-spb.pem') });

  it('refuses the connection to a server whose certificate is revoked, before sending anything (BCB_CERTIFICATE_REVOKED)', async () => {
    const http = clientFor(revokedSim, crlEnv());
    const error = await refusal(http);
    expect(error.code).toBe('BCB_CERTIFICATE_REVOKED');
    expect(error.delivery).toBe('not-sent');
    expect((error.cause as { code?: string }).code).toBe('CERTIFICATE_REVOKED');
    expect(error.message).toMatch(/keyCompromise/);
    expect(http.stats().handshakes).toBe(0);
  });

  it('accepts a server whose certificate is current, its intermediate CA checked against the root CRL', async () => {
    const http = clientFor(currentSim, crlEnv());
    const answer = await http.send('GET', STREAM_START);
    expect(answer.status).toBeGreaterThanOrEqual(200);
    expect(http.stats().handshakes).toBe(1);
  });

  it('connects to the revoked server when revocation is off (validity dates only, today\'s behaviour)', async () => {
    const answer = await clientFor(revokedSim, {}).send('GET', STREAM_START);
    expect(answer.status).toBeGreaterThanOrEqual(200);
  });

  it('refuses a current server when the CA\'s CRL is past nextUpdate under require (BCB_REVOCATION_UNKNOWN), and accepts it under warn', async () => {
    const expired = write('ac-spb-expired.crl', (await memoryCrl(acSpb, [revokedServer], { thisUpdate: new Date(Date.now() - 2 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) })).pem);
    const files = { SELO_BCB_CRL_FILES: `${expired},${join(dir, 'root.crl')}`, SELO_BCB_CRL_ISSUERS: join(dir, 'ac-spb.pem') };
    const error = await refusal(clientFor(currentSim, files));
    expect(error.code).toBe('BCB_REVOCATION_UNKNOWN');
    expect((error.cause as { code?: string }).code).toBe('CRL_EXPIRED');
    expect((await clientFor(currentSim, { ...files, SELO_REVOCATION: 'warn' }).send('GET', STREAM_START)).status).toBeGreaterThanOrEqual(200);
  });

  it('stops at start on a CRL signed by another key (CRL_INVALID)', async () => {
    const forged = write('forged.crl', (await memoryCrl(await memoryCa('AC SPB de teste', root), [])).pem);
    expect(() => clientFor(currentSim, { SELO_BCB_CRL_FILES: forged, SELO_BCB_CRL_ISSUERS: join(dir, 'ac-spb.pem') })).toThrow(/signed by none of the configured CA certificates/);
  });
});
