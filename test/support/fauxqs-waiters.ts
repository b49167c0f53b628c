/** What this reads of fauxqs's queue (`SqsQueue` in fauxqs/dist/sqs/sqsStore.js, 2.4.1). */
interface WaitingQueue {
  url: string;
  pollWaiters: unknown[];
  waitForMessages: (this: WaitingQueue, waitTimeSeconds: number) => Promise<void>;
}

const seen = new Map<string, WaitingQueue>();
let watching: Promise<void> | undefined;

/**
 * Notes every fauxqs queue a long poll waits on, so that {@link waitingPolls} can count the
 * ReceiveMessage calls the in-process stand-in holds for a queue. Call before the polls start.
 * Tests of long polling wait for their polls to be held instead of sleeping and hoping they are.
 */
export function watchFauxqsWaiters(): Promise<void> {
  watching ??= (async () => {
    // The module instance fauxqs itself uses (as infra/local/sqs-long-poll.ts loads it).
    const store = (await import(new URL('./sqs/sqsStore.js', import.meta.resolve('fauxqs')).href)) as { SqsQueue?: { prototype: WaitingQueue } };
    const proto = store.SqsQueue?.prototype;
    if (proto === undefined || typeof proto.waitForMessages !== 'function') throw new Error('fauxqs SqsQueue.waitForMessages not found: another fauxqs version?');
    const original = proto.waitForMessages;
    proto.waitForMessages = function waitForMessages(this: WaitingQueue, waitTimeSeconds: number): Promise<void> {
      seen.set(this.url, this);
      return original.call(this, waitTimeSeconds);
    };
  })();
  return watching;
}

/** Long polls fauxqs holds now for the queue at `queueUrl` (0 before one waited on it). */
export function waitingPolls(queueUrl: string): number {
  for (const [url, queue] of seen) {
    // fauxqs may spell the host differently from the URL the client was given; the path is the queue.
    if (new URL(url).pathname === new URL(queueUrl).pathname) return queue.pollWaiters.length;
  }
  return 0;
}
