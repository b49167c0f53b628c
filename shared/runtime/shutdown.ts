import type { Logger } from '../logging/index.ts';

/** Options of {@link handleShutdownSignals}. */
export interface ShutdownOptions {
  logger: Logger;
  /** @defaultValue ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /**
   * Time allowed for `close`, after which the process exits anyway. Fargate sends SIGKILL 30 s
   * after SIGTERM (ECS `stopTimeout` default), so the default leaves a margin.
   * @defaultValue 28000
   */
  timeoutMs?: number;
  /** How to end the process. @defaultValue process.exit */
  exit?: (code: number) => void;
}

/**
 * On the first SIGTERM/SIGINT: closes `target` (stop polling, finish in flight, flush producers,
 * close the HSM pool…) and exits 0, or 1 if closing failed or took longer than `timeoutMs`.
 * Returns a function that removes the handlers.
 */
export function handleShutdownSignals(target: { close(): Promise<void> }, options: ShutdownOptions): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const timeoutMs = options.timeoutMs ?? 28_000;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let started = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (started) return;
    started = true;
    options.logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      options.logger.error({ timeoutMs }, 'shutdown timed out');
      exit(1);
    }, timeoutMs);
    timer.unref();
    target.close().then(
      () => {
        clearTimeout(timer);
        options.logger.info('shut down cleanly');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        options.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
