export { readTransmitWorkerConfig, startTransmitWorker } from './main.ts';
export type { TransmitWorker, TransmitWorkerOptions } from './main.ts';
export { createTransmitHandler } from './handler.ts';
export type { TransmitHandlerDeps, IcomPort, DictPort } from './handler.ts';
