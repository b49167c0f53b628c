import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/config/index.ts';
import { readCompensateWorkerConfig } from '../../workers/compensate/main.ts';

const base = { SELO_ISPB: '99999004' };

describe('SELO_IN_DOUBT_SWEEPER', () => {
  it('runs the in-doubt sweeper in a compensate process unless told not to', () => {
    expect(readCompensateWorkerConfig(base).sweep).toBe(true);
    expect(readCompensateWorkerConfig({ ...base, SELO_IN_DOUBT_SWEEPER: 'false' }).sweep).toBe(false);
    expect(readCompensateWorkerConfig({ ...base, SELO_IN_DOUBT_SWEEPER: 'true' }).sweep).toBe(true);
  });

  it('refuses a value that is not a boolean, naming the variable', () => {
    expect(() => readCompensateWorkerConfig({ ...base, SELO_IN_DOUBT_SWEEPER: 'sometimes' })).toThrow(ConfigError);
    expect(() => readCompensateWorkerConfig({ ...base, SELO_IN_DOUBT_SWEEPER: 'sometimes' })).toThrow(/SELO_IN_DOUBT_SWEEPER/);
  });
});
