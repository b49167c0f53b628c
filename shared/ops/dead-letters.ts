import { ChangeMessageVisibilityBatchCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { DEAD_LETTER_ATTRIBUTES } from '../runtime/index.ts';

/** A message sitting in a dead-letter queue, as operations see it. */
export interface DeadLetter {
  messageId: string;
  /** `selo-error-code`, or undefined when SQS's own redrive put it there (receive budget spent). */
  code: string | undefined;
  reason: string | undefined;
  sourceQueue: string | undefined;
  receiveCount: string | undefined;
  /** How many times the message was received from the DLQ (by inspection, too). */
  dlqReceiveCount: number;
  /** The first bytes of the body, to recognise it. */
  preview: string;
}

/**
 * Lists up to `max` messages of a DLQ without consuming them: each is received with a short
 * visibility timeout (so one listing sees each message once) and made visible again once the
 * listing is done, so a replay right after it finds them (the timeout is the fallback).
 */
export async function listDeadLetters(sqs: SQSClient, dlqUrl: string, max = 50): Promise<DeadLetter[]> {
  const seen = new Map<string, DeadLetter>();
  const handles: string[] = [];
  for (let round = 0; round < Math.ceil(max / 10) + 2 && seen.size < max; round += 1) {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 2, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
    );
    const messages = got.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages) {
      if (m.ReceiptHandle !== undefined) handles.push(m.ReceiptHandle);
      const attr = (name: string): string | undefined => m.MessageAttributes?.[name]?.StringValue;
      seen.set(m.MessageId ?? '', {
        messageId: m.MessageId ?? '',
        code: attr(DEAD_LETTER_ATTRIBUTES.code),
        reason: attr(DEAD_LETTER_ATTRIBUTES.reason),
        sourceQueue: attr(DEAD_LETTER_ATTRIBUTES.sourceQueue),
        receiveCount: attr(DEAD_LETTER_ATTRIBUTES.receiveCount),
        dlqReceiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '0'),
        preview: (m.Body ?? '').slice(0, 160),
      });
    }
  }
  for (let i = 0; i < handles.length; i += 10) {
    const entries = handles.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: 0 }));
    // Best effort: a handle that fails simply waits out its 2 s.
    await sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: entries })).catch(() => undefined);
  }
  return [...seen.values()].slice(0, max);
}

/** What {@link replayDeadLetters} did. */
export interface ReplayResult {
  replayed: number;
  /** Message ids left in the DLQ because sending them back failed. */
  failed: string[];
}

/**
 * Moves messages from a DLQ back to their work queue, oldest first, at most `max`: each is sent
 * to `targetUrl` (body and attributes kept, `selo-replayed-from-dlq` added) before it is deleted
 * from the DLQ, so a failure in between leaves a copy in the DLQ rather than none anywhere.
 * Replaying is safe because every step is idempotent (saga conditional writes).
 */
export async function replayDeadLetters(sqs: SQSClient, dlqUrl: string, targetUrl: string, max = 10): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: 0, failed: [] };
  while (result.replayed + result.failed.length < max) {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: Math.min(10, max - result.replayed - result.failed.length), WaitTimeSeconds: 0, VisibilityTimeout: 30, MessageAttributeNames: ['All'] }),
    );
    const messages = got.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages) {
      try {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: targetUrl,
            MessageBody: m.Body ?? '',
            MessageAttributes: { ...(m.MessageAttributes ?? {}), 'selo-replayed-from-dlq': { DataType: 'String', StringValue: new Date().toISOString() } },
          }),
        );
        await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle }));
        result.replayed += 1;
      } catch {
        result.failed.push(m.MessageId ?? '');
      }
    }
  }
  return result;
}
