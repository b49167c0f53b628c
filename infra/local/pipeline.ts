import { join } from 'node:path';
import type { BcbSimulator, BcbSimulatorOptions } from '../bcb-simulator/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { WORKER_NAMES } from '../../bin/worker-set.ts';
import type { WorkerName } from '../../bin/worker-set.ts';
import type { LocalStack } from './local-stack.ts';

/** Options of {@link startLocalPipeline}. */
export interface LocalPipelineOptions {
  /** The running stand-ins (their endpoints go into the workers' environment). */
  stack: LocalStack;
  /** A folder written by `selo pki init` (or `selo up` on first run). */
  pkiDir: string;
  /** The caller's environment: HSM settings, log level, anything to pass on. */
  env: Readonly<Record<string, string | undefined>>;
  /** Loopback address for the simulator. @defaultValue '127.0.0.1' */
  host?: string;
  /** The simulator's mTLS port; 0 picks a free one. @defaultValue 0 */
  bcbPort?: number;
  /** Simulator settings beyond the PKI (settlement limit, long poll, receivers, faults…). @defaultValue none */
  simulator?: Partial<Omit<BcbSimulatorOptions, 'tlsKey' | 'tlsCertificate' | 'clientCa' | 'signingKey'>>;
  /** Workers to start. @defaultValue all of {@link WORKER_NAMES} */
  workers?: readonly WorkerName[];
  /** Extra worker environment (e.g. `SELO_SWEEP_INTERVAL_MS`). @defaultValue none */
  workerEnv?: Readonly<Record<string, string>>;
  /** Logger of the simulator, the pool and the workers. */
  logger: Logger;
}

/** A running BCB simulator and selo's workers in one process, sharing one HSM pool. */
export interface LocalPipeline {
  readonly simulator: BcbSimulator;
  /** The environment the workers were started with (endpoints, PKI files, HSM settings). */
  readonly workerEnv: Readonly<Record<string, string>>;
  /** Health port of each started worker. */
  readonly healthPorts: Readonly<Partial<Record<WorkerName, number | undefined>>>;
  /** Sessions of the shared HSM pool. */
  readonly hsmSessions: number;
  /** Lines describing what runs where, for `selo up` and the demo. */
  describe(): string;
  /** Stops one worker (crash and restart tests); stopping a stopped one is fine. */
  stopWorker(name: WorkerName): Promise<void>;
  /** Starts a worker again after {@link LocalPipeline.stopWorker}. */
  startWorker(name: WorkerName): Promise<void>;
  /** Stops the workers, the pool and the simulator, newest first; every step runs even if one fails. */
  stop(): Promise<void>;
}

/**
 * Starts the BCB simulator and selo's workers in this process: the workers share one HSM pool
 * (all workers in a process share one pool of HSM sessions). Used by `selo up`, `selo demo` and
 * the end-to-end tests, so that the three run the same wiring.
 */
export async function startLocalPipeline(options: LocalPipelineOptions): Promise<LocalPipeline> {
  const [{ loadSimulatorPki, startBcbSimulator }, { DEV_PKI_FILES }, { startWorkerSet }] = await Promise.all([
    import('../bcb-simulator/index.ts'),
    import('../softhsm/index.ts'),
    import('../../bin/worker-set.ts'),
  ]);
  const { stack, pkiDir, logger } = options;
  const names = options.workers ?? WORKER_NAMES;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const step of stops.reverse()) await step().catch((error: unknown) => failures.push(error));
    stops.length = 0;
    if (failures.length > 0) throw new AggregateError(failures, 'the simulator or a worker did not stop cleanly');
  };
  try {
    const pki = loadSimulatorPki(pkiDir);
    const simulator = await startBcbSimulator({
      ...pki,
      ...options.simulator,
      participants: [...pki.participants, ...(options.simulator?.participants ?? [])],
      host: options.host ?? '127.0.0.1',
      port: options.bcbPort ?? 0,
      adminPort: options.simulator?.adminPort ?? null,
      logger,
    });
    stops.push(() => simulator.close());
    const workerEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(options.env)) if (value !== undefined) workerEnv[key] = value;
    Object.assign(workerEnv, stack.env(), {
      SELO_SIGNING_CERT: join(pkiDir, DEV_PKI_FILES.pspSigningCertificate),
      SELO_BCB_URL: simulator.url,
      SELO_BCB_CA: join(pkiDir, DEV_PKI_FILES.caCertificate),
      SELO_BCB_SIGNING_CERT: join(pkiDir, DEV_PKI_FILES.bcbSigningCertificate),
      SELO_TLS_CERT: join(pkiDir, DEV_PKI_FILES.pspTlsClientCertificate),
      SELO_TLS_KEY: join(pkiDir, DEV_PKI_FILES.pspTlsClientKey),
      SELO_HEALTH_PORT: '0',
      SELO_LOG_LEVEL: options.env['SELO_LOG_LEVEL'] ?? 'warn',
    }, options.workerEnv);
    const workers = await startWorkerSet({ names, env: workerEnv, logger });
    stops.push(() => workers.close());
    return {
      simulator,
      workerEnv,
      healthPorts: workers.healthPorts,
      hsmSessions: workers.hsmSessions,
      describe: () =>
        [
          `  BCB         simulator     ${simulator.url} (ICOM /api/v1, DICT /api/v2, mTLS)${simulator.adminUrl === undefined ? '' : `, admin ${simulator.adminUrl}`}`,
          // Workers run in child processes (demo --worker-processes ≥ 1) describe themselves.
          ...(workers.running().length === 0
            ? []
            : [`  workers     ${workers.running().map((name) => `${name} (health :${String(workers.healthPorts[name])})`).join(', ')}; one HSM pool of ${workers.hsmSessions} sessions`]),
          '',
        ].join('\n'),
      stopWorker: (name) => workers.stop(name),
      startWorker: (name) => workers.start(name),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}
