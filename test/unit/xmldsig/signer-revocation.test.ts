import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlRevocationChecker } from '../../../shared/pki/index.ts';
import { TrustStore, pemSigningKey, signDict, verifyDict, verifySpi } from '../../../shared/xmldsig/index.ts';
import { memoryCa, memoryCrl, memoryLeaf } from '../../support/memory-pki.ts';
import type { MemoryIdentity } from '../../support/memory-pki.ts';
import { corruptSignatureValue, signedPibr001 } from '../workers/verify-messages.ts';

const BCB = '00038166';
const DICT_BODY = '<?xml version="1.0" encoding="UTF-8"?><GetEntryResponse><Entry><Key>11122233344</Key></Entry></GetEntryResponse>';
let ca: MemoryIdentity;
let current: MemoryIdentity;
let revoked: MemoryIdentity;
let dir: string;

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

async function storeWith(crl: { nextUpdate?: Date; thisUpdate?: Date } = {}): Promise<TrustStore> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.crl`);
  writeFileSync(file, (await memoryCrl(ca, [revoked], crl)).pem);
  const store = new TrustStore({ revocation: new CrlRevocationChecker({ files: [file], issuers: [ca.certificate] }) });
  store.add(current.certPem, { ispb: BCB });
  store.add(revoked.certPem, { ispb: BCB });
  return store;
}

beforeAll(async () => {
  ca = await memoryCa('AC SPB de teste');
  current = await memoryLeaf(ca, 'BCB signing', 'signing', { serialNumber: BCB });
  revoked = await memoryLeaf(ca, 'BCB signing (revoked)', 'signing', { serialNumber: BCB });
  dir = mkdtempSync(join(tmpdir(), 'selo-signer-revocation-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('signer revocation', () => {
  it('refuses a SPI message signed with a revoked certificate with CERTIFICATE_REVOKED, and verifies one signed with a current certificate', async () => {
    const trustStore = await storeWith();
    const good = await signedPibr001({ key: pemSigningKey(current.keyPem, current.certPem), toIspb: '99999004' }, 'ok');
    const bad = await signedPibr001({ key: pemSigningKey(revoked.keyPem, revoked.certPem), toIspb: '99999004' }, 'ok');
    expect(verifySpi(good, { trustStore }).fromIspb).toBe(BCB);
    expect(codeOf(() => verifySpi(bad, { trustStore }))).toBe('CERTIFICATE_REVOKED');
  });

  it('refuses a DICT answer signed with a revoked certificate', async () => {
    const trustStore = await storeWith();
    expect(verifyDict(await signDict(DICT_BODY, pemSigningKey(current.keyPem, current.certPem)), { trustStore }).signer.ispb).toBe(BCB);
    const bad = await signDict(DICT_BODY, pemSigningKey(revoked.keyPem, revoked.certPem));
    expect(codeOf(() => verifyDict(bad, { trustStore }))).toBe('CERTIFICATE_REVOKED');
  });

  it('reports a forged message from a revoked certificate as the forgery (signature first, revocation after)', async () => {
    const trustStore = await storeWith();
    const bad = await signedPibr001({ key: pemSigningKey(revoked.keyPem, revoked.certPem), toIspb: '99999004' }, 'ok');
    expect(codeOf(() => verifySpi(corruptSignatureValue(bad), { trustStore }))).toBe('XMLDSIG_SIGNATURE_MISMATCH');
  });

  it('refuses a current certificate with CRL_EXPIRED when the CRL is past nextUpdate', async () => {
    const trustStore = await storeWith({ thisUpdate: new Date(Date.now() - 2 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) });
    const good = await signedPibr001({ key: pemSigningKey(current.keyPem, current.certPem), toIspb: '99999004' }, 'ok');
    expect(codeOf(() => verifySpi(good, { trustStore }))).toBe('CRL_EXPIRED');
  });

  it('checks validity dates only without a revocation checker (off)', async () => {
    const trustStore = new TrustStore();
    trustStore.add(revoked.certPem, { ispb: BCB });
    const bad = await signedPibr001({ key: pemSigningKey(revoked.keyPem, revoked.certPem), toIspb: '99999004' }, 'ok');
    expect(verifySpi(bad, { trustStore }).fromIspb).toBe(BCB);
  });
});
