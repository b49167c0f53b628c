import { BlockList, isIP } from 'node:net';
import { PermanentError } from '../../shared/errors/index.ts';

/** Any JSON value, as `JSON.parse` returns it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * An EventBridge event pattern that passed {@link validateEventPattern}: a JSON object whose
 * leaves are arrays of match conditions.
 */
export type EventPattern = JsonObject;

/**
 * Raised when an event pattern breaks the EventBridge pattern grammar. The emulator turns it
 * into the `InvalidEventPatternException` that PutRule and TestEventPattern return on AWS.
 */
export class InvalidEventPatternError extends PermanentError {
  /** Why the pattern is not valid, in words (the text after "Reason:" in the AWS message). */
  readonly reason: string;

  constructor(reason: string) {
    super('INVALID_EVENT_PATTERN', `Event pattern is not valid. Reason: ${reason}`, { details: { reason } });
    this.reason = reason;
  }
}

const MATCH_OPERATORS = new Set([
  'prefix',
  'suffix',
  'equals-ignore-case',
  'wildcard',
  'anything-but',
  'numeric',
  'exists',
  'cidr',
]);

const NUMERIC_LOWER = new Set(['>', '>=']);
const NUMERIC_UPPER = new Set(['<', '<=']);

/** Whether a value is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses the `EventPattern` string of PutRule / TestEventPattern and validates it.
 *
 * @throws InvalidEventPatternError when the text is not JSON or not a valid pattern.
 */
export function parseEventPattern(text: string): EventPattern {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidEventPatternError(`the pattern is not valid JSON (${(error as Error).message})`);
  }
  validateEventPattern(parsed);
  return parsed;
}

/**
 * Checks a parsed event pattern against the grammar of the AWS EventBridge "Event patterns"
 * and "Content filtering" documentation: the pattern is a non-empty object, every field maps to
 * a non-empty object or a non-empty array of match conditions, a condition is a JSON scalar or
 * an object with exactly one known operator (`prefix`, `suffix`, `equals-ignore-case`,
 * `wildcard`, `anything-but`, `numeric`, `exists`, `cidr`), and `$or` holds an array of
 * sub-patterns.
 *
 * @throws InvalidEventPatternError naming the offending field and the reason.
 */
export function validateEventPattern(pattern: unknown): asserts pattern is EventPattern {
  if (!isJsonObject(pattern)) {
    throw new InvalidEventPatternError('the event pattern must be a JSON object');
  }
  validateObject(pattern, '');
}

function fieldPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function validateObject(pattern: JsonObject, path: string): void {
  const keys = Object.keys(pattern);
  if (keys.length === 0) {
    throw new InvalidEventPatternError(path === '' ? 'the event pattern is empty' : `"${path}" is an empty object`);
  }
  for (const key of keys) {
    const value = pattern[key] as JsonValue;
    const here = fieldPath(path, key);
    if (key === '$or' && Array.isArray(value) && value.some(isJsonObject)) {
      if (!value.every(isJsonObject) || value.length < 2) {
        throw new InvalidEventPatternError(`"$or" at "${path || '<root>'}" must be an array of at least two objects`);
      }
      for (const alternative of value) validateObject(alternative, path);
      continue;
    }
    if (Array.isArray(value)) {
      if (value.length === 0) throw new InvalidEventPatternError(`"${here}" must not be an empty array`);
      for (const condition of value) validateCondition(condition, here);
    } else if (isJsonObject(value)) {
      validateObject(value, here);
    } else {
      throw new InvalidEventPatternError(`"${here}" must be an object or an array`);
    }
  }
}

