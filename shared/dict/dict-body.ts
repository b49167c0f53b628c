import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentError } from '../errors/index.ts';
import { childElements, elementPath, escapeXmlText, parseXml, textContent } from '../xml/index.ts';
import type { XmlDocument, XmlElement } from '../xml/index.ts';

/** A DICT body as a plain value: strings for scalars, objects and arrays as the OpenAPI declares. */
export type DictValue = string | DictObject | DictValue[];
/** An XML element of a DICT body, properties in schema order. */
export interface DictObject {
  [property: string]: DictValue | undefined;
}

/**
 * The DICT operations selo speaks and their bodies (DICT API 2.12.1, shared/spec). `headers` are
 * the request headers the OpenAPI marks `required: true` besides the body's
 * (`PI-RequestingParticipant` is the requesting participant's ISPB; `PI-PayerId` and
 * `PI-EndToEndId` identify the payer and the payment a key lookup is for: `GET /entries/{Key}`,
 * operation getEntry, header parameters, all three `required: true`). `query` lists the query
 * parameters the operation defines, each `required` or `optional` as the OpenAPI says (`GET
 * /claims/`, operation listClaims: `Participant` is `required: true`, the others optional; `GET
 * /entries/{Key}`: `IncludeStatistics` optional); operations without query parameters have none.
 */
export const DICT_OPERATIONS = {
  createEntry: { method: 'POST', path: '/entries/', request: 'CreateEntryRequest', response: 'CreateEntryResponse', headers: [], query: {} },
  getEntry: { method: 'GET', path: '/entries/{Key}', request: undefined, response: 'GetEntryResponse', headers: ['PI-RequestingParticipant', 'PI-PayerId', 'PI-EndToEndId'], query: { IncludeStatistics: 'optional' } },
  updateEntry: { method: 'PUT', path: '/entries/{Key}', request: 'UpdateEntryRequest', response: 'UpdateEntryResponse', headers: [], query: {} },
  deleteEntry: { method: 'POST', path: '/entries/{Key}/delete', request: 'DeleteEntryRequest', response: 'DeleteEntryResponse', headers: [], query: {} },
  createClaim: { method: 'POST', path: '/claims/', request: 'CreateClaimRequest', response: 'CreateClaimResponse', headers: [], query: {} },
  listClaims: { method: 'GET', path: '/claims/', request: undefined, response: 'ListClaimsResponse', headers: [], query: { Participant: 'required', IncludeIndirectParticipants: 'optional', IsDonor: 'optional', IsClaimer: 'optional', Status: 'optional', Type: 'optional', ModifiedAfter: 'optional', ModifiedBefore: 'optional', Limit: 'optional' } },
  getClaim: { method: 'GET', path: '/claims/{ClaimId}', request: undefined, response: 'GetClaimResponse', headers: ['PI-RequestingParticipant'], query: {} },
  acknowledgeClaim: { method: 'POST', path: '/claims/{ClaimId}/acknowledge', request: 'AcknowledgeClaimRequest', response: 'AcknowledgeClaimResponse', headers: [], query: {} },
  confirmClaim: { method: 'POST', path: '/claims/{ClaimId}/confirm', request: 'ConfirmClaimRequest', response: 'ConfirmClaimResponse', headers: [], query: {} },
  cancelClaim: { method: 'POST', path: '/claims/{ClaimId}/cancel', request: 'CancelClaimRequest', response: 'CancelClaimResponse', headers: [], query: {} },
  completeClaim: { method: 'POST', path: '/claims/{ClaimId}/complete', request: 'CompleteClaimRequest', response: 'CompleteClaimResponse', headers: [], query: {} },
} as const satisfies Readonly<Record<string, DictOperationSpec>>;

/** One entry of {@link DICT_OPERATIONS}. */
export interface DictOperationSpec {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Under `/api/v2`, with `{Key}`-style path parameters. */
  readonly path: string;
  /** OpenAPI schema of the (signed) request body; undefined for reads. */
  readonly request: string | undefined;
  /** OpenAPI schema of the 2xx answer. */
  readonly response: string;
  /** Request headers the OpenAPI requires. */
  readonly headers: readonly string[];
  /** Query parameters the OpenAPI defines for the operation, and whether each is required. */
  readonly query: Readonly<Record<string, 'required' | 'optional'>>;
}

/** A DICT operation name. */
export type DictOperation = keyof typeof DICT_OPERATIONS;

/** A DICT body that does not match the OpenAPI schema: `DICT_BODY_INVALID`, naming the path. */
export class DictBodyError extends PermanentError {
  constructor(message: string) {
    super('DICT_BODY_INVALID', message);
  }
}

interface Schema {
  $ref?: string;
  type?: string;
  allOf?: Schema[];
  oneOf?: Schema[];
  title?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: string[];
  pattern?: string;
  xml?: { name?: string; namespace?: string; prefix?: string };
}

