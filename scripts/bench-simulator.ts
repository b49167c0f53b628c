/**
 * Throughput of the BCB simulator: signed pacs.008 accepted (HTTP 201) and settled per second,
 * over real mTLS with undici keep-alive connections. The simulator runs in a child process (its
 * own event loop, as in `selo simulator`); this process pre-signs the messages, posts them,
 * and reads the ledger over the admin endpoint. Prints figures; never fails on time (HOUSE_STYLE 15).
 *
 * CPU is reported per pacs.008 for each party in the measured window: this client (undici, TLS)
 * and the simulator process (all its threads: the event loop, which also validates the XSD, the
 * inspection threads that parse and check signatures, libuv's), read from /proc (Linux).
 * `--baseline` first runs the same client against a bare mTLS server in a child process that
 * answers 201 without reading the message: the ceiling this client and TLS allow on this
 * machine, against which the simulator's figures are given as a ratio.
 *
 *   node scripts/bench-simulator.ts [--count 5000] [--concurrency 64] [--batch 1] [--drain] [--no-xsd] [--baseline]
 *                                   [--threads <inspection threads>]
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
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
import { TICKS_PER_SECOND, cpuTicks } from './support/proc-stat.ts';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** A bare mTLS server with the simulator's TLS settings that answers every request 201 (the baseline). */
async function serveNull(pkiFile: string): Promise<void> {
  const pki = JSON.parse(readFileSync(pkiFile, 'utf8')) as SimulatorTestPki;
  const server = createServer(
    { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'], keepAliveTimeout: 30_000 },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'PI-ResourceId': 'x', 'content-length': '0' });
        res.end();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.({ port: (server.address() as AddressInfo).port, adminUrl: '' });
  process.on('message', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

/** CPU seconds of one process (all threads), from /proc/<pid>/stat. */
function statCpu(pid: number): { self: number } {
  return { self: (cpuTicks(pid) ?? 0) / TICKS_PER_SECOND };
}

function clientCpu(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function serve(pkiFile: string, schemaValidation: boolean, inspectionThreads: number | undefined): Promise<void> {
  const pki = JSON.parse(readFileSync(pkiFile, 'utf8')) as SimulatorTestPki;
  // The messages are signed before the run; a long settlement limit keeps a slow run from
  // turning them into (cheaper) AB03 rejections.
  const sim = await startTestSimulator(pki, { logger: createLogger({ name: 'bcb-simulator', level: 'warn' }), longPollMs: 1000, schemaValidation, settlementLimitMs: 600_000,
    ...(inspectionThreads === undefined ? {} : { inspectionThreads }),
  });
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

interface Started {
  child: ChildProcess;
  port: number;
  adminUrl: string;
}

async function startChild(args: string[]): Promise<Started> {
  // SELO_BENCH_PROF=1 profiles the server process; SELO_BENCH_NODE_FLAGS adds node flags to it.
  const execArgv = [...(process.env.SELO_BENCH_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir=/tmp/simprof']), ...(process.env.SELO_BENCH_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? [])];
  const child = fork(import.meta.filename, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<{ port: number; adminUrl: string }>((resolve) => child.once('message', (m) => resolve(m as { port: number; adminUrl: string })));
  return { child, ...ready };
}

async function stopChild(started: Started): Promise<void> {
  started.child.send('stop');
  await new Promise((r) => started.child.once('exit', r));
}

interface Posted {
  seconds: number;
  failed: number;
  latencies: number[];
}

/** Posts `posts` with `concurrency` requests in flight; returns the wall time and POST latencies. */
async function postAll(agent: Agent, sim: BcbSimulator, posts: readonly (string | string[])[], concurrency: number): Promise<Posted> {
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
  latencies.sort((a, b) => a - b);
  return { seconds: (performance.now() - started) / 1000, failed, latencies };
}

function percentile(latencies: readonly number[], p: number): string {
  return (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(1);
}

function simulatorOf(port: number): BcbSimulator {
  return { url: `https://127.0.0.1:${port}`, icomUrl: `https://127.0.0.1:${port}/api/v1` } as BcbSimulator;
}

function agentFor(pki: SimulatorTestPki, concurrency: number): Agent {
  return new Agent({ connect: { cert: pki.tlsA.certPem, key: pki.tlsA.keyPem, ca: pki.caPem }, connections: Math.min(concurrency, 16), keepAliveTimeout: 30_000 });
}

/** µs of CPU per message. */
function perMessage(seconds: number, count: number): string {
  return `${((seconds / count) * 1e6).toFixed(0)} µs`;
}

async function bench(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '64' }, batch: { type: 'string', default: '1' }, drain: { type: 'boolean', default: false },
      'no-xsd': { type: 'boolean', default: false }, baseline: { type: 'boolean', default: false }, threads: { type: 'string' },
    },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const batch = Number(values.batch);
  const pki = await createSimulatorTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'selo-bench-sim-'));
  const pkiFile = join(dir, 'pki.json');
  writeFileSync(pkiFile, JSON.stringify(pki), { mode: 0o600 });
  const key = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
  const signStart = performance.now();
  const messages = await Promise.all(Array.from({ length: count }, () => signedPacs008(key).then((m) => m.xml)));
  out(`pre-signed ${count} pacs.008 in ${((performance.now() - signStart) / 1000).toFixed(2)} s (client side, not counted)`);
  const posts: (string | string[])[] = [];
  for (let i = 0; i < messages.length; i += batch) posts.push(batch === 1 ? (messages[i] ?? '') : messages.slice(i, i + batch));
  const warmUp = async (agent: Agent, sim: BcbSimulator): Promise<void> => {
    // TLS handshakes, JIT, the compiled XSDs.
    await Promise.all(Array.from({ length: 16 }, async () => postMessages(agent, sim, ISPB_A, (await signedPacs008(key)).xml)));
  };
  try {
    let ceiling: number | undefined;
    if (values.baseline) {
      const bare = await startChild(['--serve-null', pkiFile]);
      const agent = agentFor(pki, concurrency);
      try {
        await warmUp(agent, simulatorOf(bare.port));
        const cpu0 = clientCpu();
        const server0 = statCpu(bare.child.pid ?? 0);
        const posted = await postAll(agent, simulatorOf(bare.port), posts, concurrency);
        const server1 = statCpu(bare.child.pid ?? 0);
        ceiling = count / posted.seconds;
        out(`baseline, bare mTLS server answering 201: ${ceiling.toFixed(0)} pacs.008/s (${posted.seconds.toFixed(2)} s; p50 ${percentile(posted.latencies, 50)} ms; CPU per message: client ${perMessage(clientCpu() - cpu0, count)}, server ${perMessage(server1.self - server0.self, count)})`);
      } finally {
        await agent.close();
        await stopChild(bare);
      }
    }
    const sim = await startChild(['--serve', pkiFile, values['no-xsd'] ? 'no-xsd' : 'xsd', values.threads ?? '']);
    const simPid = sim.child.pid ?? 0;
    const target = simulatorOf(sim.port);
    const agent = agentFor(pki, concurrency);
    try {
      await warmUp(agent, target);
      // The warm-up messages are processed after their 201: wait until they are decided.
      let base = await summary(sim.adminUrl);
      while (base.pending > 0 || base.settled + base.rejected + base.invalid < 16) {
        await new Promise((r) => setTimeout(r, 20));
        base = await summary(sim.adminUrl);
      }
      const cpu0 = clientCpu();
      const sim0 = statCpu(simPid);
      const started = performance.now();
      const posted = await postAll(agent, target, posts, concurrency);
      const cpuPosted = clientCpu();
      let s = await summary(sim.adminUrl);
      while (s.settled + s.rejected + s.invalid - (base.settled + base.rejected + base.invalid) < count) {
        await new Promise((r) => setTimeout(r, 20));
        s = await summary(sim.adminUrl);
      }
      const settleSeconds = (performance.now() - started) / 1000;
      const sim1 = statCpu(simPid);
      const accepted = count / posted.seconds;
      const settled = count / settleSeconds;
      out(`messages ${count}, ${batch} per POST, concurrency ${concurrency}, XSD validation ${values['no-xsd'] ? 'off' : 'on'}, inspection threads ${values.threads ?? 'default'}, 2 processes on this machine`);
      out(`accepted (201): ${accepted.toFixed(0)} pacs.008/s  (${posted.seconds.toFixed(2)} s; POST latency p50 ${percentile(posted.latencies, 50)} ms, p99 ${percentile(posted.latencies, 99)} ms; non-201: ${posted.failed})`);
      out(`settled:        ${settled.toFixed(0)} pacs.008/s  (all ${count} decided after ${settleSeconds.toFixed(2)} s: settled ${s.settled - base.settled}, rejected ${s.rejected - base.rejected}, invalid ${s.invalid - base.invalid})`);
      out(
        `CPU per pacs.008: client ${perMessage(cpuPosted - cpu0, count)}, simulator ${perMessage(sim1.self - sim0.self, count)} (all threads)` +
          ` (machine: ${process.env.SELO_BENCH_NOTE ?? 'shared with other work'})`,
      );
      if (ceiling !== undefined) out(`ratio to the bare-server baseline: accepted ${(accepted / ceiling).toFixed(2)}, settled ${(settled / ceiling).toFixed(2)}`);
      if (values.drain) {
        const drainStart = performance.now();
        const acsc = await drainStream(agent, target, ISPB_A);
        const seconds = (performance.now() - drainStart) / 1000;
        out(`payer stream:   ${(acsc.length / seconds).toFixed(0)} signed pacs.002/s read (${acsc.length} in ${seconds.toFixed(2)} s, signing on first delivery)`);
        void ISPB_B;
      }
    } finally {
      await agent.close();
      await stopChild(sim);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const optionalNumber = (arg: string | undefined): number | undefined => (arg === undefined || arg === '' ? undefined : Number(arg));
if (process.argv[2] === '--serve') await serve(process.argv[3] ?? '', process.argv[4] !== 'no-xsd', optionalNumber(process.argv[5]));
else if (process.argv[2] === '--serve-null') await serveNull(process.argv[3] ?? '');
else await bench();
