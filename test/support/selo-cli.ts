import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `bin/selo.ts`, the command line. */
export const SELO_CLI = fileURLToPath(new URL('../../bin/selo.ts', import.meta.url));

/** What a `selo` run printed and its exit status. */
export interface SeloCliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `selo <args…>` in a child process with `env` (and PATH), asynchronously: the stand-ins it
 * talks to live in the test's own process, which must stay free to answer.
 */
export function runSeloCli(env: Readonly<Record<string, string>>, ...args: string[]): Promise<SeloCliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SELO_CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}
