import { execFile } from 'node:child_process';
import { verify } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hsmCommand } from '../../../bin/commands/hsm.ts';
import { loadPkcs11js, TokenSession } from '../../../shared/hsm/index.ts';
import { capturedIo } from '../../support/command-io.ts';
import type { CapturedIo } from '../../support/command-io.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const execFileAsync = promisify(execFile);
let token: TestToken;

beforeAll(() => {
  token = createTestToken();
});
afterAll(() => token.cleanup());

function io(): CapturedIo {
  return capturedIo({ SOFTHSM2_CONF: token.conf, SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin, SELO_HSM_SO_PIN: token.soPin });
}

describe('selo hsm key tooling', () => {
  it('keygen creates a key that is sensitive, never extractable, and whose private exponent cannot be read', async () => {
    const run = io();
    expect(await hsmCommand.run(['keygen', '--label', 'psp-sign'], run.io)).toBe(0);
    expect(run.out()).toContain('"psp-sign"');
    const session = TokenSession.open({ modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
    try {
      const key = session.listKeys().find((k) => k.class === 'private' && k.label === 'psp-sign');
      expect(key?.attributes).toMatchObject({ token: true, private: true, sensitive: true, alwaysSensitive: true, extractable: false, neverExtractable: true, sign: true, decrypt: false });
      expect(key?.bits).toBe(2048);
      const pkcs11js = loadPkcs11js();
      for (const attribute of [pkcs11js.CKA_PRIVATE_EXPONENT, pkcs11js.CKA_PRIME_1, pkcs11js.CKA_PRIME_2]) {
        expect(() => session.readPrivateKeyAttribute({ label: 'psp-sign' }, attribute)).toThrow(expect.objectContaining({ code: 'HSM_ATTRIBUTE_SENSITIVE' }) as Error);
      }
      const signature = await session.sign({ label: 'psp-sign' }, Buffer.from('hello'));
      expect(verify('sha256', Buffer.from('hello'), session.publicKey({ label: 'psp-sign' }), signature)).toBe(true);
    } finally {
      session.close();
    }
  });

  it('keygen refuses a label already in use', async () => {
    const run = io();
    expect(await hsmCommand.run(['keygen', '--label', 'psp-sign'], run.io)).toBe(1);
    expect(run.err()).toContain('already exists');
  });

  it('list shows the security attributes', async () => {
    const run = io();
    expect(await hsmCommand.run(['list', '--json'], run.io)).toBe(0);
    const keys = JSON.parse(run.out()) as { class: string; label: string; attributes: Record<string, boolean> }[];
    expect(keys.find((k) => k.class === 'private' && k.label === 'psp-sign')?.attributes).toMatchObject({ extractable: false, sensitive: true });
  });

  it('csr writes a PKCS#10 request signed inside the HSM that openssl verifies', async () => {
    const run = io();
    const out = join(token.dir, 'psp.csr');
    expect(await hsmCommand.run(['csr', '--label', 'psp-sign', '--subject', 'CN=selo PSP,serialNumber=99999004,O=Selo Teste,C=BR', '--out', out], run.io)).toBe(0);
    const { stdout, stderr } = await execFileAsync('openssl', ['req', '-in', out, '-verify', '-noout', '-subject']);
    expect(`${stdout}${stderr}`).toMatch(/verify OK/);
    expect(stdout).toContain('serialNumber = 99999004');
    expect(stdout).toContain('CN = selo PSP');
  });

  it('init is idempotent for an existing token', async () => {
    const run = io();
    expect(await hsmCommand.run(['init'], run.io)).toBe(0);
    expect(run.out()).toContain('already exists');
  });

  it('refuses PINs on the command line without repeating them', async () => {
    for (const args of [['init', '--pin', 'cli-pin-4242'], ['init', '--so-pin=cli-so-pin-4242'], ['list', '--pin', 'cli-pin-4242']]) {
      const run = io();
      expect(await hsmCommand.run(args, run.io)).toBe(2);
      expect(run.err()).toMatch(/SELO_HSM_PIN/);
      expect(`${run.out()}${run.err()}`).not.toContain('4242');
    }
  });

  it('reports a wrong PIN without revealing it', async () => {
    const run = io();
    run.io.env = { ...run.io.env, SELO_HSM_PIN: 'bad-pin-9999' };
    expect(await hsmCommand.run(['list'], run.io)).toBe(1);
    expect(run.err()).toMatch(/PIN/);
    expect(run.err()).not.toContain('bad-pin-9999');
  });
});
