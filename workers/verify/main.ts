import { resolveTopology } from '../../infra/topology.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { S3ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { loadWorkerConfig, readRevocationConfig } from '../../shared/config/index.ts';
import { compileSpiSchemas } from '../../shared/iso20022/index.ts';
import { readPem } from '../../shared/hsm/index.ts';
import { bcbTrustStore } from '../../shared/bcb-client/index.ts';
import type { Env, RevocationConfig, SeloConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import { createRevocationChecker } from '../../shared/pki/index.ts';
import { launchQueueWorker, readWorkerProcessConfig, workerOutputs } from '../../shared/runtime/index.ts';
import type { LaunchedWorker, ProcessOutputs } from '../../shared/runtime/index.ts';
import { BizMsgIndex, DedupeStore, SagaStore, resolveSaga } from '../../shared/saga/index.ts';
import { DEFAULT_INBOUND_DECISION_LIMIT_MS, createVerifyHandler } from './handler.ts';
import { S3Quarantine } from './quarantine.ts';
import { decodeVerifyInput } from './verify-input.ts';
import type { VerifyInput } from './verify-input.ts';

/** The ISPB of the BCB (SPI) as it signs and sends SPI messages (`AppHdr/Fr`). */
export const BCB_ISPB = '00038166';

/** A running verify worker and what it owns. */
export type VerifyWorker = LaunchedWorker<VerifyInput>;

/** Options of {@link startVerifyWorker}. */
export interface VerifyWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.verify` */
  logger?: Logger;
  /** The process's metrics (one emitter per process: `startWorkerSet` passes it). @defaultValue metrics off */
  metrics?: Metrics;
  /** The process's audit producer and PutEvents port, shared with its other workers; closed by its owner, not here. @defaultValue outputs of the worker's own */
  outputs?: ProcessOutputs;
}

/** Reads and checks the verify worker's configuration, without I/O; a `ConfigError` names every problem. */
export function readVerifyWorkerConfig(env: Env): {
  config: SeloConfig; trustPath: string; bcbIspb: string; maxXmlBytes: number; inboundDecisionLimitMs: number; processConfig: ReturnType<typeof readWorkerProcessConfig>;
  revocation: RevocationConfig;
} {
  return loadWorkerConfig(env, (reader) => {
    const trustPath = reader.string('SELO_BCB_SIGNING_CERT');
    const bcbIspb = reader.string('SELO_BCB_ISPB', { default: BCB_ISPB });
    if (!/^[0-9A-Z]{8}$/.test(bcbIspb)) reader.problem('SELO_BCB_ISPB', `must be an ISPB (8 characters [0-9A-Z]), got ${JSON.stringify(bcbIspb)}`);
    return {
      trustPath,
      bcbIspb,
      maxXmlBytes: reader.integer('SELO_VERIFY_MAX_XML_BYTES', { default: 4 * 1024 * 1024, min: 1024, max: 64 * 1024 * 1024 }),
      // Above the SPI's 40 s only for simulations with a longer settlement limit.
      inboundDecisionLimitMs: reader.integer('SELO_INBOUND_DECISION_LIMIT_MS', { default: DEFAULT_INBOUND_DECISION_LIMIT_MS, min: 100, max: 600_000 }),
      processConfig: readWorkerProcessConfig(reader),
      // Revocation of the BCB signing certificates (docs/certificates.md).
      revocation: readRevocationConfig(reader),
    };
  });
}

/**
 * The verify worker's `main`: reads selo's configuration, `SELO_BCB_SIGNING_CERT` (PEM file with
 * one or more BCB signing certificates, required), `SELO_BCB_ISPB` (default `00038166`),
 * `SELO_VERIFY_MAX_XML_BYTES` (default 4 MiB), `SELO_INBOUND_DECISION_LIMIT_MS` (how long after a
 * pacs.008's acceptance core banking's decision is still answered, default 32000), the revocation settings
 * (`SELO_REVOCATION`, `SELO_BCB_CRL_FILES`, `SELO_BCB_CRL_ISSUERS`) and the shared worker settings, builds the real
 * clients and consumes the verify queue.
 */
export async function startVerifyWorker(options: VerifyWorkerOptions = {}): Promise<VerifyWorker> {
  const env = options.env ?? process.env;
  const { config, trustPath, bcbIspb, maxXmlBytes, inboundDecisionLimitMs, processConfig, revocation } = readVerifyWorkerConfig(env);
  const logger = options.logger ?? createLogger({ name: 'selo.verify', level: config.logLevel });
  const topology = resolveTopology(config.environment);
  const trustStore = bcbTrustStore(readPem(trustPath), bcbIspb, createRevocationChecker(revocation, { logger }));
  // Before the first message, which would otherwise wait for libxml2 and the XSDs to compile.
  await compileSpiSchemas();
  const clients = createAwsClients(config.aws);
  const table = { client: clients.dynamodb, tableName: topology.sagaTable.name };
  const sagas = new SagaStore(table);
  const index = new BizMsgIndex({ ...table, ttlAttribute: topology.sagaTable.ttlAttribute });
  // The BCB's camt.054 answering our camt.060 resolves an in-doubt payment through resolveSaga,
  // which publishes and audits on its own (as `selo saga resolve` does), exactly once: through the
  // worker's own publisher and audit producer.
  const outputs = workerOutputs('verify', { clients, topology, logger, shared: options.outputs });
  const resolveDeps = { sagas, publisher: outputs.publisher, audit: outputs.audit, source: 'selo.verify', auditWorker: 'verify' };
  return launchQueueWorker<VerifyInput>({
    name: 'verify',
    topology,
    clients,
    logger,
    processConfig,
    wiring: {
      handler: createVerifyHandler({
        ispb: config.ispb,
        bcbIspb,
        trustStore,
        sagas,
        index,
        markers: new DedupeStore({ ...table, ttlAttribute: topology.sagaTable.ttlAttribute }),
        claimCheck: new S3ClaimCheckStore({ client: clients.s3, bucket: topology.payloadBucket }),
        quarantine: new S3Quarantine({ client: clients.s3, bucket: topology.payloadBucket }),
        maxXmlBytes,
        inboundDecisionLimitMs,
        entryReports: { sagas, index, resolve: (input) => resolveSaga(resolveDeps, input) },
      }),
      decode: decodeVerifyInput,
      // A message dead-lettered here was never acted on (its claim check vanished, or a saga
      // write kept failing): operations look at it; nothing to compensate.
      failureDetailType: 'VerifyStepDeadLettered',
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      outputs,
    },
  });
}
