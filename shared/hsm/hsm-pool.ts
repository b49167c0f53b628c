import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { PermanentError } from '../errors/index.ts';
import { createLogger } from '../logging/index.ts';
import type { Logger } from '../logging/index.ts';
import { NO_METRICS } from '../metrics/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { CKR, ckrOf, hsmError, recoveryOf, toHsmError } from './hsm-errors.ts';
import type { HsmError } from './hsm-errors.ts';
import { createPkcs11jsPort } from './pkcs11-port.ts';
import type { KeyRef, Pkcs11Handle, Pkcs11Port } from './pkcs11-port.ts';

/** Options of {@link HsmPool}. Defaults are applied and checked once, in the constructor. */
export interface HsmPoolOptions {
  /** Path of the PKCS#11 library (CloudHSM's or SoftHSM's). */
  modulePath: string;
  /** Label of the token to use. */
  tokenLabel: string;
  /** The crypto user's PIN. Never logged, never put in an error. */
  pin: string;
  /**
   * Sessions kept open; each runs at most one operation at a time.
   * @defaultValue 4
   */
  sessions?: number;
  /**
   * Callers allowed to wait for a session; beyond that `sign` fails at once with `HSM_BUSY`.
   * @defaultValue 1000
   */
  maxWaiting?: number;
  /**
   * How long a caller waits for a session before failing with `HSM_BUSY`.
   * @defaultValue 5000
   */
  acquireTimeoutMs?: number;
  /**
   * First delay before re-initialising a failed module; doubles up to `recoveryMaxDelayMs`.
   * @defaultValue 250
   */
  recoveryInitialDelayMs?: number;
  /**
   * Longest delay between module re-initialisation attempts.
   * @defaultValue 10000
   */
  recoveryMaxDelayMs?: number;
  /**
   * Interval of the `metrics` event; 0 turns the timer off ({@link HsmPool.metrics} still works).
   * @defaultValue 10000
   */
  metricsIntervalMs?: number;
  /**
   * Largest signature the keys produce, in bytes (512 covers RSA-4096).
   * @defaultValue 512
   */
  maxSignatureLength?: number;
  /**
   * The PKCS#11 binding.
   * @defaultValue the pkcs11js binding ({@link createPkcs11jsPort})
   */
  port?: Pkcs11Port;
  /**
   * Logger for state changes and failures.
   * @defaultValue a pino logger named `selo.hsm`
   */
  logger?: Logger;
  /**
   * Where each signature's wait for a session and the sessions then in use (`HsmPoolWait`,
   * `HsmSessionsInUse`) and every HSM failure (`HsmErrors`) are recorded.
   * @defaultValue metrics off
   */
  metrics?: Metrics;
}

/** Where the pool is in its life. */
export type HsmPoolState = 'new' | 'starting' | 'ready' | 'degraded' | 'recovering' | 'failed' | 'closing' | 'closed';

/** The pool's health, for readiness probes and `selo up`. */
export interface HsmHealth {
  /** True when at least one session can sign. */
  ready: boolean;
  /** Life-cycle state. */
  state: HsmPoolState;
  /** Sessions configured. */
  sessionsTotal: number;
  /** Sessions open and usable. */
  sessionsHealthy: number;
  /** Operations running now. */
  inFlight: number;
  /** Callers waiting for a session. */
  waiting: number;
  /** The last failure that changed the state, if any (code and message only). */
  lastError?: { code: string; message: string };
}

/** Sign latency over a metrics window, in milliseconds. */
export interface LatencySummary {
  /** Signatures measured. */
  count: number;
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** Slowest. */
  max: number;
}

/** One `metrics` event: the health plus counters since the previous event. */
export interface HsmPoolMetrics extends HsmHealth {
  /** ISO time of the snapshot. */
  at: string;
  /** Length of the window the counters cover, in milliseconds. */
  windowMs: number;
  /** Signatures produced in the window. */
  signatures: number;
  /** Failed sign calls in the window (all causes). */
  failures: number;
  /** Sign calls rejected with `HSM_BUSY` in the window. */
  busy: number;
  /** Sign latency (acquire + sign) of successful calls in the window. */
  latencyMs?: LatencySummary;
}

