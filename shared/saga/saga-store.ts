import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { isConditionalCheckFailure } from '../errors/index.ts';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CorrelationIds } from '../events/index.ts';
import { CompensationNotFoundError, IllegalTransitionError, SagaContendedError, SagaNotFoundError } from './saga-errors.ts';
import { queryStateIndex, STATE_SHARD_ATTRIBUTE, stateIndexKey } from './state-index.ts';
import { INITIAL_SAGA_STATES, isLegalTransition, isSagaState, sagaKindOf } from './saga-states.ts';
import type { SagaKind, SagaState } from './saga-states.ts';

/** One entry of a saga's history. */
export interface SagaTransition {
  /** When the transition was written, ISO 8601 UTC. */
  at: string;
  /** The state left; null for the creation. */
  from: SagaState | null;
  to: SagaState;
  reason: string;
  /** Attempt number of the step (the message's receive count). */
  attempt: number;
  /** The step's idempotency key. */
  key: string;
}

/** Status of a registered compensation. */
export type CompensationStatus = 'PENDING' | 'DONE' | 'FAILED';

/** An undo action a step registered when it succeeded (HOUSE_STYLE 8). */
export interface Compensation {
  /** The step that registered it; the compensation's key within the saga. */
  step: string;
  /** What to do, as the event to publish (`PaymentReversalRequested`, `DictClaimCancelRequested`…). */
  action: string;
  /** The action's parameters (amount, reason code…); JSON-safe. */
  params: Readonly<Record<string, unknown>>;
  /** Order of registration; compensations run newest first. */
  seq: number;
  registeredAt: string;
  status: CompensationStatus;
  /** Attempts recorded by the compensation worker. */
  attempts: number;
  /** Code of the last failure, when FAILED. */
  lastError: string | null;
}

/** A registration passed with a successful step. */
export interface CompensationRegistration {
  step: string;
  action: string;
  params: Readonly<Record<string, unknown>>;
}

/** A saga as stored. */
export interface Saga extends CorrelationIds {
  sagaId: string;
  kind: SagaKind;
  state: SagaState;
  /** Incremented by every write; the optimistic-concurrency token. */
  version: number;
  createdAt: string;
  updatedAt: string;
  history: readonly SagaTransition[];
  compensations: readonly Compensation[];
  /**
   * Facts a step recorded for later steps (e.g. an inbound payment's `receivedAt` and
   * `answerDeadline`, its answer's `answeredAt`): short strings, never personal data.
   */
  facts: Readonly<Record<string, string>>;
}

/** Result of a write: applied now, or found already applied by an earlier delivery. */
export interface SagaWriteResult {
  status: 'applied' | 'already-applied';
  saga: Saga;
}

/** Input of {@link SagaStore.create}. */
export interface CreateSagaInput {
  sagaId: string;
  ids: CorrelationIds;
  reason: string;
  attempt: number;
  /** @defaultValue `create` */
  idempotencyKey?: string;
  /** Facts recorded with the creation (see {@link Saga.facts}). @defaultValue none */
  facts?: Readonly<Record<string, string>>;
}

/** Input of {@link SagaStore.transition}. */
export interface TransitionInput {
  sagaId: string;
  to: SagaState;
  reason: string;
  attempt: number;
  /**
   * Identifies the step, stable across redeliveries (e.g. `sign`, `transmit`, `outcome:<ResourceId>`).
   * A transition whose key is already in the saga's history is reported as already applied.
   */
  idempotencyKey: string;
  /**
   * States the step expects the saga to be in; another state gives an {@link IllegalTransitionError}.
   * @defaultValue any state from which `to` is legal
   */
  from?: readonly SagaState[];
  /** Compensation this step registers because it succeeded. @defaultValue none */
  compensation?: CompensationRegistration;
  /** Ids learnt in this step (e.g. BizMsgIdr when signing). @defaultValue none */
  ids?: CorrelationIds;
  /** Facts this step records (see {@link Saga.facts}); a fact of the same name is replaced. @defaultValue none */
  facts?: Readonly<Record<string, string>>;
  /**
   * The saga as the caller last read or wrote it, to save the read before the write. A stale copy
   * is safe: the conditional write then fails, and the store reads the saga and decides again.
   * @defaultValue read from the table
   */
  current?: Saga;
  /**
   * For {@link SagaStore.applyUnread} only: the write applies only while the fact `name` does not
   * begin with `prefix` (absent is fine), e.g. no ACCC is applied unread to a payment to our
   * customer that we answered RJCT. A written-after-read step decides from what it read instead.
   * @defaultValue no such condition
   */
  unlessFact?: FactPrefix;
}

