import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader, readRevocationConfig } from '../../../shared/config/index.ts';

function read(env: Record<string, string>, options: { issuersFallback?: string } = {}): ReturnType<typeof readRevocationConfig> {
  const reader = new EnvReader(env);
  const config = readRevocationConfig(reader, options);
  reader.finish();
  return config;
}

describe('readRevocationConfig', () => {
  it('is off when no CRL file is configured', () => {
    expect(read({})).toEqual({ policy: 'off', crlFiles: [], issuersPath: undefined });
  });

  it('requires revocation (fail closed) as soon as CRL files are configured', () => {
    expect(read({ SELO_BCB_CRL_FILES: '/crl/ac.crl, /crl/raiz.crl', SELO_BCB_CRL_ISSUERS: '/crl/chain.pem' })).toEqual({
      policy: 'require', crlFiles: ['/crl/ac.crl', '/crl/raiz.crl'], issuersPath: '/crl/chain.pem',
    });
    expect(read({ SELO_BCB_CRL_FILES: '/crl/ac.crl', SELO_REVOCATION: 'warn' }, { issuersFallback: 'SELO_BCB_CA' }).policy).toBe('warn');
    expect(read({ SELO_BCB_CRL_FILES: '/crl/ac.crl', SELO_REVOCATION: 'off' }).policy).toBe('off');
  });

  it('stops the start when revocation is on without CRL files or CA certificates, naming the variables', () => {
    expect(() => read({ SELO_REVOCATION: 'require' })).toThrow(ConfigError);
    expect(() => read({ SELO_REVOCATION: 'require' })).toThrow(/SELO_BCB_CRL_FILES is required when SELO_REVOCATION is require.*SELO_BCB_CRL_ISSUERS is required/);
    expect(() => read({ SELO_BCB_CRL_FILES: '/crl/ac.crl' }, { issuersFallback: 'SELO_BCB_CA' })).not.toThrow();
    expect(() => read({ SELO_BCB_CRL_FILES: '/crl/ac.crl,,/crl/b.crl', SELO_BCB_CRL_ISSUERS: '/c.pem' })).toThrow(/SELO_BCB_CRL_FILES must be a comma-separated list of files without empty entries/);
    expect(() => read({ SELO_REVOCATION: 'soft' })).toThrow(/SELO_REVOCATION must be one of off, require, warn, got "soft"/);
  });
});
