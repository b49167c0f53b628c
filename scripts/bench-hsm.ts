// `selo hsm bench`: PKCS#11 signing throughput through the pool, through pkcs11js directly,
// and with node:crypto as a software baseline, all in one run (HOUSE_STYLE 15: a script that
// prints figures, never a test).
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../shared/logging/index.ts';
import { HsmPool, loadPkcs11js } from '../shared/hsm/index.ts';

/** Options of {@link runHsmBench}. */
export interface HsmBenchOptions {
  /** PKCS#11 library. */
  modulePath: string;
  /** Token label. */
  tokenLabel: string;
  /** User PIN. */
  pin: string;
  /** Label of an RSA signing key in the token. */
  keyLabel: string;
  /** Pool sessions. @defaultValue 4 */
  sessions?: number;
  /** Operations in flight to try. @defaultValue [1, 2, 4, 8, 16] */
  inFlight?: number[];
  /** Measuring time per case, ms. @defaultValue 1500 */
  durationMs?: number;
  /** Alternating pool/direct rounds per in-flight level; the best of each is kept. @defaultValue 2 */
  rounds?: number;
}

/** One measured case. */
export interface HsmBenchCase {
  /** What signed. */
  mode: 'pool' | 'pkcs11js-direct' | 'node-crypto-sync' | 'node-crypto-async';
  /** Operations kept in flight. */
  inFlight: number;
  /** Signatures per second. */
  opsPerSec: number;
  /** Median latency, ms. */
  p50Ms: number;
  /** 99th percentile latency, ms. */
  p99Ms: number;
  /** Event-loop utilisation during the case (0..1). */
  elu: number;
}

/** The whole run. */
export interface HsmBenchResult {
  /** Every case. */
  cases: HsmBenchCase[];
  /** Best pool rate. */
  bestPool: HsmBenchCase;
  /** Best direct-pkcs11js rate. */
  bestDirect: HsmBenchCase;
  /** bestPool.opsPerSec / bestDirect.opsPerSec. */
  poolToDirectRatio: number;
  /** libuv thread-pool size in effect. */
  uvThreadpoolSize: number;
  /** CPUs available. */
  cpus: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

async function measure(mode: HsmBenchCase['mode'], inFlight: number, durationMs: number, op: (worker: number, i: number) => Promise<unknown>): Promise<HsmBenchCase> {
  // Warm up: key lookup, session state, JIT.
  await Promise.all(Array.from({ length: inFlight }, (_, w) => op(w, -1)));
  const latencies: number[] = [];
  const eluStart = performance.eventLoopUtilization();
  const start = performance.now();
  const deadline = start + durationMs;
  let count = 0;
  await Promise.all(Array.from({ length: inFlight }, async (_, worker) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await op(worker, count);
      latencies.push(performance.now() - t0);
      count += 1;
    }
  }));
  const elapsed = performance.now() - start;
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  latencies.sort((a, b) => a - b);
  return { mode, inFlight, opsPerSec: Math.round((count * 1000) / elapsed), p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), elu: round(elu) };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Runs the benchmark and returns its figures. */
