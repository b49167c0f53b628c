import { COMPENSATION_TRIGGERS, resolveTopology } from '../../infra/topology.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { loadWorkerConfig } from '../../shared/config/index.ts';
import type { Env, SeloConfig } from '../../shared/config/index.ts';
import { decodeCompensationTrigger } from '../../shared/events/index.ts';
import type { CompensationTrigger } from '../../shared/events/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { countingPublisher, NO_METRICS } from '../../shared/metrics/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import { launchQueueWorker, readWorkerProcessConfig, workerAuditProducer, workerOutputs } from '../../shared/runtime/index.ts';
import type { LaunchedWorker, ProcessOutputs } from '../../shared/runtime/index.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import { createCompensateHandler } from './handler.ts';
import { InDoubtSweeper, SPI_SETTLEMENT_LIMIT_MS } from './in-doubt-sweeper.ts';

/** A running compensation worker and what it owns. */
export interface CompensateWorker extends LaunchedWorker<CompensationTrigger> {
  /** The in-doubt sweeper running in this process. */
  sweeper: InDoubtSweeper;
}

/** Options of {@link startCompensateWorker}. */
export interface CompensateWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.compensate` */
  logger?: Logger;
  /** The process's metrics (one emitter per process: `startWorkerSet` passes it). @defaultValue metrics off */
  metrics?: Metrics;
  /** The process's audit producer and PutEvents port, shared with its other workers; closed by its owner, not here. @defaultValue outputs of the worker's own */
  outputs?: ProcessOutputs;
}

/** How the worker asks the BCB about in-doubt payments (absent: it does not ask). */
export interface InDoubtQueryConfig {
  /** `SELO_IN_DOUBT_QUERY_INTERVAL_MS`: least time between two questions about one payment. @defaultValue 60000 */
  intervalMs: number;
}

/** Reads and checks the compensation worker's configuration, without I/O; a `ConfigError` names every problem. */
export function readCompensateWorkerConfig(env: Env): {
  config: SeloConfig; sweep: boolean; intervalMs: number; marginMs: number; settlementLimitMs: number; processConfig: ReturnType<typeof readWorkerProcessConfig>; query: InDoubtQueryConfig | undefined;
} {
  return loadWorkerConfig(env, (reader) => {
    // The question goes out as an event (sign → transmit; the answer: receive → verify), so the
    // sweeper needs nothing but our ISPB (required anyway) and the bus.
    const asks = reader.boolean('SELO_IN_DOUBT_QUERY', { default: true });
    const query: InDoubtQueryConfig | undefined = asks ? { intervalMs: reader.integer('SELO_IN_DOUBT_QUERY_INTERVAL_MS', { default: 60_000, min: 100, max: 86_400_000 }) } : undefined;
    return {
      // Off in every compensate task but one when the queue's consumers scale (infra/cdk: the
      // sweeper's own single-task service), so a payment is announced in doubt once.
      sweep: reader.boolean('SELO_IN_DOUBT_SWEEPER', { default: true }),
      intervalMs: reader.integer('SELO_SWEEP_INTERVAL_MS', { default: 5_000, min: 100, max: 3_600_000 }),
      marginMs: reader.integer('SELO_IN_DOUBT_MARGIN_MS', { default: 20_000, min: 0, max: 86_400_000 }),
      // The SPI's own limit is 40 s (DESIGN §2); only a simulator configured otherwise needs this.
      settlementLimitMs: reader.integer('SELO_SPI_SETTLEMENT_LIMIT_MS', { default: SPI_SETTLEMENT_LIMIT_MS, min: 100, max: 3_600_000 }),
      processConfig: readWorkerProcessConfig(reader),
      query,
    };
  });
}

/**
 * The compensation worker's `main`: the handler on the `compensate` queue (failure detail type
 * `CompensationFailed`) and the in-doubt sweeper, in one process. Reads
 * `SELO_IN_DOUBT_SWEEPER` (default true: run the sweeper in this process), `SELO_SWEEP_INTERVAL_MS`
 * (default 5000) and `SELO_IN_DOUBT_MARGIN_MS` (default 20000, added to the SPI's 40 s) besides the
 * settings every worker shares; with `SELO_IN_DOUBT_QUERY` (default true)
 * the sweeper asks the BCB about each IN_DOUBT payment at most every `SELO_IN_DOUBT_QUERY_INTERVAL_MS`
 * (default 60000) by publishing `OutcomeQueryRequested`.
 */
export async function startCompensateWorker(options: CompensateWorkerOptions = {}): Promise<CompensateWorker> {
  const env = options.env ?? process.env;
  const { config, sweep, intervalMs, marginMs, settlementLimitMs, processConfig, query } = readCompensateWorkerConfig(env);
  const logger = options.logger ?? createLogger({ name: 'selo.compensate', level: config.logLevel });
  const topology = resolveTopology(config.environment);
  const clients = createAwsClients(config.aws);
  const sagas = new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name });
  const metrics = options.metrics ?? NO_METRICS;
  const outputs = workerOutputs('compensate', { clients, topology, logger, shared: options.outputs });
  // The handler and the sweeper publish themselves, through the worker's publisher (source
  // selo.compensate). The sweeper writes its audit records through a sink of its own, closed after
  // it stops (the runtime closes the worker's sink before its closeables).
  const publisher = countingPublisher(outputs.publisher, metrics);
  const sweeperAudit = options.outputs?.audit() ?? workerAuditProducer(clients, topology.auditStream.name, logger);
  // The BCB query (camt.060 → camt.054) travels as an event through sign and transmit; the
  // verify worker resolves the payment from the answer (shared/bcb-query).
  const bcbQuery = query === undefined ? undefined : { ispb: config.ispb, intervalMs: query.intervalMs };
  const sweeper = new InDoubtSweeper({ sagas, publisher, audit: sweeperAudit, logger: logger.child({ component: 'in-doubt-sweeper' }), intervalMs, marginMs, settlementLimitMs, metrics, ...(bcbQuery === undefined ? {} : { bcbQuery }) });
  const launched = await launchQueueWorker<CompensationTrigger>({
    name: 'compensate',
    topology,
    clients,
    logger,
    processConfig,
    wiring: {
      outputs,
      handler: createCompensateHandler({ sagas, publisher, triggers: COMPENSATION_TRIGGERS }),
      decode: (data, detailType) => decodeCompensationTrigger(data, detailType),
      failureDetailType: 'CompensationFailed',
      metrics,
      // In order: the sweeper stops first, then its audit records are flushed.
      closeables: [
        { name: 'in-doubt sweeper', close: () => sweeper.close() },
        { name: 'in-doubt sweeper audit', close: () => sweeperAudit.close() },
      ],
    },
  });
  if (sweep) sweeper.start();
  return { ...launched, sweeper };
}
