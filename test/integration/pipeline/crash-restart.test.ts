import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPayment, RECEIVER_OF } from '../../../bin/demo/demo-plan.ts';
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

const PAYMENTS = 120;

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
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-crash-pki-'));
  const env = { SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin };
  await prepareLocalHsm(pkiDir, env);
  stack = await startLocalStack();
  pipeline = await startLocalPipeline({
    stack,
    pkiDir,
    env: { ...env, SOFTHSM2_CONF: token.conf },
    logger: createLogger({ name: 'crash-test', level: 'silent' }),
    workers: [],
    // Long enough that messages waiting out a visibility timeout after the crash still settle.
    simulator: { settlementLimitMs: 180_000, streamIdleTimeoutMs: 3_000, longPollMs: 1_000, participants: [{ ispb: RECEIVER_OF.reject, receiver: { mode: 'reject', reasonCode: 'AM04' } }] },
    workerEnv: { SELO_IN_DOUBT_MARGIN_MS: '600000', SELO_BACKOFF_BASE_SECONDS: '1', SELO_BACKOFF_MAX_SECONDS: '5', SELO_SQS_WAIT_SECONDS: '1' },
  });
  subscriber = await DownstreamSubscriber.create({ clients: stack.clients, eventBusName: resolveTopology('local').eventBusName, name: 'selo-local-crash-downstream', detailTypes: Object.keys(TERMINAL_EVENTS) });
}, 60_000);

afterAll(async () => {
  for (const workers of started) await workers.stop(5_000);
  await subscriber?.close();
  await pipeline?.stop();
  await stack?.close();
  token?.cleanup();
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

describe('crash and restart of the worker process', () => {
  it('loses no payment and transmits none twice under other identifiers when the workers are SIGKILLed mid-run and restarted', async () => {
    const topology = resolveTopology('local');
    const terminal = new Map<string, string[]>();
    subscriber.start((event) => {
      if (event.endToEndId === undefined || TERMINAL_EVENTS[event.detailType] === undefined) return;
      terminal.set(event.endToEndId, [...(terminal.get(event.endToEndId) ?? []), event.detailType]);
    });
    // `selo worker all` as its own process: what one ECS task runs.
    const first = await startWorkerProcesses(splitWorkers(1), pipeline.workerEnv);
    started.push(first);
    const payments = Array.from({ length: PAYMENTS }, (_, i) => demoPayment(topology.eventBusName, '99999004', i % 10 === 0 ? 'reject' : 'accept', i, new Date()));
    for (let i = 0; i < payments.length; i += 10) {
      const result = await stack.clients.events.send(new PutEventsCommand({ Entries: payments.slice(i, i + 10).map((p) => p.entry) }));
      expect(result.FailedEntryCount ?? 0).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Mid-run: some payments are done, many are somewhere in the pipeline.
    await until(() => terminal.size >= 15, 120_000);
    expect(terminal.size).toBeLessThan(PAYMENTS);
    const [child] = first.children;
    if (child === undefined) throw new Error('no worker process');
    child.kill('SIGKILL');
    await exited(child);
    const doneAtCrash = terminal.size;

    started.push(await startWorkerProcesses(splitWorkers(1), pipeline.workerEnv));
    await until(() => terminal.size === PAYMENTS, 240_000);

    const missing = payments.filter((p) => !terminal.has(p.endToEndId)).map((p) => p.endToEndId);
    expect(missing, `payments without a terminal event (${doneAtCrash} were done at the crash)`).toEqual([]);
    // The BCB saw each payment once: a resend under another BizMsgIdr would be refused as a
    // duplicate EndToEndId (RJCT DU03) and counted here.
    await pipeline.simulator.idle();
    const ledger = pipeline.simulator.ledger.summary();
    expect(ledger.duplicates).toBe(0);
    expect(ledger.pending).toBe(0);
    expect(ledger.settled + ledger.rejected).toBe(PAYMENTS);
    for (const payment of payments) {
      const seen = terminal.get(payment.endToEndId) ?? [];
      // At-least-once delivery may repeat a fact after a crash; it never contradicts itself.
      expect(new Set(seen).size, `${payment.endToEndId}: ${seen.join(', ')}`).toBe(1);
      const decided = pipeline.simulator.ledger.payment(payment.endToEndId);
      expect(seen[0]).toBe(decided?.status === 'settled' ? 'PaymentSettled' : 'PaymentRejected');
    }
  }, 420_000);
});
