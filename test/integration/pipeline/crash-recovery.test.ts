import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPayment, DEMO_REJECT_REASON, RECEIVER_OF } from '../../../bin/demo/demo-plan.ts';
import { TERMINAL_EVENTS } from '../../../bin/demo/demo-report.ts';
import { DownstreamSubscriber } from '../../../bin/demo/downstream-subscriber.ts';
import { splitWorkers, startWorkerProcesses } from '../../../bin/demo/worker-processes.ts';
import type { WorkerProcesses } from '../../../bin/demo/worker-processes.ts';
import { startLocalPipeline, startLocalStack } from '../../../infra/local/index.ts';
import type { LocalPipeline, LocalStack } from '../../../infra/local/index.ts';
import { prepareLocalHsm } from '../../../infra/local/local-hsm.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

/**
 * Issue 15's acceptance: 300 payments at 30/s, the worker process SIGKILLed twice mid-run and
 * restarted, under the SPI's own 40 s settlement limit and the simulator's realistic 30 s stream
 * idle timeout. A crash may cost seconds, never a payment: none ends AB03 because of it.
 */
const PAYMENTS = 300;
const RATE = 30;

let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let pipeline: LocalPipeline;
let subscriber: DownstreamSubscriber;
const started: WorkerProcesses[] = [];

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-recovery-pki-'));
  const env = { SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin };
  await prepareLocalHsm(pkiDir, env);
  stack = await startLocalStack();
  pipeline = await startLocalPipeline({
    stack,
    pkiDir,
    env: { ...env, SOFTHSM2_CONF: token.conf },
    logger: createLogger({ name: 'recovery-test', level: 'silent' }),
    workers: [],
    // The receivers answer at once (accept, or reject AM04: compensated): any AB03 is the
    // pipeline's, never the mix's.
    simulator: { settlementLimitMs: 40_000, streamIdleTimeoutMs: 30_000, longPollMs: 1_000, participants: [{ ispb: RECEIVER_OF.reject, receiver: { mode: 'reject', reasonCode: DEMO_REJECT_REASON } }] },
    workerEnv: { SELO_BACKOFF_BASE_SECONDS: '1', SELO_BACKOFF_MAX_SECONDS: '5', SELO_SQS_WAIT_SECONDS: '1' },
  });
  subscriber = await DownstreamSubscriber.create({ clients: stack.clients, eventBusName: resolveTopology('local').eventBusName, name: 'selo-local-recovery-downstream', detailTypes: Object.keys(TERMINAL_EVENTS) });
}, 60_000);

afterAll(async () => {
  for (const workers of started) await workers.stop(5_000);
  await subscriber?.close();
  await pipeline?.stop();
  await stack?.close();
  token?.cleanup();
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

describe('recovery from crashes inside the SPI\'s limits', () => {
  it('turns no payment into an AB03, loses none and settles none twice when the workers are SIGKILLed twice at 30 payments/s, and answers again within seconds of each restart', async () => {
    const topology = resolveTopology('local');
    const terminal = new Map<string, { detailType: string; at: number; reason?: string }[]>();
    subscriber.start((event) => {
      if (event.endToEndId === undefined || TERMINAL_EVENTS[event.detailType] === undefined) return;
      const reason = (event.data as { reason?: { code?: string } } | undefined)?.reason?.code;
      terminal.set(event.endToEndId, [...(terminal.get(event.endToEndId) ?? []), { detailType: event.detailType, at: event.receivedAt, ...(reason === undefined ? {} : { reason }) }]);
    });
    started.push(await startWorkerProcesses(splitWorkers(1), pipeline.workerEnv));
    const payments: ReturnType<typeof demoPayment>[] = [];
    const publishing = (async () => {
      const begin = Date.now();
      for (let i = 0; i < PAYMENTS; i += 10) {
        const due = begin + (i / RATE) * 1000;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        const batch = Array.from({ length: 10 }, (_, j) => demoPayment(topology.eventBusName, '99999004', (i + j) % 10 === 0 ? 'reject' : 'accept', i + j, new Date()));
        payments.push(...batch);
        const result = await stack.clients.events.send(new PutEventsCommand({ Entries: batch.map((p) => p.entry) }));
        expect(result.FailedEntryCount ?? 0).toBe(0);
      }
    })();

    const recoveries: number[] = [];
    const startups: number[] = [];
    for (const after of [60, 180]) {
      // Mid-run: some payments are done, many are somewhere in the pipeline.
      await until(() => terminal.size >= after, 120_000);
      const current = started.at(-1);
      const [child] = current?.children ?? [];
      if (child === undefined) throw new Error('no worker process');
      child.kill('SIGKILL');
      await exited(child);
      const doneAtCrash = terminal.size;
      const spawnedAt = Date.now();
      started.push(await startWorkerProcesses(splitWorkers(1), pipeline.workerEnv));
      // Time from the restarted process being ready (its start took the rest) to the first outcome.
      const readyAt = Date.now();
      await until(() => terminal.size > doneAtCrash, 60_000);
      recoveries.push(Date.now() - readyAt);
      startups.push(readyAt - spawnedAt);
    }
    await publishing;
    await until(() => terminal.size === PAYMENTS, 180_000);

    const missing = payments.filter((p) => !terminal.has(p.endToEndId)).map((p) => p.endToEndId);
    expect(missing, 'payments without a terminal event').toEqual([]);
    const ab03 = [...terminal.values()].filter((events) => events.some((e) => e.reason === 'AB03')).length;
    const ledger = pipeline.simulator.ledger.summary();
    const refusals = (code: string): number => pipeline.simulator.ledger.received().filter((r) => r.error?.code === code).length;
    // A payment sent twice under other identifiers is refused as a duplicate EndToEndId; the same
    // message sent again after a crash (same BizMsgIdr, same bytes) is the SPI's idempotency at work.
    const duplicated = refusals('DUPLICATE_ENDTOENDID');
    // Figures for the session note: what two crashes cost.
    console.info(`crash recovery: ${PAYMENTS} payments at ${RATE}/s, 2 SIGKILLs; first outcome ${recoveries.join(' ms, ')} ms after each restarted process was ready (its start took ${startups.join(' ms, ')} ms); AB03 ${ab03}; ledger settled ${ledger.settled}, rejected ${ledger.rejected}; duplicated ${duplicated}; same message resent ${refusals('BIZMSGIDR_REPEATED')}`);
    expect(ab03).toBe(0);
    expect(duplicated).toBe(0);
    expect(ledger.pending).toBe(0);
    expect([ledger.settled, ledger.rejected]).toEqual([PAYMENTS * 0.9, PAYMENTS * 0.1]);
    for (const payment of payments) {
      const seen = terminal.get(payment.endToEndId) ?? [];
      // At-least-once delivery may repeat a fact after a crash; it never contradicts itself, and
      // it is what the BCB decided (a resend under other identifiers would be a ledger duplicate).
      const decided = pipeline.simulator.ledger.payment(payment.endToEndId);
      expect(new Set(seen.map((e) => e.detailType)), payment.endToEndId).toEqual(new Set([decided?.status === 'settled' ? 'PaymentSettled' : 'PaymentRejected']));
      expect(decided?.status, payment.endToEndId).toBe(payment.outcome === 'accept' ? 'settled' : 'rejected');
    }
    for (const ms of recoveries) expect(ms).toBeLessThan(5_000);
  }, 480_000);
});
