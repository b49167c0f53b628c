import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

const SELO = join(dirname(fileURLToPath(import.meta.url)), '../../../bin/selo.ts');
const LIMIT = 64 * 1024;
/** What the test offers: 128 times the limit, written in 16 KiB chunks a few ms apart. */
const OFFERED = 128 * LIMIT;
const CHUNK = Buffer.alloc(16 * 1024, '<a>x</a>');

let pki: TestPki;
let dir: string;
let certPath: string;

interface Run {
  code: number | null;
  stderr: string;
  /** Bytes the child's stdin pipe took before it was closed. */
  consumed: number;
}

/** Runs `selo <args>` and writes to its stdin slowly until it stops reading or OFFERED bytes went. */
async function feedSlowly(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [SELO, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let closed = false;
  child.stdin.on('error', () => (closed = true));
  child.on('exit', () => (closed = true));
  let consumed = 0;
  while (!closed && consumed < OFFERED) {
    const ok = await new Promise<boolean>((resolve) => child.stdin.write(CHUNK, (error) => resolve(error === undefined || error === null)));
    if (!ok) break;
    consumed += CHUNK.byteLength;
    await sleep(2);
  }
  if (!closed) child.stdin.end();
  return { code: await exited, stderr, consumed };
}

beforeAll(() => {
  pki = createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'selo-cli-limit-'));
  certPath = join(dir, 'bcb.pem');
  writeFileSync(certPath, pki.issue('bcb signing').certPem);
});

afterAll(() => {
  pki.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('selo sign and selo verify stop reading stdin at the size limit', () => {
  for (const [name, args] of [
    ['verify', () => ['verify', '--profile', 'spi', '--trust', certPath, '--max-bytes', String(LIMIT)]],
    // The key and certificate are read only after stdin, so they need not exist here.
    ['sign', () => ['sign', '--profile', 'spi', '--key', join(dir, 'absent-key.pem'), '--cert', join(dir, 'absent-cert.pem'), '--max-bytes', String(LIMIT)]],
  ] as const) {
    it(`selo ${name} exits 2 with INPUT_TOO_LARGE having taken little more than the limit of a much larger input`, async () => {
      const run = await feedSlowly(args());
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('INPUT_TOO_LARGE');
      expect(run.stderr).toContain(`more than ${LIMIT} bytes`);
      // The limit, plus what pipes and stream buffers hold (a few 64 KiB chunks), never the 8 MiB offered.
      expect(run.consumed).toBeGreaterThan(LIMIT);
      expect(run.consumed).toBeLessThan(16 * LIMIT);
    }, 60_000);
  }

  it('refuses a --max-bytes above the XML parser limit, naming the flag', async () => {
    const run = await feedSlowly(['verify', '--profile', 'spi', '--trust', certPath, '--max-bytes', String(8 * 1024 * 1024)]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--max-bytes must be a whole number of bytes from 1 to 4194304');
  }, 60_000);
});