let schemas: Record<string, Schema> | undefined;
function components(): Record<string, Schema> {
  schemas ??= (JSON.parse(readFileSync(join(import.meta.dirname, 'openapi-2.12.1.json'), 'utf8')) as { components: { schemas: Record<string, Schema> } }).components.schemas;
  return schemas;
}

/** Resolves `$ref` and merges `allOf` into one schema. */
function resolve(schema: Schema): Schema {
  if (schema.$ref !== undefined) {
    const target = components()[schema.$ref.replace('#/components/schemas/', '')];
    if (target === undefined) throw new Error(`unresolved ${schema.$ref}`);
    return resolve(target);
  }
  if (schema.allOf !== undefined) {
    let merged: Schema = { ...schema, allOf: undefined };
    for (const part of schema.allOf) {
      const r = resolve(part);
      const properties = r.properties === undefined && merged.properties === undefined ? undefined : { ...r.properties, ...merged.properties };
      const required = [...(r.required ?? []), ...(merged.required ?? [])];
      merged = { ...r, ...merged, ...(properties === undefined ? {} : { properties }), ...(required.length === 0 ? {} : { required }) };
    }
    return merged;
  }
  return schema;
}

function itemName(property: string, items: Schema): string {
  if (items.$ref !== undefined) {
    const target = components()[items.$ref.replace('#/components/schemas/', '')];
    if (target?.xml?.name !== undefined) return target.xml.name;
  }
  return property.endsWith('s') ? property.slice(0, -1) : property;
}

function isObject(schema: Schema): boolean {
  return schema.type === 'object' || schema.properties !== undefined;
}

/**
 * Picks the `oneOf` variant (e.g. NATURAL_PERSON / LEGAL_PERSON of `Person`) whose title is the
 * value's `Type`, else the first whose properties hold every key given.
 */
function variant(schema: Schema, type: string | undefined, keys: readonly string[]): Schema {
  if (schema.oneOf === undefined) return schema;
  const variants = schema.oneOf.map(resolve);
  const chosen =
    variants.find((v) => type !== undefined && v.title === type) ?? variants.find((v) => keys.every((k) => k in (v.properties ?? {}))) ?? variants[0];
  return chosen ?? schema;
}

const patternCache = new Map<string, RegExp | undefined>();

/** The OpenAPI pattern as a RegExp; the spec uses Java's `(?i)`, mapped to the `i` flag. */
function compilePattern(pattern: string | undefined): RegExp | undefined {
  if (pattern === undefined) return undefined;
  if (!patternCache.has(pattern)) {
    const insensitive = pattern.includes('(?i)');
    let compiled: RegExp | undefined;
    try {
      compiled = new RegExp(`^(?:${pattern.replace('(?i)', '')})$`, insensitive ? 'iu' : 'u');
    } catch {
      compiled = undefined; // a pattern JavaScript cannot express is left to the DICT to check
    }
    patternCache.set(pattern, compiled);
  }
  return patternCache.get(pattern);
}

function writeValue(name: string, schema: Schema, value: DictValue, path: string, indent: string, out: string[], strict: boolean): void {
  const resolved = resolve(schema);
  if (resolved.type === 'array') {
    if (!Array.isArray(value)) throw new DictBodyError(`${path} must be a list`);
    const items = resolved.items ?? {};
    out.push(`${indent}<${name}>`);
    value.forEach((item, i) => writeValue(itemName(name, items), items, item, `${path}[${i}]`, `${indent}    `, out, strict));
    out.push(`${indent}</${name}>`);
    return;
  }
  if (isObject(resolved)) {
    if (typeof value !== 'object' || Array.isArray(value)) throw new DictBodyError(`${path} must be an object`);
    out.push(`${indent}<${name}>`);
    const type = value.Type;
    writeProperties(variant(resolved, typeof type === 'string' ? type : undefined, Object.keys(value)), value, path, `${indent}    `, out, strict);
    out.push(`${indent}</${name}>`);
    return;
  }
  if (typeof value !== 'string') throw new DictBodyError(`${path} must be text`);
  if (resolved.enum !== undefined && !resolved.enum.includes(value)) throw new DictBodyError(`${path} must be one of ${resolved.enum.join(', ')}, got ${JSON.stringify(value)}`);
  const pattern = compilePattern(resolved.pattern);
  if (pattern !== undefined && !pattern.test(value)) throw new DictBodyError(`${path} does not match ${resolved.pattern ?? ''}`);
  out.push(`${indent}<${name}>${escapeXmlText(value)}</${name}>`);
}

