import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPem } from '../../shared/hsm/index.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const dir = mkdtempSync(join(tmpdir(), 'selo-read-pem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readPem', () => {
  it('takes a PEM given inline, as an ECS secret from Secrets Manager arrives, without touching the disk', () => {
    expect(readPem(PEM)).toBe(PEM);
    expect(readPem(`\n  ${PEM}`)).toBe(`\n  ${PEM}`);
  });

  it('reads a PEM file given by its path', () => {
    const file = join(dir, 'cert.pem');
    writeFileSync(file, PEM);
    expect(readPem(file)).toBe(PEM);
  });

  it('fails on a path that does not exist, rather than taking the path for a PEM', () => {
    expect(() => readPem(join(dir, 'missing.pem'))).toThrow(/ENOENT/);
  });
});
