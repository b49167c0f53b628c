import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { backoffDelayMs, sleep } from './backoff.ts';
import type { BackoffBounds } from './backoff.ts';

/** SQS SendMessageBatch limits (SQS API reference): 10 entries, 256 KiB of bodies per request. */
export const SQS_BATCH_LIMITS = { entries: 10, bytes: 256 * 1024 } as const;

/** One message for the verify queue; `id` is unique within one {@link sendDurably} call. */
export interface QueueEntry {
  id: string;
  body: string;
}

/** An entry SQS did not take, with SQS's code (or the failed request's error name). */
export interface FailedEntry {
  id: string;
  code: string;
}

/** The one SQS call the receive worker makes; resolves with the entries SQS did not take. */
export interface VerifyQueuePort {
  sendBatch(entries: readonly QueueEntry[]): Promise<readonly FailedEntry[]>;
}

/** The port over the real SDK client and the verify queue's URL. */
export function sqsVerifyQueuePort(sqs: SQSClient, queueUrl: string): VerifyQueuePort {
  return {
    async sendBatch(entries) {
      const output = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries.map((e) => ({ Id: e.id, MessageBody: e.body })) }));
      const failed: FailedEntry[] = (output.Failed ?? []).map((f) => ({ id: f.Id ?? '', code: f.Code ?? 'Failed' }));
      // An entry neither in Successful nor in Failed was not taken either.
      const answered = new Set([...(output.Successful ?? []).map((s) => s.Id), ...failed.map((f) => f.id)]);
      for (const e of entries) if (!answered.has(e.id)) failed.push({ id: e.id, code: 'MissingResult' });
      return failed;
    },
  };
}

/** Splits entries into SendMessageBatch requests within {@link SQS_BATCH_LIMITS}. */
export function chunkEntries(entries: readonly QueueEntry[]): QueueEntry[][] {
  const chunks: QueueEntry[][] = [];
  let current: QueueEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.body, 'utf8');
    if (current.length > 0 && (current.length === SQS_BATCH_LIMITS.entries || bytes + size > SQS_BATCH_LIMITS.bytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Options of {@link sendDurably}. */
export interface SendDurablyOptions {
  /** Requests per entry before giving up. @defaultValue 3 */
  attempts?: number;
  /** Backoff between attempts. @defaultValue 100 ms to 1 s */
  backoff?: BackoffBounds;
  /** Random source for jitter. @defaultValue Math.random */
  random?: () => number;
}

/** What {@link sendDurably} achieved: ids SQS took, and the entries it still refused. */
export interface SendOutcome {
  sent: string[];
  failed: FailedEntry[];
}

/**
 * Sends entries to the verify queue in batches and retries the entries SQS refused (and whole
 * failed requests) with backoff, a bounded number of times. Never throws: the caller sees what is
 * durable and what is not, and confirms nothing to the BCB unless everything is.
 */
export async function sendDurably(port: VerifyQueuePort, entries: readonly QueueEntry[], options: SendDurablyOptions = {}): Promise<SendOutcome> {
  const attempts = options.attempts ?? 3;
  const backoff = options.backoff ?? { baseMs: 100, maxMs: 1_000 };
  const sent: string[] = [];
  let pending = [...entries];
  let failed: FailedEntry[] = [];
  for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
    if (attempt > 1) await sleep(backoffDelayMs(attempt - 1, backoff, options.random));
    failed = [];
    const results = await Promise.all(
      chunkEntries(pending).map(async (chunk) => {
        try {
          return await port.sendBatch(chunk);
        } catch (error) {
          const code = error instanceof Error ? error.name : 'Error';
          return chunk.map((e) => ({ id: e.id, code }));
        }
      }),
    );
    for (const r of results) failed.push(...r);
    const refused = new Set(failed.map((f) => f.id));
    for (const e of pending) if (!refused.has(e.id)) sent.push(e.id);
    pending = pending.filter((e) => refused.has(e.id));
  }
  return { sent, failed };
}
