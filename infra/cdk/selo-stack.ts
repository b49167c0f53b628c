import { CfnOutput, CfnParameter, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { CfnArchive, CfnRule, EventBus } from 'aws-cdk-lib/aws-events';
import { PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import { CfnDeliveryStream } from 'aws-cdk-lib/aws-kinesisfirehose';
import { Stream, StreamEncryption } from 'aws-cdk-lib/aws-kinesis';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnWorkGroup } from 'aws-cdk-lib/aws-athena';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, StorageClass } from 'aws-cdk-lib/aws-s3';
import type { BucketProps, CfnBucket } from 'aws-cdk-lib/aws-s3';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { WORKERS, resolveTopology } from '../topology.ts';
import type { ResolvedTopology, WorkerSecret } from '../topology.ts';
import { SeloNetwork } from './network.ts';
import { SeloHsm } from './hsm.ts';
import { SeloWorkers, SECRET_VARIABLES } from './workers.ts';
import { SeloAlarms } from './observability.ts';
import { AUDIT_COLUMNS, AUDIT_PARTITION_COLUMNS } from '../../shared/audit/audit-schema.ts';

/** Options of {@link SeloStack}. */
export interface SeloStackProps extends StackProps {
  /** Environment whose topology is built (names `selo-<env>-…`). */
  environment: string;
  /**
   * The transmit worker also writes its may-have-arrived marker in an item of its own, as versions
   * before the marker moved into the saga read it (`SELO_TRANSMIT_MARKER_ITEM`): on for a deploy
   * that replaces, or rolls back to, such a version (docs/deploying.md, "Upgrading").
   * @defaultValue false
   */
  transmitMarkerItem?: boolean;
  /**
   * The sign worker signs a pacs.008 as versions before the BizMsgIdr derived from the EndToEndId
   * did, with a drawn id and a pointer (`SELO_SIGN_LEGACY_MESSAGE_IDS`): on for a deploy that
   * replaces, or rolls back to, such a version (docs/deploying.md, "Upgrading").
   * @defaultValue false
   */
  legacyMessageIds?: boolean;
  /**
   * What happens to data stores when the stack is deleted. Production keeps them.
   * @defaultValue RemovalPolicy.RETAIN
   */
  dataRemovalPolicy?: RemovalPolicy;
  /** The PSP's ISPB (`SELO_ISPB`, 8 characters `[0-9A-Z]`). @defaultValue '99999004' (the development PKI's) */
  ispb?: string;
  /**
   * The worker image (the `Dockerfile`'s `cloudhsm` target), e.g. from the bank's ECR repository
   * (`ContainerImage.fromEcrRepository`); `infra/cdk/app.ts` builds it from the repository when no
   * image is given.
   */
  image: (scope: Construct) => ContainerImage;
  /** The BCB's networks on the RSFN link (CIDRs). @defaultValue [] (no route to the BCB yet) */
  rsfnCidrs?: readonly string[];
  /**
   * ICOM and DICT origins. @defaultValue the homologation hosts of the DICT OpenAPI's servers
   * (`dict-h.pi.rsfn.net.br:16522`) and ICOM's on the same port (`icom-h.pi.rsfn.net.br:16522`)
   */
  bcb?: { icomUrl: string; dictUrl: string };
  /** Labels of the keys in the HSM. @defaultValue signing `selo-psp-signing`, mTLS `selo-psp-tls` */
  hsmKeys?: { signing: string; tls: string };
}

/** The homologation origins (DICT OpenAPI 2.12.1 `servers`; ICOM on the same host pattern and port). */
export const BCB_HOMOLOGATION = { icomUrl: 'https://icom-h.pi.rsfn.net.br:16522', dictUrl: 'https://dict-h.pi.rsfn.net.br:16522' } as const;

/** The production origins (DICT OpenAPI 2.12.1 `servers`; ICOM on the same host pattern and port). */
export const BCB_PRODUCTION = { icomUrl: 'https://icom.pi.rsfn.net.br:16422', dictUrl: 'https://dict.pi.rsfn.net.br:16422' } as const;

