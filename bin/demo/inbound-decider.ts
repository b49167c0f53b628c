import { createHash } from 'node:crypto';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { AwsClients } from '../../shared/aws/index.ts';
import { INBOUND_EVENTS, inboundSagaId, newTraceparent } from '../../shared/events/index.ts';
import { percentile } from './demo-report.ts';
import { DownstreamSubscriber } from './downstream-subscriber.ts';
import type { DownstreamEvent } from './downstream-subscriber.ts';

/** How core banking decides on payments to its customers, in percent (the rest is accepted). */
export interface DecisionMix {
  /** Share rejected with {@link INBOUND_REJECT_REASON}. */
  reject: number;
  /** Share never decided: the SPI rejects them AB03 at its limit. */
  never: number;
}

/** The demo's default: 85 % accepted, 10 % rejected AC03, 5 % never decided. */
export const DEFAULT_DECISION_MIX: DecisionMix = { reject: 10, never: 5 };

/** What the demo's core banking answers a refused payment with (AC03: the creditor account does not exist). */
export const INBOUND_REJECT_REASON = 'AC03';

/** The decision core banking takes on one payment. */
export type Decision = 'accept' | 'reject' | 'never';

/** One payment to our customers, as core banking saw it. */
export interface InboundObservation {
  decision: Decision;
  /** The final facts seen, in arrival order (more than one distinct is a defect). */
  outcomes: ('settled' | 'rejected')[];
  /** The reason of the InboundPaymentRejected, if any. */
  reasonCode?: string;
  /** Receipt → ICOM 201 of our answer, from the final fact. */
  answerMs?: number;
  late: boolean;
  /** When selo read the pacs.008 (ms since epoch, from the request). */
  receivedAt?: number;
  /** When core banking saw the request and when it published its decision (ms since epoch). */
  requestSeenAt?: number;
  decidedAt?: number;
}

/** The receiving section of the demo report (`--json`: `inbound`). */
export interface InboundSummary {
  received: number;
  accepted: number;
  /** Rejected by core banking (our RJCT). */
  rejected: number;
  settled: number;
  /** Rejected by the SPI without our RJCT (AB03: no answer in time). */
  spiRejected: number;
  /** Decisions that came after the deadline and were not sent. */
  late: number;
  /** Payments that got no final fact, or two different ones. */
  lost: number;
  duplicated: number;
  answerP50Ms: number;
  answerP95Ms: number;
  answerP99Ms: number;
  /** The same answer time as the SPI sees it ({@link bcbAnswerTimes}), when the simulator's ledger was read. */
  atBcb?: BcbAnswerTimes;
}

/** Answer times as the SPI sees them: the pacs.008 put on the receiver's stream → the receiver's pacs.002 arrived. */
export interface BcbAnswerTimes {
  /** Payments with both times. */
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/**
 * The receiver's answer times from the simulator's ledger: from when it put each pacs.008 for
 * `ispb` on the stream (the first time) to when that payment's first answer reached it. Unlike
 * selo's own figure (its receipt → the 201), this includes the time the message waited for a
 * stream read, as the BCB's time indicators count it.
 */
export function bcbAnswerTimes(
  ispb: string,
  sent: readonly { readonly toIspb: string; readonly type: string; readonly reference: string; readonly createdAt: string }[],
  payments: readonly { readonly endToEndId: string; readonly kind: string; readonly receiverIspb: string; readonly answeredAt?: string }[],
): BcbAnswerTimes {
  const forwarded = new Map<string, number>();
  for (const m of sent) {
    if (m.toIspb !== ispb || m.type !== 'pacs.008') continue;
    const at = Date.parse(m.createdAt);
    const earlier = forwarded.get(m.reference);
    if (earlier === undefined || at < earlier) forwarded.set(m.reference, at);
  }
  const times: number[] = [];
  for (const p of payments) {
    if (p.kind !== 'pacs.008' || p.receiverIspb !== ispb || p.answeredAt === undefined) continue;
    const from = forwarded.get(p.endToEndId);
    if (from !== undefined) times.push(Date.parse(p.answeredAt) - from);
  }
  return { count: times.length, p50Ms: Math.round(percentile(times, 0.5)), p95Ms: Math.round(percentile(times, 0.95)), p99Ms: Math.round(percentile(times, 0.99)) };
}

/** Parses `reject=10,never=5` (percent; the rest is accepted). */
export function parseDecisionMix(text: string): DecisionMix {
  const mix: DecisionMix = { reject: 0, never: 0 };
  for (const part of text.split(',')) {
    const match = /^\s*(reject|never)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (match === null) throw new RangeError(`--inbound-mix must look like reject=10,never=5, got ${JSON.stringify(text)}`);
    mix[match[1] as keyof DecisionMix] = Number(match[2]);
  }
  if (mix.reject + mix.never > 100) throw new RangeError(`--inbound-mix shares add up to more than 100, got ${mix.reject + mix.never}`);
  return mix;
}

/** The decision for one EndToEndId: deterministic, so a redelivered request is decided the same way. */
export function decide(endToEndId: string, mix: DecisionMix): Decision {
  const bucket = createHash('sha256').update(endToEndId).digest().readUInt32BE(0) % 10_000;
  if (bucket < mix.never * 100) return 'never';
  if (bucket < (mix.never + mix.reject) * 100) return 'reject';
  return 'accept';
}

/** Options of {@link InboundDecider.start}. */
export interface InboundDeciderOptions {
  clients: Pick<AwsClients, 'sqs' | 'events'>;
  eventBusName: string;
  /** Queue and rule name of its subscription. */
  name: string;
  /** @defaultValue {@link DEFAULT_DECISION_MIX} */
  mix?: DecisionMix;
}

/**
 * Core banking's side of receiving, as the demo and the tests play it: subscribes (its own rule
 * and queue) to `InboundPaymentDecisionRequested`, decides by the mix, publishes
 * `InboundPaymentDecided` from `core.banking`, and credits (counts) only on
 * `InboundPaymentSettled`.
 */
export class InboundDecider {
  readonly #subscriber: DownstreamSubscriber;
  readonly #options: InboundDeciderOptions;
  readonly #mix: DecisionMix;
  readonly observations = new Map<string, InboundObservation>();
  #publishing: Promise<unknown>[] = [];
  #failures = 0;

