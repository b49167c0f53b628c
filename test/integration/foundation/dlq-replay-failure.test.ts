import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { replayDeadLetters } from '../../../shared/ops/dead-letters.ts';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack.close();
});

async function held(url: string): Promise<number> {
  const { Attributes } = await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
}

describe('dead-letter replay', () => {
  it('leaves a message in the DLQ when sending it back to the work queue fails (sent first, deleted only after)', async () => {
    const queue = stack.provisioned?.queues.verify;
    if (queue === undefined) throw new Error('no verify queue');
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.dlqUrl, MessageBody: '{"dead":true}' }));
    expect(await held(queue.dlqUrl)).toBe(1);
    // A work queue that does not exist: every send fails.
    const missing = queue.url.replace(/selo-local-verify$/, 'selo-local-no-such-queue');
    const result = await replayDeadLetters(stack.clients.sqs, queue.dlqUrl, missing, 5);
    expect(result.replayed).toBe(0);
    expect(result.failed).toHaveLength(1);
    expect(await held(queue.dlqUrl)).toBe(1);
  });
});
