import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetItemCommand, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import type { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { provisionSagaTable, startDynamoDbLocal, startLocalStack } from '../../../infra/local/index.ts';
import type { DynamoDbLocal } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { createAwsClients } from '../../../shared/aws/index.ts';
import type { AwsClients } from '../../../shared/aws/index.ts';
import { waitUntil } from '../../support/wait-until.ts';

const table = resolveTopology('local').sagaTable;
let server: DynamoDbLocal;
let clients: AwsClients;

beforeAll(async () => {
  server = await startDynamoDbLocal();
  clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints: { dynamodb: server.url } });
});

afterAll(async () => {
  clients.destroy();
  await server.close();
});

/** Local addresses (hex, as /proc/net shows them) of the sockets listening on `port`. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      // state 0A: LISTEN
      .filter((fields) => fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`))
      .map((fields) => (fields[1] ?? '').split(':')[0] ?? ''),
  );
}

describe('DynamoDB Local', () => {
  it('listens on loopback only, not on every interface as its jar does', () => {
    const addresses = listeningAddresses(server.port);
    expect(addresses.length).toBeGreaterThan(0);
    // 127.0.0.1, as IPv4 or as an IPv4-mapped IPv6 address.
    for (const address of addresses) expect(['0100007F', '0000000000000000FFFF00000100007F']).toContain(address);
  });

  it('creates the saga table with TTL enabled, without the warning dynalite gives', async () => {
    expect(await provisionSagaTable(clients.dynamodb, { ...table, name: 'ttl-saga' })).toEqual([]);
  });

  it('cancels a transaction whose condition fails, writes none of it, and returns the item that failed it', async () => {
    const name = 'tx-saga';
    await provisionSagaTable(clients.dynamodb, { ...table, name });
    const key = (pk: string): { pk: { S: string }; sk: { S: string } } => ({ pk: { S: pk }, sk: { S: 'SAGA' } });
    await clients.dynamodb.send(new PutItemCommand({ TableName: name, Item: { ...key('PAY#held'), state: { S: 'SIGNED' } } }));
    const cancelled = await clients.dynamodb
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: name, Item: key('BIZMSG#new'), ConditionExpression: 'attribute_not_exists(pk)' } },
            {
              Update: {
                TableName: name, Key: key('PAY#held'), UpdateExpression: 'SET #s = :to', ConditionExpression: '#s = :from',
                ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':to': { S: 'TRANSMITTING' }, ':from': { S: 'REQUESTED' } },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
          ],
        }),
      )
      .then(() => undefined, (error: unknown) => error as TransactionCanceledException);
    expect(cancelled?.name).toBe('TransactionCanceledException');
    expect(cancelled?.CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'ConditionalCheckFailed']);
    expect(cancelled?.CancellationReasons?.[1]?.Item?.state).toEqual({ S: 'SIGNED' });
    expect((await clients.dynamodb.send(new GetItemCommand({ TableName: name, Key: key('BIZMSG#new'), ConsistentRead: true }))).Item).toBeUndefined();
  });

  it('ends when the process that started it is killed', async () => {
    const module = fileURLToPath(new URL('../../../infra/local/dynamodb-local.ts', import.meta.url));
    const parent = spawn(process.execPath, ['--input-type=module', '-e', `const { startDynamoDbLocal } = await import(${JSON.stringify(module)}); const d = await startDynamoDbLocal(); console.log('jvm ' + d.pid); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const jvm = Number(await waitUntil('the JVM started by the child', () => /jvm (\d+)/.exec(out)?.[1], { timeoutMs: 90_000 }));
    const alive = (): boolean => {
      try {
        process.kill(jvm, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    parent.kill('SIGKILL');
    await waitUntil('the JVM gone after its parent was SIGKILLed', () => !alive(), { timeoutMs: 30_000 });
    expect(alive()).toBe(false);
  }, 120_000);
});

describe('the local stack with dynalite chosen', () => {
  it('runs dynalite, and provisioning says it has no TTL', async () => {
    const stack = await startLocalStack({ dynamodb: 'dynalite' });
    try {
      expect(stack.dynamodbStandIn).toBe('dynalite');
      expect(stack.provisioned?.warnings.some((w) => w.includes('TTL not enabled'))).toBe(true);
    } finally {
      await stack.close();
    }
  });
});
