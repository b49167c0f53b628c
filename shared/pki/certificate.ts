import { createHash, randomBytes, sign as cryptoSign, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  derBitString, derBoolean, derChildren, derExplicit, derImplicitPrimitive, derInteger, derNull, derOctetString, derOid, derRead,
  derSequence, derTime, derTlv,
} from './der.ts';
import { encodeName } from './name.ts';
import type { DistinguishedName } from './name.ts';

/**
 * Produces an RSA PKCS#1 v1.5 SHA-256 signature (`sha256WithRSAEncryption`) over the
 * to-be-signed bytes. Pluggable so the key can live in an HSM (`pool.sign(tbs, keyRef)` does
 * exactly this with `CKM_SHA256_RSA_PKCS`) or in memory ({@link softwareSigner}).
 */
export type Signer = (tbs: Buffer) => Promise<Buffer>;

/** A {@link Signer} over an in-memory private key. */
export function softwareSigner(privateKey: KeyObject): Signer {
  return (tbs) => Promise.resolve(cryptoSign('sha256', tbs, privateKey));
}

/** `keyUsage` bits (RFC 5280 §4.2.1.3). */
export type KeyUsage = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

/** `extKeyUsage` purposes (RFC 5280 §4.2.1.12). */
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'emailProtection';

/** Subject alternative names. */
export interface SubjectAltNames {
  /** dNSName entries. */
  dns?: string[];
  /** iPAddress entries (IPv4 or IPv6). */
  ip?: string[];
}

/** Options of {@link buildCertificate}. */
export interface CertificateOptions {
  /** Subject DN, in encoding order. */
  subject: DistinguishedName;
  /** Issuer DN; the subject for a self-signed certificate. */
  issuer: DistinguishedName;
  /** The subject's public key (RSA). */
  subjectPublicKey: KeyObject;
  /**
   * The issuer's public key, for the authority key identifier and a check of the signature.
   * @defaultValue `subjectPublicKey` (self-signed)
   */
  issuerPublicKey?: KeyObject;
  /** Signs the TBSCertificate with the issuer's key. */
  signer: Signer;
  /**
   * Serial number (positive).
   * @defaultValue 16 random bytes (RFC 5280 §4.1.2.2 allows up to 20 octets)
   */
  serialNumber?: bigint;
  /**
   * Start of validity.
   * @defaultValue five minutes ago (tolerates clock skew)
   */
  notBefore?: Date;
  /**
   * End of validity.
   * @defaultValue `notBefore` + 365 days
   */
  notAfter?: Date;
  /**
   * Whether the subject is a CA (`basicConstraints cA`, critical).
   * @defaultValue false
   */
  ca?: boolean;
  /**
   * `keyUsage` (critical).
   * @defaultValue `keyCertSign, cRLSign` for a CA, `digitalSignature` otherwise
   */
  keyUsage?: KeyUsage[];
  /** `extKeyUsage`, omitted when empty. */
  extendedKeyUsage?: ExtendedKeyUsage[];
  /** `subjectAltName`, omitted when empty. */
  subjectAltNames?: SubjectAltNames;
  /** `cRLDistributionPoints` URIs (RFC 5280 §4.2.1.13), omitted when empty. */
  crlDistributionPoints?: readonly string[];
}

/** A built certificate in its three usual shapes. */
export interface BuiltCertificate {
  /** DER bytes. */
  der: Buffer;
  /** PEM text. */
  pem: string;
  /** Parsed by node:crypto. */
  certificate: X509Certificate;
}

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const KEY_USAGE_BITS: Readonly<Record<KeyUsage, number>> = {
  digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6,
};
const EKU_OIDS: Readonly<Record<ExtendedKeyUsage, string>> = {
  serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2', codeSigning: '1.3.6.1.5.5.7.3.3', emailProtection: '1.3.6.1.5.5.7.3.4',
};

/** `AlgorithmIdentifier` of sha256WithRSAEncryption (RFC 4055: parameters NULL). */
export function sha256WithRsaAlgorithm(): Buffer {
  return derSequence(derOid(SHA256_WITH_RSA), derNull());
}

