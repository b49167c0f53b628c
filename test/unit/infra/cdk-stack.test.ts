import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { PolicyValidationPluginReport } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SCALING, SeloStack } from '../../../infra/cdk/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { AUDIT_COLUMNS } from '../../../shared/audit/audit-schema.ts';
import { STATE_SHARD_ATTRIBUTE } from '../../../shared/saga/index.ts';

const topology = resolveTopology('prod');
const RSFN = '10.200.16.0/24';
let template: Template;
let stack: SeloStack;
let nag: PolicyValidationPluginReport;

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Resources = Record<string, Resource>;
type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Principal?: unknown; Condition?: unknown };

beforeAll(() => {
  const app = new App();
  stack = new SeloStack(app, 'selo-prod', {
    environment: 'prod',
    env: { account: '123456789012', region: 'sa-east-1' },
    ispb: '12345678',
    rsfnCidrs: [RSFN],
    // The bank's ECR image: no Docker build, no asset hashing at synth.
    image: (scope) => ContainerImage.fromEcrRepository(Repository.fromRepositoryName(scope, 'repo', 'selo-worker'), 'v1'),
  });
  template = Template.fromStack(stack);
  nag = new AwsSolutionsChecks(app).validateScope(stack);
  // Synthesis and the checks take tens of seconds on a loaded 2-core machine.
}, 180_000);

