// Timing helpers for the micro-benchmark scripts (HOUSE_STYLE 15: scripts print figures).
import { performance } from 'node:perf_hooks';

/** Microseconds per call of `once`, run back to back for `seconds` after a 200 ms warm-up. */
export function microsPerCall(seconds: number, once: () => void): number {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) once();
  let count = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) {
    once();
    count += 1;
  }
  return ((performance.now() - start) * 1000) / count;
}

/** The median of `values` (the upper one of an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
