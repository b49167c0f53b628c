import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalStack } from '../../infra/local/index.ts';
import type { LocalHsm } from '../../infra/local/local-hsm.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { INBOUND_FLAG_HELP, INBOUND_FLAG_OPTIONS, inboundTrafficFlags } from './inbound-flags.ts';
import { portOption } from './options.ts';
import { untilSignal } from './signals.ts';

const UP_HELP: CommandHelp = {
  usage: [
    'selo up [--host 127.0.0.1] [--sqs-port 4566] [--kinesis-port 4567] [--dynamodb-port 4568] [--events-port 4569]',
    '        [--bcb-port 4570] [--bcb-admin-port <port>] [--region sa-east-1] [--env local] [--pki-dir .selo/pki] [--no-workers]',
    '        [--inbound-rate N [--inbound-count N] [--inbound-to ISPB] [--inbound-payers 99999010,99999011]]',
  ],
  description: `Prepares the project-local SoftHSM token and development PKI (once), starts the local stand-ins
for AWS (SQS+S3, Kinesis, DynamoDB, EventBridge), creates selo's topology on them, starts the BCB
simulator and every worker (sign, transmit, receive, verify, compensate, sharing one HSM pool),
prints one line "selo: ready {json}" and stays up until Ctrl-C (SIGINT) or SIGTERM.
The simulator forwards pacs.008 addressed to selo's ISPB to selo's stream and waits for selo's own
pacs.002 (receiver mode live): nothing answers on selo's behalf.`,
  options: [
    { flag: '--host <address>', description: 'the loopback address everything binds (default 127.0.0.1)' },
    { flag: '--sqs-port <port>', description: 'SQS and S3, fauxqs (default 4566)' },
    { flag: '--kinesis-port <port>', description: 'Kinesis, kinesalite (default 4567)' },
    { flag: '--dynamodb-port <port>', description: 'DynamoDB, dynalite (SELO_LOCAL_DYNAMODB=dynamodb-local: DynamoDB Local) (default 4568)' },
    { flag: '--events-port <port>', description: 'EventBridge, selo\'s emulator (default 4569)' },
    { flag: '--bcb-port <port>', description: 'the BCB simulator\'s mTLS port (default 4570)' },
    { flag: '--bcb-admin-port <port>', description: 'open the simulator\'s plain-HTTP admin endpoint there (0: any free port; default none)' },
    { flag: '--region <region>', description: 'the AWS region the clients name (default sa-east-1)' },
    { flag: '--env <name>', description: 'the environment, which prefixes every resource name (default local)' },
    { flag: '--pki-dir <dir>', description: 'the development PKI (default .selo/pki)' },
    { flag: '--no-workers', description: 'the stand-ins and the simulator only: then run "selo worker all" with the printed exports' },
    ...INBOUND_FLAG_HELP,
  ],
};


/** What a worker started by hand needs from the pipeline's environment (no secrets: the local token's PIN is the development default). */
const WORKER_VARIABLES = ['SELO_SIGNING_CERT', 'SELO_BCB_URL', 'SELO_BCB_CA', 'SELO_BCB_SIGNING_CERT', 'SELO_TLS_CERT', 'SELO_TLS_KEY'] as const;

