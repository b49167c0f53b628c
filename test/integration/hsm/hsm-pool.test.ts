import { verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logging/index.ts';
import { createPkcs11jsPort, HsmPool, loadPkcs11js, TokenSession } from '../../../shared/hsm/index.ts';
import type { HsmPoolOptions, Pkcs11Handle, Pkcs11Port } from '../../../shared/hsm/index.ts';
import { SeloError } from '../../../shared/errors/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const silent = createLogger({ name: 'test', level: 'silent' });

/** Wraps the real port to record, per session, how many operations overlap. */
function instrumented(port: Pkcs11Port): { port: Pkcs11Port; maxOverlap: () => number; sessions: () => Set<string>; signs: () => number } {
  const active = new Map<string, number>();
  const seen = new Set<string>();
  let maxOverlap = 0;
  let signs = 0;
  const enter = (session: Pkcs11Handle): string => {
    const key = session.toString('hex');
    const count = (active.get(key) ?? 0) + 1;
    active.set(key, count);
    seen.add(key);
    maxOverlap = Math.max(maxOverlap, count);
    return key;
  };
  const leave = (key: string): void => {
    active.set(key, (active.get(key) ?? 1) - 1);
  };
  return {
    port: {
      ...port,
      signInit(session, key) {
        // C_SignInit starts the operation that C_Sign finishes: count the pair as one.
        enter(session);
        try {
          port.signInit(session, key);
        } catch (error) {
          leave(session.toString('hex'));
          throw error;
        }
      },
      async sign(session, data, max) {
        try {
          signs += 1;
          return await port.sign(session, data, max);
        } finally {
          leave(session.toString('hex'));
        }
      },
    },
    maxOverlap: () => maxOverlap,
    sessions: () => seen,
    signs: () => signs,
  };
}

let token: TestToken;
let publicKey: KeyObject;

beforeAll(() => {
  token = createTestToken();
  token.generateKey('signing');
  const session = TokenSession.open({ modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
  try {
    publicKey = session.publicKey({ label: 'signing' });
  } finally {
    session.close();
  }
});

afterAll(() => token.cleanup());

function options(overrides: Partial<HsmPoolOptions> = {}): HsmPoolOptions {
  return { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, sessions: 4, metricsIntervalMs: 0, logger: silent, ...overrides };
}

describe('HsmPool against SoftHSM', () => {
  it('produces 3,000 concurrent signatures over 4 sessions that all verify, never two operations on one session', async () => {
    const probe = instrumented(createPkcs11jsPort());
    const pool = new HsmPool(options({ port: probe.port, maxWaiting: 5000 }));
    await pool.start();
    expect(pool.ready()).toBe(true);
    const messages = Array.from({ length: 3000 }, (_, i) => Buffer.from(`pacs.008 message ${i}`));
    const signatures = await Promise.all(messages.map((m) => pool.sign(m, { label: 'signing' })));
    const bad = signatures.filter((signature, i) => !verify('sha256', messages[i] ?? Buffer.alloc(0), publicKey, signature));
    expect(bad).toHaveLength(0);
    expect(probe.signs()).toBe(3000);
    expect(probe.maxOverlap()).toBe(1);
    expect(probe.sessions().size).toBe(4);
    const metrics = pool.metrics();
    expect(metrics.signatures).toBe(3000);
    expect(metrics.latencyMs?.p99).toBeGreaterThan(0);
    await pool.close();
    await pool.close();
    expect(pool.health().state).toBe('closed');
  });

  it('keeps the event loop free while signing (async C_Sign on the libuv pool)', async () => {
    // A ticker counts turns of the event loop; each C_Sign notes the count when it starts and when
    // it returns. A C_Sign on the libuv pool lets the loop turn while it runs; a synchronous one
    // holds the loop, so its count never moves, however fast or slow the machine.
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const real = createPkcs11jsPort();
    const turnsDuringSign: number[] = [];
    const port: Pkcs11Port = {
      ...real,
      async sign(session, data, max) {
        const before = turns;
        try {
          return await real.sign(session, data, max);
        } finally {
          turnsDuringSign.push(turns - before);
        }
      },
    };
    const pool = new HsmPool(options({ port }));
    try {
      await pool.start();
      const signatures = await Promise.all(Array.from({ length: 800 }, (_, i) => pool.sign(Buffer.from(`m${i}`), { label: 'signing' })));
      expect(signatures.every((signature, i) => verify('sha256', Buffer.from(`m${i}`), publicKey, signature))).toBe(true);
    } finally {
      ticking = false;
      await pool.close();
    }
    expect(turnsDuringSign).toHaveLength(800);
    // Not every one: a C_Sign started by a callback in the check phase may finish before the next.
    expect(turnsDuringSign.filter((n) => n > 0).length).toBeGreaterThan(400);
  });

  it('replaces a session closed behind its back; callers succeed or get a transient error', async () => {
    const probe = instrumented(createPkcs11jsPort());
    const pool = new HsmPool(options({ port: probe.port }));
    await pool.start();
    await pool.sign(Buffer.from('warm-up'), { label: 'signing' });
    const pkcs11js = loadPkcs11js();
    const intruder = new pkcs11js.PKCS11();
    intruder.load(token.modulePath);
    // The module is already initialised by the pool in this process; the intruder shares it.
    for (const hex of probe.sessions()) intruder.C_CloseSession(Buffer.from(hex, 'hex'));
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => pool.sign(Buffer.from(`after ${i}`), { label: 'signing' })));
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toBeInstanceOf(SeloError);
        expect((result.reason as SeloError).retryability).toBe('transient');
      }
    }
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(150);
    const after = await pool.sign(Buffer.from('after repair'), { label: 'signing' });
    expect(verify('sha256', Buffer.from('after repair'), publicKey, after)).toBe(true);
    expect(pool.health().sessionsHealthy).toBe(4);
    expect(probe.maxOverlap()).toBe(1);
    await pool.close();
  });

  it('fails with a permanent error naming the label for a missing key, and keeps serving others', async () => {
    const pool = new HsmPool(options());
    await pool.start();
    const error = await pool.sign(Buffer.from('x'), { label: 'no-such-key' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SeloError);
    expect(error).toMatchObject({ code: 'HSM_KEY_NOT_FOUND', retryability: 'permanent' });
    expect((error as Error).message).toContain('"no-such-key"');
    await expect(pool.sign(Buffer.from('x'), { label: 'signing' })).resolves.toBeInstanceOf(Buffer);
    await pool.close();
  });

  it('reports a wrong PIN as a permanent error without the PIN, and the process lives on', async () => {
    const pool = new HsmPool(options({ pin: 'wrong-pin-0000' }));
    const error = await pool.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HSM_PIN_INCORRECT', retryability: 'permanent' });
    expect((error as Error).message).toMatch(/PIN/);
    expect(JSON.stringify(error)).not.toContain('wrong-pin-0000');
    expect((error as Error).message).not.toContain('wrong-pin-0000');
    expect(pool.ready()).toBe(false);
    await expect(pool.sign(Buffer.from('x'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_PIN_INCORRECT' });
    await pool.close();
    // The right PIN still works afterwards: the failed attempt did not break the module.
    const good = new HsmPool(options());
    await good.start();
    await expect(good.sign(Buffer.from('x'), { label: 'signing' })).resolves.toBeInstanceOf(Buffer);
    await good.close();
  });

  it('is not ready while the module is missing, fails transiently, and recovers when it appears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'selo-module-'));
    const modulePath = join(dir, 'libpkcs11-late.so');
    const pool = new HsmPool(options({ modulePath, recoveryInitialDelayMs: 50, recoveryMaxDelayMs: 200 }));
    await pool.start();
    expect(pool.ready()).toBe(false);
    expect(pool.health().state).toBe('recovering');
    await expect(pool.sign(Buffer.from('x'), { label: 'signing' })).rejects.toMatchObject({ code: 'HSM_UNAVAILABLE', retryability: 'transient' });
    const ready = new Promise<void>((resolve) => pool.on('state', (health) => { if (health.ready) resolve(); }));
    symlinkSync(token.modulePath, modulePath);
    await ready;
    const signature = await pool.sign(Buffer.from('late'), { label: 'signing' });
    expect(verify('sha256', Buffer.from('late'), publicKey, signature)).toBe(true);
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