/** What each secret holds (its value is put by hand: `docs/deploying.md`). */
const SECRET_DESCRIPTIONS: Readonly<Record<WorkerSecret, string>> = {
  'hsm-pin': 'CloudHSM crypto user as <CU user>:<password> (SELO_HSM_PIN)',
  'cloudhsm-customer-ca': "PEM of the certificate that signed the CloudHSM cluster's CSR (customerCA.crt, SELO_CLOUDHSM_CUSTOMER_CA)",
  'signing-cert': "PEM of the PSP's ICP-Brasil message-signing certificate (SELO_SIGNING_CERT)",
  'tls-client-cert': "PEM of the PSP's ICP-Brasil mTLS client certificate (SELO_TLS_CERT)",
  'bcb-ca': "PEM of the CA that issued the BCB's TLS server certificates (SELO_BCB_CA)",
  'bcb-signing-certs': "PEM of the BCB's message-signing certificates: the verify worker's trust store (SELO_BCB_SIGNING_CERT)",
};

/**
 * selo in one AWS account: the data plane built from the one declaration in `infra/topology.ts`
 * (the same one the local bootstrap provisions, so local and cloud cannot drift), the network, the
 * CloudHSM cluster, the secrets, one Fargate service per worker and the alarms.
 */
export class SeloStack extends Stack {
  /** The topology this stack was built from. */
  readonly topology: ResolvedTopology;

  constructor(scope: Construct, id: string, props: SeloStackProps) {
    super(scope, id, props);
    // Access logs are delivered under a bucket policy, not the LogDeliveryWrite ACL (ACLs off).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    // A scaled service's DesiredCount is left out of the template, so a deploy never resets what
    // Application Auto Scaling set.
    this.node.setContext('@aws-cdk/aws-ecs:removeDefaultDesiredCount', true);
    const topology = resolveTopology(props.environment);
    this.topology = topology;
    const prefix = `selo-${props.environment}`;
    const removalPolicy = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;
    const auditRetentionDays = new CfnParameter(this, 'AuditRetentionDays', {
      type: 'Number',
      // Circular BCB 3.978/2020 art. 67: records of operations are kept for at least ten years.
      default: 3650,
      minValue: 1,
      description: 'Days each audit object is locked (S3 Object Lock, compliance mode: nobody, root included, can delete it earlier)',
    });

    // One customer-managed key for the data at rest (queues, stream, buckets, table, logs, secrets,
    // alarm topic), rotated yearly; the services that write with it are named in its policy.
    const key = new Key(this, 'data-key', { alias: `alias/${prefix}-data`, enableKeyRotation: true, description: `selo ${props.environment}: data at rest`, removalPolicy });
    for (const service of ['events.amazonaws.com', 'cloudwatch.amazonaws.com', `logs.${this.region}.amazonaws.com`]) {
      key.grant(new ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey*', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:DescribeKey');
    }

    const queues = new Map<string, { queue: Queue; dlq: Queue }>();
    for (const declared of topology.queues) {
      const dlq = new Queue(this, `${declared.key}-dlq`, {
        queueName: declared.dlqName,
        retentionPeriod: Duration.seconds(declared.dlqRetentionSeconds),
        encryption: QueueEncryption.KMS,
        encryptionMasterKey: key,
        enforceSSL: true,
        removalPolicy,
      });
      const queue = new Queue(this, declared.key, {
        queueName: declared.name,
        visibilityTimeout: Duration.seconds(declared.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(declared.messageRetentionSeconds),
        receiveMessageWaitTime: Duration.seconds(20),
        deadLetterQueue: { queue: dlq, maxReceiveCount: declared.maxReceiveCount },
        encryption: QueueEncryption.KMS,
        encryptionMasterKey: key,
        enforceSSL: true,
        removalPolicy,
      });
      queues.set(declared.key, { queue, dlq });
    }
    // Where EventBridge puts an event it could not deliver to a rule's queue after its retries.
    const eventsDlq = new Queue(this, 'events-dlq', { queueName: `${prefix}-events-dlq`, retentionPeriod: Duration.days(14), encryption: QueueEncryption.KMS, encryptionMasterKey: key, enforceSSL: true, removalPolicy });
    Validations.of(eventsDlq).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'This is the dead-letter queue of the EventBridge rule targets (DeadLetterConfig); a DLQ has no DLQ of its own.' });
    for (const { dlq } of queues.values()) Validations.of(dlq).acknowledge({ id: 'AwsSolutions-SQS3', reason: "This is a work queue's dead-letter queue (its RedrivePolicy target); a DLQ has no DLQ of its own." });

