import { resolveTopology } from '../../infra/topology.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { S3ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { loadWorkerConfig } from '../../shared/config/index.ts';
import type { Env, SeloConfig } from '../../shared/config/index.ts';
import { HsmPool, readHsmConfig, readPem } from '../../shared/hsm/index.ts';
import { compileSpiSchemas } from '../../shared/iso20022/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import { launchQueueWorker, readWorkerProcessConfig, workerOutputs } from '../../shared/runtime/index.ts';
import type { LaunchedWorker, ProcessOutputs } from '../../shared/runtime/index.ts';
import { BizMsgIndex, SagaStore } from '../../shared/saga/index.ts';
import { hsmSigningKey } from '../../shared/xmldsig/index.ts';
import { createSignHandler } from './handler.ts';
import { decodeSignRequest } from './sign-request.ts';
import type { SignRequest } from './sign-request.ts';

/** A running sign worker and what it owns. */
export type SignWorker = LaunchedWorker<SignRequest>;

/** Options of {@link startSignWorker}. */
export interface SignWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.sign` */
  logger?: Logger;
  /** A pool shared with other workers of the process; closed by its owner, not here. @defaultValue a pool of its own */
  hsmPool?: HsmPool;
  /** The process's metrics (one emitter per process: `startWorkerSet` passes it). @defaultValue metrics off */
  metrics?: Metrics;
  /** The process's audit producer and PutEvents port, shared with its other workers; closed by its owner, not here. @defaultValue outputs of the worker's own */
  outputs?: ProcessOutputs;
}

/** Reads and checks the sign worker's configuration, without I/O; a `ConfigError` names every problem. */
export function readSignWorkerConfig(env: Env): { config: SeloConfig; hsm: ReturnType<typeof readHsmConfig>; certificatePath: string; legacyMessageIds: boolean; processConfig: ReturnType<typeof readWorkerProcessConfig> } {
  return loadWorkerConfig(env, (reader) => ({
    hsm: readHsmConfig(reader),
    certificatePath: reader.string('SELO_SIGNING_CERT'),
    legacyMessageIds: reader.boolean('SELO_SIGN_LEGACY_MESSAGE_IDS', { default: false }),
    processConfig: readWorkerProcessConfig(reader),
  }));
}

/**
 * The sign worker's `main`: reads the configuration (selo's, the HSM's, `SELO_SIGNING_CERT`,
 * `SELO_HEALTH_PORT`, `SELO_SQS_WAIT_SECONDS`), builds the real clients and consumes the sign
 * queue.
 */
export async function startSignWorker(options: SignWorkerOptions = {}): Promise<SignWorker> {
  const env = options.env ?? process.env;
  const { config, hsm, certificatePath, legacyMessageIds, processConfig } = readSignWorkerConfig(env);
  const logger = options.logger ?? createLogger({ name: 'selo.sign', level: config.logLevel });
  const topology = resolveTopology(config.environment);
  // SELO_SIGNING_CERT is a PEM file, or the PEM itself (an ECS secret from Secrets Manager).
  const certificate = Buffer.from(readPem(certificatePath));

  const clients = createAwsClients(config.aws);
  const ownPool = options.hsmPool === undefined;
  const pool = options.hsmPool ?? new HsmPool({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, sessions: hsm.sessions, acquireTimeoutMs: hsm.acquireTimeoutMs, maxWaiting: hsm.maxWaiting, logger, ...(options.metrics === undefined ? {} : { metrics: options.metrics }) });
  try {
    // Before the first message, which would otherwise wait for it.
    await compileSpiSchemas();
    if (ownPool) await pool.start();
    return await launchQueueWorker<SignRequest>({
      name: 'sign',
      topology,
      clients,
      logger,
      processConfig,
      wiring: {
        outputs: workerOutputs('sign', { clients, topology, logger, shared: options.outputs }),
        handler: createSignHandler({
          ispb: config.ispb,
          signingKey: hsmSigningKey(pool, { label: hsm.signingKeyLabel }, certificate),
          sagas: new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name }),
          claimCheck: new S3ClaimCheckStore({ client: clients.s3, bucket: topology.payloadBucket }),
          bizMsgIndex: new BizMsgIndex({ client: clients.dynamodb, tableName: topology.sagaTable.name, ttlAttribute: topology.sagaTable.ttlAttribute }),
          legacyMessageIds,
        }),
        decode: decodeSignRequest,
        failureDetailType: 'SigningFailed',
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        closeables: ownPool ? [{ name: 'hsm pool', close: () => pool.close() }] : [],
        checks: [{ name: 'hsm', check: () => ({ ok: pool.ready(), detail: pool.health().state }) }],
      },
    });
  } catch (error) {
    // The runtime never started, so it closes none of these (launchQueueWorker destroyed the
    // clients if it got that far; destroying them again is harmless).
    if (ownPool) await pool.close().catch(() => undefined);
    clients.destroy();
    throw error;
  }
}
