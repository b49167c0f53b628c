export { createAwsClients } from './aws-clients.ts';
export type { AwsClients } from './aws-clients.ts';