/** A saga fact named `name` whose value begins with `prefix` (see {@link TransitionInput.unlessFact}). */
export interface FactPrefix {
  name: string;
  prefix: string;
}

/** Options of {@link SagaStore}. */
export interface SagaStoreOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`). */
  tableName: string;
  /** Name of the GSI on `stateShard` (`<state>#<n>`, {@link STATE_INDEX_SHARDS} shards) / `updatedAt`. @defaultValue 'by-state' */
  stateIndexName?: string;
  /** Attempts to apply a transition while other writers race it. @defaultValue 5 */
  maxContendedAttempts?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

const SORT_KEY = 'SAGA';

type Item = Record<string, AttributeValue>;

function s(value: string): AttributeValue {
  return { S: value };
}

function n(value: number): AttributeValue {
  return { N: String(value) };
}

function str(item: Item, name: string): string | undefined {
  const value = item[name];
  return value !== undefined && 'S' in value && value.S !== undefined ? value.S : undefined;
}

function num(item: Item, name: string): number {
  const value = item[name];
  return value !== undefined && 'N' in value && value.N !== undefined ? Number(value.N) : 0;
}

function transitionItem(t: SagaTransition): AttributeValue {
  return { M: { at: s(t.at), from: t.from === null ? { NULL: true } : s(t.from), to: s(t.to), reason: s(t.reason), attempt: n(t.attempt), key: s(t.key) } };
}

function compensationItem(c: Compensation): AttributeValue {
  return {
    M: {
      action: s(c.action),
      params: s(JSON.stringify(c.params)),
      seq: n(c.seq),
      registeredAt: s(c.registeredAt),
      status: s(c.status),
      attempts: n(c.attempts),
      lastError: c.lastError === null ? { NULL: true } : s(c.lastError),
    },
  };
}

function state(value: string | undefined): SagaState {
  if (!isSagaState(value)) throw new Error(`saga item holds unknown state ${JSON.stringify(value)}`);
  return value;
}

function fromItem(item: Item): Saga {
  const sagaId = str(item, 'pk') ?? '';
  const history = (item.history?.L ?? []).map((entry): SagaTransition => {
    const m = entry.M ?? {};
    const from = str(m, 'from');
    return { at: str(m, 'at') ?? '', from: from === undefined ? null : state(from), to: state(str(m, 'to')), reason: str(m, 'reason') ?? '', attempt: num(m, 'attempt'), key: str(m, 'key') ?? '' };
  });
  const compensations = Object.entries(item.compensations?.M ?? {}).map(([step, entry]): Compensation => {
    const m = entry.M ?? {};
    return {
      step,
      action: str(m, 'action') ?? '',
      params: JSON.parse(str(m, 'params') ?? '{}') as Record<string, unknown>,
      seq: num(m, 'seq'),
      registeredAt: str(m, 'registeredAt') ?? '',
      status: (str(m, 'status') ?? 'PENDING') as CompensationStatus,
      attempts: num(m, 'attempts'),
      lastError: str(m, 'lastError') ?? null,
    };
  });
  compensations.sort((a, b) => a.seq - b.seq);
  const saga: Saga = {
    sagaId,
    kind: (str(item, 'kind') ?? sagaKindOf(sagaId) ?? 'payment') as SagaKind,
    state: state(str(item, 'state')),
    version: num(item, 'version'),
    createdAt: str(item, 'createdAt') ?? '',
    updatedAt: str(item, 'updatedAt') ?? '',
    history,
    compensations,
    facts: Object.fromEntries(Object.entries(item.facts?.M ?? {}).flatMap(([name, value]) => (value.S === undefined ? [] : [[name, value.S]]))),
  };
  for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
    const id = str(item, field);
    if (id !== undefined) saga[field] = id;
  }
  return saga;
}

/** Adds `SET #facts.<name> = <value>` for each fact to an UpdateItem's names, values and SET clauses. */
function setFacts(facts: Readonly<Record<string, string>>, names: Record<string, string>, values: Item, sets: string[]): void {
  Object.entries(facts).forEach(([name, value], i) => {
    names['#facts'] = 'facts';
    names[`#fact${i}`] = name;
    values[`:fact${i}`] = s(value);
    sets.push(`#facts.#fact${i} = :fact${i}`);
  });
}

