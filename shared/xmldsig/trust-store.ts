import { X509Certificate } from 'node:crypto';
import type { RevocationChecker } from '../pki/revocation.ts';
import { certificateNames, certificateSerial, namesEqual } from './distinguished-name.ts';
import type { DistinguishedName } from './distinguished-name.ts';

/** A certificate the verifier trusts, optionally bound to the ISPB allowed to sign with it. */
export interface TrustedCertificate {
  readonly certificate: X509Certificate;
  /** When set, a SPI message signed with this certificate must come from this ISPB (`AppHdr/Fr`). */
  readonly ispb: string | undefined;
  readonly issuer: DistinguishedName;
  readonly subject: DistinguishedName;
  readonly serial: bigint;
}

/** Options of {@link TrustStore.add}. */
export interface TrustOptions {
  /** Binds the certificate to one participant (8 characters, `[0-9A-Z]`). @defaultValue unbound */
  ispb?: string;
}

/** Options of {@link TrustStore}. */
export interface TrustStoreOptions {
  /**
   * Checks a signer's certificate against its issuer's CRL once its signature verified; a
   * revoked signer is refused with `CERTIFICATE_REVOKED`.
   * @defaultValue no revocation check (validity dates only)
   */
  revocation?: RevocationChecker;
}

/**
 * The certificates whose signatures selo accepts. The verifier looks a signer up here by issuer
 * name (compared as a name) and serial number; certificates embedded in messages are never used.
 */
export class TrustStore {
  private readonly bySerial = new Map<bigint, TrustedCertificate[]>();
  /** The revocation check applied to every signer, when configured. */
  readonly revocation: RevocationChecker | undefined;

  constructor(options: TrustStoreOptions = {}) {
    this.revocation = options.revocation;
  }

  /** Adds a certificate (PEM, DER or parsed), optionally bound to an ISPB. */
  add(certificate: X509Certificate | string | Buffer, options: TrustOptions = {}): TrustedCertificate {
    if (options.ispb !== undefined && !/^[0-9A-Z]{8}$/.test(options.ispb)) {
      throw new RangeError(`TrustOptions.ispb must be 8 characters [0-9A-Z], got ${JSON.stringify(options.ispb)}`);
    }
    const cert = certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
    const { issuer, subject } = certificateNames(cert);
    const entry: TrustedCertificate = { certificate: cert, ispb: options.ispb, issuer, subject, serial: certificateSerial(cert) };
    const list = this.bySerial.get(entry.serial) ?? [];
    const existing = list.findIndex((e) => namesEqual(e.issuer, issuer));
    if (existing >= 0) list[existing] = entry;
    else list.push(entry);
    this.bySerial.set(entry.serial, list);
    return entry;
  }

  /** The trusted certificate with this issuer and serial, if any. */
  find(issuer: DistinguishedName, serial: bigint): TrustedCertificate | undefined {
    return this.bySerial.get(serial)?.find((entry) => namesEqual(entry.issuer, issuer));
  }

  /** How many certificates are trusted. */
  get size(): number {
    let count = 0;
    for (const list of this.bySerial.values()) count += list.length;
    return count;
  }
}
