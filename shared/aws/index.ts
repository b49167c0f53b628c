export { createAwsClients } from './aws-clients.ts';
export type { AwsClients } from './aws-clients.ts';
export { KeyedSha256 } from './keyed-sha256.ts';
export { leanClient } from './lean-client.ts';
export { UndiciRequestHandler } from './undici-request-handler.ts';
export type { UndiciRequestHandlerOptions } from './undici-request-handler.ts';
