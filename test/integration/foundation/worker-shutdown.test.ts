import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSoftHsmConf } from '../../../infra/softhsm/index.ts';

const SELO = fileURLToPath(new URL('../../../bin/selo.ts', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'selo-shutdown-'));
const softHsmConf = writeSoftHsmConf(join(scratch, 'softhsm'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function exitOf(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Resolves with every stdout line so far once a line starting with `ready` appears. */
function readyLines(child: ChildProcessWithoutNullStreams, ready: string): Promise<string[]> {
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${ready}" line within 60 s`)), 60_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith(ready)) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
  });
}

describe('selo worker shutdown', () => {
  it('ends within the 28 s budget after SIGTERM although SQS, DynamoDB, Kinesis, EventBridge and the BCB are gone', async () => {
    // The stand-ins and the simulator in a process of their own, so that they can die at once.
    const up = spawn(
      process.execPath,
      [SELO, 'up', '--no-workers', '--sqs-port', '0', '--kinesis-port', '0', '--dynamodb-port', '0', '--events-port', '0', '--bcb-port', '0', '--pki-dir', join(scratch, 'pki')],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SOFTHSM2_CONF: softHsmConf } },
    );
    let workers: ChildProcessWithoutNullStreams | undefined;
    try {
      const exports = Object.fromEntries(
        (await readyLines(up, 'selo: ready ')).flatMap((line) => {
          const match = /^\s*export ([A-Z0-9_]+)=(.*)$/.exec(line);
          return match === null ? [] : [[match[1] ?? '', match[2] ?? '']];
        }),
      );
      workers = spawn(process.execPath, [SELO, 'worker', 'all'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...exports, SELO_HEALTH_PORT: '0' } });
      await readyLines(workers, 'selo: workers ready');
      // Every dependency dies under the running workers.
      up.kill('SIGKILL');
      await exitOf(up);
      const signalled = Date.now();
      workers.kill('SIGTERM');
      const exit = await exitOf(workers);
      const tookMs = Date.now() - signalled;
      // The README's budget: 28 s, inside Fargate's 30 s before SIGKILL; ended by itself, not by the signal.
      expect(tookMs).toBeLessThan(29_000);
      expect(exit.signal).toBeNull();
    } finally {
      if (workers !== undefined && workers.exitCode === null && workers.signalCode === null) workers.kill('SIGKILL');
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
  }, 120_000);
});
