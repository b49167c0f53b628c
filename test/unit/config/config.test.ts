import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader, loadConfig } from '../../../shared/config/index.ts';

const VALID = { SELO_ISPB: '99999004' } as const;

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults when only the required variables are set', () => {
    const config = loadConfig({ ...VALID });
    expect(config).toEqual({
      environment: 'local',
      ispb: '99999004',
      logLevel: 'info',
      aws: { region: 'sa-east-1', accountId: '000000000000', endpoints: {} },
    });
  });

  it('talks to AWS when no endpoint is configured and to the stand-ins when one is', () => {
    expect(loadConfig({ ...VALID }).aws.endpoints.sqs).toBeUndefined();
    const local = loadConfig({ ...VALID, SELO_SQS_ENDPOINT: 'http://127.0.0.1:4566/', SELO_KINESIS_ENDPOINT: 'http://127.0.0.1:4567' });
    expect(local.aws.endpoints).toEqual({ sqs: 'http://127.0.0.1:4566', kinesis: 'http://127.0.0.1:4567' });
  });

  it('names a missing variable', () => {
    const error = configErrorOf(() => loadConfig({}));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.retryability).toBe('permanent');
    expect(error.problems).toEqual([{ variable: 'SELO_ISPB', problem: 'is required but not set' }]);
    expect(error.message).toContain('SELO_ISPB is required but not set');
  });

  it('names a malformed variable and what is wrong with it', () => {
    const error = configErrorOf(() => loadConfig({ ...VALID, SELO_ISPB: '1234' }));
    expect(error.message).toBe('invalid configuration: SELO_ISPB must be an ISPB: 8 characters, digits or upper-case letters (XSD ISPBType [0-9A-Z]{8}), got "1234"');
  });

  it('reports every problem at once', () => {
    const error = configErrorOf(() =>
      loadConfig({ SELO_ISPB: 'x', SELO_SQS_ENDPOINT: 'ftp://host', SELO_LOG_LEVEL: 'loud', AWS_REGION: 'mars', SELO_ENV: 'Prod!' }),
    );
    expect(error.problems.map((p) => p.variable).sort()).toEqual(['AWS_REGION', 'SELO_ENV', 'SELO_ISPB', 'SELO_LOG_LEVEL', 'SELO_SQS_ENDPOINT']);
    expect(error.message).toContain('SELO_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "loud"');
    expect(error.message).toContain('SELO_SQS_ENDPOINT must be an http(s) URL, got "ftp://host"');
  });
});

describe('EnvReader', () => {
  it('never quotes the value of a secret variable', () => {
    const reader = new EnvReader({ SELO_HSM_SESSIONS: 'hunter2' });
    reader.integer('SELO_HSM_SESSIONS', { secret: true });
    const error = configErrorOf(() => reader.finish());
    expect(error.message).toBe('invalid configuration: SELO_HSM_SESSIONS must be an integer, got (value hidden)');
    expect(error.message).not.toContain('hunter2');
  });

  it('rejects integers out of range and booleans it cannot read', () => {
    const reader = new EnvReader({ N: '99', B: 'maybe' });
    reader.integer('N', { min: 1, max: 64 });
    reader.boolean('B');
    const error = configErrorOf(() => reader.finish());
    expect(error.problems).toEqual([
      { variable: 'N', problem: 'must be between 1 and 64, got 99' },
      { variable: 'B', problem: 'must be true or false, got "maybe"' },
    ]);
  });

  it('treats an empty value as unset', () => {
    const reader = new EnvReader({ A: '  ' });
    expect(reader.string('A', { default: 'fallback' })).toBe('fallback');
    reader.finish();
  });
});
