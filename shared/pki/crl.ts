import { verify as cryptoVerify } from 'node:crypto';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { keyIdentifier, sha256WithRsaAlgorithm, toPem } from './certificate.ts';
import type { Signer } from './certificate.ts';
import {
  derBitString, derChildren, derDecodeOid, derExplicit, derImplicitPrimitive, derInteger, derOctetString, derOid, derRead,
  derSequence, derTime, derTlv,
} from './der.ts';
import type { DerElement } from './der.ts';
import { certificateSubjectDer, readRdnSequence } from './name.ts';
import type { RdnSequence } from './name.ts';

/** Why a CRL cannot be used: unreadable, badly signed, or using a feature selo does not implement. */
export class CrlFormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CrlFormatError';
  }
}

/** CRLReason (RFC 5280 §5.3.1); `unspecified` when the entry carries no reason code. */
export type CrlReason =
  | 'unspecified' | 'keyCompromise' | 'cACompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation'
  | 'certificateHold' | 'removeFromCRL' | 'privilegeWithdrawn' | 'aACompromise';

const REASONS: readonly (CrlReason | undefined)[] = [
  'unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold',
  undefined, 'removeFromCRL', 'privilegeWithdrawn', 'aACompromise',
];

/** One revoked certificate of a CRL. */
export interface RevokedEntry {
  /** When the CA revoked it (`revocationDate`). */
  readonly revokedAt: Date;
  /** `reasonCode` entry extension. */
  readonly reason: CrlReason;
}

/** A parsed X.509 v2 CRL (RFC 5280 §5). Its signature is checked separately, by {@link verifyCrlSignature}. */
export interface CertificateRevocationList {
  /** The whole CRL, DER. */
  readonly der: Buffer;
  /** The issuer Name as an RDN sequence (compared as a name, RFC 5280 §7.1). */
  readonly issuer: RdnSequence;
  /** `thisUpdate`. */
  readonly thisUpdate: Date;
  /** `nextUpdate`; RFC 5280 §5.1.2.5 requires it, so a CRL without one is refused at parse time. */
  readonly nextUpdate: Date;
  /** `cRLNumber` (RFC 5280 §5.2.3), when present. */
  readonly crlNumber: bigint | undefined;
  /** `authorityKeyIdentifier` keyIdentifier, when present. */
  readonly authorityKeyIdentifier: Buffer | undefined;
  /** Scope from `issuingDistributionPoint` (RFC 5280 §5.2.5): which certificates this CRL covers. */
  readonly scope: 'all' | 'end-entity' | 'ca';
  /** Revoked serial numbers. */
  readonly revoked: ReadonlyMap<bigint, RevokedEntry>;
  /** The signed bytes (`tbsCertList`). */
  readonly tbs: Buffer;
  /** Dotted OID of the signature algorithm. */
  readonly signatureAlgorithm: string;
  /** The signature bits. */
  readonly signature: Buffer;
}

// The DER of the reasonCode OID (2.5.29.21), compared as bytes: a CRL has many entries.
const REASON_CODE_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x15]);

const OID = {
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  invalidityDate: '2.5.29.24',
  certificateIssuer: '2.5.29.29',
  crlDistributionPoints: '2.5.29.31',
} as const;

/** Signature algorithms accepted on a CRL: RSA PKCS#1 v1.5 and ECDSA with SHA-2 (SHA-1 is refused). */
const SIGNATURE_HASHES: ReadonlyMap<string, { hash: string; ecdsa: boolean }> = new Map([
  ['1.2.840.113549.1.1.11', { hash: 'sha256', ecdsa: false }],
  ['1.2.840.113549.1.1.12', { hash: 'sha384', ecdsa: false }],
  ['1.2.840.113549.1.1.13', { hash: 'sha512', ecdsa: false }],
  ['1.2.840.10045.4.3.2', { hash: 'sha256', ecdsa: true }],
  ['1.2.840.10045.4.3.3', { hash: 'sha384', ecdsa: true }],
  ['1.2.840.10045.4.3.4', { hash: 'sha512', ecdsa: true }],
]);

