/**
 * selo's saga state machine, written down once (issue 8): this table drives every conditional
 * write of the saga store and is what `selo saga show` and the README describe.
 *
 * Payments (SPI, DESIGN §1):
 *
 * | from                | to                                                             |
 * |---------------------|----------------------------------------------------------------|
 * | (none)              | REQUESTED                                                      |
 * | REQUESTED           | SIGNED, FAILED                                                 |
 * | SIGNED              | TRANSMITTING, FAILED                                           |
 * | TRANSMITTING        | TRANSMITTED, REJECTED, FAILED, IN_DOUBT, SETTLED               |
 * | TRANSMITTED         | SETTLED, REJECTED, IN_DOUBT                                    |
 * | IN_DOUBT            | SETTLED, REJECTED                                              |
 * | REJECTED, FAILED    | COMPENSATING, OUTCOME_CONFLICT                                 |
 * | COMPENSATING        | COMPENSATED, COMPENSATION_FAILED, OUTCOME_CONFLICT             |
 * | COMPENSATION_FAILED | COMPENSATING, OUTCOME_CONFLICT                                 |
 * | SETTLED             | OUTCOME_CONFLICT                                               |
 * | COMPENSATED         | OUTCOME_CONFLICT                                               |
 * | REJECTED            | OUTCOME_CONFLICT                                               |
 * | OUTCOME_CONFLICT    | SETTLED, REJECTED (only an operator's resolution, issue 17)    |
 *
 * - SETTLED straight from TRANSMITTING: the pacs.002 may be read from the stream before the
 *   transmit worker records the 201.
 * - IN_DOUBT: transmitted (or possibly transmitted) with no outcome within the SPI limit; never
 *   compensated automatically (money safety beats liveness). A late ACSC settles, a late RJCT
 *   rejects and then compensates.
 * - FAILED: a definite failure before the BCB accepted the message (invalid input, 4xx, retry
 *   budget exhausted before any 201). REJECTED: the BCB said no (pacs.002 RJCT, admi.002).
 * - OUTCOME_CONFLICT: a settlement after a rejection or compensation, or a rejection after a
 *   settlement; operations decide. SETTLED never goes to COMPENSATING and COMPENSATED never to
 *   SETTLED. An operator's resolution (`resolveSaga`, `selo saga resolve`) is the only writer of
 *   OUTCOME_CONFLICT → SETTLED | REJECTED and of an IN_DOUBT outcome besides the verify worker and
 *   the BCB query; REJECTED then compensates whatever was not compensated yet.
 *
 * DICT operations use the same shape with COMPLETED in place of SETTLED (the DICT answers
 * synchronously: TRANSMITTED → COMPLETED or REJECTED once the signed answer is verified).
 *
 * Inbound payments (`IN#<EndToEndId>`, issue 14: another PSP pays one of our customers):
 *
 * | from                    | to                                                          |
 * |-------------------------|-------------------------------------------------------------|
 * | (none)                  | RECEIVED (the SPI's pacs.008 verified; core banking asked)  |
 * | RECEIVED                | SIGNED (decided, pacs.002 signed), LATE, REJECTED           |
 * | SIGNED                  | TRANSMITTING, REJECTED, FAILED                              |
 * | TRANSMITTING            | TRANSMITTED, SETTLED, REJECTED, FAILED, IN_DOUBT, OUTCOME_CONFLICT |
 * | TRANSMITTED             | SETTLED, REJECTED, FAILED, IN_DOUBT, OUTCOME_CONFLICT       |
 * | IN_DOUBT                | SETTLED, REJECTED, OUTCOME_CONFLICT (an ACCC after our RJCT) |
 * | FAILED, LATE            | REJECTED, OUTCOME_CONFLICT                                  |
 * | RECEIVED, SIGNED        | OUTCOME_CONFLICT (settled without our ACSP)                 |
 * | SETTLED, REJECTED       | OUTCOME_CONFLICT                                            |
 * | OUTCOME_CONFLICT        | SETTLED, REJECTED (only an operator's resolution)           |
 *
 * - SIGNED is core banking's decision and its signed pacs.002 in one conditional write (the
 *   decision, the signed bytes' digest and their creation time are in the step's reason): one
 *   DynamoDB round trip less inside the receiver's time budget, and no state in which a decision
 *   is known but no answer exists.
 * - LATE: core banking decided after the answer could still count; nothing was sent.
 * - SETTLED (pacs.002 ACCC) is the only state in which the customer may be credited; REJECTED
 *   (pacs.002 RJCT: ours, or the SPI's AB03) means never credit. Nothing is compensated: no money
 *   moved before the SPI settled.
 */