/** Events of {@link HsmPool}. */
export interface HsmPoolEvents {
  /** A periodic snapshot (every `metricsIntervalMs`). */
  metrics: [HsmPoolMetrics];
  /** The state changed. */
  state: [HsmHealth];
}

interface Slot {
  readonly index: number;
  handle: Pkcs11Handle | undefined;
  busy: boolean;
  broken: boolean;
  reopenTimer: NodeJS.Timeout | undefined;
}

interface Waiter {
  resolve: (slot: Slot) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const LATENCY_SAMPLES = 10_000;

function describeKey(ref: KeyRef): string {
  const parts: string[] = [];
  if (ref.label !== undefined) parts.push(`label ${JSON.stringify(ref.label)}`);
  if (ref.id !== undefined) parts.push(`id ${ref.id.toString('hex')}`);
  return parts.join(' and ');
}

function keyCacheKey(ref: KeyRef): string {
  return `${ref.label ?? ''}\u0000${ref.id?.toString('hex') ?? ''}`;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}

function invalidOption(field: string, problem: string): PermanentError {
  return new PermanentError('HSM_POOL_OPTIONS_INVALID', `HsmPoolOptions.${field} ${problem}`, { details: { field } });
}

function integerOption(value: number | undefined, field: string, fallback: number, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) {
    throw invalidOption(field, `must be an integer between ${min} and ${max}, got ${String(chosen)}`);
  }
  return chosen;
}

/**
 * One pool of PKCS#11 sessions per process, shared by every worker in it (issue 3).
 *
 * - Loads the module, initialises it with `CKF_OS_LOCKING_OK`, logs in once as the crypto user
 *   and opens `sessions` sessions; key handles are found by label and/or id and cached.
 * - {@link HsmPool.sign} signs with `CKM_SHA256_RSA_PKCS` on the libuv thread pool; a session
 *   runs at most one operation at a time (PKCS#11 §5.1: one active operation per session);
 *   callers wait in a bounded FIFO queue and fail with the transient `HSM_BUSY` after
 *   `acquireTimeoutMs`.
 * - Failures never crash the process: broken sessions are replaced, a lost login is redone,
 *   a failed module is re-initialised with exponential backoff while callers get transient
 *   errors; a wrong or locked PIN is permanent and is never retried (retrying would lock it).
 * - Emits `metrics` periodically and `state` on every change; {@link HsmPool.close} is
 *   idempotent, drains in-flight operations and runs every cleanup step.
 */
export class HsmPool extends EventEmitter<HsmPoolEvents> {
  readonly #modulePath: string;
  readonly #tokenLabel: string;
  readonly #pin: string;
  readonly #maxWaiting: number;
  readonly #acquireTimeoutMs: number;
  readonly #recoveryInitialDelayMs: number;
  readonly #recoveryMaxDelayMs: number;
  readonly #metricsIntervalMs: number;
  readonly #maxSignatureLength: number;
  readonly #port: Pkcs11Port;
  readonly #logger: Logger;
  readonly #metrics: Metrics;

  readonly #slots: Slot[];
  readonly #waiters: Waiter[] = [];
  readonly #keys = new Map<string, Pkcs11Handle>();
  readonly #drainWaiters: (() => void)[] = [];

  #state: HsmPoolState = 'new';
  #lastError: HsmError | undefined;
  #fatal: HsmError | undefined;
  #tokenSlot: Pkcs11Handle | undefined;
  #ownsInitialization = false;
  #initialized = false;
  #needsLogin = false;
  #busyCount = 0;
  #recovering = false;
  #recoverySleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  #metricsTimer: NodeJS.Timeout | undefined;
  #startPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;

  #windowStart = performance.now();
  #latencies: number[] = [];
  #signatures = 0;
  #failures = 0;
  #busy = 0;