function validateCondition(condition: JsonValue, path: string): void {
  if (condition === null || typeof condition !== 'object') return;
  if (Array.isArray(condition)) {
    throw new InvalidEventPatternError(`"${path}" contains a nested array; match values must be scalars or operator objects`);
  }
  const keys = Object.keys(condition);
  if (keys.length !== 1) {
    throw new InvalidEventPatternError(`"${path}" has a match object with ${keys.length} keys; exactly one operator is expected`);
  }
  const operator = keys[0] as string;
  const operand = condition[operator] as JsonValue;
  if (!MATCH_OPERATORS.has(operator)) {
    throw new InvalidEventPatternError(`Unrecognized match type ${operator} at "${path}"`);
  }
  switch (operator) {
    case 'prefix':
    case 'suffix':
      if (typeof operand === 'string') return;
      if (isJsonObject(operand) && Object.keys(operand).length === 1 && typeof operand['equals-ignore-case'] === 'string') return;
      throw new InvalidEventPatternError(`"${operator}" at "${path}" must be a string or {"equals-ignore-case": string}`);
    case 'equals-ignore-case':
      if (typeof operand === 'string') return;
      throw new InvalidEventPatternError(`"equals-ignore-case" at "${path}" must be a string`);
    case 'wildcard':
      if (typeof operand !== 'string') throw new InvalidEventPatternError(`"wildcard" at "${path}" must be a string`);
      validateWildcard(operand, path);
      return;
    case 'exists':
      if (typeof operand === 'boolean') return;
      throw new InvalidEventPatternError(`"exists" at "${path}" must be true or false`);
    case 'numeric':
      validateNumeric(operand, path);
      return;
    case 'cidr':
      if (typeof operand === 'string' && parseCidr(operand) !== undefined) return;
      throw new InvalidEventPatternError(`"cidr" at "${path}" must be an IPv4 or IPv6 CIDR block`);
    default:
      validateAnythingBut(operand, path);
  }
}

function validateWildcard(wildcard: string, path: string): void {
  let previousWasStar = false;
  for (let index = 0; index < wildcard.length; index += 1) {
    const char = wildcard[index];
    if (char === '\\') {
      const next = wildcard[index + 1];
      if (next !== '*' && next !== '\\') {
        throw new InvalidEventPatternError(`"wildcard" at "${path}" has an invalid escape; only \\* and \\\\ are allowed`);
      }
      index += 1;
      previousWasStar = false;
    } else if (char === '*') {
      // The Content filtering documentation forbids consecutive wildcard characters.
      if (previousWasStar) throw new InvalidEventPatternError(`"wildcard" at "${path}" has consecutive wildcard characters`);
      previousWasStar = true;
    } else {
      previousWasStar = false;
    }
  }
}

function validateNumeric(operand: JsonValue, path: string): void {
  const invalid = (why: string): InvalidEventPatternError =>
    new InvalidEventPatternError(`"numeric" at "${path}" ${why}`);
  if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) {
    throw invalid('must be an array of one or two [operator, number] pairs');
  }
  let lower: number | undefined;
  let upper: number | undefined;
  for (let index = 0; index < operand.length; index += 2) {
    const operator = operand[index];
    const bound = operand[index + 1];
    if (typeof operator !== 'string' || typeof bound !== 'number' || !Number.isFinite(bound)) {
      throw invalid('must alternate comparison operators and numbers');
    }
    if (operator === '=') {
      if (operand.length !== 2) throw invalid('may not combine "=" with another comparison');
    } else if (NUMERIC_LOWER.has(operator)) {
      if (lower !== undefined) throw invalid('has two lower bounds');
      lower = bound;
    } else if (NUMERIC_UPPER.has(operator)) {
      if (upper !== undefined) throw invalid('has two upper bounds');
      upper = bound;
    } else {
      throw invalid(`has an unknown comparison operator ${JSON.stringify(operator)}`);
    }
  }
  if (lower !== undefined && upper !== undefined && lower >= upper) {
    throw invalid('has a lower bound that is not below its upper bound');
  }
}

