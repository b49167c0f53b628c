export { startLocalStack } from './local-stack.ts';
export type { LocalStack, LocalStackOptions, LocalStackPorts, LocalEndpoints } from './local-stack.ts';
export { provisionTopology } from './provision.ts';
export type { ProvisionedTopology, ProvisionedQueue } from './provision.ts';
export { startLocalPipeline } from './pipeline.ts';
export type { LocalPipeline, LocalPipelineOptions } from './pipeline.ts';
