import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { RevocationConfig } from '../config/index.ts';
import { PermanentError, TransientError } from '../errors/index.ts';
import { CrlFormatError, parseCrls, verifyCrlSignature } from './crl.ts';
import type { CertificateRevocationList, CrlReason } from './crl.ts';
import { certificateNames, certificateSerial, formatRdnSequence, namesEqual } from './name.ts';
import type { RdnSequence } from './name.ts';

/**
 * The certificate is listed in its issuer's CRL (`CERTIFICATE_REVOKED`). Permanent: a signature
 * made with it, or a server presenting it, is refused every time.
 */
export class CertificateRevokedError extends PermanentError {
  /** Serial number of the revoked certificate (decimal). */
  readonly serial: string;
  /** When the CA revoked it. */
  readonly revokedAt: Date;
  /** The CRL's reason code. */
  readonly reason: CrlReason;

  constructor(certificate: X509Certificate, revokedAt: Date, reason: CrlReason) {
    const serial = certificateSerial(certificate).toString(10);
    super('CERTIFICATE_REVOKED', `certificate ${serial} of ${certificate.subject.replace(/\n/g, ', ')} was revoked by its issuer at ${revokedAt.toISOString()} (${reason})`, {
      details: { serial, issuer: certificate.issuer.replace(/\n/g, ', '), revokedAt: revokedAt.toISOString(), reason },
    });
    this.serial = serial;
    this.revokedAt = revokedAt;
    this.reason = reason;
  }
}

/**
 * Why the revocation status of a certificate is unknown:
 * - `CRL_MISSING`: no configured CRL is issued by the certificate's issuer;
 * - `CRL_EXPIRED`: the issuer's newest CRL is past its `nextUpdate` (the cached file was not refreshed);
 * - `CRL_NOT_YET_VALID`: its `thisUpdate` is in the future (clock skew beyond 5 minutes);
 * - `CRL_ISSUER_UNKNOWN`: the certificate's issuer is not among the configured CA certificates.
 */
export type RevocationUnknownCode = 'CRL_MISSING' | 'CRL_EXPIRED' | 'CRL_NOT_YET_VALID' | 'CRL_ISSUER_UNKNOWN';

/**
 * The revocation status could not be established under the `require` policy. Transient: the
 * message is not acted on now and is retried, so that once operations refresh the CRL file (it
 * is reloaded without a restart) the same message goes through; the DLQ bounds the retries.
 */
export class RevocationUnknownError extends TransientError {
  declare readonly code: RevocationUnknownCode;

  constructor(code: RevocationUnknownCode, message: string, details: Readonly<Record<string, unknown>>) {
    super(code, message, { details });
  }
}

/**
 * A configured CRL file cannot be used (`CRL_INVALID`): unreadable, not a CRL, signed by none of
 * the configured CA certificates, or using a feature selo does not implement. Permanent: at start
 * it stops the process; on a reload the previous CRLs stay in force and the error is logged.
 */
export class CrlInvalidError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CRL_INVALID', message, options);
  }
}

/** How revocation is enforced. `warn`: a revoked certificate is refused, a missing or expired CRL is logged and accepted. */
export type RevocationPolicy = 'require' | 'warn';

/** What the checker logs through (a pino logger fits). */
export interface RevocationLogger {
  info(facts: object, message: string): void;
  warn(facts: object, message: string): void;
  error(facts: object, message: string): void;
}

/** Checks certificates against CRLs; {@link CrlRevocationChecker} is the implementation. */
export interface RevocationChecker {
  /**
   * Checks `certificate` and each CA certificate above it (up to, not including, the
   * self-signed root) against its issuer's CRL.
   *
   * @param options.intermediates - CA certificates presented with it (a TLS peer's chain),
   *   tried after the configured ones when looking for an issuer.
   * @throws {@link CertificateRevokedError} when one of them is revoked.
   * @throws {@link RevocationUnknownError} under the `require` policy when a status is unknown.
   */
  check(certificate: X509Certificate, options?: { at?: Date; intermediates?: readonly X509Certificate[] }): void;
}