export const SAGA_STATES = [
  'REQUESTED',
  'SIGNED',
  'TRANSMITTING',
  'TRANSMITTED',
  'SETTLED',
  'COMPLETED',
  'REJECTED',
  'FAILED',
  'IN_DOUBT',
  'COMPENSATING',
  'COMPENSATED',
  'COMPENSATION_FAILED',
  'OUTCOME_CONFLICT',
  'RECEIVED',
  'LATE',
] as const;

/** A state of a saga. */
export type SagaState = (typeof SAGA_STATES)[number];

/**
 * What a saga tracks: a payment (`PAY#<EndToEndId>`), a DICT operation (`DICT#<RequestId>`), an
 * echo (`ECHO#…`), a payment another PSP sends to one of our customers (`IN#<EndToEndId>`) or a
 * question to the BCB about an in-doubt payment (`QUERY#<MsgId of the camt.060>`, issue 17).
 */
export type SagaKind = 'payment' | 'dict' | 'echo' | 'inbound' | 'query';

/** The legal transitions of one kind of saga: from each state, the states it may enter. */
export type TransitionTable = Readonly<Record<SagaState, readonly SagaState[]>>;

const PAYMENT: TransitionTable = {
  REQUESTED: ['SIGNED', 'FAILED'],
  SIGNED: ['TRANSMITTING', 'FAILED'],
  TRANSMITTING: ['TRANSMITTED', 'REJECTED', 'FAILED', 'IN_DOUBT', 'SETTLED'],
  TRANSMITTED: ['SETTLED', 'REJECTED', 'IN_DOUBT'],
  IN_DOUBT: ['SETTLED', 'REJECTED'],
  SETTLED: ['OUTCOME_CONFLICT'],
  COMPLETED: [],
  REJECTED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  FAILED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  COMPENSATING: ['COMPENSATED', 'COMPENSATION_FAILED', 'OUTCOME_CONFLICT'],
  COMPENSATED: ['OUTCOME_CONFLICT'],
  COMPENSATION_FAILED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  // Written only by an operator's resolution (shared/saga/resolve-saga.ts): no worker reads a
  // second outcome as leave to move a conflict on (their `from` lists never name it).
  OUTCOME_CONFLICT: ['SETTLED', 'REJECTED'],
  RECEIVED: [],
  LATE: [],
};

const DICT: TransitionTable = {
  REQUESTED: ['SIGNED', 'FAILED'],
  SIGNED: ['TRANSMITTING', 'FAILED'],
  TRANSMITTING: ['TRANSMITTED', 'REJECTED', 'FAILED', 'IN_DOUBT', 'COMPLETED'],
  TRANSMITTED: ['COMPLETED', 'REJECTED', 'IN_DOUBT'],
  IN_DOUBT: ['COMPLETED', 'REJECTED'],
  SETTLED: [],
  COMPLETED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  REJECTED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  FAILED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  COMPENSATING: ['COMPENSATED', 'COMPENSATION_FAILED', 'OUTCOME_CONFLICT'],
  COMPENSATED: ['OUTCOME_CONFLICT'],
  COMPENSATION_FAILED: ['COMPENSATING', 'OUTCOME_CONFLICT'],
  OUTCOME_CONFLICT: [],
  RECEIVED: [],
  LATE: [],
};

/** pibr.001 echoes (`ECHO#<RequestId>`): sent and answered, nothing to compensate. */
const ECHO: TransitionTable = {
  REQUESTED: ['SIGNED', 'FAILED'],
  SIGNED: ['TRANSMITTING', 'FAILED'],
  TRANSMITTING: ['TRANSMITTED', 'FAILED', 'IN_DOUBT', 'COMPLETED'],
  // FAILED from TRANSMITTED: an admi.002 refusing the echo arrives after the 201.
  TRANSMITTED: ['COMPLETED', 'IN_DOUBT', 'FAILED'],
  IN_DOUBT: ['COMPLETED', 'FAILED'],
  SETTLED: [],
  COMPLETED: [],
  REJECTED: [],
  FAILED: ['OUTCOME_CONFLICT'],
  COMPENSATING: [],
  COMPENSATED: [],
  COMPENSATION_FAILED: [],
  OUTCOME_CONFLICT: [],
  RECEIVED: [],
  LATE: [],
};

