import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DICT_OPERATIONS } from '../../../shared/dict/index.ts';

interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
}
interface OpenApi {
  paths: Record<string, Record<string, { operationId?: string; parameters?: Parameter[] } | Parameter[]>>;
  components: { parameters?: Record<string, Parameter> };
}

// The DICT OpenAPI 2.12.1 as the repository keeps it (a byte copy of shared/spec/dict-2.12.1/openapi.json).
const openapi = JSON.parse(readFileSync(join(import.meta.dirname, '../../../shared/dict/openapi-2.12.1.json'), 'utf8')) as OpenApi;

function parametersOf(path: string, method: string): Parameter[] {
  const item = openapi.paths[path];
  if (item === undefined) throw new Error(`no ${path} in the OpenAPI`);
  const operation = item[method.toLowerCase()] as { parameters?: Parameter[] } | undefined;
  if (operation === undefined) throw new Error(`no ${method} ${path} in the OpenAPI`);
  const all = [...((item.parameters as Parameter[] | undefined) ?? []), ...(operation.parameters ?? [])];
  return all.map((p) => (p.$ref === undefined ? p : (openapi.components.parameters?.[p.$ref.split('/').pop() ?? ''] ?? p)));
}

describe('DICT_OPERATIONS against the DICT OpenAPI 2.12.1', () => {
  for (const [name, spec] of Object.entries(DICT_OPERATIONS)) {
    it(`${name} names every header the OpenAPI marks required for ${spec.method} ${spec.path}`, () => {
      const required = parametersOf(spec.path, spec.method).filter((p) => p.in === 'header' && p.required === true).map((p) => p.name);
      expect([...spec.headers].sort()).toEqual(required.sort());
    });

    it(`${name} lists the query parameters of ${spec.method} ${spec.path} with the OpenAPI's required flag`, () => {
      const query = Object.fromEntries(parametersOf(spec.path, spec.method).filter((p) => p.in === 'query').map((p) => [p.name, p.required === true ? 'required' : 'optional']));
      expect(spec.query).toEqual(query);
    });
  }
});
