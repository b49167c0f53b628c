export { EnvReader, ConfigError } from './env-reader.ts';
export type { Env, ConfigProblem, ReadOptions } from './env-reader.ts';
export { loadConfig, loadWorkerConfig, readAwsConfig } from './selo-config.ts';
export type { SeloConfig, AwsConfig, AwsEndpoints } from './selo-config.ts';
export { readRevocationConfig } from './revocation-config.ts';
export type { RevocationConfig } from './revocation-config.ts';
