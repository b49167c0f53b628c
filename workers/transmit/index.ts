export { readTransmitWorkerConfig, startTransmitWorker } from './main.ts';
export type { TransmitWorker, TransmitWorkerOptions } from './main.ts';
export { MAY_HAVE_ARRIVED_FACT, createTransmitHandler } from './handler.ts';
export type { TransmitHandlerDeps, IcomPort, DictPort } from './handler.ts';
export { MultipartIcomPort, exchangesOf } from './multipart-icom-port.ts';
export type { MultipartIcomPortOptions, MultipartIcomClient, IcomExchange, IcomPostedWithExchanges } from './multipart-icom-port.ts';
