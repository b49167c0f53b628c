import { IllegalTransitionError, SagaNotFoundError, isLegalTransition, sagaKindOf } from '../../../shared/saga/index.ts';
import type { Saga, SagaState, SagaStore } from '../../../shared/saga/index.ts';

/** An in-memory saga store with the real rules: idempotency keys, expected `from` states, the legal transition table. */
export class FakeSagas implements Pick<SagaStore, 'get' | 'transition' | 'applyUnread' | 'create' | 'createWithStep'> {
  readonly sagas = new Map<string, Saga>();
  writes = 0;
  reads = 0;

  add(sagaId: string, state: SagaState, ids: Partial<Saga> = {}): Saga {
    const saga: Saga = { sagaId, kind: sagaKindOf(sagaId) ?? 'payment', state, version: 1, createdAt: '', updatedAt: '', history: [], compensations: [], facts: {}, ...ids };
    this.sagas.set(sagaId, saga);
    return saga;
  }

  /** As the store: a saga that exists is reported as already applied, unchanged. */
  create(input: Parameters<SagaStore['create']>[0]): ReturnType<SagaStore['create']> {
    const existing = this.sagas.get(input.sagaId);
    if (existing !== undefined) return Promise.resolve({ status: 'already-applied', saga: structuredClone(existing) });
    this.writes += 1;
    const kind = sagaKindOf(input.sagaId) ?? 'payment';
    const state: SagaState = kind === 'inbound' ? 'RECEIVED' : 'REQUESTED';
    const saga: Saga = {
      sagaId: input.sagaId, kind, state, version: 1, createdAt: '', updatedAt: '', compensations: [], facts: { ...input.facts }, ...input.ids,
      history: [{ at: '', from: null, to: state, reason: input.reason, attempt: input.attempt, key: input.idempotencyKey ?? 'create' }],
    };
    this.sagas.set(input.sagaId, saga);
    return Promise.resolve({ status: 'applied', saga: structuredClone(saga) });
  }

  /** As the store: the saga created and moved on by `step` in one write; undefined (nothing written) when it exists. */
  async createWithStep(input: Parameters<SagaStore['createWithStep']>[0]): ReturnType<SagaStore['createWithStep']> {
    if (this.sagas.has(input.sagaId)) return undefined;
    await this.create(input);
    const saga = this.sagas.get(input.sagaId);
    if (saga === undefined || !isLegalTransition(saga.kind, saga.state, input.step.to)) throw new IllegalTransitionError(input.sagaId, saga?.state ?? 'REQUESTED', input.step.to);
    this.writes -= 1;
    if (input.step.ids !== undefined) Object.assign(saga, input.step.ids);
    return this.#write(saga, { ...input.step, sagaId: input.sagaId, attempt: input.attempt });
  }

  get(sagaId: string): Promise<Saga | undefined> {
    this.reads += 1;
    const saga = this.sagas.get(sagaId);
    return Promise.resolve(saga === undefined ? undefined : structuredClone(saga));
  }

  /** Runs once before the next transition is decided: another writer getting there first. */
  beforeNextTransition: ((saga: Saga) => void) | undefined;

  transition(input: Parameters<SagaStore['transition']>[0]): ReturnType<SagaStore['transition']> {
    const saga = this.sagas.get(input.sagaId);
    const race = this.beforeNextTransition;
    this.beforeNextTransition = undefined;
    if (saga !== undefined) race?.(saga);
    if (saga === undefined) return Promise.reject(new SagaNotFoundError(input.sagaId));
    if (saga.history.some((t) => t.key === input.idempotencyKey)) return Promise.resolve({ status: 'already-applied', saga: structuredClone(saga) });
    if ((input.from !== undefined && !input.from.includes(saga.state)) || !isLegalTransition(saga.kind, saga.state, input.to)) {
      return Promise.reject(new IllegalTransitionError(saga.sagaId, saga.state, input.to, input.from));
    }
    return Promise.resolve({ status: 'applied', saga: this.#write(saga, input) });
  }

  /** As the store: the write conditioned on the one `from` state and the key being absent, without a read. */
  applyUnread(input: Parameters<SagaStore['applyUnread']>[0]): ReturnType<SagaStore['applyUnread']> {
    const saga = this.sagas.get(input.sagaId);
    const from = input.from?.length === 1 ? input.from[0] : undefined;
    if (saga === undefined || from === undefined || saga.state !== from || !isLegalTransition(saga.kind, from, input.to) || saga.history.some((t) => t.key === input.idempotencyKey)) return Promise.resolve(undefined);
    if (input.unlessFact !== undefined && saga.facts[input.unlessFact.name]?.startsWith(input.unlessFact.prefix) === true) return Promise.resolve(undefined);
    return Promise.resolve(this.#write(saga, input));
  }

  #write(saga: Saga, input: Parameters<SagaStore['transition']>[0]): Saga {
    this.writes += 1;
    saga.history = [...saga.history, { at: '', from: saga.state, to: input.to, reason: input.reason, attempt: input.attempt, key: input.idempotencyKey }];
    saga.state = input.to;
    saga.facts = { ...saga.facts, ...input.facts };
    return structuredClone(saga);
  }
}

/** The verify worker's seen-before markers in memory: the first holder of a key keeps it (`DedupeStore.claimAs` without expiry). */
export function fakeMarkers(holders = new Map<string, string>()): { holders: Map<string, string>; claimAs: (key: string, holder: string) => Promise<boolean> } {
  return {
    holders,
    claimAs: (key, holder) => {
      const first = holders.get(key) ?? holder;
      holders.set(key, first);
      return Promise.resolve(first === holder);
    },
  };
}
