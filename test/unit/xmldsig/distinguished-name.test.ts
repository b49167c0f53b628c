import { describe, expect, it } from 'vitest';
import { DistinguishedNameSyntaxError, formatRfc2253, namesEqual, parseRfc2253 } from '../../../shared/xmldsig/index.ts';

describe('distinguished names', () => {
  const reference = parseRfc2253('CN=Selo Test CA,O=Selo Test\\, Ltda,ST=São Paulo,C=BR');

  it('compares names as names: spacing, case, separators and type spellings do not matter', () => {
    for (const variant of [
      'CN=Selo Test CA, O=Selo Test\\, Ltda, ST=São Paulo, C=BR',
      'cn=selo test ca;o="Selo Test, Ltda";st=SÃO PAULO;c=br',
      'OID.2.5.4.3=Selo Test CA,2.5.4.10=Selo  Test\\2C Ltda,S=S\\C3\\A3o Paulo,C=BR',
      'CN=Selo Test CA,O=Selo Test\\, Ltda,ST=São Paulo,C=#13024252',
    ]) {
      expect(namesEqual(parseRfc2253(variant), reference), variant).toBe(true);
    }
  });

  it('tells different names apart: other values, other order, other RDN count', () => {
    for (const other of ['CN=Selo Test CA,O=Selo Test,ST=São Paulo,C=BR', 'C=BR,ST=São Paulo,O=Selo Test\\, Ltda,CN=Selo Test CA', 'CN=Selo Test CA,O=Selo Test\\, Ltda,C=BR']) {
      expect(namesEqual(parseRfc2253(other), reference), other).toBe(false);
    }
  });

  it('keeps ASN.1 order and writes RFC 2253 with escapes', () => {
    expect(reference[0]).toEqual([{ oid: '2.5.4.6', value: 'BR' }]);
    expect(formatRfc2253(reference)).toBe('CN=Selo Test CA,O=Selo Test\\, Ltda,ST=São Paulo,C=BR');
    expect(formatRfc2253(parseRfc2253('CN=a+OU=b,O=\\#x'))).toBe('CN=a+OU=b,O=\\#x');
  });

  it('refuses text that is not a name', () => {
    expect(() => parseRfc2253('no equals sign')).toThrow(DistinguishedNameSyntaxError);
    expect(() => parseRfc2253('XYZ=1')).toThrow(DistinguishedNameSyntaxError);
  });
});