export async function runHsmBench(options: HsmBenchOptions): Promise<HsmBenchResult> {
  const inFlightList = options.inFlight ?? [1, 2, 4, 8, 16];
  const durationMs = options.durationMs ?? 1500;
  const rounds = options.rounds ?? 2;
  const data = Buffer.alloc(2048, 0x61);
  const cases: HsmBenchCase[] = [];

  const pool = new HsmPool({
    modulePath: options.modulePath, tokenLabel: options.tokenLabel, pin: options.pin, sessions: options.sessions ?? 4,
    metricsIntervalMs: 0, maxWaiting: 10_000, logger: createLogger({ name: 'selo.hsm.bench', level: 'warn' }),
  });
  await pool.start();
  if (!pool.ready()) throw new Error(`HSM pool not ready: ${pool.health().lastError?.message ?? 'unknown'}`);
  try {

    // pkcs11js directly: one session per operation in flight, no queue, no bookkeeping.
    const pkcs11js = loadPkcs11js();
    const direct = new pkcs11js.PKCS11();
    direct.load(options.modulePath);
    try {
      direct.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch {
      // Already initialised by the pool in this process; the sessions below share it.
    }
    const slot = direct.C_GetSlotList(true).find((s) => direct.C_GetTokenInfo(s).label.trimEnd() === options.tokenLabel);
    if (slot === undefined) throw new Error(`token ${options.tokenLabel} not found`);
    const maxInFlight = Math.max(...inFlightList);
    const sessions = Array.from({ length: maxInFlight }, () => direct.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    const first = sessions[0];
    if (first === undefined) throw new Error('no session');
    direct.C_FindObjectsInit(first, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: options.keyLabel }]);
    const [key] = direct.C_FindObjects(first, 1);
    direct.C_FindObjectsFinal(first);
    if (key === undefined) throw new Error(`key ${options.keyLabel} not found`);
    try {
      // Pool and direct cases alternate, over `rounds` rounds keeping each case's best, so a
      // neighbour's load on a shared machine hits both sides alike.
      for (const inFlight of inFlightList) {
        let bestPoolCase: HsmBenchCase | undefined;
        let bestDirectCase: HsmBenchCase | undefined;
        for (let round = 0; round < rounds; round += 1) {
          const poolCase = await measure('pool', inFlight, durationMs, () => pool.sign(data, { label: options.keyLabel }));
          const directCase = await measure('pkcs11js-direct', inFlight, durationMs, (worker) => {
            const session = sessions[worker] ?? first;
            direct.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, key);
            return direct.C_SignAsync(session, data, Buffer.alloc(512));
          });
          if (bestPoolCase === undefined || poolCase.opsPerSec > bestPoolCase.opsPerSec) bestPoolCase = poolCase;
          if (bestDirectCase === undefined || directCase.opsPerSec > bestDirectCase.opsPerSec) bestDirectCase = directCase;
        }
        if (bestPoolCase !== undefined) cases.push(bestPoolCase);
        if (bestDirectCase !== undefined) cases.push(bestDirectCase);
      }
    } finally {
      for (const session of sessions) {
        try {
          direct.C_CloseSession(session);
        } catch {
          // Best effort.
        }
      }
    }
  } finally {
    await pool.close();
  }

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const softwareKey: KeyObject = privateKey;
  cases.push(await measure('node-crypto-sync', 1, durationMs, () => Promise.resolve(cryptoSign('sha256', data, softwareKey))));
  for (const inFlight of inFlightList) {
    cases.push(await measure('node-crypto-async', inFlight, durationMs, () => new Promise<Buffer>((resolve, reject) => {
      cryptoSign('sha256', data, softwareKey, (error, signature) => (error === null ? resolve(signature) : reject(error)));
    })));
  }

  const best = (mode: HsmBenchCase['mode']): HsmBenchCase => {
    const sorted = cases.filter((c) => c.mode === mode).sort((a, b) => b.opsPerSec - a.opsPerSec);
    const top = sorted[0];
    if (top === undefined) throw new Error(`no ${mode} case`);
    return top;
  };
  const bestPool = best('pool');
  const bestDirect = best('pkcs11js-direct');
  const { availableParallelism } = await import('node:os');
  return {
    cases,
    bestPool,
    bestDirect,
    poolToDirectRatio: round(bestPool.opsPerSec / bestDirect.opsPerSec),
    uvThreadpoolSize: Number(process.env['UV_THREADPOOL_SIZE'] ?? 4),
    cpus: availableParallelism(),
  };
}

/** Formats a result as a table for people. */
export function formatHsmBench(result: HsmBenchResult): string {
  const lines = [
    `cpus=${result.cpus} UV_THREADPOOL_SIZE=${result.uvThreadpoolSize}`,
    `${'mode'.padEnd(18)} ${'inFlight'.padStart(8)} ${'sig/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'ELU'.padStart(6)}`,
    ...[...result.cases].sort((a, b) => a.mode.localeCompare(b.mode) || a.inFlight - b.inFlight).map((c) => `${c.mode.padEnd(18)} ${String(c.inFlight).padStart(8)} ${String(c.opsPerSec).padStart(8)} ${c.p50Ms.toFixed(2).padStart(8)} ${c.p99Ms.toFixed(2).padStart(8)} ${c.elu.toFixed(2).padStart(6)}`),
    `best pool ${result.bestPool.opsPerSec}/s (inFlight ${result.bestPool.inFlight}, ELU ${result.bestPool.elu}) vs best direct ${result.bestDirect.opsPerSec}/s (inFlight ${result.bestDirect.inFlight}): ratio ${result.poolToDirectRatio}`,
  ];
  return `${lines.join('\n')}\n`;
}
