import { existsSync, readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

/** Debian's directory of OpenSSL 3 engines (`libengine-pkcs11-openssl`). */
export const DEBIAN_OPENSSL_ENGINES_DIR = '/usr/lib/x86_64-linux-gnu/engines-3';

/** A client key in PEM (from a file or the environment). */
export interface PemClientKey {
  /** Discriminator. */
  kind: 'pem';
  /** The PEM text. */
  pem: string | Buffer;
  /** Passphrase of an encrypted PEM. */
  passphrase?: string;
}

/** A client key held in a PKCS#11 token, used through OpenSSL's pkcs11 engine (libp11). */
export interface HsmClientKey {
  /** Discriminator. */
  kind: 'hsm';
  /** PKCS#11 library the engine loads (`PKCS11_MODULE_PATH`). */
  modulePath: string;
  /** Token label. */
  tokenLabel: string;
  /** The private key's `CKA_LABEL`. */
  keyLabel: string;
  /** Token user PIN (goes into the engine's key URI only; never logged). */
  pin: string;
  /**
   * Directory holding `pkcs11.so`. Node's bundled OpenSSL has no engines directory compiled
   * in, so `OPENSSL_ENGINES` must point at Debian's.
   * @defaultValue `OPENSSL_ENGINES` if set, else {@link DEBIAN_OPENSSL_ENGINES_DIR}
   */
  enginesDir?: string;
}

/** Where the mTLS client key comes from. */
export type ClientKeySource = PemClientKey | HsmClientKey;

/** Options of {@link buildTlsClientOptions}. */
export interface TlsClientOptions {
  /** The client key. */
  key: ClientKeySource;
  /** The client certificate chain (PEM). */
  cert: string | Buffer;
  /** Trust anchors for the server (PEM). */
  ca: string | Buffer | (string | Buffer)[];
  /** SNI and certificate host name. */
  servername?: string;
}

/**
 * Reads a PEM value given either inline (text starting with `-----BEGIN`, e.g. from an
 * environment variable) or as a path to a file.
 */
export function readPem(valueOrPath: string): string {
  if (valueOrPath.trimStart().startsWith('-----BEGIN')) return valueOrPath;
  return readFileSync(valueOrPath, 'utf8');
}

function pct(value: string): string {
  // RFC 7512 §2.3: path attribute values are percent-encoded outside the unreserved set.
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The RFC 7512 URI of a private key for the pkcs11 engine. Contains the PIN: never log it. */
export function pkcs11KeyUri(key: Pick<HsmClientKey, 'tokenLabel' | 'keyLabel' | 'pin'>): string {
  return `pkcs11:token=${pct(key.tokenLabel)};object=${pct(key.keyLabel)};type=private;pin-value=${pct(key.pin)}`;
}

/**
 * Makes OpenSSL find the pkcs11 engine and the engine find the PKCS#11 library. OpenSSL and
 * libp11 read these variables with getenv when the engine is first loaded (the first TLS
 * context that names it), so setting them in this process beforehand is enough. Values an
 * operator already set win.
 */
export function preparePkcs11Engine(key: Pick<HsmClientKey, 'modulePath' | 'enginesDir'>, env: NodeJS.ProcessEnv = process.env): void {
  const enginesDir = key.enginesDir ?? env['OPENSSL_ENGINES'] ?? DEBIAN_OPENSSL_ENGINES_DIR;
  if (!existsSync(`${enginesDir}/pkcs11.so`)) {
    throw new Error(`OpenSSL pkcs11 engine not found in ${enginesDir} (install libengine-pkcs11-openssl or set OPENSSL_ENGINES)`);
  }
  env['OPENSSL_ENGINES'] ??= enginesDir;
  env['PKCS11_MODULE_PATH'] ??= key.modulePath;
}

/**
 * TLS client options for the mutual-TLS connections to the BCB (DESIGN §2): TLS 1.2 or
 * later, the BCB's required ECDHE-RSA-AES128-GCM-SHA256 offered first, HTTP/1.1 via ALPN,
 * and the client key either in PEM or held in the HSM (pkcs11 engine: the key never leaves
 * the token, so it need not be extractable).
 */
export function buildTlsClientOptions(options: TlsClientOptions): ConnectionOptions {
  const base: ConnectionOptions = {
    cert: options.cert,
    ca: options.ca,
    minVersion: 'TLSv1.2',
    ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
    ALPNProtocols: ['http/1.1'],
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  };
  if (options.key.kind === 'pem') {
    return { ...base, key: options.key.pem, ...(options.key.passphrase === undefined ? {} : { passphrase: options.key.passphrase }) };
  }
  preparePkcs11Engine(options.key);
  return { ...base, privateKeyEngine: 'pkcs11', privateKeyIdentifier: pkcs11KeyUri(options.key) };
}
