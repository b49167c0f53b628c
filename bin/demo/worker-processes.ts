import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { WORKER_NAMES } from '../worker-set.ts';
import type { WorkerName } from '../worker-set.ts';

const SELO = join(import.meta.dirname, '..', 'selo.ts');

/** Worker processes started by {@link startWorkerProcesses}. */
export interface WorkerProcesses {
  /** The children, for tests that kill one. */
  readonly children: readonly ChildProcess[];
  /** SIGTERM to every child, then SIGKILL after `graceMs`; resolves when all have exited. */
  stop(graceMs?: number): Promise<void>;
}

/** How the workers are spread over `count` processes (1: all in one; 2: send side and receive side; more: one each). */
export function splitWorkers(count: number): WorkerName[][] {
  if (count <= 1) return [[...WORKER_NAMES]];
  if (count === 2) return [['sign', 'transmit'], ['receive', 'verify', 'compensate']];
  return WORKER_NAMES.map((name) => [name]);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `selo worker <names>` processes (what ECS tasks run) with `env`, and resolves once each
 * printed its `selo: workers ready` line. A child that exits first fails the start with the end
 * of its stderr.
 */
export async function startWorkerProcesses(groups: readonly (readonly WorkerName[])[], env: Readonly<Record<string, string>>, readyTimeoutMs = 60_000): Promise<WorkerProcesses> {
  const children: ChildProcess[] = [];
  // Node flags for the children only, e.g. `--cpu-prof --cpu-prof-dir=DIR` from the cost benchmark
  // (Node refuses --cpu-prof in NODE_OPTIONS).
  const nodeArgs = (process.env['SELO_WORKER_NODE_ARGS'] ?? '').split(/\s+/u).filter((arg) => arg !== '');
  const stop = async (graceMs = 35_000): Promise<void> => {
    for (const child of children) child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const child of children) child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(children.map(exited));
    clearTimeout(timer);
  };
  try {
    await Promise.all(
      groups.map(
        (names) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, [...nodeArgs, SELO, 'worker', names.join(',')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
            children.push(child);
            let stdout: string | undefined = '';
            let stderr = '';
            const timer = setTimeout(() => reject(new Error(`selo worker ${names.join(',')} was not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
            child.stdout?.on('data', (chunk: Buffer) => {
              // Kept only until the ready line: a long run's log is drained, not held.
              if (stdout === undefined) return;
              stdout += chunk.toString();
              if (stdout.includes('selo: workers ready')) {
                stdout = undefined;
                clearTimeout(timer);
                resolve();
              }
            });
            child.stderr?.on('data', (chunk: Buffer) => {
              stderr = (stderr + chunk.toString()).slice(-4000);
            });
            child.once('exit', (code, signal) => {
              clearTimeout(timer);
              reject(new Error(`selo worker ${names.join(',')} exited (${signal ?? String(code)}) before it was ready: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
            });
          }),
      ),
    );
  } catch (error) {
    await stop(5_000);
    throw error;
  }
  return { children, stop };
}
