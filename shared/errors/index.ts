export { SeloError, TransientError, PermanentError, classifyError } from './selo-error.ts';
export type { Retryability, SeloErrorOptions, ErrorClassification } from './selo-error.ts';
export { isConditionalCheckFailure } from './dynamodb-errors.ts';
