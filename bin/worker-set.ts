import type { HsmPool } from '../shared/hsm/index.ts';
import type { Logger } from '../shared/logging/index.ts';
import type { Metrics } from '../shared/metrics/index.ts';
import type { AwsClients } from '../shared/aws/index.ts';
import type { ProcessOutputs } from '../shared/runtime/index.ts';

/** The workers selo runs, in pipeline order. */
export const WORKER_NAMES = ['sign', 'transmit', 'receive', 'verify', 'compensate'] as const;

/** One of {@link WORKER_NAMES}. */
export type WorkerName = (typeof WORKER_NAMES)[number];

/** What a worker set needs of a started worker. */
export interface StartedWorker {
  readonly healthPort: number | undefined;
  close(): Promise<void>;
}

/** Options of {@link startWorkerSet}. */
export interface WorkerSetOptions {
  /** Workers to start, in this order. */
  names: readonly WorkerName[];
  /** Their configuration (see README). */
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
  /** Where the process's metrics lines go when `SELO_METRICS=emf`. @defaultValue standard output */
  writeMetrics?: (line: string) => void;
}

/** Several workers in one process sharing one HSM pool (when one of them signs), one audit producer and one PutEvents port. */
export interface WorkerSet {
  /** Health port of each running worker. */
  readonly healthPorts: Readonly<Partial<Record<WorkerName, number | undefined>>>;
  /** Sessions of the shared HSM pool, or 0 when no worker needs it. */
  readonly hsmSessions: number;
  /** The running workers, in start order. */
  running(): WorkerName[];
  /** Starts a worker (again); starting a running one does nothing. */
  start(name: WorkerName): Promise<void>;
  /** Stops one worker; stopping a stopped one is fine. */
  stop(name: WorkerName): Promise<void>;
  /** The process's one metrics emitter (`SELO_METRICS`), shared by its workers and its HSM pool. */
  readonly metrics: Metrics;
  /** Stops every worker together, then the shared audit producer, then the pool, then writes the last metrics; every step runs even if one fails. */
  close(): Promise<void>;
}

/**
 * One process, several health servers: with more than one worker, a fixed `SELO_HEALTH_PORT`
 * (default 8080) is the first of a range, each worker taking the base plus its index in
 * {@link WORKER_NAMES} (sign 8080, transmit 8081, receive 8082, verify 8083, compensate 8084);
 * 0 stays 0 (any free port).
 */
export function healthEnv(env: Readonly<Record<string, string | undefined>>, name: WorkerName, workers: number): Readonly<Record<string, string | undefined>> {
  if (workers <= 1) return env;
  const base = Number(env['SELO_HEALTH_PORT'] ?? '8080');
  if (!Number.isInteger(base) || base === 0) return env;
  return { ...env, SELO_HEALTH_PORT: String(base + WORKER_NAMES.indexOf(name)) };
}

/** Parses `sign,transmit` or `all` into worker names; undefined when a name is unknown. */
export function parseWorkerNames(text: string): WorkerName[] | undefined {
  if (text === 'all') return [...WORKER_NAMES];
  const names = text.split(',').map((n) => n.trim());
  if (names.length === 0 || names.some((n) => !(WORKER_NAMES as readonly string[]).includes(n))) return undefined;
  return [...new Set(names as WorkerName[])];
}

/**
 * Reads every named worker's configuration (no I/O) and throws one `ConfigError` naming every
 * problem of every worker, each once, with the workers it stops (`SELO_BCB_URL is required
 * (transmit, receive)`), instead of the first worker's alone.
 */
export async function checkWorkerConfig(names: readonly WorkerName[], env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const { ConfigError } = await import('../shared/config/index.ts');
  const readers: Record<WorkerName, () => Promise<unknown>> = {
    sign: async () => (await import('../workers/sign/index.ts')).readSignWorkerConfig(healthEnv(env, 'sign', names.length)),
    transmit: async () => (await import('../workers/transmit/index.ts')).readTransmitWorkerConfig(healthEnv(env, 'transmit', names.length)),
    receive: async () => (await import('../workers/receive/index.ts')).readReceiveWorkerConfig(healthEnv(env, 'receive', names.length)),
    verify: async () => (await import('../workers/verify/index.ts')).readVerifyWorkerConfig(healthEnv(env, 'verify', names.length)),
    compensate: async () => (await import('../workers/compensate/index.ts')).readCompensateWorkerConfig(healthEnv(env, 'compensate', names.length)),
  };
  const problems = new Map<string, { variable: string; problem: string; workers: WorkerName[] }>();
  for (const name of names) {
    try {
      await readers[name]();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const p of error.problems) {
        const key = `${p.variable}\u0000${p.problem}`;
        const seen = problems.get(key) ?? { ...p, workers: [] };
        seen.workers.push(name);
        problems.set(key, seen);
      }
    }
  }
  if (problems.size === 0) return;
  const withWorkers = names.length > 1;
  throw new ConfigError([...problems.values()].map((p) => ({ variable: p.variable, problem: withWorkers ? `${p.problem} (${p.workers.join(', ')})` : p.problem })));
}

/**
 * Starts workers in this process (what one ECS Fargate task runs, and what `selo up`, the demo
 * and the end-to-end tests run): all workers in a process share one pool of HSM sessions. Every
 * worker's configuration is checked first ({@link checkWorkerConfig}).
 */
