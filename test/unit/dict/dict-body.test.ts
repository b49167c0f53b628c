import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DICT_OPERATIONS, DictBodyError, buildDictBody, buildDictProblem, parseDictBody, parseDictProblem } from '../../../shared/dict/index.ts';
import { TrustStore, pemSigningKey, signDict, verifyDict } from '../../../shared/xmldsig/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

interface OpenApi {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { examples?: Record<string, { value?: unknown }>; example?: unknown }> }; responses?: Record<string, { content?: Record<string, { examples?: Record<string, { value?: unknown }>; example?: unknown }> }> }>>;
}

const OPENAPI = JSON.parse(readFileSync(join(import.meta.dirname, '../../../shared/dict/openapi-2.12.1.json'), 'utf8')) as OpenApi;

/** The XML examples the BCB embeds in the OpenAPI for one operation: request and 2xx response. */
function examplesOf(method: string, path: string): { request: string[]; response: string[] } {
  const operation = OPENAPI.paths[path]?.[method.toLowerCase()];
  const collect = (content: Record<string, { examples?: Record<string, { value?: unknown }>; example?: unknown }> | undefined): string[] => {
    const xml = content?.['application/xml'];
    const values = [xml?.example, ...Object.values(xml?.examples ?? {}).map((e) => e.value)];
    return values.filter((v): v is string => typeof v === 'string');
  };
  const ok = Object.entries(operation?.responses ?? {}).filter(([code]) => code.startsWith('2'));
  return { request: collect(operation?.requestBody?.content), response: ok.flatMap(([, r]) => collect(r.content)) };
}

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => pki.dispose());

describe('DICT bodies', () => {
  for (const [name, operation] of Object.entries(DICT_OPERATIONS)) {
    it(`reads and rewrites the BCB examples of ${name} (${operation.method} ${operation.path})`, () => {
      const examples = examplesOf(operation.method, operation.path);
      const pairs: [string, string][] = [
        ...(operation.request === undefined ? [] : examples.request.map((x): [string, string] => [operation.request, x])),
        ...examples.response.map((x): [string, string] => [operation.response, x]),
      ];
      expect(pairs.length).toBeGreaterThan(0);
      for (const [schema, xml] of pairs) {
        const value = parseDictBody(schema, xml);
        // Responses are echoed leniently: the BCB's GetEntryResponse example omits the required OwnerStatistics/SPI.
        const strict = schema === operation.request;
        expect(parseDictBody(schema, buildDictBody(schema, value, { strict }))).toEqual(value);
      }
    });
  }

  it('builds a CreateEntryRequest that signs and verifies in the DICT profile', async () => {
    const leaf = pki.issue('dict');
    const body = buildDictBody('CreateEntryRequest', {
      Entry: {
        Key: '+5561988880000',
        KeyType: 'PHONE',
        Account: { Participant: '12345678', Branch: '0001', AccountNumber: '0007654321', AccountType: 'CACC', OpeningDate: '2010-01-10T03:00:00Z' },
        Owner: { Type: 'NATURAL_PERSON', TaxIdNumber: '11122233300', Name: 'João Silva' },
      },
      Reason: 'USER_REQUESTED',
      RequestId: 'a946d533-7f22-42a5-9a9b-e87cd55c0f4d',
    });
    const trustStore = new TrustStore();
    trustStore.add(leaf.certPem);
    const verified = verifyDict(await signDict(body, pemSigningKey(leaf.keyPem, leaf.certPem)), { trustStore });
    expect(parseDictBody('CreateEntryRequest', verified.root)).toMatchObject({ Reason: 'USER_REQUESTED', Entry: { KeyType: 'PHONE' } });
  });

  it('names the path of a missing or invalid field', () => {
    expect(() => buildDictBody('DeleteEntryRequest', { Key: 'x', Participant: '12345678' })).toThrow(/\/DeleteEntryRequest\/Reason is required/);
    expect(() => buildDictBody('CreateEntryRequest', { Entry: { KeyType: 'NOPE', Account: {}, Owner: {} }, Reason: 'USER_REQUESTED', RequestId: 'x' })).toThrow(DictBodyError);
  });

  it('reads and writes application/problem+xml', () => {
    const xml = buildDictProblem({ type: 'https://dict.pi.rsfn.net.br/api/v2/error/NotFound', title: 'Not found', status: 404, detail: 'Entry not found' });
    expect(xml).toContain('<problem xmlns="urn:ietf:rfc:7807">');
    expect(parseDictProblem(xml)).toEqual({ type: 'https://dict.pi.rsfn.net.br/api/v2/error/NotFound', title: 'Not found', status: 404, detail: 'Entry not found' });
  });
});
