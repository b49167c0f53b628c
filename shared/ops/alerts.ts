import { createHash } from 'node:crypto';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PermanentError, isConditionalCheckFailure } from '../errors/index.ts';
import { isSagaState, queryStateIndex, STATE_SHARD_ATTRIBUTE, stateIndexKey } from '../saga/index.ts';
import type { Saga, SagaState } from '../saga/index.ts';

/**
 * The saga state each alert kind is raised in, when the kind names one: the alert stays open
 * while its saga has not left that state, and is acknowledged once it has. Kinds not named here
 * take the state their event recorded (`data.recordedState`: RejectionAmbiguous,
 * InboundDecisionLate), or have none (SignatureInvalid, UnsupportedMessageReceived,
 * RequestConflict, the …DeadLettered kinds): those are acknowledged by an operator.
 */
export const ALERT_RAISED_IN: Readonly<Record<string, SagaState>> = {
  PaymentInDoubt: 'IN_DOUBT',
  OutcomeConflict: 'OUTCOME_CONFLICT',
  CompensationFailed: 'COMPENSATION_FAILED',
};

/** States after which nothing can still need an alert raised before them (an outcome was reached). */
const OUTCOMES: ReadonlySet<SagaState> = new Set(['SETTLED', 'COMPENSATED', 'COMPLETED']);

/**
 * The fields of an alert event's `data` kept on the alert, as text: what operations need to act,
 * and nothing else. An event's `data` may carry personal data (names, tax ids, accounts of an
 * inbound payment); only these names are ever copied, each cut to {@link FACT_LIMIT} characters.
 */
export const ALERT_FACT_FIELDS: readonly string[] = [
  'channel',
  'reason',
  'code',
  'reasonCode',
  'recordedState',
  'receivedOutcome',
  'rejectedBizMsgIdr',
  'messageType',
  'resourceId',
  'transmittedAt',
  'limitMs',
  // What we answered a payment to our customer (ACSP, RJCT AC03): no personal data.
  'answer',
  'decision',
  'decidedAt',
  'answerDeadline',
  'path',
  'step',
  'sourceQueue',
];

const FACT_LIMIT = 500;

/** Alert records live in the saga table under this key prefix, beside the sagas. */
export const ALERT_KEY_PREFIX = 'ALERT#';
const SORT_KEY = 'ALERT';

/** The `state` attribute of an open alert: it puts open alerts on the table's `by-state` index. */
export const ALERT_OPEN = 'ALERT#OPEN';
const ALERT_ACKNOWLEDGED = 'ALERT#ACKNOWLEDGED';

/** An alert raised to operations, as recorded from the operations queue. */
export interface OperationsAlert {
  /** Stable id: the same kind for the same saga is one alert, however often it is raised. */
  alertId: string;
  /** The event's detail-type (`PaymentInDoubt`, …), or `Unreadable` for a body selo could not read. */
  kind: string;
  /** The producer (`selo.compensate`, …). */
  source: string;
  /** The saga the event names (`INBOX#…` for a message not yet tied to a payment). */
  sagaId: string | undefined;
  endToEndId: string | undefined;
  bizMsgIdr: string | undefined;
  requestId: string | undefined;
  /** The saga state the alert stays open in; undefined when only an operator can acknowledge it. */
  raisedIn: SagaState | undefined;
  /** When it was first raised (the event's time), and last raised. */
  firstRaisedAt: string;
  lastRaisedAt: string;
  /** How many events raised it. */
  count: number;
  status: 'OPEN' | 'ACKNOWLEDGED';
  /** The allowed fields of the event's data ({@link ALERT_FACT_FIELDS}), as text. */
  facts: Record<string, string>;
  acknowledgedAt?: string;
  /** `selo` for an acknowledgement because the saga was resolved, else the operator. */
  acknowledgedBy?: string;
  acknowledgement?: string;
}

/** What one event raised, before it is recorded. */
export interface RaisedAlert {
  eventId: string;
  kind: string;
  source: string;
  time: string;
  sagaId?: string;
  endToEndId?: string;
  bizMsgIdr?: string;
  requestId?: string;
  /** The event's `data`; only {@link ALERT_FACT_FIELDS} are kept. */
  data: unknown;
}

/** Why an alert cannot be acknowledged by hand, or does not exist. */
export class AlertError extends PermanentError {
  constructor(code: 'ALERT_NOT_FOUND' | 'ALERT_NOT_OPEN' | 'ALERT_TIED_TO_SAGA', message: string) {
    super(code, message);
  }
}

