export { readVerifyWorkerConfig, startVerifyWorker, BCB_ISPB } from './main.ts';
export type { VerifyWorker, VerifyWorkerOptions } from './main.ts';
export { createVerifyHandler, SchemaCheckUnavailableError, VerificationRefusedError } from './handler.ts';
export type { VerifyHandlerDeps } from './handler.ts';
export { decodeVerifyInput, decodeDictResponseReceived, DICT_RESPONSE_RECEIVED } from './verify-input.ts';
export type { VerifyInput, DictResponseReceivedData } from './verify-input.ts';
export { S3Quarantine, quarantineKey } from './quarantine.ts';
export type { QuarantinePort, QuarantineEntry } from './quarantine.ts';
