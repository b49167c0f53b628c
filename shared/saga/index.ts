export { SAGA_STATES, SAGA_TRANSITIONS, INITIAL_SAGA_STATE, isLegalTransition, isSagaState, sagaKindOf } from './saga-states.ts';
export type { SagaState, SagaKind, TransitionTable } from './saga-states.ts';
export { IllegalTransitionError, SagaNotFoundError, SagaContendedError, CompensationNotFoundError } from './saga-errors.ts';
export { SagaStore, pendingCompensations } from './saga-store.ts';
export type {
  Saga,
  SagaTransition,
  SagaWriteResult,
  Compensation,
  CompensationStatus,
  CompensationRegistration,
  CreateSagaInput,
  TransitionInput,
  FactPrefix,
  SagaStoreOptions,
} from './saga-store.ts';
export { STATE_INDEX_SHARDS, STATE_SHARD_ATTRIBUTE, stateShardOf, stateIndexKey, queryStateIndex } from './state-index.ts';
export type { StateIndexQuery } from './state-index.ts';
export { DedupeStore } from './dedupe-store.ts';
export type { DedupeStoreOptions } from './dedupe-store.ts';
export { BizMsgIndex, BizMsgIndexConflictError } from './biz-msg-index.ts';
export type { BizMsgIndexOptions } from './biz-msg-index.ts';
export {
  resolveSaga,
  approveResolution,
  retryCompensation,
  pendingResolution,
  ResolutionError,
  RESOLVABLE_STATES,
  RESOLVABLE_KINDS,
  PENDING_RESOLUTION_FACT,
  OPERATIONS_SOURCE,
  COMPENSATION_RETRY_REQUESTED,
} from './resolve-saga.ts';
export type { ResolveSagaDeps, ResolveSagaInput, ResolutionOutcome, ResolutionSource, ResolutionResult, PendingResolution, ResolutionErrorCode } from './resolve-saga.ts';