const resources = (type: string): Resource[] => Object.values(template.findResources(type) as Resources);
const logicalIdOf = (type: string, match: (r: Resource) => boolean): string => {
  const found = Object.entries(template.findResources(type) as Resources).find(([, r]) => match(r));
  if (found === undefined) throw new Error(`no ${type} matched`);
  return found[0];
};
const actionsOf = (statements: Statement[]): string[] => statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
const containerOf = (family: string): Record<string, unknown> => {
  const definition = resources('AWS::ECS::TaskDefinition').find((d) => d.Properties.Family === family);
  return (definition?.Properties.ContainerDefinitions as Record<string, unknown>[] | undefined)?.[0] ?? {};
};
const environmentOf = (family: string): Record<string, unknown> => Object.fromEntries((containerOf(family).Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
const serviceOf = (name: string): Record<string, unknown> => resources('AWS::ECS::Service').find((s) => s.Properties.ServiceName === name)?.Properties ?? {};

describe('SeloStack: data plane from the topology', () => {
  it('builds exactly the declared queues, each with its DLQ and receive budget, plus the rules\' DLQ', () => {
    const names = resources('AWS::SQS::Queue').map((q) => q.Properties.QueueName).sort();
    expect(names).toEqual([...topology.queues.flatMap((q) => [q.name, q.dlqName]), 'selo-prod-events-dlq'].sort());
    for (const declared of topology.queues) {
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: declared.name,
        VisibilityTimeout: declared.visibilityTimeoutSeconds,
        MessageRetentionPeriod: declared.messageRetentionSeconds,
        RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: declared.maxReceiveCount },
      });
    }
  });

  it('builds exactly the declared rules with the same event patterns, each target with a retry policy and a DLQ', () => {
    const rules = resources('AWS::Events::Rule');
    expect(rules.map((r) => r.Properties.Name).sort()).toEqual(topology.rules.map((r) => r.name).sort());
    const eventsDlq = logicalIdOf('AWS::SQS::Queue', (q) => q.Properties.QueueName === 'selo-prod-events-dlq');
    for (const rule of topology.rules) {
      const found = rules.find((r) => r.Properties.Name === rule.name);
      expect(found?.Properties.EventPattern).toEqual(rule.eventPattern);
      const targets = found?.Properties.Targets as { Id: string; RetryPolicy: unknown; DeadLetterConfig: { Arn: unknown } }[];
      expect(targets.map((t) => t.Id)).toEqual(rule.targets.map((t) => t.queue));
      for (const target of targets) {
        expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 });
        expect(target.DeadLetterConfig.Arn).toEqual({ 'Fn::GetAtt': [eventsDlq, 'Arn'] });
      }
    }
    template.hasResourceProperties('AWS::Events::EventBus', { Name: topology.eventBusName });
  });

  it('archives every event on the bus for replay', () => {
    const bus = logicalIdOf('AWS::Events::EventBus', () => true);
    template.hasResourceProperties('AWS::Events::Archive', { SourceArn: { 'Fn::GetAtt': [bus, 'Arn'] }, RetentionDays: 90 });
    expect(resources('AWS::Events::Archive')[0]?.Properties.EventPattern).toBeUndefined();
  });

  it('lets EventBridge send only from selo rules, to their target queues and the rules\' DLQ', () => {
    const statements = resources('AWS::SQS::QueuePolicy').flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const fromEvents = statements.filter((s) => JSON.stringify(s.Principal).includes('events.amazonaws.com'));
    expect(fromEvents.length).toBe(topology.rules.reduce((n, r) => n + r.targets.length, 0) + topology.rules.length);
    for (const statement of fromEvents) expect(statement.Condition).toHaveProperty('ArnEquals');
  });

  it('encrypts every queue, the stream, the buckets, the table, the logs, the secrets and the topic with the customer-managed key', () => {
    const key = logicalIdOf('AWS::KMS::Key', () => true);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const keyArn = { 'Fn::GetAtt': [key, 'Arn'] };
    for (const queue of resources('AWS::SQS::Queue')) expect(queue.Properties.KmsMasterKeyId, String(queue.Properties.QueueName)).toEqual(keyArn);
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: keyArn } });
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn } });
    for (const bucket of [topology.auditBucket, topology.payloadBucket]) {
      template.hasResourceProperties('AWS::S3::Bucket', { BucketName: bucket, BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn } })] } });
    }
    for (const group of resources('AWS::Logs::LogGroup')) expect(group.Properties.KmsKeyId).toEqual(keyArn);
    for (const secret of resources('AWS::SecretsManager::Secret')) expect(secret.Properties.KmsKeyId).toEqual(keyArn);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: keyArn });
  });

  it('keeps the audit stream 7 days, and the saga table under deletion protection with its state index', () => {
    template.hasResourceProperties('AWS::Kinesis::Stream', { Name: topology.auditStream.name, ShardCount: topology.auditStream.shardCount, RetentionPeriodHours: 168 });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: topology.sagaTable.name,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      DeletionProtectionEnabled: true,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: topology.sagaTable.stateIndex.name })],
    });
  });

  it('keys the state index on the sharded <state>#<n> attribute the saga store writes, sorted by updatedAt', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: topology.sagaTable.name,
      AttributeDefinitions: Match.arrayWith([{ AttributeName: STATE_SHARD_ATTRIBUTE, AttributeType: 'S' }, { AttributeName: 'updatedAt', AttributeType: 'S' }]),
      GlobalSecondaryIndexes: [
        {
          IndexName: 'by-state',
          KeySchema: [
            { AttributeName: STATE_SHARD_ATTRIBUTE, KeyType: 'HASH' },
            { AttributeName: 'updatedAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it('locks every audit object in compliance mode for the retention parameter, moves it to colder storage, and logs access to the data buckets', () => {
    const audit = resources('AWS::S3::Bucket').find((b) => b.Properties.BucketName === topology.auditBucket);
    expect(audit?.Properties.ObjectLockEnabled).toBe(true);
    expect(audit?.Properties.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: { Ref: 'AuditRetentionDays' } } } });
    expect((template.toJSON() as { Parameters: Record<string, unknown> }).Parameters.AuditRetentionDays).toMatchObject({ Type: 'Number', Default: 3650 });
    expect((audit?.Properties.LifecycleConfiguration as { Rules: { Transitions: { StorageClass: string; TransitionInDays: number }[] }[] }).Rules[0]?.Transitions).toEqual([
      { StorageClass: 'STANDARD_IA', TransitionInDays: 90 },
      { StorageClass: 'GLACIER_IR', TransitionInDays: 365 },
    ]);
    const accessLogs = logicalIdOf('AWS::S3::Bucket', (b) => JSON.stringify(b.Properties.BucketName).includes('access-logs'));
    for (const bucket of resources('AWS::S3::Bucket').filter((b) => !JSON.stringify(b.Properties.BucketName).includes('access-logs'))) {
      expect((bucket.Properties.LoggingConfiguration as { DestinationBucketName: unknown }).DestinationBucketName, JSON.stringify(bucket.Properties.BucketName)).toEqual({ Ref: accessLogs });
    }
  });

  it('gives Athena a workgroup for the audit tables with encrypted results in a bucket of their own', () => {
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'selo-prod-audit',
      WorkGroupConfiguration: Match.objectLike({ EnforceWorkGroupConfiguration: true, ResultConfiguration: { OutputLocation: Match.anyValue(), EncryptionConfiguration: { EncryptionOption: 'SSE_KMS', KmsKey: Match.anyValue() } } }),
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
        EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: Match.anyValue() } },
        DataFormatConversionConfiguration: Match.objectLike({
          Enabled: true,
          OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'SNAPPY' } } },
          SchemaConfiguration: Match.objectLike({ DatabaseName: 'selo_prod_audit', TableName: 'audit_spi' }),
        }),
      }),
    });
    const tables = resources('AWS::Glue::Table').map((t) => t.Properties.TableInput as { Name: string; PartitionKeys: { Name: string; Type: string }[]; StorageDescriptor: { Location: string; Columns: { Name: string; Type: string }[] }; Parameters: Record<string, string> });
    expect(tables.map((t) => t.Name).sort()).toEqual(['audit_dict', 'audit_spi']);
    for (const table of tables) {
      const system = table.Name.slice('audit_'.length);
      expect(table.StorageDescriptor.Columns).toEqual(AUDIT_COLUMNS.map((c) => ({ Name: c.name, Type: c.glueType })));
      expect(table.PartitionKeys).toEqual(['year', 'month', 'day', 'hour'].map((name) => ({ Name: name, Type: 'int' })));
      expect(table.Parameters['storage.location.template']).toBe(`s3://${topology.auditBucket}/audit/${system}/year=\${year}/month=\${month}/day=\${day}/hour=\${hour}/`);
    }
  });

  it('retains data stores when the stack is deleted', () => {
    for (const type of ['AWS::SQS::Queue', 'AWS::Kinesis::Stream', 'AWS::S3::Bucket', 'AWS::DynamoDB::Table', 'AWS::KMS::Key', 'AWS::SecretsManager::Secret']) {
      const found = resources(type);
      expect(found.length, type).toBeGreaterThan(0);
      for (const resource of found) expect(resource.DeletionPolicy, type).toBe('Retain');
    }
  });
});

