export { readSignWorkerConfig, startSignWorker } from './main.ts';
export type { SignWorker, SignWorkerOptions } from './main.ts';
export { createSignHandler, SPI_ISPB } from './handler.ts';
export type { SignHandlerDeps } from './handler.ts';
export { decodeSignRequest, SignRequestInvalidError } from './sign-request.ts';
export type { SignRequest, PaymentRequestedData, DictRequestedData } from './sign-request.ts';
