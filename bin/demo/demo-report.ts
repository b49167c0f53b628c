/** The outcome a downstream system saw first for a payment. */
export type TerminalOutcome = 'settled' | 'rejected' | 'inDoubt';

/** Which downstream event ends a payment, and as what. */
export const TERMINAL_EVENTS: Readonly<Record<string, TerminalOutcome>> = {
  PaymentSettled: 'settled',
  PaymentRejected: 'rejected',
  MessageRejected: 'rejected',
  TransmissionRejected: 'rejected',
  TransmissionFailed: 'rejected',
  SigningFailed: 'rejected',
  PaymentInDoubt: 'inDoubt',
};

/** The event that says a rejected payment's earlier steps were undone. */
export const COMPENSATED_EVENT = 'PaymentCompensated';

/** The summary `selo demo --json` prints as its last line; the keys are the contract. */
export interface DemoSummary {
  payments: number;
  settled: number;
  rejected: number;
  compensated: number;
  inDoubt: number;
  lost: number;
  duplicated: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  throughputPerSecond: number;
  auditRecords: number;
}

/** The `q`-quantile (0..1) of `values` by the nearest-rank method; 0 for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

/** What the demo observed of one payment. */
export interface PaymentObservation {
  publishedAt: number;
  /** Terminal events seen, in arrival order, with their arrival time (ms since epoch). */
  terminal: { outcome: TerminalOutcome; detailType: string; at: number }[];
  compensatedAt?: number;
  /** `PaymentCompensated` events seen (more than one is a duplicate). */
  compensations: number;
}

/**
 * Whether a payment ended twice: two different terminal outcomes where the state machine does
 * not allow it (a late ACSC or RJCT after PaymentInDoubt is the allowed resolution), the same
 * outcome published for it more than once, or more than one compensation.
 */
export function isDuplicated(observation: PaymentObservation): boolean {
  if (observation.compensations > 1) return true;
  const outcomes = observation.terminal.filter((t) => t.outcome !== 'inDoubt');
  return outcomes.length > 1 || observation.terminal.filter((t) => t.outcome === 'inDoubt').length > 1;
}

/** The final outcome of a payment: the last definite one, else in doubt. */
export function finalOutcome(observation: PaymentObservation): TerminalOutcome | undefined {
  const definite = observation.terminal.filter((t) => t.outcome !== 'inDoubt');
  return definite.at(-1)?.outcome ?? observation.terminal.at(-1)?.outcome;
}

/**
 * Summarises the run: counts by final outcome, latency from publish to the first terminal event,
 * throughput (payments that reached a terminal event per second, from the first publish to the
 * last terminal event), lost (no terminal event) and duplicated payments.
 */
export function summarise(observations: ReadonlyMap<string, PaymentObservation>, auditRecords: number): DemoSummary {
  const latencies: number[] = [];
  const counts = { settled: 0, rejected: 0, inDoubt: 0 };
  let compensated = 0;
  let lost = 0;
  let duplicated = 0;
  let firstPublish = Infinity;
  let lastTerminal = -Infinity;
  for (const observation of observations.values()) {
    firstPublish = Math.min(firstPublish, observation.publishedAt);
    const first = observation.terminal[0];
    if (first === undefined) {
      lost += 1;
      continue;
    }
    latencies.push(first.at - observation.publishedAt);
    lastTerminal = Math.max(lastTerminal, first.at);
    const outcome = finalOutcome(observation);
    if (outcome !== undefined) counts[outcome] += 1;
    if (observation.compensatedAt !== undefined) compensated += 1;
    if (isDuplicated(observation)) duplicated += 1;
  }
  const done = observations.size - lost;
  const seconds = (lastTerminal - firstPublish) / 1000;
  return {
    payments: observations.size,
    ...counts,
    compensated,
    lost,
    duplicated,
    p50Ms: Math.round(percentile(latencies, 0.5)),
    p95Ms: Math.round(percentile(latencies, 0.95)),
    p99Ms: Math.round(percentile(latencies, 0.99)),
    throughputPerSecond: done > 0 && seconds > 0 ? Math.round((done / seconds) * 10) / 10 : 0,
    auditRecords,
  };
}

/** Cross-checks against the simulator's ledger, printed under the report. */
export interface LedgerCheck {
  settled: number;
  rejected: number;
  pending: number;
  /** Messages the simulator refused as duplicates (a payment sent twice with other identifiers). */
  duplicates: number;
}

