import { CfnParameter, Duration, Stack, Validations } from 'aws-cdk-lib';
import { CfnScalableTarget, CfnScalingPolicy } from 'aws-cdk-lib/aws-applicationautoscaling';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import type { SecurityGroup, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Cluster, ContainerInsights, CpuArchitecture, FargateService, FargateTaskDefinition, LogDrivers, OperatingSystemFamily, Secret as EcsSecret } from 'aws-cdk-lib/aws-ecs';
import type { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { WORKERS } from '../topology.ts';
import { metricsNamespace } from './observability.ts';
import type { ResolvedTopology, WorkerDeclaration, WorkerSecret } from '../topology.ts';

/** The environment variable each secret is given to a worker as (README "Workers", "HSM"). */
export const SECRET_VARIABLES: Readonly<Record<WorkerSecret, string>> = {
  'hsm-pin': 'SELO_HSM_PIN',
  'cloudhsm-customer-ca': 'SELO_CLOUDHSM_CUSTOMER_CA',
  'signing-cert': 'SELO_SIGNING_CERT',
  'tls-client-cert': 'SELO_TLS_CERT',
  'bcb-ca': 'SELO_BCB_CA',
  'bcb-signing-certs': 'SELO_BCB_SIGNING_CERT',
};

/** The health endpoint's port in every task (one worker per task). */
export const HEALTH_PORT = 8080;

/**
 * Backlog per task that scaling holds, derived from a task's measured rate and the wait the SPI
 * leaves each queue:
 * - rate: the workers' own CPU is about 15 ms per payment for all five together (README
 *   "Performance", `bench-demo-cost`: 16.8 ms at 50/s), so one vCPU carries roughly 65 payments/s
 *   through all five; a task running one worker on one vCPU does at least that.
 * - latency: the SPI settles or rejects (AB03) 40 s after `AccptncDtTm` (DESIGN §2) and holds a
 *   receiver to P50 1.4 s / P95 2.3 s (Manual de Tempos do Pix, README "Performance"); a payment
 *   crosses up to three queues (sign, transmit, verify), so each may add about one second of
 *   waiting.
 * Backlog per task = 65 messages/s × 1 s.
 */
export const SCALING = { taskRatePerSecond: 65, queueWaitSeconds: 1, targetBacklogPerTask: 65 } as const;

/** Fargate size of one worker task: one vCPU (Node's event loop plus the libuv pool for PKCS#11). */
const TASK = { cpu: 1024, memoryLimitMiB: 2048 } as const;

/** Options of {@link SeloWorkers}. */
export interface SeloWorkersProps {
  /** Sets `SELO_TRANSMIT_MARKER_ITEM=true` on the transmit service (SeloStackProps.transmitMarkerItem). */
  transmitMarkerItem: boolean;
  /** Sets `SELO_SIGN_LEGACY_MESSAGE_IDS=true` on the sign service (SeloStackProps.legacyMessageIds). */
  legacyMessageIds: boolean;
  topology: ResolvedTopology;
  /** The PSP's ISPB (`SELO_ISPB`). */
  ispb: string;
  vpc: Vpc;
  securityGroup: SecurityGroup;
  key: IKey;
  image: ContainerImage;
  /** Secrets Manager secrets by what they hold. */
  secrets: Readonly<Record<WorkerSecret, ISecret>>;
  /** ARNs the task roles are granted on. */
  arns: { queues: ReadonlyMap<string, { queue: string; dlq: string }>; bus: string; stream: string; table: string; stateIndex: string; payloadBucket: string };
  /** ICOM and DICT origins on the RSFN. */
  bcb: { icomUrl: string; dictUrl: string };
  /** CloudHSM client settings given to the tasks that open HSM sessions. */
  hsm: { module: string; tokenLabel: string; signingKeyLabel: string; tlsKeyLabel: string; hsmIp: string; singleHsm: string };
  logRetention: RetentionDays;
  /** The payload bucket's logical id (cdk-nag names wildcard resources by it). */
  payloadBucketLogicalId: string;
}

/** What {@link SeloWorkers} built for one service. */
export interface WorkerService {
  /** Service id: the worker's name, or `compensate-sweeper`. */
  name: string;
  service: FargateService;
  /** Exactly what {@link taskStatements} grants. */
  taskRole: Role;
  /** `/selo/<env>/<name>`, the task's awslogs destination. */
  logGroup: LogGroup;
}

/**
 * The ECS cluster and one Fargate service per worker (`selo worker <name>` from the worker image),
 * plus the compensation worker's in-doubt sweeper as a service of its own: receive and the sweeper
 * run exactly one task and are replaced without overlap (the BCB allows 6 parallel ICOM streams per
 * participant, all held by one receive task; two sweepers would announce the same payment in doubt
 * twice); sign, transmit, verify and compensate scale on their queue's backlog per task.
 */
export class SeloWorkers extends Construct {
  /** The ECS cluster (Container Insights on: the scaling policies read its RunningTaskCount). */
  readonly cluster: Cluster;
  /** One per service, in topology order (compensate's sweeper after compensate). */
  readonly services: WorkerService[] = [];

  constructor(scope: Construct, id: string, props: SeloWorkersProps) {
    super(scope, id);
    this.cluster = new Cluster(this, 'cluster', { clusterName: `selo-${props.topology.environment}`, vpc: props.vpc, containerInsightsV2: ContainerInsights.ENABLED });
    for (const worker of WORKERS) {
      if (worker.name === 'compensate') {
        // The queue's consumers scale with the sweeper off; one more task, alone in its service,
        // consumes the queue too and runs the sweeper (SELO_IN_DOUBT_SWEEPER).
        this.#service(props, worker, { id: 'compensate', sweeper: false });
        this.#service(props, worker, { id: 'compensate-sweeper', sweeper: true });
      } else {
        this.#service(props, worker, { id: worker.name });
      }
    }
  }

  #service(props: SeloWorkersProps, worker: WorkerDeclaration, options: { id: string; sweeper?: boolean }): void {
    const { topology } = props;
    const single = worker.consumes === undefined || options.sweeper === true;
    const taskRole = new Role(this, `${options.id}-task-role`, {
      roleName: `selo-${topology.environment}-${options.id}-task`,
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `selo ${options.id} worker: what infra/topology.ts declares it touches`,
      inlinePolicies: { worker: new PolicyDocument({ statements: taskStatements(worker, props.arns, props.key.keyArn) }) },
    });
    const logGroup = new LogGroup(this, `${options.id}-logs`, { logGroupName: `/selo/${topology.environment}/${options.id}`, retention: props.logRetention, encryptionKey: props.key });
    const taskDefinition = new FargateTaskDefinition(this, `${options.id}-task`, {
      family: `selo-${topology.environment}-${options.id}`,
      cpu: TASK.cpu,
      memoryLimitMiB: TASK.memoryLimitMiB,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.X86_64, operatingSystemFamily: OperatingSystemFamily.LINUX },
      taskRole,
    });
    const environment: Record<string, string> = {
      SELO_ENV: topology.environment,
      SELO_ISPB: props.ispb,
      AWS_REGION: Stack.of(this).region,
      SELO_AWS_ACCOUNT_ID: Stack.of(this).account,
      SELO_LOG_LEVEL: 'info',
      SELO_HEALTH_PORT: String(HEALTH_PORT),
      // Embedded metric format lines on stdout: the awslogs driver delivers them, CloudWatch Logs
      // extracts the metrics (docs/deploying.md "Metrics").
      SELO_METRICS: 'emf',
      SELO_METRICS_NAMESPACE: metricsNamespace(topology.environment),
      SELO_METRICS_SERVICE: options.id,
    };
    if (worker.hsm) {
      Object.assign(environment, {
        SELO_HSM_MODULE: props.hsm.module,
        SELO_HSM_TOKEN_LABEL: props.hsm.tokenLabel,
        // Read by the cloudhsm image's entry point (scripts/containers-cloudhsm-entrypoint.sh).
        SELO_CLOUDHSM_HSM_IP: props.hsm.hsmIp,
        SELO_CLOUDHSM_SINGLE_HSM: props.hsm.singleHsm,
      });
    }
    if (worker.name === 'sign') environment.SELO_HSM_SIGNING_KEY_LABEL = props.hsm.signingKeyLabel;
    if (worker.bcb) Object.assign(environment, { SELO_BCB_URL: props.bcb.icomUrl, SELO_BCB_DICT_URL: props.bcb.dictUrl, SELO_TLS_KEY_LABEL: props.hsm.tlsKeyLabel });
    if (worker.name === 'transmit' && props.transmitMarkerItem) environment.SELO_TRANSMIT_MARKER_ITEM = 'true';
    if (worker.name === 'sign' && props.legacyMessageIds) environment.SELO_SIGN_LEGACY_MESSAGE_IDS = 'true';
    if (worker.name === 'compensate') environment.SELO_IN_DOUBT_SWEEPER = options.sweeper === true ? 'true' : 'false';
    const secrets = Object.fromEntries(worker.secrets.map((s) => [SECRET_VARIABLES[s], EcsSecret.fromSecretsManager(props.secrets[s])]));
    taskDefinition.addContainer('worker', {
      containerName: options.id,
      image: props.image,
      // The image's entry point is `selo worker` (Dockerfile): the command names the worker.
      command: [worker.name],
      environment,
      secrets,
      essential: true,
      readonlyRootFilesystem: false,
      logging: LogDrivers.awsLogs({ logGroup, streamPrefix: options.id }),
      // `/ready` listens on 127.0.0.1 only (README "Operations"); ECS runs the check inside the
      // container, so node itself asks it (no curl in the image).
      healthCheck: {
        command: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${HEALTH_PORT}/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      // A worker ends within 28 s of SIGTERM (README "Workers"); Fargate's maximum is 120 s.
      stopTimeout: Duration.seconds(30),
    });
    const service = new FargateService(this, `${options.id}-service`, {
      serviceName: `selo-${topology.environment}-${options.id}`,
      cluster: this.cluster,
      taskDefinition,
      ...(single ? { desiredCount: 1 } : {}),
      // A single-task service is stopped before its replacement starts: never two receive tasks
      // (6 ICOM streams per participant) nor two sweepers.
      minHealthyPercent: single ? 0 : 100,
      maxHealthyPercent: single ? 100 : 200,
      circuitBreaker: { enable: true, rollback: true },
      securityGroups: [props.securityGroup],
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      assignPublicIp: false,
    });
    Validations.of(taskDefinition).acknowledge({ id: 'AwsSolutions-ECS2', reason: 'The variables are non-secret settings (environment, ISPB, region, BCB origins, key labels); the PIN and certificates come from Secrets Manager as ECS secrets.' });
    const executionPolicy = taskDefinition.executionRole?.node.tryFindChild('DefaultPolicy');
    if (executionPolicy !== undefined) Validations.of(executionPolicy).acknowledge({ id: 'AwsSolutions-IAM5[Resource::*]', reason: 'ecr:GetAuthorizationToken has no resource-level permissions (ECR User Guide); image pulls and secret reads are scoped to the repository and the secrets.' });
    if (worker.payloads !== 'none') Validations.of(taskRole).acknowledge({ id: `AwsSolutions-IAM5[Resource::<${props.payloadBucketLogicalId}.Arn>/*]`, reason: 'Claim checks, DICT answers and quarantined messages are keyed by message; the role has only GetObject/PutObject as topology.ts declares, never delete.' });
    if (!single && worker.consumes !== undefined) this.#scaleOnBacklog(options.id, service, topology.queues.find((q) => q.key === worker.consumes)?.name ?? '');
    this.services.push({ name: options.id, service, taskRole, logGroup });
  }

  /**
   * Target tracking on the queue's visible messages per running task. Metric math needs the
   * low-level policy (CfnScalingPolicy with a customized metric specification and a metrics array;
   * Application Auto Scaling User Guide, "Create a target tracking scaling policy using metric
   * math"): m1 / m2, where m2 is Container Insights' RunningTaskCount for the service.
   */
  #scaleOnBacklog(id: string, service: FargateService, queueName: string): void {
    const min = new CfnParameter(Stack.of(this), `${pascal(id)}MinTasks`, { type: 'Number', default: 1, minValue: 1, description: `Fewest ${id} tasks` });
    const max = new CfnParameter(Stack.of(this), `${pascal(id)}MaxTasks`, { type: 'Number', default: 10, minValue: 1, description: `Most ${id} tasks` });
    const target = new CfnScalableTarget(this, `${id}-scaling-target`, {
      serviceNamespace: 'ecs',
      scalableDimension: 'ecs:service:DesiredCount',
      resourceId: `service/${this.cluster.clusterName}/${service.serviceName}`,
      minCapacity: min.valueAsNumber,
      maxCapacity: max.valueAsNumber,
    });
    target.node.addDependency(service);
    new CfnScalingPolicy(this, `${id}-backlog-per-task`, {
      policyName: `selo-${id}-backlog-per-task`,
      policyType: 'TargetTrackingScaling',
      scalingTargetId: target.ref,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: SCALING.targetBacklogPerTask,
        scaleOutCooldown: 30,
        scaleInCooldown: 120,
        customizedMetricSpecification: {
          metrics: [
            { id: 'm1', returnData: false, metricStat: { stat: 'Sum', metric: { namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', dimensions: [{ name: 'QueueName', value: queueName }] } } },
            { id: 'm2', returnData: false, metricStat: { stat: 'Average', metric: { namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount', dimensions: [{ name: 'ClusterName', value: this.cluster.clusterName }, { name: 'ServiceName', value: service.serviceName }] } } },
            { id: 'e1', expression: 'm1 / m2', label: 'visible messages per running task', returnData: true },
          ],
        },
      },
    });
  }
}

function pascal(id: string): string {
  return id.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}

/**
 * A worker's task role statements, exactly what {@link WORKERS} declares: its queue (receive,
 * delete, extend visibility) and its DLQ (the runtime dead-letters itself), the queues it sends to,
 * PutEvents on the bus, PutRecords on the audit stream, the saga table's item operations (and the
 * state index for the sweeper), the payload bucket's objects, and the data key for SQS, Kinesis and
 * S3 under KMS. Secrets are read by the execution role (ECS injects them), never by the task.
 */
export function taskStatements(worker: WorkerDeclaration, arns: SeloWorkersProps['arns'], keyArn: string): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  const queue = (key: string): { queue: string; dlq: string } => {
    const found = arns.queues.get(key);
    if (found === undefined) throw new Error(`worker ${worker.name} uses undeclared queue ${key}`);
    return found;
  };
  if (worker.consumes !== undefined) {
    const consumed = queue(worker.consumes);
    statements.push(new PolicyStatement({ actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl'], resources: [consumed.queue] }));
    statements.push(new PolicyStatement({ actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'], resources: [consumed.dlq] }));
  }
  if (worker.sendsTo.length > 0) statements.push(new PolicyStatement({ actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'], resources: worker.sendsTo.map((k) => queue(k).queue) }));
  if (worker.publishes) statements.push(new PolicyStatement({ actions: ['events:PutEvents'], resources: [arns.bus] }));
  statements.push(new PolicyStatement({ actions: ['kinesis:PutRecords'], resources: [arns.stream] }));
  statements.push(new PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'], resources: [arns.table] }));
  if (worker.queriesByState) statements.push(new PolicyStatement({ actions: ['dynamodb:Query'], resources: [arns.stateIndex] }));
  const objectActions = { none: [], read: ['s3:GetObject'], write: ['s3:PutObject'], 'read-write': ['s3:GetObject', 's3:PutObject'] }[worker.payloads];
  if (objectActions.length > 0) statements.push(new PolicyStatement({ actions: objectActions, resources: [`${arns.payloadBucket}/*`] }));
  statements.push(new PolicyStatement({ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [keyArn] }));
  return statements;
}
