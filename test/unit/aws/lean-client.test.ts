import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAwsClients, leanClient } from '../../../shared/aws/index.ts';
import { REMOVED_STEPS, USER_AGENT_STEP, userAgentHeaders } from '../../../shared/aws/lean-client.ts';
import { startLoopbackHttp } from '../../support/loopback-http.ts';
import type { LoopbackHttp } from '../../support/loopback-http.ts';

// A loopback server that keeps what it was sent and answers `{}`, so the real SDK clients run
// their whole chain, signing included, without a stand-in.
interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
let server: LoopbackHttp;
let endpoint: string;
const received: Received[] = [];

beforeAll(async () => {
  server = await startLoopbackHttp((request, body, response) => {
    received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end('{}');
  });
  endpoint = server.url;
});

afterAll(() => server.close());

const hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/**
 * Checks a request's SigV4 signature from scratch (AWS's "Create a signed AWS API request":
 * canonical request, string to sign, derived key), independently of the SDK's signer.
 */
function signatureOf(request: Received, secret: string): { expected: string; given: string } {
  const authorization = String(request.headers.authorization);
  const match = /^AWS4-HMAC-SHA256 Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/u.exec(authorization);
  if (match === null) throw new Error(`not a SigV4 Authorization header: ${authorization}`);
  const [, date = '', region = '', service = '', signedHeaders = '', given = ''] = match;
  const names = signedHeaders.split(';');
  const canonicalHeaders = names.map((name) => `${name}:${String(request.headers[name]).trim()}\n`).join('');
  const canonical = [request.method, request.path, '', canonicalHeaders, signedHeaders, hex(request.body)].join('\n');
  const amzDate = String(request.headers['x-amz-date']);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  return { expected: hmac(key, toSign).toString('hex'), given };
}

describe('leanClient', () => {
  it('signs every request correctly with one signer per auth scheme, built once', async () => {
    const clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints: { dynamodb: endpoint, sqs: endpoint } });
    received.length = 0;
    try {
      const signer = vi.spyOn(clients.dynamodb.config, 'signer');
      for (let i = 0; i < 3; i += 1) await clients.dynamodb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: `k${i}` } } }));
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: `${endpoint}/000000000000/q`, MessageBody: 'x' })).catch(() => undefined);
      // The same signer each time (the SDK's factory would build a new one per request).
      const signers = await Promise.all(signer.mock.results.map((result) => result.value as Promise<unknown>));
      expect(signers).toHaveLength(3);
      expect(new Set(signers).size).toBe(1);
      expect(received.length).toBe(4);
      for (const request of received) {
        const { expected, given } = signatureOf(request, 'test');
        expect(given).toBe(expected);
      }
      expect(String(received[0]?.headers.authorization)).toContain('/sa-east-1/dynamodb/aws4_request');
      expect(String(received[3]?.headers.authorization)).toContain('/sa-east-1/sqs/aws4_request');
    } finally {
      clients.destroy();
    }
  });

  it('sends the user agent computed once from the SDK’s own sections, and no Lambda trace header', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'f');
    vi.stubEnv('_X_AMZN_TRACE_ID', 'Root=1-00000000-000000000000000000000000');
    const plain = new DynamoDBClient({ region: 'sa-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const sections = vi.spyOn(plain.config, 'defaultUserAgentProvider');
    const client = leanClient(plain);
    received.length = 0;
    try {
      await client.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'a' } } }));
      await client.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'b' } } }));
      expect(sections).toHaveBeenCalledTimes(1);
      for (const request of received) {
        expect(request.headers['user-agent']).toMatch(/^aws-sdk-js\/\d[^ ]* ua\/2\.1 .*api\/dynamodb#\d[^ ]* app\/selo$/u);
        expect(request.headers['x-amz-user-agent']).toMatch(/^aws-sdk-js\/\d/u);
        expect(request.headers['x-amzn-trace-id']).toBeUndefined();
      }
      const steps = client.middlewareStack.identify().join('\n');
      for (const step of REMOVED_STEPS) expect(steps).not.toContain(step);
      expect(steps).toContain(USER_AGENT_STEP);
    } finally {
      vi.unstubAllEnvs();
      client.destroy();
    }
  });

  it('makes user-agent tokens of the sections as the SDK does, replacing what a token cannot carry', () => {
    expect(userAgentHeaders([['aws-sdk-js', '3.1'], ['ua', '2.1'], ['os/linux', '6.1.0-x (y)#2'], ['lang/js'], ['md/nodejs', '24.2'], ['api/DynamoDB', '3.1']])).toEqual({
      userAgent: 'aws-sdk-js/3.1 ua/2.1 os/linux#6.1.0-x--y-#2 lang/js md/nodejs#24.2 api/dynamodb#3.1 app/selo',
      amzUserAgent: 'aws-sdk-js/3.1',
    });
    expect(userAgentHeaders([])).toEqual({ userAgent: 'app/selo', amzUserAgent: '' });
    expect(userAgentHeaders([['aws-sdk-js', '3.1']], 'core banking', [['bank', '2']])).toEqual({ userAgent: 'aws-sdk-js/3.1 app/core-banking bank/2', amzUserAgent: 'aws-sdk-js/3.1 bank/2' });
  });

  it('keeps the client’s app id and custom user agent, and leaves a lean client as it is', async () => {
    const client = leanClient(leanClient(new DynamoDBClient({ region: 'sa-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, userAgentAppId: 'pix-gw', customUserAgent: 'bank/7' })));
    received.length = 0;
    try {
      await client.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'a' } } }));
      expect(received[0]?.headers['user-agent']).toMatch(/ app\/pix-gw bank\/7$/u);
      expect(client.middlewareStack.identify().filter((step) => step.startsWith(`${USER_AGENT_STEP} `))).toHaveLength(1);
    } finally {
      client.destroy();
    }
  });

  it('signs with rotated credentials as soon as the provider hands them out', async () => {
    let issued = 0;
    // Credentials that expire within the SDK's refresh window: asked for again on every request.
    const credentials = (): Promise<{ accessKeyId: string; secretAccessKey: string; expiration: Date }> => {
      issued += 1;
      return Promise.resolve({ accessKeyId: `AK${issued}`, secretAccessKey: `secret${issued}`, expiration: new Date(Date.now() + 60_000) });
    };
    const client = leanClient(new DynamoDBClient({ region: 'sa-east-1', endpoint, credentials }));
    received.length = 0;
    try {
      await client.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'a' } } }));
      await client.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'b' } } }));
      const keys = received.map((request) => /Credential=(AK\d+)\//u.exec(String(request.headers.authorization))?.[1]);
      expect(keys).toHaveLength(2);
      expect(keys[0]).not.toBe(keys[1]);
      for (const request of received) {
        const key = /Credential=AK(\d+)\//u.exec(String(request.headers.authorization))?.[1] ?? '';
        const { expected, given } = signatureOf(request, `secret${key}`);
        expect(given).toBe(expected);
      }
    } finally {
      client.destroy();
    }
  });
});
