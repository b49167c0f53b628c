import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import { classifyError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { backoffDelayMs, sleep } from './backoff.ts';
import type { BackoffBounds } from './backoff.ts';
import type { ForwardResult } from './forward-answer.ts';

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
}

function positive(field: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`StreamReaderOptions.${field} must be an integer from 1 to ${max}, got ${String(value)}`);
  return value;
}

/**
 * Reads the ICOM stream with up to 6 parallel streams. Each stream loops: `stream/start`, then
 * the `PI-Pull-Next` of every answer. An answer is confirmed (its `PI-Pull-Next` followed, or
 * DELETEd at close) only after `forward` resolved, i.e. after every message in it is durable.
 * Any failure (429, 5xx, reset, timeout, unexpected 4xx, an unreadable body, a verify queue or
 * audit trail that does not take the messages) abandons the stream without confirming, backs off
 * (exponential, jittered, bounded) and starts a new stream; the BCB delivers what was not
 * confirmed again. Nothing a stream receives can end the loop: only `close` does.
 */
export class StreamReader {
  readonly #icom: IcomStreamPort;
  readonly #forward: (answer: IcomStreamAnswer) => Promise<ForwardResult>;
  readonly #logger: Logger;
  readonly #streams: number;
  readonly #backoff: BackoffBounds;
  readonly #closeTimeoutMs: number;
  readonly #random: () => number;
  /** Aborts requests in flight once the close grace period ends. */
  readonly #abortRequests = new AbortController();
  /** Ends backoff sleeps at close. */
  readonly #stopSleeping = new AbortController();
  readonly #stats: ReceiveStats = { streamsOpen: 0, messagesRead: 0, messagesForwarded: 0, duplicatesDropped: 0, batchesConfirmed: 0, failures: 0, streamStarts: 0 };
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
  }

  /** Starts the stream loops; calling it twice does nothing. */
  start(): void {
    if (this.#loops.length > 0 || this.#closing) return;
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
  }

  async #loop(index: number): Promise<void> {
    let pullNext: string | undefined;
    let failures = 0;
    const signal = this.#abortRequests.signal;
    while (!this.#closing) {
      let answer: IcomStreamAnswer;
      try {
        if (pullNext === undefined) this.#stats.streamStarts++;
        // Following PI-Pull-Next confirms the previous answer, which was durable before we got here.
        answer = pullNext === undefined ? await this.#icom.start(signal) : await this.#icom.next(pullNext, signal);
        if (pullNext === undefined) this.#stats.streamsOpen++;
        pullNext = answer.pullNext;
        if (answer.messages.length > 0) {
          this.#stats.messagesRead += answer.messages.length;
          const result = await this.#forward(answer);
          this.#stats.messagesForwarded += result.forwarded;
          this.#stats.duplicatesDropped += result.duplicates;
          this.#stats.batchesConfirmed++;
        }
        failures = 0;
      } catch (error) {
        if (pullNext !== undefined) this.#stats.streamsOpen--;
        // Abandon the stream without confirming: its unconfirmed answer comes back on another.
        pullNext = undefined;
        if (this.#closing && signal.aborted) break;
        failures++;
        this.#stats.failures++;
        this.#logFailure(index, error, failures);
        const retryAfterMs = typeof error === 'object' && error !== null && 'retryAfterMs' in error && typeof error.retryAfterMs === 'number' ? error.retryAfterMs : undefined;
        await sleep(backoffDelayMs(failures, this.#backoff, this.#random, retryAfterMs), this.#stopSleeping.signal);
        continue;
      }
    }
    if (pullNext !== undefined) await this.#confirmAndClose(index, pullNext);
  }

  async #confirmAndClose(index: number, pullNext: string): Promise<void> {
    try {
      await this.#icom.close(pullNext);
    } catch (error) {
      // The last answer was durable; if the DELETE did not confirm it, the BCB delivers it again
      // and the dedupe markers drop it.
      this.#logger.warn({ stream: index, err: error, code: classifyError(error).code }, 'could not close the stream with DELETE');
    } finally {
      this.#stats.streamsOpen--;
    }
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
