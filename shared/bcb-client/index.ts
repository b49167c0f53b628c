export { BcbHttpClient, BcbUnavailableError, classifyTransportError } from './bcb-http-client.ts';
export type { BcbHttpClientOptions, BcbResponse, DeliveryKnowledge } from './bcb-http-client.ts';
export { IcomClient, BcbRequestRejectedError, answerError } from './icom-client.ts';
export type { IcomPosted } from './icom-client.ts';
