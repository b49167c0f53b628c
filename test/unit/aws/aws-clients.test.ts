import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAwsClients } from '../../../shared/aws/index.ts';
import { UndiciRequestHandler } from '../../../shared/aws/undici-request-handler.ts';
import { startLoopbackHttp } from '../../support/loopback-http.ts';
import type { LoopbackHttp } from '../../support/loopback-http.ts';

// A loopback server that answers every JSON-protocol call with `{}` (enough for PutItem and an
// empty PutRecords answer), so the real SDK clients run their whole chain without a stand-in.
let server: LoopbackHttp;
let endpoint: string;

beforeAll(async () => {
  server = await startLoopbackHttp((_request, _body, response) => {
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end('{"Records":[],"FailedRecordCount":0}');
  });
  endpoint = server.url;
});

afterAll(() => server.close());

describe('createAwsClients', () => {
  it('builds each command class’s middleware chain once per client, not on every call', async () => {
    const clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints: { dynamodb: endpoint, kinesis: endpoint } });
    const putItem = vi.spyOn(PutItemCommand.prototype, 'resolveMiddleware');
    const putRecords = vi.spyOn(PutRecordsCommand.prototype, 'resolveMiddleware');
    try {
      for (let i = 0; i < 5; i += 1) {
        await clients.dynamodb.send(new PutItemCommand({ TableName: 't', Item: { pk: { S: `k${i}` } } }));
        await clients.kinesis.send(new PutRecordsCommand({ StreamName: 's', Records: [{ Data: new Uint8Array([i]), PartitionKey: 'p' }] }));
      }
      expect(putItem).toHaveBeenCalledTimes(1);
      expect(putRecords).toHaveBeenCalledTimes(1);
    } finally {
      putItem.mockRestore();
      putRecords.mockRestore();
      clients.destroy();
    }
  });

  it('caches the chains of the clients that talk to AWS too, and sends the JSON-protocol ones through undici', () => {
    const clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints: {} });
    try {
      for (const client of [clients.sqs, clients.s3, clients.events, clients.kinesis, clients.dynamodb]) expect(client.config.cacheMiddleware).toBe(true);
      // The JSON-protocol clients send through undici; S3 keeps the SDK's handler (streamed bodies).
      for (const client of [clients.sqs, clients.events, clients.kinesis, clients.dynamodb]) expect(client.config.requestHandler).toBeInstanceOf(UndiciRequestHandler);
      expect(clients.s3.config.requestHandler).not.toBeInstanceOf(UndiciRequestHandler);
    } finally {
      clients.destroy();
    }
  });
});
