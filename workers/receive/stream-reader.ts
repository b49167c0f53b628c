import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import { classifyError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { backoffDelayMs, sleep } from './backoff.ts';
import type { BackoffBounds } from './backoff.ts';
import type { ForwardResult } from './forward-answer.ts';
import { STREAM_SLOTS, StreamLeaseLostError } from './stream-positions.ts';
import type { StreamPositionPort } from './stream-positions.ts';

/** The ICOM stream calls the reader makes (see `IcomStreamClient`). */
export interface IcomStreamPort {
  start(signal?: AbortSignal): Promise<IcomStreamAnswer>;
  next(pullNext: string, signal?: AbortSignal): Promise<IcomStreamAnswer>;
  close(pullNext: string): Promise<void>;
}

/** Counters of a {@link StreamReader}, for the demo and operators. */
export interface ReceiveStats {
  /** Streams open now (a `stream/start` answered and not abandoned). */
  streamsOpen: number;
  /** Messages read from the stream, duplicates included. */
  messagesRead: number;
  /** Messages put on the verify queue. */
  messagesForwarded: number;
  /** Messages dropped as duplicates of a `PI-ResourceId` already forwarded. */
  duplicatesDropped: number;
  /** Answers with messages confirmed to the BCB (next GET or DELETE after they were durable). */
  batchesConfirmed: number;
  /** Failures that made a stream back off (errors from the BCB, the verify queue or the audit trail). */
  failures: number;
  /** Streams (re)started with `stream/start`. */
  streamStarts: number;
  /** Streams continued from a position a previous owner saved (no `stream/start`). */
  streamsResumed: number;
  /** Positions that could not be saved (the store failed; reading went on). */
  positionSaveFailures: number;
}

/** Options of {@link StreamReader}. */
export interface StreamReaderOptions {
  /** The ICOM stream client. */
  icom: IcomStreamPort;
  /** Puts one answer's messages durably on the verify queue; rejects when it could not. */
  forward: (answer: IcomStreamAnswer) => Promise<ForwardResult>;
  logger: Logger;
  /** Parallel streams, 1 to 6 (ICOM allows 6 per participant). @defaultValue 6 */
  streams?: number;
  /** Backoff of a failing stream. @defaultValue 500 ms to 30 s */
  backoff?: BackoffBounds;
  /** How long `close` lets in-flight requests and forwarding finish before it aborts the requests. @defaultValue 10000 */
  closeTimeoutMs?: number;
  /** Random source for jitter. @defaultValue Math.random */
  random?: () => number;
  /**
   * Durable stream positions: with them, each stream holds a slot, saves its position after every
   * durable answer and a restarted reader resumes the saved streams instead of opening new ones.
   * @defaultValue none (every stream starts with `stream/start`; nothing survives a restart)
   */
  positions?: StreamPositionPort;
}

function positive(field: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`StreamReaderOptions.${field} must be an integer from 1 to ${max}, got ${String(value)}`);
  return value;
}

/** Where a stream loop stands. */
interface LoopState {
  /** The path to GET next: a `PI-Pull-Next`, or undefined for `stream/start`. */
  pullNext: string | undefined;
  /** Whether `pullNext` belongs to a stream this loop counts as open. */
  open: boolean;
  /** The position slot this loop holds, when positions are kept. */
  slot: number | undefined;
  /** The store failed at claim time: this stream is read without a slot until it ends. */
  unslotted: boolean;
  failures: number;
}

/**
 * Reads the ICOM stream with up to 6 parallel streams. Each stream loops: `stream/start`, then
 * the `PI-Pull-Next` of every answer. An answer is confirmed (its `PI-Pull-Next` followed, or
 * DELETEd at close) only after `forward` resolved, i.e. after every message in it is durable.
 * Any failure (429, 5xx, reset, timeout, unexpected 4xx, an unreadable body, a verify queue or
 * audit trail that does not take the messages) abandons the stream without confirming, backs off
 * (exponential, jittered, bounded) and starts a new stream; the BCB delivers what was not
 * confirmed again. Nothing a stream receives can end the loop: only `close` does.
 *
 * With `positions`, a stream survives its reader (issue 15). Each loop first claims one of the 6
 * slots; a slot its previous owner left with a position is resumed by GETting that position (a
 * restarted process continues the streams the BCB still counts for it, instead of being answered
 * 429 until they expire), and a position the BCB no longer knows (404/410) makes the loop start a
 * new stream. After every durable answer the loop saves that answer's `PI-Pull-Next` (the write
 * also renews the lease) and only then follows it: a saved position never confirms a batch that
 * was not durable, and a successor that GETs it reads at worst the batch after it once more
 * (at-least-once; the verify worker records that copy as a duplicate). A slot's lease is renewed
 * when no claim or save extended it for a third of its length (checked every sixth); a loop whose slot passed to another process stops using that stream without
 * DELETE. At close, a stream DELETEd frees its slot's position; one that could not be DELETEd
 * keeps it, for the next owner, and only the lease ends.
 */
