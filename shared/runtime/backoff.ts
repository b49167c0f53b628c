/** Options of {@link visibilityBackoffSeconds}. */
export interface BackoffOptions {
  /** Delay after the first failed receive. @defaultValue 2 */
  baseSeconds?: number;
  /** Longest delay. @defaultValue 300 (SQS allows up to 43200) */
  maxSeconds?: number;
}

/** SQS ChangeMessageVisibility maximum: 12 hours (SQS API reference). */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

/**
 * The visibility timeout after a transient failure on receive number `receiveCount`: exponential
 * (`base · 2^(receiveCount-1)`, capped) with "equal jitter" (half fixed, half random), so retries
 * of a batch that failed together spread out while never retrying sooner than half the step.
 */
export function visibilityBackoffSeconds(receiveCount: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseSeconds ?? 2;
  const max = Math.min(options.maxSeconds ?? 300, SQS_MAX_VISIBILITY_SECONDS);
  const exponent = Math.max(0, Math.min(receiveCount - 1, 30));
  const step = Math.min(max, base * 2 ** exponent);
  return Math.min(max, Math.round(step / 2 + random() * (step / 2)));
}
