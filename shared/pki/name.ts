import { X509Certificate } from 'node:crypto';
import { ISPB_PATTERN } from '../iso20022/identifiers.ts';
import { derChildren, derDecodeOid, derIa5String, derOid, derPrintableString, derRead, derSequence, derSet, derUtf8String } from './der.ts';

/** One attribute of a distinguished name, e.g. `{ type: 'CN', value: 'selo' }`. */
export interface NameAttribute {
  /** Short name (`CN`, `O`, `OU`, `C`, `L`, `ST`, `serialNumber`, …) or dotted OID. */
  type: string;
  /** The value, unescaped. */
  value: string;
}

/**
 * A distinguished name as an ordered list of single-valued RDNs, **in encoding order** (the
 * most significant first, e.g. `C`, `O`, …, `CN`). RFC 2253 strings list them in reverse.
 */
export type DistinguishedName = readonly NameAttribute[];

const OIDS: Readonly<Record<string, string>> = {
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  STREET: '2.5.4.9',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
  emailAddress: '1.2.840.113549.1.9.1',
};

const NAMES_BY_OID: ReadonlyMap<string, string> = new Map(Object.entries(OIDS).map(([name, oid]) => [oid, name]));

/** Attribute types RFC 2253 §2.3 (and RFC 4514 §3) allow as short names; others print as OIDs. */
const RFC2253_NAMES = new Set(['CN', 'L', 'ST', 'O', 'OU', 'C', 'STREET', 'DC', 'UID']);

function oidOf(type: string): string {
  if (/^\d+(\.\d+)+$/.test(type)) return type;
  const exact = OIDS[type];
  if (exact !== undefined) return exact;
  const folded = Object.keys(OIDS).find((name) => name.toLowerCase() === type.toLowerCase());
  if (folded !== undefined) return OIDS[folded] ?? '';
  throw new RangeError(`unknown distinguished name attribute type ${JSON.stringify(type)}`);
}

function encodeValue(oid: string, value: string): Buffer {
  // X.520: countryName and serialNumber are PrintableString; email and DC are IA5String.
  if (oid === OIDS['C'] || oid === OIDS['serialNumber']) {
    if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)) throw new RangeError(`value ${JSON.stringify(value)} is not a PrintableString`);
    return derPrintableString(value);
  }
  if (oid === OIDS['emailAddress'] || oid === OIDS['DC']) return derIa5String(value);
  return derUtf8String(value);
}

/** DER encoding of a Name (RFC 5280 §4.1.2.4). */
export function encodeName(name: DistinguishedName): Buffer {
  return derSequence(...name.map((attribute) => {
    const oid = oidOf(attribute.type);
    return derSet(derSequence(derOid(oid), encodeValue(oid, attribute.value)));
  }));
}

