import type { EnvReader } from '../config/index.ts';

/** The PIN of the development token `selo hsm init` creates when `SELO_ENV` is `local`. */
export const DEVELOPMENT_PIN = 'selo-dev-pin';
/** The security officer PIN of the development token. */
export const DEVELOPMENT_SO_PIN = 'selo-dev-so-pin';

/** HSM settings, parsed once at start by {@link readHsmConfig}. */
export interface HsmConfig {
  /** PKCS#11 library (`SELO_HSM_MODULE`). @defaultValue '/usr/lib/softhsm/libsofthsm2.so' */
  modulePath: string;
  /** Token label (`SELO_HSM_TOKEN_LABEL`). @defaultValue 'selo-dev' */
  tokenLabel: string;
  /** Crypto user PIN (`SELO_HSM_PIN`, secret). Required unless `SELO_ENV` is `local`. @defaultValue {@link DEVELOPMENT_PIN} when local */
  pin: string;
  /** Security officer PIN (`SELO_HSM_SO_PIN`, secret), only used by `selo hsm init`. @defaultValue {@link DEVELOPMENT_SO_PIN} when local */
  soPin: string | undefined;
  /** Sessions in the pool (`SELO_HSM_SESSIONS`). @defaultValue 4 */
  sessions: number;
  /** Acquire timeout in ms (`SELO_HSM_ACQUIRE_TIMEOUT_MS`). @defaultValue 5000 */
  acquireTimeoutMs: number;
  /** Callers allowed to wait for a session (`SELO_HSM_MAX_WAITING`). @defaultValue 1000 */
  maxWaiting: number;
  /** Label of the PSP's message-signing key (`SELO_HSM_SIGNING_KEY_LABEL`). @defaultValue 'selo-psp-signing' */
  signingKeyLabel: string;
}

/**
 * Reads the HSM part of the configuration into `reader`; problems are reported by the
 * reader's `finish()` with the rest of the configuration. PINs are read as secrets, so their
 * values never appear in a configuration error.
 */
export function readHsmConfig(reader: EnvReader): HsmConfig {
  const local = (reader.optionalString('SELO_ENV') ?? 'local') === 'local';
  const modulePath = reader.string('SELO_HSM_MODULE', { default: '/usr/lib/softhsm/libsofthsm2.so' });
  const tokenLabel = reader.string('SELO_HSM_TOKEN_LABEL', { default: 'selo-dev' });
  if (tokenLabel.length > 32) reader.problem('SELO_HSM_TOKEN_LABEL', `must be at most 32 characters (PKCS#11 token label), got ${tokenLabel.length}`);
  const pin = reader.string('SELO_HSM_PIN', local ? { default: DEVELOPMENT_PIN, secret: true } : { secret: true });
  const soPin = local ? reader.string('SELO_HSM_SO_PIN', { default: DEVELOPMENT_SO_PIN, secret: true }) : reader.optionalString('SELO_HSM_SO_PIN');
  const sessions = reader.integer('SELO_HSM_SESSIONS', { default: 4, min: 1, max: 256 });
  const acquireTimeoutMs = reader.integer('SELO_HSM_ACQUIRE_TIMEOUT_MS', { default: 5000, min: 1, max: 600_000 });
  const maxWaiting = reader.integer('SELO_HSM_MAX_WAITING', { default: 1000, min: 0, max: 1_000_000 });
  const signingKeyLabel = reader.string('SELO_HSM_SIGNING_KEY_LABEL', { default: 'selo-psp-signing' });
  return { modulePath, tokenLabel, pin, soPin, sessions, acquireTimeoutMs, maxWaiting, signingKeyLabel };
}