function fail(message: string): never {
  throw new CrlFormatError(message);
}

function digits(bytes: Buffer, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i += 1) {
    const d = (bytes[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    value = value * 10 + d;
  }
  return value;
}

/** The time in `bytes[start, end)` with DER tag `tag` (UTCTime 0x17 or GeneralizedTime 0x18). */
function timeIn(bytes: Buffer, tag: number, start: number, end: number): Date {
  const length = end - start;
  const utc = tag === 0x17 && length === 13;
  const generalized = tag === 0x18 && length === 15;
  if ((!utc && !generalized) || bytes[end - 1] !== 0x5a) fail(`bad time ${JSON.stringify(bytes.toString('latin1', start, end))}`);
  let year: number;
  let at: number;
  if (utc) {
    const yy = digits(bytes, start, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at = start + 2;
  } else {
    year = digits(bytes, start, 4);
    at = start + 4;
  }
  const time = Date.UTC(year, digits(bytes, at, 2) - 1, digits(bytes, at + 2, 2), digits(bytes, at + 4, 2), digits(bytes, at + 6, 2), digits(bytes, at + 8, 2));
  if (Number.isNaN(time)) fail(`bad time ${JSON.stringify(bytes.toString('latin1', start, end))}`);
  return new Date(time);
}

/**
 * UTCTime or GeneralizedTime in the forms RFC 5280 §4.1.2.5 allows (`Z`, whole seconds), read
 * digit by digit: a CRL of an ICP-Brasil AC holds tens of thousands of them.
 */
export function derDecodeTime(element: DerElement): Date {
  return timeIn(element.content, element.tag, 0, element.content.length);
}

/** A DER INTEGER's content as an unsigned integer (how node:crypto reports serial numbers). */
function unsignedInteger(element: DerElement): bigint {
  if (element.tag !== 0x02 || element.content.length === 0) fail('expected an INTEGER');
  return BigInt(`0x${element.content.toString('hex')}`);
}

interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

function readExtensions(sequence: DerElement): Extension[] {
  return derChildren(sequence.content).map((ext) => {
    const parts = derChildren(ext.content);
    const [oid, second, third] = parts;
    if (oid?.tag !== 0x06) fail('bad extension');
    const critical = second?.tag === 0x01 ? second.content[0] !== 0 : false;
    const value = second?.tag === 0x01 ? third : second;
    if (value?.tag !== 0x04) fail('bad extension value');
    return { oid: derDecodeOid(oid.content), critical, value: value.content };
  });
}

/** The scope flags of an `issuingDistributionPoint`; indirect, reason-partitioned or attribute CRLs are refused. */
function readIssuingDistributionPoint(value: Buffer): CertificateRevocationList['scope'] {
  let scope: CertificateRevocationList['scope'] = 'all';
  for (const field of derChildren(derRead(value).content)) {
    const flag = field.content[0] !== 0;
    if (field.tag === 0x81 && flag) scope = 'end-entity';
    else if (field.tag === 0x82 && flag) scope = 'ca';
    else if (field.tag === 0xa3 || (field.tag === 0x84 && flag) || (field.tag === 0x85 && flag)) {
      fail('the CRL is partitioned by reason, indirect or for attribute certificates (issuingDistributionPoint); selo reads complete CRLs only');
    }
  }
  return scope;
}

/** A TLV's position in a buffer, read without copying (a CRL's entries are tens of thousands). */
interface Span {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
}

function spanAt(bytes: Buffer, offset: number, limit: number, span: Span): Span {
  const tag = bytes[offset];
  const first = bytes[offset + 1];
  if (tag === undefined || first === undefined || offset + 2 > limit) fail('truncated entry');
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) fail('unsupported length in an entry');
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + (bytes[offset + 2 + i] ?? fail('truncated entry'));
    header += count;
  }
  span.tag = tag;
  span.start = offset + header;
  span.end = span.start + length;
  if (span.end > limit) fail('truncated entry');
  return span;
}