/** DER SubjectPublicKeyInfo of a public key. */
export function subjectPublicKeyInfo(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

/** The key identifier RFC 5280 §4.2.1.2 method 1 describes: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const [, bits] = derChildren(derRead(subjectPublicKeyInfo(publicKey)).content);
  if (bits === undefined) throw new RangeError('bad SubjectPublicKeyInfo');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? derSequence(derOid(oid), derBoolean(true), derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));
}

function keyUsageBits(usages: readonly KeyUsage[]): Buffer {
  let byte = 0;
  for (const usage of usages) byte |= 0x80 >> KEY_USAGE_BITS[usage];
  let unused = 0;
  while (unused < 7 && (byte & (1 << unused)) === 0) unused += 1;
  return derBitString(Buffer.from([byte]), unused);
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family === 6) {
    const [head = '', tail = ''] = ip.split('::');
    const headParts = head === '' ? [] : head.split(':');
    const tailParts = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
    const groups = [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill('0'), ...tailParts];
    return Buffer.from(groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 0xff]; }));
  }
  throw new RangeError(`not an IP address: ${JSON.stringify(ip)}`);
}

/** Builds the `Extensions` SEQUENCE shared by certificates and certification requests. */
export function buildExtensions(options: {
  ca: boolean;
  keyUsage: readonly KeyUsage[];
  extendedKeyUsage?: readonly ExtendedKeyUsage[];
  subjectAltNames?: SubjectAltNames;
  subjectKeyIdentifier?: Buffer;
  authorityKeyIdentifier?: Buffer;
  crlDistributionPoints?: readonly string[];
}): Buffer[] {
  const extensions: Buffer[] = [
    extension('2.5.29.19', true, options.ca ? derSequence(derBoolean(true)) : derSequence()),
  ];
  if (options.keyUsage.length > 0) extensions.push(extension('2.5.29.15', true, keyUsageBits(options.keyUsage)));
  if (options.extendedKeyUsage !== undefined && options.extendedKeyUsage.length > 0) {
    extensions.push(extension('2.5.29.37', false, derSequence(...options.extendedKeyUsage.map((eku) => derOid(EKU_OIDS[eku])))));
  }
  const names = [
    ...(options.subjectAltNames?.dns ?? []).map((dns) => derImplicitPrimitive(2, Buffer.from(dns, 'latin1'))),
    ...(options.subjectAltNames?.ip ?? []).map((ip) => derImplicitPrimitive(7, ipBytes(ip))),
  ];
  if (names.length > 0) extensions.push(extension('2.5.29.17', false, derSequence(...names)));
  if (options.crlDistributionPoints !== undefined && options.crlDistributionPoints.length > 0) {
    // DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
    const points = options.crlDistributionPoints.map((uri) => derSequence(derExplicit(0, derExplicit(0, derImplicitPrimitive(6, Buffer.from(uri, 'latin1'))))));
    extensions.push(extension('2.5.29.31', false, derSequence(...points)));
  }
  if (options.subjectKeyIdentifier !== undefined) extensions.push(extension('2.5.29.14', false, derOctetString(options.subjectKeyIdentifier)));
  if (options.authorityKeyIdentifier !== undefined) {
    extensions.push(extension('2.5.29.35', false, derSequence(derImplicitPrimitive(0, options.authorityKeyIdentifier))));
  }
  return extensions;
}

/** PEM armour. */
export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Builds and signs an X.509 v3 certificate (RFC 5280) with sha256WithRSAEncryption. The
 * signature is checked against `issuerPublicKey` before returning, so a signer holding the
 * wrong key fails here rather than in a peer's TLS stack.
 */
export async function buildCertificate(options: CertificateOptions): Promise<BuiltCertificate> {
  const ca = options.ca ?? false;
  const issuerPublicKey = options.issuerPublicKey ?? options.subjectPublicKey;
  const serial = options.serialNumber ?? BigInt(`0x${randomBytes(16).toString('hex')}`) | 1n;
  if (serial <= 0n) throw new RangeError('serialNumber must be positive');
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 365 * 86_400_000);
  const extensions = buildExtensions({
    ca,
    keyUsage: options.keyUsage ?? (ca ? ['keyCertSign', 'cRLSign'] : ['digitalSignature']),
    ...(options.extendedKeyUsage === undefined ? {} : { extendedKeyUsage: options.extendedKeyUsage }),
    ...(options.subjectAltNames === undefined ? {} : { subjectAltNames: options.subjectAltNames }),
    ...(options.crlDistributionPoints === undefined ? {} : { crlDistributionPoints: options.crlDistributionPoints }),
    subjectKeyIdentifier: keyIdentifier(options.subjectPublicKey),
    authorityKeyIdentifier: keyIdentifier(issuerPublicKey),
  });
  const tbs = derSequence(
    derExplicit(0, derInteger(2)),
    derInteger(serial),
    sha256WithRsaAlgorithm(),
    encodeName(options.issuer),
    derSequence(derTime(notBefore), derTime(notAfter)),
    encodeName(options.subject),
    subjectPublicKeyInfo(options.subjectPublicKey),
    derExplicit(3, derSequence(...extensions)),
  );
  const signature = await options.signer(tbs);
  if (!cryptoVerify('sha256', tbs, issuerPublicKey, signature)) {
    throw new Error('buildCertificate: the signer did not produce a valid signature for the issuer public key');
  }
  const der = derSequence(tbs, sha256WithRsaAlgorithm(), derBitString(signature));
  return { der, pem: toPem('CERTIFICATE', der), certificate: new X509Certificate(der) };
}

