import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePkcs11Uri } from '../../../bin/commands/sign.ts';
import { TokenSession } from '../../../shared/hsm/index.ts';
import { buildPacs004, parseSpiMessage } from '../../../shared/iso20022/index.ts';
import { buildCertificate, parseDistinguishedName, softwareSigner } from '../../../shared/pki/index.ts';
import { TrustStore, verifySpi } from '../../../shared/xmldsig/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const ROOT = join(import.meta.dirname, '../../..');
const SELO = join(ROOT, 'bin/selo.ts');
const KEY_LABEL = 'spi-signer';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let token: TestToken;
let certPath: string;
let certPem: string;

function selo(args: readonly string[], input: string, env: Readonly<Record<string, string>> = {}): Run {
  const result = spawnSync(process.execPath, [SELO, ...args], {
    input,
    encoding: 'utf8',
    env: { ...process.env, SELO_ENV: 'test', SELO_HSM_MODULE: token.modulePath, SELO_HSM_PIN: token.pin, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const pacs004 = buildPacs004({
  appHdr: { fromIspb: '00038166', toIspb: '99999010', bizMsgIdr: 'M00038166abcdefghijklmnopqrstuvw', creDt: '2024-03-05T14:07:09.123Z' },
  msgId: 'M00038166abcdefghijklmnopqrstuvw',
  creDtTm: '2024-03-05T14:07:09.123Z',
  returns: [
    {
      returnId: 'D00038166202403051407abcdefghij1',
      originalEndToEndId: 'E12345678202403041200abcdefghijk',
      amount: '25.00',
      reason: { code: 'BE08' },
      debtorAgentIspb: '00038166',
      creditorAgentIspb: '12345678',
    },
  ],
});

beforeAll(async () => {
  token = createTestToken({ tokenLabel: 'selo-sign-cli' });
  token.generateKey(KEY_LABEL);
  const session = TokenSession.open({ modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
  let hsmPublicKey;
  try {
    hsmPublicKey = session.publicKey({ label: KEY_LABEL });
  } finally {
    session.close();
  }
  // A software CA issues the certificate of the HSM-held key (the private key never leaves the token).
  const ca = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const caName = parseDistinguishedName('CN=Selo HSM Test CA,O=Selo Test\\, Ltda,C=BR');
  const leaf = await buildCertificate({
    subject: parseDistinguishedName('CN=spi-signer,O=Selo Test,C=BR'),
    issuer: caName,
    subjectPublicKey: hsmPublicKey,
    issuerPublicKey: ca.publicKey,
    signer: softwareSigner(ca.privateKey),
  });
  certPem = leaf.pem;
  certPath = join(token.dir, 'spi-signer.pem');
  writeFileSync(certPath, certPem);
});

afterAll(() => token.cleanup());

describe('selo sign --key pkcs11:', () => {
  it('signs a pacs.004 with the SoftHSM key, and selo verify accepts the output', () => {
    const signed = selo(['sign', '--profile', 'spi', '--key', `pkcs11:token=${token.tokenLabel};object=${KEY_LABEL};type=private`, '--cert', certPath], pacs004);
    expect(signed.stderr).toBe('');
    expect(signed.status).toBe(0);
    expect(signed.stdout).toContain('<ds:SignatureValue>');
    const verified = selo(['verify', '--profile', 'spi', '--trust', certPath], signed.stdout);
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    const trust = new TrustStore();
    trust.add(certPem);
    expect(parseSpiMessage(verifySpi(signed.stdout, { trustStore: trust }))).toMatchObject({ type: 'pacs.004', message: { returns: [{ amount: '25.00', reason: { code: 'BE08' } }] } });
  });

  it('takes the token from SELO_HSM_TOKEN_LABEL when the URI names only the key, and signs the DICT profile', () => {
    const body = readFileSync(join(ROOT, 'test/fixtures/xml/dict/create-entry-request.xml'), 'utf8');
    const signed = selo(['sign', '--profile', 'dict', '--key', `pkcs11:object=${KEY_LABEL}`, '--cert', certPath], body, { SELO_HSM_TOKEN_LABEL: token.tokenLabel });
    expect(signed.stderr).toBe('');
    expect(signed.status).toBe(0);
    expect(selo(['verify', '--profile', 'dict', '--trust', certPath], signed.stdout).status).toBe(0);
  });

  it('exits 2 without echoing the PIN when SELO_HSM_PIN is wrong', () => {
    const run = selo(['sign', '--profile', 'spi', '--key', `pkcs11:token=${token.tokenLabel};object=${KEY_LABEL}`, '--cert', certPath], pacs004, { SELO_HSM_PIN: 'wrong-pin-1234' });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/PIN/);
    expect(run.stderr).not.toContain('wrong-pin-1234');
  });

  it('exits 2 naming the problem when the key is not in the token', () => {
    const run = selo(['sign', '--profile', 'spi', '--key', `pkcs11:token=${token.tokenLabel};object=no-such-key`, '--cert', certPath], pacs004);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/HSM_/);
  });

  it('refuses a PIN on the command line', () => {
    const run = selo(['sign', '--profile', 'spi', '--key', `pkcs11:token=${token.tokenLabel};object=${KEY_LABEL}?pin-value=1234`, '--cert', certPath], pacs004);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('pin-value is not accepted; put the PIN in SELO_HSM_PIN');
  });
});

describe('parsePkcs11Uri', () => {
  it('reads token, object, a percent-encoded id and module-path', () => {
    expect(parsePkcs11Uri('pkcs11:token=selo%20dev;object=psp%2Dsigning;id=%01%a2;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so')).toEqual({
      token: 'selo dev',
      object: 'psp-signing',
      id: Buffer.from([0x01, 0xa2]),
      modulePath: '/usr/lib/softhsm/libsofthsm2.so',
    });
  });

  it('refuses a URI without a key, a public-key type, pin-source, unknown and repeated attributes, and bad escapes', () => {
    expect(() => parsePkcs11Uri('pkcs11:token=t')).toThrow(/object=<label> or id=/);
    expect(() => parsePkcs11Uri('pkcs11:object=k;type=public')).toThrow(/type must be private/);
    expect(() => parsePkcs11Uri('pkcs11:object=k?pin-source=file:/tmp/pin')).toThrow(/pin-source is not accepted/);
    expect(() => parsePkcs11Uri('pkcs11:object=k;colour=red')).toThrow(/unknown attribute colour/);
    expect(() => parsePkcs11Uri('pkcs11:object=k;object=j')).toThrow(/object appears twice/);
    expect(() => parsePkcs11Uri('pkcs11:object=k%zz')).toThrow(/malformed percent-encoding/);
  });
});