function escapeRfc2253(value: string): string {
  let escaped = value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
  if (escaped.startsWith('#') || escaped.startsWith(' ')) escaped = `\\${escaped}`;
  if (escaped.endsWith(' ') && !escaped.endsWith('\\ ')) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

/**
 * The RFC 2253 string of a name (most specific RDN first), e.g.
 * `CN=selo PSP,O=Selo Dev,C=BR`. Types outside RFC 2253's table (such as `serialNumber`) are
 * written as `OID=#hex` of the value's DER encoding, as RFC 2253 §2.4 requires.
 */
export function formatRfc2253(name: DistinguishedName): string {
  return [...name].reverse().map((attribute) => {
    const oid = oidOf(attribute.type);
    const short = NAMES_BY_OID.get(oid);
    if (short !== undefined && RFC2253_NAMES.has(short)) return `${short}=${escapeRfc2253(attribute.value)}`;
    return `${oid}=#${encodeValue(oid, attribute.value).toString('hex')}`;
  }).join(',');
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] ?? '';
    if (c === '\\' && i + 1 < text.length) {
      current += c + (text[i + 1] ?? '');
      i += 1;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeRfc2253(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i += 1) {
    const c = value[i] ?? '';
    if (c === '\\') {
      const hex = value.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      const next = value[i + 1] ?? '';
      bytes.push(...Buffer.from(next, 'utf8'));
      i += 1;
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses a subject given as an RFC 2253 string (`CN=x,O=y,C=BR`) or in OpenSSL's slash form
 * (`/C=BR/O=y/CN=x`) into encoding order. Multi-valued RDNs (`+`) are not supported.
 */
export function parseDistinguishedName(text: string): NameAttribute[] {
  const trimmed = text.trim();
  if (trimmed === '') throw new RangeError('empty distinguished name');
  const slashForm = trimmed.startsWith('/');
  const pieces = slashForm ? splitUnescaped(trimmed.slice(1), '/') : splitUnescaped(trimmed, ',').reverse();
  return pieces.map((piece) => {
    if (splitUnescaped(piece, '+').length > 1) throw new RangeError(`multi-valued RDN not supported: ${JSON.stringify(piece)}`);
    const equals = piece.indexOf('=');
    if (equals <= 0) throw new RangeError(`bad RDN ${JSON.stringify(piece)} in ${JSON.stringify(text)}`);
    const type = piece.slice(0, equals).trim();
    const value = unescapeRfc2253(piece.slice(equals + 1).trim());
    oidOf(type);
    const short = NAMES_BY_OID.get(oidOf(type));
    return { type: short ?? type, value };
  });
}

function decodeName(nameDer: Buffer): { attributes: NameAttribute[]; rfc2253: string } {
  const name = derRead(nameDer);
  const attributes: NameAttribute[] = [];
  const rendered: string[] = [];
  for (const rdn of derChildren(name.content)) {
    const parts = derChildren(rdn.content).map((atv) => {
      const [typeEl, valueEl] = derChildren(atv.content);
      if (typeEl === undefined || valueEl === undefined) throw new RangeError('DER: bad AttributeTypeAndValue');
      const oid = derDecodeOid(typeEl.content);
      const short = NAMES_BY_OID.get(oid);
      const text = decodeDirectoryString(valueEl.tag, valueEl.content);
      attributes.push({ type: short ?? oid, value: text });
      return short !== undefined && RFC2253_NAMES.has(short) ? `${short}=${escapeRfc2253(text)}` : `${oid}=#${valueEl.raw.toString('hex')}`;
    });
    rendered.push(parts.join('+'));
  }
  return { attributes, rfc2253: rendered.reverse().join(',') };
}

function tbsNames(certificate: X509Certificate | Buffer): { issuer: Buffer; subject: Buffer } {
  const der = Buffer.isBuffer(certificate) ? certificate : certificate.raw;
  const [tbs] = derChildren(derRead(der).content);
  if (tbs === undefined) throw new RangeError('DER: not a certificate');
  const fields = derChildren(tbs.content);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = fields[offset + 2];
  const subject = fields[offset + 4];
  if (issuer === undefined || subject === undefined) throw new RangeError('DER: not a certificate');
  return { issuer: issuer.raw, subject: subject.raw };
}

/** The certificate's issuer DN as an RFC 2253 string, read from its DER (for `X509IssuerName`). */
export function certificateIssuerRfc2253(certificate: X509Certificate | Buffer): string {
  return decodeName(tbsNames(certificate).issuer).rfc2253;
}

/** The certificate's subject DN as an RFC 2253 string. */
export function certificateSubjectRfc2253(certificate: X509Certificate | Buffer): string {
  return decodeName(tbsNames(certificate).subject).rfc2253;
}

/** The certificate's subject attributes in encoding order. */
export function certificateSubject(certificate: X509Certificate | Buffer): NameAttribute[] {
  return decodeName(tbsNames(certificate).subject).attributes;
}

/** The certificate's serial number in decimal (as `X509SerialNumber` wants it). */
export function certificateSerialDecimal(certificate: X509Certificate): string {
  return BigInt(`0x${certificate.serialNumber}`).toString(10);
}

/**
 * The ISPB a selo certificate belongs to: the subject's `serialNumber` attribute (OID 2.5.4.5),
 * an ISPB (`[0-9A-Z]{8}`, XSD ISPBType). This is selo's development-PKI convention (`selo pki init`);
 * undefined when absent.
 */
export function certificateIspb(certificate: X509Certificate | Buffer): string | undefined {
  const value = certificateSubject(certificate).find((attribute) => attribute.type === 'serialNumber')?.value;
  return value !== undefined && ISPB_PATTERN.test(value) ? value : undefined;
}

/** Parses a PEM or DER certificate. */
export function parseCertificate(certificate: string | Buffer): X509Certificate {
  return new X509Certificate(certificate);
}

// --- Names as RDN sequences (multi-valued RDNs, compared as names): what XML-DSig issuer names need ---

/** One attribute of a relative distinguished name, by OID, e.g. `{ oid: '2.5.4.3', value: 'Selo' }`. */
export interface RdnAttribute {
  /** Dotted OID of the attribute type (`2.5.4.3` for CN). */
  readonly oid: string;
  /** The value as text. */
  readonly value: string;
}

/**
 * A distinguished name as a sequence of RDNs in ASN.1 order (most significant first, `C`
 * before `CN`); each RDN is a set of one or more attributes.
 */
export type RdnSequence = readonly (readonly RdnAttribute[])[];

/** A distinguished name string that could not be parsed. */
export class DistinguishedNameSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DistinguishedNameSyntaxError';
  }
}

/** Type names accepted when parsing (RFC 2253/4514 keywords and the aliases Java, OpenSSL and xmlsec write). */
const PARSE_NAMES: Readonly<Record<string, string>> = {
  CN: '2.5.4.3',
  SN: '2.5.4.4',
  SERIALNUMBER: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  S: '2.5.4.8',
  STREET: '2.5.4.9',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  T: '2.5.4.12',
  TITLE: '2.5.4.12',
  GIVENNAME: '2.5.4.42',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
  E: '1.2.840.113549.1.9.1',
  EMAIL: '1.2.840.113549.1.9.1',
  EMAILADDRESS: '1.2.840.113549.1.9.1',
};

/** The RFC 2253 keyword of an OID, when RFC 2253 §2.3 has one. */
function rfc2253Keyword(oid: string): string | undefined {
  const short = NAMES_BY_OID.get(oid);
  return short !== undefined && RFC2253_NAMES.has(short) ? short : undefined;
}

/** Text of a DirectoryString / PrintableString / IA5String value by its DER tag. */
function decodeDirectoryString(tag: number, bytes: Uint8Array): string {
  switch (tag) {
    case 0x0c: // UTF8String
      return new TextDecoder('utf-8').decode(bytes);
    case 0x1e: {
      // BMPString (UTF-16BE)
      let out = '';
      for (let i = 0; i + 1 < bytes.length; i += 2) out += String.fromCharCode(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
      return out;
    }
    case 0x1c: {
      // UniversalString (UTF-32BE)
      let out = '';
      for (let i = 0; i + 3 < bytes.length; i += 4) {
        out += String.fromCodePoint((((bytes[i] ?? 0) << 24) | ((bytes[i + 1] ?? 0) << 16) | ((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0)) >>> 0);
      }
      return out;
    }
    default: // PrintableString, IA5String, TeletexString, NumericString, VisibleString
      return Buffer.from(bytes).toString('latin1');
  }
}

/** Reads a DER `Name` (RFC 5280 §4.1.2.4) as an RDN sequence, e.g. a CRL's issuer. */
export function readRdnSequence(nameDer: Buffer): RdnSequence {
  return derChildren(derRead(nameDer).content).map((set) =>
    derChildren(set.content).map((atv) => {
      const [typeEl, valueEl] = derChildren(atv.content);
      if (typeEl === undefined || valueEl === undefined) throw new RangeError('DER: bad AttributeTypeAndValue');
      return { oid: derDecodeOid(typeEl.content), value: decodeDirectoryString(valueEl.tag, valueEl.content) };
    }),
  );
}

/** The issuer and subject names of a certificate as RDN sequences, read from its DER encoding. */
export function certificateNames(certificate: X509Certificate | Buffer): { issuer: RdnSequence; subject: RdnSequence } {
  const { issuer, subject } = tbsNames(certificate);
  return { issuer: readRdnSequence(issuer), subject: readRdnSequence(subject) };
}

/** The DER encoding of the certificate's subject Name, byte for byte (a CRL it issues repeats it). */
export function certificateSubjectDer(certificate: X509Certificate | Buffer): Buffer {
  return tbsNames(certificate).subject;
}

/** The certificate's serial number as an integer. */
export function certificateSerial(certificate: X509Certificate): bigint {
  return BigInt(`0x${certificate.serialNumber}`);
}

/**
 * Writes an RDN sequence in RFC 2253 form (least significant RDN first, `CN=…,O=…,C=BR`), the
 * form `X509IssuerName` carries (XML-DSig §4.4.4). Types without an RFC 2253 keyword are written
 * as their dotted OID with the value as escaped text.
 */
export function formatRdnSequence(name: RdnSequence): string {
  return [...name]
    .reverse()
    .map((rdn) => rdn.map((attribute) => `${rfc2253Keyword(attribute.oid) ?? attribute.oid}=${escapeRfc2253(attribute.value)}`).join('+'))
    .join(',');
}

function decodeHexValue(hex: string): string {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new DistinguishedNameSyntaxError('invalid #hex value');
  try {
    const value = derRead(Buffer.from(hex, 'hex'));
    return decodeDirectoryString(value.tag, value.content);
  } catch (error) {
    throw new DistinguishedNameSyntaxError(`invalid #hex value: ${(error as Error).message}`);
  }
}

/**
 * Parses an RFC 2253 (or RFC 4514, or the RFC 1779 variants Java and xmlsec write) name into an
 * RDN sequence. Accepts `,` or `;` between RDNs, `+` inside an RDN, short names, `OID.1.2.3` and
 * dotted OIDs as types, `\`-escapes (`\,` and `\C3\A7`), quoted values and `#hex` values.
 *
 * @throws {@link DistinguishedNameSyntaxError} when the text is not a name.
 */
export function parseRfc2253(text: string): RdnSequence {
  const rdns: RdnAttribute[][] = [];
  let rdn: RdnAttribute[] = [];
  let i = 0;
  const n = text.length;
  const skip = (): void => {
    while (i < n && /\s/.test(text.charAt(i))) i++;
  };
  skip();
  if (i >= n) return [];
  for (;;) {
    skip();
    const typeStart = i;
    while (i < n && text[i] !== '=') i++;
    if (i >= n) throw new DistinguishedNameSyntaxError(`missing = after ${JSON.stringify(text.slice(typeStart))}`);
    let type = text.slice(typeStart, i).trim();
    i++;
    if (/^oid\./i.test(type)) type = type.slice(4);
    const oid = /^[0-9]+(\.[0-9]+)+$/.test(type) ? type : PARSE_NAMES[type.toUpperCase()];
    if (oid === undefined) throw new DistinguishedNameSyntaxError(`unknown attribute type ${JSON.stringify(type)}`);
    skip();
    let value: string;
    if (text[i] === '#') {
      const start = ++i;
      while (i < n && /[0-9a-fA-F]/.test(text.charAt(i))) i++;
      value = decodeHexValue(text.slice(start, i));
    } else if (text[i] === '"') {
      i++;
      let out = '';
      while (i < n && text[i] !== '"') {
        if (text[i] === '\\') i++;
        out += text.charAt(i++);
      }
      if (i >= n) throw new DistinguishedNameSyntaxError('unterminated quoted value');
      i++;
      value = out;
    } else {
      const bytes: number[] = [];
      let trailingSpaces = 0;
      while (i < n && text[i] !== ',' && text[i] !== ';' && text[i] !== '+') {
        const c = text.charAt(i);
        if (c === '\\') {
          const hex = text.slice(i + 1, i + 3);
          if (/^[0-9a-fA-F]{2}$/.test(hex)) {
            bytes.push(Number.parseInt(hex, 16));
            i += 3;
          } else if (i + 1 < n) {
            bytes.push(...Buffer.from(text.charAt(i + 1), 'utf8'));
            i += 2;
          } else throw new DistinguishedNameSyntaxError('dangling escape');
          trailingSpaces = 0;
          continue;
        }
        bytes.push(...Buffer.from(c, 'utf8'));
        trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
        i++;
      }
      value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
    }
    rdn.push({ oid, value });
    skip();
    if (i >= n) break;
    const separator = text[i++];
    if (separator === '+') continue;
    rdns.push(rdn);
    rdn = [];
  }
  rdns.push(rdn);
  // RFC 2253 writes the least significant RDN first; names are kept in ASN.1 order.
  return rdns.reverse();
}

function normalizeValue(value: string): string {
  // RFC 5280 §7.1 (simplified LDAP StringPrep): case-insensitive, insignificant spaces removed.
  return value.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

function rdnKey(rdn: readonly RdnAttribute[]): string {
  return rdn
    .map((a) => `${a.oid}=${normalizeValue(a.value)}`)
    .sort()
    .join('+');
}

/** Whether two names are equal as names (RFC 5280 §7.1), not as strings. */
export function namesEqual(a: RdnSequence, b: RdnSequence): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (rdnKey(a[i] ?? []) !== rdnKey(b[i] ?? [])) return false;
  }
  return true;
}
