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
