import { METRIC_DEFINITIONS } from './metrics.ts';
import type { CounterName, Dimensions, DistributionName, MetricName, Metrics } from './metrics.ts';

/**
 * Limits of the CloudWatch embedded metric format ("Specification: Embedded metric format",
 * CloudWatch User Guide): at most 100 MetricDefinitions per directive and 100 values per metric
 * target, dimension targets are strings; CloudWatch dimension values are 1–1024 characters.
 */
export const EMF_LIMITS = { valuesPerMetric: 100, metricsPerDirective: 100, dimensionValueLength: 1024, namespaceLength: 255 } as const;

/** Options of {@link EmfMetrics}. */
export interface EmfMetricsOptions {
  /** CloudWatch namespace (`SELO_METRICS_NAMESPACE`), 1–255 characters. */
  namespace: string;
  /** The process's service (`sign`, `compensate-sweeper`, `workers` for several): the `Service` member of every line. */
  service: string;
  /**
   * How often the aggregated values are written, ms. Everything recorded in one interval becomes
   * one line per metric and dimension values (more when a distribution has more than 100 distinct
   * values), so the number of lines does not grow with the payment rate.
   * @defaultValue 10000
   */
  flushIntervalMs?: number;
  /** Where each line goes (one JSON document, no newline). @defaultValue standard output, one line each */
  write?: (line: string) => void;
  /** Clock, ms since the epoch (the lines' `_aws.Timestamp`). @defaultValue Date.now */
  now?: () => number;
}

interface Series {
  metric: MetricName;
  dimensions: Dimensions;
  /** Counter: the sum. */
  sum: number;
  /** Distribution: each (quantised) value and how often it was seen. */
  values: Map<number, number>;
}

/**
 * An observation kept to two significant digits (at most 5 % off: 1234 ms is kept as 1200 ms), so
 * that an interval's observations collapse into few distinct values whatever the rate; negative
 * values (clocks of two hosts) count as 0.
 */
export function quantise(value: number): number {
  return value <= 0 ? 0 : Number(value.toPrecision(2));
}

function validDimensions(dimensions: Dimensions): boolean {
  return Object.values(dimensions).every((v) => v.length > 0 && v.length <= EMF_LIMITS.dimensionValueLength && /^[\x20-\x7e]+$/.test(v));
}

/**
 * selo's CloudWatch metrics: one per process, aggregated in memory and written every
 * `flushIntervalMs` to standard output as CloudWatch embedded metric format (EMF) lines, which the
 * ECS `awslogs` driver delivers to CloudWatch Logs and CloudWatch Logs turns into metrics.
 *
 * A counter is written as its sum over the interval. A distribution is written as
 * `{"Values": [...], "Counts": [...]}`, each distinct value once with how often it occurred (at
 * most 100 per line), the form AWS's own EMF writer uses for many observations of one metric
 * (awslabs/metrique, `metrique-writer-format-emf`, "Metric emission format - scalar vs.
 * histogram": CloudWatch computes sums, averages and percentiles from it as from plain values).
 */
export class EmfMetrics implements Metrics {
  readonly #namespace: string;
  readonly #service: string;
  readonly #intervalMs: number;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  #series = new Map<string, Series>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EmfMetricsOptions) {
    if (options.namespace.length < 1 || options.namespace.length > EMF_LIMITS.namespaceLength) throw new RangeError(`EmfMetricsOptions.namespace must be 1–${EMF_LIMITS.namespaceLength} characters, got ${JSON.stringify(options.namespace)}`);
    if (!validDimensions({ Service: options.service })) throw new RangeError(`EmfMetricsOptions.service must be 1–1024 printable ASCII characters, got ${JSON.stringify(options.service)}`);
    const interval = options.flushIntervalMs ?? 10_000;
    if (!Number.isSafeInteger(interval) || interval < 1) throw new RangeError(`EmfMetricsOptions.flushIntervalMs must be a positive integer, got ${String(options.flushIntervalMs)}`);
    this.#namespace = options.namespace;
    this.#service = options.service;
    this.#intervalMs = interval;
    this.#write = options.write ?? ((line) => process.stdout.write(`${line}\n`));
    this.#now = options.now ?? Date.now;
  }

  /** Starts writing every `flushIntervalMs` (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  count(metric: CounterName, dimensions: Dimensions, value = 1): void {
    const series = this.#seriesOf(metric, dimensions, value);
    if (series !== undefined) series.sum += value;
  }

  observe(metric: DistributionName, dimensions: Dimensions, value: number): void {
    const series = this.#seriesOf(metric, dimensions, value);
    if (series === undefined) return;
    const kept = quantise(value);
    series.values.set(kept, (series.values.get(kept) ?? 0) + 1);
  }

  /** Writes what was recorded since the last flush and starts a new interval. */
  flush(): void {
    const series = [...this.#series.values()];
    this.#series = new Map();
    const timestamp = this.#now();
    for (const line of series.flatMap((s) => this.#lines(s, timestamp))) {
      try {
        this.#write(line);
      } catch {
        // Metrics never stop a payment: a closed stdout loses this line only.
      }
    }
  }

  /** Stops the timer and writes what is left; idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.flush();
    }
    return Promise.resolve();
  }

  #seriesOf(metric: MetricName, dimensions: Dimensions, value: number): Series | undefined {
    // Invalid input is dropped rather than thrown: a metric must never fail the work it measures.
    if (!Number.isFinite(value) || !validDimensions(dimensions)) return undefined;
    const names = Object.keys(dimensions).sort();
    const key = `${metric}\u0000${names.map((n) => `${n}=${dimensions[n] ?? ''}`).join('\u0000')}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { metric, dimensions: { ...dimensions }, sum: 0, values: new Map() };
      this.#series.set(key, series);
    }
    return series;
  }

  /** The EMF documents of one series: one, or one per 100 distinct values of a distribution. */
  #lines(series: Series, timestamp: number): string[] {
    const definition = METRIC_DEFINITIONS[series.metric];
    const directive = {
      Namespace: this.#namespace,
      Dimensions: definition.dimensionSets.map((set) => [...set]),
      Metrics: [{ Name: series.metric, Unit: definition.unit }],
    };
    const document = (value: unknown): string => JSON.stringify({ _aws: { Timestamp: timestamp, CloudWatchMetrics: [directive] }, Service: this.#service, ...series.dimensions, [series.metric]: value });
    if (definition.kind === 'counter') return [document(series.sum)];
    const entries = [...series.values.entries()].sort((a, b) => a[0] - b[0]);
    const lines: string[] = [];
    for (let i = 0; i < entries.length; i += EMF_LIMITS.valuesPerMetric) {
      const chunk = entries.slice(i, i + EMF_LIMITS.valuesPerMetric);
      lines.push(document({ Values: chunk.map(([v]) => v), Counts: chunk.map(([, c]) => c) }));
    }
    return lines;
  }
}
