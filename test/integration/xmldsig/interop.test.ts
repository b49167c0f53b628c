import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateNames, certificateSerial, formatRfc2253 } from '../../../shared/xmldsig/index.ts';
import { escapeXmlText } from '../../../shared/xml/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestIdentity, TestPki } from '../../support/test-pki.ts';

const ROOT = join(import.meta.dirname, '../../..');
const SELO = join(ROOT, 'bin/selo.ts');
/** The BCB's example messages (SPI catalogue 5.13.1), kept once in the repository. */
const EXAMPLES = join(ROOT, 'shared/iso20022/examples');
const DICT_BODY = join(ROOT, 'test/fixtures/xml/dict/create-entry-request.xml');
const JAVA_EXPORTS = ['--add-exports', 'java.xml.crypto/org.jcp.xml.dsig.internal.dom=ALL-UNNAMED'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function selo(args: readonly string[], input: string | Buffer): Run {
  const result = spawnSync(process.execPath, [SELO, ...args], { input, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function tool(command: string, args: readonly string[]): Run {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let dir: string;
let pki: TestPki;
let asciiPki: TestPki;
let leaf: TestIdentity;
let asciiLeaf: TestIdentity;
let javaClasses: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'selo-interop-'));
  pki = createTestPki();
  asciiPki = createTestPki({ asciiNames: true, caName: 'Selo ASCII CA' });
  leaf = pki.issue('spi-signer');
  asciiLeaf = asciiPki.issue('dict-signer');
  javaClasses = join(dir, 'classes');
  execFileSync('javac', [...JAVA_EXPORTS, '-d', javaClasses, join(ROOT, 'test/interop/SpiInterop.java')], { stdio: 'pipe' });
});

afterAll(() => {
  pki.dispose();
  asciiPki.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function java(args: readonly string[]): Run {
  return tool('java', [...JAVA_EXPORTS, '-cp', javaClasses, 'SpiInterop', ...args]);
}

describe('DICT profile against xmlsec1', () => {
  it('selo sign output verifies with xmlsec1 --verify, the signer found by issuer and serial', () => {
    const signed = selo(['sign', '--profile', 'dict', '--key', asciiLeaf.keyPath, '--cert', asciiLeaf.certPath], readFileSync(DICT_BODY));
    expect(signed.status, signed.stderr).toBe(0);
    const file = join(dir, 'dict-selo.xml');
    writeFileSync(file, signed.stdout);
    const result = tool('xmlsec1', ['--verify', '--trusted-pem', asciiPki.ca.certPath, '--untrusted-pem', asciiLeaf.certPath, '--id-attr:Id', 'KeyInfo', file]);
    expect(result.stderr).toContain('OK');
    expect(result.stderr).toContain('SignedInfo References (ok/all): 2/2');
    expect(result.status).toBe(0);
  });

  it('selo sign output verifies with xmlsec1 --verify for an issuer name with a comma and non-ASCII characters', () => {
    const signed = selo(['sign', '--profile', 'dict', '--key', leaf.keyPath, '--cert', leaf.certPath], readFileSync(DICT_BODY));
    const file = join(dir, 'dict-selo-utf8.xml');
    writeFileSync(file, signed.stdout);
    // xmlsec1 1.2 cannot match a non-ASCII X509IssuerName, so the key is given directly.
    const result = tool('xmlsec1', ['--verify', '--pubkey-cert-pem', leaf.certPath, '--id-attr:Id', 'KeyInfo', file]);
    expect(result.stderr).toContain('SignedInfo References (ok/all): 2/2');
    expect(result.status).toBe(0);
  });

  it('an xmlsec1-signed DICT body verifies with selo verify', () => {
    const { issuer } = certificateNames(asciiLeaf.certificate);
    const template =
      '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n<ds:SignedInfo>\n' +
      '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\n' +
      '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\n' +
      '<ds:Reference URI="#xmlsec-ki"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>' +
      '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>\n' +
      '<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>' +
      '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>' +
      '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>\n' +
      '</ds:SignedInfo>\n<ds:SignatureValue/>\n<ds:KeyInfo Id="xmlsec-ki"><ds:X509Data><ds:X509IssuerSerial>' +
      `<ds:X509IssuerName>${escapeXmlText(formatRfc2253(issuer).replace(/,/g, ', '))}</ds:X509IssuerName>` +
      `<ds:X509SerialNumber>${certificateSerial(asciiLeaf.certificate).toString(10)}</ds:X509SerialNumber>` +
      '</ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>\n</ds:Signature>';
    const body = readFileSync(DICT_BODY, 'utf8').replace('<CreateEntryRequest>', `<CreateEntryRequest>${template}`);
    const templateFile = join(dir, 'dict-template.xml');
    const out = join(dir, 'dict-xmlsec.xml');
    writeFileSync(templateFile, body);
    const signed = tool('xmlsec1', ['--sign', '--privkey-pem', asciiLeaf.keyPath, '--id-attr:Id', 'KeyInfo', '--output', out, templateFile]);
    expect(signed.status, signed.stderr).toBe(0);
    const xml = readFileSync(out);
    expect(xml.toString()).not.toContain('<ds:SignatureValue/>');
    const verified = selo(['verify', '--profile', 'dict', '--trust', asciiLeaf.certPath], xml);
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toMatch(/^valid: DICT signature on <CreateEntryRequest>/);
    expect(verified.status).toBe(0);
    const tampered = selo(['verify', '--profile', 'dict', '--trust', asciiLeaf.certPath], xml.toString().replace('USER_REQUESTED', 'FRAUD'));
    expect(tampered.status).toBe(1);
    expect(tampered.stderr).toContain('XMLDSIG_DIGEST_MISMATCH');
  });
});

describe('SPI profile against javax.xml.crypto', () => {
  const examples = ['pacs.008_END_1_msg.xml', 'pacs.008_END_10_msg.xml', 'pacs.002_ERRO_1_msg.xml'];

  for (const example of examples) {
    it(`selo sign output of ${example} verifies with the JDK implementation`, () => {
      const signed = selo(['sign', '--profile', 'spi', '--key', leaf.keyPath, '--cert', leaf.certPath], readFileSync(join(EXAMPLES, example)));
      expect(signed.status, signed.stderr).toBe(0);
      const file = join(dir, `selo-${example}`);
      writeFileSync(file, signed.stdout);
      const result = java(['verify', file, leaf.certPath]);
      expect(result.stdout.trim(), result.stderr).toBe('VALID');
      expect(result.status).toBe(0);
    });

    it(`a JDK-signed ${example} verifies with selo verify, ISPB-bound signer`, () => {
      const out = join(dir, `java-${example}`);
      const signed = java(['sign', join(EXAMPLES, example), leaf.keyPath, leaf.certPath, out]);
      expect(signed.status, signed.stderr).toBe(0);
      const xml = readFileSync(out, 'utf8');
      // The JDK wraps base64 at 76 columns with CR LF, as the BCB does.
      expect(xml).toContain('&#13;');
      const ispb = /<Fr>[\s\S]*?<Id>([0-9A-Z]{8})<\/Id>/.exec(xml)?.[1] ?? '';
      const verified = selo(['verify', '--profile', 'spi', '--trust', `${ispb}=${leaf.certPath}`], xml);
      expect(verified.stderr).toBe('');
      expect(verified.stdout).toContain(`valid: SPI signature from ISPB ${ispb}`);
      expect(verified.status).toBe(0);
    });
  }

  it('the JDK implementation rejects a selo-signed message whose Document was changed', () => {
    const signed = selo(['sign', '--profile', 'spi', '--key', leaf.keyPath, '--cert', leaf.certPath], readFileSync(join(EXAMPLES, 'pacs.008_END_1_msg.xml')));
    const file = join(dir, 'selo-tampered.xml');
    writeFileSync(file, signed.stdout.replace('>1000.00<', '>9000.00<'));
    const result = java(['verify', file, leaf.certPath]);
    expect(result.stdout.trim()).toBe('INVALID');
    expect(result.status).toBe(1);
  });
});

describe('selo sign and selo verify exit codes', () => {
  it('exits 1 with the reason on stderr for an invalid signature', () => {
    const signed = selo(['sign', '--profile', 'spi', '--key', leaf.keyPath, '--cert', leaf.certPath], readFileSync(join(EXAMPLES, 'pacs.008_END_1_msg.xml')));
    const result = selo(['verify', '--profile', 'spi', '--trust', `99999010=${leaf.certPath}`], signed.stdout);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^invalid: XMLDSIG_SIGNER_ISPB_MISMATCH: /);
  });

  it('exits 2 for malformed XML, naming the problem', () => {
    const result = selo(['verify', '--profile', 'spi', '--trust', leaf.certPath], '<Envelope><AppHdr></Envelope>');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('XML_MALFORMED');
  });

  it('exits 2 for a DTD (XXE) on stdin', () => {
    const result = selo(['verify', '--profile', 'dict', '--trust', leaf.certPath], '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('XML_DTD_FORBIDDEN');
  });

  it('exits 2 for an unreadable trust file and for a bad profile', () => {
    expect(selo(['verify', '--profile', 'spi', '--trust', join(dir, 'missing.pem')], '<a/>').status).toBe(2);
    expect(selo(['sign', '--profile', 'xml', '--key', leaf.keyPath, '--cert', leaf.certPath], '<a/>').status).toBe(2);
  });

  it('exits 1 when asked to sign an already signed message', () => {
    const signed = selo(['sign', '--profile', 'dict', '--key', leaf.keyPath, '--cert', leaf.certPath], readFileSync(DICT_BODY));
    const again = selo(['sign', '--profile', 'dict', '--key', leaf.keyPath, '--cert', leaf.certPath], signed.stdout);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('XMLDSIG_SIGNING_INPUT_INVALID');
  });
});