/** Options of {@link AlertStore}. */
export interface AlertStoreOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`). */
  tableName: string;
  /** Its state index. @defaultValue 'by-state' */
  stateIndexName?: string;
  /** Days an acknowledged alert is kept (the table's TTL attribute `expiresAt`). @defaultValue 90 */
  retentionDays?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

type Item = Record<string, AttributeValue>;

function s(value: string): AttributeValue {
  return { S: value };
}

function str(item: Item, name: string): string | undefined {
  const value = item[name];
  return value?.S;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The allowed fields of an event's data, as text (nested `{code}` objects by their code). */
export function alertFacts(data: unknown): Record<string, string> {
  if (!isRecord(data)) return {};
  const facts: Record<string, string> = {};
  for (const field of ALERT_FACT_FIELDS) {
    const value = data[field];
    let text: string | undefined;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
    else if (isRecord(value) && typeof value.code === 'string') text = value.code;
    if (text !== undefined && text !== '') facts[field] = text.slice(0, FACT_LIMIT);
  }
  return facts;
}

/** The id of the alert an event raises: one per kind and saga, else one per event. */
export function alertIdOf(raised: Pick<RaisedAlert, 'kind' | 'sagaId' | 'eventId'>): string {
  const subject = raised.sagaId !== undefined && !raised.sagaId.startsWith('INBOX#') ? `saga ${raised.sagaId}` : `event ${raised.eventId}`;
  return createHash('sha256').update(`${raised.kind}\n${subject}`).digest('hex').slice(0, 16);
}

/** The saga state an event's alert stays open in ({@link ALERT_RAISED_IN}, else `data.recordedState`). */
export function raisedInOf(kind: string, data: unknown): SagaState | undefined {
  const named = ALERT_RAISED_IN[kind];
  if (named !== undefined) return named;
  const recorded = isRecord(data) ? data.recordedState : undefined;
  return isSagaState(recorded) ? recorded : undefined;
}

/**
 * Why an open alert is settled by its saga, or undefined while it still needs a person: the saga
 * has left the state the alert was raised in (it was in it, and is now elsewhere), or it reached
 * an outcome without ever entering it (e.g. a late ACSC settled a payment before the sweeper could
 * write IN_DOUBT). An alert whose saga has not yet entered its state (the event is published
 * before the state is written) stays open.
 */
export function alertResolution(alert: Pick<OperationsAlert, 'raisedIn'>, saga: Pick<Saga, 'state' | 'history'>): string | undefined {
  const raisedIn = alert.raisedIn;
  if (raisedIn === undefined || saga.state === raisedIn) return undefined;
  const entered = saga.history.some((t) => t.to === raisedIn);
  // REJECTED is an outcome for an in-doubt alert: final for a payment to our customer (nothing to
  // compensate), and for ours the compensation that follows raises its own alert if it fails.
  if (entered || OUTCOMES.has(saga.state) || (raisedIn === 'IN_DOUBT' && saga.state === 'REJECTED')) return `saga left ${raisedIn}: now ${saga.state}`;
  return undefined;
}

function fromItem(item: Item): OperationsAlert {
  const raisedIn = str(item, 'raisedIn');
  const alert: OperationsAlert = {
    alertId: (str(item, 'pk') ?? '').slice(ALERT_KEY_PREFIX.length),
    kind: str(item, 'kind') ?? '',
    source: str(item, 'source') ?? '',
    sagaId: str(item, 'sagaId'),
    endToEndId: str(item, 'endToEndId'),
    bizMsgIdr: str(item, 'bizMsgIdr'),
    requestId: str(item, 'requestId'),
    raisedIn: isSagaState(raisedIn) ? raisedIn : undefined,
    firstRaisedAt: str(item, 'firstRaisedAt') ?? '',
    lastRaisedAt: str(item, 'lastRaisedAt') ?? '',
    count: Number(item.raisedCount?.N ?? '0'),
    status: str(item, 'state') === ALERT_OPEN ? 'OPEN' : 'ACKNOWLEDGED',
    facts: Object.fromEntries(Object.entries(item.facts?.M ?? {}).flatMap(([k, v]) => (v.S === undefined ? [] : [[k, v.S]]))),
  };
  for (const field of ['acknowledgedAt', 'acknowledgedBy', 'acknowledgement'] as const) {
    const value = str(item, field);
    if (value !== undefined) alert[field] = value;
  }
  return alert;
}

/**
 * The durable record of operations alerts: one item per alert in the saga table (`pk`
 * `ALERT#<alertId>`, `sk` `ALERT`). An open alert's `state` is `ALERT#OPEN`, which puts it on the
 * table's `by-state` index (sorted by `updatedAt`, its first raising), so the open list is one
 * Query, never a Scan; an acknowledged one keeps who and why and expires after
 * {@link AlertStoreOptions.retentionDays}. Recording is idempotent per event (its id is kept).
 */
