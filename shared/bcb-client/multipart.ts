import { randomBytes } from 'node:crypto';
import { PermanentError } from '../errors/index.ts';

/** One part of a `multipart/mixed` body. */
export interface MultipartPart {
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * A `multipart/mixed` body that cannot be read: `ICOM_MULTIPART_INVALID`. Permanent for the body
 * at hand; a reader of the ICOM stream does not confirm it and lets the BCB deliver it again.
 */
export class MultipartError extends PermanentError {
  constructor(message: string) {
    super('ICOM_MULTIPART_INVALID', message);
  }
}

/** The `boundary` parameter of a `multipart/mixed` content type, or undefined. */
export function multipartBoundary(contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** Splits a `multipart/mixed` body (RFC 2046 §5.1) into its parts; preamble and epilogue are ignored. */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  if (boundary.length === 0 || boundary.length > 70) throw new MultipartError('the multipart boundary must be 1 to 70 characters');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let position = body.indexOf(delimiter);
  if (position < 0) throw new MultipartError('the body does not contain the multipart boundary');
  for (;;) {
    let cursor = position + delimiter.length;
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) return parts; // closing delimiter
    const lineEnd = body.indexOf('\r\n', cursor);
    if (lineEnd < 0) throw new MultipartError('a multipart delimiter line is not terminated by CRLF');
    cursor = lineEnd + 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), cursor);
    if (next < 0) throw new MultipartError('the multipart body has no closing delimiter');
    const part = body.subarray(cursor, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headerText = headerEnd < 0 ? (part.subarray(0, 2).toString() === '\r\n' ? '' : part.toString('latin1')) : part.subarray(0, headerEnd).toString('latin1');
    const content = headerEnd < 0 ? part.subarray(2) : part.subarray(headerEnd + 4);
    const headers: Record<string, string> = {};
    for (const line of headerText.split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new MultipartError(`a multipart part has a malformed header line ${JSON.stringify(line.slice(0, 80))}`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: content });
    position = next + 2;
  }
}

/** Writes a `multipart/mixed` body; returns it with its boundary. */
export function buildMultipart(parts: readonly { headers: Readonly<Record<string, string>>; body: string | Buffer }[], boundary = `selo-${randomBytes(12).toString('hex')}`): { boundary: string; body: Buffer } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const headerLines = Object.entries(part.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    chunks.push(Buffer.from(`--${boundary}\r\n${headerLines}\r\n`), typeof part.body === 'string' ? Buffer.from(part.body, 'utf8') : part.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(chunks) };
}
