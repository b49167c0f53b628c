import { ChangeMessageVisibilityCommand, DeleteMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { TransientError } from '../errors/index.ts';
import { Coalescer } from './coalescer.ts';
import type { Message, MessageAttributeValue, SQSClient } from '@aws-sdk/client-sqs';

/** Why a message was dead-lettered, attached as message attributes. */
export interface DeadLetterReason {
  /** `selo-error-code`: the stable error code. */
  code: string;
  /** `selo-error-reason`: a message safe to show operators. */
  reason: string;
}

/** Message attribute names the runtime writes on dead-lettered messages. */
export const DEAD_LETTER_ATTRIBUTES = {
  code: 'selo-error-code',
  reason: 'selo-error-reason',
  sourceQueue: 'selo-source-queue',
  receiveCount: 'selo-receive-count',
} as const;

/** The queue operations the runtime's decisions need; faked in unit tests. */
export interface QueuePort {
  /** Deletes the message from the work queue. */
  delete(message: Message): Promise<void>;
  /** Sets the message's visibility timeout (seconds from now). */
  changeVisibility(message: Message, seconds: number): Promise<void>;
  /** Copies the message to the DLQ with the reason attributes (does not delete it). */
  sendToDeadLetter(message: Message, reason: DeadLetterReason): Promise<void>;
}

/** Where a runtime's queue lives. */
export interface QueueAddress {
  /** Logical key (`sign`), written as `selo-source-queue`. */
  key: string;
  url: string;
  dlqUrl: string;
}

/** SQS attribute values: at most 256 KiB per message; the reason is trimmed well below that. */
function attribute(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value.length > 1024 ? `${value.slice(0, 1021)}...` : value === '' ? '-' : value };
}

/** The {@link QueuePort} over the real SQS client. */
export function sqsQueuePort(client: SQSClient, queue: QueueAddress): QueuePort {
  // Messages finished at about the same time are deleted with one DeleteMessageBatch (≤ 10).
  const deletes = new Coalescer<string, TransientError | undefined>({
    maxItems: 10,
    lingerMs: 2,
    flush: async (handles) => {
      const output = await client.send(new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: handles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })) }));
      const failed = new Map((output.Failed ?? []).map((f) => [f.Id, f]));
      return handles.map((_, i) => {
        const failure = failed.get(String(i));
        if (failure === undefined) return undefined;
        return new TransientError('SQS_DELETE_FAILED', `SQS did not delete the message: ${failure.Code ?? 'unknown'} ${failure.Message ?? ''}`.trim());
      });
    },
  });
  return {
    async delete(message) {
      const failure = await deletes.submit(message.ReceiptHandle ?? '');
      if (failure !== undefined) throw failure;
    },
    async changeVisibility(message, seconds) {
      await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: seconds }));
    },
    async sendToDeadLetter(message, reason) {
      // Original attributes are kept (SQS allows 10 per message; ours take 4).
      const original = Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).slice(0, 6));
      await client.send(
        new SendMessageCommand({
          QueueUrl: queue.dlqUrl,
          MessageBody: message.Body === undefined || message.Body === '' ? '(empty body)' : message.Body,
          MessageAttributes: {
            ...original,
            [DEAD_LETTER_ATTRIBUTES.code]: attribute(reason.code),
            [DEAD_LETTER_ATTRIBUTES.reason]: attribute(reason.reason),
            [DEAD_LETTER_ATTRIBUTES.sourceQueue]: attribute(queue.key),
            [DEAD_LETTER_ATTRIBUTES.receiveCount]: attribute(message.Attributes?.ApproximateReceiveCount ?? '1'),
          },
        }),
      );
    },
  };
}
