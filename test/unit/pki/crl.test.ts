import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CrlFormatError, buildCrl, certificateSerial, crlDistributionPoints, derBitString, derExplicit, derInteger, derOctetString, derOid, derSequence,
  derTime, formatRdnSequence, parseCertificateBundle, parseCrls, sha256WithRsaAlgorithm, softwareSigner, verifyCrlSignature,
} from '../../../shared/pki/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';
import { memoryCa, memoryCrl, memoryLeaf } from '../../support/memory-pki.ts';
import type { MemoryIdentity } from '../../support/memory-pki.ts';

let ca: MemoryIdentity;
let leaf: MemoryIdentity;
let other: MemoryIdentity;
let dir: string;

beforeAll(async () => {
  ca = await memoryCa('AC Teste SPB');
  leaf = await memoryLeaf(ca, 'BCB signing');
  other = await memoryLeaf(ca, 'BCB signing 2');
  dir = mkdtempSync(join(tmpdir(), 'selo-crl-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('parseCrls', () => {
  it('reads the issuer, dates, number and revoked serials of a CRL selo built', async () => {
    const thisUpdate = new Date('2026-12-01T10:00:00Z');
    const built = await buildCrl({
      issuer: ca.certificate, signer: softwareSigner(ca.privateKey), thisUpdate, nextUpdate: new Date('2026-12-08T10:00:00Z'), crlNumber: 42n,
      revoked: [{ serial: certificateSerial(leaf.certificate), revokedAt: thisUpdate, reason: 'keyCompromise' }],
    });
    const [crl] = parseCrls(built.pem);
    expect(crl).toBeDefined();
    expect(formatRdnSequence(crl?.issuer ?? [])).toBe('CN=AC Teste SPB,O=ICP-Brasil (test),C=BR');
    expect(crl?.thisUpdate.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(crl?.nextUpdate.toISOString()).toBe('2026-12-08T10:00:00.000Z');
    expect(crl?.crlNumber).toBe(42n);
    expect(crl?.revoked.get(certificateSerial(leaf.certificate))).toEqual({ revokedAt: thisUpdate, reason: 'keyCompromise' });
    expect(crl?.revoked.has(certificateSerial(other.certificate))).toBe(false);
    expect(parseCrls(built.der)[0]?.revoked.size).toBe(1);
  });

  it('reads every X509 CRL block of a PEM bundle', async () => {
    const a = await memoryCrl(ca, [leaf]);
    const b = await memoryCrl(ca, [leaf, other]);
    expect(parseCrls(`${a.pem}${b.pem}`).map((c) => c.revoked.size)).toEqual([1, 2]);
  });

  it('writes CRLs that openssl verifies with the CA certificate', async () => {
    const built = await memoryCrl(ca, [leaf]);
    writeFileSync(join(dir, 'ours.crl'), built.pem);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    const out = execFileSync('openssl', ['crl', '-in', join(dir, 'ours.crl'), '-CAfile', join(dir, 'ca.pem'), '-noout', '-text'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(out).toContain(`Serial Number: ${leaf.certificate.serialNumber.toUpperCase()}`);
  });

  it('reads a CRL made by openssl ca (sha512WithRSAEncryption, like the ICP-Brasil roots) and verifies its signature', () => {
    const pki: TestPki = createTestPki({ asciiNames: true });
    try {
      const revoked = pki.issue('revoked');
      const kept = pki.issue('kept');
      const db = join(pki.dir, 'index.txt');
      writeFileSync(db, '');
      writeFileSync(join(pki.dir, 'crlnumber'), '1000\n');
      writeFileSync(join(pki.dir, 'ca.cnf'), [
        '[ca]', 'default_ca = test', '[test]', `database = ${db}`, `crlnumber = ${join(pki.dir, 'crlnumber')}`, 'default_md = sha512',
        'default_crl_days = 7', `certificate = ${pki.ca.certPath}`, `private_key = ${pki.ca.keyPath}`, 'crl_extensions = crl_ext',
        '[crl_ext]', 'authorityKeyIdentifier = keyid:always', '',
      ].join('\n'));
      const ca = ['-config', join(pki.dir, 'ca.cnf')];
      execFileSync('openssl', ['ca', ...ca, '-revoke', revoked.certPath, '-crl_reason', 'superseded'], { stdio: 'ignore' });
      execFileSync('openssl', ['ca', ...ca, '-gencrl', '-out', join(pki.dir, 'openssl.crl')], { stdio: 'ignore' });
      const [crl] = parseCrls(readFileSync(join(pki.dir, 'openssl.crl')));
      expect(crl?.signatureAlgorithm).toBe('1.2.840.113549.1.1.13');
      expect(crl?.crlNumber).toBe(0x1000n);
      expect(crl?.revoked.get(certificateSerial(revoked.certificate))?.reason).toBe('superseded');
      expect(crl?.revoked.has(certificateSerial(kept.certificate))).toBe(false);
      expect(crl === undefined ? false : verifyCrlSignature(crl, pki.ca.certificate.publicKey)).toBe(true);
    } finally {
      pki.dispose();
    }
  });

  it('refuses input that is not a CRL', () => {
    expect(() => parseCrls(Buffer.from('not a crl'))).toThrow(CrlFormatError);
    expect(() => parseCrls('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow(/no X509 CRL block|without an X509 CRL/);
    expect(() => parseCrls(ca.certificate.raw)).toThrow(CrlFormatError);
  });

  it('refuses a delta CRL and a CRL without nextUpdate', () => {
    const unsigned = (extra: Buffer[], withNextUpdate: boolean): Buffer => {
      const tbs = derSequence(
        derInteger(1), sha256WithRsaAlgorithm(), derSequence(), derTime(new Date()), ...(withNextUpdate ? [derTime(new Date(Date.now() + 86_400_000))] : []),
        ...(extra.length === 0 ? [] : [derExplicit(0, derSequence(...extra))]),
      );
      return derSequence(tbs, sha256WithRsaAlgorithm(), derBitString(Buffer.alloc(256)));
    };
    const delta = derSequence(derOid('2.5.29.27'), Buffer.from([0x01, 0x01, 0xff]), derOctetString(derInteger(7)));
    expect(() => parseCrls(unsigned([delta], true))).toThrow(/delta CRLs are not supported/);
    const indirect = derSequence(derSequence(
      derInteger(7n), derTime(new Date()),
      derSequence(derSequence(derOid('2.5.29.29'), Buffer.from([0x01, 0x01, 0xff]), derOctetString(derSequence()))),
    ));
    const tbs = derSequence(derInteger(1), sha256WithRsaAlgorithm(), derSequence(), derTime(new Date()), derTime(new Date(Date.now() + 86_400_000)), indirect);
    expect(() => parseCrls(derSequence(tbs, sha256WithRsaAlgorithm(), derBitString(Buffer.alloc(256))))).toThrow(/critical entry extension 2\.5\.29\.29 is not supported \(indirect CRL\?\)/);
    expect(() => parseCrls(unsigned([], false))).toThrow(/no nextUpdate/);
    expect(parseCrls(unsigned([], true))).toHaveLength(1);
  });
});

describe('verifyCrlSignature', () => {
  it('accepts the CA key and refuses a CRL signed by another key under the same name', async () => {
    const impostor = await memoryCa('AC Teste SPB');
    const genuine = parseCrls((await memoryCrl(ca, [leaf])).der)[0];
    const forged = parseCrls((await memoryCrl(impostor, [])).der)[0];
    expect(genuine === undefined ? false : verifyCrlSignature(genuine, ca.publicKey)).toBe(true);
    expect(forged === undefined ? true : verifyCrlSignature(forged, ca.publicKey)).toBe(false);
  });
});

describe('crlDistributionPoints', () => {
  it('reads the distribution points of real ICP-Brasil CA certificates (AC DIGITAL and AC SOLUTI, AC Raiz v2 chain)', () => {
    const [acDigital, acSoluti] = parseCertificateBundle(readFileSync(join(import.meta.dirname, '../../fixtures/pki/icp-brasil-ac-soluti-chain.pem'), 'utf8'));
    expect(acDigital === undefined ? [] : crlDistributionPoints(acDigital)).toEqual([
      'http://ccd.acsoluti.com.br/lcr/ac-soluti-v1.crl',
      'http://ccd2.acsoluti.com.br/lcr/ac-soluti-v1.crl',
      'http://repositorio.icpbrasil.gov.br/lcr/ACSOLUTI/ac-soluti-v1.crl',
    ]);
    expect(acSoluti === undefined ? [] : crlDistributionPoints(acSoluti)).toEqual(['http://acraiz.icpbrasil.gov.br/LCRacraizv2.crl']);
  });

  it('lists the URIs of the cRLDistributionPoints extension, and none when it is absent', async () => {
    const urls = ['http://acraiz.icpbrasil.gov.br/LCRacraizv5.crl', 'http://repositorio.example/lcr.crl'];
    const withPoints = await memoryLeaf(ca, 'with points', 'signing', { crlDistributionPoints: urls });
    expect(crlDistributionPoints(withPoints.certificate)).toEqual(urls);
    expect(crlDistributionPoints(leaf.certificate)).toEqual([]);
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'crlDistributionPoints'], { input: withPoints.certPem }).toString();
    expect(text).toContain('URI:http://acraiz.icpbrasil.gov.br/LCRacraizv5.crl');
    expect(new X509Certificate(withPoints.certPem).serialNumber).toBe(withPoints.certificate.serialNumber);
  });
});
