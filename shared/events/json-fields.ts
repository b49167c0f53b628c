import { EventDetailInvalidError } from './event-detail.ts';

/** A JSON object as an event's `data` holds it. */
export type Json = Record<string, unknown>;

/** `value` as an object; {@link EventDetailInvalidError} naming `path` otherwise. */
export function record(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EventDetailInvalidError(path, 'must be an object');
  return value as Json;
}

/** The required non-empty string `field` of `from`; {@link EventDetailInvalidError} naming `path.field` otherwise. */
export function text(from: Json, field: string, path = 'data'): string {
  const value = from[field];
  if (typeof value !== 'string' || value === '') throw new EventDetailInvalidError(`${path}.${field}`, 'must be a non-empty string');
  return value;
}