/** The human report. */
export function renderReport(summary: DemoSummary, ledger: LedgerCheck | undefined, extra: { elapsedSeconds: number; publishedPerSecond: number }): string {
  const ok = summary.lost === 0 && summary.duplicated === 0;
  const lines = [
    '',
    'selo demo report',
    `  payments        ${summary.payments} published at ${extra.publishedPerSecond.toFixed(1)}/s, run took ${extra.elapsedSeconds.toFixed(1)} s`,
    `  settled         ${summary.settled}`,
    `  rejected        ${summary.rejected} (compensated ${summary.compensated})`,
    `  in doubt        ${summary.inDoubt} (raised to operations, never reversed)`,
    `  lost            ${summary.lost}`,
    `  duplicated      ${summary.duplicated}`,
    `  latency         p50 ${summary.p50Ms} ms, p95 ${summary.p95Ms} ms, p99 ${summary.p99Ms} ms (publish → first terminal event)`,
    `  throughput      ${summary.throughputPerSecond} payments/s reached a terminal event`,
    `  audit records   ${summary.auditRecords} on the Kinesis stream`,
  ];
  if (ledger !== undefined) {
    const agree = ledger.settled === summary.settled && ledger.pending === 0;
    lines.push(`  BCB ledger      settled ${ledger.settled}, rejected ${ledger.rejected}, pending ${ledger.pending}, duplicates refused ${ledger.duplicates}${agree ? ' (agrees)' : ' (DISAGREES)'}`);
  }
  lines.push(ok ? '  result          every payment reached exactly one outcome' : '  result          PROBLEM: payments lost or duplicated', '');
  return lines.join('\n');
}

/** One progress line: a bar of terminal payments, rates and counts by outcome. */
export function renderProgress(state: { total: number; published: number; counts: Readonly<Record<TerminalOutcome, number>>; compensated: number; elapsedMs: number; width?: number }): string {
  const done = state.counts.settled + state.counts.rejected + state.counts.inDoubt;
  const width = state.width ?? 30;
  const filled = state.total === 0 ? width : Math.min(width, Math.floor((done / state.total) * width));
  const seconds = Math.max(state.elapsedMs / 1000, 0.001);
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${state.total}` +
    ` published ${state.published} (${(state.published / seconds).toFixed(0)}/s) done ${(done / seconds).toFixed(0)}/s` +
    ` | settled ${state.counts.settled} rejected ${state.counts.rejected} compensated ${state.compensated} in doubt ${state.counts.inDoubt}`
  );
}

/** Pipeline stages, as saga transitions on the audit stream, in order. */
const STAGES = [
  { name: 'publish → signed', to: 'SIGNED' },
  { name: 'signed → transmitted', to: 'TRANSMITTED' },
  { name: 'transmitted → outcome', to: 'OUTCOME' },
] as const;

/** Latency percentiles of one stage. */
export interface StageLatency {
  name: string;
  count: number;
  p50Ms: number;
  p95Ms: number;
}

/**
 * Where the time goes: for each payment, the time between consecutive saga transitions taken
 * from the audit stream (publish → SIGNED → TRANSMITTED → SETTLED or REJECTED).
 */
export function stageLatencies(observations: ReadonlyMap<string, PaymentObservation>, transitions: ReadonlyMap<string, Partial<Record<string, number>>>): StageLatency[] {
  const samples: number[][] = STAGES.map(() => []);
  for (const [id, observation] of observations) {
    const times = transitions.get(id);
    if (times === undefined) continue;
    const outcome = Math.min(times['SETTLED'] ?? Infinity, times['REJECTED'] ?? Infinity);
    const points = [observation.publishedAt, times['SIGNED'], times['TRANSMITTED'], Number.isFinite(outcome) ? outcome : undefined];
    for (let i = 0; i < STAGES.length; i++) {
      const from = points[i];
      const to = points[i + 1];
      if (from !== undefined && to !== undefined) samples[i]?.push(Math.max(0, to - from));
    }
  }
  return STAGES.map((stage, i) => {
    const values = samples[i] ?? [];
    return { name: stage.name, count: values.length, p50Ms: Math.round(percentile(values, 0.5)), p95Ms: Math.round(percentile(values, 0.95)) };
  });
}

/** The stage breakdown under the report. */
export function renderStages(stages: readonly StageLatency[]): string {
  const lines = ['  stages (saga transitions on the audit stream):'];
  for (const stage of stages) lines.push(`    ${stage.name.padEnd(24)} p50 ${stage.p50Ms} ms, p95 ${stage.p95Ms} ms (${stage.count} payments)`);
  return `${lines.join('\n')}\n`;
}
