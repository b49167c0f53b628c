import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalStack } from '../../infra/local/index.ts';
import type { Command, CommandIo } from './command.ts';
import { untilSignal } from './signals.ts';

const USAGE = `usage: selo up [--host 127.0.0.1] [--sqs-port 4566] [--kinesis-port 4567] [--dynamodb-port 4568] [--events-port 4569]
               [--bcb-port 4570] [--region sa-east-1] [--env local] [--pki-dir .selo/pki] [--no-workers]
Prepares the project-local SoftHSM token and development PKI (once), starts the local stand-ins
for AWS (SQS+S3, Kinesis, DynamoDB, EventBridge), creates selo's topology on them, starts the BCB
simulator and the sign and transmit workers (sharing one HSM pool; --no-workers for the stand-ins
only), prints one line "selo: ready {json}" and stays up until Ctrl-C (SIGINT) or SIGTERM.`;

/** The SoftHSM token and development PKI `selo up` made sure of. */
interface LocalHsm {
  softHsmConf: string;
  tokenLabel: string;
  pkiDir: string;
  created: boolean;
}

/**
 * Points SoftHSM at the project-local token (unless SOFTHSM2_CONF is set), creates the token and
 * the development PKI when they are missing, and says where they are.
 */
async function prepareLocalHsm(pkiDir: string, env: CommandIo['env']): Promise<LocalHsm> {
  const { EnvReader } = await import('../../shared/config/index.ts');
  const { initToken, readHsmConfig } = await import('../../shared/hsm/index.ts');
  const { DEV_PKI_FILES, initDevPki, useProjectSoftHsm } = await import('../../infra/softhsm/index.ts');
  const softHsmConf = useProjectSoftHsm(process.env);
  const reader = new EnvReader(env);
  const hsm = readHsmConfig(reader);
  reader.finish();
  if (existsSync(join(pkiDir, DEV_PKI_FILES.manifest))) return { softHsmConf, tokenLabel: hsm.tokenLabel, pkiDir, created: false };
  if (hsm.soPin !== undefined) initToken({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, soPin: hsm.soPin });
  await initDevPki({ dir: pkiDir, modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, signingKeyLabel: hsm.signingKeyLabel });
  return { softHsmConf, tokenLabel: hsm.tokenLabel, pkiDir, created: true };
}

