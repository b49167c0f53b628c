import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { AwsClients } from '../../shared/aws/index.ts';
import type { SeloConfig } from '../../shared/config/index.ts';
import type { AlertGroup, AlertRefresh, DeadLetterCount, Operations } from '../../shared/ops/index.ts';
import type { ResolvedTopology } from '../../infra/topology.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { commandConfig } from './options.ts';
import { sagaIdCandidates } from './saga.ts';
import { untilSignal } from './signals.ts';

const WATCH_HELP: CommandHelp = {
  usage: ['selo ops watch [--once] [--json] [--interval-s 5]'],
  description: `Reads the operations queue (selo-<env>-operations) into the open-alerts record in the saga table
(ALERT#… items), then shows what is open, grouped by kind, with each alert's age, and how many
messages wait in each dead-letter queue. An alert raised in a saga state (PaymentInDoubt in IN_DOUBT,
OutcomeConflict, CompensationFailed, and those whose event recorded a state) is acknowledged by
itself once its saga has left that state; the others are acknowledged with "selo ops ack".
Without --once it reads again every --interval-s and prints when something changed, until Ctrl-C.`,
  options: [
    { flag: '--once', description: 'read once, print, and exit' },
    { flag: '--json', description: 'print each view as one JSON object (a line)' },
    { flag: '--interval-s <s>', description: 'seconds between reads without --once, 1 to 3600 (default 5)' },
  ],
  exitCodes: '0 ok, 1 reading failed, 2 bad usage or configuration',
};

const ACK_HELP: CommandHelp = {
  usage: ['selo ops ack <alertId> --note "<why>" [--by <operator>]'],
  description: `Acknowledges an open alert that no saga settles (SignatureInvalid, UnsupportedMessageReceived,
RequestConflict, the …DeadLettered kinds, unreadable messages): it leaves the open list, keeping who
and why. An alert that ends when its saga is resolved is refused: resolve the saga instead.`,
  options: [
    { flag: '--note <why>', description: 'what was done about it (required, up to 500 characters)' },
    { flag: '--by <operator>', description: 'who acknowledges (default: the user running selo)' },
  ],
  exitCodes: '0 acknowledged, 1 refused (ALERT_NOT_FOUND, ALERT_NOT_OPEN, ALERT_TIED_TO_SAGA), 2 bad usage or configuration',
};

/** Operations wired to the environment's AWS (or the stand-ins its endpoints name), for `selo ops` and `selo console`. */
export interface OperationsEnvironment {
  operations: Operations;
  clients: AwsClients;
  topology: ResolvedTopology;
  config: SeloConfig;
}

/**
 * Reads selo's configuration from `io.env` and builds {@link Operations} on it; writes the
 * configuration problem to stderr (prefixed with `command`) and resolves to undefined when it is
 * unusable. The caller destroys `clients`.
 */
export async function operationsEnvironment(io: CommandIo, command: string): Promise<OperationsEnvironment | undefined> {
  const config = await commandConfig(io, command);
  if (config === undefined) return undefined;
  const [{ createAwsClients }, { resolveTopology }, { Operations }] = await Promise.all([import('../../shared/aws/index.ts'), import('../../infra/topology.ts'), import('../../shared/ops/index.ts')]);
  const topology = resolveTopology(config.environment);
  const clients = createAwsClients(config.aws);
  const operations = new Operations({
    sqs: clients.sqs,
    dynamodb: clients.dynamodb,
    s3: clients.s3,
    sagaTable: topology.sagaTable.name,
    stateIndexName: topology.sagaTable.stateIndex.name,
    auditBucket: topology.auditBucket,
    queues: topology.queues,
    sagaIdCandidates,
  });
  return { operations, clients, topology, config };
}

/** One view of `selo ops watch`. */
export interface OpsView {
  at: string;
  drained: AlertRefresh['drained'];
  acknowledged: { alertId: string; kind: string; sagaId?: string; acknowledgement?: string }[];
  groups: AlertGroup[];
  deadLetters: DeadLetterCount[];
}

/** The human form of an {@link OpsView}. */
export function formatOpsView(view: OpsView, formatAge: (seconds: number) => string): string {
  const open = view.groups.reduce((sum, g) => sum + g.alerts.length, 0);
  const lines = [`selo ops ${view.at}: ${open} open alert(s); read ${view.drained.received} from the queue, ${view.acknowledged.length} acknowledged now`];
  for (const a of view.acknowledged) lines.push(`  acknowledged ${a.alertId} ${a.kind} ${a.sagaId ?? ''}: ${a.acknowledgement ?? ''}`);
  for (const group of view.groups) {
    lines.push(`${group.kind} (${group.alerts.length})`);
    for (const a of group.alerts) {
      const ids = [a.sagaId, a.raisedIn === undefined ? 'ack by hand' : `open while ${a.raisedIn}`].filter((x) => x !== undefined).join('  ');
      const facts = Object.entries(a.facts).map(([k, v]) => `${k}=${v}`).join(' ');
      lines.push(`  ${a.alertId}  age ${formatAge(a.ageSeconds).padEnd(7)}  ${ids}${a.count > 1 ? `  raised ${a.count}×` : ''}${facts === '' ? '' : `  ${facts}`}`);
    }
  }
  const waiting = view.deadLetters.filter((d) => d.messages > 0);
  lines.push(waiting.length === 0 ? 'dead letters: none' : `dead letters: ${waiting.map((d) => `${d.queue} ${d.messages}`).join(', ')} (selo dlq list <queue>)`);
  return `${lines.join('\n')}\n`;
}

