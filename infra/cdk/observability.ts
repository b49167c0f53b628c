import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData, Unit } from 'aws-cdk-lib/aws-cloudwatch';
import type { IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

/** The SPI settles or rejects (AB03) a payment 40 s after its `AccptncDtTm` (DESIGN §2). */
export const SPI_SETTLEMENT_LIMIT_SECONDS = 40;

/** Custom metrics from the workers' log lines (pino JSON, `msg`), namespace `selo/<env>`. */
export const LOG_METRICS = {
  /** The in-doubt sweeper's announcement (workers/compensate/in-doubt-sweeper.ts). */
  PaymentsInDoubt: ['payment in doubt; raised to operations, nothing reversed'],
} as const;

/**
 * The namespace of selo's custom metrics: the workers' own (CloudWatch embedded metric format,
 * `SELO_METRICS_NAMESPACE`, shared/metrics) and those from their log lines.
 */
export function metricsNamespace(environment: string): string {
  return `selo/${environment}`;
}

/**
 * Timings from the workers' log lines (metric filters extract the value), namespace `selo/<env>`:
 * each handled message's handler and publish time per worker (the runtime's `message handled`
 * line, dimension `Worker` = the pino logger's name, e.g. `selo.sign`), and the time from a
 * pacs.008's receipt to the ICOM's 201 for our answer (transmit).
 */
export const LOG_TIMINGS = [
  { metricName: 'HandlerMs', message: 'message handled', value: '$.handlerMs', byWorker: true },
  { metricName: 'PublishMs', message: 'message handled', value: '$.publishMs', byWorker: true },
  { metricName: 'InboundAnswerMs', message: 'answer to an inbound payment accepted by the ICOM', value: '$.answerMs', byWorker: false, service: 'transmit' },
] as const;

/** The BCB's indicator for a receiver's answer (Manual de Tempos do Pix, README "Performance"): P95 2.3 s. */
export const INBOUND_ANSWER_P95_MS = 2_300;

/** Options of {@link SeloAlarms}. */
export interface SeloAlarmsProps {
  environment: string;
  key: IKey;
  /** Work queues and their DLQs by key, plus the event bus's DLQ. */
  queues: ReadonlyMap<string, { queue: Queue; dlq: Queue }>;
  eventsDlq: Queue;
  /** Log groups of the services whose lines count (by service id). */
  logGroups: ReadonlyMap<string, ILogGroup>;
  deliveryStreamName: string;
  auditStreamName: string;
  /** The receive service, to alarm when it is not running. */
  receive: { clusterName: string; serviceName: string };
}

/**
 * Alarms, all to one SNS topic (encrypted, TLS only): any DLQ not empty; the oldest message on
 * sign, transmit and verify older than half the SPI's 40 s; the operations queue not empty (in
 * doubt, failed compensations, conflicts); payments marked in doubt (a metric filter on the
 * sweeper's log), HSM errors and payments still in doubt after 15 minutes (the workers' embedded
 * metric format); Firehose delivery freshness; the audit stream's iterator age; the receive
 * service not running.
 */
export class SeloAlarms extends Construct {
  /** Where every alarm goes (subscribe the operations team: docs/deploying.md). */
  readonly topic: Topic;
  /** Every alarm built. */
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: SeloAlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'alarms', { topicName: `selo-${props.environment}-alarms`, masterKey: props.key, enforceSSL: true });
    const action = new SnsAction(this.topic);
    const alarm = (name: string, metric: IMetric, threshold: number, description: string, evaluationPeriods = 1): void => {
      const created = new Alarm(this, name, {
        alarmName: `selo-${props.environment}-${name}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
    };
    const minute = Duration.minutes(1);
    for (const [key, { queue, dlq }] of props.queues) {
      alarm(`${key}-dlq-not-empty`, dlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }), 1, `Messages in ${dlq.queueName}: inspect with selo dlq list ${key}, replay with selo dlq replay ${key}`);
      if (['sign', 'transmit', 'verify'].includes(key)) {
        alarm(`${key}-oldest-message`, queue.metricApproximateAgeOfOldestMessage({ period: minute, statistic: 'Maximum' }), SPI_SETTLEMENT_LIMIT_SECONDS / 2, `A message waited half the SPI's ${SPI_SETTLEMENT_LIMIT_SECONDS} s settlement limit in ${queue.queueName}: payments are at risk of AB03`);
      }
      if (key === 'operations') {
        alarm('operations-not-empty', queue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }), 1, 'Operations must act: in-doubt payments, failed compensations, conflicting outcomes (selo saga list)');
      }
    }
    alarm('events-dlq-not-empty', props.eventsDlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }), 1, 'EventBridge could not deliver events to a queue (KMS or queue policy): the events are in the events DLQ');
    const namespace = metricsNamespace(props.environment);
    for (const [metricName, messages] of Object.entries(LOG_METRICS)) {
      const pattern = FilterPattern.any(...messages.map((m) => FilterPattern.stringValue('$.msg', '=', m)));
      for (const [service, logGroup] of props.logGroups) {
        if (!service.startsWith('compensate')) continue;
        new MetricFilter(this, `${service}-${metricName}`, { logGroup, filterPattern: pattern, metricNamespace: namespace, metricName, metricValue: '1', defaultValue: 0 });
      }
    }
    alarm('payments-in-doubt', new Metric({ namespace, metricName: 'PaymentsInDoubt', statistic: 'Sum', period: Duration.minutes(5) }), 1, 'A payment is in doubt: find its outcome (the BCB ledger, a late pacs.002), never reverse it blindly');
    // From the workers' embedded metric format lines (shared/metrics, SELO_METRICS=emf): all
    // services together (the empty dimension set).
    alarm('hsm-errors', new Metric({ namespace, metricName: 'HsmErrors', statistic: 'Sum', period: Duration.minutes(5) }), 1, 'The HSM pool failed (CloudHSM unreachable, sessions lost, login refused): signing and mTLS stop; /ready fails');
    alarm('sagas-in-doubt', new Metric({ namespace, metricName: 'SagasInDoubt', statistic: 'Maximum', period: Duration.minutes(5) }), 1, 'Payments are still IN_DOUBT (counted by the in-doubt sweeper): resolve each with the BCB (selo saga list --state IN_DOUBT, selo saga resolve); it clears when none is left', 3);
    for (const timing of LOG_TIMINGS) {
      for (const [service, logGroup] of props.logGroups) {
        if ('service' in timing && service !== timing.service) continue;
        new MetricFilter(this, `${service}-${timing.metricName}`, {
          logGroup,
          filterPattern: FilterPattern.stringValue('$.msg', '=', timing.message),
          metricNamespace: namespace,
          metricName: timing.metricName,
          metricValue: timing.value,
          unit: Unit.MILLISECONDS,
          ...(timing.byWorker ? { dimensions: { Worker: '$.name' } } : {}),
        });
      }
    }
    alarm('inbound-answer-slow', new Metric({ namespace, metricName: 'InboundAnswerMs', statistic: 'p95', period: Duration.minutes(5) }), INBOUND_ANSWER_P95_MS, `Our answers to inbound payments take longer than the BCB's P95 indicator (${INBOUND_ANSWER_P95_MS} ms from receipt to the ICOM's 201)`, 2);
    alarm('audit-delivery-freshness', new Metric({ namespace: 'AWS/Firehose', metricName: 'DeliveryToS3.DataFreshness', dimensionsMap: { DeliveryStreamName: props.deliveryStreamName }, statistic: 'Maximum', period: Duration.minutes(5) }), 900, 'Audit records older than 15 minutes are not yet in S3 (Firehose delivery failing or stalled)');
    alarm('audit-stream-iterator-age', new Metric({ namespace: 'AWS/Kinesis', metricName: 'GetRecords.IteratorAgeMilliseconds', dimensionsMap: { StreamName: props.auditStreamName }, statistic: 'Maximum', period: Duration.minutes(5) }), 15 * 60_000, 'Firehose reads the audit stream more than 15 minutes behind');
    const running = new Metric({ namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount', dimensionsMap: { ClusterName: props.receive.clusterName, ServiceName: props.receive.serviceName }, statistic: 'Minimum', period: minute });
    const stopped = new Alarm(this, 'receive-not-running', {
      alarmName: `selo-${props.environment}-receive-not-running`,
      alarmDescription: 'No receive task is running: nothing is read from the ICOM stream (inbound payments wait at the BCB)',
      metric: running,
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.BREACHING,
    });
    stopped.addAlarmAction(action);
    this.alarms.push(stopped);
  }
}
