import type { X509Certificate } from 'node:crypto';

/** One attribute of a relative distinguished name, e.g. `CN=Selo`. */
export interface NameAttribute {
  /** Dotted OID of the attribute type (`2.5.4.3` for CN). */
  readonly oid: string;
  /** The value as text. */
  readonly value: string;
}

/**
 * A distinguished name as a sequence of RDNs in ASN.1 order (most significant first, `C`
 * before `CN`); each RDN is a set of one or more attributes.
 */
export type DistinguishedName = readonly (readonly NameAttribute[])[];

const SHORT_NAMES: Readonly<Record<string, string>> = {
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

// RFC 2253 §2.3 names only these keywords; other types are written as dotted OIDs.
const RFC2253_KEYWORDS: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/** A distinguished name string that could not be parsed. */
export class DistinguishedNameSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DistinguishedNameSyntaxError';
  }
}

// --- DER reading (only what a certificate's issuer and subject need) ---

interface Der {
  tag: number;
  start: number; // content start
  end: number; // content end
  next: number; // offset after this TLV
}

function readDer(buf: Uint8Array, at: number): Der {
  const tag = buf[at];
  let length = buf[at + 1];
  if (tag === undefined || length === undefined) throw new DistinguishedNameSyntaxError('truncated DER');
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new DistinguishedNameSyntaxError('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[start + i] ?? 0);
    start += count;
  }
  const end = start + length;
  if (end > buf.length) throw new DistinguishedNameSyntaxError('truncated DER');
  return { tag, start, end, next: end };
}

function decodeOid(bytes: Uint8Array): string {
  const parts: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

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

function readName(buf: Uint8Array, name: Der): DistinguishedName {
  const rdns: NameAttribute[][] = [];
  for (let at = name.start; at < name.end; ) {
    const set = readDer(buf, at);
    const rdn: NameAttribute[] = [];
    for (let inner = set.start; inner < set.end; ) {
      const atv = readDer(buf, inner);
      const oid = readDer(buf, atv.start);
      const value = readDer(buf, oid.next);
      rdn.push({ oid: decodeOid(buf.subarray(oid.start, oid.end)), value: decodeDirectoryString(value.tag, buf.subarray(value.start, value.end)) });
      inner = atv.next;
    }
    rdns.push(rdn);
    at = set.next;
  }
  return rdns;
}

/** The issuer and subject names of a certificate, read from its DER encoding. */
export function certificateNames(certificate: X509Certificate): { issuer: DistinguishedName; subject: DistinguishedName } {
  const der = new Uint8Array(certificate.raw);
  const cert = readDer(der, 0);
  const tbs = readDer(der, cert.start);
  let field = readDer(der, tbs.start);
  if (field.tag === 0xa0) field = readDer(der, field.next); // [0] version
  const serial = field;
  const algorithm = readDer(der, serial.next);
  const issuer = readDer(der, algorithm.next);
  const validity = readDer(der, issuer.next);
  const subject = readDer(der, validity.next);
  return { issuer: readName(der, issuer), subject: readName(der, subject) };
}

/** The certificate's serial number as an integer. */
export function certificateSerial(certificate: X509Certificate): bigint {
  return BigInt(`0x${certificate.serialNumber}`);
}

// --- RFC 2253 text ---

function escapeValue(value: string): string {
  let out = value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/**
 * Writes a name in RFC 2253 form (least significant RDN first, `CN=…,O=…,C=BR`), the form
 * `X509IssuerName` carries (XML-DSig §4.4.4).
 */
export function formatRfc2253(name: DistinguishedName): string {
  return [...name]
    .reverse()
    .map((rdn) => rdn.map((attribute) => `${RFC2253_KEYWORDS[attribute.oid] ?? attribute.oid}=${escapeValue(attribute.value)}`).join('+'))
    .join(',');
}

function decodeHexValue(hex: string): string {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new DistinguishedNameSyntaxError('invalid #hex value');
  const bytes = Buffer.from(hex, 'hex');
  const value = readDer(bytes, 0);
  return decodeDirectoryString(value.tag, bytes.subarray(value.start, value.end));
}

/**
 * Parses an RFC 2253 (or RFC 4514, or the RFC 1779 variants Java and xmlsec write) name.
 * Accepts `,` or `;` between RDNs, `+` inside an RDN, short names, `OID.1.2.3` and dotted OIDs
 * as types, `\`-escapes (`\,` and `\C3\A7`), quoted values and `#hex` values.
 *
 * @throws {@link DistinguishedNameSyntaxError} when the text is not a name.
 */
export function parseRfc2253(text: string): DistinguishedName {
  const rdns: NameAttribute[][] = [];
  let rdn: NameAttribute[] = [];
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
    const oid = /^[0-9]+(\.[0-9]+)+$/.test(type) ? type : SHORT_NAMES[type.toUpperCase()];
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

function rdnKey(rdn: readonly NameAttribute[]): string {
  return rdn
    .map((a) => `${a.oid}=${normalizeValue(a.value)}`)
    .sort()
    .join('+');
}

/** Whether two names are equal as names (RFC 5280 §7.1), not as strings. */
export function namesEqual(a: DistinguishedName, b: DistinguishedName): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (rdnKey(a[i] ?? []) !== rdnKey(b[i] ?? [])) return false;
  }
  return true;
}
