import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InboundDecider } from '../../../bin/demo/inbound-decider.ts';
import { startWorkerProcesses, splitWorkers } from '../../../bin/demo/worker-processes.ts';
import type { WorkerProcesses } from '../../../bin/demo/worker-processes.ts';
import type { FaultSettings, LedgerPayment } from '../../../infra/bcb-simulator/index.ts';
import { startLocalPipeline, startLocalStack } from '../../../infra/local/index.ts';
import type { LocalPipeline, LocalStack } from '../../../infra/local/index.ts';
import { prepareLocalHsm } from '../../../infra/local/local-hsm.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { loadConfig } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

/**
 * The receiving side through the real local stack (issue 14): the simulator's payer PSPs pay our
 * customers (selo's ISPB answers live), the workers run as `selo worker all` in child processes
 * (what one ECS task runs), core banking decides through its own rule and queue.
 */
export class InboundWorld {
  readonly ispb: string;
  readonly stack: LocalStack;
  readonly pipeline: LocalPipeline;
  readonly #token: TestToken;
  readonly #pkiDir: string;
  readonly #workers: WorkerProcesses[] = [];
  readonly #deciders: InboundDecider[] = [];

  private constructor(token: TestToken, pkiDir: string, stack: LocalStack, pipeline: LocalPipeline, ispb: string) {
    this.#token = token;
    this.#pkiDir = pkiDir;
    this.stack = stack;
    this.pipeline = pipeline;
    this.ispb = ispb;
  }

  /**
   * The stand-ins and the simulator with this settlement limit; decisions count until 5 s before it.
   * `faults` for the simulator and extra worker settings (`workerEnv`) when a test needs them.
   */
  static async start(settlementLimitMs: number, options: { faults?: FaultSettings; workerEnv?: Record<string, string> } = {}): Promise<InboundWorld> {
    const token = createTestToken();
    const pkiDir = mkdtempSync(join(tmpdir(), 'selo-inbound-pki-'));
    const env = { SELO_HSM_MODULE: token.modulePath, SELO_HSM_TOKEN_LABEL: token.tokenLabel, SELO_HSM_PIN: token.pin };
    await prepareLocalHsm(pkiDir, env);
    const stack = await startLocalStack();
    const ispb = loadConfig(stack.env()).ispb;
    const pipeline = await startLocalPipeline({
      stack,
      pkiDir,
      env: { ...env, SOFTHSM2_CONF: token.conf },
      logger: createLogger({ name: 'inbound-test', level: 'silent' }),
      workers: [],
      // The simulator's realistic 30 s stream expiry: a restarted receive worker resumes its streams.
      simulator: { settlementLimitMs, streamIdleTimeoutMs: 30_000, longPollMs: 1_000, participants: [{ ispb, receiver: { mode: 'live' } }], ...(options.faults === undefined ? {} : { faults: options.faults }) },
      workerEnv: { SELO_INBOUND_DECISION_LIMIT_MS: String(settlementLimitMs - 5_000), SELO_BACKOFF_BASE_SECONDS: '1', SELO_BACKOFF_MAX_SECONDS: '5', SELO_SQS_WAIT_SECONDS: '1', ...options.workerEnv },
    });
    return new InboundWorld(token, pkiDir, stack, pipeline, ispb);
  }

  /** `selo worker all` in a child process. */
  async startWorkers(): Promise<WorkerProcesses> {
    const workers = await startWorkerProcesses(splitWorkers(1), this.pipeline.workerEnv);
    this.#workers.push(workers);
    return workers;
  }

  /** Core banking deciding with `mix`, subscribed under `name`. */
  async decider(name: string, mix: { reject: number; never: number }): Promise<InboundDecider> {
    const decider = await InboundDecider.start({ clients: this.stack.clients, eventBusName: resolveTopology('local').eventBusName, name, mix });
    this.#deciders.push(decider);
    return decider;
  }

  /** The simulator's payments to our customers, by EndToEndId. */
  ledger(): Map<string, LedgerPayment> {
    return new Map(this.pipeline.simulator.ledger.payments().filter((p) => p.receiverIspb === this.ispb && p.kind === 'pacs.008').map((p) => [p.endToEndId, p]));
  }

  async close(): Promise<void> {
    for (const workers of this.#workers) await workers.stop(5_000);
    for (const decider of this.#deciders) await decider.close();
    await this.pipeline.stop();
    await this.stack.close();
    this.#token.cleanup();
    rmSync(this.#pkiDir, { recursive: true, force: true });
  }
}

/** Waits (bounded) until `condition` holds. */
export async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}
