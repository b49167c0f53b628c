import { IllegalTransitionError, SagaNotFoundError, isLegalTransition, sagaKindOf } from '../../shared/saga/index.ts';
import type { Compensation, CompensationRegistration, Saga, SagaState, SagaStore, SagaWriteResult } from '../../shared/saga/index.ts';
import type { EventPublisher, EventToPublish } from '../../shared/runtime/index.ts';

type Store = Pick<SagaStore, 'get' | 'transition' | 'recordCompensation' | 'pageByState' | 'recordFacts'>;

/**
 * An in-memory saga store with the real rules: idempotency keys, expected `from` states, the
 * legal transition table, compensations recorded once. Every call yields to the event loop first,
 * so concurrent handlers interleave as they would against DynamoDB.
 */
export class FakeSagaStore implements Store {
  readonly sagas = new Map<string, Saga>();
  /** Wall clock of the store's writes. */
  now: () => Date = () => new Date();

  /** Seeds a saga in `state` with a history that walked there, and its compensations. */
  seed(sagaId: string, path: readonly SagaState[], options: { compensations?: readonly CompensationRegistration[]; at?: (state: SagaState) => string; ids?: Partial<Saga> } = {}): Saga {
    const kind = sagaKindOf(sagaId) ?? 'payment';
    const history = path.map((to, i) => ({ at: options.at?.(to) ?? this.now().toISOString(), from: i === 0 ? null : (path[i - 1] ?? null), to, reason: `seeded ${to}`, attempt: 1, key: `seed-${to}` }));
    const compensations: Compensation[] = (options.compensations ?? []).map((c, i) => ({ ...c, seq: i + 1, registeredAt: '', status: 'PENDING', attempts: 0, lastError: null }));
    const state = path[path.length - 1] ?? 'REQUESTED';
    const saga: Saga = { sagaId, kind, state, version: path.length, createdAt: history[0]?.at ?? '', updatedAt: history[history.length - 1]?.at ?? '', history, compensations, facts: {}, ...options.ids };
    this.sagas.set(sagaId, saga);
    return structuredClone(saga);
  }

  state(sagaId: string): SagaState | undefined {
    return this.sagas.get(sagaId)?.state;
  }

  async get(sagaId: string): Promise<Saga | undefined> {
    await Promise.resolve();
    const saga = this.sagas.get(sagaId);
    return saga === undefined ? undefined : structuredClone(saga);
  }

  async transition(input: Parameters<SagaStore['transition']>[0]): Promise<SagaWriteResult> {
    await Promise.resolve();
    const saga = this.sagas.get(input.sagaId);
    if (saga === undefined) throw new SagaNotFoundError(input.sagaId);
    if (saga.history.some((t) => t.key === input.idempotencyKey)) return { status: 'already-applied', saga: structuredClone(saga) };
    if (input.from !== undefined && !input.from.includes(saga.state)) throw new IllegalTransitionError(input.sagaId, saga.state, input.to, input.from);
    if (!isLegalTransition(saga.kind, saga.state, input.to)) throw new IllegalTransitionError(input.sagaId, saga.state, input.to);
    const at = this.now().toISOString();
    (saga.history as Saga['history'][number][]).push({ at, from: saga.state, to: input.to, reason: input.reason, attempt: input.attempt, key: input.idempotencyKey });
    saga.state = input.to;
    saga.version += 1;
    saga.updatedAt = at;
    if (input.facts !== undefined) saga.facts = { ...saga.facts, ...input.facts };
    return { status: 'applied', saga: structuredClone(saga) };
  }

  async recordFacts(input: Parameters<SagaStore['recordFacts']>[0]): Promise<Saga | undefined> {
    await Promise.resolve();
    const saga = this.sagas.get(input.sagaId);
    if (saga === undefined) throw new SagaNotFoundError(input.sagaId);
    if (saga.version !== input.expectedVersion) return undefined;
    saga.facts = { ...saga.facts, ...input.facts };
    saga.version += 1;
    return structuredClone(saga);
  }

  async recordCompensation(input: Parameters<SagaStore['recordCompensation']>[0]): Promise<SagaWriteResult> {
    await Promise.resolve();
    const saga = this.sagas.get(input.sagaId);
    if (saga === undefined) throw new SagaNotFoundError(input.sagaId);
    const compensation = (saga.compensations as Compensation[]).find((c) => c.step === input.step);
    if (compensation === undefined) throw new Error(`no compensation ${input.step}`);
    if (compensation.status === 'DONE') return { status: 'already-applied', saga: structuredClone(saga) };
    Object.assign(compensation, { status: input.outcome, attempts: compensation.attempts + 1, lastError: input.errorCode ?? null });
    saga.version += 1;
    return { status: 'applied', saga: structuredClone(saga) };
  }

  async pageByState(state: SagaState, options: { limit?: number; updatedBefore?: Date; cursor?: string } = {}): Promise<{ sagas: Saga[]; cursor?: string }> {
    await Promise.resolve();
    const all = [...this.sagas.values()]
      .filter((s) => s.state === state && (options.updatedBefore === undefined || s.updatedAt < options.updatedBefore.toISOString()))
      .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
    const start = options.cursor === undefined ? 0 : Number(options.cursor);
    const end = start + (options.limit ?? 100);
    const page = all.slice(start, end).map((s) => structuredClone(s));
    return end < all.length ? { sagas: page, cursor: String(end) } : { sagas: page };
  }
}

/** A publisher that records what it accepted and can refuse the next `failures` calls. */
export class ScriptedPublisher implements EventPublisher {
  readonly published: EventToPublish[] = [];
  /** Errors thrown by the next calls, in order. */
  failures: Error[] = [];
  calls = 0;

  async publish(events: readonly EventToPublish[]): Promise<void> {
    await Promise.resolve();
    this.calls += 1;
    const failure = this.failures.shift();
    if (failure !== undefined) throw failure;
    this.published.push(...events);
  }

  of(detailType: string): EventToPublish[] {
    return this.published.filter((e) => e.detailType === detailType);
  }
}