/** Options of {@link CrlRevocationChecker}. */
export interface CrlRevocationCheckerOptions {
  /** CRL files, DER or PEM (one or more `X509 CRL` blocks each); at least one. */
  files: readonly string[];
  /**
   * CA certificates: the issuers of the CRLs and of the certificates checked (the ICP-Brasil
   * chain above the BCB's certificates, root included).
   */
  issuers: readonly X509Certificate[];
  /** @defaultValue 'require' */
  policy?: RevocationPolicy;
  /** How often the files' modification times are looked at, ms (a changed file is reloaded). @defaultValue 1000 */
  recheckMs?: number;
  /** Clock for `thisUpdate`/`nextUpdate`. @defaultValue () => new Date() */
  now?: () => Date;
  /** @defaultValue no logging */
  logger?: RevocationLogger;
}

/** A CRL whose signature verified with a configured issuer's key. */
interface LoadedCrl {
  crl: CertificateRevocationList;
  file: string;
  /** SubjectPublicKeyInfo of the CA that signed it. */
  issuerKey: string;
}

/** What {@link CrlRevocationChecker.status} reports per CRL. */
export interface CrlStatus {
  file: string;
  issuer: string;
  thisUpdate: string;
  nextUpdate: string;
  crlNumber: string | undefined;
  revoked: number;
}

// Tolerated clock difference for thisUpdate (RFC 5280 leaves it to the relying party).
const CLOCK_SKEW_MS = 5 * 60_000;
const MAX_PATH = 8;
const MAX_CACHED_PATHS = 1000;

/** One certificate of a path and what identifies its issuer's CRL. */
interface PathLink {
  certificate: X509Certificate;
  serial: bigint;
  isCa: boolean;
  /** SubjectPublicKeyInfo (base64) of the issuer. */
  issuerKey: string;
  issuerName: RdnSequence;
  issuerLabel: string;
}

/** A certificate's path up to its root; `unknownIssuer` when it stops at a certificate whose issuer is not configured. */
interface CertificationPath {
  links: PathLink[];
  unknownIssuer?: { certificate: X509Certificate; issuerLabel: string };
}

function spki(certificate: X509Certificate): string {
  return certificate.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
}

function isSelfSigned(certificate: X509Certificate): boolean {
  const { issuer, subject } = certificateNames(certificate);
  return namesEqual(issuer, subject) && certificate.verify(certificate.publicKey);
}

/**
 * Revocation by CRLs kept as local files (the cached form of the ICP-Brasil distribution
 * points, refreshed by a scheduled job): each CRL is parsed, its signature checked with the key
 * of a configured CA certificate whose subject is the CRL's issuer, and a certificate is looked
 * up by issuer and serial number. The files are reloaded when their modification time or size
 * changes, so a refresh needs no restart; a refresh that cannot be used leaves the previous CRLs
 * in force and is logged. Construction loads them all and throws {@link CrlInvalidError} when one
 * cannot be used.
 */
export class CrlRevocationChecker implements RevocationChecker {
  readonly #files: readonly string[];
  readonly #issuers: readonly X509Certificate[];
  readonly #policy: RevocationPolicy;
  readonly #recheckMs: number;
  readonly #now: () => Date;
  readonly #logger: RevocationLogger | undefined;
  #crls: LoadedCrl[] = [];
  readonly #paths = new Map<string, CertificationPath>();
  #fileStamp = '';
  #lastStat = 0;
  /** Conditions already logged since the last load, so a stale CRL logs once, not per message. */
  readonly #logged = new Set<string>();

  constructor(options: CrlRevocationCheckerOptions) {
    if (options.files.length === 0) throw new RangeError('CrlRevocationCheckerOptions.files must name at least one CRL file, got []');
    if (options.issuers.length === 0) throw new RangeError('CrlRevocationCheckerOptions.issuers must hold at least one CA certificate, got []');
    const policy = options.policy ?? 'require';
    if (policy !== 'require' && policy !== 'warn') throw new RangeError(`CrlRevocationCheckerOptions.policy must be require or warn, got ${JSON.stringify(policy)}`);
    const recheckMs = options.recheckMs ?? 1000;
    if (!Number.isInteger(recheckMs) || recheckMs < 0) throw new RangeError(`CrlRevocationCheckerOptions.recheckMs must be a non-negative integer, got ${String(recheckMs)}`);
    this.#files = [...options.files];
    this.#issuers = [...options.issuers];
    this.#policy = policy;
    this.#recheckMs = recheckMs;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger;
    this.#fileStamp = this.#stamp();
    this.#crls = this.#load();
    this.#lastStat = Date.now();
    this.#logger?.info({ crls: this.status() }, 'CRLs loaded');
  }