/**
 * The `revokedCertificates` entries, read by offset: serial, revocation date, and the
 * `reasonCode` entry extension; an unknown critical entry extension (certificateIssuer, i.e. an
 * indirect CRL) refuses the CRL.
 */
function readEntries(sequence: DerElement): Map<bigint, RevokedEntry> {
  const revoked = new Map<bigint, RevokedEntry>();
  const bytes = sequence.content;
  const entry: Span = { tag: 0, start: 0, end: 0 };
  const field: Span = { tag: 0, start: 0, end: 0 };
  const ext: Span = { tag: 0, start: 0, end: 0 };
  const part: Span = { tag: 0, start: 0, end: 0 };
  for (let offset = 0; offset < bytes.length; offset = entry.end) {
    spanAt(bytes, offset, bytes.length, entry);
    if (entry.tag !== 0x30) fail('bad revokedCertificates entry');
    if (spanAt(bytes, entry.start, entry.end, field).tag !== 0x02 || field.end === field.start) fail('bad serial number in an entry');
    const serial = BigInt(`0x${bytes.toString('hex', field.start, field.end)}`);
    spanAt(bytes, field.end, entry.end, field);
    const revokedAt = timeIn(bytes, field.tag, field.start, field.end);
    let reason: CrlReason = 'unspecified';
    if (field.end < entry.end) {
      if (spanAt(bytes, field.end, entry.end, field).tag !== 0x30) fail('bad entry extensions');
      for (let at = field.start; at < field.end; at = ext.end) {
        spanAt(bytes, at, field.end, ext);
        spanAt(bytes, ext.start, ext.end, part);
        const oid = bytes.subarray(ext.start, part.end);
        spanAt(bytes, part.end, ext.end, part);
        const critical = part.tag === 0x01 && bytes[part.start] !== 0;
        if (part.tag === 0x01) spanAt(bytes, part.end, ext.end, part);
        if (part.tag !== 0x04) fail('bad entry extension');
        if (oid.equals(REASON_CODE_OID)) {
          const code = derRead(bytes.subarray(part.start, part.end));
          reason = (code.tag === 0x0a ? REASONS[code.content[0] ?? 0] : undefined) ?? fail('bad reasonCode');
        } else if (critical) {
          // certificateIssuer (indirect CRL) is always critical: an entry may then name another CA's certificate.
          fail(`critical entry extension ${derDecodeOid(oid.subarray(2))} is not supported (indirect CRL?)`);
        }
      }
    }
    revoked.set(serial, { revokedAt, reason });
  }
  return revoked;
}