export async function startWorkerSet(options: WorkerSetOptions): Promise<WorkerSet> {
  const { logger } = options;
  const baseEnv = options.env;
  await checkWorkerConfig(options.names, baseEnv);
  const [{ EnvReader }, { readMetricsConfig, startProcessMetrics }] = await Promise.all([import('../shared/config/index.ts'), import('../shared/metrics/index.ts')]);
  const metricsReader = new EnvReader(baseEnv);
  const metricsConfig = readMetricsConfig(metricsReader, baseEnv['SELO_ENV'] ?? 'local');
  metricsReader.finish();
  // One emitter per process: every worker and the shared HSM pool record into it (issue 19).
  const processMetrics = startProcessMetrics(metricsConfig, options.names.join(','), options.writeMetrics);
  const { metrics } = processMetrics;
  // Several workers: one audit producer and one PutEvents port for all of them (shared/runtime's
  // ProcessOutputs), on clients of their own, closed after every worker stopped.
  let outputs: { shared: ProcessOutputs; clients: AwsClients } | undefined;
  if (options.names.length > 1) {
    const [{ loadWorkerConfig }, { createAwsClients }, { resolveTopology }, { ProcessOutputs: Outputs, eventBridgePutEventsPort }, { kinesisPutRecordsPort }] = await Promise.all([
      import('../shared/config/index.ts'),
      import('../shared/aws/index.ts'),
      import('../infra/topology.ts'),
      import('../shared/runtime/index.ts'),
      import('../shared/audit/index.ts'),
    ]);
    try {
      const { config } = loadWorkerConfig(baseEnv, () => ({}));
      const topology = resolveTopology(config.environment);
      const clients = createAwsClients(config.aws);
      const ports = { putRecords: kinesisPutRecordsPort(clients.kinesis), putEvents: eventBridgePutEventsPort(clients.events) };
      outputs = { shared: new Outputs({ ...ports, auditStreamName: topology.auditStream.name, eventBusName: topology.eventBusName, logger }), clients };
    } catch (error) {
      await processMetrics.close().catch(() => undefined);
      throw error;
    }
  }
  let pool: HsmPool | undefined;
  let hsmSessions = 0;
  if (options.names.includes('sign')) {
    try {
      const { HsmPool: Pool, readHsmConfig } = await import('../shared/hsm/index.ts');
      const reader = new EnvReader(baseEnv);
      const hsm = readHsmConfig(reader);
      reader.finish();
      pool = new Pool({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, sessions: hsm.sessions, logger, metrics });
      await pool.start();
      hsmSessions = hsm.sessions;
    } catch (error) {
      // Nothing started yet but the metrics and the outputs' clients (no records, no sockets).
      outputs?.clients.destroy();
      await processMetrics.close().catch(() => undefined);
      throw error;
    }
  }
  const shared = pool;
  const withOutputs = outputs === undefined ? {} : { outputs: outputs.shared };
  const envOf = (name: WorkerName): Readonly<Record<string, string | undefined>> => healthEnv(baseEnv, name, options.names.length);
  const starters: Record<WorkerName, () => Promise<StartedWorker>> = {
    sign: async () => {
      if (shared === undefined) throw new Error('the sign worker needs the HSM pool');
      return (await import('../workers/sign/index.ts')).startSignWorker({ env: envOf('sign'), hsmPool: shared, logger, metrics, ...withOutputs });
    },
    transmit: async () => (await import('../workers/transmit/index.ts')).startTransmitWorker({ env: envOf('transmit'), logger, metrics, ...(shared === undefined ? {} : { hsmPool: shared }), ...withOutputs }),
    receive: async () => (await import('../workers/receive/index.ts')).startReceiveWorker({ env: envOf('receive'), logger, metrics, ...withOutputs }),
    verify: async () => (await import('../workers/verify/index.ts')).startVerifyWorker({ env: envOf('verify'), logger, metrics, ...withOutputs }),
    compensate: async () => (await import('../workers/compensate/index.ts')).startCompensateWorker({ env: envOf('compensate'), logger, metrics, ...withOutputs }),
  };
  const running = new Map<WorkerName, StartedWorker>();
  let closed = false;
  const healthPorts: Partial<Record<WorkerName, number | undefined>> = {};
  const set: WorkerSet = {
    healthPorts,
    hsmSessions,
    metrics,
    running: () => [...running.keys()],
    async start(name) {
      if (closed) throw new Error(`the worker set is closed; ${name} cannot start`);
      if (running.has(name)) return;
      const worker = await starters[name]();
      running.set(name, worker);
      healthPorts[name] = worker.healthPort;
    },
    async stop(name) {
      const worker = running.get(name);
      running.delete(name);
      await worker?.close();
    },
    async close() {
      closed = true;
      const failures: unknown[] = [];
      // Together: each worker stops taking messages at once and then drains, so one that waits
      // for its messages in flight (a dead dependency: up to its drain timeout) does not leave
      // the others polling meanwhile.
      await Promise.all([...running.keys()].map((name) => set.stop(name).catch((error: unknown) => failures.push(error))));
      if (outputs !== undefined) {
        const { shared: closing, clients } = outputs;
        outputs = undefined;
        await closing.close().catch((error: unknown) => failures.push(error));
        clients.destroy();
      }
      await pool?.close().catch((error: unknown) => failures.push(error));
      pool = undefined;
      await processMetrics.close().catch((error: unknown) => failures.push(error));
      if (failures.length > 0) throw new AggregateError(failures, 'a worker, the audit producer or the HSM pool did not stop cleanly');
    },
  };
  try {
    for (const name of options.names) await set.start(name);
  } catch (error) {
    await set.close().catch(() => undefined);
    throw error;
  }
  return set;
}