function validateAnythingBut(operand: JsonValue, path: string): void {
  const invalid = (why: string): InvalidEventPatternError =>
    new InvalidEventPatternError(`"anything-but" at "${path}" ${why}`);
  if (typeof operand === 'string' || typeof operand === 'number') return;
  if (Array.isArray(operand)) {
    if (operand.length === 0) throw invalid('must not be an empty array');
    const allStrings = operand.every((item) => typeof item === 'string');
    const allNumbers = operand.every((item) => typeof item === 'number');
    if (!allStrings && !allNumbers) throw invalid('must list only strings or only numbers');
    return;
  }
  if (!isJsonObject(operand)) throw invalid('must be a string, a number, a list, or an operator object');
  const keys = Object.keys(operand);
  if (keys.length !== 1) throw invalid('must hold exactly one operator');
  const operator = keys[0] as string;
  const inner = operand[operator] as JsonValue;
  const stringOrStrings =
    typeof inner === 'string' || (Array.isArray(inner) && inner.length > 0 && inner.every((item) => typeof item === 'string'));
  switch (operator) {
    case 'prefix':
    case 'suffix':
      if (typeof inner === 'string') return;
      throw invalid(`"${operator}" must be a string`);
    case 'equals-ignore-case':
      if (stringOrStrings) return;
      throw invalid('"equals-ignore-case" must be a string or a list of strings');
    case 'wildcard':
      if (!stringOrStrings) throw invalid('"wildcard" must be a string or a list of strings');
      for (const wildcard of typeof inner === 'string' ? [inner] : (inner)) validateWildcard(wildcard, path);
      return;
    default:
      throw invalid(`does not support the operator ${operator}`);
  }
}

/**
 * Whether an event matches an event pattern, following the AWS EventBridge documentation:
 *
 * - every field named in the pattern must match (AND); the values listed for a field are
 *   alternatives (OR); `$or` lists alternative sub-patterns;
 * - a condition is compared with each leaf value of the field: when the event holds an array,
 *   the field matches if any element matches;
 * - an event field holding an array of objects matches a nested pattern if one element matches
 *   all of that nested pattern;
 * - `null` and `""` are distinct values; exact matching is type-sensitive (`"5"` ≠ `5`);
 * - `exists` looks at leaf values only: an object-valued or absent field does not exist.
 *
 * The pattern must be valid ({@link validateEventPattern}); constructs outside the grammar
 * never match.
 */
export function matchesEventPattern(pattern: EventPattern, event: JsonValue): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: JsonObject, value: JsonValue | undefined): boolean {
  if (Array.isArray(value)) {
    if (value.length === 0) return matchObject(pattern, undefined);
    return value.some((element) => matchObject(pattern, element));
  }
  for (const [key, expected] of Object.entries(pattern)) {
    if (key === '$or' && Array.isArray(expected) && expected.every(isJsonObject)) {
      if (!expected.some((alternative) => matchObject(alternative, value))) return false;
      continue;
    }
    const field = isJsonObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
    if (Array.isArray(expected)) {
      if (!matchConditions(expected, field)) return false;
    } else if (isJsonObject(expected)) {
      if (!matchObject(expected, field)) return false;
    } else {
      return false;
    }
  }
  return true;
}

function collectLeaves(value: JsonValue | undefined, into: Array<string | number | boolean | null>): void {
  if (value === undefined || isJsonObject(value)) return;
  if (Array.isArray(value)) {
    for (const element of value) collectLeaves(element, into);
    return;
  }
  into.push(value);
}

function matchConditions(conditions: JsonValue[], field: JsonValue | undefined): boolean {
  const leaves: Array<string | number | boolean | null> = [];
  collectLeaves(field, leaves);
  return conditions.some((condition) => {
    if (isJsonObject(condition) && typeof condition['exists'] === 'boolean') {
      return condition['exists'] === leaves.length > 0;
    }
    return leaves.some((leaf) => matchCondition(condition, leaf));
  });
}

function matchCondition(condition: JsonValue, leaf: string | number | boolean | null): boolean {
  if (!isJsonObject(condition)) return !Array.isArray(condition) && condition === leaf;
  const [operator, operand] = Object.entries(condition)[0] ?? [];
  switch (operator) {
    case 'prefix':
      return typeof leaf === 'string' && matchAffix(operand, leaf, 'prefix');
    case 'suffix':
      return typeof leaf === 'string' && matchAffix(operand, leaf, 'suffix');
    case 'equals-ignore-case':
      return typeof leaf === 'string' && typeof operand === 'string' && foldCase(leaf) === foldCase(operand);
    case 'wildcard':
      return typeof leaf === 'string' && typeof operand === 'string' && wildcardRegExp(operand).test(leaf);
    case 'numeric':
      return typeof leaf === 'number' && Array.isArray(operand) && matchNumeric(operand, leaf);
    case 'cidr':
      return typeof leaf === 'string' && typeof operand === 'string' && matchCidr(operand, leaf);
    case 'anything-but':
      return operand !== undefined && matchAnythingBut(operand, leaf);
    default:
      return false;
  }
}

