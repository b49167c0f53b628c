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
    if (this.streams.size >= max) return undefined;
    const stream: StreamState = { id: randomBytes(12).toString('hex'), ispb: this.ispb, seq: 0, inflight: [], busy: false, closed: false, idleTimer: undefined };
    this.streams.set(stream.id, stream);
    this.touch(stream);
    return stream;
  }

  /** Restarts the idle timer of a stream (every request does). */
  touch(stream: StreamState): void {
    if (stream.idleTimer !== undefined) clearTimeout(stream.idleTimer);
    stream.idleTimer = setTimeout(() => this.close(stream, false), this.idleTimeoutMs);
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
