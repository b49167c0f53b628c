import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import type { DevPkiResult } from '../../../infra/softhsm/index.ts';
import { buildTlsClientOptions } from '../../../shared/hsm/index.ts';
import { certificateIspb, certificateIssuerRfc2253, parseCertificate } from '../../../shared/pki/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { connect } from 'node:tls';

const execFileAsync = promisify(execFile);
let token: TestToken;
let pki: DevPkiResult;
let server: Server;
let port: number;

beforeAll(async () => {
  token = createTestToken();
  pki = await initDevPki({ dir: join(token.dir, 'pki'), modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
  server = createServer({
    key: readFileSync(pki.files.bcbTlsServerKey),
    cert: readFileSync(pki.files.bcbTlsServerCertificate),
    ca: readFileSync(pki.files.caCertificate),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  }, (socket: TLSSocket) => {
    socket.end(`hello ${String(socket.getPeerCertificate().subject.CN)} ${socket.getProtocol() ?? ''}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  token.cleanup();
});

describe('selo pki init', () => {
  it('writes certificates that chain to the test CA and carry the ISPB as serialNumber', async () => {
    const certs = [pki.files.pspSigningCertificate, pki.files.pspTlsClientCertificate, pki.files.pspTlsClientHsmCertificate, pki.files.bcbTlsServerCertificate, pki.files.bcbSigningCertificate];
    const { stdout } = await execFileAsync('openssl', ['verify', '-CAfile', pki.files.caCertificate, ...certs]);
    expect(stdout.match(/: OK/g)).toHaveLength(certs.length);
    const psp = parseCertificate(readFileSync(pki.files.pspSigningCertificate));
    expect(certificateIspb(psp)).toBe('99999004');
    expect(certificateIspb(parseCertificate(readFileSync(pki.files.bcbSigningCertificate)))).toBe('00038166');
    expect(certificateIssuerRfc2253(psp)).toBe('CN=selo development CA,O=selo development,C=BR');
    expect(psp.checkIssued(parseCertificate(readFileSync(pki.files.caCertificate)))).toBe(true);
    const server = parseCertificate(readFileSync(pki.files.bcbTlsServerCertificate));
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('keeps the PSP signing key in the token: its certificate matches the token public key and no key file exists', () => {
    expect(Object.keys(pki.files)).not.toContain('pspSigningKey');
    expect(pki.manifest.psp.signingKeyLabel).toBe('selo-psp-signing');
  });

  it('completes a real mTLS handshake with the client key held in SoftHSM (pkcs11 engine)', async () => {
    // OpenSSL loads the engine with the environment of the process, so the client runs in a
    // child process with its own environment (DESIGN §3).
    const script = join(token.dir, 'hsm-client.mjs');
    const tlsOptionsUrl = pathToFileURL(join(import.meta.dirname, '../../../shared/hsm/tls-options.ts')).href;
    writeFileSync(script, `
      import { connect } from 'node:tls';
      import { readFileSync } from 'node:fs';
      import { buildTlsClientOptions } from ${JSON.stringify(tlsOptionsUrl)};
      const [port, cert, ca, modulePath, tokenLabel, keyLabel] = process.argv.slice(2);
      const options = buildTlsClientOptions({ cert: readFileSync(cert), ca: readFileSync(ca), servername: 'localhost',
        key: { kind: 'hsm', modulePath, tokenLabel, keyLabel, pin: process.env.TEST_PIN } });
      const socket = connect({ ...options, host: '127.0.0.1', port: Number(port) });
      let data = '';
      socket.on('data', (d) => { data += d; });
      socket.on('end', () => { process.stdout.write(data); });
      socket.on('error', (e) => { process.stderr.write(String(e)); process.exitCode = 1; });
    `);
    const child = spawn(process.execPath, [script, String(port), pki.files.pspTlsClientHsmCertificate, pki.files.caCertificate, token.modulePath, token.tokenLabel, pki.manifest.psp.tlsKeyLabel], {
      env: { PATH: process.env['PATH'] ?? '', SOFTHSM2_CONF: token.conf, TEST_PIN: token.pin },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^hello psp-99999004-hsm\.selo\.local TLSv1\.[23]/);
  });

  it('completes mTLS with the PEM client key too', async () => {
    const options = buildTlsClientOptions({ key: { kind: 'pem', pem: readFileSync(pki.files.pspTlsClientKey) }, cert: readFileSync(pki.files.pspTlsClientCertificate), ca: readFileSync(pki.files.caCertificate), servername: 'localhost' });
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect({ ...options, host: '127.0.0.1', port });
      let data = '';
      socket.on('data', (d: Buffer) => { data += d.toString(); });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^hello psp-99999004\.selo\.local/);
  });

  it('refuses TLS 1.1', async () => {
    const options = buildTlsClientOptions({ key: { kind: 'pem', pem: readFileSync(pki.files.pspTlsClientKey) }, cert: readFileSync(pki.files.pspTlsClientCertificate), ca: readFileSync(pki.files.caCertificate), servername: 'localhost' });
    const error = await new Promise<Error | undefined>((resolve) => {
      const socket = connect({ ...options, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', host: '127.0.0.1', port });
      socket.on('secureConnect', () => { socket.destroy(); resolve(undefined); });
      socket.on('error', resolve);
    });
    expect(error).toBeInstanceOf(Error);
    expect(options.minVersion).toBe('TLSv1.2');
  });
});