    const bus = new EventBus(this, 'bus', { eventBusName: topology.eventBusName });
    // Replay (DESIGN §1): every event on the bus is kept, and can be replayed onto it.
    new CfnArchive(this, 'bus-archive', { archiveName: `${prefix}-bus`, sourceArn: bus.eventBusArn, retentionDays: 90, description: "Every event on selo's bus, for replay" });
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
          const queue = queues.get(target.queue)?.queue;
          if (queue === undefined) throw new Error(`rule ${rule.key} targets undeclared queue ${target.queue}`);
          // EventBridge retries with backoff for up to a day (its defaults, stated), then dead-letters.
          return { id: target.queue, arn: queue.queueArn, retryPolicy: { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86_400 }, deadLetterConfig: { arn: eventsDlq.queueArn } };
        }),
      });
      for (const target of [...rule.targets.map((t) => queues.get(t.queue)?.queue), eventsDlq]) {
        target?.addToResourcePolicy(
          new PolicyStatement({
            principals: [new ServicePrincipal('events.amazonaws.com')],
            actions: ['sqs:SendMessage'],
            resources: [target.queueArn],
            conditions: { ArnEquals: { 'aws:SourceArn': cfnRule.attrArn } },
          }),
        );
      }
    }

    const auditStream = new Stream(this, 'audit-stream', {
      streamName: topology.auditStream.name,
      shardCount: topology.auditStream.shardCount,
      retentionPeriod: Duration.hours(topology.auditStream.retentionHours),
      encryption: StreamEncryption.KMS,
      encryptionKey: key,
      removalPolicy,
    });
    Validations.of(auditStream).acknowledge({ id: 'AwsSolutions-KDS3', reason: 'The stream is encrypted with the customer-managed data key on purpose (issue 19: customer-managed keys), not the aws/kinesis key.' });

    // S3 server access logs may only go to a bucket encrypted with S3-managed keys (S3 User Guide,
    // "Enabling Amazon S3 server access logging").
    const accessLogs = new Bucket(this, 'access-logs-bucket', {
      bucketName: `${prefix}-access-logs-${this.account}`,
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [{ transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }] }],
      removalPolicy,
    });
    Validations.of(accessLogs).acknowledge({ id: 'AwsSolutions-S1', reason: 'This bucket receives the other buckets\' server access logs; logging it into itself would loop.' });
    // Encrypted with the data key, TLS only, never public, versioned, access logged.
    const dataBucket = (bucketName: string, logsPrefix: string): BucketProps => ({
      bucketName,
      encryption: BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: logsPrefix,
      removalPolicy,
    });
    const auditBucket = new Bucket(this, 'audit-bucket', {
      ...dataBucket(topology.auditBucket, 'audit/'),
      objectLockEnabled: true,
      // Queried by Athena for the first months; then kept for the regulator, rarely read. Glacier
      // Instant Retrieval stays queryable (millisecond reads); nothing expires before the lock ends.
      lifecycleRules: [{ transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(90) }, { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(365) }] }],
    });
    // Compliance mode: no user, root included, can shorten the retention or delete a locked version.
    (auditBucket.node.defaultChild as CfnBucket).objectLockConfiguration = { objectLockEnabled: 'Enabled', rule: { defaultRetention: { mode: 'COMPLIANCE', days: auditRetentionDays.valueAsNumber } } };
    const payloadBucket = new Bucket(this, 'payload-bucket', dataBucket(topology.payloadBucket, 'payloads/'));
    this.#auditDelivery(topology, auditStream, auditBucket, key.keyArn);
    this.#athena(prefix, topology, key, dataBucket(`${prefix}-athena-results-${this.account}`, 'athena-results/'));

    const table = new Table(this, 'saga-table', {
      tableName: topology.sagaTable.name,
      partitionKey: { name: topology.sagaTable.partitionKey, type: AttributeType.STRING },
      sortKey: { name: topology.sagaTable.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: topology.sagaTable.ttlAttribute,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy,
    });
    table.addGlobalSecondaryIndex({
      indexName: topology.sagaTable.stateIndex.name,
      partitionKey: { name: topology.sagaTable.stateIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: topology.sagaTable.stateIndex.sortKey, type: AttributeType.STRING },
    });

    const network = new SeloNetwork(this, 'network', { prefix, key, rsfnCidrs: props.rsfnCidrs ?? [], rsfnPorts: [...new Set([props.bcb ?? BCB_HOMOLOGATION].flatMap((b) => [b.icomUrl, b.dictUrl]).map((u) => Number(new URL(u).port || 443)))] });
    const hsm = new SeloHsm(this, 'hsm', { vpc: network.vpc, clients: network.workers });
    const singleHsm = new CfnParameter(this, 'CloudHsmSingleHsm', { type: 'String', default: 'false', allowedValues: ['true', 'false'], description: 'true while the cluster has one HSM (test environments): the client skips its key availability check' });
    const hsmIp = new CfnParameter(this, 'CloudHsmIp', { type: 'String', default: '', description: 'ENI address of one HSM in the cluster (after aws cloudhsmv2 create-hsm): the CloudHSM client finds the others from it' });

    const secretNames = [...new Set(WORKERS.flatMap((w) => w.secrets))];
    const secrets = Object.fromEntries(
      secretNames.map((name) => {
        const secret = new Secret(this, `secret-${name}`, { secretName: `${prefix}/${name}`, description: SECRET_DESCRIPTIONS[name], encryptionKey: key, removalPolicy });
        Validations.of(secret).acknowledge({
          id: 'AwsSolutions-SMG4',
          reason: name === 'hsm-pin'
            ? "The crypto user's password is changed inside CloudHSM (cloudhsm-cli user change-password) and then here; no rotation Lambda can reach the HSM."
            : 'A certificate is renewed by its issuer (ICP-Brasil, the BCB, or the bank for the CloudHSM cluster); the new PEM is put here by hand (docs/deploying.md).',
        });
        return [name, secret];
      }),
    ) as Record<WorkerSecret, Secret>;

    const workers = new SeloWorkers(this, 'workers', {
      topology,
      ispb: props.ispb ?? '99999004',
      transmitMarkerItem: props.transmitMarkerItem === true,
      legacyMessageIds: props.legacyMessageIds === true,
      vpc: network.vpc,
      securityGroup: network.workers,
      key,
      image: props.image(this),
      secrets,
      arns: {
        queues: new Map([...queues].map(([k, q]) => [k, { queue: q.queue.queueArn, dlq: q.dlq.queueArn }])),
        bus: bus.eventBusArn,
        stream: auditStream.streamArn,
        table: table.tableArn,
        stateIndex: `${table.tableArn}/index/${topology.sagaTable.stateIndex.name}`,
        payloadBucket: payloadBucket.bucketArn,
      },
      bcb: props.bcb ?? BCB_HOMOLOGATION,
      hsm: {
        module: '/opt/cloudhsm/lib/libcloudhsm_pkcs11.so',
        // CloudHSM's PKCS#11 library presents the cluster as one slot whose token is labelled hsm1.
        tokenLabel: 'hsm1',
        signingKeyLabel: props.hsmKeys?.signing ?? 'selo-psp-signing',
        tlsKeyLabel: props.hsmKeys?.tls ?? 'selo-psp-tls',
        hsmIp: hsmIp.valueAsString,
        singleHsm: singleHsm.valueAsString,
      },
      logRetention: RetentionDays.ONE_YEAR,
      payloadBucketLogicalId: this.resolve(this.getLogicalId(payloadBucket.node.defaultChild as CfnBucket)) as string,
    });

    const receive = workers.services.find((s) => s.name === 'receive');
    if (receive === undefined) throw new Error('receive service not built');
    new SeloAlarms(this, 'alarms', {
      environment: props.environment,
      key,
      queues,
      eventsDlq,
      logGroups: new Map(workers.services.map((s) => [s.name, s.logGroup])),
      deliveryStreamName: topology.auditStream.name,
      auditStreamName: topology.auditStream.name,
      receive: { clusterName: workers.cluster.clusterName, serviceName: receive.service.serviceName },
    });
    new CfnOutput(this, 'CloudHsmClusterId', { value: hsm.cluster.attrClusterId, description: 'aws cloudhsmv2 create-hsm --cluster-id <this> …' });
    new CfnOutput(this, 'SecretNames', { value: secretNames.map((n) => `${prefix}/${n}=${SECRET_VARIABLES[n]}`).join(' '), description: 'Secrets to fill (aws secretsmanager put-secret-value)' });
  }

  /** The Athena workgroup for the audit tables, its results encrypted in a bucket of their own. */
  #athena(prefix: string, topology: ResolvedTopology, key: Key, bucketProps: BucketProps): void {
    // Query results are scratch: unversioned, gone after 30 days.
    const results = new Bucket(this, 'athena-results-bucket', { ...bucketProps, versioned: false, lifecycleRules: [{ expiration: Duration.days(30) }] });
    new CfnWorkGroup(this, 'athena-workgroup', {
      name: `${prefix}-audit`,
      description: `Queries over ${topology.auditBucket} (Glue database selo_${topology.environment.replaceAll('-', '_')}_audit)`,
      state: 'ENABLED',
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        resultConfiguration: { outputLocation: `s3://${results.bucketName}/`, encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: key.keyArn } },
      },
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
  #auditDelivery(topology: ResolvedTopology, stream: Stream, bucket: Bucket, keyArn: string): void {
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

    // The actions Firehose needs for a Kinesis source and an S3 destination with format conversion
    // (Firehose developer guide, "Grant Firehose access to an Amazon S3 destination"), and no
    // s3:DeleteObject*: the delivery role can add audit objects, never remove one.
    const role = new Role(this, 'audit-delivery-role', {
      assumedBy: new ServicePrincipal('firehose.amazonaws.com'),
      description: 'Firehose: reads the audit stream, writes (never deletes) audit objects',
      inlinePolicies: {
        delivery: new PolicyDocument({
          statements: [
            new PolicyStatement({ actions: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetShardIterator', 'kinesis:GetRecords', 'kinesis:ListShards'], resources: [stream.streamArn] }),
            new PolicyStatement({ actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], resources: [bucket.bucketArn] }),
            new PolicyStatement({ actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], resources: [bucket.arnForObjects('audit/*')] }),
            new PolicyStatement({ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [keyArn] }),
            new PolicyStatement({
              actions: ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'],
              resources: [
                `arn:${this.partition}:glue:${this.region}:${this.account}:catalog`,
                `arn:${this.partition}:glue:${this.region}:${this.account}:database/${databaseName}`,
                ...(['spi', 'dict'] as const).map((system) => `arn:${this.partition}:glue:${this.region}:${this.account}:table/${databaseName}/audit_${system}`),
              ],
            }),
          ],
        }),
      },
    });
    Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::<${this.resolve(this.getLogicalId(bucket.node.defaultChild as CfnBucket)) as string}.Arn>/audit/*]`, reason: 'Firehose names each object (partition prefix, then its own file name): it must be able to write any key under audit/.' });
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
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: keyArn } },
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
    Validations.of(deliveryStream).acknowledge({ id: 'AwsSolutions-KDF1', reason: 'A delivery stream with a Kinesis stream source cannot enable its own server-side encryption (Firehose developer guide, "Data protection"); the source stream is encrypted with the data key and Firehose writes the objects with it (KMSEncryptionConfig).' });
  }
}
