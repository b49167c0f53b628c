export { readCompensateWorkerConfig, startCompensateWorker } from './main.ts';
export type { CompensateWorker, CompensateWorkerOptions } from './main.ts';
export { createCompensateHandler, compensationId, compensationRequestId, CompensationOutcomePendingError, CompensationInvalidError, CompensationEscalatedError } from './handler.ts';
export type { CompensateHandlerDeps } from './handler.ts';
export { InDoubtSweeper, SPI_SETTLEMENT_LIMIT_MS } from './in-doubt-sweeper.ts';
export type { InDoubtSweeperOptions, SweepResult } from './in-doubt-sweeper.ts';
