import { parseArgs } from 'node:util';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { commandConfig } from './options.ts';

const QUEUES = 'sign, transmit, verify, compensate or operations';

const LIST_HELP: CommandHelp = {
  usage: ['selo dlq list <queue> [--max 50] [--json]'],
  description: `Shows the messages in the dead-letter queue of <queue> (${QUEUES}): each one's error code,
reason, source queue and receive count, without consuming it (each is made visible again at once).`,
  options: [
    { flag: '--max <n>', description: 'at most this many messages, 1 to 1000 (default 50)' },
    { flag: '--json', description: 'print them as one JSON array' },
  ],
};

const REPLAY_HELP: CommandHelp = {
  usage: ['selo dlq replay <queue> [--max 10]'],
  description: `Moves messages from the dead-letter queue of <queue> (${QUEUES}) back to its work queue,
oldest first: each is sent first, then deleted from the DLQ. Safe: every step is idempotent.`,
  options: [{ flag: '--max <n>', description: 'at most this many messages, 1 to 1000 (default 10)' }],
  exitCodes: '0 all replayed, 1 some left in the DLQ after a failure, 2 bad usage or configuration',
};


async function run(args: readonly string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: { max: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  } catch (error) {
    io.stderr.write(`selo dlq: ${(error as Error).message}\n${formatUsage(dlqCommand)}`);
    return 2;
  }
  const [action, key] = parsed.positionals;
  const max = parsed.values.max === undefined ? undefined : Number(parsed.values.max);
  if ((action !== 'list' && action !== 'replay') || key === undefined || parsed.positionals.length !== 2 || (max !== undefined && !(Number.isInteger(max) && max > 0 && max <= 1000))) {
    io.stderr.write(formatUsage(dlqCommand, action));
    return 2;
  }
  const config = await commandConfig(io, 'selo dlq');
  if (config === undefined) return 2;
  const [{ createAwsClients }, { resolveTopology }, { listDeadLetters, replayDeadLetters }, { GetQueueUrlCommand }] = await Promise.all([
    import('../../shared/aws/index.ts'),
    import('../../infra/topology.ts'),
    import('../../shared/ops/index.ts'),
    import('@aws-sdk/client-sqs'),
  ]);
  const topology = resolveTopology(config.environment);
  const queue = topology.queues.find((q) => q.key === key);
  if (queue === undefined) {
    io.stderr.write(`selo dlq: no queue ${JSON.stringify(key)}; the queues are ${topology.queues.map((q) => q.key).join(', ')}\n`);
    return 2;
  }
  const clients = createAwsClients(config.aws);
  try {
    const dlqUrl = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue.dlqName }))).QueueUrl ?? '';
    if (action === 'list') {
      const letters = await listDeadLetters(clients.sqs, dlqUrl, max ?? 50);
      if (parsed.values.json) io.stdout.write(`${JSON.stringify(letters)}\n`);
      else {
        io.stdout.write(`${queue.dlqName}: ${letters.length} message(s)\n`);
        for (const l of letters) {
          io.stdout.write(`  ${l.messageId}  ${l.code ?? '(receive budget spent)'}  receives ${l.receiveCount ?? '?'}  ${l.reason ?? ''}\n`);
        }
      }
      return 0;
    }
    const url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queue.name }))).QueueUrl ?? '';
    const result = await replayDeadLetters(clients.sqs, dlqUrl, url, max ?? 10);
    io.stdout.write(`replayed ${result.replayed} message(s) from ${queue.dlqName} to ${queue.name}${result.failed.length > 0 ? `; ${result.failed.length} left in the DLQ after a failure` : ''}\n`);
    return result.failed.length > 0 ? 1 : 0;
  } finally {
    clients.destroy();
  }
}

/** `selo dlq list|replay <queue>`: operations' view of the dead letters. */
export const dlqCommand: Command = {
  name: 'dlq',
  summary: 'inspect or replay a queue\'s dead letters (dlq list|replay <queue>)',
  help: { usage: [], description: `The dead-letter queues of selo's queues (${QUEUES}) in the environment's AWS, or the stand-ins its endpoints name.`, options: [] },
  subcommands: [
    { name: 'list', summary: 'show a DLQ\'s messages without consuming them', help: LIST_HELP },
    { name: 'replay', summary: 'move a DLQ\'s messages back to the work queue', help: REPLAY_HELP },
  ],
  run,
};
