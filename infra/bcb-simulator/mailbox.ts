import { randomBytes } from 'node:crypto';

/** A message waiting on, or delivered through, a participant's stream. */
export interface OutboundMessage {
  /** The `PI-ResourceId` it is delivered with, every time. */
  readonly resourceId: string;
  readonly toIspb: string;
  /** e.g. `pacs.002`. */
  readonly type: string;
  /** The signed XML; signing happens on first delivery and is remembered. */
  readonly content: () => Promise<string>;
}

/** One open stream (ICOM `stream/start` … `PI-Pull-Next` … `DELETE`). */
export interface StreamState {
  readonly id: string;
  readonly ispb: string;
  /** Iteration number; the current `PI-Pull-Next` names it. */
  seq: number;
  /** Delivered on this stream and not yet confirmed. */
  inflight: OutboundMessage[];
  /** A request is being answered (long poll included). */
  busy: boolean;
  closed: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/** Counters of one participant's streams (for tests and operators). */
export interface StreamCounters {
  /** `stream/start` requests that opened a stream. */
  started: number;
  /** `stream/start` requests answered 429 because the participant's streams were all open. */
  refused: number;
  /** Streams closed because nobody read them for the idle timeout (their unconfirmed messages went back). */
  expired: number;
  /** Re-reads of an iteration already answered that delivered its unconfirmed batch again (see {@link Mailbox.redeliver}). */
  reread: number;
}

/** Callbacks of a {@link Mailbox}. */
export interface MailboxHooks {
  /** A message was handed to a stream. */
  delivered(message: OutboundMessage): void;
  /** A message was confirmed. */
  confirmed(message: OutboundMessage): void;
  /** Whether this delivery should be repeated later (the duplicate fault). */
  duplicate(): boolean;
}

/**
 * The outbound queue of one participant and its streams. Messages leave in order; a stream's
 * delivered batch is confirmed when the client follows `PI-Pull-Next` or sends `DELETE`
 * (ICOM manual); a stream that goes idle, or is closed otherwise, puts its unconfirmed messages
 * back at the front, to be delivered again with the same `PI-ResourceId`.
 *
 * Abandoned streams. What the BCB's texts say: following the `PI-Pull-Next` of an answer is what
 * confirms it (Manual das Interfaces de Comunicação §2.2.2.2, as the BCB restated it in
 * bacen/pix-perguntas-e-respostas#50); `DELETE` interrupts a stream and confirms its last answer
 * (§2.2.2.5, quoted in #321); a client may abandon a stream and open another with
 * `stream/start` (§2.2.2, quoted in #321); the limit is 6 simultaneous requests on the output
 * endpoint, 429 beyond (§2.2.2.10, the BCB's answers in #346 and #236). No BCB text was found on
 * how long the BCB keeps a stream nobody reads, on what it answers for an expired one, or on
 * whether an iteration may be read again; the manual's text itself was not available to the
 * search (only its table of contents, v1.8, and its revision history, IN BCB 225/2022). This
 * simulator therefore assumes, consistently with §2.2.2.2's at-least-once delivery:
 * - a stream stays open, and counts towards the participant's `maxStreams` (stricter than the
 *   BCB's "6 simultaneous requests": an idle stream counts too), until nobody has requested it
 *   for `streamIdleTimeoutMs`; then it is closed, its unconfirmed messages go back to the queue,
 *   and its paths are answered 404;
 * - until then its current `PI-Pull-Next` may be followed by any client holding it (a restarted
 *   receiver continues the stream where its predecessor stopped), and the iteration before it
 *   may be read again ({@link Mailbox.redeliver}): that delivers once more, with the same
 *   `PI-ResourceId`s, the batch nobody confirmed, and confirms nothing.
 */
export class Mailbox {
  readonly ispb: string;
  private queue: OutboundMessage[] = [];
  private head = 0;
  private readonly waiters = new Set<() => void>();
  private readonly duplicated = new WeakSet<OutboundMessage>();
  readonly streams = new Map<string, StreamState>();
  private readonly hooks: MailboxHooks;
  private readonly idleTimeoutMs: number;
  /** Counters since the simulator started. */
  readonly counters: StreamCounters = { started: 0, refused: 0, expired: 0, reread: 0 };