/**
 * Questions to the BCB about an in-doubt payment (`QUERY#<MsgId>`: a camt.060, answered by a
 * camt.054 on the ICOM stream; shared/bcb-query). Sent like an echo; COMPLETED when the answer is
 * verified and matched, whatever it says. FAILED → COMPLETED: a camt.060 whose transmission was
 * given up on (or refused) may still have reached the SPI, and its signed answer still counts.
 */
const QUERY: TransitionTable = { ...ECHO, FAILED: ['COMPLETED'] };

/** Inbound payments (`IN#<EndToEndId>`): see the table above. */
const INBOUND: TransitionTable = {
  REQUESTED: [],
  RECEIVED: ['SIGNED', 'LATE', 'REJECTED', 'OUTCOME_CONFLICT'],
  SIGNED: ['TRANSMITTING', 'REJECTED', 'FAILED', 'OUTCOME_CONFLICT'],
  // OUTCOME_CONFLICT from these: an ACCC for a payment we answered RJCT.
  TRANSMITTING: ['TRANSMITTED', 'SETTLED', 'REJECTED', 'FAILED', 'IN_DOUBT', 'OUTCOME_CONFLICT'],
  TRANSMITTED: ['SETTLED', 'REJECTED', 'FAILED', 'IN_DOUBT', 'OUTCOME_CONFLICT'],
  IN_DOUBT: ['SETTLED', 'REJECTED', 'OUTCOME_CONFLICT'],
  FAILED: ['REJECTED', 'OUTCOME_CONFLICT'],
  LATE: ['REJECTED', 'OUTCOME_CONFLICT'],
  SETTLED: ['OUTCOME_CONFLICT'],
  REJECTED: ['OUTCOME_CONFLICT'],
  COMPLETED: [],
  COMPENSATING: [],
  COMPENSATED: [],
  COMPENSATION_FAILED: [],
  // As for payments: written only by an operator's resolution (shared/saga/resolve-saga.ts).
  OUTCOME_CONFLICT: ['SETTLED', 'REJECTED'],
};

/**
 * The legal transitions, per kind. DICT: a COMPLETED step may still be compensated when a later
 * step of a multi-step DICT operation fails (issue 8: a claim created before a later step failed).
 */
export const SAGA_TRANSITIONS: Readonly<Record<SagaKind, TransitionTable>> = { payment: PAYMENT, dict: DICT, echo: ECHO, inbound: INBOUND, query: QUERY };

/** The state every saga we start begins in (a request from core banking). */
export const INITIAL_SAGA_STATE: SagaState = 'REQUESTED';

/** The state each kind of saga begins in: what the BCB sends us begins RECEIVED. */
export const INITIAL_SAGA_STATES: Readonly<Record<SagaKind, SagaState>> = { payment: 'REQUESTED', dict: 'REQUESTED', echo: 'REQUESTED', inbound: 'RECEIVED', query: 'REQUESTED' };

/** Whether a saga of `kind` may go from `from` to `to`. */
export function isLegalTransition(kind: SagaKind, from: SagaState, to: SagaState): boolean {
  return SAGA_TRANSITIONS[kind][from].includes(to);
}

/** Whether `value` names a saga state. */
export function isSagaState(value: unknown): value is SagaState {
  return typeof value === 'string' && (SAGA_STATES as readonly string[]).includes(value);
}

/** The kind of saga an id names: `PAY#…` is a payment, `DICT#…` a DICT operation, `ECHO#…` a pibr.001 echo, `IN#…` an inbound payment, `QUERY#…` a camt.060 about an in-doubt payment. */
export function sagaKindOf(sagaId: string): SagaKind | undefined {
  if (sagaId.startsWith('PAY#')) return 'payment';
  if (sagaId.startsWith('IN#')) return 'inbound';
  if (sagaId.startsWith('DICT#')) return 'dict';
  if (sagaId.startsWith('ECHO#')) return 'echo';
  if (sagaId.startsWith('QUERY#')) return 'query';
  return undefined;
}