function port(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed > 65_535) throw new RangeError(`--${name} must be a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  return parsed;
}

function describe(stack: LocalStack, hsm: LocalHsm): string {
  const lines = [
    'selo local stack',
    `  HSM         SoftHSM2      token ${hsm.tokenLabel}, SOFTHSM2_CONF=${hsm.softHsmConf}`,
    `  PKI         development   ${hsm.pkiDir}${hsm.created ? ' (created now)' : ''}`,
    `  SQS + S3    fauxqs        ${stack.endpoints.sqs}`,
    `  Kinesis     kinesalite    ${stack.endpoints.kinesis}`,
    `  DynamoDB    dynalite      ${stack.endpoints.dynamodb}`,
    `  EventBridge selo emulator ${stack.endpoints.events}`,
  ];
  const provisioned = stack.provisioned;
  if (provisioned !== undefined) {
    const t = provisioned.topology;
    lines.push(
      `  bus ${t.eventBusName}; rules ${t.rules.map((r) => r.name).join(', ')}`,
      `  queues ${t.queues.map((q) => `${q.name} (DLQ after ${q.maxReceiveCount} receives)`).join(', ')}`,
      `  audit stream ${t.auditStream.name}; buckets ${t.auditBucket}, ${t.payloadBucket}; saga table ${t.sagaTable.name}`,
      ...provisioned.warnings.map((w) => `  note: ${w}`),
    );
  }
  lines.push('  environment for workers and tools:');
  for (const [key, value] of Object.entries({ ...stack.env(), SOFTHSM2_CONF: hsm.softHsmConf, SELO_PKI_DIR: hsm.pkiDir })) {
    lines.push(`    export ${key}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        'sqs-port': { type: 'string' },
        'kinesis-port': { type: 'string' },
        'dynamodb-port': { type: 'string' },
        'events-port': { type: 'string' },
        region: { type: 'string', default: 'sa-east-1' },
        env: { type: 'string', default: 'local' },
        'pki-dir': { type: 'string' },
        'bcb-port': { type: 'string' },
        workers: { type: 'boolean', default: true },
        'no-workers': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr.write(`selo up: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let ports;
  try {
    ports = {
      sqs: port(values['sqs-port'], 'sqs-port', 4566),
      kinesis: port(values['kinesis-port'], 'kinesis-port', 4567),
      dynamodb: port(values['dynamodb-port'], 'dynamodb-port', 4568),
      events: port(values['events-port'], 'events-port', 4569),
      bcb: port(values['bcb-port'], 'bcb-port', 4570),
    };
  } catch (error) {
    io.stderr.write(`selo up: ${(error as Error).message}\n`);
    return 2;
  }
  const { REPO_ROOT } = await import('../../infra/softhsm/index.ts');
  const hsm = await prepareLocalHsm(resolve(values['pki-dir'] ?? join(REPO_ROOT, '.selo', 'pki')), io.env);
  const signal = untilSignal();
  // Loaded here, not at the top: the other commands should not pay for the AWS stand-ins.
  const { startLocalStack } = await import('../../infra/local/index.ts');
  const stack = await startLocalStack({ host: values.host, ports: { sqs: ports.sqs, kinesis: ports.kinesis, dynamodb: ports.dynamodb, events: ports.events }, region: values.region, environment: values.env });
  const stops: (() => Promise<void>)[] = [() => stack.close()];
  try {
    let pipeline = '';
    if (values.workers && !values['no-workers']) {
      const started = await startPipeline(stack, hsm.pkiDir, ports.bcb, values.host, io.env);
      stops.push(started.stop);
      pipeline = started.description;
    }
    io.stdout.write(describe(stack, hsm) + pipeline);
    io.stdout.write(`selo: ready ${JSON.stringify(stack.endpoints)}\n`);
    const received = await signal;
    io.stderr.write(`selo up: ${received} received, stopping\n`);
  } finally {
    // Newest first: workers, then the simulator and the pool, then the stand-ins.
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => io.stderr.write(`selo up: ${(error as Error).message}\n`));
  }
  io.stderr.write('selo up: stopped\n');
  return 0;
}

/**
 * The BCB simulator and the sign and transmit workers, in this process: the workers share one
 * HSM pool (DESIGN: all workers in a process share one pool of HSM sessions).
 */
async function startPipeline(stack: LocalStack, pkiDir: string, bcbPort: number, host: string, env: CommandIo['env']): Promise<{ description: string; stop: () => Promise<void> }> {
  const [{ loadSimulatorPki, startBcbSimulator }, { EnvReader }, { HsmPool, readHsmConfig }, { createLogger }, { startSignWorker }, { startTransmitWorker }, { DEV_PKI_FILES }] = await Promise.all([
    import('../../infra/bcb-simulator/index.ts'),
    import('../../shared/config/index.ts'),
    import('../../shared/hsm/index.ts'),
    import('../../shared/logging/index.ts'),
    import('../../workers/sign/index.ts'),
    import('../../workers/transmit/index.ts'),
    import('../../infra/softhsm/index.ts'),
  ]);
  const logger = createLogger({ name: 'selo.up', level: 'warn', destination: process.stderr });
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    // Every step runs even if one fails (a failing worker close must not leave the pool open).
    const failures: unknown[] = [];
    for (const step of stops.reverse()) await step().catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw new AggregateError(failures, 'the simulator or a worker did not stop cleanly');
  };
  try {
    const simulator = await startBcbSimulator({ ...loadSimulatorPki(pkiDir), host, port: bcbPort, adminPort: null, logger });
    stops.push(() => simulator.close());
    const workerEnv = {
      ...env,
      ...stack.env(),
      SELO_SIGNING_CERT: join(pkiDir, DEV_PKI_FILES.pspSigningCertificate),
      SELO_BCB_URL: simulator.url,
      SELO_BCB_CA: join(pkiDir, DEV_PKI_FILES.caCertificate),
      SELO_TLS_CERT: join(pkiDir, DEV_PKI_FILES.pspTlsClientCertificate),
      SELO_TLS_KEY: join(pkiDir, DEV_PKI_FILES.pspTlsClientKey),
      SELO_HEALTH_PORT: '0',
      SELO_LOG_LEVEL: env['SELO_LOG_LEVEL'] ?? 'warn',
    };
    const reader = new EnvReader(workerEnv);
    const hsm = readHsmConfig(reader);
    reader.finish();
    const pool = new HsmPool({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, sessions: hsm.sessions, logger });
    await pool.start();
    stops.push(() => pool.close());
    const sign = await startSignWorker({ env: workerEnv, hsmPool: pool, logger });
    stops.push(() => sign.close());
    const transmit = await startTransmitWorker({ env: workerEnv, logger });
    stops.push(() => transmit.close());
    const description = [
      `  BCB         simulator     ${simulator.url} (ICOM /api/v1, DICT /api/v2, mTLS)`,
      `  workers     sign (health :${String(sign.healthPort)}), transmit (health :${String(transmit.healthPort)}); one HSM pool of ${hsm.sessions} sessions`,
      '',
    ].join('\n');
    return { description, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** `selo up`: the local stack for people and scripts. */
export const upCommand: Command = { name: 'up', summary: 'start the local AWS stand-ins with selo\'s topology; Ctrl-C stops them', run };