/** Options of {@link buildCertificationRequest}. */
export interface CertificationRequestOptions {
  /** Subject DN, in encoding order. */
  subject: DistinguishedName;
  /** The public key to certify. */
  publicKey: KeyObject;
  /** Signs the CertificationRequestInfo with the matching private key (e.g. inside the HSM). */
  signer: Signer;
  /** Requested `keyUsage`; no extension request when neither this nor the others is given. */
  keyUsage?: KeyUsage[];
  /** Requested `extKeyUsage`. */
  extendedKeyUsage?: ExtendedKeyUsage[];
  /** Requested subject alternative names. */
  subjectAltNames?: SubjectAltNames;
}

/** A built PKCS#10 request. */
export interface BuiltCertificationRequest {
  /** DER bytes. */
  der: Buffer;
  /** PEM text (`CERTIFICATE REQUEST`). */
  pem: string;
}

/**
 * Builds a PKCS#10 certification request (RFC 2986) signed with sha256WithRSAEncryption, e.g.
 * for ICP-Brasil issuance of a key held in the HSM. The proof-of-possession signature is
 * checked against `publicKey` before returning.
 */
export async function buildCertificationRequest(options: CertificationRequestOptions): Promise<BuiltCertificationRequest> {
  const wantsExtensions = (options.keyUsage?.length ?? 0) > 0 || (options.extendedKeyUsage?.length ?? 0) > 0
    || (options.subjectAltNames?.dns?.length ?? 0) + (options.subjectAltNames?.ip?.length ?? 0) > 0;
  let attributes: Buffer = Buffer.alloc(0);
  if (wantsExtensions) {
    const extensions = buildExtensions({
      ca: false,
      keyUsage: options.keyUsage ?? [],
      ...(options.extendedKeyUsage === undefined ? {} : { extendedKeyUsage: options.extendedKeyUsage }),
      ...(options.subjectAltNames === undefined ? {} : { subjectAltNames: options.subjectAltNames }),
    });
    // extensionRequest (PKCS#9, 1.2.840.113549.1.9.14): SET { Extensions }.
    attributes = derSequence(derOid('1.2.840.113549.1.9.14'), derTlv(0x31, derSequence(...extensions)));
  }
  const info = derSequence(
    derInteger(0),
    encodeName(options.subject),
    subjectPublicKeyInfo(options.publicKey),
    derTlv(0xa0, attributes),
  );
  const signature = await options.signer(info);
  if (!cryptoVerify('sha256', info, options.publicKey, signature)) {
    throw new Error('buildCertificationRequest: the signer did not produce a valid signature for the public key');
  }
  const der = derSequence(info, sha256WithRsaAlgorithm(), derBitString(signature));
  return { der, pem: toPem('CERTIFICATE REQUEST', der) };
}
