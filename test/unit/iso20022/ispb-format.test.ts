import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BcbHttpClient } from '../../../shared/bcb-client/index.ts';
import { IcomClient } from '../../../shared/bcb-client/index.ts';
import { ConfigError, loadConfig } from '../../../shared/config/index.ts';
import { buildCertificate, certificateIspb, softwareSigner } from '../../../shared/pki/index.ts';
import { decodeSignRequest } from '../../../workers/sign/index.ts';

// ISPBType in the SPI XSDs (shared/spec/spi-5.13.1/xsd/*.xsd) is [0-9A-Z]{8}: the BCB's virtual
// participants in homologation include 99999A03 and 99999A04.
const LETTERED_ISPB = '99999A04';
const unusedHttp = {} as BcbHttpClient;

describe('ISPBs with letters (XSD ISPBType [0-9A-Z]{8})', () => {
  it('SELO_ISPB accepts an ISPB with an upper-case letter and refuses lower case or 7 characters', () => {
    expect(loadConfig({ SELO_ISPB: LETTERED_ISPB }).ispb).toBe(LETTERED_ISPB);
    for (const bad of ['99999a04', '9999904', '99999-04']) {
      expect(() => loadConfig({ SELO_ISPB: bad }), bad).toThrow(ConfigError);
    }
  });

  it('IcomClient accepts an ISPB with a letter and refuses one that is not 8 characters [0-9A-Z]', () => {
    expect(() => new IcomClient({ http: unusedHttp, ispb: LETTERED_ISPB })).not.toThrow();
    expect(() => new IcomClient({ http: unusedHttp, ispb: '99999a04' })).toThrow(RangeError);
  });

  it("a DictRequested's PI-EndToEndId may carry an ISPB with a letter", () => {
    const endToEndId = `E${LETTERED_ISPB}202611281700abcDEF12345`;
    const decoded = decodeSignRequest({ operation: 'getEntry', pathParameters: { Key: '+5561988887777' }, headers: { 'PI-PayerId': '70000000000', 'PI-EndToEndId': endToEndId } }, 'DictRequested');
    expect(decoded).toMatchObject({ kind: 'dict', data: { headers: { 'PI-EndToEndId': endToEndId } } });
  });

  it('reads an ISPB with a letter from a certificate subject serialNumber', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const name = [{ type: 'CN', value: 'participante virtual' }, { type: 'serialNumber', value: LETTERED_ISPB }];
    const built = await buildCertificate({ subject: name, issuer: name, subjectPublicKey: publicKey, signer: softwareSigner(privateKey) });
    expect(certificateIspb(built.certificate)).toBe(LETTERED_ISPB);
  });
});
