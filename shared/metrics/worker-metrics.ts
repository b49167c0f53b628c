import type { EventPublisher } from '../runtime/event-publisher.ts';
import type { EventToPublish } from '../runtime/types.ts';
import { STAGES } from './metrics.ts';
import type { Metrics } from './metrics.ts';

/**
 * The `Outcome` of each event that ends (or, for in doubt, suspends) a payment, by detail-type
 * (docs/events.md, "Downstream contract"). A `MessageRejected` (admi.002) rejects the payment as a
 * pacs.002 RJCT does.
 */
export const OUTCOME_EVENTS: Readonly<Record<string, string>> = {
  PaymentSettled: 'settled',
  PaymentRejected: 'rejected',
  MessageRejected: 'rejected',
  PaymentInDoubt: 'in_doubt',
  PaymentCompensated: 'compensated',
  InboundPaymentSettled: 'inbound_settled',
  InboundPaymentRejected: 'inbound_rejected',
};

/**
 * A publisher that counts `Payments` by outcome once the events were accepted (a redelivered
 * message that publishes the same fact again counts it again: delivery is at least once).
 */
export function countingPublisher(publisher: EventPublisher, metrics: Metrics): EventPublisher {
  return {
    async publish(events: readonly EventToPublish[]): Promise<void> {
      await publisher.publish(events);
      for (const event of events) {
        const outcome = OUTCOME_EVENTS[event.detailType];
        if (outcome !== undefined) metrics.count('Payments', { Outcome: outcome });
      }
    },
  };
}

/** The event that shows each measured worker did its step, and the stage it measures. */
const WORKER_STAGES: Readonly<Record<string, { stage: string; done: (detailType: string) => boolean }>> = {
  sign: { stage: STAGES.requestToSigned, done: (t) => t === 'MessageSigned' },
  transmit: { stage: STAGES.signedToBcbAccepted, done: (t) => t === 'MessageTransmitted' },
  // Whatever verify publishes is the verified message (or its refusal); its input is what receive read.
  verify: { stage: STAGES.receiptToVerified, done: () => true },
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Records the stage latency of one handled message after its events were published: from the
 * input event's `data.receivedAt` (a message read from the ICOM stream) or its envelope `time` (an
 * EventBridge event: when it was put) to `nowMs`; and, for an answer to an inbound payment, the
 * transmit handler's `answerMs` (receipt → the ICOM's 201). Nothing when the input carries no time.
 */
export function recordStage(metrics: Metrics, worker: string, input: { time: string | undefined; data: unknown }, events: readonly EventToPublish[], nowMs: number): void {
  const measured = WORKER_STAGES[worker];
  if (measured !== undefined && events.some((e) => measured.done(e.detailType))) {
    const receivedAt = isRecord(input.data) && typeof input.data.receivedAt === 'string' ? input.data.receivedAt : undefined;
    const from = Date.parse(receivedAt ?? input.time ?? '');
    if (Number.isFinite(from)) metrics.observe('StageLatency', { Stage: measured.stage }, nowMs - from);
  }
  for (const event of events) {
    const data = event.detail.data;
    if (event.detailType === 'MessageTransmitted' && isRecord(data) && typeof data.answerMs === 'number') {
      metrics.observe('StageLatency', { Stage: STAGES.inboundReceiptToBcbAccepted }, data.answerMs);
    }
  }
}
