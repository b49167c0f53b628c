export { listDeadLetters, replayDeadLetters } from './dead-letters.ts';
export type { DeadLetter, ReplayResult } from './dead-letters.ts';
export { ALERT_FACT_FIELDS, ALERT_KEY_PREFIX, ALERT_OPEN, ALERT_RAISED_IN, AlertError, AlertStore, alertFacts, alertIdOf, alertResolution, raisedInOf } from './alerts.ts';
export type { AlertStoreOptions, OperationsAlert, RaisedAlert } from './alerts.ts';
export { UNREADABLE_ALERT, acknowledgeAlert, acknowledgeResolvedAlerts, drainOperationsQueue, formatAge, groupAlertsByKind, raisedAlertOf } from './operations-reader.ts';
export type { AlertGroup, DrainOptions, DrainResult } from './operations-reader.ts';
export { ATTENTION_STATES, Operations } from './operations.ts';
export type { AlertRefresh, DeadLetterCount, OperationsOptions, OperationsQueue } from './operations.ts';
