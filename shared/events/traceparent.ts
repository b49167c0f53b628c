import { randomBytes } from 'node:crypto';

/** W3C Trace Context `traceparent`: version 00, 32-hex trace id, 16-hex parent id, 2-hex flags. */
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Whether `value` is a valid W3C `traceparent` header value (version 00). */
export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value);
}

/** Starts a new trace: a fresh trace id and span id, sampled. */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/**
 * The `traceparent` of a step caused by `parent`: same trace id and flags, a new span id. An
 * invalid parent starts a new trace rather than failing the step (tracing is diagnostic only).
 */
export function childTraceparent(parent: string): string {
  const match = TRACEPARENT.exec(parent);
  if (match === null) return newTraceparent();
  return `00-${match[1]!}-${randomBytes(8).toString('hex')}-${match[3]!}`;
}