export class StreamReader {
  readonly #icom: IcomStreamPort;
  readonly #forward: (answer: IcomStreamAnswer) => Promise<ForwardResult>;
  readonly #logger: Logger;
  readonly #streams: number;
  readonly #backoff: BackoffBounds;
  readonly #closeTimeoutMs: number;
  readonly #random: () => number;
  readonly #positions: StreamPositionPort | undefined;
  /** Aborts requests in flight once the close grace period ends. */
  readonly #abortRequests = new AbortController();
  /** Ends backoff sleeps at close. */
  readonly #stopSleeping = new AbortController();
  readonly #stats: ReceiveStats = {
    streamsOpen: 0, messagesRead: 0, messagesForwarded: 0, duplicatesDropped: 0, batchesConfirmed: 0, failures: 0, streamStarts: 0, streamsResumed: 0, positionSaveFailures: 0,
  };
  /** Slots held (or being claimed) by this reader's loops. */
  readonly #held = new Set<number>();
  /** Slots whose lease renewal found them held by another process. */
  readonly #lost = new Set<number>();
  /** When each held slot's lease was last extended (the start of its last successful claim, save or renewal), epoch ms. */
  readonly #extendedAt = new Map<number, number>();
  #renewTimer: NodeJS.Timeout | undefined;
  #loops: Promise<void>[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: StreamReaderOptions) {
    this.#icom = options.icom;
    this.#forward = options.forward;
    this.#logger = options.logger;
    this.#streams = positive('streams', options.streams ?? 6, 6);
    const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
    positive('backoff.baseMs', backoff.baseMs);
    positive('backoff.maxMs', backoff.maxMs);
    if (backoff.maxMs < backoff.baseMs) throw new RangeError(`StreamReaderOptions.backoff.maxMs must not be below baseMs (${backoff.baseMs}), got ${backoff.maxMs}`);
    this.#backoff = backoff;
    this.#closeTimeoutMs = positive('closeTimeoutMs', options.closeTimeoutMs ?? 10_000);
    this.#random = options.random ?? Math.random;
    this.#positions = options.positions;
    if (this.#positions !== undefined) positive('positions.leaseMs', this.#positions.leaseMs);
  }

  /** Starts the stream loops; calling it twice does nothing. */
  start(): void {
    if (this.#loops.length > 0 || this.#closing) return;
    if (this.#positions !== undefined) {
      // Ticks every sixth of a lease and renews what no claim or save extended for a third of one:
      // at most half a lease between extensions, so a failed or late renewal has another chance.
      this.#renewTimer = setInterval(() => void this.#renewLeases(), Math.max(1, Math.floor(this.#positions.leaseMs / 6)));
      this.#renewTimer.unref();
    }
    this.#loops = Array.from({ length: this.#streams }, (_, i) => this.#loop(i));
  }

  /** A copy of the counters. */
  stats(): ReceiveStats {
    return { ...this.#stats };
  }

  /**
   * Stops the loops: no new stream requests; a request in flight may finish within the grace
   * period, its messages are forwarded and, once durable, confirmed with DELETE, which also
   * closes the stream. After the grace period, requests still waiting (long polls) are aborted;
   * what they may have carried is unconfirmed and the BCB delivers it again. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#stopSleeping.abort();
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(this.#loops).then(() => true);
    const inTime = await Promise.race([all, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.#closeTimeoutMs)))]);
    clearTimeout(timer);
    if (!inTime) {
      this.#logger.warn({ closeTimeoutMs: this.#closeTimeoutMs }, 'stream requests still running at close; aborting them (unconfirmed messages come back)');
      this.#abortRequests.abort();
      await all;
    }
    clearInterval(this.#renewTimer);
  }

  /** Runs `write`, which extends `slot`'s lease when `extended` says so of its result, and records when it started. */
  async #extending<T>(slot: number, write: () => Promise<T>, extended: (result: T) => boolean = () => true): Promise<T> {
    const at = Date.now();
    const result = await write();
    if (extended(result)) this.#extendedAt.set(slot, at);
    return result;
  }

  /**
   * Renews the leases of the held slots that no claim or save extended in the last third of a
   * lease: a busy stream's saves renew its lease already, so only idle ones cost a write.
   */
  async #renewLeases(): Promise<void> {
    const positions = this.#positions;
    if (positions === undefined || this.#closing) return;
    const now = Date.now();
    const due = [...this.#held].filter((slot) => now - (this.#extendedAt.get(slot) ?? Number.NEGATIVE_INFINITY) >= positions.leaseMs / 3);
    await Promise.all(
      due.map(async (slot) => {
        try {
          await this.#extending(slot, () => positions.renew(slot));
        } catch (error) {
          if (error instanceof StreamLeaseLostError) this.#lost.add(slot);
          else this.#logger.warn({ slot, err: error, code: classifyError(error).code }, 'could not renew a stream slot lease');
        }
      }),
    );
  }

  /**
   * Claims a free slot (or one whose lease ended), waiting for the earliest lease to end when
   * another process holds them all. Undefined at close, or when the store failed (the caller
   * then reads a new stream without a slot: a store outage must not stop the payments).
   */
  async #claim(index: number, positions: StreamPositionPort): Promise<{ slot: number; pullNext: string | undefined } | undefined> {
    while (!this.#closing) {
      let earliest = Number.POSITIVE_INFINITY;
      for (let slot = 0; slot < STREAM_SLOTS && !this.#closing; slot++) {
        if (this.#held.has(slot)) continue;
        this.#held.add(slot);
        let claim;
        try {
          claim = await this.#extending(slot, () => positions.claim(slot), (c) => c.status === 'claimed');
        } catch (error) {
          this.#held.delete(slot);
          this.#logger.warn({ stream: index, slot, err: error, code: classifyError(error).code }, 'could not claim a stream slot; reading a new stream without one');
          return undefined;
        }
        if (claim.status === 'claimed') {
          this.#lost.delete(slot);
          return { slot, pullNext: claim.pullNext };
        }
        this.#held.delete(slot);
        earliest = Math.min(earliest, claim.until);
      }
      if (this.#closing) break;
      // Every free slot is someone else's: wait for the first lease to end (it may be renewed).
      const wait = Number.isFinite(earliest) ? Math.min(Math.max(earliest - Date.now(), 0) + 20, positions.leaseMs) : positions.leaseMs;
      this.#logger.debug({ stream: index, waitMs: wait }, 'every stream slot is held by another process; waiting for a lease to end');
      await sleep(wait, this.#stopSleeping.signal);
    }
    return undefined;
  }

  async #loop(index: number): Promise<void> {
    const state: LoopState = { pullNext: undefined, open: false, slot: undefined, unslotted: false, failures: 0 };
    const signal = this.#abortRequests.signal;
    while (!this.#closing) {
      if (this.#positions !== undefined && state.slot === undefined && !state.unslotted) {
        const claimed = await this.#claim(index, this.#positions);
        if (this.#closing) {
          if (claimed !== undefined) await this.#release(index, claimed.slot, false);
          break;
        }
        if (claimed === undefined) state.unslotted = true;
        else {
          state.slot = claimed.slot;
          state.pullNext = claimed.pullNext;
          if (claimed.pullNext !== undefined) this.#logger.info({ stream: index, slot: claimed.slot }, 'resuming a saved stream position');
        }
      }
      let answer: IcomStreamAnswer;
      try {
        const resuming = !state.open && state.pullNext !== undefined;
        if (state.pullNext === undefined) this.#stats.streamStarts++;
        // Following PI-Pull-Next confirms the previous answer, which was durable before we got here.
        answer = state.pullNext === undefined ? await this.#icom.start(signal) : await this.#icom.next(state.pullNext, signal);
        if (!state.open) {
          state.open = true;
          this.#stats.streamsOpen++;
          if (resuming) this.#stats.streamsResumed++;
        }
        if (answer.messages.length > 0) {
          this.#stats.messagesRead += answer.messages.length;
          const result = await this.#forward(answer);
          this.#stats.messagesForwarded += result.forwarded;
          this.#stats.duplicatesDropped += result.duplicates;
          this.#stats.batchesConfirmed++;
        }
        // The answer is durable: its PI-Pull-Next is where a successor may resume.
        if (state.slot !== undefined) await this.#save(state.slot, answer.pullNext);
        state.pullNext = answer.pullNext;
        state.failures = 0;
      } catch (error) {
        if (this.#closing && signal.aborted) {
          this.#abandon(state);
          break;
        }
        if (error instanceof StreamLeaseLostError) {
          // Another process resumed this slot's stream: it is theirs now, no DELETE.
          this.#logger.warn({ stream: index, slot: state.slot, code: error.code }, 'the stream slot passed to another process; leaving its stream to it');
          if (state.slot !== undefined) this.#held.delete(state.slot);
          state.slot = undefined;
          this.#abandon(state);
          continue;
        }
        state.failures++;
        this.#stats.failures++;
        const { code } = classifyError(error);
        // A predecessor's request still holds the stream: the position is good, try it again.
        const busy = code === 'ICOM_STREAM_BUSY' && state.pullNext !== undefined;
        if (!busy) {
          this.#abandon(state);
          state.unslotted = false;
        }
        this.#logFailure(index, error, state.failures);
        const retryAfterMs = typeof error === 'object' && error !== null && 'retryAfterMs' in error && typeof error.retryAfterMs === 'number' ? error.retryAfterMs : undefined;
        await sleep(backoffDelayMs(state.failures, this.#backoff, this.#random, retryAfterMs), this.#stopSleeping.signal);
        continue;
      }
    }
    if (state.open && state.pullNext !== undefined) await this.#confirmAndClose(index, state.pullNext, state.slot);
    else if (state.slot !== undefined) await this.#release(index, state.slot, false);
  }

  /** Stops counting the loop's stream as open and forgets its path (the slot, if any, stays held). */
  #abandon(state: LoopState): void {
    if (state.open) this.#stats.streamsOpen--;
    state.open = false;
    state.pullNext = undefined;
  }

  async #save(slot: number, pullNext: string): Promise<void> {
    if (this.#lost.has(slot)) throw new StreamLeaseLostError(slot);
    try {
      const positions = this.#positions;
      if (positions !== undefined) await this.#extending(slot, () => positions.save(slot, pullNext));
    } catch (error) {
      if (error instanceof StreamLeaseLostError) throw error;
      // Reading goes on (payments wait for nobody); a restart may then find an older position,
      // which the BCB answers 404, and start a new stream.
      this.#stats.positionSaveFailures++;
      this.#logger.warn({ slot, err: error, code: classifyError(error).code }, 'could not save the stream position; reading on');
    }
  }

  async #release(index: number, slot: number, closed: boolean): Promise<void> {
    try {
      await this.#positions?.release(slot, closed);
    } catch (error) {
      // The lease ends by itself; a stream not DELETEd keeps its saved position either way.
      this.#logger.warn({ stream: index, slot, err: error, code: classifyError(error).code }, 'could not release the stream slot');
    } finally {
      this.#held.delete(slot);
    }
  }

  async #confirmAndClose(index: number, pullNext: string, slot: number | undefined): Promise<void> {
    let closed = false;
    try {
      await this.#icom.close(pullNext);
      closed = true;
    } catch (error) {
      // The last answer was durable; if the DELETE did not confirm it, the BCB delivers it again
      // as another copy, which the verify worker records only.
      this.#logger.warn({ stream: index, err: error, code: classifyError(error).code }, 'could not close the stream with DELETE');
    } finally {
      this.#stats.streamsOpen--;
    }
    // A stream DELETEd is gone: so is its position. Otherwise the next owner resumes it.
    if (slot !== undefined && !this.#lost.has(slot)) await this.#release(index, slot, closed);
    else if (slot !== undefined) this.#held.delete(slot);
  }

  #logFailure(index: number, error: unknown, failures: number): void {
    const { code } = classifyError(error);
    const status = typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' ? error.status : undefined;
    const fields = { stream: index, code, status, failures, err: error };
    // An unexpected refusal or an unreadable answer needs a person; throttling and outages pass.
    if (code === 'ICOM_STREAM_REFUSED' || code === 'ICOM_STREAM_ANSWER_INVALID' || code === 'ICOM_MULTIPART_INVALID' || code === 'BCB_BODY_INVALID' || code === 'BCB_BODY_TOO_LARGE') {
      this.#logger.error(fields, 'stream answer refused or unreadable; not confirmed, backing off and restarting the stream');
    } else {
      this.#logger.warn(fields, 'stream failed; not confirmed, backing off and restarting the stream');
    }
  }
}
