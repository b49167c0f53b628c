import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalStack } from '../../infra/local/index.ts';
import type { Command, CommandIo } from './command.ts';

const USAGE = `usage: selo up [--host 127.0.0.1] [--sqs-port 4566] [--kinesis-port 4567] [--dynamodb-port 4568] [--events-port 4569]
               [--region sa-east-1] [--env local] [--pki-dir .selo/pki]
Prepares the project-local SoftHSM token and development PKI (once), starts the local stand-ins
for AWS (SQS+S3, Kinesis, DynamoDB, EventBridge), creates selo's topology on them, prints one line
"selo: ready {json}" and stays up until Ctrl-C (SIGINT) or SIGTERM.`;

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

/** Resolves when the process receives SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
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
  const stack = await startLocalStack({ host: values.host, ports, region: values.region, environment: values.env });
  io.stdout.write(describe(stack, hsm));
  io.stdout.write(`selo: ready ${JSON.stringify(stack.endpoints)}\n`);
  const received = await signal;
  io.stderr.write(`selo up: ${received} received, stopping\n`);
  await stack.close();
  io.stderr.write('selo up: stopped\n');
  return 0;
}

/** `selo up`: the local stack for people and scripts. */
export const upCommand: Command = { name: 'up', summary: 'start the local AWS stand-ins with selo\'s topology; Ctrl-C stops them', run };
