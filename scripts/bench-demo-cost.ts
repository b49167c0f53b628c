// What one payment costs with everything running: CPU per payment of the worker process(es) and
// of the demo process (stand-ins, BCB simulator, publisher, subscriber), and AWS API calls per
// payment by operation, from `selo demo --mix accept=100` at the target rate and, in the same run,
// at a light baseline rate (ratios target / baseline). CPU is read from /proc (Linux), from the
// moment the demo starts publishing. A script, not a test: it never fails on figures.
//   node scripts/bench-demo-cost.ts [--payments 1500] [--rate 50] [--baseline-payments 300] [--baseline-rate 10] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    payments: { type: 'string', default: '1500' },
    rate: { type: 'string', default: '50' },
    'baseline-payments': { type: 'string', default: '300' },
    'baseline-rate': { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});

const SELO = fileURLToPath(new URL('../bin/selo.ts', import.meta.url));
const HOOK = fileURLToPath(new URL('./support/count-aws-calls.ts', import.meta.url));
const TICKS_PER_SECOND = 100;

interface RunCost {
  payments: number;
  rate: number;
  summary: Record<string, unknown>;
  cpuMsPerPayment: { workers: number; demo: number; total: number };
  callsPerPayment: { workers: Record<string, number>; demo: Record<string, number> };
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return value;
}

/** utime + stime of a process in clock ticks; undefined once it is gone. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
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

async function measure(payments: number, rate: number): Promise<RunCost> {
  const callsDir = mkdtempSync(join(tmpdir(), 'selo-bench-cost-'));
  try {
    const child = spawn(process.execPath, [SELO, 'demo', '--payments', String(payments), '--rate', String(rate), '--mix', 'accept=100', '--json'], {
      env: { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${HOOK}`.trim(), SELO_CALLS_DIR: callsDir },
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
    return {
      payments,
      rate,
      summary: JSON.parse(summaryLine) as Record<string, unknown>,
      cpuMsPerPayment: { workers: workersMs, demo: demoMs, total: Math.round((workersMs + demoMs) * 10) / 10 },
      callsPerPayment: { workers: perPayment(workerCalls, payments), demo: perPayment(read(demoPid), payments) },
    };
  } finally {
    rmSync(callsDir, { recursive: true, force: true });
  }
}

function total(calls: Record<string, number>): number {
  return Math.round(Object.values(calls).reduce((a, b) => a + b, 0) * 10) / 10;
}

const baseline = await measure(positive('baseline-payments', values['baseline-payments']), positive('baseline-rate', values['baseline-rate']));
const target = await measure(positive('payments', values.payments), positive('rate', values.rate));
const ratio = (a: number, b: number): number => (b === 0 ? 0 : Math.round((a / b) * 100) / 100);

if (values.json) {
  console.log(JSON.stringify({ baseline, target, ratio: { cpuPerPayment: ratio(target.cpuMsPerPayment.total, baseline.cpuMsPerPayment.total), workerCallsPerPayment: ratio(total(target.callsPerPayment.workers), total(baseline.callsPerPayment.workers)) } }));
} else {
  for (const run of [baseline, target]) {
    const s = run.summary;
    console.log(`${run.payments} payments at ${run.rate}/s: reached ${String(s['throughputPerSecond'])}/s, p50 ${String(s['p50Ms'])} ms, p99 ${String(s['p99Ms'])} ms, lost ${String(s['lost'])}, duplicated ${String(s['duplicated'])}`);
    console.log(`  CPU per payment: workers ${run.cpuMsPerPayment.workers} ms, demo process (stand-ins, simulator, publisher, subscriber) ${run.cpuMsPerPayment.demo} ms, total ${run.cpuMsPerPayment.total} ms`);
    console.log(`  AWS calls per payment, workers (${total(run.callsPerPayment.workers)}): ${Object.entries(run.callsPerPayment.workers).map(([op, n]) => `${op} ${n}`).join(', ')}`);
    console.log(`  AWS calls per payment, demo process (${total(run.callsPerPayment.demo)}): ${Object.entries(run.callsPerPayment.demo).map(([op, n]) => `${op} ${n}`).join(', ')}`);
  }
  console.log(`target / baseline: CPU per payment ${ratio(target.cpuMsPerPayment.total, baseline.cpuMsPerPayment.total)}×, worker calls per payment ${ratio(total(target.callsPerPayment.workers), total(baseline.callsPerPayment.workers))}×`);
}