  /** The CRLs in force. */
  status(): CrlStatus[] {
    return this.#crls.map(({ crl, file }) => ({
      file,
      issuer: formatRdnSequence(crl.issuer),
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
      crlNumber: crl.crlNumber?.toString(10),
      revoked: crl.revoked.size,
    }));
  }

  check(certificate: X509Certificate, options: { at?: Date; intermediates?: readonly X509Certificate[] } = {}): void {
    this.#reloadIfChanged();
    const at = options.at ?? this.#now();
    const path = this.#pathOf(certificate, options.intermediates ?? []);
    for (const link of path.links) this.#checkLink(link, at);
    if (path.unknownIssuer !== undefined) {
      const { certificate: orphan, issuerLabel } = path.unknownIssuer;
      this.#unknown('CRL_ISSUER_UNKNOWN', orphan, `the issuer of certificate ${certificateSerial(orphan).toString(10)} (${issuerLabel}) is not among the configured CA certificates`);
    }
  }

  /**
   * The certification path above `certificate` (each certificate with its issuer's key and name)
   * up to the self-signed root. Built once per certificate and kept: building it costs an RSA
   * verification per link, the CRL lookup afterwards only a map access.
   */
  #pathOf(certificate: X509Certificate, intermediates: readonly X509Certificate[]): CertificationPath {
    const key = [certificate, ...intermediates].map((c) => c.fingerprint256).join('|');
    const cached = this.#paths.get(key);
    if (cached !== undefined) return cached;
    const candidates = [...this.#issuers, ...intermediates];
    const links: PathLink[] = [];
    let unknownIssuer: CertificationPath['unknownIssuer'];
    let current = certificate;
    for (let depth = 0; depth < MAX_PATH && !isSelfSigned(current); depth += 1) {
      const issuerName = certificateNames(current).issuer;
      const issuer = candidates.find((c) => namesEqual(certificateNames(c).subject, issuerName) && current.verify(c.publicKey));
      if (issuer === undefined) {
        unknownIssuer = { certificate: current, issuerLabel: formatRdnSequence(issuerName) };
        break;
      }
      links.push({ certificate: current, serial: certificateSerial(current), isCa: current.ca, issuerKey: spki(issuer), issuerName, issuerLabel: formatRdnSequence(issuerName) });
      current = issuer;
    }
    const path: CertificationPath = unknownIssuer === undefined ? { links } : { links, unknownIssuer };
    if (this.#paths.size >= MAX_CACHED_PATHS) this.#paths.clear();
    this.#paths.set(key, path);
    return path;
  }

  #checkLink(link: PathLink, at: Date): void {
    let newest: LoadedCrl | undefined;
    for (const loaded of this.#crls) {
      if (loaded.issuerKey !== link.issuerKey || !namesEqual(loaded.crl.issuer, link.issuerName)) continue;
      if (loaded.crl.scope !== 'all' && (loaded.crl.scope === 'ca') !== link.isCa) continue;
      if (newest === undefined || loaded.crl.thisUpdate > newest.crl.thisUpdate) newest = loaded;
    }
    if (newest === undefined) {
      this.#unknown('CRL_MISSING', link.certificate, `no configured CRL is issued by ${link.issuerLabel}`);
      return;
    }
    // A listed serial is revoked whatever the CRL's age: revocation is not undone (removeFromCRL
    // exists only in delta CRLs, which are refused).
    const entry = newest.crl.revoked.get(link.serial);
    if (entry !== undefined) throw new CertificateRevokedError(link.certificate, entry.revokedAt, entry.reason);
    if (at.getTime() > newest.crl.nextUpdate.getTime()) {
      this.#unknown('CRL_EXPIRED', link.certificate, `the CRL of ${link.issuerLabel} in ${newest.file} expired at ${newest.crl.nextUpdate.toISOString()} (nextUpdate); refresh the file`, { file: newest.file, nextUpdate: newest.crl.nextUpdate.toISOString() });
    } else if (newest.crl.thisUpdate.getTime() > at.getTime() + CLOCK_SKEW_MS) {
      this.#unknown('CRL_NOT_YET_VALID', link.certificate, `the CRL of ${link.issuerLabel} in ${newest.file} is valid from ${newest.crl.thisUpdate.toISOString()} (thisUpdate); check the clock`, { file: newest.file, thisUpdate: newest.crl.thisUpdate.toISOString() });
    }
  }

  /** Refuses (`require`) or logs and accepts (`warn`) a certificate whose status is unknown. */
  #unknown(code: RevocationUnknownCode, certificate: X509Certificate, message: string, facts: Readonly<Record<string, unknown>> = {}): void {
    const details = { ...facts, serial: certificateSerial(certificate).toString(10), policy: this.#policy };
    const file = typeof facts['file'] === 'string' ? facts['file'] : '';
    const once = `${code}|${details.serial}|${file}`;
    const first = !this.#logged.has(once);
    this.#logged.add(once);
    if (this.#policy === 'require') {
      if (first) this.#logger?.error({ code, ...details }, `revocation status unknown, certificate refused: ${message}`);
      throw new RevocationUnknownError(code, message, details);
    }
    if (first) this.#logger?.warn({ code, ...details }, `revocation status unknown, certificate accepted (SELO_REVOCATION=warn): ${message}`);
  }

  #stamp(): string {
    return this.#files.map((file) => {
      try {
        const stat = statSync(file);
        return `${file}:${stat.mtimeMs}:${stat.size}:${stat.ino}`;
      } catch {
        return `${file}:missing`;
      }
    }).join('|');
  }

  #reloadIfChanged(): void {
    const now = Date.now();
    if (now - this.#lastStat < this.#recheckMs) return;
    this.#lastStat = now;
    const stamp = this.#stamp();
    if (stamp === this.#fileStamp) return;
    this.#fileStamp = stamp;
    try {
      this.#crls = this.#load();
      this.#logged.clear();
      this.#logger?.info({ crls: this.status() }, 'CRL files changed: reloaded');
    } catch (error) {
      this.#logger?.error({ code: 'CRL_INVALID', files: this.#files, reason: error instanceof Error ? error.message : String(error) }, 'CRL files changed but cannot be used: the previous CRLs stay in force');
    }
  }

  #load(): LoadedCrl[] {
    const loaded: LoadedCrl[] = [];
    for (const file of this.#files) {
      let crls: CertificateRevocationList[];
      try {
        crls = parseCrls(readFileSync(file));
      } catch (error) {
        const why = error instanceof CrlFormatError ? error.message : `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
        throw new CrlInvalidError(`CRL file ${file}: ${why}`, { cause: error });
      }
      for (const crl of crls) {
        const issuer = this.#issuers.find((c) => namesEqual(certificateNames(c).subject, crl.issuer) && verifyCrlSignature(crl, c.publicKey));
        if (issuer === undefined) {
          throw new CrlInvalidError(`CRL file ${file}: the CRL of ${formatRdnSequence(crl.issuer)} is signed by none of the configured CA certificates (wrong issuer, another key, or an unsupported algorithm ${crl.signatureAlgorithm})`);
        }
        loaded.push({ crl, file, issuerKey: spki(issuer) });
      }
    }
    return loaded;
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM text (a CA bundle). */
export function parseCertificateBundle(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERTIFICATE) ?? []).map((block) => new X509Certificate(block));
}

/**
 * The revocation checker `config` asks for, or undefined when revocation is `off`. CA
 * certificates come from `config.issuersPath` and `extraIssuersPem` (for TLS, the pinned BCB CA).
 *
 * @throws {@link CrlInvalidError} when a CRL or the issuers file cannot be used.
 */
export function createRevocationChecker(
  config: RevocationConfig,
  options: { extraIssuersPem?: string | Buffer; logger?: RevocationLogger } = {},
): CrlRevocationChecker | undefined {
  if (config.policy === 'off') return undefined;
  const issuers: X509Certificate[] = [];
  try {
    // Like SELO_BCB_CA, the variable may hold the PEM itself (an ECS secret) instead of a path.
    const issuersPath = config.issuersPath;
    if (issuersPath !== undefined) issuers.push(...parseCertificateBundle(issuersPath.trimStart().startsWith('-----BEGIN') ? issuersPath : readFileSync(issuersPath, 'utf8')));
    if (options.extraIssuersPem !== undefined) issuers.push(...parseCertificateBundle(options.extraIssuersPem.toString()));
  } catch (error) {
    throw new CrlInvalidError(`the CA certificates for the CRLs (SELO_BCB_CRL_ISSUERS) cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (issuers.length === 0) throw new CrlInvalidError('no CA certificate found to verify the CRLs (SELO_BCB_CRL_ISSUERS, SELO_BCB_CA)');
  return new CrlRevocationChecker({ files: config.crlFiles, issuers, policy: config.policy, ...(options.logger === undefined ? {} : { logger: options.logger }) });
}
