import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { CfnRule, EventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Stream, StreamEncryption } from 'aws-cdk-lib/aws-kinesis';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { resolveTopology } from '../topology.ts';
import type { ResolvedTopology } from '../topology.ts';

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

    new Stream(this, 'audit-stream', {
      streamName: topology.auditStream.name,
      shardCount: topology.auditStream.shardCount,
      retentionPeriod: Duration.hours(topology.auditStream.retentionHours),
      encryption: StreamEncryption.MANAGED,
      removalPolicy,
    });

    for (const [id, bucketName] of [['audit-bucket', topology.auditBucket], ['payload-bucket', topology.payloadBucket]] as const) {
      new Bucket(this, id, {
        bucketName,
        encryption: BucketEncryption.S3_MANAGED,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        versioned: true,
        removalPolicy,
      });
    }

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
}