/**
 * Saga state in DynamoDB: one item per payment (`PAY#<EndToEndId>`) or DICT operation
 * (`DICT#<RequestId>`), sort key `SAGA`. Every change is a conditional write on the expected
 * state and version, checked against `SAGA_TRANSITIONS`; a step whose idempotency key is
 * already in the history is reported as `already-applied`, so a redelivered message never
 * repeats an effect.
 */
export class SagaStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #index: string;
  readonly #maxAttempts: number;
  readonly #now: () => Date;

  constructor(options: SagaStoreOptions) {
    if (options.tableName === '') throw new RangeError('SagaStoreOptions.tableName must not be empty, got ""');
    const attempts = options.maxContendedAttempts ?? 5;
    if (!Number.isSafeInteger(attempts) || attempts < 1) throw new RangeError(`SagaStoreOptions.maxContendedAttempts must be a positive integer, got ${String(options.maxContendedAttempts)}`);
    this.#client = options.client;
    this.#table = options.tableName;
    this.#index = options.stateIndexName ?? 'by-state';
    this.#maxAttempts = attempts;
    this.#now = options.now ?? (() => new Date());
  }

  /** Reads a saga (strongly consistent); undefined when it does not exist. */
  async get(sagaId: string): Promise<Saga | undefined> {
    const got = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: { pk: s(sagaId), sk: s(SORT_KEY) }, ConsistentRead: true }));
    return got.Item === undefined ? undefined : fromItem(got.Item);
  }

  /** Creates a saga in REQUESTED; a saga that already exists is reported as already applied. */
  async create(input: CreateSagaInput): Promise<SagaWriteResult> {
    const item = this.#newItem(input, undefined);
    const written = await this.#putNew(item);
    if (written !== undefined) return { status: 'applied', saga: written };
    const existing = await this.get(input.sagaId);
    if (existing === undefined) throw new SagaNotFoundError(input.sagaId);
    return { status: 'already-applied', saga: existing };
  }

  /**
   * Creates a saga and applies its first step in one write, as {@link create} followed by
   * {@link transition} from the initial state would (the same item, history, compensation and
   * facts), for a step that has done its work before the saga exists (the sign worker's first
   * delivery: one round trip instead of two). The saga as written, or `undefined` when it exists
   * already: then nothing was written, and the caller takes the ordinary path (create, read,
   * decide), which sees what the other delivery did.
   */
  async createWithStep(input: CreateSagaInput & { step: Omit<TransitionInput, 'sagaId' | 'attempt' | 'from' | 'current'> }): Promise<Saga | undefined> {
    return this.#putNew(this.#newItem(input, input.step));
  }

  /**
   * The item of a new saga: created in its kind's initial state and, with `step`, moved on by it
   * (checked against `SAGA_TRANSITIONS`; its compensation registered with `seq` 1, as a
   * transition after the creation would).
   */
  #newItem(input: CreateSagaInput, step: Omit<TransitionInput, 'sagaId' | 'attempt' | 'from' | 'current'> | undefined): Item {
    const kind = sagaKindOf(input.sagaId);
    if (kind === undefined) throw new RangeError(`sagaId must start with PAY#, DICT#, ECHO#, IN# or QUERY#, got ${JSON.stringify(input.sagaId)}`);
    const at = this.#now().toISOString();
    const key = input.idempotencyKey ?? 'create';
    const initial = INITIAL_SAGA_STATES[kind];
    const history: SagaTransition[] = [{ at, from: null, to: initial, reason: input.reason, attempt: input.attempt, key }];
    const compensations: Record<string, AttributeValue> = {};
    if (step !== undefined) {
      if (!isLegalTransition(kind, initial, step.to)) throw new IllegalTransitionError(input.sagaId, initial, step.to);
      if (step.idempotencyKey === key) throw new RangeError(`the step's idempotency key must differ from the creation's, got ${JSON.stringify(key)} for both`);
      history.push({ at, from: initial, to: step.to, reason: step.reason, attempt: input.attempt, key: step.idempotencyKey });
      if (step.compensation !== undefined) {
        compensations[step.compensation.step] = compensationItem({ ...step.compensation, seq: 1, registeredAt: at, status: 'PENDING', attempts: 0, lastError: null });
      }
    }
    const facts = { ...input.facts, ...step?.facts };
    const state = history.at(-1)?.to ?? initial;
    const item: Item = {
      pk: s(input.sagaId),
      sk: s(SORT_KEY),
      kind: s(kind),
      state: s(state),
      [STATE_SHARD_ATTRIBUTE]: s(stateIndexKey(state, input.sagaId)),
      version: n(history.length),
      createdAt: s(at),
      updatedAt: s(at),
      history: { L: history.map(transitionItem) },
      keys: { SS: history.map((t) => t.key) },
      compensations: { M: compensations },
      facts: { M: Object.fromEntries(Object.entries(facts).map(([name, value]) => [name, s(value)])) },
    };
    const ids = { ...input.ids, ...step?.ids };
    for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
      const id = ids[field];
      if (id !== undefined) item[field] = s(id);
    }
    return item;
  }

  /** A conditional PutItem of a new saga: the saga as written, or undefined when one exists. */
  async #putNew(item: Item): Promise<Saga | undefined> {
    try {
      await this.#client.send(new PutItemCommand({ TableName: this.#table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return fromItem(item);
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      return undefined;
    }
  }

  /**
   * Moves a saga to `input.to` with a conditional UpdateItem on its current state and version.
   * Already applied (same idempotency key) → `already-applied`; forbidden by the table or not in
   * `input.from` → {@link IllegalTransitionError} (permanent); missing → {@link SagaNotFoundError}.
   *
   * A step that brings no `current` copy is first tried with {@link applyUnread}. Only when that
   * does not apply (a redelivery, another state, no saga) is the saga read and the decision taken
   * as above.
   */
  async transition(input: TransitionInput): Promise<SagaWriteResult> {
    if (input.current === undefined) {
      const written = await this.applyUnread(input);
      if (written !== undefined) return { status: 'applied', saga: written };
    }
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt += 1) {
      const known = attempt === 1 && input.current?.sagaId === input.sagaId ? input.current : undefined;
      const saga = known ?? (await this.get(input.sagaId));
      if (saga === undefined) throw new SagaNotFoundError(input.sagaId);
      if (saga.history.some((t) => t.key === input.idempotencyKey)) return { status: 'already-applied', saga };
      // A known copy that forbids the step may be stale: read the saga before refusing.
      if (known !== undefined && ((input.from !== undefined && !input.from.includes(saga.state)) || !isLegalTransition(saga.kind, saga.state, input.to))) continue;
      if (input.from !== undefined && !input.from.includes(saga.state)) {
        throw new IllegalTransitionError(input.sagaId, saga.state, input.to, input.from);
      }
      if (!isLegalTransition(saga.kind, saga.state, input.to)) throw new IllegalTransitionError(input.sagaId, saga.state, input.to);
      if (input.compensation !== undefined && saga.compensations.some((c) => c.step === input.compensation?.step)) {
        throw new RangeError(`saga ${input.sagaId} already has a compensation for step ${input.compensation.step}`);
      }
      // Someone else wrote first when this is undefined: read and decide again (it may have been this very step).
      const written = await this.#write(input, saga.state, saga);
      if (written !== undefined) return { status: 'applied', saga: written };
    }
    throw new SagaContendedError(input.sagaId, this.#maxAttempts);
  }

  /**
   * Writes a step without reading the saga, when it names exactly one `from` state that may lead
   * to `input.to` and registers no compensation: one UpdateItem conditioned on that state and on
   * the step's key being absent, which are all the decision depends on. The saga as written, or
   * `undefined` when the step is not of that shape or the condition failed (a redelivery, another
   * state, no saga): nothing was written and nothing read, and the caller decides from a read.
   */
  async applyUnread(input: TransitionInput): Promise<Saga | undefined> {
    const from = input.from?.length === 1 ? input.from[0] : undefined;
    const kind = sagaKindOf(input.sagaId);
    if (from === undefined || kind === undefined || input.compensation !== undefined || !isLegalTransition(kind, from, input.to)) return undefined;
    return this.#write(input, from, undefined);
  }

  /**
   * The UpdateItem of one transition from `from`: conditioned on the version of `read` when the
   * saga was read, else on the state alone and the step's key being absent. Undefined when the
   * condition failed.
   */
  async #write(input: TransitionInput, from: SagaState, read: Saga | undefined): Promise<Saga | undefined> {
    const at = this.#now().toISOString();
    const entry: SagaTransition = { at, from, to: input.to, reason: input.reason, attempt: input.attempt, key: input.idempotencyKey };
    const names: Record<string, string> = { '#state': 'state', '#stateShard': STATE_SHARD_ATTRIBUTE, '#version': 'version', '#history': 'history', '#keys': 'keys', '#updatedAt': 'updatedAt' };
    const values: Item = {
      ':from': s(from),
      ':to': s(input.to),
      ':toShard': s(stateIndexKey(input.to, input.sagaId)),
      ':one': n(1),
      ':at': s(at),
      ':entry': { L: [transitionItem(entry)] },
      ':key': { SS: [input.idempotencyKey] },
    };
    let condition: string;
    if (read === undefined) {
      condition = '#state = :from AND NOT contains(#keys, :keyName)';
      values[':keyName'] = s(input.idempotencyKey);
      if (input.unlessFact !== undefined) {
        condition += ' AND NOT begins_with(#facts.#unlessFact, :unlessPrefix)';
        names['#facts'] = 'facts';
        names['#unlessFact'] = input.unlessFact.name;
        values[':unlessPrefix'] = s(input.unlessFact.prefix);
      }
    } else {
      condition = '#state = :from AND #version = :version';
      values[':version'] = n(read.version);
    }
    const sets = ['#state = :to', '#stateShard = :toShard', '#version = #version + :one', '#updatedAt = :at', '#history = list_append(#history, :entry)'];
    if (input.compensation !== undefined) {
      if (read === undefined) throw new Error('a compensation is registered only on a saga that was read');
      names['#compensations'] = 'compensations';
      names['#step'] = input.compensation.step;
      values[':compensation'] = compensationItem({
        ...input.compensation,
        seq: read.history.length,
        registeredAt: at,
        status: 'PENDING',
        attempts: 0,
        lastError: null,
      });
      sets.push('#compensations.#step = :compensation');
    }
    for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
      const id = input.ids?.[field];
      if (id === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = s(id);
      sets.push(`#${field} = :${field}`);
    }
    // Every saga written since facts exist has the map (created with it); see create().
    setFacts(input.facts ?? {}, names, values, sets);
    return this.#conditionalUpdate(input.sagaId, `SET ${sets.join(', ')} ADD #keys :key`, condition, names, values);
  }

  /** One conditional UpdateItem of a saga: the saga as written, or undefined when the condition failed. */
  async #conditionalUpdate(sagaId: string, update: string, condition: string, names: Record<string, string>, values: Item): Promise<Saga | undefined> {
    try {
      const updated = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(sagaId), sk: s(SORT_KEY) },
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          // DynamoDB refuses an empty map here.
          ...(Object.keys(values).length === 0 ? {} : { ExpressionAttributeValues: values }),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem(updated.Attributes ?? {});
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      return undefined;
    }
  }

  /**
   * Records the outcome of one compensation, exactly once per saga and step: DONE is written only
   * over PENDING or FAILED (a DONE compensation reports `already-applied`); FAILED counts the
   * attempt and keeps the error code for escalation.
   */
  async recordCompensation(input: { sagaId: string; step: string; outcome: 'DONE' | 'FAILED'; errorCode?: string }): Promise<SagaWriteResult> {
    const saga = await this.get(input.sagaId);
    if (saga === undefined) throw new SagaNotFoundError(input.sagaId);
    const compensation = saga.compensations.find((c) => c.step === input.step);
    if (compensation === undefined) throw new CompensationNotFoundError(input.sagaId, input.step);
    if (compensation.status === 'DONE') return { status: 'already-applied', saga };
    try {
      const updated = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(input.sagaId), sk: s(SORT_KEY) },
          UpdateExpression: 'SET #c.#step.#status = :outcome, #c.#step.#lastError = :error, #updatedAt = :at ADD #c.#step.#attempts :one, #version :one',
          ConditionExpression: '#c.#step.#status IN (:pending, :failed)',
          ExpressionAttributeNames: { '#c': 'compensations', '#step': input.step, '#status': 'status', '#lastError': 'lastError', '#attempts': 'attempts', '#version': 'version', '#updatedAt': 'updatedAt' },
          ExpressionAttributeValues: {
            ':outcome': s(input.outcome),
            ':error': input.errorCode === undefined ? { NULL: true } : s(input.errorCode),
            ':at': s(this.#now().toISOString()),
            ':one': n(1),
            ':pending': s('PENDING'),
            ':failed': s('FAILED'),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { status: 'applied', saga: fromItem(updated.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const again = await this.get(input.sagaId);
      if (again === undefined) throw new SagaNotFoundError(input.sagaId);
      return { status: 'already-applied', saga: again };
    }
  }

  /**
   * Records facts on a saga without a transition (e.g. an operator's pending resolution request,
   * or that a resolution's events were published): one UpdateItem conditioned on the saga's
   * `version` being `expectedVersion` (the copy the caller decided from), which it increments.
   * The saga as written, or `undefined` when someone wrote in between (read again and decide
   * again); {@link SagaNotFoundError} when there is no saga.
   */
  async recordFacts(input: { sagaId: string; facts: Readonly<Record<string, string>>; expectedVersion: number }): Promise<Saga | undefined> {
    const names: Record<string, string> = { '#version': 'version', '#updatedAt': 'updatedAt' };
    const values: Item = { ':version': n(input.expectedVersion), ':one': n(1), ':at': s(this.#now().toISOString()) };
    const sets = ['#updatedAt = :at'];
    setFacts(input.facts, names, values, sets);
    const written = await this.#conditionalUpdate(input.sagaId, `SET ${sets.join(', ')} ADD #version :one`, '#version = :version', names, values);
    if (written === undefined && (await this.get(input.sagaId)) === undefined) throw new SagaNotFoundError(input.sagaId);
    return written;
  }

  /**
   * Sets fact `name` to `value` unless the saga has it already: one UpdateItem conditioned on the
   * fact's absence, which leaves the state, the history and the version alone (a marker, not a
   * step; e.g. the transmit worker's may-have-arrived marker). True when this call set it.
   * {@link SagaNotFoundError} when there is no saga.
   */
  async claimFact(sagaId: string, name: string, value: string): Promise<boolean> {
    const written = await this.#conditionalUpdate(sagaId, 'SET #facts.#name = :value', 'attribute_exists(pk) AND attribute_not_exists(#facts.#name)', { '#facts': 'facts', '#name': name }, { ':value': s(value) });
    if (written !== undefined) return true;
    if ((await this.get(sagaId)) === undefined) throw new SagaNotFoundError(sagaId);
    return false;
  }

  /** Removes fact `name` (see {@link claimFact}); removing an absent fact, or from an absent saga, is fine. */
  async releaseFact(sagaId: string, name: string): Promise<void> {
    await this.#conditionalUpdate(sagaId, 'REMOVE #facts.#name', 'attribute_exists(pk)', { '#facts': 'facts', '#name': name }, {});
  }

  /** Sagas in `state`, oldest change first (GSI `by-state`), for `selo saga list` and the in-doubt sweeper. */
  async listByState(sagaState: SagaState, options: { limit?: number; updatedBefore?: Date } = {}): Promise<Saga[]> {
    return (await this.pageByState(sagaState, options)).sagas;
  }

  /**
   * One page of the sagas in `sagaState`, oldest change first (GSI `by-state`). `cursor` is the
   * opaque value a previous page returned; a page without `cursor` is the last. Lets the in-doubt
   * sweeper and `selo saga list` walk past sagas they skip (e.g. DICT operations) instead of
   * seeing only the first page forever.
   */
  async pageByState(sagaState: SagaState, options: { limit?: number; updatedBefore?: Date; cursor?: string } = {}): Promise<{ sagas: Saga[]; cursor?: string }> {
    const page = await queryStateIndex({
      client: this.#client,
      tableName: this.#table,
      indexName: this.#index,
      state: sagaState,
      limit: options.limit ?? 100,
      ...(options.updatedBefore === undefined ? {} : { updatedBefore: options.updatedBefore }),
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    });
    const sagas = page.items.filter((item) => str(item, 'sk') === SORT_KEY).map(fromItem);
    return page.cursor === undefined ? { sagas } : { sagas, cursor: page.cursor };
  }
}

/** Compensations still to run, newest first (the order a saga undoes its steps). */
export function pendingCompensations(saga: Saga): Compensation[] {
  return saga.compensations.filter((c) => c.status !== 'DONE').sort((a, b) => b.seq - a.seq);
}
