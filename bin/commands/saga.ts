import { parseArgs } from 'node:util';
import type { Saga } from '../../shared/saga/index.ts';
import type { Command, CommandIo, Subcommand } from './command.ts';
import { formatUsage } from './help.ts';
import { RESOLUTION_SUBCOMMANDS, isResolutionAction, openSagaTable, runResolution } from './saga-resolve.ts';

const SAGA_SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'show',
    summary: 'one saga: state, ids, history, compensations, facts',
    help: {
      usage: ['selo saga show <EndToEndId|RequestId|sagaId> [--json]'],
      description: `Prints one payment's (ours, or one to our customers), DICT operation's or echo's saga: state, ids,
full history (time, from → to, reason, attempt), registered compensations and recorded facts.`,
      options: [{ flag: '--json', description: 'print the saga as JSON' }],
      exitCodes: '0 found, 1 not found, 2 bad usage or configuration',
    },
  },
  {
    name: 'list',
    summary: 'the sagas in one state, oldest change first',
    help: {
      usage: ['selo saga list --state <STATE> [--limit 50] [--json]'],
      description: 'Lists the sagas in one state, oldest change first (e.g. IN_DOUBT, COMPENSATION_FAILED, OUTCOME_CONFLICT).',
      options: [
        { flag: '--state <STATE>', description: 'the saga state (required)' },
        { flag: '--limit <n>', description: 'at most this many, 1 to 10000 (default 50)' },
        { flag: '--json', description: 'print them as one JSON array' },
      ],
      exitCodes: '0 listed (none is fine), 2 bad usage or configuration',
    },
  },
];

/** The saga ids an operator's id may name: a saga id as is, else a payment (ours, or to our customers), DICT operation or echo. */
export function sagaIdCandidates(id: string): string[] {
  if (id.includes('#')) return [id];
  return [`PAY#${id}`, `IN#${id}`, `DICT#${id}`, `ECHO#${id}`];
}

function idsOf(saga: Saga): string {
  return (['endToEndId', 'bizMsgIdr', 'requestId'] as const)
    .filter((field) => saga[field] !== undefined)
    .map((field) => `${field}=${saga[field] ?? ''}`)
    .join(' ');
}

/** The human form of `selo saga show`. */
export function formatSaga(saga: Saga): string {
  const lines = [`${saga.sagaId}  ${saga.state}  (${saga.kind}, version ${saga.version})`, `  ids: ${idsOf(saga) || '(none)'}`, `  created ${saga.createdAt}, updated ${saga.updatedAt}`, '  history:'];
  for (const t of saga.history) {
    lines.push(`    ${t.at}  ${t.from ?? '(none)'} → ${t.to}  attempt ${t.attempt}  [${t.key}]  ${t.reason}`);
  }
  lines.push(saga.compensations.length === 0 ? '  compensations: none' : '  compensations (newest first runs first):');
  for (const c of saga.compensations) {
    lines.push(`    #${c.seq} ${c.step}: ${c.action} ${JSON.stringify(c.params)}  ${c.status}  attempts ${c.attempts}${c.lastError === null ? '' : `  last error ${c.lastError}`}`);
  }
  const facts = Object.entries(saga.facts);
  if (facts.length > 0) lines.push(`  facts: ${facts.map(([name, value]) => `${name}=${value}`).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

function fail(io: CommandIo, message: string): number {
  io.stderr.write(`selo saga: ${message}\n${formatUsage(sagaCommand)}`);
  return 2;
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  if (isResolutionAction(args[0])) return runResolution(args, io);
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: { state: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  } catch (error) {
    return fail(io, (error as Error).message);
  }
  const [action, id, ...extra] = parsed.positionals;
  const { isSagaState, SAGA_STATES } = await import('../../shared/saga/index.ts');
  let limit = 50;
  if (action === 'show') {
    if (id === undefined || extra.length > 0 || parsed.values.state !== undefined || parsed.values.limit !== undefined) return fail(io, 'show takes one id');
  } else if (action === 'list') {
    if (id !== undefined) return fail(io, 'list takes no id');
    if (!isSagaState(parsed.values.state)) return fail(io, `--state must be one of ${SAGA_STATES.join(', ')}, got ${JSON.stringify(parsed.values.state) ?? 'nothing'}`);
    if (parsed.values.limit !== undefined) {
      limit = Number(parsed.values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return fail(io, `--limit must be an integer from 1 to 10000, got ${parsed.values.limit}`);
    }
  } else {
    return fail(io, action === undefined ? 'show or list?' : `unknown action ${JSON.stringify(action)}`);
  }

  const opened = await openSagaTable(io);
  if (opened === undefined) return 2;
  const { clients, sagas: store } = opened;
  try {
    if (action === 'show') {
      for (const candidate of sagaIdCandidates(id ?? '')) {
        const saga = await store.get(candidate);
        if (saga === undefined) continue;
        io.stdout.write(parsed.values.json ? `${JSON.stringify(saga)}\n` : formatSaga(saga));
        return 0;
      }
      io.stderr.write(`selo saga: no saga for ${JSON.stringify(id)} (looked for ${sagaIdCandidates(id ?? '').join(', ')})\n`);
      return 1;
    }
    const state = parsed.values.state as Saga['state'];
    const sagas: Saga[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.pageByState(state, { limit: Math.min(100, limit - sagas.length), ...(cursor === undefined ? {} : { cursor }) });
      sagas.push(...page.sagas);
      cursor = page.cursor;
    } while (cursor !== undefined && sagas.length < limit);
    if (parsed.values.json) io.stdout.write(`${JSON.stringify(sagas)}\n`);
    else {
      io.stdout.write(`${state}: ${sagas.length} saga(s)${cursor === undefined ? '' : ` (first ${limit}; --limit for more)`}\n`);
      for (const saga of sagas) {
        const last = saga.history.at(-1);
        io.stdout.write(`  ${saga.sagaId}  since ${saga.updatedAt}  ${idsOf(saga)}  ${last?.reason ?? ''}\n`);
      }
    }
    return 0;
  } finally {
    clients.destroy();
  }
}

/** `selo saga show|list|resolve|approve|retry-compensation`: operations' view of the saga table, and what closes what selo raised. */
export const sagaCommand: Command = {
  name: 'saga',
  summary: 'show, list and resolve sagas (saga show <id> | list --state S | resolve | approve | retry-compensation)',
  help: { usage: [], description: 'Operations\' view of the saga table: one item per payment, DICT operation or echo.', options: [] },
  // A subcommand runs only once it is declared here, with its help (bin/commands/help.ts).
  subcommands: [...SAGA_SUBCOMMANDS, ...RESOLUTION_SUBCOMMANDS],
  run,
};
