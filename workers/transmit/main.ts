import { resolveTopology } from '../../infra/topology.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { BcbHttpClient, ICOM_MAX_MESSAGES_PER_POST, IcomClient, bcbTlsOptions, readBcbConnectionConfig } from '../../shared/bcb-client/index.ts';
import { S3ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { loadWorkerConfig } from '../../shared/config/index.ts';
import type { Env, SeloConfig } from '../../shared/config/index.ts';
import { decodeMessageSigned } from '../../shared/events/index.ts';
import type { MessageSignedData } from '../../shared/events/index.ts';
import { HsmPool } from '../../shared/hsm/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { Metrics } from '../../shared/metrics/index.ts';
import { launchQueueWorker, readWorkerProcessConfig, workerOutputs } from '../../shared/runtime/index.ts';
import type { LaunchedWorker, ProcessOutputs } from '../../shared/runtime/index.ts';
import { DedupeStore, SagaStore } from '../../shared/saga/index.ts';
import { createTransmitHandler } from './handler.ts';
import type { IcomPort } from './handler.ts';
import { MultipartIcomPort } from './multipart-icom-port.ts';

/** A running transmit worker and what it owns. */
export interface TransmitWorker extends LaunchedWorker<MessageSignedData> {
  /** TLS handshakes and requests to the BCB so far (connection reuse). */
  bcbStats(): { handshakes: number; requests: number };
}

/** Options of {@link startTransmitWorker}. */
export interface TransmitWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.transmit` */
  logger?: Logger;
  /**
   * A pool shared with other workers of the process, for the readiness of an HSM-held TLS key
   * (`SELO_TLS_KEY_LABEL`); closed by its owner, not here. @defaultValue a one-session pool of its own when the key is in the HSM
   */
  hsmPool?: HsmPool;
  /** The process's metrics (one emitter per process: `startWorkerSet` passes it). @defaultValue metrics off */
  metrics?: Metrics;
  /** The process's audit producer and PutEvents port, shared with its other workers; closed by its owner, not here. @defaultValue outputs of the worker's own */
  outputs?: ProcessOutputs;
}

/** Reads and checks the transmit worker's configuration, without I/O; a `ConfigError` names every problem. */
export function readTransmitWorkerConfig(env: Env): {
  config: SeloConfig;
  bcb: ReturnType<typeof readBcbConnectionConfig>;
  icomUrl: string;
  dictUrl: string;
  icomGzip: boolean;
  icomMultipart: { maxMessages: number; lingerMs: number };
  markerItem: boolean;
  processConfig: ReturnType<typeof readWorkerProcessConfig>;
} {
  return loadWorkerConfig(env, (reader) => {
    const bcb = readBcbConnectionConfig(reader);
    return {
      bcb,
      icomUrl: bcb.url,
      dictUrl: reader.optionalString('SELO_BCB_DICT_URL') ?? bcb.url,
      // Off by default: the ICOM manual 1.12 §2.1.5 recommends gzip on the primary channel (the
      // one selo posts payments to) and requires it only on the secondary one.
      icomGzip: reader.boolean('SELO_ICOM_GZIP', { default: false }),
      // SPI messages per ICOM POST (multipart/mixed): 1 (off, one POST per message) to the ICOM's
      // limit of 10 (ICOM manual 1.12 §2.2.1; ICOM_MAX_MESSAGES_PER_POST). DICT requests are
      // always one per call.
      icomMultipart: {
        maxMessages: reader.integer('SELO_ICOM_MULTIPART_MAX', { default: 1, min: 1, max: ICOM_MAX_MESSAGES_PER_POST }),
        lingerMs: reader.integer('SELO_ICOM_MULTIPART_LINGER_MS', { default: 10, min: 0, max: 1000 }),
      },
      // The may-have-arrived marker in its own item too, as transmit workers before it moved into
      // the saga wrote and read it: on only while a rolling deploy runs such tasks beside these
      // (docs/deploying.md, "Upgrading").
      markerItem: reader.boolean('SELO_TRANSMIT_MARKER_ITEM', { default: false }),
      processConfig: readWorkerProcessConfig(reader),
    };
  });
}

/** The client itself (one POST per message), or, with a maximum above 1, a port that batches. */
function icomPort(client: IcomClient, multipart: { maxMessages: number; lingerMs: number }): IcomPort {
  return multipart.maxMessages === 1 ? client : new MultipartIcomPort({ client, ...multipart });
}

/**
 * The transmit worker's `main`. Reads `SELO_BCB_URL` (ICOM origin), `SELO_BCB_DICT_URL` (default
 * the same), `SELO_BCB_CA` (the pinned BCB CA, PEM file), `SELO_TLS_CERT` (client certificate)
 * and either `SELO_TLS_KEY` (PEM file) or `SELO_TLS_KEY_LABEL` (a key in the HSM, used through
 * the OpenSSL pkcs11 engine with the `SELO_HSM_*` settings), plus `SELO_BCB_TIMEOUT_MS` and
 * `SELO_ICOM_GZIP` (true: POST bodies to ICOM go gzip-compressed; default false),
 * `SELO_ICOM_MULTIPART_MAX` (SPI messages per ICOM POST, 1 to 10; default 1, one POST per message)
 * and `SELO_ICOM_MULTIPART_LINGER_MS` (how long a message waits for batch-mates; default 10).
 */
export async function startTransmitWorker(options: TransmitWorkerOptions = {}): Promise<TransmitWorker> {
  const env = options.env ?? process.env;
  const { config, bcb, icomUrl, dictUrl, icomGzip, icomMultipart, markerItem, processConfig } = readTransmitWorkerConfig(env);
  const logger = options.logger ?? createLogger({ name: 'selo.transmit', level: config.logLevel });
  const topology = resolveTopology(config.environment);

  // An HSM-held TLS key (the OpenSSL pkcs11 engine signs each handshake): /ready reports the HSM
  // as the sign worker does, from a pool on the same token (the process's shared one, if any).
  const ownPool = bcb.key.kind === 'hsm' && options.hsmPool === undefined;
  const hsmPool = bcb.key.kind !== 'hsm' ? undefined : (options.hsmPool ?? new HsmPool({ modulePath: bcb.key.hsm.modulePath, tokenLabel: bcb.key.hsm.tokenLabel, pin: bcb.key.hsm.pin, sessions: 1, logger }));
  if (ownPool) await hsmPool?.start();
  const tls = bcbTlsOptions(bcb);
  const timeouts = { headersTimeoutMs: bcb.timeoutMs, bodyTimeoutMs: bcb.timeoutMs, ...(options.metrics === undefined ? {} : { metrics: options.metrics }) };
  const icomHttp = new BcbHttpClient({ origin: icomUrl, tls, ...timeouts });
  const dictHttp = dictUrl === icomUrl ? icomHttp : new BcbHttpClient({ origin: dictUrl, tls, ...timeouts });
  const clients = createAwsClients(config.aws);
  const closeHttp = async (): Promise<void> => {
    await icomHttp.close();
    if (dictHttp !== icomHttp) await dictHttp.close();
  };
  let launched: LaunchedWorker<MessageSignedData>;
  try {
    launched = await launchQueueWorker<MessageSignedData>({
      name: 'transmit',
      topology,
      clients,
      logger,
      processConfig,
      wiring: {
        outputs: workerOutputs('transmit', { clients, topology, logger, shared: options.outputs }),
        handler: createTransmitHandler({
          icom: icomPort(new IcomClient({ http: icomHttp, ispb: config.ispb, gzip: icomGzip }), icomMultipart),
          dict: dictHttp,
          ispb: config.ispb,
          sagas: new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name }),
          dedupe: new DedupeStore({ client: clients.dynamodb, tableName: topology.sagaTable.name }),
          markerItem,
          claimCheck: new S3ClaimCheckStore({ client: clients.s3, bucket: topology.payloadBucket }),
          claimCheckBucket: topology.payloadBucket,
        }),
        decode: (data) => decodeMessageSigned(data),
        // Not TransmissionFailed: a dead-lettered transmit message proves nothing about the payment
        // (it may have reached the BCB), so operations look at it rather than compensation.
        failureDetailType: 'TransmitStepDeadLettered',
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        closeables: [{ name: 'bcb http clients', close: closeHttp }, ...(ownPool && hsmPool !== undefined ? [{ name: 'hsm pool', close: () => hsmPool.close() }] : [])],
        checks: hsmPool === undefined ? [] : [{ name: 'hsm', check: () => ({ ok: hsmPool.ready(), detail: hsmPool.health().state }) }],
      },
    });
  } catch (error) {
    // The runtime never started, so it will not close them.
    await closeHttp().catch(() => undefined);
    if (ownPool) await hsmPool?.close().catch(() => undefined);
    throw error;
  }
  return {
    ...launched,
    bcbStats: () => {
      const a = icomHttp.stats();
      const b = dictHttp === icomHttp ? { handshakes: 0, requests: 0 } : dictHttp.stats();
      return { handshakes: a.handshakes + b.handshakes, requests: a.requests + b.requests };
    },
  };
}
