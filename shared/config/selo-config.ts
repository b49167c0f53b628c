import { ISPB_PATTERN } from '../iso20022/identifiers.ts';
import { ConfigError, EnvReader } from './env-reader.ts';
import type { ConfigProblem, Env } from './env-reader.ts';

/** Endpoints of the AWS services selo uses; an absent endpoint means the real AWS one. */
export interface AwsEndpoints {
  sqs?: string;
  s3?: string;
  events?: string;
  kinesis?: string;
  dynamodb?: string;
}

/** Where and how selo talks to AWS. */
export interface AwsConfig {
  /** AWS region, from `AWS_REGION`. @defaultValue 'sa-east-1' (São Paulo) */
  region: string;
  /** Per-service endpoint overrides (`SELO_SQS_ENDPOINT`, …); empty in AWS. */
  endpoints: AwsEndpoints;
  /** The account id used to build ARNs, from `SELO_AWS_ACCOUNT_ID`. @defaultValue '000000000000' */
  accountId: string;
}

/** selo's typed configuration, parsed once at start by {@link loadConfig}. */
export interface SeloConfig {
  /** Deployment environment name; prefixes every resource name (`SELO_ENV`). @defaultValue 'local' */
  environment: string;
  /** The institution's 8-digit ISPB (`SELO_ISPB`), required: it names the PSP in every message. */
  ispb: string;
  /** Log level (`SELO_LOG_LEVEL`). @defaultValue 'info' */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** AWS settings. */
  aws: AwsConfig;
}

/**
 * Reads the AWS part of the configuration into `reader` (shared by every component that talks
 * to AWS).
 */
export function readAwsConfig(reader: EnvReader): AwsConfig {
  const endpoints: AwsEndpoints = {};
  const map = {
    sqs: 'SELO_SQS_ENDPOINT',
    s3: 'SELO_S3_ENDPOINT',
    events: 'SELO_EVENTS_ENDPOINT',
    kinesis: 'SELO_KINESIS_ENDPOINT',
    dynamodb: 'SELO_DYNAMODB_ENDPOINT',
  } as const;
  for (const [service, variable] of Object.entries(map) as [keyof AwsEndpoints, string][]) {
    const url = reader.optionalUrl(variable);
    if (url !== undefined) endpoints[service] = url;
  }
  const region = reader.string('AWS_REGION', { default: 'sa-east-1' });
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) reader.problem('AWS_REGION', `must be an AWS region such as sa-east-1, got ${JSON.stringify(region)}`);
  const accountId = reader.string('SELO_AWS_ACCOUNT_ID', { default: '000000000000' });
  if (!/^\d{12}$/.test(accountId)) reader.problem('SELO_AWS_ACCOUNT_ID', `must be 12 digits, got ${JSON.stringify(accountId)}`);
  return { region, endpoints, accountId };
}

/**
 * Parses selo's configuration from the environment. A missing or malformed variable throws a
 * {@link ConfigError} that names every offending variable and what is wrong with it.
 */
export function loadConfig(env: Env = process.env): SeloConfig {
  const reader = new EnvReader(env);
  const environment = reader.string('SELO_ENV', { default: 'local' });
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(environment)) {
    reader.problem('SELO_ENV', `must be lower-case letters, digits and dashes (max 20), got ${JSON.stringify(environment)}`);
  }
  const ispb = reader.string('SELO_ISPB');
  // ISPBType in the SPI XSDs is [0-9A-Z]{8} (shared/spec/spi-5.13.1/xsd/*.xsd), letters included.
  if (ispb !== '' && !ISPB_PATTERN.test(ispb)) reader.problem('SELO_ISPB', `must be an ISPB: 8 characters, digits or upper-case letters (XSD ISPBType [0-9A-Z]{8}), got ${JSON.stringify(ispb)}`);
  const logLevel = reader.oneOf('SELO_LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, { default: 'info' });
  const aws = readAwsConfig(reader);
  reader.finish();
  return { environment, ispb, logLevel, aws };
}

/**
 * A worker's configuration: selo's own ({@link loadConfig}) and what `read` takes from the same
 * environment, checked together, so that one {@link ConfigError} names every problem of both
 * (a missing `SELO_ISPB` does not hide a missing `SELO_BCB_URL`).
 */
export function loadWorkerConfig<T extends object>(env: Env, read: (reader: EnvReader) => T): T & { config: SeloConfig } {
  const problems: ConfigProblem[] = [];
  let config: SeloConfig | undefined;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const reader = new EnvReader(env);
  const own = read(reader);
  try {
    reader.finish();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (config === undefined || problems.length > 0) throw new ConfigError(problems);
  return { ...own, config };
}