  constructor(options: HsmPoolOptions) {
    super();
    if (typeof options.modulePath !== 'string' || options.modulePath === '') throw invalidOption('modulePath', 'must be a non-empty path');
    if (typeof options.tokenLabel !== 'string' || options.tokenLabel === '' || options.tokenLabel.length > 32) {
      throw invalidOption('tokenLabel', `must be 1 to 32 characters, got ${JSON.stringify(options.tokenLabel)}`);
    }
    if (typeof options.pin !== 'string' || options.pin === '') throw invalidOption('pin', 'must be set (value hidden)');
    this.#modulePath = options.modulePath;
    this.#tokenLabel = options.tokenLabel;
    this.#pin = options.pin;
    const sessions = integerOption(options.sessions, 'sessions', 4, 1, 256);
    this.#maxWaiting = integerOption(options.maxWaiting, 'maxWaiting', 1000, 0, 1_000_000);
    this.#acquireTimeoutMs = integerOption(options.acquireTimeoutMs, 'acquireTimeoutMs', 5000, 1, 600_000);
    this.#recoveryInitialDelayMs = integerOption(options.recoveryInitialDelayMs, 'recoveryInitialDelayMs', 250, 1, 600_000);
    this.#recoveryMaxDelayMs = integerOption(options.recoveryMaxDelayMs, 'recoveryMaxDelayMs', 10_000, this.#recoveryInitialDelayMs, 3_600_000);
    this.#metricsIntervalMs = integerOption(options.metricsIntervalMs, 'metricsIntervalMs', 10_000, 0, 3_600_000);
    this.#maxSignatureLength = integerOption(options.maxSignatureLength, 'maxSignatureLength', 512, 64, 8192);
    this.#port = options.port ?? createPkcs11jsPort();
    this.#logger = options.logger ?? createLogger({ name: 'selo.hsm' });
    this.#metrics = options.metrics ?? NO_METRICS;
    this.#slots = Array.from({ length: sessions }, (_, index) => ({ index, handle: undefined, busy: false, broken: false, reopenTimer: undefined }));
  }

  /**
   * Connects to the HSM. Resolves once the first attempt is over: ready, or recovering in the
   * background (check {@link HsmPool.ready}). Rejects only with a permanent error (wrong or
   * locked PIN, bad options), after which the pool stays failed and never retries the PIN.
   */
  start(): Promise<void> {
    this.#startPromise ??= Promise.resolve().then(() => this.#start());
    return this.#startPromise;
  }

  #start(): void {
    if (this.#state !== 'new') return;
    this.#setState('starting');
    if (this.#metricsIntervalMs > 0) {
      this.#metricsTimer = setInterval(() => this.emit('metrics', this.#takeMetrics(true)), this.#metricsIntervalMs);
      this.#metricsTimer.unref();
    }
    try {
      this.#connect();
      this.#setState(this.#computeReadyState());
    } catch (error) {
      const failure = toHsmError(error, 'HSM start');
      if (failure.retryability === 'permanent') {
        this.#fail(failure);
        throw failure;
      }
      void this.#recover(failure, false);
    }
  }

