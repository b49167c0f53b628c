import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { CfnRule, EventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import { CfnDeliveryStream } from 'aws-cdk-lib/aws-kinesisfirehose';
import { Stream, StreamEncryption } from 'aws-cdk-lib/aws-kinesis';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { resolveTopology } from '../topology.ts';
import type { ResolvedTopology } from '../topology.ts';
import { AUDIT_COLUMNS, AUDIT_PARTITION_COLUMNS } from '../../shared/audit/audit-schema.ts';

/** Options of {@link SeloStack}. */
export interface SeloStackProps extends StackProps {
  /** Environment whose topology is built (names `selo-<env>-…`). */
  environment: string;
  /**
   * What happens to data stores when the stack is deleted. Production keeps them.
   * @defaultValue RemovalPolicy.RETAIN
   */
  dataRemovalPolicy?: RemovalPolicy;
}

/**
 * selo's AWS resources, built from the one declaration in `infra/topology.ts` — the same one the
 * local bootstrap provisions, so local and cloud cannot drift.
 */
export class SeloStack extends Stack {
  /** The topology this stack was built from. */
  readonly topology: ResolvedTopology;

  constructor(scope: Construct, id: string, props: SeloStackProps) {
    super(scope, id, props);
    const topology = resolveTopology(props.environment);
    this.topology = topology;
    const removalPolicy = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;

    const queues = new Map<string, Queue>();
    for (const declared of topology.queues) {
      const dlq = new Queue(this, `${declared.key}-dlq`, {
        queueName: declared.dlqName,
        retentionPeriod: Duration.seconds(declared.dlqRetentionSeconds),
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        removalPolicy,
      });
      const queue = new Queue(this, declared.key, {
        queueName: declared.name,
        visibilityTimeout: Duration.seconds(declared.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(declared.messageRetentionSeconds),
        receiveMessageWaitTime: Duration.seconds(20),
        deadLetterQueue: { queue: dlq, maxReceiveCount: declared.maxReceiveCount },
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        removalPolicy,
      });
      queues.set(declared.key, queue);
    }

    const bus = new EventBus(this, 'bus', { eventBusName: topology.eventBusName });
    for (const rule of topology.rules) {
      // CfnRule takes the pattern as the same JSON the local emulator receives (the L2 Rule
      // would rewrite its keys), so both sides see one pattern.
      const cfnRule = new CfnRule(this, `rule-${rule.key}`, {
        name: rule.name,
        description: rule.description,
        eventBusName: bus.eventBusName,
        eventPattern: rule.eventPattern,
        state: 'ENABLED',
        targets: rule.targets.map((target) => {
          const queue = queues.get(target.queue);
          if (queue === undefined) throw new Error(`rule ${rule.key} targets undeclared queue ${target.queue}`);
          return { id: target.queue, arn: queue.queueArn };
        }),
      });
      for (const target of rule.targets) {
        queues.get(target.queue)?.addToResourcePolicy(
          new PolicyStatement({
            principals: [new ServicePrincipal('events.amazonaws.com')],
            actions: ['sqs:SendMessage'],
            resources: [queues.get(target.queue)?.queueArn ?? ''],
            conditions: { ArnEquals: { 'aws:SourceArn': cfnRule.attrArn } },
          }),
        );
      }
    }

    const auditStream = new Stream(this, 'audit-stream', {
      streamName: topology.auditStream.name,
      shardCount: topology.auditStream.shardCount,
      retentionPeriod: Duration.hours(topology.auditStream.retentionHours),
      encryption: StreamEncryption.MANAGED,
      removalPolicy,
    });

    const buckets = new Map<string, Bucket>();
    for (const [id, bucketName] of [['audit-bucket', topology.auditBucket], ['payload-bucket', topology.payloadBucket]] as const) {
      buckets.set(id, new Bucket(this, id, {
        bucketName,
        encryption: BucketEncryption.S3_MANAGED,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        versioned: true,
        removalPolicy,
      }));
    }
    const auditBucket = buckets.get('audit-bucket');
    if (auditBucket === undefined) throw new Error('audit bucket not built');
    this.#auditDelivery(topology, auditStream, auditBucket);

    const table = new Table(this, 'saga-table', {
      tableName: topology.sagaTable.name,
      partitionKey: { name: topology.sagaTable.partitionKey, type: AttributeType.STRING },
      sortKey: { name: topology.sagaTable.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: topology.sagaTable.ttlAttribute,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    table.addGlobalSecondaryIndex({
      indexName: topology.sagaTable.stateIndex.name,
      partitionKey: { name: topology.sagaTable.stateIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: topology.sagaTable.stateIndex.sortKey, type: AttributeType.STRING },
    });
  }

  /**
   * The audit trail's delivery (DESIGN §1): Firehose reads the audit stream, partitions each
   * record by its `system` and the UTC hour of its `recorded_at` (dynamic partitioning, JQ),
   * converts it to Parquet with the Glue table's schema, and writes
   * `audit/<system>/year=YYYY/month=MM/day=DD/hour=HH/`; records it cannot partition or convert go
   * to `audit/errors/<error-output-type>/…`. Two Glue tables (`audit_spi`, `audit_dict`, one per
   * prefix, partitions projected so no crawler runs) let Athena query them. The columns come from
   * `shared/audit/audit-schema.ts`, the schema the local delivery writes.
   */
  #auditDelivery(topology: ResolvedTopology, stream: Stream, bucket: Bucket): void {
    const databaseName = `selo_${topology.environment.replaceAll('-', '_')}_audit`;
    const database = new CfnDatabase(this, 'audit-database', { catalogId: this.account, databaseInput: { name: databaseName, description: 'selo audit trail (Parquet written by Firehose)' } });
    const tables = (['spi', 'dict'] as const).map((system) => {
      const location = `s3://${topology.auditBucket}/audit/${system}/`;
      const table = new CfnTable(this, `audit-table-${system}`, {
        catalogId: this.account,
        databaseName,
        tableInput: {
          name: `audit_${system}`,
          tableType: 'EXTERNAL_TABLE',
          parameters: {
            classification: 'parquet',
            'projection.enabled': 'true',
            'projection.year.type': 'integer',
            'projection.year.range': '2024,2099',
            'projection.month.type': 'integer',
            'projection.month.range': '1,12',
            'projection.month.digits': '2',
            'projection.day.type': 'integer',
            'projection.day.range': '1,31',
            'projection.day.digits': '2',
            'projection.hour.type': 'integer',
            'projection.hour.range': '0,23',
            'projection.hour.digits': '2',
            'storage.location.template': `${location}year=\${year}/month=\${month}/day=\${day}/hour=\${hour}/`,
          },
          partitionKeys: AUDIT_PARTITION_COLUMNS.map((name) => ({ name, type: 'int' })),
          storageDescriptor: {
            location,
            columns: AUDIT_COLUMNS.map((c) => ({ name: c.name, type: c.glueType })),
            inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
            outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
            serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
          },
        },
      });
      table.node.addDependency(database);
      return table;
    });
    const [schemaTable] = tables;
    if (schemaTable === undefined) throw new Error('audit tables not built');

    const role = new Role(this, 'audit-delivery-role', { assumedBy: new ServicePrincipal('firehose.amazonaws.com') });
    stream.grantRead(role);
    bucket.grantReadWrite(role);
    role.addToPolicy(
      new PolicyStatement({
        actions: ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'],
        resources: [
          `arn:${this.partition}:glue:${this.region}:${this.account}:catalog`,
          `arn:${this.partition}:glue:${this.region}:${this.account}:database/${databaseName}`,
          ...(['spi', 'dict'] as const).map((system) => `arn:${this.partition}:glue:${this.region}:${this.account}:table/${databaseName}/audit_${system}`),
        ],
      }),
    );
    const deliveryStream = new CfnDeliveryStream(this, 'audit-delivery', {
      deliveryStreamName: topology.auditStream.name,
      deliveryStreamType: 'KinesisStreamAsSource',
      kinesisStreamSourceConfiguration: { kinesisStreamArn: stream.streamArn, roleArn: role.roleArn },
      extendedS3DestinationConfiguration: {
        bucketArn: bucket.bucketArn,
        roleArn: role.roleArn,
        prefix: 'audit/!{partitionKeyFromQuery:system}/year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/day=!{partitionKeyFromQuery:day}/hour=!{partitionKeyFromQuery:hour}/',
        errorOutputPrefix: 'audit/errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/',
        fileExtension: '.parquet',
        // Record format conversion requires a buffer of at least 64 MiB (Firehose developer guide).
        bufferingHints: { sizeInMBs: 64, intervalInSeconds: 60 },
        // Parquet compresses its pages itself (Snappy below); the object must stay uncompressed.
        compressionFormat: 'UNCOMPRESSED',
        dynamicPartitioningConfiguration: { enabled: true, retryOptions: { durationInSeconds: 300 } },
        processingConfiguration: {
          enabled: true,
          processors: [
            {
              type: 'MetadataExtraction',
              parameters: [
                // recorded_at is ISO 8601 UTC (`Date.toISOString`), so its hour is characters 11-12.
                { parameterName: 'MetadataExtractionQuery', parameterValue: '{system: .system, year: .recorded_at[0:4], month: .recorded_at[5:7], day: .recorded_at[8:10], hour: .recorded_at[11:13]}' },
                { parameterName: 'JsonParsingEngine', parameterValue: 'JQ-1.6' },
              ],
            },
          ],
        },
        dataFormatConversionConfiguration: {
          enabled: true,
          inputFormatConfiguration: { deserializer: { hiveJsonSerDe: { timestampFormats: ["yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"] } } },
          outputFormatConfiguration: { serializer: { parquetSerDe: { compression: 'SNAPPY' } } },
          // Both tables have the same columns; the spi one gives the schema.
          schemaConfiguration: { catalogId: this.account, databaseName, tableName: 'audit_spi', region: this.region, roleArn: role.roleArn, versionId: 'LATEST' },
        },
      },
    });
    deliveryStream.node.addDependency(role, schemaTable);
  }
}
