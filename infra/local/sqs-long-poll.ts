// fauxqs 2.4.1 wakes every waiting ReceiveMessage of a queue when one message arrives
// (`SqsQueue.notifyWaiters` in dist/sqs/sqsStore.js): with 4 pollers on a queue, one message makes
// 3 of them return empty and poll again. Amazon SQS long polling answers a waiting request only
// when it has messages for it (or at WaitTimeSeconds), so locally every message cost three
// needless round trips on both ends. This wakes only as many waiters as the ready messages need.

/** A waiting ReceiveMessage as fauxqs keeps it. */
interface PollWaiter {
  resolve(): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The parts of fauxqs's queue this relies on; checked before patching. */
interface WaitingQueue {
  pollWaiters: PollWaiter[];
  messages: unknown[];
  isFifo(): boolean;
  notifyWaiters: (this: WaitingQueue) => void;
}

/** Messages one ReceiveMessage takes at most (SQS `MaxNumberOfMessages` ≤ 10). */
const MESSAGES_PER_RECEIVE = 10;

/** Waiters woken in this turn of the event loop; each takes its messages before the next turn. */
const wokenThisTurn = new WeakMap<WaitingQueue, number>();

function isWaitingQueuePrototype(value: unknown): value is WaitingQueue {
  if (typeof value !== 'object' || value === null) return false;
  const proto = value as Record<string, unknown>;
  return typeof proto['notifyWaiters'] === 'function' && typeof proto['isFifo'] === 'function' && typeof proto['waitForMessages'] === 'function' && typeof proto['dequeue'] === 'function';
}

function isWaitingQueue(queue: unknown): queue is WaitingQueue {
  const q = queue as Partial<WaitingQueue>;
  return Array.isArray(q.pollWaiters) && Array.isArray(q.messages);
}

/**
 * Wakes `ceil(ready / 10)` waiters of a standard queue, less those already woken in this turn
 * (a SendMessageBatch enqueues one message at a time, and the waiters woken by the first have not
 * dequeued yet). A woken waiter that finds fewer messages than expected leaves the rest to
 * fauxqs's own 20 ms timer, which notifies again while messages are ready. FIFO queues keep
 * fauxqs's behaviour.
 */
function notifyAsNeeded(this: WaitingQueue, original: (this: WaitingQueue) => void): void {
  if (this.isFifo() || !isWaitingQueue(this)) {
    original.call(this);
    return;
  }
  const woken = wokenThisTurn.get(this) ?? 0;
  const wanted = Math.ceil(this.messages.length / MESSAGES_PER_RECEIVE) - woken;
  let count = 0;
  while (count < wanted) {
    const waiter = this.pollWaiters.shift();
    if (waiter === undefined) break;
    clearTimeout(waiter.timer);
    waiter.resolve();
    count += 1;
  }
  if (count === 0) return;
  if (woken === 0) setImmediate(() => wokenThisTurn.delete(this));
  wokenThisTurn.set(this, woken + count);
}

let patched: Promise<boolean> | undefined;

/**
 * Makes the local SQS stand-in wake only the long polls that will receive something, as Amazon
 * SQS does. Idempotent. Resolves false, changing nothing, when fauxqs's queue is not shaped as
 * this expects (another fauxqs version): the stand-in then still works, only with more empty
 * receives.
 */
export function fixFauxqsLongPolling(): Promise<boolean> {
  patched ??= (async () => {
    // The queue class is not exported; its module is loaded by URL, which is the module
    // instance fauxqs itself uses.
    const storeUrl = new URL('./sqs/sqsStore.js', import.meta.resolve('fauxqs'));
    let module: Record<string, unknown>;
    try {
      module = (await import(storeUrl.href)) as Record<string, unknown>;
    } catch {
      return false;
    }
    const queueClass = module['SqsQueue'];
    const proto: unknown = typeof queueClass === 'function' ? (queueClass as { prototype: unknown }).prototype : undefined;
    if (!isWaitingQueuePrototype(proto)) return false;
    const original = proto.notifyWaiters;
    proto.notifyWaiters = function notifyWaiters(this: WaitingQueue): void {
      notifyAsNeeded.call(this, original);
    };
    return true;
  })();
  return patched;
}
