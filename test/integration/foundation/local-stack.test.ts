import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack, provisionTopology } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { createAwsClients } from '../../../shared/aws/index.ts';
import { loadConfig } from '../../../shared/config/index.ts';
import { waitingPolls, watchFauxqsWaiters } from '../../support/fauxqs-waiters.ts';
import { waitUntil } from '../../support/wait-until.ts';

let stack: LocalStack;

beforeAll(async () => {
  await watchFauxqsWaiters();
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack.close();
});

function queue(key: string): { url: string; arn: string; dlqUrl: string } {
  const found = stack.provisioned?.queues[key];
  if (found === undefined) throw new Error(`queue ${key} not provisioned`);
  return found;
}

async function receiveAll(url: string, waitSeconds = 1): Promise<{ body: string; receiptHandle: string }[]> {
  const result = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }));
  return (result.Messages ?? []).map((m) => ({ body: m.Body ?? '', receiptHandle: m.ReceiptHandle ?? '' }));
}

async function deleteAll(url: string, messages: readonly { receiptHandle: string }[]): Promise<void> {
  for (const m of messages) await stack.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.receiptHandle }));
}

describe('local stack', () => {
  it('binds every stand-in to loopback', () => {
    for (const url of [stack.endpoints.sqs, stack.endpoints.events, stack.endpoints.kinesis, stack.endpoints.dynamodb]) {
      expect(new URL(url).hostname).toBe('127.0.0.1');
    }
  });

  it('provisions every queue of the topology with its DLQ and receive budget', async () => {
    const topology = resolveTopology('local');
    for (const declared of topology.queues) {
      const attributes = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queue(declared.key).url, AttributeNames: ['All'] }),
      );
      expect(attributes.Attributes?.VisibilityTimeout).toBe(String(declared.visibilityTimeoutSeconds));
      const redrive = JSON.parse(attributes.Attributes?.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string; maxReceiveCount?: number | string };
      expect(redrive.deadLetterTargetArn).toMatch(new RegExp(`:${declared.dlqName}$`));
      expect(Number(redrive.maxReceiveCount)).toBe(declared.maxReceiveCount);
    }
  });

  it('provisions idempotently', async () => {
    const again = await provisionTopology(stack.clients, resolveTopology('local'), stack.endpoints.region);
    expect(again.queues.sign?.url).toBe(queue('sign').url);
  });

  it('delivers a message sent to a topology queue', async () => {
    const body = JSON.stringify({ probe: randomUUID() });
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('verify').url, MessageBody: body }));
    const received = await receiveAll(queue('verify').url);
    expect(received.map((m) => m.body)).toContain(body);
    // Consumed: otherwise it comes back after the queue's visibility timeout, into later tests.
    await deleteAll(queue('verify').url, received);
  });

  it('answers only the long polls that receive something, as Amazon SQS does', async () => {
    const { QueueUrl } = await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: `long-poll-${randomUUID()}` }));
    const url = QueueUrl ?? '';
    const answered: number[] = [];
    const polls = [0, 1, 2, 3].map(async (poller) => {
      const result = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }));
      answered.push(result.Messages?.length ?? 0);
      return poller;
    });
    await waitUntil('four polls waiting', () => waitingPolls(url) === 4);
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'one' }));
    await waitUntil('a poll answered', () => answered.length > 0);
    // One message: one poll answered with it, the other three still waiting (fauxqs alone answers all four).
    expect(waitingPolls(url)).toBe(3);
    expect(answered).toEqual([1]);
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'two' }));
    await waitUntil('a second poll answered', () => answered.length > 1);
    expect(waitingPolls(url)).toBe(2);
    expect(answered).toEqual([1, 1]);
    await Promise.all(polls);
    // The rest end empty at WaitTimeSeconds.
    expect(answered).toEqual([1, 1, 0, 0]);
  });

  it('answers a batch of 12 messages with two of four waiting long polls', async () => {
    const { QueueUrl } = await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: `long-poll-batch-${randomUUID()}` }));
    const url = QueueUrl ?? '';
    const answered: number[] = [];
    const polls = [0, 1, 2, 3].map(async () => {
      const result = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }));
      answered.push(result.Messages?.length ?? 0);
    });
    await waitUntil('four polls waiting', () => waitingPolls(url) === 4);
    const entries = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ Id: `m${from + i}`, MessageBody: `m${from + i}` }));
    await stack.clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries(0, 10) }));
    await stack.clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries(10, 12) }));
    await Promise.all(polls);
    expect([...answered].sort((a, b) => b - a)).toEqual([10, 2, 0, 0]);
  });

  it('moves a message to the DLQ after maxReceiveCount failed receives', async () => {
    // A private queue with a small budget, built the way the topology builds its queues.
    const name = `dlq-probe-${randomUUID().slice(0, 8)}`;
    const dlq = await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
    const dlqArn = (await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    const maxReceiveCount = 3;
    const main = await stack.clients.sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }) } }),
    );
    const url = main.QueueUrl ?? '';
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
    for (let attempt = 1; attempt <= maxReceiveCount; attempt += 1) {
      const [message] = await receiveAll(url);
      expect(message?.body, `receive ${attempt}`).toBe('poison');
      // The handler "fails": make the message visible again at once.
      await stack.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message?.receiptHandle, VisibilityTimeout: 0 }));
    }
    expect(await receiveAll(url, 0)).toEqual([]);
    const dead = await receiveAll(dlq.QueueUrl ?? '');
    expect(dead.map((m) => m.body)).toEqual(['poison']);
  });

  it('delivers an event put on the bus to the matching rule\'s queue with the AWS envelope', async () => {
    const topology = resolveTopology('local');
    const endToEndId = `E99999004${Date.now()}`;
    const put = await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [
          { EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested', Detail: JSON.stringify({ version: 1, endToEndId }) },
        ],
      }),
    );
    expect(put.FailedEntryCount).toBe(0);
    const received = await receiveAll(queue('sign').url, 2);
    await deleteAll(queue('sign').url, received);
    const [message] = received;
    const envelope = JSON.parse(message?.body ?? '{}') as Record<string, unknown>;
    expect(envelope).toMatchObject({
      version: '0',
      id: put.Entries?.[0]?.EventId,
      'detail-type': 'PaymentRequested',
      source: 'core.banking',
      account: stack.accountId,
      region: stack.endpoints.region,
      resources: [],
      detail: { version: 1, endToEndId },
    });
    expect(envelope.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it('delivers a non-matching event nowhere', async () => {
    const topology = resolveTopology('local');
    const probeQueue = await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: `catch-all-${randomUUID().slice(0, 8)}` }));
    const probeArn = (await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: probeQueue.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    // A control rule proves events do flow while the topology's rules ignore this one.
    await stack.clients.events.send(new PutRuleCommand({ Name: 'control', EventBusName: topology.eventBusName, EventPattern: JSON.stringify({ source: ['someone.else'] }) }));
    await stack.clients.events.send(new PutTargetsCommand({ Rule: 'control', EventBusName: topology.eventBusName, Targets: [{ Id: 'probe', Arn: probeArn }] }));
    await stack.clients.events.send(
      new PutEventsCommand({ Entries: [{ EventBusName: topology.eventBusName, Source: 'someone.else', DetailType: 'PaymentRequested', Detail: '{}' }] }),
    );
    expect((await receiveAll(probeQueue.QueueUrl ?? '', 2)).length).toBe(1);
    for (const declared of topology.queues) {
      expect(await receiveAll(queue(declared.key).url, 0), declared.key).toEqual([]);
    }
  });

  it('round-trips records on the audit stream', async () => {
    const stream = resolveTopology('local').auditStream.name;
    const records = Array.from({ length: 20 }, (_, i) => ({ Data: Buffer.from(JSON.stringify({ seq: i })), PartitionKey: `saga-${i}` }));
    const put = await stack.clients.kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: records }));
    expect(put.FailedRecordCount).toBe(0);
    const shards = await stack.clients.kinesis.send(new ListShardsCommand({ StreamName: stream }));
    const seen: number[] = [];
    for (const shard of shards.Shards ?? []) {
      const iterator = await stack.clients.kinesis.send(
        new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
      );
      const got = await stack.clients.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator.ShardIterator }));
      for (const record of got.Records ?? []) seen.push((JSON.parse(Buffer.from(record.Data ?? []).toString('utf8')) as { seq: number }).seq);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
  });

  it('refuses a second conditional put on the saga table', async () => {
    const table = resolveTopology('local').sagaTable;
    const item = { pk: { S: `PAY#${randomUUID()}` }, sk: { S: 'SAGA' }, state: { S: 'REQUESTED' }, updatedAt: { S: new Date().toISOString() } };
    const put = (): Promise<unknown> =>
      stack.clients.dynamodb.send(new PutItemCommand({ TableName: table.name, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    await put();
    await expect(put()).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  });

  it('stores and returns objects in the audit bucket', async () => {
    const bucket = resolveTopology('local').auditBucket;
    await stack.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'probe/hello.txt', Body: 'olá' }));
    const got = await stack.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'probe/hello.txt' }));
    expect(await got.Body?.transformToString()).toBe('olá');
  });

  it('points configuration parsed from its environment at itself', async () => {
    const config = loadConfig(stack.env());
    expect(config.aws.endpoints).toEqual({
      sqs: stack.endpoints.sqs,
      s3: stack.endpoints.s3,
      events: stack.endpoints.events,
      kinesis: stack.endpoints.kinesis,
      dynamodb: stack.endpoints.dynamodb,
    });
    const clients = createAwsClients(config.aws);
    try {
      const attributes = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue('sign').url, AttributeNames: ['QueueArn'] }));
      expect(attributes.Attributes?.QueueArn).toBe(queue('sign').arn);
    } finally {
      clients.destroy();
    }
  });
});
