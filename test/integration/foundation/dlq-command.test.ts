import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { sqsQueuePort } from '../../../shared/runtime/index.ts';
import type { Message } from '@aws-sdk/client-sqs';
import { waitUntil } from '../../support/wait-until.ts';

const SELO = fileURLToPath(new URL('../../../bin/selo.ts', import.meta.url));
let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack.close();
});

/** Runs the CLI in a child process, asynchronously: the stand-ins it talks to live in this process. */
function selo(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SELO, ...args], { env: { PATH: process.env.PATH ?? '', ...stack.env() }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

/**
 * `selo dlq list` hides what it shows for 2 s (its receive's visibility timeout): waits until the
 * DLQ hands the message out again, peeking with a visibility timeout of 0 so that it stays
 * visible. (fauxqs's queue counts only notice an expired visibility timeout on a receive.)
 */
async function visibleAgain(url: string, body: string): Promise<void> {
  await waitUntil('dead letter visible again', async () => {
    const peek = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
    return (peek.Messages ?? []).some((m) => m.Body === body);
  }, { timeoutMs: 15_000, intervalMs: 100 });
}

describe('selo dlq', () => {
  it('lists dead letters with their reason without consuming them, then replays them to the work queue', async () => {
    const queue = stack.provisioned?.queues.sign;
    if (queue === undefined) throw new Error('no sign queue');
    // Dead-letter a message the way the runtime does.
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"poison":true}' }));
    const received = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 5 }));
    const message = received.Messages?.[0] as Message;
    const port = sqsQueuePort(stack.clients.sqs, { key: 'sign', url: queue.url, dlqUrl: queue.dlqUrl });
    await port.sendToDeadLetter(message, { code: 'MALFORMED_EVENT', reason: 'malformed event: detail missing' });
    await port.delete(message);

    const listed = await selo('dlq', 'list', 'sign', '--json');
    expect(listed.status).toBe(0);
    const letters = JSON.parse(listed.stdout) as { code: string; reason: string; sourceQueue: string; preview: string }[];
    expect(letters).toEqual([expect.objectContaining({ code: 'MALFORMED_EVENT', reason: 'malformed event: detail missing', sourceQueue: 'sign', preview: '{"poison":true}' })]);
    // Listing twice shows the same message: nothing was consumed.
    await visibleAgain(queue.dlqUrl, '{"poison":true}');
    expect((JSON.parse((await selo('dlq', 'list', 'sign', '--json')).stdout) as unknown[]).length).toBe(1);

    await visibleAgain(queue.dlqUrl, '{"poison":true}');
    const replayed = await selo('dlq', 'replay', 'sign');
    expect(replayed.stdout).toContain('replayed 1 message(s) from selo-local-sign-dlq to selo-local-sign');
    expect(replayed.status).toBe(0);
    const back = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }));
    expect(back.Messages?.[0]?.Body).toBe('{"poison":true}');
    expect(back.Messages?.[0]?.MessageAttributes?.['selo-replayed-from-dlq']?.StringValue).toMatch(/^\d{4}-/);
    expect(JSON.parse((await selo('dlq', 'list', 'sign', '--json')).stdout)).toEqual([]);
  });

  it('names the queues when asked for one that does not exist', async () => {
    const result = await selo('dlq', 'list', 'nope');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('the queues are sign, transmit, verify, compensate, operations');
  });
});