function describe(stack: LocalStack, hsm: LocalHsm, workerEnv: Readonly<Record<string, string>>): string {
  const lines = [
    'selo local stack',
    `  HSM         SoftHSM2      token ${hsm.tokenLabel}, SOFTHSM2_CONF=${hsm.softHsmConf}`,
    `  PKI         development   ${hsm.pkiDir}${hsm.created ? ' (created now)' : ''}`,
    `  SQS + S3    fauxqs        ${stack.endpoints.sqs}`,
    `  Kinesis     kinesalite    ${stack.endpoints.kinesis}`,
    `  DynamoDB    ${stack.dynamodbStandIn === 'dynalite' ? 'dynalite      ' : 'DynamoDB Local'} ${stack.endpoints.dynamodb}`,
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
  const fromPipeline = Object.fromEntries(WORKER_VARIABLES.flatMap((name) => (workerEnv[name] === undefined ? [] : [[name, workerEnv[name]]])));
  for (const [key, value] of Object.entries({ ...stack.env(), SOFTHSM2_CONF: hsm.softHsmConf, SELO_PKI_DIR: hsm.pkiDir, ...fromPipeline })) {
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
        'bcb-admin-port': { type: 'string' },
        ...INBOUND_FLAG_OPTIONS,
        workers: { type: 'boolean', default: true },
        'no-workers': { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr.write(`selo up: ${(error as Error).message}\n${formatUsage(upCommand)}`);
    return 2;
  }
  let ports;
  let bcbAdminPort: number | undefined;
  try {
    bcbAdminPort = values['bcb-admin-port'] === undefined ? undefined : portOption(values['bcb-admin-port'], 'bcb-admin-port', 0);
    // Format only here (selo's ISPB is read from the PKI later); ranges are checked by the simulator.
    inboundTrafficFlags(values, '00000000');
    ports = {
      sqs: portOption(values['sqs-port'], 'sqs-port', 4566),
      kinesis: portOption(values['kinesis-port'], 'kinesis-port', 4567),
      dynamodb: portOption(values['dynamodb-port'], 'dynamodb-port', 4568),
      events: portOption(values['events-port'], 'events-port', 4569),
      bcb: portOption(values['bcb-port'], 'bcb-port', 4570),
    };
  } catch (error) {
    io.stderr.write(`selo up: ${(error as Error).message}\n`);
    return 2;
  }
  const { prepareLocalHsm, defaultPkiDir } = await import('../../infra/local/local-hsm.ts');
  const hsm = await prepareLocalHsm(values['pki-dir'] === undefined ? await defaultPkiDir() : resolve(values['pki-dir']), io.env);
  const signal = untilSignal();
  // Loaded here, not at the top: the other commands should not pay for the AWS stand-ins.
  const { startLocalStack } = await import('../../infra/local/index.ts');
  const stack = await startLocalStack({ host: values.host, ports: { sqs: ports.sqs, kinesis: ports.kinesis, dynamodb: ports.dynamodb, events: ports.events }, region: values.region, environment: values.env });
  const stops: (() => Promise<void>)[] = [() => stack.close()];
  try {
    let pipeline = '';
    let workerEnv: Readonly<Record<string, string>> = {};
    const withWorkers = values.workers && !values['no-workers'];
    const [{ startLocalPipeline }, { createLogger }] = await Promise.all([import('../../infra/local/index.ts'), import('../../shared/logging/index.ts')]);
    const logger = createLogger({ name: 'selo.up', level: 'warn', destination: process.stderr });
    const { loadSimulatorPki } = await import('../../infra/bcb-simulator/index.ts');
    const seloIspb = loadSimulatorPki(hsm.pkiDir).participants[0]?.ispb ?? '';
    const inboundTraffic = inboundTrafficFlags(values, seloIspb);
    const simulator = {
      ...(bcbAdminPort === undefined ? {} : { adminPort: bcbAdminPort }),
      ...(inboundTraffic === undefined ? {} : { inboundTraffic }),
    };
    // selo's ISPB answers live (loadSimulatorPki's default): selo's receiving side must answer.
    // Without workers: the simulator still runs, for workers started as their own processes.
    const started = await startLocalPipeline({ stack, pkiDir: hsm.pkiDir, env: io.env, host: values.host, bcbPort: ports.bcb, logger, simulator, ...(withWorkers ? {} : { workers: [] }) });
    stops.push(() => started.stop());
    pipeline = started.describe();
    workerEnv = started.workerEnv;
    // The local Firehose: audit records to Parquet in the audit bucket, as in AWS.
    const { startLocalAuditDelivery } = await import('../../shared/audit/parquet-delivery.ts');
    const { resolveTopology } = await import('../../infra/topology.ts');
    const delivery = await startLocalAuditDelivery({ clients: stack.clients, topology: resolveTopology(values.env), logger, bufferIntervalMs: 10_000 });
    stops.push(() => delivery.close());
    pipeline += `  audit       Kinesis → Parquet in s3://${resolveTopology(values.env).auditBucket}/audit/ every 10 s (selo audit query "SELECT …")\n`;
    io.stdout.write(describe(stack, hsm, workerEnv) + pipeline);
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

/** `selo up`: the local stack for people and scripts. */
export const upCommand: Command = { name: 'up', summary: 'start the local AWS stand-ins with selo\'s topology; Ctrl-C stops them', help: UP_HELP, run };
