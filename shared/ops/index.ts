export { listDeadLetters, replayDeadLetters } from './dead-letters.ts';
export type { DeadLetter, ReplayResult } from './dead-letters.ts';