  private constructor(subscriber: DownstreamSubscriber, options: InboundDeciderOptions) {
    this.#subscriber = subscriber;
    this.#options = options;
    this.#mix = options.mix ?? DEFAULT_DECISION_MIX;
  }

  /** Subscribes and starts deciding. */
  static async start(options: InboundDeciderOptions): Promise<InboundDecider> {
    const subscriber = await DownstreamSubscriber.create({
      clients: options.clients,
      eventBusName: options.eventBusName,
      name: options.name,
      detailTypes: [INBOUND_EVENTS.decisionRequested, INBOUND_EVENTS.settled, INBOUND_EVENTS.rejected, INBOUND_EVENTS.decisionLate],
    });
    const decider = new InboundDecider(subscriber, options);
    subscriber.start((event) => decider.#onEvent(event));
    return decider;
  }

  /** Publications of decisions that failed (each is retried once by the next redelivery of its request). */
  get failures(): number {
    return this.#failures;
  }

  #onEvent(event: DownstreamEvent): void {
    const id = event.endToEndId;
    if (id === undefined) return;
    const data = (event.data ?? {}) as { answerMs?: unknown; reason?: { code?: unknown }; receivedAt?: unknown };
    let observation = this.observations.get(id);
    if (event.detailType === INBOUND_EVENTS.decisionRequested) {
      if (observation === undefined) {
        observation = { decision: decide(id, this.#mix), outcomes: [], late: false, requestSeenAt: event.receivedAt, ...(typeof data.receivedAt === 'string' ? { receivedAt: Date.parse(data.receivedAt) } : {}) };
        this.observations.set(id, observation);
      }
      observation.decidedAt ??= Date.now();
      // Every request is answered, a redelivered one too: selo answers the same decision once.
      if (observation.decision !== 'never') this.#publishing.push(this.#publish(id, observation.decision));
      return;
    }
    if (observation === undefined) return;
    if (event.detailType === INBOUND_EVENTS.decisionLate) observation.late = true;
    else if (event.detailType === INBOUND_EVENTS.settled || event.detailType === INBOUND_EVENTS.rejected) {
      observation.outcomes.push(event.detailType === INBOUND_EVENTS.settled ? 'settled' : 'rejected');
      if (typeof data.answerMs === 'number') observation.answerMs = data.answerMs;
      if (typeof data.reason?.code === 'string') observation.reasonCode = data.reason.code;
    }
  }

  async #publish(endToEndId: string, decision: 'accept' | 'reject'): Promise<void> {
    const data = decision === 'accept' ? { decision: 'ACSP', decidedAt: new Date().toISOString() } : { decision: 'RJCT', decidedAt: new Date().toISOString(), reason: { code: INBOUND_REJECT_REASON } };
    const detail = { version: 1, sagaId: inboundSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data };
    try {
      const result = await this.#options.clients.events.send(
        new PutEventsCommand({ Entries: [{ EventBusName: this.#options.eventBusName, Source: 'core.banking', DetailType: INBOUND_EVENTS.decided, Detail: JSON.stringify(detail) }] }),
      );
      if ((result.FailedEntryCount ?? 0) > 0) this.#failures += 1;
    } catch {
      this.#failures += 1;
    }
  }

  /** Payments with a final fact. */
  get finished(): number {
    let done = 0;
    for (const o of this.observations.values()) if (o.outcomes.length > 0) done += 1;
    return done;
  }

  /** The receiving section's figures. */
  summary(): InboundSummary {
    const answers: number[] = [];
    const s: InboundSummary = { received: this.observations.size, accepted: 0, rejected: 0, settled: 0, spiRejected: 0, late: 0, lost: 0, duplicated: 0, answerP50Ms: 0, answerP95Ms: 0, answerP99Ms: 0 };
    for (const o of this.observations.values()) {
      if (o.decision === 'accept') s.accepted += 1;
      if (o.decision === 'reject') s.rejected += 1;
      if (o.late) s.late += 1;
      const distinct = new Set(o.outcomes);
      if (distinct.size === 0) s.lost += 1;
      if (distinct.size > 1) s.duplicated += 1;
      if (o.outcomes[0] === 'settled') s.settled += 1;
      if (o.outcomes[0] === 'rejected' && !(o.decision === 'reject' && o.reasonCode === INBOUND_REJECT_REASON)) s.spiRejected += 1;
      if (o.answerMs !== undefined) answers.push(o.answerMs);
    }
    s.answerP50Ms = Math.round(percentile(answers, 0.5));
    s.answerP95Ms = Math.round(percentile(answers, 0.95));
    s.answerP99Ms = Math.round(percentile(answers, 0.99));
    return s;
  }

  /** Stops deciding and removes the subscription. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#publishing);
    await this.#subscriber.close();
  }
}

/** The receiving section of the report. */
export function renderInbound(s: InboundSummary, ledger: { settled: number; rejected: number; pending: number } | undefined): string {
  const lines = [
    '  receiving (payments to our customers, core banking deciding):',
    `    received        ${s.received} (accepted ${s.accepted}, rejected by us ${s.rejected} AC03, never decided ${s.received - s.accepted - s.rejected})`,
    `    settled         ${s.settled} (InboundPaymentSettled: credit)`,
    `    rejected by SPI ${s.spiRejected} (AB03 or other, never credited); late decisions not sent ${s.late}`,
    `    lost/duplicated ${s.lost}/${s.duplicated}`,
    `    answer time     p50 ${s.answerP50Ms} ms, p95 ${s.answerP95Ms} ms, p99 ${s.answerP99Ms} ms (receipt of the pacs.008 → ICOM 201 of our pacs.002; BCB indicator for the receiver: P50 1.4 s, P95 2.3 s)`,
  ];
  if (s.atBcb !== undefined) {
    lines.push(`    at the SPI      p50 ${s.atBcb.p50Ms} ms, p95 ${s.atBcb.p95Ms} ms, p99 ${s.atBcb.p99Ms} ms (${s.atBcb.count} answers; the simulator put the pacs.008 on our stream → our pacs.002 reached it, the wait for our stream read included)`);
  }
  if (ledger !== undefined) {
    const agree = ledger.settled === s.settled && ledger.pending === 0;
    lines.push(`    BCB ledger      settled ${ledger.settled}, rejected ${ledger.rejected}, pending ${ledger.pending}${agree ? ' (agrees)' : ' (DISAGREES)'}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Latency percentiles of one inbound stage. */
export interface InboundStage {
  name: string;
  count: number;
  p50Ms: number;
  p95Ms: number;
}

/**
 * Where an answer's time goes: receipt (the receive worker read the pacs.008) → RECEIVED (verify)
 * → core banking saw the request → it published its decision → SIGNED (sign) → TRANSMITTED (the
 * ICOM's 201), the saga transitions taken from the audit stream.
 */
export function inboundStages(observations: ReadonlyMap<string, InboundObservation>, transitions: ReadonlyMap<string, Partial<Record<string, number>>>): InboundStage[] {
  const names = ['receipt → RECEIVED (verify)', 'RECEIVED → request at core banking', 'core banking deciding', 'decision → SIGNED (sign)', 'SIGNED → ICOM 201 (transmit)'];
  const samples: number[][] = names.map(() => []);
  for (const [id, o] of observations) {
    const t = transitions.get(id) ?? {};
    const points = [o.receivedAt, t['RECEIVED'], o.requestSeenAt, o.decidedAt, t['SIGNED'], t['TRANSMITTED']];
    for (let i = 0; i < names.length; i++) {
      const from = points[i];
      const to = points[i + 1];
      if (from !== undefined && to !== undefined) samples[i]?.push(Math.max(0, to - from));
    }
  }
  return names.map((name, i) => {
    const values = samples[i] ?? [];
    return { name, count: values.length, p50Ms: Math.round(percentile(values, 0.5)), p95Ms: Math.round(percentile(values, 0.95)) };
  });
}

/** The inbound stage breakdown under the receiving section. */
export function renderInboundStages(stages: readonly InboundStage[]): string {
  return `${['    stages (answered payments):', ...stages.map((s) => `      ${s.name.padEnd(36)} p50 ${s.p50Ms} ms, p95 ${s.p95Ms} ms (${s.count})`)].join('\n')}\n`;
}
