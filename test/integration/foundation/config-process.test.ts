import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SELO = fileURLToPath(new URL('../../../bin/selo.ts', import.meta.url));

function configCheck(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SELO, 'config', 'check'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('selo config check', () => {
  it('stops with a message naming a missing variable', () => {
    const result = configCheck({});
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('selo: invalid configuration: SELO_ISPB is required but not set\n');
  });

  it('stops with a message naming a malformed variable and what is wrong', () => {
    const result = configCheck({ SELO_ISPB: '99999004', SELO_DYNAMODB_ENDPOINT: 'not a url' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SELO_DYNAMODB_ENDPOINT must be an http(s) URL, got "not a url"');
  });

  it('prints the parsed configuration when it is valid', () => {
    const result = configCheck({ SELO_ISPB: '99999004', AWS_REGION: 'us-east-1' });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ispb: '99999004', aws: { region: 'us-east-1', endpoints: {} } });
  });
});

describe('selo worker', () => {
  function worker(names: string, env: Record<string, string>): { status: number | null; stderr: string } {
    const result = spawnSync(process.execPath, [SELO, 'worker', names], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
    return { status: result.status, stderr: result.stderr };
  }

  it('names every missing variable of every worker at once, each with the workers it stops', () => {
    const result = worker('all', {});
    expect(result.status).toBe(2);
    for (const expected of [
      'SELO_ISPB is required but not set (sign, transmit, receive, verify, compensate)',
      'SELO_SIGNING_CERT is required but not set (sign)',
      'SELO_BCB_URL is required but not set (transmit, receive)',
      'SELO_BCB_CA is required but not set (transmit, receive)',
      'SELO_TLS_CERT is required but not set (transmit, receive)',
      'SELO_BCB_SIGNING_CERT is required but not set (verify)',
    ]) {
      expect(result.stderr).toContain(expected);
    }
    // Once per problem, not once per worker.
    expect(result.stderr.split('SELO_BCB_URL is required').length).toBe(2);
  });

  it('names a single worker\'s problems without a worker list', () => {
    const result = worker('verify', { SELO_ISPB: '99999004' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SELO_BCB_SIGNING_CERT is required but not set');
    expect(result.stderr).not.toContain('(verify)');
    expect(result.stderr).not.toContain('SELO_BCB_URL');
  });
});
