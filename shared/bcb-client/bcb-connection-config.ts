import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { readRevocationConfig } from '../config/index.ts';
import type { EnvReader, RevocationConfig } from '../config/index.ts';
import { buildTlsClientOptions, readHsmConfig, readPem } from '../hsm/index.ts';
import type { ClientKeySource, HsmConfig } from '../hsm/index.ts';
import { createLogger } from '../logging/index.ts';
import { createRevocationChecker } from '../pki/index.ts';
import type { RevocationChecker, RevocationLogger } from '../pki/index.ts';

/** How a worker reaches the BCB over mutual TLS, read once at start by {@link readBcbConnectionConfig}. */
export interface BcbConnectionConfig {
  /** `SELO_BCB_URL`: ICOM origin (`https://host:port`). */
  url: string;
  /** `SELO_BCB_CA`: the pinned BCB CA, a PEM file or the PEM itself. */
  caPath: string;
  /** `SELO_TLS_CERT`: the client certificate, a PEM file or the PEM itself. */
  certPath: string;
  /**
   * The client key: `SELO_TLS_KEY` (PEM file) or `SELO_TLS_KEY_LABEL` (a key in the HSM, used
   * through the OpenSSL pkcs11 engine with the `SELO_HSM_*` settings); exactly one of them.
   */
  key: { kind: 'pem'; path: string } | { kind: 'hsm'; label: string; hsm: HsmConfig };
  /** `SELO_BCB_TIMEOUT_MS`: time to wait for headers and for the body. @defaultValue 10000 */
  timeoutMs: number;
  /**
   * Revocation of the BCB's TLS server certificate and its chain: `SELO_REVOCATION`,
   * `SELO_BCB_CRL_FILES`, `SELO_BCB_CRL_ISSUERS` (defaults to the certificates of `SELO_BCB_CA`).
   */
  revocation: RevocationConfig;
}

/**
 * TLS options for {@link BcbHttpClient}: node's `tls.connect` options plus the revocation check
 * the client applies to the server's certificate chain after every handshake.
 */
export interface BcbTlsOptions extends ConnectionOptions {
  /** @defaultValue no revocation check (validity dates only) */
  revocation?: RevocationChecker;
}

/**
 * Reads the BCB connection settings into `reader` (problems are reported by its `finish()` with
 * the rest of the configuration): `SELO_BCB_URL`, `SELO_BCB_CA`, `SELO_TLS_CERT`, `SELO_TLS_KEY`
 * or `SELO_TLS_KEY_LABEL`, `SELO_BCB_TIMEOUT_MS`, and the revocation settings
 * (`SELO_REVOCATION`, `SELO_BCB_CRL_FILES`, `SELO_BCB_CRL_ISSUERS`).
 */
export function readBcbConnectionConfig(reader: EnvReader): BcbConnectionConfig {
  const url = reader.string('SELO_BCB_URL');
  const caPath = reader.string('SELO_BCB_CA');
  const certPath = reader.string('SELO_TLS_CERT');
  const keyPath = reader.optionalString('SELO_TLS_KEY');
  const keyLabel = reader.optionalString('SELO_TLS_KEY_LABEL');
  if ((keyPath === undefined) === (keyLabel === undefined)) reader.problem('SELO_TLS_KEY', 'or SELO_TLS_KEY_LABEL must be set, exactly one of them');
  const key: BcbConnectionConfig['key'] = keyLabel === undefined ? { kind: 'pem', path: keyPath ?? '' } : { kind: 'hsm', label: keyLabel, hsm: readHsmConfig(reader) };
  const timeoutMs = reader.integer('SELO_BCB_TIMEOUT_MS', { default: 10_000, min: 100, max: 120_000 });
  const revocation = readRevocationConfig(reader, { issuersFallback: 'SELO_BCB_CA' });
  return { url, caPath, certPath, key, timeoutMs, revocation };
}

/**
 * The TLS client options of `config`: reads the PEM files, or points the pkcs11 engine at the HSM
 * key, and loads the CRLs when revocation is on (a CRL that cannot be used stops the start with
 * `CRL_INVALID`).
 *
 * @param options.logger - where the revocation checker reports reloads and stale CRLs. @defaultValue a pino logger named `selo.revocation`
 */
export function bcbTlsOptions(config: BcbConnectionConfig, options: { logger?: RevocationLogger } = {}): BcbTlsOptions {
  const key: ClientKeySource =
    config.key.kind === 'pem'
      ? { kind: 'pem', pem: readFileSync(config.key.path) }
      : { kind: 'hsm', modulePath: config.key.hsm.modulePath, tokenLabel: config.key.hsm.tokenLabel, keyLabel: config.key.label, pin: config.key.hsm.pin };
  // SELO_BCB_CA and SELO_TLS_CERT are PEM files, or the PEM itself (ECS secrets from Secrets Manager).
  const ca = Buffer.from(readPem(config.caPath));
  const tls = buildTlsClientOptions({ key, cert: Buffer.from(readPem(config.certPath)), ca });
  const revocation = config.revocation.policy === 'off'
    ? undefined
    : createRevocationChecker(config.revocation, { extraIssuersPem: ca, logger: options.logger ?? createLogger({ name: 'selo.revocation' }) });
  return revocation === undefined ? tls : { ...tls, revocation };
}