describe('SeloStack: compute', () => {
  const families = ['sign', 'transmit', 'receive', 'verify', 'compensate', 'compensate-sweeper'];

  it('runs one Fargate service per worker, and the in-doubt sweeper in a service of its own', () => {
    expect(resources('AWS::ECS::Service').map((s) => s.Properties.ServiceName).sort()).toEqual(families.map((f) => `selo-prod-${f}`).sort());
    for (const family of families) {
      const container = containerOf(`selo-prod-${family}`);
      // The image's entry point is `selo worker`.
      expect(container.Command, family).toEqual([family.replace('-sweeper', '')]);
      expect(container.StopTimeout, family).toBe(30);
      expect((container.HealthCheck as { Command: string[] }).Command.join(' '), family).toContain('http://127.0.0.1:8080/ready');
      expect(serviceOf(`selo-prod-${family}`).LaunchType, family).toBe('FARGATE');
    }
  });

  it('runs exactly one receive task and one sweeper, each stopped before its replacement starts', () => {
    for (const single of ['receive', 'compensate-sweeper']) {
      const service = serviceOf(`selo-prod-${single}`);
      expect(service.DesiredCount, single).toBe(1);
      expect(service.DeploymentConfiguration, single).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100 });
    }
    expect(resources('AWS::ApplicationAutoScaling::ScalableTarget').map((t) => JSON.stringify(t.Properties.ResourceId))).not.toEqual(expect.arrayContaining([expect.stringMatching(/receive|sweeper/)]));
    expect(environmentOf('selo-prod-compensate-sweeper').SELO_IN_DOUBT_SWEEPER).toBe('true');
    expect(environmentOf('selo-prod-compensate').SELO_IN_DOUBT_SWEEPER).toBe('false');
    // The transmit marker's own item is written only for a deploy beside (or back to) an older version.
    expect(environmentOf('selo-prod-transmit').SELO_TRANSMIT_MARKER_ITEM).toBeUndefined();
    // Nor the pointers of payments, whose BizMsgIdr the verify worker derives from the EndToEndId.
    expect(environmentOf('selo-prod-sign').SELO_SIGN_LEGACY_MESSAGE_IDS).toBeUndefined();
  });

  it('keeps the scaled services available while they deploy, and leaves their task count to autoscaling', () => {
    for (const scaled of ['sign', 'transmit', 'verify', 'compensate']) {
      const service = serviceOf(`selo-prod-${scaled}`);
      expect(service.DesiredCount, scaled).toBeUndefined();
      expect(service.DeploymentConfiguration, scaled).toMatchObject({ MinimumHealthyPercent: 100, MaximumPercent: 200, DeploymentCircuitBreaker: { Enable: true, Rollback: true } });
    }
  });

  it('gives the workers the documented environment, no endpoint variables, and the PIN and certificates only as secrets', () => {
    const secretId = (name: string): string => logicalIdOf('AWS::SecretsManager::Secret', (s) => s.Properties.Name === `selo-prod/${name}`);
    const expected: Record<string, Record<string, string>> = {
      sign: { SELO_HSM_PIN: 'hsm-pin', SELO_CLOUDHSM_CUSTOMER_CA: 'cloudhsm-customer-ca', SELO_SIGNING_CERT: 'signing-cert' },
      transmit: { SELO_HSM_PIN: 'hsm-pin', SELO_CLOUDHSM_CUSTOMER_CA: 'cloudhsm-customer-ca', SELO_TLS_CERT: 'tls-client-cert', SELO_BCB_CA: 'bcb-ca' },
      receive: { SELO_HSM_PIN: 'hsm-pin', SELO_CLOUDHSM_CUSTOMER_CA: 'cloudhsm-customer-ca', SELO_TLS_CERT: 'tls-client-cert', SELO_BCB_CA: 'bcb-ca' },
      verify: { SELO_BCB_SIGNING_CERT: 'bcb-signing-certs' },
      compensate: {},
    };
    for (const [worker, secrets] of Object.entries(expected)) {
      const container = containerOf(`selo-prod-${worker}`);
      const given = Object.fromEntries(((container.Secrets ?? []) as { Name: string; ValueFrom: unknown }[]).map((s) => [s.Name, s.ValueFrom]));
      expect(given, worker).toEqual(Object.fromEntries(Object.entries(secrets).map(([variable, name]) => [variable, { Ref: secretId(name) }])));
      const environment = environmentOf(`selo-prod-${worker}`);
      expect(environment, worker).toMatchObject({ SELO_ENV: 'prod', SELO_ISPB: '12345678', AWS_REGION: 'sa-east-1', SELO_HEALTH_PORT: '8080' });
      expect(Object.keys(environment).filter((name) => name.endsWith('_ENDPOINT') || name in secrets || name === 'SELO_TLS_KEY'), worker).toEqual([]);
    }
    expect(environmentOf('selo-prod-sign')).toMatchObject({ SELO_HSM_MODULE: '/opt/cloudhsm/lib/libcloudhsm_pkcs11.so', SELO_HSM_SIGNING_KEY_LABEL: 'selo-psp-signing', SELO_CLOUDHSM_HSM_IP: { Ref: 'CloudHsmIp' }, SELO_CLOUDHSM_SINGLE_HSM: { Ref: 'CloudHsmSingleHsm' } });
    expect(environmentOf('selo-prod-verify').SELO_HSM_MODULE).toBeUndefined();
    // Metrics as embedded metric format lines on stdout, under the namespace the alarms read, named by service.
    for (const service of ['sign', 'transmit', 'receive', 'verify', 'compensate', 'compensate-sweeper']) {
      expect(environmentOf(`selo-prod-${service}`), service).toMatchObject({ SELO_METRICS: 'emf', SELO_METRICS_NAMESPACE: 'selo/prod', SELO_METRICS_SERVICE: service });
    }
    expect(environmentOf('selo-prod-transmit')).toMatchObject({ SELO_BCB_URL: 'https://icom-h.pi.rsfn.net.br:16522', SELO_BCB_DICT_URL: 'https://dict-h.pi.rsfn.net.br:16522', SELO_TLS_KEY_LABEL: 'selo-psp-tls' });
    expect(JSON.stringify(template.toJSON())).not.toMatch(/selo-dev-pin|BEGIN (CERTIFICATE|PRIVATE KEY)/);
  });

  it('scales sign, transmit, verify and compensate on visible messages per running task, with min and max tasks as parameters', () => {
    const policies = resources('AWS::ApplicationAutoScaling::ScalingPolicy');
    expect(policies.length).toBe(4);
    const parameters = template.toJSON().Parameters as Record<string, unknown>;
    for (const worker of ['sign', 'transmit', 'verify', 'compensate']) {
      const policy = policies.find((p) => p.Properties.PolicyName === `selo-${worker}-backlog-per-task`);
      const config = policy?.Properties.TargetTrackingScalingPolicyConfiguration as { TargetValue: number; CustomizedMetricSpecification: { Metrics: Record<string, unknown>[] } };
      expect(policy?.Properties.PolicyType, worker).toBe('TargetTrackingScaling');
      expect(config.TargetValue, worker).toBe(SCALING.targetBacklogPerTask);
      const [m1, m2, e1] = config.CustomizedMetricSpecification.Metrics;
      expect(m1, worker).toMatchObject({ Id: 'm1', ReturnData: false, MetricStat: { Stat: 'Sum', Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Dimensions: [{ Name: 'QueueName', Value: `selo-prod-${worker}` }] } } });
      expect(m2, worker).toMatchObject({ Id: 'm2', ReturnData: false, MetricStat: { Metric: { Namespace: 'ECS/ContainerInsights', MetricName: 'RunningTaskCount' } } });
      expect(e1, worker).toMatchObject({ Id: 'e1', Expression: 'm1 / m2', ReturnData: true });
      const pascal = worker.charAt(0).toUpperCase() + worker.slice(1);
      template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: { Ref: `${pascal}MinTasks` }, MaxCapacity: { Ref: `${pascal}MaxTasks` }, ScalableDimension: 'ecs:service:DesiredCount' });
      expect(parameters[`${pascal}MinTasks`], worker).toMatchObject({ Type: 'Number', MinValue: 1 });
    }
    expect(SCALING.targetBacklogPerTask).toBe(SCALING.taskRatePerSecond * SCALING.queueWaitSeconds);
    template.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
  });

  it('gives each worker a task role with exactly the actions its topology declaration needs, and no delete on objects', () => {
    const kms = ['kms:Decrypt', 'kms:GenerateDataKey'];
    const saga = ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
    const consume = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:SendMessage', 'sqs:GetQueueUrl'];
    const expected: Record<string, string[]> = {
      sign: [...consume, 'events:PutEvents', 'kinesis:PutRecords', ...saga, 's3:PutObject', ...kms],
      transmit: [...consume, 'events:PutEvents', 'kinesis:PutRecords', ...saga, 's3:GetObject', 's3:PutObject', ...kms],
      receive: ['sqs:SendMessage', 'sqs:GetQueueUrl', 'kinesis:PutRecords', ...saga, 's3:PutObject', ...kms],
      verify: [...consume, 'events:PutEvents', 'kinesis:PutRecords', ...saga, 's3:GetObject', 's3:PutObject', ...kms],
      compensate: [...consume, 'events:PutEvents', 'kinesis:PutRecords', ...saga, 'dynamodb:Query', ...kms],
      'compensate-sweeper': [...consume, 'events:PutEvents', 'kinesis:PutRecords', ...saga, 'dynamodb:Query', ...kms],
    };
    const roles = resources('AWS::IAM::Role').filter((r) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('ecs-tasks') && typeof r.Properties.RoleName === 'string' && r.Properties.RoleName.endsWith('-task'));
    expect(roles.map((r) => r.Properties.RoleName).sort()).toEqual(Object.keys(expected).map((w) => `selo-prod-${w}-task`).sort());
    for (const [worker, actions] of Object.entries(expected)) {
      const role = roles.find((r) => r.Properties.RoleName === `selo-prod-${worker}-task`);
      const statements = (role?.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement);
      expect(actionsOf(statements), worker).toEqual([...actions].sort());
      expect(JSON.stringify(statements), worker).not.toMatch(/"\*"|:\*"/);
    }
    // Nothing else is attached to a task role.
    const taskRoleIds = new Set(roles.map((r) => logicalIdOf('AWS::IAM::Role', (x) => x === r)));
    for (const policy of resources('AWS::IAM::Policy')) {
      for (const role of policy.Properties.Roles as { Ref: string }[]) expect(taskRoleIds.has(role.Ref)).toBe(false);
    }
    // The receive worker writes to the verify queue and nowhere else in SQS.
    const verifyQueue = logicalIdOf('AWS::SQS::Queue', (q) => q.Properties.QueueName === 'selo-prod-verify');
    const receive = roles.find((r) => r.Properties.RoleName === 'selo-prod-receive-task');
    expect((receive?.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[])[0]?.PolicyDocument.Statement[0]?.Resource).toEqual({ 'Fn::GetAtt': [verifyQueue, 'Arn'] });
  });

  it('lets Firehose write audit objects and never delete one', () => {
    const role = resources('AWS::IAM::Role').find((r) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('firehose.amazonaws.com'));
    const statements = (role?.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement);
    expect(actionsOf(statements)).toEqual(
      [
        'kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetShardIterator', 'kinesis:GetRecords', 'kinesis:ListShards',
        's3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads', 's3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject',
        'kms:Decrypt', 'kms:GenerateDataKey', 'glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions',
      ].sort(),
    );
    const roleId = logicalIdOf('AWS::IAM::Role', (r) => r === role);
    for (const policy of resources('AWS::IAM::Policy')) expect(policy.Properties.Roles).not.toContainEqual({ Ref: roleId });
  });
});

