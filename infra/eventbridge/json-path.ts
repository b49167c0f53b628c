import { isJsonObject } from './event-pattern.ts';
import type { JsonValue } from './event-pattern.ts';

/** One step of a parsed JSON path: an object key or an array index. */
export type JsonPathSegment = string | number;

/**
 * Parses the JSON paths EventBridge accepts in `InputPath` and `InputPathsMap`: `$`, dotted
 * keys (`$.detail.state`, `$.detail-type`), bracketed keys (`$['detail']`, `$["a.b"]`) and array
 * indexes (`$.resources[0]`). Wildcards and filters are not supported.
 *
 * @returns the segments, or `undefined` when the path is not of that form.
 */
export function parseJsonPath(path: string): JsonPathSegment[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const segments: JsonPathSegment[] = [];
  let index = 1;
  while (index < path.length) {
    const char = path[index];
    if (char === '.') {
      let end = index + 1;
      while (end < path.length && path[end] !== '.' && path[end] !== '[') end += 1;
      const key = path.slice(index + 1, end);
      if (key === '' || key === '*') return undefined;
      segments.push(key);
      index = end;
    } else if (char === '[') {
      const close = path.indexOf(']', index);
      if (close < 0) return undefined;
      const inner = path.slice(index + 1, close).trim();
      if (/^\d+$/u.test(inner)) {
        segments.push(Number(inner));
      } else if (/^'[^']*'$/u.test(inner) || /^"[^"]*"$/u.test(inner)) {
        segments.push(inner.slice(1, -1));
      } else {
        return undefined;
      }
      index = close + 1;
    } else {
      return undefined;
    }
  }
  return segments;
}

/**
 * Reads the value a parsed JSON path points at.
 *
 * @returns the value, or `undefined` when the path leads nowhere.
 */
export function readJsonPath(value: JsonValue, segments: readonly JsonPathSegment[]): JsonValue | undefined {
  let current: JsonValue | undefined = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      current = Array.isArray(current) ? current[segment] : undefined;
    } else {
      current = isJsonObject(current) && Object.hasOwn(current, segment) ? current[segment] : undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}
