import type { EnvReader } from '../config/index.ts';
import { EmfMetrics } from './emf-metrics.ts';
import { NO_METRICS } from './metrics.ts';
import type { Metrics } from './metrics.ts';

/** How a process publishes its metrics (`SELO_METRICS…`). */
export interface MetricsConfig {
  /** `SELO_METRICS`: `emf` writes CloudWatch embedded metric format lines to standard output; `off` writes nothing. @defaultValue 'off' */
  mode: 'off' | 'emf';
  /** `SELO_METRICS_NAMESPACE`: the CloudWatch namespace. @defaultValue `selo/<SELO_ENV>` */
  namespace: string;
  /** `SELO_METRICS_FLUSH_SECONDS`: how often the aggregated values are written. @defaultValue 10 */
  flushSeconds: number;
  /** `SELO_METRICS_SERVICE`: the `Service` of every line (the ECS service, e.g. `compensate-sweeper`). @defaultValue the workers the process runs, comma-separated */
  service: string | undefined;
}

/** Reads `SELO_METRICS`, `SELO_METRICS_NAMESPACE`, `SELO_METRICS_FLUSH_SECONDS` and `SELO_METRICS_SERVICE` into `reader` (problems collected there). */
export function readMetricsConfig(reader: EnvReader, environment: string): MetricsConfig {
  const mode = reader.oneOf('SELO_METRICS', ['off', 'emf'], { default: 'off' });
  const namespace = reader.string('SELO_METRICS_NAMESPACE', { default: `selo/${environment}` });
  if (namespace.length < 1 || namespace.length > 255) reader.problem('SELO_METRICS_NAMESPACE', `must be 1–255 characters, got ${JSON.stringify(namespace)}`);
  const flushSeconds = reader.integer('SELO_METRICS_FLUSH_SECONDS', { default: 10, min: 1, max: 3600 });
  return { mode, namespace, flushSeconds, service: reader.optionalString('SELO_METRICS_SERVICE') };
}

/** A process's metrics and how to stop them (a final flush). */
export interface ProcessMetrics {
  metrics: Metrics;
  /** Writes what is left and stops the timer; idempotent. */
  close(): Promise<void>;
}

/**
 * The one metrics emitter of a process (`service` names it in every line): started, or
 * {@link NO_METRICS} when `SELO_METRICS` is `off`.
 */
export function startProcessMetrics(config: MetricsConfig, defaultService: string, write?: (line: string) => void): ProcessMetrics {
  if (config.mode === 'off') return { metrics: NO_METRICS, close: () => Promise.resolve() };
  const emf = new EmfMetrics({ namespace: config.namespace, service: config.service ?? defaultService, flushIntervalMs: config.flushSeconds * 1000, ...(write === undefined ? {} : { write }) });
  emf.start();
  return { metrics: emf, close: () => emf.close() };
}