describe('SeloStack: HSM, network and alarms', () => {
  it('puts the CloudHSM cluster in the private subnets and opens 2223-2225 to the worker tasks only', () => {
    const subnets = Object.keys(template.findResources('AWS::EC2::Subnet')).map((id) => ({ Ref: id }));
    template.hasResourceProperties('AWS::CloudHSM::Cluster', { HsmType: 'hsm2m.medium', Mode: 'FIPS', SubnetIds: subnets });
    const cluster = logicalIdOf('AWS::CloudHSM::Cluster', () => true);
    const workers = logicalIdOf('AWS::EC2::SecurityGroup', (g) => g.Properties.GroupDescription === 'selo worker tasks');
    const intoHsm = resources('AWS::EC2::SecurityGroupIngress').filter((r) => JSON.stringify(r.Properties.GroupId).includes(cluster));
    expect(intoHsm.map((r) => r.Properties)).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 2223, ToPort: 2225, SourceSecurityGroupId: { 'Fn::GetAtt': [workers, 'GroupId'] } })]);
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', { GroupId: { 'Fn::GetAtt': [workers, 'GroupId'] }, FromPort: 2223, ToPort: 2225, DestinationSecurityGroupId: { 'Fn::GetAtt': [cluster, 'SecurityGroup'] } });
  });

  it('has no route to the internet, an endpoint for every AWS service the workers call, and egress to the BCB only on the RSFN CIDRs', () => {
    for (const type of ['AWS::EC2::NatGateway', 'AWS::EC2::InternetGateway', 'AWS::EC2::EIP']) expect(resources(type), type).toEqual([]);
    for (const subnet of resources('AWS::EC2::Subnet')) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    const named = resources('AWS::EC2::VPCEndpoint').map((e) => JSON.stringify(e.Properties.ServiceName));
    for (const service of ['sqs', 'events', 'kinesis-streams', 'secretsmanager', 'ecr.api', 'ecr.dkr', 'logs', 's3', 'dynamodb']) {
      expect(named.some((n) => n.includes(`.${service}"`)), service).toBe(true);
    }
    expect(named.length).toBe(9);
    template.hasResourceProperties('AWS::EC2::VPNGateway', { Type: 'ipsec.1' });
    template.hasResourceProperties('AWS::EC2::VPNGatewayRoutePropagation', Match.anyValue());
    const egress = (resources('AWS::EC2::SecurityGroup').find((g) => g.Properties.GroupDescription === 'selo worker tasks')?.Properties.SecurityGroupEgress ?? []) as { CidrIp?: string; FromPort: number }[];
    expect(egress.filter((e) => e.CidrIp === RSFN).map((e) => e.FromPort)).toEqual([16522]);
    expect(egress.filter((e) => e.CidrIp === '0.0.0.0/0').map((e) => e.FromPort)).toEqual([443]);
  });

  it('alarms to one SNS topic on DLQs, old messages against the SPI limit, operations, in-doubt payments, HSM errors, audit delivery and the receive task', () => {
    const topic = logicalIdOf('AWS::SNS::Topic', () => true);
    const alarms = resources('AWS::CloudWatch::Alarm');
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions, String(alarm.Properties.AlarmName)).toEqual([{ Ref: topic }]);
    const byName = (name: string): Record<string, unknown> | undefined => alarms.find((a) => a.Properties.AlarmName === `selo-prod-${name}`)?.Properties;
    for (const queue of [...topology.queues.map((q) => q.key), 'events']) {
      expect(byName(`${queue}-dlq-not-empty`), queue).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    }
    for (const queue of ['sign', 'transmit', 'verify']) {
      const queueId = logicalIdOf('AWS::SQS::Queue', (q) => q.Properties.QueueName === `selo-prod-${queue}`);
      // Half the SPI's 40 s settlement limit, waited in one queue.
      expect(byName(`${queue}-oldest-message`), queue).toMatchObject({ MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 20, Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }] });
    }
    expect(byName('operations-not-empty')).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
    expect(byName('payments-in-doubt')).toMatchObject({ Namespace: 'selo/prod', MetricName: 'PaymentsInDoubt', Threshold: 1 });
    // From the workers' embedded metric format: all services together (no dimension).
    expect(byName('hsm-errors')).toMatchObject({ Namespace: 'selo/prod', MetricName: 'HsmErrors', Statistic: 'Sum', Threshold: 1 });
    expect(byName('hsm-errors')?.Dimensions).toBeUndefined();
    expect(byName('sagas-in-doubt')).toMatchObject({ Namespace: 'selo/prod', MetricName: 'SagasInDoubt', Statistic: 'Maximum', Threshold: 1, EvaluationPeriods: 3 });
    expect(byName('audit-delivery-freshness')).toMatchObject({ Namespace: 'AWS/Firehose', MetricName: 'DeliveryToS3.DataFreshness' });
    expect(byName('audit-stream-iterator-age')).toMatchObject({ Namespace: 'AWS/Kinesis', MetricName: 'GetRecords.IteratorAgeMilliseconds' });
    expect(byName('receive-not-running')).toMatchObject({ MetricName: 'RunningTaskCount', ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' });
    expect(byName('inbound-answer-slow')).toMatchObject({ Namespace: 'selo/prod', MetricName: 'InboundAnswerMs', ExtendedStatistic: 'p95', Threshold: 2300 });
    expect(alarms.length).toBe(topology.queues.length + 1 + 3 + 1 + 3 + 2 + 1 + 1);
    const filters = resources('AWS::Logs::MetricFilter');
    const named = (metric: string): Resource[] => filters.filter((f) => (f.Properties.MetricTransformations as { MetricName: string }[])[0]?.MetricName === metric);
    expect(named('PaymentsInDoubt').length).toBe(2);
    // HSM errors come from the workers' own metrics now, not from their log lines.
    expect(named('HsmErrors')).toEqual([]);
    // Every service's handler and publish times, by worker (the pino logger's name).
    for (const metric of ['HandlerMs', 'PublishMs']) {
      expect(named(metric).length, metric).toBe(6);
      for (const filter of named(metric)) expect(filter.Properties.MetricTransformations, metric).toEqual([expect.objectContaining({ MetricValue: `$.${metric.charAt(0).toLowerCase()}${metric.slice(1)}`, Unit: 'Milliseconds', Dimensions: [{ Key: 'Worker', Value: '$.name' }] })]);
    }
    expect(named('InboundAnswerMs').map((f) => f.Properties.LogGroupName)).toEqual([{ Ref: logicalIdOf('AWS::Logs::LogGroup', (g) => g.Properties.LogGroupName === '/selo/prod/transmit') }]);
    for (const filter of filters) expect(filter.Properties.FilterPattern).toMatch(/^\{ \(?\$\.msg = /);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', { PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) } });
  });
});