function parseDer(der: Buffer): CertificateRevocationList {
  const outer = derRead(der);
  if (outer.tag !== 0x30 || outer.raw.length !== der.length) fail('not a DER CertificateList');
  const [tbs, algorithm, signature, extra] = derChildren(outer.content);
  if (tbs?.tag !== 0x30 || algorithm?.tag !== 0x30 || signature?.tag !== 0x03 || extra !== undefined) fail('not a CertificateList');
  const fields = derChildren(tbs.content);
  let i = 0;
  if (fields[i]?.tag === 0x02) {
    if (unsignedInteger(fields[i] as DerElement) !== 1n) fail('unsupported CRL version');
    i += 1;
  }
  const innerAlgorithm = fields[i++];
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (innerAlgorithm === undefined || !innerAlgorithm.raw.equals(algorithm.raw)) fail('tbsCertList.signature differs from signatureAlgorithm (RFC 5280 §5.1.1.2)');
  if (issuer?.tag !== 0x30 || thisUpdate === undefined) fail('bad tbsCertList');
  let nextUpdate: Date | undefined;
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) nextUpdate = derDecodeTime(fields[i++] as DerElement);
  let revoked = new Map<bigint, RevokedEntry>();
  if (fields[i]?.tag === 0x30) revoked = readEntries(fields[i++] as DerElement);
  let crlNumber: bigint | undefined;
  let authorityKeyIdentifier: Buffer | undefined;
  let scope: CertificateRevocationList['scope'] = 'all';
  if (fields[i]?.tag === 0xa0) {
    const wrapped = derRead((fields[i++] as DerElement).content);
    for (const ext of readExtensions(wrapped)) {
      if (ext.oid === OID.crlNumber) crlNumber = unsignedInteger(derRead(ext.value));
      else if (ext.oid === OID.authorityKeyIdentifier) {
        authorityKeyIdentifier = derChildren(derRead(ext.value).content).find((part) => part.tag === 0x80)?.content;
      } else if (ext.oid === OID.issuingDistributionPoint) scope = readIssuingDistributionPoint(ext.value);
      else if (ext.oid === OID.deltaCrlIndicator) fail('delta CRLs are not supported; configure the complete CRL');
      else if (ext.critical) fail(`critical CRL extension ${ext.oid} is not supported`);
    }
  }
  if (i !== fields.length) fail('unexpected fields in tbsCertList');
  // RFC 5280 §5.1.2.5: conforming CAs MUST include nextUpdate; without it freshness cannot be judged.
  if (nextUpdate === undefined) fail('the CRL has no nextUpdate');
  const algorithmOid = derChildren(algorithm.content)[0];
  if (algorithmOid?.tag !== 0x06) fail('bad signatureAlgorithm');
  if (signature.content[0] !== 0) fail('bad signature BIT STRING');
  return {
    der,
    issuer: readRdnSequence(issuer.raw),
    thisUpdate: derDecodeTime(thisUpdate),
    nextUpdate,
    crlNumber,
    authorityKeyIdentifier,
    scope,
    revoked,
    tbs: tbs.raw,
    signatureAlgorithm: derDecodeOid(algorithmOid.content),
    signature: signature.content.subarray(1),
  };
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;

/**
 * Parses one or more CRLs: DER bytes, or PEM text holding one or more `X509 CRL` blocks.
 *
 * @throws {@link CrlFormatError} when the input is neither, or a CRL is malformed or uses a
 *   feature selo does not implement (delta, indirect or reason-partitioned CRLs, an unknown
 *   critical extension).
 */