function foldCase(text: string): string {
  return text.toLowerCase();
}

function matchAffix(operand: JsonValue | undefined, leaf: string, kind: 'prefix' | 'suffix'): boolean {
  let expected: string;
  let subject = leaf;
  if (typeof operand === 'string') {
    expected = operand;
  } else if (isJsonObject(operand) && typeof operand['equals-ignore-case'] === 'string') {
    expected = foldCase(operand['equals-ignore-case']);
    subject = foldCase(leaf);
  } else {
    return false;
  }
  return kind === 'prefix' ? subject.startsWith(expected) : subject.endsWith(expected);
}

function matchNumeric(operand: JsonValue[], leaf: number): boolean {
  for (let index = 0; index + 1 < operand.length; index += 2) {
    const operator = operand[index];
    const bound = operand[index + 1];
    if (typeof bound !== 'number') return false;
    const holds =
      operator === '=' ? leaf === bound
      : operator === '>' ? leaf > bound
      : operator === '>=' ? leaf >= bound
      : operator === '<' ? leaf < bound
      : operator === '<=' ? leaf <= bound
      : false;
    if (!holds) return false;
  }
  return true;
}

function matchAnythingBut(operand: JsonValue, leaf: string | number | boolean | null): boolean {
  if (typeof operand === 'string' || typeof operand === 'number') return leaf !== operand;
  if (Array.isArray(operand)) return !operand.includes(leaf);
  if (!isJsonObject(operand)) return false;
  const [operator, inner] = Object.entries(operand)[0] ?? [];
  // The string operators inside anything-but only apply to string values (Content filtering docs).
  if (typeof leaf !== 'string') return false;
  const values = typeof inner === 'string' ? [inner] : Array.isArray(inner) ? inner.filter((item) => typeof item === 'string') : [];
  switch (operator) {
    case 'prefix':
      return values.every((value) => !leaf.startsWith(value));
    case 'suffix':
      return values.every((value) => !leaf.endsWith(value));
    case 'equals-ignore-case':
      return values.every((value) => foldCase(value) !== foldCase(leaf));
    case 'wildcard':
      return values.every((value) => !wildcardRegExp(value).test(leaf));
    default:
      return false;
  }
}

const wildcardCache = new Map<string, RegExp>();
const WILDCARD_CACHE_LIMIT = 1_000;

function wildcardRegExp(wildcard: string): RegExp {
  const cached = wildcardCache.get(wildcard);
  if (cached !== undefined) return cached;
  let source = '';
  for (let index = 0; index < wildcard.length; index += 1) {
    const char = wildcard[index] as string;
    if (char === '\\' && index + 1 < wildcard.length) {
      source += escapeRegExp(wildcard[index + 1] as string);
      index += 1;
    } else if (char === '*') {
      source += '.*';
    } else {
      source += escapeRegExp(char);
    }
  }
  const compiled = new RegExp(`^${source}$`, 'su');
  if (wildcardCache.size >= WILDCARD_CACHE_LIMIT) wildcardCache.clear();
  wildcardCache.set(wildcard, compiled);
  return compiled;
}

function escapeRegExp(char: string): string {
  return /[\\^$.*+?()[\]{}|]/u.test(char) ? `\\${char}` : char;
}

interface ParsedCidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

function parseCidr(cidr: string): ParsedCidr | undefined {
  const slash = cidr.indexOf('/');
  if (slash < 0) return undefined;
  const address = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  if (!/^\d{1,3}$/u.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const version = isIP(address);
  if (version === 4 && prefix <= 32) return { address, prefix, family: 'ipv4' };
  if (version === 6 && prefix <= 128) return { address, prefix, family: 'ipv6' };
  return undefined;
}

function matchCidr(cidr: string, leaf: string): boolean {
  const parsed = parseCidr(cidr);
  const version = isIP(leaf);
  if (parsed === undefined || version === 0) return false;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (family !== parsed.family) return false;
  const list = new BlockList();
  list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  return list.check(leaf, family);
}
