import { execFile } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildCertificate, buildCertificationRequest, certificateIssuerRfc2253, certificateNames, certificateSerial, certificateSerialDecimal,
  derInteger, derOid, formatRdnSequence, formatRfc2253, namesEqual, parseDistinguishedName, parseRfc2253, softwareSigner,
} from '../../../shared/pki/index.ts';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'selo-pki-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('DER and names', () => {
  it('encodes integers minimally with a sign byte where needed', () => {
    expect(derInteger(0).toString('hex')).toBe('020100');
    expect(derInteger(127).toString('hex')).toBe('02017f');
    expect(derInteger(128).toString('hex')).toBe('02020080');
    expect(derInteger(Buffer.from([0, 0, 1])).toString('hex')).toBe('020101');
  });

  it('encodes OIDs with multi-byte arcs', () => {
    expect(derOid('1.2.840.113549.1.1.11').toString('hex')).toBe('06092a864886f70d01010b');
  });

  it('formats RFC 2253 most-specific first, escapes specials, and writes serialNumber as OID=#hex', () => {
    const name = parseDistinguishedName('CN=Banco \\, S.A.,serialNumber=99999004,O=Selo,C=BR');
    expect(name.map((a) => a.type)).toEqual(['C', 'O', 'serialNumber', 'CN']);
    expect(formatRfc2253(name)).toBe('CN=Banco \\, S.A.,2.5.4.5=#13083939393939303034,O=Selo,C=BR');
    expect(parseDistinguishedName('/C=BR/O=Selo/CN=x')).toEqual([{ type: 'C', value: 'BR' }, { type: 'O', value: 'Selo' }, { type: 'CN', value: 'x' }]);
  });
});

describe('certificate and CSR builders', () => {
  it('builds a certificate node:crypto and openssl accept, with the issuer DN readable as RFC 2253', async () => {
    const subject = [{ type: 'C', value: 'BR' }, { type: 'O', value: 'Ação Ltda' }, { type: 'CN', value: 'selo test' }];
    const built = await buildCertificate({ subject, issuer: subject, subjectPublicKey: publicKey, signer: softwareSigner(privateKey), ca: true, serialNumber: 4660n });
    expect(built.certificate.verify(publicKey)).toBe(true);
    expect(certificateSerialDecimal(built.certificate)).toBe('4660');
    expect(certificateIssuerRfc2253(built.certificate)).toBe('CN=selo test,O=Ação Ltda,C=BR');
    const file = join(dir, 'self.crt');
    writeFileSync(file, built.pem);
    const { stdout } = await execFileAsync('openssl', ['verify', '-CAfile', file, file]);
    expect(stdout).toContain('OK');
    expect(new X509Certificate(built.pem).ca).toBe(true);
  });

  it('reads the same issuer as an RDN sequence that XML-DSig compares as a name', async () => {
    const subject = [{ type: 'C', value: 'BR' }, { type: 'serialNumber', value: '99999004' }, { type: 'O', value: 'Ação, Ltda' }, { type: 'CN', value: 'selo test' }];
    const built = await buildCertificate({ subject, issuer: subject, subjectPublicKey: publicKey, signer: softwareSigner(privateKey), serialNumber: 4660n });
    const { issuer, subject: read } = certificateNames(built.certificate);
    expect(namesEqual(issuer, read)).toBe(true);
    expect(formatRdnSequence(issuer)).toBe('CN=selo test,O=Ação\\, Ltda,2.5.4.5=99999004,C=BR');
    expect(certificateIssuerRfc2253(built.certificate)).toBe('CN=selo test,O=Ação\\, Ltda,2.5.4.5=#13083939393939303034,C=BR');
    expect(namesEqual(parseRfc2253(certificateIssuerRfc2253(built.certificate)), issuer)).toBe(true);
    expect(certificateSerial(built.certificate)).toBe(4660n);
  });

  it('refuses to return a certificate whose signer used the wrong key', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const subject = [{ type: 'CN', value: 'x' }];
    await expect(buildCertificate({ subject, issuer: subject, subjectPublicKey: publicKey, signer: softwareSigner(other.privateKey) })).rejects.toThrow(/valid signature/);
  });

  it('builds a PKCS#10 request with an extension request that openssl verifies', async () => {
    const csr = await buildCertificationRequest({
      subject: parseDistinguishedName('CN=psp,serialNumber=99999004,C=BR'), publicKey, signer: softwareSigner(privateKey),
      keyUsage: ['digitalSignature'], subjectAltNames: { dns: ['psp.example'] },
    });
    const file = join(dir, 'req.csr');
    writeFileSync(file, csr.pem);
    const { stdout, stderr } = await execFileAsync('openssl', ['req', '-in', file, '-verify', '-noout', '-text']);
    expect(`${stdout}${stderr}`).toContain('verify OK');
    expect(stdout).toContain('DNS:psp.example');
  });
});
