import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TrustStore,
  XmlSignatureError,
  XmlSigningError,
  hsmSigningKey,
  pemSigningKey,
  signDict,
  signSpi,
  verifyDict,
  verifySpi,
} from '../../../shared/xmldsig/index.ts';
import type { SigningKey, XmlSignatureErrorCode } from '../../../shared/xmldsig/index.ts';
import { canonicalizeElement } from '../../../shared/xml/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestIdentity, TestPki } from '../../support/test-pki.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/xml');
const EXAMPLE_FILES = ['pacs.008_CONTA_1_msg.xml', 'pacs.008_END_1_msg.xml', 'pacs.008_END_10_msg.xml', 'pacs.002_SPI_1_msg.xml', 'pacs.002_PSP_1_msg.xml', 'pacs.002_ERRO_1_msg.xml'];
const EXAMPLE_SOURCE = join(import.meta.dirname, '../../../shared/iso20022/examples');
const PACS008 = readFileSync(join(EXAMPLE_SOURCE, 'pacs.008_END_1_msg.xml'), 'utf8');
const DICT_BODY = readFileSync(join(FIXTURES, 'dict/create-entry-request.xml'), 'utf8');

let pki: TestPki;
let signer: TestIdentity;
let other: TestIdentity;
let key: SigningKey;
let trust: TrustStore;

beforeAll(() => {
  pki = createTestPki();
  signer = pki.issue('psp-00038166');
  other = pki.issue('psp-99999010');
  key = pemSigningKey(signer.keyPem, signer.certPem);
  trust = new TrustStore();
  trust.add(signer.certPem);
  trust.add(other.certPem);
});

afterAll(() => pki.dispose());

function rejectionOf(run: () => unknown): XmlSignatureErrorCode | 'ACCEPTED' {
  try {
    run();
    return 'ACCEPTED';
  } catch (error) {
    if (error instanceof XmlSignatureError) return error.code;
    throw error;
  }
}

const spi = (xml: string, store: TrustStore = trust, now?: Date) => rejectionOf(() => verifySpi(xml, { trustStore: store, now }));
const dict = (xml: string) => rejectionOf(() => verifyDict(xml, { trustStore: trust }));

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  expect(out).not.toBe(text);
  return out;
}

