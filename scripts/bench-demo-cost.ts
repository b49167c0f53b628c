// What one payment costs with everything running: CPU per payment of the worker process(es) and
// of the demo process (stand-ins, BCB simulator, publisher, subscriber), and AWS API calls per
// payment by operation, from `selo demo --mix accept=100 --inbound 0` at the target rate, for this
// tree and for a baseline tree (a git ref, checked out in a temporary worktree that shares this
// tree's node_modules) in the same run, alternating `--rounds` times (the machine is shared and
// noisy: the ratio of two runs made side by side is the figure to trust, not either absolute).
// CPU is read from /proc (Linux), from the moment the demo starts publishing. --profile also
// records a CPU profile of the worker process of each run and prints where its time went by
// component (scripts/support/cpu-profile-summary.ts). `--env NAME=VALUE` (repeatable) sets a variable
// for this tree's runs only, so that one tree against itself (`--baseline-ref HEAD`) compares a
// setting. A script, not a test: it never fails on figures.
//   node scripts/bench-demo-cost.ts [--payments 1500] [--rate 50] [--baseline-ref HEAD] [--rounds 1] [--env NAME=VALUE]... [--profile] [--json]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { addTotals, componentRows, summarizeCpuProfile } from './support/cpu-profile-summary.ts';
import { median } from './support/micro-bench.ts';
import { TICKS_PER_SECOND, cpuTicks } from './support/proc-stat.ts';

