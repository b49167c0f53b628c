import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../../bin/demo/run-demo.ts';
import type { DemoOptions } from '../../../bin/demo/run-demo.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

let token: TestToken;
let pkiDir: string;

function io(): { io: Parameters<typeof runDemo>[1]; output: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  stderr.resume();
  return {
    io: { stdin: new PassThrough(), stdout, stderr, env: { SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin } },
    output: () => text,
  };
}

function options(overrides: Partial<DemoOptions>): DemoOptions {
  return {
    payments: 20,
    ratePerSecond: 50,
    mix: { accept: 100, reject: 0, late: 0, never: 0 },
    settlementLimitMs: 8_000,
    lateDelayMs: 1_000,
    timeoutMs: 150_000,
    json: true,
    pkiDir,
    interactive: false,
    ...overrides,
  };
}

beforeAll(() => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-e2e-pki-'));
});

afterAll(() => {
  token.cleanup();
  rmSync(pkiDir, { recursive: true, force: true });
});

describe('selo end to end (local stack, simulator, every worker)', () => {
  it('takes 200 payments with mixed outcomes and stream duplicates to exactly one terminal event each, agreeing with the BCB ledger', async () => {
    const run = io();
    const result = await runDemo(
      // The SPI's own 40 s settlement limit: far above the backlog of 20/s even on a loaded 2-core
      // CI machine, so that every receiver's answer, not the clock, decides its payments. Only the
      // `never` payments wait for it (AB03), and the run waits for every payment to end.
      options({ payments: 200, ratePerSecond: 20, settlementLimitMs: 40_000, mix: { accept: 80, reject: 10, late: 5, never: 5 }, faults: { streamDuplicateRate: 0.2 }, warmUpEchoes: 5 }),
      run.io,
    );
    const { summary, ledger } = result;
    expect(summary).toMatchObject({ payments: 200, lost: 0, duplicated: 0 });
    // Each payment: exactly one terminal event, seen by the downstream subscriber.
    for (const [endToEndId, observation] of result.observations) {
      expect(observation.terminal.map((t) => t.detailType), endToEndId).toHaveLength(1);
    }
    // The simulated receivers decided these; the BCB ledger and downstream agree on every count.
    expect(ledger).toMatchObject({ settled: summary.settled, rejected: summary.rejected, pending: 0, duplicates: 0 });
    // What each receiver plays: accept and late settle (160 + 10), reject (AM04) and never (AB03 at
    // the limit) are rejected (20 + 10); nothing is left in doubt.
    expect(summary).toMatchObject({ settled: 170, rejected: 30, inDoubt: 0 });
    expect(summary.compensated).toBe(summary.rejected);
    // The audit stream holds, for every payment, the request sent to ICOM and a verified BCB answer.
    expect(result.auditCoverage).toEqual({ requests: 200, verifiedResponses: 200 });
    // The local Firehose turned the stream into Parquet (records retried by a producer collapse by record_id).
    expect(result.parquetRecords).toBeGreaterThan(0.9 * summary.auditRecords);
    expect(result.parquetRecords).toBeLessThanOrEqual(summary.auditRecords);
    // Five SPI echoes went through every worker before the first payment, and changed none of its figures.
    expect(run.output()).toMatch(/warm-up: 5 SPI echoes \(pibr\.001 → pibr\.002\) through every worker before the first payment, answered in \d+ ms/);
    // The last line of the output is the JSON summary.
    const last = run.output().trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toEqual(summary);
  }, 200_000);

  it('quarantines answers with an invalid BCB signature: SignatureInvalid, never PaymentSettled; the payments end in doubt, not reversed', async () => {
    const run = io();
    const result = await runDemo(options({ payments: 10, settlementLimitMs: 5_000, faults: { invalidSignatureRate: 1, scope: 'icom' } }), run.io);
    expect(result.summary).toMatchObject({ payments: 10, settled: 0, rejected: 0, compensated: 0, inDoubt: 10, lost: 0 });
    // The BCB decided every one (settled, or AB03 if this machine was slower than the limit):
    // selo refused to believe answers whose signature did not verify.
    expect(result.ledger.settled + result.ledger.rejected).toBe(10);
    expect(result.ledger.pending).toBe(0);
    for (const observation of result.observations.values()) expect(observation.terminal.map((t) => t.detailType)).toEqual(['PaymentInDoubt']);
  }, 200_000);
});
