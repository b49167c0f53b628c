import { PermanentError, TransientError } from '../errors/index.ts';
import type { SagaState } from './saga-states.ts';

/** A step asked for a transition the state machine forbids; retrying cannot help. */
export class IllegalTransitionError extends PermanentError {
  /** The saga's state when the step ran. */
  readonly from: SagaState;
  /** The state the step asked for. */
  readonly to: SagaState;

  constructor(sagaId: string, from: SagaState, to: SagaState, expected?: readonly SagaState[]) {
    super(
      'ILLEGAL_SAGA_TRANSITION',
      expected === undefined
        ? `saga ${sagaId}: ${from} → ${to} is not a legal transition`
        : `saga ${sagaId}: expected ${expected.join(' or ')} for → ${to}, found ${from}`,
      { details: { sagaId, from, to, ...(expected === undefined ? {} : { expected }) } },
    );
    this.from = from;
    this.to = to;
  }
}

/** The saga does not exist (yet): its creator may lag behind, so this is retried. */
export class SagaNotFoundError extends TransientError {
  constructor(sagaId: string) {
    super('SAGA_NOT_FOUND', `saga ${sagaId} does not exist`, { details: { sagaId } });
  }
}

/** Concurrent writers kept changing the saga under this step; retried with backoff. */
export class SagaContendedError extends TransientError {
  constructor(sagaId: string, attempts: number) {
    super('SAGA_CONTENDED', `saga ${sagaId} changed under ${attempts} consecutive attempts`, { details: { sagaId, attempts } });
  }
}

/** A compensation step was not registered on the saga. */
export class CompensationNotFoundError extends PermanentError {
  constructor(sagaId: string, step: string) {
    super('COMPENSATION_NOT_FOUND', `saga ${sagaId} has no compensation registered for step ${step}`, { details: { sagaId, step } });
  }
}
