import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { BucketLocationConstraint } from '@aws-sdk/client-s3';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateEventBusCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import type { AwsClients } from '../../shared/aws/index.ts';
import type { ResolvedTopology } from '../topology.ts';

/** Where a provisioned queue lives. */
export interface ProvisionedQueue {
  url: string;
  arn: string;
  dlqUrl: string;
  dlqArn: string;
}

/** What {@link provisionTopology} created (or found). */
export interface ProvisionedTopology {
  topology: ResolvedTopology;
  /** Queues by logical key. */
  queues: Readonly<Record<string, ProvisionedQueue>>;
  /** Things the target could not do, e.g. dynalite has no TTL. */
  warnings: readonly string[];
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function createQueue(clients: AwsClients, name: string, attributes: Record<string, string>): Promise<{ url: string; arn: string }> {
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl;
  if (url === undefined) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  const attrs = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = attrs.Attributes?.QueueArn;
  if (arn === undefined) throw new Error(`queue ${name} has no QueueArn`);
  return { url, arn };
}

/**
 * Creates the saga table with its `by-state` index and TTL, idempotently (what exists is left as
 * it is): what {@link provisionTopology} does for DynamoDB, also used by the stand-ins' benchmark.
 * Returns the warnings (a stand-in without TTL).
 */
export async function provisionSagaTable(dynamodb: DynamoDBClient, table: ResolvedTopology['sagaTable']): Promise<string[]> {
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: table.name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: table.partitionKey, AttributeType: 'S' },
          { AttributeName: table.sortKey, AttributeType: 'S' },
          { AttributeName: table.stateIndex.partitionKey, AttributeType: 'S' },
          { AttributeName: table.stateIndex.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: table.partitionKey, KeyType: 'HASH' },
          { AttributeName: table.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: table.stateIndex.name,
            KeySchema: [
              { AttributeName: table.stateIndex.partitionKey, KeyType: 'HASH' },
              { AttributeName: table.stateIndex.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'ResourceInUseException') throw error;
  }
  await waitFor(`table ${table.name}`, async () => {
    const described = await dynamodb.send(new DescribeTableCommand({ TableName: table.name }));
    return described.Table?.TableStatus === 'ACTIVE';
  });
  try {
    await dynamodb.send(
      new UpdateTimeToLiveCommand({ TableName: table.name, TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true } }),
    );
  } catch (error) {
    // dynalite implements no TTL (DESIGN §3); readers must treat expired items as absent anyway,
    // because DynamoDB deletes them only eventually.
    return [`table ${table.name}: TTL not enabled (${errorName(error) || 'error'}); expired items are filtered on read`];
  }
  return [];
}

/**
 * Creates the topology's resources through the real SDK clients, idempotently: what exists is
 * left as it is. Used for the local stand-ins; in AWS the CDK app builds the same declaration.
 */
export async function provisionTopology(clients: AwsClients, topology: ResolvedTopology, region: string): Promise<ProvisionedTopology> {
  const warnings: string[] = [];
  const queues: Record<string, ProvisionedQueue> = {};
  for (const queue of topology.queues) {
    const dlq = await createQueue(clients, queue.dlqName, { MessageRetentionPeriod: String(queue.dlqRetentionSeconds) });
    const main = await createQueue(clients, queue.name, {
      VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(queue.messageRetentionSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: queue.maxReceiveCount }),
    });
    queues[queue.key] = { url: main.url, arn: main.arn, dlqUrl: dlq.url, dlqArn: dlq.arn };
  }

  for (const bucket of [topology.auditBucket, topology.payloadBucket]) {
    try {
      await clients.s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // us-east-1 is the one region that must not name itself (S3 API reference).
          ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
        }),
      );
    } catch (error) {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(errorName(error))) throw error;
    }
  }

  const stream = topology.auditStream;
  try {
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: stream.name, ShardCount: stream.shardCount }));
  } catch (error) {
    if (errorName(error) !== 'ResourceInUseException') throw error;
  }
  await waitFor(`stream ${stream.name}`, async () => {
    const summary = await clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream.name }));
    return summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  });

  warnings.push(...(await provisionSagaTable(clients.dynamodb, topology.sagaTable)));

  try {
    await clients.events.send(new CreateEventBusCommand({ Name: topology.eventBusName }));
  } catch (error) {
    if (errorName(error) !== 'ResourceAlreadyExistsException') throw error;
  }
  for (const rule of topology.rules) {
    await clients.events.send(
      new PutRuleCommand({
        Name: rule.name,
        EventBusName: topology.eventBusName,
        EventPattern: JSON.stringify(rule.eventPattern),
        State: 'ENABLED',
        Description: rule.description,
      }),
    );
    const result = await clients.events.send(
      new PutTargetsCommand({
        Rule: rule.name,
        EventBusName: topology.eventBusName,
        Targets: rule.targets.map((target) => {
          const queue = queues[target.queue];
          if (queue === undefined) throw new Error(`rule ${rule.key} targets unknown queue ${target.queue}`);
          return { Id: target.queue, Arn: queue.arn };
        }),
      }),
    );
    if ((result.FailedEntryCount ?? 0) > 0) {
      throw new Error(`PutTargets for rule ${rule.name} failed: ${JSON.stringify(result.FailedEntries)}`);
    }
  }
  return { topology, queues, warnings };
}
