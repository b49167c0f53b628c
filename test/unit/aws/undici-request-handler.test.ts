import type { IncomingMessage, ServerResponse } from 'node:http';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UndiciRequestHandler } from '../../../shared/aws/undici-request-handler.ts';
import { startLoopbackHttp } from '../../support/loopback-http.ts';
import type { LoopbackHttp } from '../../support/loopback-http.ts';

// A loopback server speaking just enough of DynamoDB's JSON protocol; `answer` decides each reply.
let server: LoopbackHttp;
let port: number;
let answer: (request: IncomingMessage, body: string, response: ServerResponse) => void;
const seen: { target: string | undefined; path: string | undefined; body: string }[] = [];

beforeAll(async () => {
  server = await startLoopbackHttp((request, body, response) => {
    seen.push({ target: request.headers['x-amz-target'] as string | undefined, path: request.url, body });
    answer(request, body, response);
  });
  port = server.port;
});

afterAll(() => server.close());

beforeEach(() => {
  seen.length = 0;
});

function client(maxAttempts = 1, handler = new UndiciRequestHandler()): DynamoDBClient {
  return new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: 'sa-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' }, maxAttempts, requestHandler: handler });
}

/** A first attempt broken by `breakFirst`, then `{}`: one SDK client without retries rejects with ECONNRESET, one with retries succeeds on attempt 2. */
async function expectResetThenRetried(breakFirst: (request: IncomingMessage, response: ServerResponse) => void): Promise<void> {
  let calls = 0;
  answer = (request, _body, response) => {
    calls += 1;
    if (calls === 1) return breakFirst(request, response);
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end('{}');
  };
  const once = client(1);
  const retrying = client(3);
  try {
    await expect(once.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'x' } } }))).rejects.toMatchObject({ code: 'ECONNRESET' });
    calls = 0;
    await expect(retrying.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'x' } } }))).resolves.toMatchObject({ $metadata: { httpStatusCode: 200, attempts: 2 } });
  } finally {
    once.destroy();
    retrying.destroy();
  }
}

describe('UndiciRequestHandler under the real SDK', () => {
  it('sends the SDK\'s request as it is and hands back the status, headers and body the SDK parses', async () => {
    answer = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'req-1' });
      response.end(JSON.stringify({ Item: { pk: { S: 'SAGA#1' }, n: { N: '7' } } }));
    };
    const dynamodb = client();
    try {
      const got = await dynamodb.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'SAGA#1' } } }));
      expect(got.Item).toEqual({ pk: { S: 'SAGA#1' }, n: { N: '7' } });
      expect(got.$metadata).toMatchObject({ httpStatusCode: 200, requestId: 'req-1' });
      expect(seen.map(({ target, path }) => ({ target, path }))).toEqual([{ target: 'DynamoDB_20120810.GetItem', path: '/' }]);
      expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ TableName: 't', Key: { pk: { S: 'SAGA#1' } } });
    } finally {
      dynamodb.destroy();
    }
  });

  it('reads a service error\'s body, so the SDK raises the modelled exception', async () => {
    answer = (_request, _body, response) => {
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' }));
    };
    const dynamodb = client();
    try {
      await expect(dynamodb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'x' } }, ConditionExpression: 'attribute_not_exists(pk)' }))).rejects.toMatchObject({
        name: 'ConditionalCheckFailedException',
        $metadata: { httpStatusCode: 400 },
      });
    } finally {
      dynamodb.destroy();
    }
  });

  it('reports a connection broken mid-request as ECONNRESET, which the SDK retries', async () => {
    await expectResetThenRetried((request) => request.socket.destroy());
  });

  it('reports a connection lost in the middle of a response body as ECONNRESET, which the SDK retries', async () => {
    await expectResetThenRetried((request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '100' });
      response.write('{"Item":');
      setTimeout(() => request.socket.destroy(), 20);
    });
  });

  it('sends a query as SigV4 signs it (RFC 3986)', async () => {
    answer = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    };
    const handler = new UndiciRequestHandler();
    try {
      const { response } = await handler.handle({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/q', query: { a: "it's (x)*", b: ['1', '2'], c: null }, headers: {} });
      expect(response.statusCode).toBe(200);
      expect(seen.at(-1)?.path).toBe('/q?a=it%27s%20%28x%29%2A&b=1&b=2&c');
    } finally {
      handler.destroy();
    }
  });

  it('reports a server that does not answer in time as a TimeoutError, which the SDK retries', async () => {
    answer = () => undefined;
    const dynamodb = client(1, new UndiciRequestHandler({ headersTimeoutMs: 100 }));
    try {
      await expect(dynamodb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'x' } } }))).rejects.toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT' });
    } finally {
      dynamodb.destroy();
    }
  });

  it('gives up a request when its abort signal fires (sqs-consumer stopping a long poll), as an AbortError', async () => {
    answer = () => undefined;
    const dynamodb = client(3);
    const abort = new AbortController();
    try {
      const pending = dynamodb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: 'x' } } }), { abortSignal: abort.signal });
      setTimeout(() => abort.abort(), 50);
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      dynamodb.destroy();
    }
  });

  it('refuses bad options, naming the field, and refuses requests once destroyed', async () => {
    expect(() => new UndiciRequestHandler({ connections: 0 })).toThrow(/connections must be a positive integer, got 0/);
    const handler = new UndiciRequestHandler();
    handler.destroy();
    handler.destroy();
    await expect(handler.handle({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/', headers: {} })).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
