import { X509Certificate } from 'node:crypto';
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
      const text = valueEl.tag === 0x1e ? Buffer.from(valueEl.content).swap16().toString('utf16le') : valueEl.content.toString(valueEl.tag === 0x0c ? 'utf8' : 'latin1');
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
 * 8 digits. This is selo's development-PKI convention (`selo pki init`); undefined when absent.
 */
export function certificateIspb(certificate: X509Certificate | Buffer): string | undefined {
  const value = certificateSubject(certificate).find((attribute) => attribute.type === 'serialNumber')?.value;
  return value !== undefined && /^\d{8}$/.test(value) ? value : undefined;
}

/** Parses a PEM or DER certificate. */
export function parseCertificate(certificate: string | Buffer): X509Certificate {
  return new X509Certificate(certificate);
}