describe('SPI profile', () => {
  for (const file of EXAMPLE_FILES) {
    it(`signs and verifies the BCB example ${file}`, async () => {
      const signed = await signSpi(readFileSync(join(EXAMPLE_SOURCE, file)), key);
      const verified = verifySpi(signed, { trustStore: trust });
      expect(verified.fromIspb).toMatch(/^[0-9A-Z]{8}$/);
      expect(verified.signer.certificate.serialNumber).toBe(signer.certificate.serialNumber);
    });
  }

  it('writes three references in the profile order and only X509IssuerSerial in KeyInfo', async () => {
    const signed = await signSpi(PACS008, key, { keyInfoId: 'KeyInfo1' });
    const references = [...signed.matchAll(/<ds:Reference( URI="[^"]*")?>/g)].map((m) => m[1] ?? null);
    expect(references).toEqual([' URI="#KeyInfo1"', ' URI=""', null]);
    expect(signed).toContain('<ds:KeyInfo Id="KeyInfo1"><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=Selo Test CA,O=Selo Test\\, Ltda,ST=São Paulo,C=BR</ds:X509IssuerName>');
    expect(signed).toContain(`<ds:X509SerialNumber>${BigInt(`0x${signer.certificate.serialNumber}`).toString(10)}</ds:X509SerialNumber>`);
    expect(signed).not.toContain('X509Certificate');
    expect(signed.indexOf('<ds:Signature')).toBeGreaterThan(signed.indexOf('<CreDt>'));
    expect(signed.indexOf('<ds:Signature')).toBeLessThan(signed.indexOf('</AppHdr>'));
  });

  it('returns exactly the AppHdr and Document it digested', async () => {
    const verified = verifySpi(await signSpi(PACS008, key), { trustStore: trust });
    expect(verified.appHdr.parent).toBe(verified.xml.root);
    expect(verified.document.parent).toBe(verified.xml.root);
    expect(canonicalizeElement(verified.document)).toContain('E9999901012341234123412345678900');
  });

  it('creates Sgntr when the AppHdr has none', async () => {
    const signed = await signSpi(PACS008.replace('<Sgntr/>', ''), key);
    expect(signed).toMatch(/<Sgntr><ds:Signature/);
    expect(spi(signed)).toBe('ACCEPTED');
  });

  it('refuses to sign an already signed message', async () => {
    await expect(signSpi(await signSpi(PACS008, key), key)).rejects.toBeInstanceOf(XmlSigningError);
  });

  it('signs through the HSM pool port', async () => {
    const calls: { label?: string }[] = [];
    const pool = {
      sign: (data: Buffer, keyRef: { label?: string; id?: Buffer }) => {
        calls.push(keyRef);
        return key.sign(data);
      },
    };
    const signed = await signSpi(PACS008, hsmSigningKey(pool, { label: 'spi-signing' }, signer.certPem));
    expect(spi(signed)).toBe('ACCEPTED');
    expect(calls).toEqual([{ label: 'spi-signing' }]);
  });

  it('accepts base64 wrapped at 76 columns with CR LF', async () => {
    const signed = await signSpi(PACS008, key);
    const wrapped = signed.replace(/<ds:SignatureValue>([^<]+)<\/ds:SignatureValue>/, (_m, value: string) => {
      return `<ds:SignatureValue>${value.replace(/(.{76})/g, '$1&#13;\n')}</ds:SignatureValue>`;
    });
    expect(wrapped).toContain('&#13;\n');
    expect(spi(wrapped)).toBe('ACCEPTED');
    expect(spi(wrapped.replace(/&#13;\n/g, '\r\n'))).toBe('ACCEPTED');
  });

  describe('tampering', () => {
    let signed: string;
    beforeAll(async () => {
      signed = await signSpi(PACS008, key, { keyInfoId: 'KI1' });
    });

    it('rejects a changed Document with XMLDSIG_DIGEST_MISMATCH', () => {
      expect(spi(replaceOnce(signed, '>1000.00<', '>9000.00<'))).toBe('XMLDSIG_DIGEST_MISMATCH');
    });

    it('rejects a changed AppHdr with XMLDSIG_DIGEST_MISMATCH', () => {
      expect(spi(replaceOnce(signed, '<CreDt>2020-01-01T08:30:12.000Z', '<CreDt>2020-01-01T08:30:13.000Z'))).toBe('XMLDSIG_DIGEST_MISMATCH');
    });

    it('rejects a KeyInfo pointing to another trusted signer with XMLDSIG_DIGEST_MISMATCH', () => {
      const serial = BigInt(`0x${other.certificate.serialNumber}`).toString(10);
      expect(spi(replaceOnce(signed, /<ds:X509SerialNumber>[0-9]+/, `<ds:X509SerialNumber>${serial}`))).toBe('XMLDSIG_DIGEST_MISMATCH');
    });

    it('rejects a changed SignatureValue with XMLDSIG_SIGNATURE_MISMATCH', () => {
      const tampered = signed.replace(/<ds:SignatureValue>(.)/, (_m, c: string) => `<ds:SignatureValue>${c === 'A' ? 'B' : 'A'}`);
      expect(tampered).not.toBe(signed);
      expect(spi(tampered)).toBe('XMLDSIG_SIGNATURE_MISMATCH');
    });

    it('rejects a DigestValue updated for a changed Document with XMLDSIG_SIGNATURE_MISMATCH', async () => {
      const forged = await signSpi(PACS008.replace('>1000.00<', '>9000.00<'), key, { keyInfoId: 'KI1' });
      const forgedDigest = /<ds:DigestValue>([^<]+)<\/ds:DigestValue><\/ds:Reference><\/ds:SignedInfo>/.exec(forged)?.[1] ?? '';
      const tampered = signed
        .replace('>1000.00<', '>9000.00<')
        .replace(/<ds:DigestValue>[^<]+<\/ds:DigestValue><\/ds:Reference><\/ds:SignedInfo>/, `<ds:DigestValue>${forgedDigest}</ds:DigestValue></ds:Reference></ds:SignedInfo>`);
      expect(spi(tampered)).toBe('XMLDSIG_SIGNATURE_MISMATCH');
    });
  });

  describe('signature wrapping', () => {
    let signed: string;
    beforeAll(async () => {
      signed = await signSpi(PACS008, key, { keyInfoId: 'KI1' });
    });
    const document = (s: string) => /<Document>[\s\S]*<\/Document>/.exec(s)?.[0] ?? '';
    const appHdr = (s: string) => /<AppHdr>[\s\S]*<\/AppHdr>/.exec(s)?.[0] ?? '';

    it('rejects the signed Document moved into the AppHdr and replaced with XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT', () => {
      const original = document(signed);
      const forged = original.replace('>1000.00<', '>9000.00<');
      const tampered = signed.replace(original, forged).replace('<CreDt>', `<Wrapper>${original}</Wrapper><CreDt>`);
      expect(spi(tampered)).toBe('XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT');
    });

    it('rejects the signed Document moved into the Signature (ds:Object) with XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT', () => {
      const original = document(signed);
      const tampered = signed.replace(original, original.replace('>1000.00<', '>9000.00<')).replace('</ds:KeyInfo>', `</ds:KeyInfo><ds:Object>${original}</ds:Object>`);
      expect(spi(tampered)).toBe('XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT');
    });

    it('rejects a duplicated Document with XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT', () => {
      const original = document(signed);
      expect(spi(signed.replace(original, `${original}${original.replace('>1000.00<', '>9000.00<')}`))).toBe('XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT');
    });

    it('rejects a duplicated AppHdr with XMLDSIG_MESSAGE_MULTIPLE_APPHDR', () => {
      const original = appHdr(signed);
      expect(spi(signed.replace(original, `${original}${original}`))).toBe('XMLDSIG_MESSAGE_MULTIPLE_APPHDR');
    });

    it('rejects a Document moved away from the envelope with XMLDSIG_MESSAGE_STRUCTURE_INVALID', () => {
      const original = document(signed);
      expect(spi(signed.replace(original, `<Extra>${original}</Extra>`))).toBe('XMLDSIG_MESSAGE_STRUCTURE_INVALID');
    });

    it('rejects a replaced Document with XMLDSIG_DIGEST_MISMATCH', () => {
      const original = document(signed);
      expect(spi(signed.replace(original, document(PACS008.replace('E9999901012341234123412345678900', 'E9999901012341234123412345678901'))))).toBe('XMLDSIG_DIGEST_MISMATCH');
    });

    it('rejects a message without signature with XMLDSIG_SIGNATURE_MISSING', () => {
      expect(spi(PACS008)).toBe('XMLDSIG_SIGNATURE_MISSING');
    });

    it('rejects two signatures with XMLDSIG_SIGNATURE_MULTIPLE', () => {
      const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)?.[0] ?? '';
      expect(spi(signed.replace('</Document>', `${signature.replace(/KI1/g, 'KI2')}</Document>`))).toBe('XMLDSIG_SIGNATURE_MULTIPLE');
    });

    it('rejects a signature outside AppHdr/Sgntr with XMLDSIG_SIGNATURE_MISPLACED', () => {
      const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)?.[0] ?? '';
      const moved = signed.replace(signature, '').replace('<FIToFICstmrCdtTrf>', `<FIToFICstmrCdtTrf>${signature}`);
      expect(spi(moved)).toBe('XMLDSIG_SIGNATURE_MISPLACED');
    });

    it('rejects a third reference redirected to an Id with XMLDSIG_REFERENCES_INVALID', () => {
      const tampered = signed.replace(/<ds:Reference>/, '<ds:Reference URI="#doc">').replace('<Document>', '<Document Id="doc">');
      expect(spi(tampered)).toBe('XMLDSIG_REFERENCES_INVALID');
    });

    it('rejects a second reference redirected away from the AppHdr with XMLDSIG_REFERENCES_INVALID', () => {
      expect(spi(replaceOnce(signed, '<ds:Reference URI="">', '<ds:Reference URI="#KI1">'))).toBe('XMLDSIG_REFERENCES_INVALID');
    });

    it('rejects references in another order with XMLDSIG_REFERENCES_INVALID', () => {
      const refs = [...signed.matchAll(/<ds:Reference[\s\S]*?<\/ds:Reference>/g)].map((m) => m[0]);
      const [a, b, c] = refs as [string, string, string];
      expect(spi(signed.replace(`${a}${b}${c}`, `${a}${c}${b}`))).toBe('XMLDSIG_REFERENCES_INVALID');
    });

    it('rejects an extra reference with XMLDSIG_REFERENCES_INVALID', () => {
      const refs = [...signed.matchAll(/<ds:Reference[\s\S]*?<\/ds:Reference>/g)].map((m) => m[0]);
      expect(spi(signed.replace('</ds:SignedInfo>', `${refs[2] ?? ''}</ds:SignedInfo>`))).toBe('XMLDSIG_REFERENCES_INVALID');
    });

    it('rejects a KeyInfo id also carried by another element with XMLDSIG_REFERENCE_TARGET_INVALID', () => {
      expect(spi(signed.replace('<GrpHdr>', '<GrpHdr Id="KI1">'))).toBe('XMLDSIG_REFERENCE_TARGET_INVALID');
    });

    it('rejects an embedded certificate with XMLDSIG_EMBEDDED_CERTIFICATE', () => {
      const der = other.certificate.raw.toString('base64');
      expect(spi(signed.replace('</ds:X509IssuerSerial>', `</ds:X509IssuerSerial><ds:X509Certificate>${der}</ds:X509Certificate>`))).toBe('XMLDSIG_EMBEDDED_CERTIFICATE');
    });

    it('rejects a ds:Object with XMLDSIG_SIGNATURE_STRUCTURE_INVALID', () => {
      expect(spi(signed.replace('</ds:KeyInfo>', '</ds:KeyInfo><ds:Object>x</ds:Object>'))).toBe('XMLDSIG_SIGNATURE_STRUCTURE_INVALID');
    });

    it('rejects other algorithms with XMLDSIG_ALGORITHM_NOT_ALLOWED', () => {
      expect(spi(signed.replace('xmldsig-more#rsa-sha256', 'xmldsig-more#rsa-sha512'))).toBe('XMLDSIG_ALGORITHM_NOT_ALLOWED');
      expect(spi(signed.replace('xmlenc#sha256', 'xmlenc#sha512'))).toBe('XMLDSIG_ALGORITHM_NOT_ALLOWED');
      expect(spi(signed.replace('<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">', '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315">'))).toBe('XMLDSIG_ALGORITHM_NOT_ALLOWED');
      expect(spi(signed.replace('<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>', ''))).toBe('XMLDSIG_ALGORITHM_NOT_ALLOWED');
    });
  });

  describe('signer', () => {
    it('rejects a signer not in the trust store with XMLDSIG_SIGNER_UNKNOWN', async () => {
      const store = new TrustStore();
      store.add(other.certPem);
      expect(spi(await signSpi(PACS008, key), store)).toBe('XMLDSIG_SIGNER_UNKNOWN');
    });

    it('rejects an expired signer with XMLDSIG_SIGNER_EXPIRED', async () => {
      expect(spi(await signSpi(PACS008, key), trust, new Date(Date.now() + 900 * 86_400_000))).toBe('XMLDSIG_SIGNER_EXPIRED');
    });

    it('rejects a signer not yet valid with XMLDSIG_SIGNER_NOT_YET_VALID', async () => {
      expect(spi(await signSpi(PACS008, key), trust, new Date(Date.now() - 86_400_000))).toBe('XMLDSIG_SIGNER_NOT_YET_VALID');
    });

    it('rejects a signer bound to another ISPB with XMLDSIG_SIGNER_ISPB_MISMATCH', async () => {
      const store = new TrustStore();
      store.add(signer.certPem, { ispb: '99999010' });
      expect(spi(await signSpi(PACS008, key), store)).toBe('XMLDSIG_SIGNER_ISPB_MISMATCH');
    });

    it('rejects a second Fr in a foreign namespace placed before the real one', async () => {
      const store = new TrustStore();
      store.add(signer.certPem, { ispb: '00038166' });
      const decoy = '<x:Fr xmlns:x="urn:decoy"><x:FIId><x:FinInstnId><x:Othr><x:Id>00038166</x:Id></x:Othr></x:FinInstnId></x:FIId></x:Fr>';
      const crafted = PACS008.replace(/<Fr>/, `${decoy}<Fr>`).replace(/(<Fr>[\s\S]*?<Id>)00038166(<\/Id>)/, '$199999999$2');
      expect(crafted).toContain('urn:decoy');
      expect(spi(await signSpi(crafted, key), store)).toBe('XMLDSIG_MESSAGE_STRUCTURE_INVALID');
    });

    it('accepts a signer bound to the ISPB in AppHdr/Fr', async () => {
      const store = new TrustStore();
      store.add(signer.certPem, { ispb: '00038166' });
      expect(spi(await signSpi(PACS008, key), store)).toBe('ACCEPTED');
    });
  });
});

describe('DICT profile', () => {
  it('signs with the signature as the first child of the root and verifies', async () => {
    const signed = await signDict(DICT_BODY, key);
    expect(signed).toMatch(/<CreateEntryRequest><ds:Signature/);
    const verified = verifyDict(signed, { trustStore: trust });
    expect(verified.root.localName).toBe('CreateEntryRequest');
    expect(verified.signature.localName).toBe('Signature');
  });

  it('writes two references: the KeyInfo and the whole document', async () => {
    const signed = await signDict(DICT_BODY, key, { keyInfoId: 'K' });
    expect([...signed.matchAll(/<ds:Reference URI="([^"]*)">/g)].map((m) => m[1])).toEqual(['#K', '']);
  });

  it('rejects a changed body with XMLDSIG_DIGEST_MISMATCH', async () => {
    expect(dict(replaceOnce(await signDict(DICT_BODY, key), 'João Silva', 'Joao Silva'))).toBe('XMLDSIG_DIGEST_MISMATCH');
  });

  it('rejects a signature that is not the first child with XMLDSIG_SIGNATURE_MISPLACED', async () => {
    const signed = await signDict(DICT_BODY, key);
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)?.[0] ?? '';
    expect(dict(signed.replace(signature, '').replace('</CreateEntryRequest>', `${signature}</CreateEntryRequest>`))).toBe('XMLDSIG_SIGNATURE_MISPLACED');
  });

  it('rejects an unsigned body with XMLDSIG_SIGNATURE_MISSING', () => {
    expect(dict(DICT_BODY)).toBe('XMLDSIG_SIGNATURE_MISSING');
  });

  it('rejects a third reference with XMLDSIG_REFERENCES_INVALID', async () => {
    const signed = await signDict(DICT_BODY, key);
    const refs = [...signed.matchAll(/<ds:Reference[\s\S]*?<\/ds:Reference>/g)].map((m) => m[0]);
    expect(dict(signed.replace('</ds:SignedInfo>', `${refs[1] ?? ''}</ds:SignedInfo>`))).toBe('XMLDSIG_REFERENCES_INVALID');
  });
});