const { values } = parseArgs({
  options: {
    payments: { type: 'string', default: '1500' },
    rate: { type: 'string', default: '50' },
    'baseline-ref': { type: 'string', default: 'HEAD' },
    rounds: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});

/** `--env NAME=VALUE` settings, for this tree's runs. */
const treeEnv: Record<string, string> = {};
for (const setting of values.env) {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(setting);
  if (match === null) throw new RangeError(`--env must be NAME=VALUE, got ${JSON.stringify(setting)}`);
  const name = match[1] ?? '';
  // The script sets these itself for both trees (the call counter, the profiler).
  if (['NODE_OPTIONS', 'SELO_CALLS_DIR', 'SELO_WORKER_NODE_ARGS'].includes(name)) throw new RangeError(`--env cannot set ${name}: the script sets it for both trees`);
  treeEnv[name] = match[2] ?? '';
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOOK = fileURLToPath(new URL('./support/count-aws-calls.ts', import.meta.url));

interface RunCost {
  tree: string;
  payments: number;
  rate: number;
  summary: Record<string, unknown>;
  cpuMsPerPayment: { workers: number; demo: number; total: number };
  callsPerPayment: { workers: Record<string, number>; demo: Record<string, number> };
  /** Worker CPU by component, ms per payment (with --profile). */
  workerProfile?: { component: string; msPerPayment: number; share: number }[];
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return value;
}

/** The direct children of `pid`. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function perPayment(counts: Record<string, number>, payments: number): Record<string, number> {
  const rows = Object.entries(counts)
    .map(([op, n]): [string, number] => [op, Math.round((100 * n) / payments) / 100])
    .filter(([, n]) => n >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(rows);
}

async function measure(tree: string, root: string, payments: number, rate: number, env: Readonly<Record<string, string>> = {}): Promise<RunCost> {
  const callsDir = mkdtempSync(join(tmpdir(), 'selo-bench-cost-'));
  const profileDir = join(callsDir, 'profiles');
  try {
    const child = spawn(process.execPath, [join(root, 'bin', 'selo.ts'), 'demo', '--payments', String(payments), '--rate', String(rate), '--mix', 'accept=100', '--inbound', '0', '--json'], {
      cwd: root,
      env: {
        ...process.env,
        ...env,
        NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${HOOK}`.trim(),
        SELO_CALLS_DIR: callsDir,
        ...(values.profile ? { SELO_WORKER_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${profileDir}` } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const demoPid = child.pid;
    if (demoPid === undefined) throw new Error('the demo did not start');
    // Last CPU seen per process, from when publishing starts (the workers then run).
    const start = new Map<number, number>();
    const last = new Map<number, number>();
    let workers: number[] = [];
    let sampling: NodeJS.Timeout | undefined;
    const sample = (): void => {
      for (const pid of [demoPid, ...workers]) {
        const ticks = cpuTicks(pid);
        if (ticks === undefined) continue;
        if (!start.has(pid)) start.set(pid, ticks);
        last.set(pid, ticks);
      }
    };
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (sampling !== undefined || !line.startsWith('selo demo: local stack')) return;
      workers = childrenOf(demoPid);
      sample();
      sampling = setInterval(sample, 200);
    });
    let summaryLine = '';
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{') && line.includes('"payments"')) {
        summaryLine = line;
        // The report is out: the CPU of the run is what was spent until now.
        sample();
        clearInterval(sampling);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearInterval(sampling);
    if (summaryLine === '') throw new Error(`the demo (${payments} at ${rate}/s) ended with ${String(code)} and no summary`);
    const spent = (pids: number[]): number => pids.reduce((sum, pid) => sum + ((last.get(pid) ?? 0) - (start.get(pid) ?? 0)), 0);
    const ms = (ticks: number): number => Math.round(((ticks * 1000) / TICKS_PER_SECOND / payments) * 10) / 10;
    const read = (pid: number): Record<string, number> => {
      try {
        return JSON.parse(readFileSync(join(callsDir, `${pid}.json`), 'utf8')) as Record<string, number>;
      } catch {
        return {};
      }
    };
    const workerCalls: Record<string, number> = {};
    for (const pid of workers) for (const [op, n] of Object.entries(read(pid))) workerCalls[op] = (workerCalls[op] ?? 0) + n;
    const workersMs = ms(spent(workers));
    const demoMs = ms(spent([demoPid]));
    let workerProfile: RunCost['workerProfile'];
    // A baseline tree older than SELO_WORKER_NODE_ARGS writes no profile.
    if (values.profile && existsSync(profileDir)) {
      const totals = new Map<string, number>();
      for (const file of readdirSync(profileDir)) addTotals(totals, summarizeCpuProfile(join(profileDir, file)));
      workerProfile = componentRows(totals, payments);
    }
    return {
      tree,
      payments,
      rate,
      summary: JSON.parse(summaryLine) as Record<string, unknown>,
      cpuMsPerPayment: { workers: workersMs, demo: demoMs, total: Math.round((workersMs + demoMs) * 10) / 10 },
      callsPerPayment: { workers: perPayment(workerCalls, payments), demo: perPayment(read(demoPid), payments) },
      ...(workerProfile === undefined ? {} : { workerProfile }),
    };
  } finally {
    rmSync(callsDir, { recursive: true, force: true });
  }
}

function total(calls: Record<string, number>): number {
  return Math.round(Object.values(calls).reduce((a, b) => a + b, 0) * 10) / 10;
}

/** A worktree of `ref` that shares this tree's node_modules; removed by the returned function. */
function checkout(ref: string): { root: string; remove: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'selo-bench-baseline-'));
  execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', '--force', root, ref], { stdio: 'ignore' });
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return {
    root,
    remove: () => {
      execFileSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', root], { stdio: 'ignore' });
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const payments = positive('payments', values.payments);
const rate = positive('rate', values.rate);
if (!values.json && Object.keys(treeEnv).length > 0) console.log(`this tree runs with ${Object.entries(treeEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
const rounds = positive('rounds', values.rounds);
const ref = values['baseline-ref'];
const baselineTree = checkout(ref);
const runs: RunCost[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    runs.push(await measure(`baseline ${ref}`, baselineTree.root, payments, rate));
    runs.push(await measure('this tree', ROOT, payments, rate, treeEnv));
  }
} finally {
  baselineTree.remove();
}
const ratio = (a: number, b: number): number => (b === 0 ? 0 : Math.round((a / b) * 100) / 100);
const baselineRuns = runs.filter((run) => run.tree !== 'this tree');
const currentRuns = runs.filter((run) => run.tree === 'this tree');
const cpuRatio = ratio(median(currentRuns.map((r) => r.cpuMsPerPayment.workers)), median(baselineRuns.map((r) => r.cpuMsPerPayment.workers)));
const callRatio = ratio(median(currentRuns.map((r) => total(r.callsPerPayment.workers))), median(baselineRuns.map((r) => total(r.callsPerPayment.workers))));

if (values.json) {
  console.log(JSON.stringify({ runs, treeEnv, ratio: { workerCpuPerPayment: cpuRatio, workerCallsPerPayment: callRatio } }));
} else {
  for (const run of runs) {
    const s = run.summary;
    console.log(`${run.tree}: ${run.payments} payments at ${run.rate}/s: reached ${String(s['throughputPerSecond'])}/s, p50 ${String(s['p50Ms'])} ms, p99 ${String(s['p99Ms'])} ms, lost ${String(s['lost'])}, duplicated ${String(s['duplicated'])}`);
    console.log(`  CPU per payment: workers ${run.cpuMsPerPayment.workers} ms, demo process (stand-ins, simulator, publisher, subscriber) ${run.cpuMsPerPayment.demo} ms, total ${run.cpuMsPerPayment.total} ms`);
    console.log(`  AWS calls per payment, workers (${total(run.callsPerPayment.workers)}): ${Object.entries(run.callsPerPayment.workers).map(([op, n]) => `${op} ${n}`).join(', ')}`);
    console.log(`  AWS calls per payment, demo process (${total(run.callsPerPayment.demo)}): ${Object.entries(run.callsPerPayment.demo).map(([op, n]) => `${op} ${n}`).join(', ')}`);
    if (run.workerProfile !== undefined) {
      // The profile samples wall time on the CPU; its shares apply to the /proc CPU above.
      console.log('  worker CPU by component (share of the profile, ms per payment at the /proc figure):');
      for (const row of run.workerProfile) console.log(`    ${String(row.share).padStart(5)} %  ${(Math.round(row.share * run.cpuMsPerPayment.workers) / 100).toFixed(2).padStart(6)} ms  ${row.component}`);
    }
  }
  console.log(`this tree / baseline ${ref} (medians of ${rounds} round(s)): worker CPU per payment ${cpuRatio}×, worker AWS calls per payment ${callRatio}×`);
}
