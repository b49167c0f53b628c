import { readFileSync } from 'node:fs';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { resolveTopology } from '../../infra/topology.ts';
import { KinesisAuditProducer, kinesisPutRecordsPort } from '../../shared/audit/index.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import { S3ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { EnvReader, loadConfig } from '../../shared/config/index.ts';
import type { Env } from '../../shared/config/index.ts';
import { HsmPool, readHsmConfig } from '../../shared/hsm/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { EventBridgePublisher, WorkerRuntime, eventBridgePutEventsPort } from '../../shared/runtime/index.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import { hsmSigningKey } from '../../shared/xmldsig/index.ts';
import { createSignHandler } from './handler.ts';
import { decodeSignRequest } from './sign-request.ts';
import type { SignRequest } from './sign-request.ts';

/** A running sign worker and what it owns. */
export interface SignWorker {
  runtime: WorkerRuntime<SignRequest>;
  /** Port of the health endpoint (`/live`, `/ready`). */
  healthPort: number | undefined;
  /** Stops polling, drains, flushes, closes the HSM pool (unless shared) and the clients. */
  close(): Promise<void>;
}

/** Options of {@link startSignWorker}. */
export interface SignWorkerOptions {
  /** @defaultValue process.env */
  env?: Env;
  /** @defaultValue a pino logger named `selo.sign` */
  logger?: Logger;
  /** A pool shared with other workers of the process; closed by its owner, not here. @defaultValue a pool of its own */
  hsmPool?: HsmPool;
}

/**
 * The sign worker's `main`: reads the configuration (selo's, the HSM's, `SELO_SIGNING_CERT` and
 * `SELO_HEALTH_PORT`), builds the real clients and starts consuming the sign queue.
 */
export async function startSignWorker(options: SignWorkerOptions = {}): Promise<SignWorker> {
  const env = options.env ?? process.env;
  const config = loadConfig(env);
  const reader = new EnvReader(env);
  const hsm = readHsmConfig(reader);
  const certificatePath = reader.string('SELO_SIGNING_CERT');
  const healthPort = reader.integer('SELO_HEALTH_PORT', { default: 8080, min: 0, max: 65_535 });
  const batchWaitSeconds = reader.integer('SELO_SQS_WAIT_SECONDS', { default: 20, min: 0, max: 20 });
  reader.finish();
  const logger = options.logger ?? createLogger({ name: 'selo.sign', level: config.logLevel });
  const topology = resolveTopology(config.environment);
  const declared = topology.queues.find((q) => q.key === 'sign');
  if (declared === undefined) throw new Error('the topology declares no sign queue');
  const certificate = readFileSync(certificatePath);

  const clients = createAwsClients(config.aws);
  const cleanups: (() => Promise<void>)[] = [() => Promise.resolve(clients.destroy())];
  try {
    const url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: declared.name }))).QueueUrl ?? '';
    const dlqUrl = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: declared.dlqName }))).QueueUrl ?? '';
    const pool =
      options.hsmPool ??
      new HsmPool({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, sessions: hsm.sessions, acquireTimeoutMs: hsm.acquireTimeoutMs, maxWaiting: hsm.maxWaiting, logger });
    if (options.hsmPool === undefined) {
      cleanups.push(() => pool.close());
      await pool.start();
    }
    const audit = new KinesisAuditProducer({ port: kinesisPutRecordsPort(clients.kinesis), streamName: topology.auditStream.name, logger });
    const handler = createSignHandler({
      ispb: config.ispb,
      signingKey: hsmSigningKey(pool, { label: hsm.signingKeyLabel }, certificate),
      sagas: new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name }),
      claimCheck: new S3ClaimCheckStore({ client: clients.s3, bucket: topology.payloadBucket }),
    });
    const runtime = new WorkerRuntime<SignRequest>({
      name: 'sign',
      handler,
      decode: decodeSignRequest,
      sqs: clients.sqs,
      queue: { key: 'sign', url, dlqUrl, visibilityTimeoutSeconds: declared.visibilityTimeoutSeconds, maxReceiveCount: declared.maxReceiveCount },
      publisher: new EventBridgePublisher({ port: eventBridgePutEventsPort(clients.events), eventBusName: topology.eventBusName, defaultSource: 'selo.sign', logger }),
      audit,
      logger,
      failureDetailType: 'SigningFailed',
      waitTimeSeconds: batchWaitSeconds,
      closeables: [
        { name: 'audit producer', close: () => audit.close() },
        ...(options.hsmPool === undefined ? [{ name: 'hsm pool', close: () => pool.close() }] : []),
      ],
      checks: [{ name: 'hsm', check: () => ({ ok: pool.ready(), detail: pool.health().state }) }],
      health: { port: healthPort },
    });
    await runtime.start();
    let closed = false;
    return {
      runtime,
      healthPort: runtime.healthPort,
      async close() {
        if (closed) return;
        closed = true;
        await runtime.close();
        clients.destroy();
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw error;
  }
}
