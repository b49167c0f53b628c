import { generateEndToEndId } from '../../shared/iso20022/index.ts';
import { randomUUID } from 'node:crypto';
import { echoSagaId, newTraceparent, paymentSagaId } from '../../shared/events/index.ts';

/**
 * The outcomes the demo asks the simulated receivers for. `accept`: settles at once; `reject`:
 * the receiver refuses (pacs.002 RJCT AM04, then compensated); `late`: the receiver answers
 * after a delay, still within the settlement limit (settles); `never`: the receiver never
 * answers (the SPI rejects AB03 at the settlement limit, then compensated).
 */
export const DEMO_OUTCOMES = ['accept', 'reject', 'late', 'never'] as const;

/** One of {@link DEMO_OUTCOMES}. */
export type DemoOutcome = (typeof DEMO_OUTCOMES)[number];

/** Share of each outcome, in percent of the payments. */
export type OutcomeMix = Readonly<Record<DemoOutcome, number>>;

/** The default mix: mostly settled, some refused, some late, a few never answered. */
export const DEFAULT_MIX: OutcomeMix = { accept: 85, reject: 7, late: 5, never: 3 };

/** The receiving participant (creditor agent) that plays each outcome in the simulator. */
export const RECEIVER_OF: Readonly<Record<DemoOutcome, string>> = { accept: '99999005', reject: '99999006', late: '99999007', never: '99999008' };

/** The reason code the `reject` receiver answers with (AM04: insufficient funds). */
export const DEMO_REJECT_REASON = 'AM04';

/** Parses `accept=85,reject=7,late=5,never=3`; missing outcomes count 0; the shares must add up to 100. */
export function parseMix(text: string): OutcomeMix {
  const mix: Record<DemoOutcome, number> = { accept: 0, reject: 0, late: 0, never: 0 };
  for (const part of text.split(',')) {
    const match = /^\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (match === null) throw new RangeError(`--mix must look like accept=85,reject=7,late=5,never=3, got ${JSON.stringify(text)}`);
    const name = match[1] as DemoOutcome;
    if (!(DEMO_OUTCOMES as readonly string[]).includes(name)) throw new RangeError(`--mix names unknown outcome ${JSON.stringify(match[1])}; known: ${DEMO_OUTCOMES.join(', ')}`);
    mix[name] = Number(match[2]);
  }
  const total = DEMO_OUTCOMES.reduce((sum, outcome) => sum + mix[outcome], 0);
  if (Math.abs(total - 100) > 1e-9) throw new RangeError(`--mix shares must add up to 100, got ${total}`);
  return mix;
}

/**
 * Assigns outcomes to `count` payments: exact counts per share (largest remainder), spread
 * through the run deterministically so that every stretch of the run sees the same mix.
 */
export function assignOutcomes(count: number, mix: OutcomeMix): DemoOutcome[] {
  const exact = DEMO_OUTCOMES.map((outcome) => ({ outcome, value: (count * mix[outcome]) / 100 }));
  const counts = new Map(exact.map((e) => [e.outcome, Math.floor(e.value)]));
  let missing = count - [...counts.values()].reduce((a, b) => a + b, 0);
  for (const e of [...exact].sort((a, b) => (b.value % 1) - (a.value % 1))) {
    if (missing === 0) break;
    counts.set(e.outcome, (counts.get(e.outcome) ?? 0) + 1);
    missing -= 1;
  }
  // Spread: payment i gets the outcome whose quota is furthest behind its share so far.
  const given = new Map<DemoOutcome, number>(DEMO_OUTCOMES.map((o) => [o, 0]));
  const result: DemoOutcome[] = [];
  for (let i = 0; i < count; i++) {
    let best: DemoOutcome = 'accept';
    let bestLag = -Infinity;
    for (const outcome of DEMO_OUTCOMES) {
      const quota = counts.get(outcome) ?? 0;
      if ((given.get(outcome) ?? 0) >= quota) continue;
      const lag = ((i + 1) * quota) / count - (given.get(outcome) ?? 0);
      if (lag > bestLag) {
        bestLag = lag;
        best = outcome;
      }
    }
    given.set(best, (given.get(best) ?? 0) + 1);
    result.push(best);
  }
  return result;
}

/** One payment the demo publishes. */
export interface DemoPayment {
  endToEndId: string;
  outcome: DemoOutcome;
  /** The PutEvents entry core banking would publish. */
  entry: { EventBusName: string; Source: string; DetailType: string; Detail: string };
}

/** A `PaymentRequested` for a pacs.008 from `ispb` to the receiver that plays `outcome`. */
export function demoPayment(eventBusName: string, ispb: string, outcome: DemoOutcome, index: number, at: Date): DemoPayment {
  const endToEndId = generateEndToEndId(ispb, { at });
  const cents = 100 + ((index * 7919) % 99_900);
  const transaction = {
    endToEndId,
    amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
    acceptanceDateTime: at.toISOString(),
    localInstrument: 'MANU',
    debtor: { name: 'Cliente Demonstracao', taxId: '70000000000' },
    debtorAccount: { number: String(500_000 + (index % 1000)), branch: '3000', type: 'CACC' },
    creditorAgentIspb: RECEIVER_OF[outcome],
    creditor: { taxId: '80000000000' },
    creditorAccount: { number: '600000', branch: '4000', type: 'CACC' },
    purpose: 'IPAY',
  };
  const detail = { version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pacs.008', transaction } };
  return { endToEndId, outcome, entry: { EventBusName: eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested', Detail: JSON.stringify(detail) } };
}

/** An SPI echo request (pibr.001) as core banking's operations would publish it: `PaymentRequested` keyed by its RequestId. */
export interface DemoEcho {
  sagaId: string;
  entry: { EventBusName: string; Source: string; DetailType: string; Detail: string };
}

/**
 * The `index`th echo of the demo's warm-up: a pibr.001 that every stage handles as it handles a
 * payment (signed in the HSM, POSTed over mTLS, answered by the simulator with a signed pibr.002 on
 * the stream, read and verified), without moving money or touching the payments' figures.
 */
export function demoEcho(eventBusName: string, index: number, at: Date): DemoEcho {
  const requestId = randomUUID();
  const data = { message: 'pibr.001', echo: { data: `selo demo warm-up ${index}`, requestedAt: at.toISOString() } };
  const detail = { version: 1, sagaId: echoSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data };
  return { sagaId: echoSagaId(requestId), entry: { EventBusName: eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested', Detail: JSON.stringify(detail) } };
}
