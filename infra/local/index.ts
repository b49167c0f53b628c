export { startLocalStack, localDynamoDbFromEnv, LOCAL_DYNAMODB_STAND_INS, DEFAULT_LOCAL_DYNAMODB } from './local-stack.ts';
export type { LocalStack, LocalStackOptions, LocalStackPorts, LocalEndpoints, LocalDynamoDbStandIn } from './local-stack.ts';
export { startDynamoDbLocal, DynamoDbLocalStartError, DEFAULT_DYNAMODB_LOCAL_JVM_OPTIONS } from './dynamodb-local.ts';
export type { DynamoDbLocal, DynamoDbLocalOptions } from './dynamodb-local.ts';
export { provisionTopology, provisionSagaTable } from './provision.ts';
export type { ProvisionedTopology, ProvisionedQueue } from './provision.ts';
export { startLocalPipeline } from './pipeline.ts';
export type { LocalPipeline, LocalPipelineOptions } from './pipeline.ts';
