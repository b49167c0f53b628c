import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { expect } from 'vitest';

/** One event a downstream subscriber received. */
export interface CollectedFact {
  detailType: string;
  detail: { sagaId: string; data: Record<string, unknown> } & Record<string, unknown>;
}

/** A running collector of the events that reach a subscriber's queue. */
export interface FactCollector {
  /** Everything received so far, in order. */
  readonly seen: readonly CollectedFact[];
  /** The first fact of `detailType` for `sagaId`, polled for up to `timeoutMs`. */
  factOf(sagaId: string, detailType: string, timeoutMs?: number): Promise<CollectedFact>;
  /** Whether a fact of `detailType` for `sagaId` has been seen. */
  has(sagaId: string, detailType: string): boolean;
  /** Stops polling and waits for the last poll. */
  stop(): Promise<void>;
}

/**
 * Reads the subscriber queue `url` (from `subscribeQueue`) until stopped, deleting what it reads,
 * and keeps each event's detail-type and detail.
 */
export function collectFacts(sqs: SQSClient, url: string): FactCollector {
  const seen: CollectedFact[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      const messages = got.Messages ?? [];
      for (const m of messages) {
        const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: CollectedFact['detail'] };
        seen.push({ detailType: body['detail-type'], detail: body.detail });
      }
      if (messages.length > 0) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
      }
    }
  })();
  const find = (sagaId: string, detailType: string): CollectedFact | undefined => seen.find((f) => f.detail.sagaId === sagaId && f.detailType === detailType);
  return {
    seen,
    async factOf(sagaId, detailType, timeoutMs = 30_000) {
      await expect.poll(() => find(sagaId, detailType) !== undefined, { timeout: timeoutMs }).toBe(true);
      return find(sagaId, detailType) as CollectedFact;
    },
    has: (sagaId, detailType) => find(sagaId, detailType) !== undefined,
    async stop() {
      running = false;
      await loop;
    },
  };
}