  /** True when a `sign` call can be served now. */
  ready(): boolean {
    return (this.#state === 'ready' || this.#state === 'degraded') && this.#healthyCount() > 0;
  }

  /** The pool's health. */
  health(): HsmHealth {
    const health: HsmHealth = {
      ready: this.ready(),
      state: this.#state,
      sessionsTotal: this.#slots.length,
      sessionsHealthy: this.#healthyCount(),
      inFlight: this.#inFlight(),
      waiting: this.#waiters.length,
    };
    if (this.#lastError !== undefined) health.lastError = { code: this.#lastError.code, message: this.#lastError.message };
    return health;
  }

  /** The current metrics snapshot, without starting a new window. */
  metrics(): HsmPoolMetrics {
    return this.#takeMetrics(false);
  }

  /**
   * Signs `data` with `CKM_SHA256_RSA_PKCS` (RSA PKCS#1 v1.5 over SHA-256, computed in the HSM)
   * using the private key `keyRef`. Runs off the event loop.
   *
   * Fails with a transient error (`HSM_BUSY`, `HSM_UNAVAILABLE`, `HSM_SESSION_LOST`, …) when a
   * retry later may succeed and a permanent one (`HSM_KEY_NOT_FOUND` naming the key,
   * `HSM_PIN_INCORRECT`, `HSM_MECHANISM_INVALID`, …) otherwise. A session or login lost in
   * the middle is repaired and the signature tried once more before failing.
   */
  async sign(data: Buffer, keyRef: KeyRef): Promise<Buffer> {
    if (keyRef.label === undefined && keyRef.id === undefined) {
      throw hsmError('HSM_KEY_REF_INVALID', false, 'HSM sign: the key reference needs a label or an id', { recovery: 'none' });
    }
    let lastError: HsmError | undefined;
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const started = performance.now();
      // Fast path without a promise hop when a session is free (the common case).
      let slot: Slot;
      try {
        slot = this.#tryAcquire() ?? await this.#waitForSlot();
      } catch (error) {
        this.#failures += 1;
        throw error;
      }
      this.#metrics.observe('HsmPoolWait', {}, performance.now() - started);
      this.#metrics.observe('HsmSessionsInUse', {}, this.#busyCount);
      try {
        const session = slot.handle;
        if (session === undefined) throw hsmError('HSM_SESSION_LOST', true, 'HSM sign: session is gone', { recovery: 'session' });
        if (this.#needsLogin) {
          this.#login(session);
          this.#needsLogin = false;
        }
        this.#port.signInit(session, this.#findKey(session, keyRef));
        const signature = await this.#port.sign(session, data, this.#maxSignatureLength);
        this.#recordLatency(performance.now() - started);
        return signature;
      } catch (error) {
        lastError = toHsmError(error, `HSM sign with key ${describeKey(keyRef)}`);
        this.#afterFailure(slot, lastError);
      } finally {
        this.#release(slot);
      }
      const recovery = recoveryOf(lastError);
      if (recovery !== 'session' && recovery !== 'login' && recovery !== 'key') break;
      if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') break;
    }
    this.#failures += 1;
    throw lastError ?? hsmError('HSM_ERROR', true, 'HSM sign failed', { recovery: 'none' });
  }

  /** Closes the pool: fails waiting callers, drains in-flight operations, closes sessions, finalises and unloads the module. Idempotent. */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#setState('closing');
    if (this.#metricsTimer !== undefined) clearInterval(this.#metricsTimer);
    this.#metricsTimer = undefined;
    this.#wakeRecovery();
    this.#rejectWaiters(() => hsmError('HSM_POOL_CLOSED', true, 'HSM pool is closing', { recovery: 'none' }));
    await this.#drain();
    const steps: [string, () => void][] = [
      ['close sessions', () => this.#closeSessions()],
      ['finalize module', () => this.#finalize()],
      ['unload module', () => this.#port.unload()],
    ];
    for (const [name, step] of steps) {
      try {
        step();
      } catch (error) {
        const failure = toHsmError(error, `HSM close: ${name}`);
        this.#logger.warn({ code: failure.code, step: name, err: failure.message }, 'hsm pool close step failed');
      }
    }
    this.#setState('closed');
  }

  // ---- connection ------------------------------------------------------------------------

  #connect(): void {
    this.#port.load(this.#modulePath);
    this.#ownsInitialization = this.#port.initialize() === 'initialized';
    this.#initialized = true;
    try {
      const slot = this.#port.findSlotByTokenLabel(this.#tokenLabel);
      if (slot === undefined) {
        throw hsmError('HSM_TOKEN_NOT_PRESENT', true, `HSM start: no initialised token labelled ${JSON.stringify(this.#tokenLabel)}`, { recovery: 'module', tokenLabel: this.#tokenLabel });
      }
      this.#tokenSlot = slot;
      let loggedIn = false;
      for (const entry of this.#slots) {
        entry.handle = this.#port.openSession(slot);
        entry.broken = false;
        if (!loggedIn) {
          this.#login(entry.handle);
          loggedIn = true;
        }
      }
      this.#needsLogin = false;
    } catch (error) {
      this.#closeSessions();
      try {
        this.#finalize();
      } catch {
        // The module is being abandoned; a failing C_Finalize changes nothing.
      }
      throw error;
    }
  }

  #login(session: Pkcs11Handle): void {
    try {
      this.#port.login(session, this.#pin);
    } catch (error) {
      // Login state belongs to the application, not the session (PKCS#11 §5.4): another
      // session may already have logged in.
      if (ckrOf(error) === CKR.USER_ALREADY_LOGGED_IN) return;
      throw toHsmError(error, 'HSM login');
    }
  }

  #closeSessions(): void {
    for (const slot of this.#slots) {
      if (slot.reopenTimer !== undefined) clearTimeout(slot.reopenTimer);
      slot.reopenTimer = undefined;
      const handle = slot.handle;
      slot.handle = undefined;
      slot.broken = false;
      if (handle === undefined) continue;
      try {
        this.#port.closeSession(handle);
      } catch {
        // Already closed behind our back or the module is gone: nothing left to release.
      }
    }
    this.#keys.clear();
  }

  #finalize(): void {
    if (!this.#initialized) return;
    this.#initialized = false;
    // Another component of this process initialised the module first; finalising would pull
    // it from under that component.
    if (this.#ownsInitialization) this.#port.finalize();
  }

  async #recover(cause: HsmError, teardown = true): Promise<void> {
    if (this.#recovering || this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    this.#recovering = true;
    try {
      this.#lastError = cause;
      this.#setState('recovering');
      this.#logger.warn({ code: cause.code, err: cause.message }, 'hsm module failed; re-initialising with backoff');
      this.#metrics.count('HsmErrors', {});
      this.#rejectWaiters(() => hsmError('HSM_UNAVAILABLE', true, `HSM unavailable: ${cause.message}`, { recovery: 'none' }, cause));
      // C_Finalize while a C_Sign runs on a worker thread would pull the library's state from
      // under it, so wait for in-flight operations first.
      await this.#drain();
      if (teardown) {
        this.#closeSessions();
        try {
          this.#finalize();
        } catch {
          // A module that failed may fail to finalise too; it is re-initialised below anyway.
        }
      }
      let delay = this.#recoveryInitialDelayMs;
      while (this.#state === 'recovering') {
        await this.#sleep(delay);
        if (this.#state !== 'recovering') return;
        try {
          this.#connect();
          this.#lastError = undefined;
          this.#setState(this.#computeReadyState());
          this.#logger.info({ sessions: this.#healthyCount() }, 'hsm module recovered');
          this.#dispatch();
          return;
        } catch (error) {
          const failure = toHsmError(error, 'HSM re-initialise');
          if (failure.retryability === 'permanent' && recoveryOf(failure) === 'none') {
            this.#fail(failure);
            return;
          }
          this.#lastError = failure;
          this.#logger.warn({ code: failure.code, err: failure.message, nextDelayMs: Math.min(delay * 2, this.#recoveryMaxDelayMs) }, 'hsm re-initialise failed');
          this.#metrics.count('HsmErrors', {});
          delay = Math.min(delay * 2, this.#recoveryMaxDelayMs);
        }
      }
    } catch (error) {
      // Recovery must never reject (it runs detached); record and stay unavailable.
      this.#lastError = toHsmError(error, 'HSM recovery');
    } finally {
      this.#recovering = false;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#recoverySleep = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.#recoverySleep = { timer, wake: resolve };
    });
  }

  #wakeRecovery(): void {
    const sleep = this.#recoverySleep;
    this.#recoverySleep = undefined;
    if (sleep !== undefined) {
      clearTimeout(sleep.timer);
      sleep.wake();
    }
  }

  #fail(error: HsmError): void {
    this.#fatal = error;
    this.#lastError = error;
    this.#setState('failed');
    this.#logger.error({ code: error.code, err: error.message }, 'hsm pool failed permanently');
    this.#metrics.count('HsmErrors', {});
    this.#rejectWaiters(() => error);
    // Operations still running on worker threads must end before C_Finalize.
    void this.#drain().then(() => {
      if (this.#state !== 'failed') return;
      this.#closeSessions();
      try {
        this.#finalize();
      } catch {
        // Nothing more to release.
      }
    });
  }

  // ---- sessions --------------------------------------------------------------------------

  #unusableError(): HsmError | undefined {
    switch (this.#state) {
      case 'ready':
      case 'degraded':
        return undefined;
      case 'failed':
        return this.#fatal;
      case 'closing':
      case 'closed':
        return hsmError('HSM_POOL_CLOSED', true, 'HSM pool is closed', { recovery: 'none' });
      case 'new':
        return hsmError('HSM_UNAVAILABLE', true, 'HSM pool not started', { recovery: 'none' });
      default: {
        const reason = this.#lastError === undefined ? '' : `: ${this.#lastError.message}`;
        return hsmError('HSM_UNAVAILABLE', true, `HSM unavailable (${this.#state})${reason}`, { recovery: 'none' }, this.#lastError);
      }
    }
  }

  /** A free session, marked busy, or undefined (then the caller queues). Throws when unusable. */
  #tryAcquire(): Slot | undefined {
    const unusable = this.#unusableError();
    if (unusable !== undefined) throw unusable;
    if (this.#waiters.length > 0) return undefined;
    for (const slot of this.#slots) {
      if (!slot.busy && !slot.broken && slot.handle !== undefined) {
        slot.busy = true;
        this.#busyCount += 1;
        return slot;
      }
    }
    return undefined;
  }

  #waitForSlot(): Promise<Slot> {
    if (this.#waiters.length >= this.#maxWaiting) {
      this.#busy += 1;
      return Promise.reject(hsmError('HSM_BUSY', true, `HSM busy: ${this.#waiters.length} callers already waiting for a session`, { recovery: 'none', waiting: this.#waiters.length }));
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          this.#busy += 1;
          reject(hsmError('HSM_BUSY', true, `HSM busy: no session free within ${this.#acquireTimeoutMs} ms`, { recovery: 'none', acquireTimeoutMs: this.#acquireTimeoutMs }));
        }, this.#acquireTimeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  #findKey(session: Pkcs11Handle, keyRef: KeyRef): Pkcs11Handle {
    const cacheKey = keyCacheKey(keyRef);
    const cached = this.#keys.get(cacheKey);
    if (cached !== undefined) return cached;
    const handles = this.#port.findPrivateKeys(session, keyRef);
    const [first] = handles;
    if (first === undefined) {
      throw hsmError('HSM_KEY_NOT_FOUND', false, `HSM key not found: no private key with ${describeKey(keyRef)} on token ${JSON.stringify(this.#tokenLabel)}`, {
        recovery: 'none',
        ...(keyRef.label === undefined ? {} : { keyLabel: keyRef.label }),
        ...(keyRef.id === undefined ? {} : { keyId: keyRef.id.toString('hex') }),
      });
    }
    if (handles.length > 1) {
      throw hsmError('HSM_KEY_AMBIGUOUS', false, `HSM key ambiguous: ${handles.length} private keys with ${describeKey(keyRef)}; give an id too`, { recovery: 'none' });
    }
    this.#keys.set(cacheKey, first);
    return first;
  }

  #afterFailure(slot: Slot, error: HsmError): void {
    this.#logger.warn({ code: error.code, session: slot.index, err: error.message }, 'hsm operation failed');
    this.#metrics.count('HsmErrors', {});
    switch (recoveryOf(error)) {
      case 'session':
        slot.broken = true;
        break;
      case 'login':
        this.#needsLogin = true;
        break;
      case 'key':
        this.#keys.clear();
        break;
      case 'module':
        void this.#recover(error);
        break;
      case 'none':
        break;
    }
  }

  #release(slot: Slot): void {
    slot.busy = false;
    this.#busyCount -= 1;
    if (this.#state === 'ready' || this.#state === 'degraded') {
      if (slot.broken) {
        this.#reopen(slot);
        this.#updateReadyState();
      }
      this.#dispatch();
    }
    if (this.#busyCount === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  #reopen(slot: Slot): void {
    const old = slot.handle;
    slot.handle = undefined;
    if (old !== undefined) {
      try {
        this.#port.closeSession(old);
      } catch {
        // Usually already invalid; that is why it is being replaced.
      }
    }
    const tokenSlot = this.#tokenSlot;
    try {
      if (tokenSlot === undefined) throw hsmError('HSM_UNAVAILABLE', true, 'HSM token slot unknown', { recovery: 'module' });
      const handle = this.#port.openSession(tokenSlot);
      slot.handle = handle;
      slot.broken = false;
      // Closing the last session logs the application out (PKCS#11 §5.6), so a fresh
      // session may need a fresh login; an existing login answers USER_ALREADY_LOGGED_IN.
      this.#login(handle);
      this.#needsLogin = false;
      this.#logger.info({ session: slot.index }, 'hsm session replaced');
    } catch (error) {
      const failure = toHsmError(error, 'HSM reopen session');
      slot.broken = true;
      if (failure.retryability === 'permanent' && recoveryOf(failure) === 'none') {
        this.#fail(failure);
        return;
      }
      if (recoveryOf(failure) === 'module') {
        void this.#recover(failure);
        return;
      }
      this.#logger.warn({ code: failure.code, session: slot.index, err: failure.message }, 'hsm session reopen failed; retrying later');
      slot.reopenTimer = setTimeout(() => {
        slot.reopenTimer = undefined;
        if (!slot.busy && (this.#state === 'ready' || this.#state === 'degraded')) {
          this.#reopen(slot);
          this.#dispatch();
          this.#updateReadyState();
        }
      }, this.#recoveryInitialDelayMs);
      slot.reopenTimer.unref();
    }
  }

  #dispatch(): void {
    while (this.#waiters.length > 0) {
      const free = this.#slots.find((slot) => !slot.busy && !slot.broken && slot.handle !== undefined);
      if (free === undefined) return;
      const waiter = this.#waiters.shift();
      if (waiter === undefined) return;
      clearTimeout(waiter.timer);
      free.busy = true;
      this.#busyCount += 1;
      waiter.resolve(free);
    }
  }

  #rejectWaiters(makeError: () => Error): void {
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(makeError());
    }
  }

  #drain(): Promise<void> {
    if (this.#busyCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #inFlight(): number {
    return this.#busyCount;
  }

  #healthyCount(): number {
    return this.#slots.filter((slot) => slot.handle !== undefined && !slot.broken).length;
  }

  #computeReadyState(): HsmPoolState {
    return this.#healthyCount() === this.#slots.length ? 'ready' : 'degraded';
  }

  #updateReadyState(): void {
    if (this.#state === 'ready' || this.#state === 'degraded') this.#setState(this.#computeReadyState());
  }

  #setState(state: HsmPoolState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', this.health());
  }

  // ---- metrics ---------------------------------------------------------------------------

  #recordLatency(ms: number): void {
    this.#signatures += 1;
    if (this.#latencies.length < LATENCY_SAMPLES) this.#latencies.push(ms);
    else this.#latencies[this.#signatures % LATENCY_SAMPLES] = ms;
  }

  #takeMetrics(reset: boolean): HsmPoolMetrics {
    const now = performance.now();
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const snapshot: HsmPoolMetrics = {
      ...this.health(),
      at: new Date().toISOString(),
      windowMs: Math.round(now - this.#windowStart),
      signatures: this.#signatures,
      failures: this.#failures,
      busy: this.#busy,
    };
    if (sorted.length > 0) {
      snapshot.latencyMs = { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 };
    }
    if (reset) {
      this.#windowStart = now;
      this.#latencies = [];
      this.#signatures = 0;
      this.#failures = 0;
      this.#busy = 0;
    }
    return snapshot;
  }
}
