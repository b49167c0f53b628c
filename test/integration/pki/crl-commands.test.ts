import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiCommand } from '../../../bin/commands/pki.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import type { DevPkiResult } from '../../../infra/softhsm/index.ts';
import { certificateSerial, parseCrls } from '../../../shared/pki/index.ts';
import { capturedIo } from '../../support/command-io.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { memoryCa, memoryCrl, memoryLeaf } from '../../support/memory-pki.ts';

let token: TestToken;
let pki: DevPkiResult;
let server: Server;
let base: string;
/** What the distribution point answers, by path. */
const served = new Map<string, { status: number; body: Buffer }>();

async function selo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const captured = capturedIo();
  const code = await pkiCommand.run(args, captured.io);
  return { code, out: captured.out(), err: captured.err() };
}

function crlOnDisk(): ReturnType<typeof parseCrls>[number] {
  const [crl] = parseCrls(readFileSync(pki.files.caCrl));
  if (crl === undefined) throw new Error('no CRL');
  return crl;
}

beforeAll(async () => {
  token = createTestToken();
  pki = await initDevPki({ dir: join(token.dir, 'pki'), modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
  server = createServer((request, response) => {
    const answer = served.get(request.url ?? '') ?? { status: 404, body: Buffer.alloc(0) };
    response.writeHead(answer.status, { 'content-type': 'application/pkix-crl' });
    response.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  token.cleanup();
});

describe('the development CA\'s CRL', () => {
  it('selo pki init writes an empty CRL that openssl verifies with the CA certificate', () => {
    expect(crlOnDisk().revoked.size).toBe(0);
    const text = execFileSync('openssl', ['crl', '-in', pki.files.caCrl, '-CAfile', pki.files.caCertificate, '-noout', '-nextupdate'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(text).toMatch(/^nextUpdate=/);
  });

  it('selo pki revoke adds a certificate of the CA to the CRL, and refuses one the CA did not issue', async () => {
    const bcb = new X509Certificate(readFileSync(pki.files.bcbSigningCertificate));
    const result = await selo('revoke', '--dir', join(token.dir, 'pki'), '--cert', pki.files.bcbSigningCertificate, '--reason', 'keyCompromise');
    expect(result.code).toBe(0);
    expect(crlOnDisk().revoked.get(certificateSerial(bcb))?.reason).toBe('keyCompromise');
    const stranger = await memoryLeaf(await memoryCa('another CA'), 'stranger');
    const strangerPath = join(token.dir, 'stranger.pem');
    writeFileSync(strangerPath, stranger.certPem);
    const refused = await selo('revoke', '--dir', join(token.dir, 'pki'), '--cert', strangerPath);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/was not issued by the development CA/);
    expect(crlOnDisk().revoked.size).toBe(1);
  });

  it('selo pki crl re-issues the CRL with the same entries and a new nextUpdate', async () => {
    const before = crlOnDisk();
    expect((await selo('crl', '--dir', join(token.dir, 'pki'), '--days', '2')).code).toBe(0);
    const after = crlOnDisk();
    expect([...after.revoked.keys()]).toEqual([...before.revoked.keys()]);
    expect(after.nextUpdate.getTime() - Date.now()).toBeLessThan(2 * 86_400_000 + 60_000);
    expect(after.nextUpdate.getTime() - Date.now()).toBeGreaterThan(2 * 86_400_000 - 60_000);
  });

  it('selo pki crl-urls prints the distribution points of the certificates in a PEM file', async () => {
    const ca = await memoryCa('AC with points');
    const leaf = await memoryLeaf(ca, 'leaf', 'signing', { crlDistributionPoints: ['http://acraiz.icpbrasil.gov.br/LCRacraizv5.crl'] });
    const path = join(token.dir, 'with-points.pem');
    writeFileSync(path, `${leaf.certPem}${ca.certPem}`);
    const result = await selo('crl-urls', '--cert', path);
    expect(result).toMatchObject({ code: 0, out: 'http://acraiz.icpbrasil.gov.br/LCRacraizv5.crl\n' });
  });
});

describe('selo pki fetch-crl', () => {
  it('replaces the cached file with a newer CRL its CA signed, then reports it unchanged; refuses an older, forged or expired one and a failed download, leaving the file as it was', async () => {
    const ca = await memoryCa('AC distribution point');
    const revoked = await memoryLeaf(ca, 'revoked');
    const issuers = join(token.dir, 'dp-issuers.pem');
    writeFileSync(issuers, ca.certPem);
    const out = join(token.dir, 'dp.crl');
    const older = await memoryCrl(ca, [], { thisUpdate: new Date(Date.now() - 3_600_000) });
    const newer = await memoryCrl(ca, [revoked]);
    served.set('/old.crl', { status: 200, body: older.der });
    served.set('/new.crl', { status: 200, body: newer.der });
    served.set('/forged.crl', { status: 200, body: (await memoryCrl(await memoryCa('AC distribution point'), [])).der });
    served.set('/expired.crl', { status: 200, body: (await memoryCrl(ca, [], { thisUpdate: new Date(Date.now() - 2 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) })).der });

    const fetch = (path: string): Promise<{ code: number; out: string; err: string }> => selo('fetch-crl', '--url', `${base}${path}`, '--out', out, '--issuers', issuers);
    expect((await fetch('/old.crl')).code).toBe(0);
    const first = await fetch('/new.crl');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ outcome: 'replaced', revoked: 1, issuer: 'CN=AC distribution point,O=ICP-Brasil (test),C=BR' });
    expect(JSON.parse((await fetch('/new.crl')).out)).toMatchObject({ outcome: 'unchanged' });
    const kept = readFileSync(out);
    const stamp = statSync(out).mtimeMs;

    const refusals = await Promise.all(['/old.crl', '/forged.crl', '/expired.crl', '/missing.crl'].map(async (path) => [path, await fetch(path)] as const));
    expect(Object.fromEntries(refusals.map(([path, r]) => [path, r.code]))).toEqual({ '/old.crl': 1, '/forged.crl': 1, '/expired.crl': 1, '/missing.crl': 1 });
    expect(refusals.map(([, r]) => r.err).join('')).toMatch(/older than the cached one[\s\S]*signed by none of the configured CA certificates[\s\S]*expired at[\s\S]*answered 404/);
    expect(readFileSync(out).equals(kept)).toBe(true);
    expect(statSync(out).mtimeMs).toBe(stamp);
    expect(parseCrls(readFileSync(out))[0]?.revoked.has(certificateSerial(revoked.certificate))).toBe(true);
  });
});