async function view(operations: Operations): Promise<OpsView> {
  const { groupAlertsByKind } = await import('../../shared/ops/index.ts');
  const refreshed = await operations.refreshAlerts();
  const now = new Date();
  return {
    at: now.toISOString(),
    drained: refreshed.drained,
    acknowledged: refreshed.acknowledged.map((a) => ({ alertId: a.alertId, kind: a.kind, ...(a.sagaId === undefined ? {} : { sagaId: a.sagaId }), ...(a.acknowledgement === undefined ? {} : { acknowledgement: a.acknowledgement }) })),
    groups: groupAlertsByKind(refreshed.open, now),
    deadLetters: await operations.deadLetterCounts(),
  };
}

function fail(io: CommandIo, message: string, subcommand?: string): number {
  io.stderr.write(`selo ops: ${message}\n${formatUsage(opsCommand, subcommand)}`);
  return 2;
}

async function watch(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], options: { once: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, 'interval-s': { type: 'string' } }, strict: true }));
  } catch (error) {
    return fail(io, (error as Error).message, 'watch');
  }
  const interval = Number(values['interval-s'] ?? '5');
  if (!/^\d+$/.test(values['interval-s'] ?? '5') || interval < 1 || interval > 3600) return fail(io, `--interval-s must be a whole number from 1 to 3600, got ${JSON.stringify(values['interval-s'])}`, 'watch');
  const env = await operationsEnvironment(io, 'selo ops');
  if (env === undefined) return 2;
  const { formatAge } = await import('../../shared/ops/index.ts');
  const print = (v: OpsView): void => void io.stdout.write(values.json ? `${JSON.stringify(v)}\n` : formatOpsView(v, formatAge));
  try {
    if (values.once) {
      print(await view(env.operations));
      return 0;
    }
    const stop = new AbortController();
    void untilSignal().then(() => stop.abort());
    let last = '';
    while (!stop.signal.aborted) {
      const v = await view(env.operations);
      // Printed when what is open (or waiting in a DLQ) changed, not on every read.
      const shape = JSON.stringify([v.groups.map((g) => [g.kind, g.alerts.map((a) => [a.alertId, a.count])]), v.deadLetters, v.acknowledged]);
      if (shape !== last) print(v);
      last = shape;
      await sleep(interval * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
    }
    return 0;
  } catch (error) {
    io.stderr.write(`selo ops: reading failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    env.clients.destroy();
  }
}

async function ack(args: readonly string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: { note: { type: 'string' }, by: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (error) {
    return fail(io, (error as Error).message, 'ack');
  }
  const [alertId, ...extra] = parsed.positionals;
  if (alertId === undefined || extra.length > 0) return fail(io, 'ack takes one alert id', 'ack');
  const note = parsed.values.note?.trim() ?? '';
  if (note === '' || note.length > 500) return fail(io, '--note must say why, in 1 to 500 characters', 'ack');
  const by = parsed.values.by ?? io.env.USER ?? userInfo().username;
  const env = await operationsEnvironment(io, 'selo ops');
  if (env === undefined) return 2;
  const { AlertError } = await import('../../shared/ops/index.ts');
  try {
    const alert = await env.operations.acknowledge(alertId, by, note);
    io.stdout.write(`acknowledged ${alert.alertId} (${alert.kind}${alert.sagaId === undefined ? '' : ` ${alert.sagaId}`}) by ${by}\n`);
    return 0;
  } catch (error) {
    if (error instanceof AlertError) {
      io.stderr.write(`selo ops: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    env.clients.destroy();
  }
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [action, ...rest] = args;
  return action === 'ack' ? ack(rest, io) : watch(rest, io);
}

/** `selo ops watch|ack`: the reader of the operations queue. */
export const opsCommand: Command = {
  name: 'ops',
  summary: 'what operations must act on: open alerts by kind and age, dead letters (ops watch | ack <id>)',
  help: { usage: [], description: 'The operations queue\'s reader: open alerts, grouped by kind, with their age; acknowledgements.', options: [] },
  subcommands: [
    { name: 'watch', summary: 'read the operations queue and show the open alerts and dead letters', help: WATCH_HELP },
    { name: 'ack', summary: 'acknowledge an alert no saga settles', help: ACK_HELP },
  ],
  run,
};
