export { METRIC_DEFINITIONS, NO_METRICS, OUTCOMES, STAGES } from './metrics.ts';
export type { Metrics, MetricName, CounterName, DistributionName, Dimensions } from './metrics.ts';
export { EmfMetrics, EMF_LIMITS, quantise } from './emf-metrics.ts';
export type { EmfMetricsOptions } from './emf-metrics.ts';
export { countingPublisher, recordStage, OUTCOME_EVENTS } from './worker-metrics.ts';
export { readMetricsConfig, startProcessMetrics } from './metrics-config.ts';
export type { MetricsConfig, ProcessMetrics } from './metrics-config.ts';
