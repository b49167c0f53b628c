import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSoftHsmConf } from '../../infra/softhsm/index.ts';
import { initToken, TokenSession } from '../../shared/hsm/index.ts';

/** Debian's SoftHSM module. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** A fresh SoftHSM token for one test file. */
export interface TestToken {
  /** Temporary directory holding the conf and the token directory. */
  dir: string;
  /** The `softhsm2.conf` this process now uses (`SOFTHSM2_CONF`). */
  conf: string;
  /** PKCS#11 library. */
  modulePath: string;
  /** Token label. */
  tokenLabel: string;
  /** User PIN. */
  pin: string;
  /** Security officer PIN. */
  soPin: string;
  /** Generates an RSA key in the token and returns its label. */
  generateKey(label: string, bits?: 2048 | 3072 | 4096): string;
  /** Removes the temporary directory. */
  cleanup(): void;
}

/**
 * Gives the calling test file its own SoftHSM: a conf and token directory under a fresh
 * temporary directory, `SOFTHSM2_CONF` pointed at it (vitest runs each file in its own
 * process, and SoftHSM reads the variable at `C_Initialize`), and an initialised token.
 */
export function createTestToken(options: { tokenLabel?: string; pin?: string; soPin?: string } = {}): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'selo-softhsm-'));
  const conf = writeSoftHsmConf(dir);
  process.env['SOFTHSM2_CONF'] = conf;
  const tokenLabel = options.tokenLabel ?? 'selo-test';
  const pin = options.pin ?? 'test-user-pin';
  const soPin = options.soPin ?? 'test-so-pin';
  initToken({ modulePath: SOFTHSM_MODULE, tokenLabel, pin, soPin });
  return {
    dir,
    conf,
    modulePath: SOFTHSM_MODULE,
    tokenLabel,
    pin,
    soPin,
    generateKey(label, bits = 2048) {
      const session = TokenSession.open({ modulePath: SOFTHSM_MODULE, tokenLabel, pin });
      try {
        session.generateRsaKeyPair({ label, bits });
      } finally {
        session.close();
      }
      return label;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