  constructor(ispb: string, hooks: MailboxHooks, idleTimeoutMs: number) {
    this.ispb = ispb;
    this.hooks = hooks;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Messages waiting (not delivered, or returned for redelivery). */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** Adds a message at the end (or, for redeliveries, the front) and wakes a waiting stream. */
  enqueue(message: OutboundMessage, front = false): void {
    if (front) {
      this.compact();
      this.queue.unshift(message);
    } else {
      this.queue.push(message);
    }
    const [waiter] = this.waiters;
    if (waiter !== undefined) {
      this.waiters.delete(waiter);
      waiter();
    }
  }

  /** Opens a stream, or returns undefined when `max` streams are already open. */
  open(max: number): StreamState | undefined {
    if (this.streams.size >= max) {
      this.counters.refused++;
      return undefined;
    }
    this.counters.started++;
    const stream: StreamState = { id: randomBytes(12).toString('hex'), ispb: this.ispb, seq: 0, inflight: [], busy: false, closed: false, idleTimer: undefined };
    this.streams.set(stream.id, stream);
    this.touch(stream);
    return stream;
  }

  /** Restarts the idle timer of a stream (every request does). */
  touch(stream: StreamState): void {
    if (stream.idleTimer !== undefined) clearTimeout(stream.idleTimer);
    stream.idleTimer = setTimeout(() => {
      if (!stream.closed) this.counters.expired++;
      this.close(stream, false);
    }, this.idleTimeoutMs);
    stream.idleTimer.unref();
  }

  /** Confirms what the stream delivered last. */
  confirm(stream: StreamState): void {
    for (const message of stream.inflight) this.hooks.confirmed(message);
    stream.inflight = [];
  }

  /** Closes a stream; unconfirmed messages go back to the front unless `confirm`. */
  close(stream: StreamState, confirm: boolean): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.idleTimer !== undefined) clearTimeout(stream.idleTimer);
    this.streams.delete(stream.id);
    if (confirm) this.confirm(stream);
    else {
      for (const message of [...stream.inflight].reverse()) this.enqueue(message, true);
      stream.inflight = [];
    }
  }

  /**
   * Takes up to `max` messages for `stream`, waiting up to `waitMs` for the first one (long
   * poll); resolves with none when idle or when `signal` aborts.
   */
  async take(stream: StreamState, max: number, waitMs: number, signal: AbortSignal): Promise<OutboundMessage[]> {
    if (this.size === 0 && waitMs > 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        signal.addEventListener('abort', done);
        this.waiters.add(done);
      });
    }
    if (stream.closed || signal.aborted) return [];
    const batch: OutboundMessage[] = [];
    while (batch.length < max && this.size > 0) {
      const message = this.queue[this.head++];
      if (message === undefined) break;
      batch.push(message);
      this.hooks.delivered(message);
      // A deliberate duplicate is delivered once more, later, with the same PI-ResourceId.
      if (!this.duplicated.has(message) && this.hooks.duplicate()) {
        this.duplicated.add(message);
        this.queue.push(message);
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) this.compact();
    stream.inflight.push(...batch);
    // Other waiters may have something to take too.
    if (this.size > 0) {
      const [waiter] = this.waiters;
      if (waiter !== undefined) {
        this.waiters.delete(waiter);
        waiter();
      }
    }
    return batch;
  }

  /**
   * The batch `stream` delivered last and nobody confirmed, delivered again (same messages, same
   * `PI-ResourceId`s) for a client that re-reads the iteration whose answer it never got; at most
   * `max` of them, the rest back at the front of the queue. Empty when the last answer was empty
   * (or already confirmed).
   */
  redeliver(stream: StreamState, max: number): OutboundMessage[] {
    this.counters.reread++;
    const batch = stream.inflight.slice(0, max);
    for (const message of stream.inflight.slice(max).reverse()) this.enqueue(message, true);
    stream.inflight = batch;
    for (const message of batch) this.hooks.delivered(message);
    return batch;
  }

  /** Closes every stream (their unconfirmed messages stay queued) and wakes long polls. */
  shutdown(): void {
    for (const stream of [...this.streams.values()]) this.close(stream, false);
    for (const waiter of [...this.waiters]) waiter();
  }

  private compact(): void {
    if (this.head === 0) return;
    this.queue = this.queue.slice(this.head);
    this.head = 0;
  }
}
