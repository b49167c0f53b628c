/**
 * What the workers measure (issue 19, item 6), written down once: each metric's CloudWatch unit,
 * whether it is a counter (summed per flush) or a distribution (every observation kept, so that
 * CloudWatch computes percentiles), and the dimension sets it is published under. Dimensions are
 * low-cardinality on purpose (worker service, outcome, stage, HTTP status): never a payment id,
 * since every distinct dimension value is a custom metric of its own (and billed as one).
 */
export const METRIC_DEFINITIONS = {
  /** Payments by outcome, counted when the outcome event is published (dimension `Outcome`). */
  Payments: { unit: 'Count', kind: 'counter', dimensionSets: [['Outcome']] },
  /** Time of one step of a payment, ms (dimension `Stage`: see {@link STAGES}). */
  StageLatency: { unit: 'Milliseconds', kind: 'distribution', dimensionSets: [['Stage']] },
  /** Answers of the BCB's ICOM and DICT by HTTP status (`none`: no answer at all). */
  BcbResponses: { unit: 'Count', kind: 'counter', dimensionSets: [['Status']] },
  /** How long a signature waited for a free HSM session, ms. */
  HsmPoolWait: { unit: 'Milliseconds', kind: 'distribution', dimensionSets: [['Service']] },
  /** HSM sessions busy, sampled at every acquisition (Maximum: how close the pool runs to full). */
  HsmSessionsInUse: { unit: 'Count', kind: 'distribution', dimensionSets: [['Service']] },
  /** Failed HSM operations, module failures and failed re-initialisations (all services together, and per service). */
  HsmErrors: { unit: 'Count', kind: 'counter', dimensionSets: [[], ['Service']] },
  /** Payments in IN_DOUBT, counted by each pass of the in-doubt sweeper (a gauge: Maximum). */
  SagasInDoubt: { unit: 'Count', kind: 'distribution', dimensionSets: [[]] },
} as const satisfies Record<string, { unit: 'Count' | 'Milliseconds'; kind: 'counter' | 'distribution'; dimensionSets: readonly (readonly string[])[] }>;

/** A metric selo publishes. */
export type MetricName = keyof typeof METRIC_DEFINITIONS;

/** A summed metric. */
export type CounterName = { [K in MetricName]: (typeof METRIC_DEFINITIONS)[K]['kind'] extends 'counter' ? K : never }[MetricName];

/** A metric whose every observation counts (percentiles, Maximum). */
export type DistributionName = Exclude<MetricName, CounterName>;

/** Values of the dimensions a metric names, except `Service` (the emitter adds it). */
export type Dimensions = Readonly<Record<string, string>>;

/** The values of the `Outcome` dimension of `Payments`. */
export const OUTCOMES = ['settled', 'rejected', 'in_doubt', 'compensated', 'inbound_settled', 'inbound_rejected'] as const;

/** The values of the `Stage` dimension of `StageLatency`. */
export const STAGES = {
  /** sign: the request (or core banking's decision) event → MessageSigned. */
  requestToSigned: 'request_to_signed',
  /** transmit: MessageSigned → the ICOM's (or DICT's) 2xx, MessageTransmitted. */
  signedToBcbAccepted: 'signed_to_bcb_accepted',
  /** verify: the message read from the ICOM stream → verified and published. */
  receiptToVerified: 'receipt_to_verified',
  /** transmit: an inbound pacs.008's receipt → the ICOM's 201 for our pacs.002 (the BCB's receiver indicator). */
  inboundReceiptToBcbAccepted: 'inbound_receipt_to_bcb_accepted',
} as const;

/**
 * Where workers record what they measure; aggregation and delivery are the implementation's
 * (CloudWatch EMF on standard output: {@link EmfMetrics}). Never throws.
 */
export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  count(metric: CounterName, dimensions: Dimensions, value?: number): void;
  /** Records one observation of a distribution. */
  observe(metric: DistributionName, dimensions: Dimensions, value: number): void;
}

/** Metrics off: what every component gets unless its process turned metrics on (`SELO_METRICS`). */
export const NO_METRICS: Metrics = {
  count() {
    // Off.
  },
  observe() {
    // Off.
  },
};