export function parseCrls(input: Buffer | string): CertificateRevocationList[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const text = bytes.subarray(0, 64).toString('latin1');
  try {
    if (text.includes('-----BEGIN')) {
      const blocks = [...bytes.toString('latin1').matchAll(PEM_CRL)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
      if (blocks.length === 0) fail('PEM without an X509 CRL block');
      return blocks.map(parseDer);
    }
    return [parseDer(bytes)];
  } catch (error) {
    if (error instanceof CrlFormatError) throw error;
    throw new CrlFormatError(`the CRL is not valid DER: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Whether `crl` is signed by the key of `issuer` with an accepted algorithm (SHA-2 RSA or ECDSA). */
export function verifyCrlSignature(crl: CertificateRevocationList, issuerKey: KeyObject): boolean {
  const algorithm = SIGNATURE_HASHES.get(crl.signatureAlgorithm);
  if (algorithm === undefined) return false;
  if (algorithm.ecdsa !== (issuerKey.asymmetricKeyType === 'ec')) return false;
  return cryptoVerify(algorithm.hash, crl.tbs, algorithm.ecdsa ? { key: issuerKey, dsaEncoding: 'der' } : issuerKey, crl.signature);
}

function certificateExtensions(certificate: X509Certificate): Extension[] {
  const [tbs] = derChildren(derRead(certificate.raw).content);
  const wrapped = derChildren(tbs?.content ?? Buffer.alloc(0)).find((field) => field.tag === 0xa3);
  return wrapped === undefined ? [] : readExtensions(derRead(wrapped.content));
}

/**
 * The URIs of the certificate's `cRLDistributionPoints` extension (RFC 5280 §4.2.1.13): where its
 * issuer publishes the CRL that covers it (for ICP-Brasil, e.g. `http://acraiz.icpbrasil.gov.br/LCRacraizv5.crl`
 * for certificates issued by the AC Raiz v5). Empty when the extension is absent.
 */
export function crlDistributionPoints(certificate: X509Certificate): string[] {
  const extension = certificateExtensions(certificate).find((ext) => ext.oid === OID.crlDistributionPoints);
  if (extension === undefined) return [];
  const uris: string[] = [];
  for (const point of derChildren(derRead(extension.value).content)) {
    const name = derChildren(point.content).find((part) => part.tag === 0xa0);
    const fullName = name === undefined ? undefined : derChildren(name.content).find((part) => part.tag === 0xa0);
    for (const general of fullName === undefined ? [] : derChildren(fullName.content)) {
      if (general.tag === 0x86) uris.push(general.content.toString('latin1'));
    }
  }
  return uris;
}

/** One certificate to list as revoked in {@link buildCrl}. */
export interface CrlEntryOptions {
  /** Its serial number. */
  serial: bigint;
  /** When it was revoked. */
  revokedAt: Date;
  /** Reason, written as the `reasonCode` entry extension. @defaultValue no reason code */
  reason?: Exclude<CrlReason, 'unspecified'>;
}

/** Options of {@link buildCrl}. */
export interface CrlOptions {
  /** The issuing CA's certificate: its subject becomes the CRL's issuer, byte for byte. */
  issuer: X509Certificate;
  /** Signs the tbsCertList with the CA's key (sha256WithRSAEncryption). */
  signer: Signer;
  /** Revoked certificates. @defaultValue none */
  revoked?: readonly CrlEntryOptions[];
  /** `thisUpdate`. @defaultValue now */
  thisUpdate?: Date;
  /** `nextUpdate`. @defaultValue `thisUpdate` + 7 days */
  nextUpdate?: Date;
  /** `cRLNumber`. @defaultValue seconds since the epoch of `thisUpdate` (grows with every issue) */
  crlNumber?: bigint;
}

/** A built CRL. */
export interface BuiltCrl {
  der: Buffer;
  pem: string;
  crl: CertificateRevocationList;
}

/**
 * Builds and signs an X.509 v2 CRL (RFC 5280 §5) with the authority key identifier and CRL number
 * extensions, for the development PKI and tests. The signature is checked against the issuer's
 * public key before returning.
 */
export async function buildCrl(options: CrlOptions): Promise<BuiltCrl> {
  const thisUpdate = options.thisUpdate ?? new Date();
  const nextUpdate = options.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * 86_400_000);
  const crlNumber = options.crlNumber ?? BigInt(Math.floor(thisUpdate.getTime() / 1000));
  const entries = (options.revoked ?? []).map((entry) => {
    if (entry.reason !== undefined && (REASONS.indexOf(entry.reason) < 1)) throw new RangeError(`CrlEntryOptions.reason must be a CRLReason of RFC 5280 §5.3.1, got ${JSON.stringify(entry.reason)}`);
    const extensions = entry.reason === undefined
      ? []
      : [derSequence(derSequence(REASON_CODE_OID, derOctetString(derTlv(0x0a, Buffer.from([REASONS.indexOf(entry.reason)])))))];
    return derSequence(derInteger(entry.serial), derTime(entry.revokedAt), ...extensions);
  });
  const extensions = derSequence(
    derSequence(derOid(OID.authorityKeyIdentifier), derOctetString(derSequence(derImplicitPrimitive(0, keyIdentifier(options.issuer.publicKey))))),
    derSequence(derOid(OID.crlNumber), derOctetString(derInteger(crlNumber))),
  );
  const tbs = derSequence(
    derInteger(1),
    sha256WithRsaAlgorithm(),
    certificateSubjectDer(options.issuer),
    derTime(thisUpdate),
    derTime(nextUpdate),
    ...(entries.length === 0 ? [] : [derSequence(...entries)]),
    derExplicit(0, extensions),
  );
  const signature = await options.signer(tbs);
  const der = derSequence(tbs, sha256WithRsaAlgorithm(), derBitString(signature));
  const [crl] = parseCrls(der) as [CertificateRevocationList];
  if (!verifyCrlSignature(crl, options.issuer.publicKey)) throw new Error('buildCrl: the signer did not produce a valid signature for the issuer public key');
  return { der, pem: toPem('X509 CRL', der), crl };
}
