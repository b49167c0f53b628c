import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeloStack } from '../../../infra/cdk/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { AUDIT_COLUMNS } from '../../../shared/audit/audit-schema.ts';

const topology = resolveTopology('prod');
let template: Template;

type Resources = Record<string, { Properties: Record<string, unknown> }>;

beforeAll(() => {
  const app = new App();
  const stack = new SeloStack(app, 'selo-prod', { environment: 'prod', env: { account: '123456789012', region: 'sa-east-1' } });
  template = Template.fromStack(stack);
  // Synthesis takes seconds on a loaded 2-core machine.
}, 60_000);

describe('SeloStack', () => {
  it('builds exactly the declared queues, each with its DLQ and receive budget', () => {
    const queues = template.findResources('AWS::SQS::Queue') as Resources;
    const names = Object.values(queues).map((q) => q.Properties.QueueName).sort();
    expect(names).toEqual(topology.queues.flatMap((q) => [q.name, q.dlqName]).sort());
    for (const declared of topology.queues) {
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: declared.name,
        VisibilityTimeout: declared.visibilityTimeoutSeconds,
        MessageRetentionPeriod: declared.messageRetentionSeconds,
        RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: declared.maxReceiveCount },
      });
    }
  });

  it('builds exactly the declared rules with the same event patterns and queue targets', () => {
    const rules = template.findResources('AWS::Events::Rule') as Resources;
    expect(Object.values(rules).map((r) => r.Properties.Name).sort()).toEqual(topology.rules.map((r) => r.name).sort());
    for (const rule of topology.rules) {
      const found = Object.values(rules).find((r) => r.Properties.Name === rule.name);
      expect(found?.Properties.EventPattern).toEqual(rule.eventPattern);
      expect((found?.Properties.Targets as { Id: string }[]).map((t) => t.Id)).toEqual(rule.targets.map((t) => t.queue));
    }
    template.hasResourceProperties('AWS::Events::EventBus', { Name: topology.eventBusName });
  });

  it('lets EventBridge send only from selo rules to the target queues', () => {
    const policies = template.findResources('AWS::SQS::QueuePolicy') as Resources;
    const statements = Object.values(policies).flatMap((p) => (p.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);
    const fromEvents = statements.filter((s) => JSON.stringify(s.Principal).includes('events.amazonaws.com'));
    expect(fromEvents.length).toBe(topology.rules.reduce((n, r) => n + r.targets.length, 0));
    for (const statement of fromEvents) expect(statement.Condition).toHaveProperty('ArnEquals');
  });

  it('builds the audit stream, the buckets and the saga table as declared', () => {
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      Name: topology.auditStream.name,
      ShardCount: topology.auditStream.shardCount,
      RetentionPeriodHours: topology.auditStream.retentionHours,
    });
    for (const bucket of [topology.auditBucket, topology.payloadBucket]) {
      template.hasResourceProperties('AWS::S3::Bucket', {
        BucketName: bucket,
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      });
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: topology.sagaTable.name,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: topology.sagaTable.stateIndex.name })],
    });
  });

  it('delivers the audit stream to Parquet in the audit bucket, partitioned like the local delivery, with the shared schema in Glue', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamName: topology.auditStream.name,
      DeliveryStreamType: 'KinesisStreamAsSource',
      ExtendedS3DestinationConfiguration: Match.objectLike({
        Prefix: 'audit/!{partitionKeyFromQuery:system}/year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/day=!{partitionKeyFromQuery:day}/hour=!{partitionKeyFromQuery:hour}/',
        ErrorOutputPrefix: Match.stringLikeRegexp('^audit/errors/!\\{firehose:error-output-type\\}/year='),
        DynamicPartitioningConfiguration: { Enabled: true, RetryOptions: { DurationInSeconds: 300 } },
        DataFormatConversionConfiguration: Match.objectLike({
          Enabled: true,
          OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'SNAPPY' } } },
          SchemaConfiguration: Match.objectLike({ DatabaseName: 'selo_prod_audit', TableName: 'audit_spi' }),
        }),
      }),
    });
    const tables = Object.values(template.findResources('AWS::Glue::Table') as Resources).map((t) => t.Properties.TableInput as { Name: string; PartitionKeys: { Name: string; Type: string }[]; StorageDescriptor: { Location: string; Columns: { Name: string; Type: string }[] }; Parameters: Record<string, string> });
    expect(tables.map((t) => t.Name).sort()).toEqual(['audit_dict', 'audit_spi']);
    for (const table of tables) {
      const system = table.Name.slice('audit_'.length);
      expect(table.StorageDescriptor.Columns).toEqual(AUDIT_COLUMNS.map((c) => ({ Name: c.name, Type: c.glueType })));
      expect(table.PartitionKeys).toEqual(['year', 'month', 'day', 'hour'].map((name) => ({ Name: name, Type: 'int' })));
      expect(table.Parameters['storage.location.template']).toBe(`s3://${topology.auditBucket}/audit/${system}/year=\${year}/month=\${month}/day=\${day}/hour=\${hour}/`);
    }
  });

  it('retains data stores when the stack is deleted', () => {
    for (const type of ['AWS::SQS::Queue', 'AWS::Kinesis::Stream', 'AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      const resources = Object.values(template.findResources(type) as Record<string, { DeletionPolicy?: string }>);
      expect(resources.length, type).toBeGreaterThan(0);
      for (const resource of resources) {
        expect(resource.DeletionPolicy, type).toBe('Retain');
      }
    }
  });
});
