/**
 * Throughput of the BCB simulator: signed pacs.008 accepted (HTTP 201) and settled per second,
 * over real mTLS with undici keep-alive connections. The simulator runs in a child process (its
 * own event loop, as in `selo simulator`); this process pre-signs the messages, posts them,
 * and reads the ledger over the admin endpoint. Prints figures; never fails on time (HOUSE_STYLE 15).
 *
 *   node scripts/bench-simulator.ts [--count 5000] [--concurrency 64] [--batch 1] [--drain] [--no-xsd]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { pemSigningKey } from '../shared/xmldsig/index.ts';
import { createLogger } from '../shared/logging/index.ts';
import {
  ISPB_A, ISPB_B, createSimulatorTestPki, drainStream, postMessages, signedPacs008, startTestSimulator,
} from '../test/integration/bcb-simulator/simulator-fixture.ts';
import type { SimulatorTestPki } from '../test/integration/bcb-simulator/simulator-fixture.ts';
import type { BcbSimulator } from '../infra/bcb-simulator/index.ts';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function serve(pkiFile: string, schemaValidation: boolean): Promise<void> {
  const pki = JSON.parse(readFileSync(pkiFile, 'utf8')) as SimulatorTestPki;
  const sim = await startTestSimulator(pki, { logger: createLogger({ name: 'bcb-simulator', level: 'warn' }), longPollMs: 1000, schemaValidation });
  process.send?.({ port: sim.port, adminUrl: sim.adminUrl });
  process.on('message', () => {
    void sim.close().then(() => process.exit(0));
  });
}

interface Summary {
  received: number;
  settled: number;
  rejected: number;
  invalid: number;
  pending: number;
}

async function summary(adminUrl: string): Promise<Summary> {
  const response = await request(`${adminUrl}/ledger/summary`);
  return (await response.body.json()) as Summary;
}

async function bench(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '64' }, batch: { type: 'string', default: '1' }, drain: { type: 'boolean', default: false }, 'no-xsd': { type: 'boolean', default: false } },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const batch = Number(values.batch);
  const pki = await createSimulatorTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'selo-bench-sim-'));
  const pkiFile = join(dir, 'pki.json');
  writeFileSync(pkiFile, JSON.stringify(pki), { mode: 0o600 });
  const child = fork(import.meta.filename, ['--serve', pkiFile, values['no-xsd'] ? 'no-xsd' : 'xsd'], { execArgv: process.env.SELO_BENCH_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir=/tmp/simprof'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ready = await new Promise<{ port: number; adminUrl: string }>((resolve) => child.once('message', (m) => resolve(m as { port: number; adminUrl: string })));
    const sim = { url: `https://127.0.0.1:${ready.port}`, icomUrl: `https://127.0.0.1:${ready.port}/api/v1` } as BcbSimulator;
    const key = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
    const signStart = performance.now();
    const messages = await Promise.all(Array.from({ length: count }, () => signedPacs008(key).then((m) => m.xml)));
    out(`pre-signed ${count} pacs.008 in ${((performance.now() - signStart) / 1000).toFixed(2)} s (client side, not counted)`);
    const agent = new Agent({ connect: { cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, ca: pki.caPem }, connections: Math.min(concurrency, 16), keepAliveTimeout: 30_000 });
    // Warm-up: TLS handshakes, JIT, the xmllint schema files.
    await Promise.all(Array.from({ length: 16 }, async () => postMessages(agent, sim, ISPB_A, (await signedPacs008(key)).xml)));
    const base = await summary(ready.adminUrl);
    const posts: (string | string[])[] = [];
    for (let i = 0; i < messages.length; i += batch) posts.push(batch === 1 ? (messages[i] ?? '') : messages.slice(i, i + batch));
    const latencies: number[] = [];
    let next = 0;
    let failed = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < posts.length) {
          const body = posts[next++] ?? '';
          const t = performance.now();
          const answer = await postMessages(agent, sim, ISPB_A, body);
          latencies.push(performance.now() - t);
          if (answer.status !== 201) failed++;
        }
      }),
    );
    const acceptedAt = performance.now();
    let s = await summary(ready.adminUrl);
    while (s.settled + s.rejected + s.invalid - (base.settled + base.rejected + base.invalid) < count) {
      await new Promise((r) => setTimeout(r, 20));
      s = await summary(ready.adminUrl);
    }
    const settledAt = performance.now();
    latencies.sort((a, b) => a - b);
    const pct = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(1);
    const acceptSeconds = (acceptedAt - started) / 1000;
    const settleSeconds = (settledAt - started) / 1000;
    out(`messages ${count}, ${batch} per POST, concurrency ${concurrency}, XSD validation ${values['no-xsd'] ? 'off' : 'on'}, 2 processes on this machine`);
    out(`accepted (201): ${(count / acceptSeconds).toFixed(0)} pacs.008/s  (${acceptSeconds.toFixed(2)} s; POST latency p50 ${pct(50)} ms, p99 ${pct(99)} ms; non-201: ${failed})`);
    out(`settled:        ${(count / settleSeconds).toFixed(0)} pacs.008/s  (all ${count} decided after ${settleSeconds.toFixed(2)} s: settled ${s.settled - base.settled}, rejected ${s.rejected - base.rejected}, invalid ${s.invalid - base.invalid})`);
    if (values.drain) {
      const drainStart = performance.now();
      const acsc = await drainStream(agent, sim, ISPB_A);
      const seconds = (performance.now() - drainStart) / 1000;
      out(`payer stream:   ${(acsc.length / seconds).toFixed(0)} signed pacs.002/s read (${acsc.length} in ${seconds.toFixed(2)} s, signing on first delivery)`);
      void ISPB_B;
    }
    await agent.close();
  } finally {
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? '', process.argv[4] !== 'no-xsd');
else await bench();