export class AlertStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #index: string;
  readonly #retentionSeconds: number;
  readonly #now: () => Date;

  constructor(options: AlertStoreOptions) {
    if (options.tableName === '') throw new RangeError('AlertStoreOptions.tableName must not be empty, got ""');
    const days = options.retentionDays ?? 90;
    if (!(Number.isFinite(days) && days > 0)) throw new RangeError(`AlertStoreOptions.retentionDays must be a positive number, got ${String(options.retentionDays)}`);
    this.#client = options.client;
    this.#table = options.tableName;
    this.#index = options.stateIndexName ?? 'by-state';
    this.#retentionSeconds = Math.round(days * 86_400);
    this.#now = options.now ?? (() => new Date());
  }

  /** One alert, open or acknowledged; undefined when there is none. */
  async get(alertId: string): Promise<OperationsAlert | undefined> {
    const got = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: { pk: s(`${ALERT_KEY_PREFIX}${alertId}`), sk: s(SORT_KEY) }, ConsistentRead: true }));
    return got.Item === undefined ? undefined : fromItem(got.Item);
  }

  /**
   * Records what an event raised: a new alert, or one more raising of the same alert (which
   * opens it again if it had been acknowledged). The same event recorded twice (a redelivery)
   * changes nothing. Resolves to the alert as it now is and whether this event was new.
   */
  async record(raised: RaisedAlert): Promise<{ alert: OperationsAlert; recorded: boolean }> {
    const alertId = alertIdOf(raised);
    const key = { pk: s(`${ALERT_KEY_PREFIX}${alertId}`), sk: s(SORT_KEY) };
    const raisedIn = raisedInOf(raised.kind, raised.data);
    const facts = Object.fromEntries(Object.entries(alertFacts(raised.data)).map(([k, v]) => [k, s(v)]));
    const ids = (['sagaId', 'endToEndId', 'bizMsgIdr', 'requestId'] as const).filter((f) => raised[f] !== undefined);
    const names: Record<string, string> = { '#state': 'state', '#stateShard': STATE_SHARD_ATTRIBUTE, '#updatedAt': 'updatedAt', '#events': 'eventIds' };
    const values: Item = {
      ':open': s(ALERT_OPEN),
      ':openShard': s(stateIndexKey(ALERT_OPEN, key.pk.S ?? '')),
      ':kind': s(raised.kind),
      ':source': s(raised.source),
      ':time': s(raised.time),
      ':one': { N: '1' },
      ':event': { SS: [raised.eventId] },
      ':eventId': s(raised.eventId),
      ':facts': { M: facts },
    };
    const sets = [
      '#state = :open',
      '#stateShard = :openShard',
      'kind = :kind',
      '#source = :source',
      'firstRaisedAt = if_not_exists(firstRaisedAt, :time)',
      '#updatedAt = if_not_exists(firstRaisedAt, :time)',
      'lastRaisedAt = :time',
      'facts = :facts',
    ];
    names['#source'] = 'source';
    for (const field of ids) {
      names[`#${field}`] = field;
      values[`:${field}`] = s(raised[field] ?? '');
      sets.push(`#${field} = :${field}`);
    }
    if (raisedIn !== undefined) {
      values[':raisedIn'] = s(raisedIn);
      sets.push('raisedIn = :raisedIn');
    }
    try {
      const updated = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: key,
          UpdateExpression: `SET ${sets.join(', ')} REMOVE acknowledgedAt, acknowledgedBy, acknowledgement, expiresAt ADD raisedCount :one, #events :event`,
          ConditionExpression: 'attribute_not_exists(#events) OR NOT contains(#events, :eventId)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { alert: fromItem(updated.Attributes ?? {}), recorded: true };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const existing = await this.get(alertId);
      if (existing === undefined) throw error;
      return { alert: existing, recorded: false };
    }
  }

  /** The open alerts, oldest first (at most `limit`). */
  async listOpen(limit = 1000): Promise<OperationsAlert[]> {
    const alerts: OperationsAlert[] = [];
    let cursor: string | undefined;
    do {
      const page = await queryStateIndex({ client: this.#client, tableName: this.#table, indexName: this.#index, state: ALERT_OPEN, limit: Math.min(100, limit - alerts.length), ...(cursor === undefined ? {} : { cursor }) });
      // The index is eventually consistent: the item itself decides.
      alerts.push(...page.items.map(fromItem));
      cursor = page.cursor;
    } while (cursor !== undefined && alerts.length < limit);
    return alerts;
  }

  /**
   * Acknowledges an open alert: it leaves the open list, keeping who and why. Resolves to the
   * alert as written, or undefined when it was not open any more (someone else acknowledged it).
   */
  async acknowledge(alertId: string, by: string, why: string): Promise<OperationsAlert | undefined> {
    const now = this.#now();
    try {
      const updated = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(`${ALERT_KEY_PREFIX}${alertId}`), sk: s(SORT_KEY) },
          UpdateExpression: 'SET #state = :acked, #stateShard = :ackedShard, acknowledgedAt = :at, acknowledgedBy = :by, acknowledgement = :why, expiresAt = :expires',
          ConditionExpression: '#state = :open',
          ExpressionAttributeNames: { '#state': 'state', '#stateShard': STATE_SHARD_ATTRIBUTE },
          ExpressionAttributeValues: {
            ':acked': s(ALERT_ACKNOWLEDGED),
            ':ackedShard': s(stateIndexKey(ALERT_ACKNOWLEDGED, `${ALERT_KEY_PREFIX}${alertId}`)),
            ':open': s(ALERT_OPEN),
            ':at': s(now.toISOString()),
            ':by': s(by.slice(0, 200)),
            ':why': s(why.slice(0, FACT_LIMIT)),
            ':expires': { N: String(Math.floor(now.getTime() / 1000) + this.#retentionSeconds) },
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem(updated.Attributes ?? {});
    } catch (error) {
      if (isConditionalCheckFailure(error)) return undefined;
      throw error;
    }
  }
}
