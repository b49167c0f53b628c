export { createLogger, REDACTED_PATHS } from './logger.ts';
export type { Logger, LoggerOptions } from './logger.ts';