describe('SeloStack: inventory', () => {
  it('is the inventory docs/deploying.md lists, with the total its summary and the README give', () => {
    const counts: Record<string, number> = {};
    for (const resource of Object.values((template.toJSON() as { Resources: Resources }).Resources)) counts[resource.Type] = (counts[resource.Type] ?? 0) + 1;
    const root = join(import.meta.dirname, '..', '..', '..');
    const listed: Record<string, number> = {};
    for (const m of readFileSync(join(root, 'docs', 'deploying.md'), 'utf8').matchAll(/^\| `(AWS::[A-Za-z0-9:]+)` \| (\d+) \|$/gm)) listed[m[1] ?? ''] = Number(m[2]);
    expect(listed).toEqual(counts);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(readFileSync(join(root, 'docs', 'deploying.md'), 'utf8')).toContain(`The \`prod\` template has ${total} resources`);
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(`the \`prod\` template has ${total}\nresources`);
  });
});

describe('SeloStack: cdk-nag', () => {
  it('leaves no AwsSolutions finding', () => {
    expect(nag.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(',')}`)).toEqual([]);
    expect(nag.success).toBe(true);
  });

  it('gives every acknowledged finding a written reason', () => {
    const acknowledged: { path: string; id: string; reason: string }[] = [];
    const walk = (node: IConstruct): void => {
      for (const entry of node.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)) {
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) acknowledged.push({ path: node.node.path, id, reason: String(reason) });
      }
      node.node.children.forEach(walk);
    };
    walk(stack);
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const { path, id, reason } of acknowledged) expect(reason.length, `${path} ${id}`).toBeGreaterThan(40);
  });
});
