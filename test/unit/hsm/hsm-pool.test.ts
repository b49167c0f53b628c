import { afterEach, describe, expect, it, vi } from 'vitest';
import { HsmPool } from '../../../shared/hsm/index.ts';
import type { HsmPoolOptions } from '../../../shared/hsm/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { FakePkcs11Error, FakePkcs11Port } from './fake-pkcs11-port.ts';

const silent = createLogger({ name: 'test', level: 'silent' });

function makePool(port: FakePkcs11Port, overrides: Partial<HsmPoolOptions> = {}): HsmPool {
  return new HsmPool({ modulePath: '/fake.so', tokenLabel: 't', pin: '1234', sessions: 2, metricsIntervalMs: 0, logger: silent, port, ...overrides });
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
};

afterEach(() => {
  vi.useRealTimers();
});

describe('HsmPool (fake PKCS#11)', () => {
  it('logs in once and opens the configured number of sessions', async () => {
    const port = new FakePkcs11Port();
    const pool = makePool(port, { sessions: 3 });
    await pool.start();
    expect(port.opens).toBe(3);
    expect(port.logins).toBe(1);
    expect(pool.health()).toMatchObject({ ready: true, state: 'ready', sessionsHealthy: 3, sessionsTotal: 3 });
    await pool.close();
  });

  it('never runs two operations on one session and serves waiters first-in first-out', async () => {
    const port = new FakePkcs11Port();
    port.autoComplete = false;
    const pool = makePool(port, { sessions: 2 });
    await pool.start();
    const order: number[] = [];
    const calls = Array.from({ length: 6 }, (_, i) => pool.sign(Buffer.from([i]), { label: 'signing' }).then(() => order.push(i)));
    await flush();
    expect(port.pending).toHaveLength(2);
    expect(pool.health()).toMatchObject({ inFlight: 2, waiting: 4 });
    while (port.pending.length > 0) {
      port.complete();
      await flush();
    }
    await Promise.all(calls);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(port.maxActivePerSession).toBe(1);
    await pool.close();
  });

  it('fails a caller with the transient HSM_BUSY after the acquire timeout', async () => {
    vi.useFakeTimers();
    const port = new FakePkcs11Port();
    port.autoComplete = false;
    const pool = makePool(port, { sessions: 1, acquireTimeoutMs: 100 });
    await pool.start();
    const first = pool.sign(Buffer.from('a'), { label: 'signing' });
    const second = pool.sign(Buffer.from('b'), { label: 'signing' }).catch((e: unknown) => e);
    await flush();
    await vi.advanceTimersByTimeAsync(101);
    expect(await second).toMatchObject({ code: 'HSM_BUSY', retryability: 'transient' });
    expect(pool.health().waiting).toBe(0);
    port.complete();
    await expect(first).resolves.toBeInstanceOf(Buffer);
    expect(pool.metrics().busy).toBe(1);
    await pool.close();
  });

  it('rejects at once with HSM_BUSY when the wait queue is full', async () => {
    const port = new FakePkcs11Port();
    port.autoComplete = false;
    const pool = makePool(port, { sessions: 1, maxWaiting: 1 });
    await pool.start();
    const first = pool.sign(Buffer.from('a'), { label: 'signing' });
    const second = pool.sign(Buffer.from('b'), { label: 'signing' });
    await expect(pool.sign(Buffer.from('c'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_BUSY' });
    port.complete();
    await flush();
    port.complete();
    await Promise.all([first, second]);
    await pool.close();
  });

  it('replaces a lost session and retries the signature once', async () => {
    const port = new FakePkcs11Port();
    const pool = makePool(port, { sessions: 1 });
    await pool.start();
    port.signFailures.push(0xb3);
    await expect(pool.sign(Buffer.from('a'), { label: 'signing' })).resolves.toEqual(Buffer.from('sig:a'));
    expect(port.opens).toBe(2);
    expect(pool.health().sessionsHealthy).toBe(1);
    await pool.close();
  });

  it('gives a transient HSM_SESSION_LOST when the replacement session fails too', async () => {
    const port = new FakePkcs11Port();
    const pool = makePool(port, { sessions: 1 });
    await pool.start();
    port.signFailures.push(0xb3, 0xb0);
    await expect(pool.sign(Buffer.from('a'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_SESSION_LOST', retryability: 'transient' });
    await expect(pool.sign(Buffer.from('b'), { label: 'signing' })).resolves.toBeInstanceOf(Buffer);
    await pool.close();
  });

  it('logs in again when the login was lost', async () => {
    const port = new FakePkcs11Port();
    const pool = makePool(port, { sessions: 1 });
    await pool.start();
    port.loggedIn = false;
    await expect(pool.sign(Buffer.from('a'), { label: 'signing' })).resolves.toBeInstanceOf(Buffer);
    expect(port.logins).toBe(2);
    await pool.close();
  });

  it('names the label of a missing key in a permanent HSM_KEY_NOT_FOUND', async () => {
    const port = new FakePkcs11Port();
    const pool = makePool(port);
    await pool.start();
    const error = await pool.sign(Buffer.from('a'), { label: 'ghost' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HSM_KEY_NOT_FOUND', retryability: 'permanent' });
    expect((error as Error).message).toContain('"ghost"');
    await pool.close();
  });

  it('re-initialises a failed module with backoff while callers get HSM_UNAVAILABLE', async () => {
    vi.useFakeTimers();
    const port = new FakePkcs11Port();
    const pool = makePool(port, { sessions: 2, recoveryInitialDelayMs: 100, recoveryMaxDelayMs: 400 });
    await pool.start();
    const states: string[] = [];
    pool.on('state', (health) => states.push(health.state));
    port.signFailures.push(0x32);
    port.initializeError = new FakePkcs11Error(0x30, 'C_Initialize');
    await expect(pool.sign(Buffer.from('a'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_DEVICE_ERROR', retryability: 'transient' });
    expect(pool.ready()).toBe(false);
    await expect(pool.sign(Buffer.from('b'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_UNAVAILABLE', retryability: 'transient' });
    await vi.advanceTimersByTimeAsync(100);
    expect(port.initializations).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(pool.ready()).toBe(false);
    port.initializeError = undefined;
    await vi.advanceTimersByTimeAsync(400);
    expect(pool.ready()).toBe(true);
    expect(port.initializations).toBe(2);
    expect(states).toEqual(['recovering', 'ready']);
    await expect(pool.sign(Buffer.from('c'), { label: 'signing' })).resolves.toBeInstanceOf(Buffer);
    await pool.close();
  });

  it('fails permanently on a wrong PIN, keeps the PIN out of the error and never retries it', async () => {
    vi.useFakeTimers();
    const port = new FakePkcs11Port();
    const pool = makePool(port, { pin: 'not-the-pin' });
    const error = await pool.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HSM_PIN_INCORRECT', retryability: 'permanent' });
    expect(JSON.stringify(error)).not.toContain('not-the-pin');
    expect((error as Error).message).not.toContain('not-the-pin');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(port.initializations).toBe(1);
    expect(pool.health()).toMatchObject({ ready: false, state: 'failed', lastError: { code: 'HSM_PIN_INCORRECT' } });
    await pool.close();
  });

  it('drains in-flight work on close, fails waiters with HSM_POOL_CLOSED, and is idempotent', async () => {
    const port = new FakePkcs11Port();
    port.autoComplete = false;
    const pool = makePool(port, { sessions: 1 });
    await pool.start();
    const running = pool.sign(Buffer.from('a'), { label: 'signing' });
    const waiting = pool.sign(Buffer.from('b'), { label: 'signing' }).catch((e: unknown) => e);
    await flush();
    const closing = pool.close();
    expect(pool.close()).toBe(closing);
    expect(await waiting).toMatchObject({ code: 'HSM_POOL_CLOSED', retryability: 'transient' });
    expect(port.finalizations).toBe(0);
    port.complete();
    await expect(running).resolves.toBeInstanceOf(Buffer);
    await closing;
    expect(port.finalizations).toBe(1);
    expect(port.openSessions.size).toBe(0);
    await expect(pool.sign(Buffer.from('c'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_POOL_CLOSED' });
  });

  it('emits metrics events with sessions, in-flight, waiting and latency', async () => {
    vi.useFakeTimers();
    const port = new FakePkcs11Port();
    const pool = makePool(port, { metricsIntervalMs: 1000 });
    const events: unknown[] = [];
    pool.on('metrics', (m) => events.push(m));
    await pool.start();
    await pool.sign(Buffer.from('a'), { label: 'signing' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ sessionsHealthy: 2, inFlight: 0, waiting: 0, signatures: 1, latencyMs: { count: 1 } });
    await pool.close();
  });

  it('rejects bad options naming the field', () => {
    expect(() => makePool(new FakePkcs11Port(), { sessions: 0 })).toThrow(/HsmPoolOptions\.sessions must be an integer between 1 and 256, got 0/);
    expect(() => makePool(new FakePkcs11Port(), { pin: '' })).toThrow(/HsmPoolOptions\.pin/);
  });
});
