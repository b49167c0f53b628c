import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitUntil } from '../../support/wait-until.ts';
import { handleShutdownSignals } from '../../../shared/runtime/index.ts';
import { silentLogger } from './fakes.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('handleShutdownSignals', () => {
  it('closes the target once on the first signal and exits 0', async () => {
    let closes = 0;
    const exits: number[] = [];
    const dispose = handleShutdownSignals({ close: () => ((closes += 1), Promise.resolve()) }, { logger: silentLogger(), signals: ['SIGUSR2'], exit: (code) => exits.push(code) });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      process.emit('SIGUSR2', 'SIGUSR2');
      await waitUntil('exit', () => exits.length > 0);
      expect(closes).toBe(1);
      expect(exits).toEqual([0]);
    } finally {
      dispose();
    }
  });

  it('exits 1 when closing takes longer than the timeout', async () => {
    vi.useFakeTimers();
    const exits: number[] = [];
    const dispose = handleShutdownSignals({ close: () => new Promise(() => undefined) }, { logger: silentLogger(), signals: ['SIGUSR2'], timeoutMs: 10, exit: (code) => exits.push(code) });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      await vi.advanceTimersByTimeAsync(9);
      expect(exits).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(exits).toEqual([1]);
    } finally {
      dispose();
    }
  });
});
