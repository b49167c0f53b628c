import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bcbTlsOptions, readBcbConnectionConfig } from '../../shared/bcb-client/index.ts';
import { EnvReader } from '../../shared/config/index.ts';

const CA = '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n';
const dir = mkdtempSync(join(tmpdir(), 'selo-bcb-pem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function optionsFor(env: Record<string, string>): ReturnType<typeof bcbTlsOptions> {
  const keyFile = join(dir, 'client.key');
  writeFileSync(keyFile, '-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n');
  const reader = new EnvReader({ SELO_BCB_URL: 'https://icom.example:16522', SELO_TLS_KEY: keyFile, ...env });
  const config = readBcbConnectionConfig(reader);
  reader.finish();
  return bcbTlsOptions(config);
}

describe('BCB connection certificates', () => {
  it('takes the BCB CA and the client certificate as PEM contents, as ECS secrets deliver them', () => {
    const options = optionsFor({ SELO_BCB_CA: CA, SELO_TLS_CERT: CERT });
    // The environment reader trims the value; PEM needs no trailing newline.
    expect(String(options.ca)).toBe(CA.trim());
    expect(String(options.cert)).toBe(CERT.trim());
  });

  it('still reads them from PEM files', () => {
    writeFileSync(join(dir, 'ca.pem'), CA);
    writeFileSync(join(dir, 'cert.pem'), CERT);
    const options = optionsFor({ SELO_BCB_CA: join(dir, 'ca.pem'), SELO_TLS_CERT: join(dir, 'cert.pem') });
    expect(String(options.ca)).toBe(CA);
    expect(String(options.cert)).toBe(CERT);
  });
});
