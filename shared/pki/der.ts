/**
 * A minimal DER (X.690) writer and reader: enough to build X.509 certificates and PKCS#10
 * requests and to read the Names out of a certificate. Every writer returns the complete TLV.
 */

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with the given tag byte and content. */
export function derTlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

/** SEQUENCE of already-encoded elements. */
export function derSequence(...elements: Buffer[]): Buffer {
  return derTlv(0x30, Buffer.concat(elements));
}

/** SET OF already-encoded elements, sorted as DER requires (X.690 §11.6). */
export function derSet(...elements: Buffer[]): Buffer {
  return derTlv(0x31, Buffer.concat([...elements].sort((a, b) => Buffer.compare(a, b))));
}

/** INTEGER from a non-negative bigint, number or unsigned big-endian bytes. */
export function derInteger(value: bigint | number | Buffer): Buffer {
  let bytes: Buffer;
  if (Buffer.isBuffer(value)) {
    bytes = value;
  } else {
    const big = BigInt(value);
    if (big < 0n) throw new RangeError('derInteger: negative integers are not supported');
    let hex = big.toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    bytes = Buffer.from(hex, 'hex');
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && ((bytes[start + 1] ?? 0) & 0x80) === 0) start += 1;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (((bytes[0] ?? 0) & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return derTlv(0x02, bytes);
}

/** OBJECT IDENTIFIER from dotted notation. */
export function derOid(oid: string): Buffer {
  const parts = oid.split('.').map((part) => {
    if (!/^\d+$/.test(part)) throw new RangeError(`derOid: bad OID ${JSON.stringify(oid)}`);
    return BigInt(part);
  });
  const [first, second, ...rest] = parts;
  if (first === undefined || second === undefined) throw new RangeError(`derOid: bad OID ${JSON.stringify(oid)}`);
  const bytes: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...chunk);
  }
  return derTlv(0x06, Buffer.from(bytes));
}

/** NULL. */
export function derNull(): Buffer {
  return Buffer.from([0x05, 0x00]);
}

/** BOOLEAN. */
export function derBoolean(value: boolean): Buffer {
  return derTlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** BIT STRING with no unused bits. */
export function derBitString(bytes: Buffer, unusedBits = 0): Buffer {
  return derTlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/** OCTET STRING. */
export function derOctetString(bytes: Buffer): Buffer {
  return derTlv(0x04, bytes);
}

/** UTF8String. */
export function derUtf8String(value: string): Buffer {
  return derTlv(0x0c, Buffer.from(value, 'utf8'));
}

/** PrintableString (caller checks the alphabet). */
export function derPrintableString(value: string): Buffer {
  return derTlv(0x13, Buffer.from(value, 'latin1'));
}

/** IA5String. */
export function derIa5String(value: string): Buffer {
  return derTlv(0x16, Buffer.from(value, 'latin1'));
}

/** Time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime from 2050. */
export function derTime(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return date.getUTCFullYear() < 2050 ? derTlv(0x17, Buffer.from(iso.slice(2), 'latin1')) : derTlv(0x18, Buffer.from(iso, 'latin1'));
}

/** `[n] EXPLICIT` wrapper around an encoded element. */
export function derExplicit(tagNumber: number, element: Buffer): Buffer {
  return derTlv(0xa0 | tagNumber, element);
}

/** `[n] IMPLICIT` primitive element with raw content. */
export function derImplicitPrimitive(tagNumber: number, content: Buffer): Buffer {
  return derTlv(0x80 | tagNumber, content);
}

/** A decoded TLV: tag byte, content, and the whole encoding. */
export interface DerElement {
  /** The identifier octet (single-byte tags only). */
  tag: number;
  /** The content octets. */
  content: Buffer;
  /** The complete encoding (tag, length and content). */
  raw: Buffer;
}

/** Reads the TLV at `offset`; throws RangeError on truncated or non-DER input. */
export function derRead(buffer: Buffer, offset = 0): DerElement {
  const tag = buffer[offset];
  const first = buffer[offset + 1];
  if (tag === undefined || first === undefined) throw new RangeError('DER: truncated');
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new RangeError('DER: unsupported length');
    length = 0;
    for (let i = 0; i < count; i += 1) {
      const byte = buffer[offset + 2 + i];
      if (byte === undefined) throw new RangeError('DER: truncated');
      length = length * 256 + byte;
    }
    header += count;
  }
  const end = offset + header + length;
  if (end > buffer.length) throw new RangeError('DER: truncated');
  return { tag, content: buffer.subarray(offset + header, end), raw: buffer.subarray(offset, end) };
}

/** The elements inside a constructed element's content. */
export function derChildren(content: Buffer): DerElement[] {
  const children: DerElement[] = [];
  for (let offset = 0; offset < content.length;) {
    const child = derRead(content, offset);
    children.push(child);
    offset += child.raw.length;
  }
  return children;
}

/** Dotted notation of an OBJECT IDENTIFIER's content octets. */
export function derDecodeOid(content: Buffer): string {
  const arcs: bigint[] = [];
  let value = 0n;
  for (const byte of content) {
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
    }
  }
  const [first, ...rest] = arcs;
  if (first === undefined) return '';
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...rest].map(String).join('.');
}