function writeProperties(schema: Schema, value: DictObject, path: string, indent: string, out: string[], strict: boolean): void {
  const properties = schema.properties ?? {};
  for (const required of strict ? (schema.required ?? []) : []) {
    if (value[required] === undefined) throw new DictBodyError(`${path}/${required} is required`);
  }
  for (const key of Object.keys(value)) {
    if (!(key in properties)) throw new DictBodyError(`${path}/${key} is not in the schema`);
  }
  for (const [property, propertySchema] of Object.entries(properties)) {
    // The signature is added by shared/xmldsig's signDict, never by the body builder.
    if (property === 'Signature') continue;
    const v = value[property];
    if (v !== undefined) writeValue(property, propertySchema, v, `${path}/${property}`, indent, out, strict);
  }
}

/** Options of {@link buildDictBody}. */
export interface DictBuildOptions {
  /**
   * Refuse bodies that lack a required field. Turn off only to echo a body received from the DICT.
   * @defaultValue true
   */
  strict?: boolean;
}

/**
 * Writes a DICT body of the named OpenAPI schema (e.g. `CreateEntryRequest`): elements in the
 * schema's property order, lists wrapped (`<Claims><Claim>…`), enums and patterns checked,
 * without `Signature` (sign the result with `signDict`).
 *
 * @throws {@link DictBodyError} naming the offending path.
 */
export function buildDictBody(schemaName: string, value: DictObject, options: DictBuildOptions = {}): string {
  const schema = components()[schemaName];
  if (schema === undefined) throw new RangeError(`unknown DICT schema ${schemaName}`);
  const resolved = resolve(schema);
  const name = resolved.xml?.name ?? schemaName;
  const namespace = resolved.xml?.namespace;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', namespace === undefined ? `<${name}>` : `<${name} xmlns="${namespace}">`];
  writeProperties(resolved, value, `/${name}`, '    ', out, options.strict ?? true);
  out.push(`</${name}>`);
  return out.join('\n');
}

function readValue(element: XmlElement, schema: Schema): DictValue {
  const resolved = resolve(schema);
  if (resolved.type === 'array') return childElements(element).map((child) => readValue(child, resolved.items ?? {}));
  if (isObject(resolved)) {
    const children = childElements(element);
    const typeElement = children.find((c) => c.localName === 'Type');
    const chosen = variant(resolved, typeElement === undefined ? undefined : textContent(typeElement).trim(), children.map((c) => c.localName));
    return readProperties(element, chosen);
  }
  return textContent(element).trim();
}

function readProperties(element: XmlElement, schema: Schema): DictObject {
  const properties = schema.properties ?? {};
  const out: DictObject = {};
  for (const child of childElements(element)) {
    if (child.localName === 'Signature') continue;
    const propertySchema = properties[child.localName];
    if (propertySchema === undefined) throw new DictBodyError(`${elementPath(child)} is not in the schema`);
    out[child.localName] = readValue(child, propertySchema);
  }
  // Reading is lenient about missing fields (the BCB's own examples omit some); writing is strict.
  return out;
}

/**
 * Reads a DICT body of the named schema from a (verified) root element, a parsed document or
 * text. The `Signature` element is skipped.
 *
 * @throws {@link DictBodyError} naming the offending path.
 */
export function parseDictBody(schemaName: string, input: XmlElement | XmlDocument | string): DictObject {
  const root = typeof input === 'string' ? parseXml(input).root : 'root' in input ? input.root : input;
  const schema = components()[schemaName];
  if (schema === undefined) throw new RangeError(`unknown DICT schema ${schemaName}`);
  const resolved = resolve(schema);
  const name = resolved.xml?.name ?? schemaName;
  if (root.localName !== name) throw new DictBodyError(`expected <${name}>, found <${root.name}>`);
  return readProperties(root, resolved);
}

/** An RFC 7807 problem as the DICT returns it (`application/problem+xml`). */
export interface DictProblem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly correlationId?: string;
  readonly violations?: readonly DictObject[];
}

/** Reads an `application/problem+xml` body (`<problem xmlns="urn:ietf:rfc:7807">`). */
export function parseDictProblem(input: XmlElement | XmlDocument | string): DictProblem {
  const body = parseDictBody('Problem', input);
  const status = Number(body.status);
  if (typeof body.type !== 'string' || typeof body.title !== 'string' || !Number.isInteger(status)) throw new DictBodyError('problem needs type, title and an integer status');
  return {
    type: body.type,
    title: body.title,
    status,
    ...(typeof body.detail === 'string' ? { detail: body.detail } : {}),
    ...(typeof body.correlationId === 'string' ? { correlationId: body.correlationId } : {}),
    ...(Array.isArray(body.violations) ? { violations: body.violations as DictObject[] } : {}),
  };
}

/** Writes an `application/problem+xml` body. */
export function buildDictProblem(problem: DictProblem): string {
  const { status, violations, ...rest } = problem;
  return buildDictBody('Problem', { ...rest, status: String(status), ...(violations === undefined ? {} : { violations: [...violations] }) });
}
