/**
 * Whether a failure is worth retrying.
 *
 * - `transient`: the same input may succeed later (network, throttling, a busy HSM). The runtime
 *   backs off and lets the queue redeliver.
 * - `permanent`: the same input will fail again (malformed message, bad signature, wrong PIN). The
 *   runtime skips retries and hands the message to compensation or the DLQ.
 */
export type Retryability = 'transient' | 'permanent';

/** Options accepted by {@link SeloError}. */
export interface SeloErrorOptions {
  /** The error that caused this one; kept for operators, never shown to peers. */
  cause?: unknown;
  /** Structured, non-secret facts about the failure (field names, limits, ids). */
  details?: Readonly<Record<string, unknown>>;
  /**
   * For a transient failure: the least time before the retry is worth trying, seconds, as a peer
   * asked for it (an HTTP `Retry-After`). The runtime never retries sooner; its own backoff may
   * wait longer. @defaultValue none (the runtime's backoff alone)
   */
  retryAfterSeconds?: number;
}

/**
 * Base class of every error selo raises on purpose.
 *
 * Callers branch on {@link SeloError.code} (a stable UPPER_SNAKE identifier) and
 * {@link SeloError.retryability}, never on the message text. Messages are for people and must
 * never contain secrets (PINs, keys) or personal data.
 */
export class SeloError extends Error {
  /** Stable machine-readable identifier, UPPER_SNAKE. */
  readonly code: string;
  /** Whether retrying the same input may succeed. */
  readonly retryability: Retryability;
  /** Structured, non-secret facts about the failure. */
  readonly details: Readonly<Record<string, unknown>>;
  /** The least delay before a retry a peer asked for, seconds ({@link SeloErrorOptions.retryAfterSeconds}). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: string, retryability: Retryability, message: string, options: SeloErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryability = retryability;
    this.details = options.details ?? {};
    const after = options.retryAfterSeconds;
    this.retryAfterSeconds = after !== undefined && Number.isFinite(after) && after > 0 ? after : undefined;
  }

  /** A JSON-safe view for logs and failure events (no stack, no cause chain of foreign errors). */
  toJSON(): { name: string; code: string; retryability: Retryability; message: string; details: Readonly<Record<string, unknown>> } {
    return { name: this.name, code: this.code, retryability: this.retryability, message: this.message, details: this.details };
  }
}

/** A failure that may succeed when retried later. */
export class TransientError extends SeloError {
  constructor(code: string, message: string, options?: SeloErrorOptions) {
    super(code, 'transient', message, options);
  }
}

/** A failure that will not succeed when retried with the same input. */
export class PermanentError extends SeloError {
  constructor(code: string, message: string, options?: SeloErrorOptions) {
    super(code, 'permanent', message, options);
  }
}

/** The result of {@link classifyError}. */
export interface ErrorClassification {
  /** Whether to retry. Unknown errors are transient. */
  retryability: Retryability;
  /** Stable code: the SeloError's, or `UNKNOWN_ERROR` for foreign errors. */
  code: string;
  /** A message safe to log. */
  message: string;
  /** The least delay before a retry a peer asked for, seconds, when the error carries one. */
  retryAfterSeconds?: number;
}

/**
 * The one place that decides whether a failure is retried (HOUSE_STYLE rule 2).
 *
 * SeloErrors carry their own classification; anything else is treated as transient, because an
 * unknown failure that is retried wastes a receive, while one that is dropped may lose a payment.
 * The queue's `maxReceiveCount` bounds the retries either way.
 */
export function classifyError(error: unknown): ErrorClassification {
  if (error instanceof SeloError) {
    return { retryability: error.retryability, code: error.code, message: error.message, ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }) };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { retryability: 'transient', code: 'UNKNOWN_ERROR', message };
}
