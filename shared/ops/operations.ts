import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { queryAuditTrail } from '../audit/audit-query.ts';
import type { AuditQueryResult } from '../audit/audit-query.ts';
import type { AuditSystem } from '../audit/index.ts';
import { SagaStore } from '../saga/index.ts';
import type { Saga, SagaState } from '../saga/index.ts';
import { AlertStore } from './alerts.ts';
import type { OperationsAlert } from './alerts.ts';
import { listDeadLetters, replayDeadLetters } from './dead-letters.ts';
import type { DeadLetter, ReplayResult } from './dead-letters.ts';
import { acknowledgeAlert, acknowledgeResolvedAlerts, drainOperationsQueue } from './operations-reader.ts';
import type { DrainResult } from './operations-reader.ts';

/** The saga states operations must act on, in the order they are shown. */
export const ATTENTION_STATES: readonly SagaState[] = ['IN_DOUBT', 'OUTCOME_CONFLICT', 'COMPENSATION_FAILED'];

/** A work queue and its DLQ, by their physical names (topology `queues`). */
export interface OperationsQueue {
  key: string;
  name: string;
  dlqName: string;
}

/** Options of {@link Operations}: the clients and the environment's resource names. */
export interface OperationsOptions {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  s3: S3Client;
  /** The saga table (topology `sagaTable.name`) and its state index. */
  sagaTable: string;
  /** @defaultValue 'by-state' */
  stateIndexName?: string;
  /** The audit bucket (topology `auditBucket`). */
  auditBucket: string;
  /** Every work queue with its DLQ; the one keyed `operations` is the alerts' queue. */
  queues: readonly OperationsQueue[];
  /** The saga ids an operator's id may name (`selo saga show`'s rule). @defaultValue the id as given */
  sagaIdCandidates?: (id: string) => string[];
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** A DLQ and how many messages wait in it (SQS's approximate count: reading it hides nothing). */
export interface DeadLetterCount {
  queue: string;
  dlqName: string;
  messages: number;
}

/** What one refresh of the alerts did. */
export interface AlertRefresh {
  drained: DrainResult;
  /** Alerts acknowledged because their saga was resolved. */
  acknowledged: OperationsAlert[];
  /** The open alerts now, oldest first. */
  open: OperationsAlert[];
}

/**
 * What operations read and do, in one place, for `selo ops` and the console alike: the alerts
 * (the operations queue drained into the saga table), the sagas that need a person, dead letters
 * (the same functions as `selo dlq`) and audit queries (the same as `selo audit query`). It holds
 * no rules of its own beyond the alerts': every action goes through the module that owns it.
 */
export class Operations {
  readonly alerts: AlertStore;
  readonly sagas: SagaStore;
  readonly #options: OperationsOptions;
  readonly #urls = new Map<string, Promise<string>>();
  readonly #now: () => Date;

  constructor(options: OperationsOptions) {
    if (!options.queues.some((q) => q.key === 'operations')) throw new RangeError('OperationsOptions.queues must include the queue keyed "operations"');
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    const index = options.stateIndexName ?? 'by-state';
    this.sagas = new SagaStore({ client: options.dynamodb, tableName: options.sagaTable, stateIndexName: index });
    this.alerts = new AlertStore({ client: options.dynamodb, tableName: options.sagaTable, stateIndexName: index, now: this.#now });
  }

  /** The queues, for choosing one by key. */
  get queues(): readonly OperationsQueue[] {
    return this.#options.queues;
  }

  #queue(key: string): OperationsQueue {
    const queue = this.#options.queues.find((q) => q.key === key);
    if (queue === undefined) throw new RangeError(`no queue ${JSON.stringify(key)}; the queues are ${this.#options.queues.map((q) => q.key).join(', ')}`);
    return queue;
  }

  #url(name: string): Promise<string> {
    let url = this.#urls.get(name);
    if (url === undefined) {
      url = this.#options.sqs.send(new GetQueueUrlCommand({ QueueName: name })).then((got) => got.QueueUrl ?? '');
      url.catch(() => this.#urls.delete(name)).catch(() => undefined);
      this.#urls.set(name, url);
    }
    return url;
  }

  /** Drains the operations queue into the alert record, acknowledges what resolved sagas settle, and lists what stays open. */
  async refreshAlerts(): Promise<AlertRefresh> {
    const drained = await drainOperationsQueue({ sqs: this.#options.sqs, queueUrl: await this.#url(this.#queue('operations').name), alerts: this.alerts });
    const open = await this.alerts.listOpen();
    const acknowledged = await acknowledgeResolvedAlerts(this.alerts, this.sagas, open);
    const gone = new Set(acknowledged.map((a) => a.alertId));
    return { drained, acknowledged, open: open.filter((a) => !gone.has(a.alertId)) };
  }

  /** An operator's acknowledgement of an alert no saga settles ({@link acknowledgeAlert}). */
  acknowledge(alertId: string, operator: string, note: string): Promise<OperationsAlert> {
    return acknowledgeAlert(this.alerts, this.sagas, { alertId, operator, note });
  }

  /** How many messages wait in each DLQ. */
  async deadLetterCounts(): Promise<DeadLetterCount[]> {
    return Promise.all(
      this.#options.queues.map(async (q) => {
        const got = await this.#options.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await this.#url(q.dlqName), AttributeNames: ['ApproximateNumberOfMessages'] }));
        return { queue: q.key, dlqName: q.dlqName, messages: Number(got.Attributes?.ApproximateNumberOfMessages ?? '0') };
      }),
    );
  }

  /** A DLQ's messages, not consumed (`selo dlq list`). */
  async listDeadLetters(queueKey: string, max = 50): Promise<DeadLetter[]> {
    return listDeadLetters(this.#options.sqs, await this.#url(this.#queue(queueKey).dlqName), max);
  }

  /** Moves a DLQ's messages back to its work queue (`selo dlq replay`). */
  async replayDeadLetters(queueKey: string, max = 10): Promise<ReplayResult> {
    const queue = this.#queue(queueKey);
    return replayDeadLetters(this.#options.sqs, await this.#url(queue.dlqName), await this.#url(queue.name), max);
  }

  /** The sagas in each of {@link ATTENTION_STATES}, oldest change first, at most `limit` per state. */
  async sagasNeedingAttention(limit = 100): Promise<{ state: SagaState; sagas: Saga[] }[]> {
    return Promise.all(ATTENTION_STATES.map(async (state) => ({ state, sagas: await this.sagas.listByState(state, { limit }) })));
  }

  /** The saga an operator's id names (EndToEndId, RequestId or saga id), if any. */
  async findSaga(id: string): Promise<Saga | undefined> {
    for (const candidate of this.#options.sagaIdCandidates?.(id) ?? [id]) {
      const saga = await this.sagas.get(candidate);
      if (saga !== undefined) return saga;
    }
    return undefined;
  }

  /** SQL over the audit trail between `from` and `to` (`selo audit query`). */
  queryAudit(input: { sql: string; from: Date; to: Date; systems?: readonly AuditSystem[] }): Promise<AuditQueryResult> {
    return queryAuditTrail({ s3: this.#options.s3, bucket: this.#options.auditBucket, ...input });
  }
}
