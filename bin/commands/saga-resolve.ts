import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { ResolvedTopology } from '../../infra/topology.ts';
import type { AwsClients } from '../../shared/aws/index.ts';
import type { ResolutionResult, ResolveSagaDeps, SagaStore } from '../../shared/saga/index.ts';
import type { CommandIo, Subcommand } from './command.ts';

const IDENTITY = `Who acts is --operator, else SELO_OPERATOR, else the OS user; it is recorded in the audit trail.`;

/** The help of `selo saga resolve | approve | retry-compensation` (issue 17). */
export const RESOLUTION_SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'resolve',
    summary: 'record how an IN_DOUBT or OUTCOME_CONFLICT payment ended',
    help: {
      usage: ['selo saga resolve <EndToEndId|sagaId> --outcome settled|rejected --evidence <text> [--operator <name>] [--reason-code <CODE>] [--json]'],
      description: `Resolves a payment selo could not decide: settled → SETTLED and PaymentSettled; rejected → REJECTED and
PaymentRejected, which the compensation worker reverses exactly as after a pacs.002 RJCT. A payment to one of
our customers (IN#) publishes InboundPaymentSettled (core banking credits) or InboundPaymentRejected (never
credit) instead. One conditional
write: a second resolve, or a late pacs.002 that got there first, changes nothing and says so (exit 0
when it ended the same way, 1 when it ended the other way). With SELO_RESOLVE_APPROVALS=2 this records a
request that another operator's "selo saga approve" applies. ${IDENTITY}`,
      options: [
        { flag: '--outcome <settled|rejected>', description: 'how the payment ended (required)' },
        { flag: '--evidence <text>', description: 'why: what operations found, 1 to 500 characters, no personal data (required)' },
        { flag: '--operator <name>', description: 'who resolves (default SELO_OPERATOR, else the OS user)' },
        { flag: '--reason-code <CODE>', description: 'the rejection code PaymentRejected carries, e.g. AB03 (default NARR)' },
        { flag: '--json', description: 'print the result as JSON' },
      ],
      environment: 'SELO_OPERATOR (who acts), SELO_RESOLVE_APPROVALS (1, or 2 for four eyes; default 1)',
      exitCodes: '0 resolved, awaiting approval, or already resolved the same way; 1 refused (not resolvable, contradicted, not found); 2 bad usage or configuration',
    },
  },
  {
    name: 'approve',
    summary: 'apply another operator\'s pending resolution (four eyes)',
    help: {
      usage: ['selo saga approve <EndToEndId|sagaId> [--operator <name>] [--json]'],
      description: `Applies the resolution another operator requested with "selo saga resolve" while SELO_RESOLVE_APPROVALS=2.
The requester cannot approve their own request; a request whose saga moved since (e.g. a late pacs.002) is void. ${IDENTITY}`,
      options: [
        { flag: '--operator <name>', description: 'who approves (default SELO_OPERATOR, else the OS user)' },
        { flag: '--json', description: 'print the result as JSON' },
      ],
      environment: 'SELO_OPERATOR',
      exitCodes: '0 applied (or already resolved the same way), 1 refused (nothing pending, self-approval, not found), 2 bad usage or configuration',
    },
  },
  {
    name: 'retry-compensation',
    summary: 'retry the compensation of a COMPENSATION_FAILED saga',
    help: {
      usage: ['selo saga retry-compensation <EndToEndId|RequestId|sagaId> [--evidence <text>] [--operator <name>] [--json]'],
      description: `Publishes CompensationRetryRequested: the compensation worker moves the saga to COMPENSATING again and runs
each compensation still PENDING or FAILED once (keyed by saga and step). Only for COMPENSATION_FAILED. ${IDENTITY}`,
      options: [
        { flag: '--evidence <text>', description: 'why it may work now (default "retry requested")' },
        { flag: '--operator <name>', description: 'who asks (default SELO_OPERATOR, else the OS user)' },
        { flag: '--json', description: 'print the result as JSON' },
      ],
      environment: 'SELO_OPERATOR',
      exitCodes: '0 requested, 1 refused (not COMPENSATION_FAILED, not found), 2 bad usage or configuration',
    },
  },
];

/** Whether `action` is one of {@link RESOLUTION_SUBCOMMANDS}. */
export function isResolutionAction(action: string | undefined): boolean {
  return RESOLUTION_SUBCOMMANDS.some((s) => s.name === action);
}

/** The operator's name: `--operator`, else `SELO_OPERATOR`, else the OS user. */
export function operatorOf(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (flag !== undefined) return flag;
  const fromEnv = env['SELO_OPERATOR'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** `SELO_RESOLVE_APPROVALS`: 1 (default) or 2; anything else is a usage error. */
export function approvalsOf(env: Readonly<Record<string, string | undefined>>): 1 | 2 | undefined {
  const value = env['SELO_RESOLVE_APPROVALS'];
  if (value === undefined || value === '' || value === '1') return 1;
  return value === '2' ? 2 : undefined;
}

/** The one-line human form of a result. */
export function formatResolution(result: ResolutionResult): string {
  const saga = result.saga;
  switch (result.status) {
    case 'resolved':
      return `${saga.sagaId}: resolved ${result.outcome}, now ${saga.state}; published ${result.events.join(', ')}${result.outcome === 'rejected' ? ' (the compensation worker reverses it)' : ''}\n`;
    case 'pending-approval':
      return `${saga.sagaId}: ${result.request.outcome} requested by ${result.request.operator} at ${result.request.requestedAt}; waiting for another operator: selo saga approve ${saga.sagaId}\n`;
    case 'already-resolved':
      return `${saga.sagaId}: already resolved ${result.outcome} (${result.resolvedBy}), now ${saga.state}; nothing done${result.republished ? ' (its unpublished event was published now)' : ''}\n`;
    case 'retry-requested':
      return `${saga.sagaId}: compensation retry requested; published ${result.events.join(', ')}\n`;
  }
}

function usage(io: CommandIo, action: string, message: string): number {
  const sub = RESOLUTION_SUBCOMMANDS.find((s) => s.name === action);
  io.stderr.write(`selo saga ${action}: ${message}\n${(sub?.help.usage ?? []).map((line, i) => `${i === 0 ? 'usage: ' : '       '}${line}`).join('\n')}\nrun "selo saga ${action} --help" for more\n`);
  return 2;
}

/** The environment's saga table and the AWS clients behind it (destroy them after); undefined once a configuration problem was printed. */
/**
 * What shared/saga's resolution functions need in one environment: its saga table, its bus
 * (source `selo.operations`) and its audit stream; the audit producer is returned to be closed.
 * `selo saga resolve | approve | retry-compensation` and `selo console` use these same ones.
 */
export async function resolutionDeps(clients: AwsClients, topology: ResolvedTopology, sagas: ResolveSagaDeps['sagas'], approvals: 1 | 2): Promise<{ deps: ResolveSagaDeps; audit: { close(): Promise<void> } }> {
  const [{ OPERATIONS_SOURCE }, { EventBridgePublisher, eventBridgePutEventsPort }, { KinesisAuditProducer, kinesisPutRecordsPort }] = await Promise.all([
    import('../../shared/saga/index.ts'),
    import('../../shared/runtime/index.ts'),
    import('../../shared/audit/index.ts'),
  ]);
  const audit = new KinesisAuditProducer({ port: kinesisPutRecordsPort(clients.kinesis), streamName: topology.auditStream.name });
  const publisher = new EventBridgePublisher({ port: eventBridgePutEventsPort(clients.events), eventBusName: topology.eventBusName, defaultSource: OPERATIONS_SOURCE });
  return { deps: { sagas, publisher, audit, approvals }, audit };
}

export async function openSagaTable(io: CommandIo): Promise<{ topology: ResolvedTopology; clients: AwsClients; sagas: SagaStore } | undefined> {
  const [{ ConfigError, loadConfig }, { createAwsClients }, { resolveTopology }, { SagaStore }] = await Promise.all([
    import('../../shared/config/index.ts'),
    import('../../shared/aws/index.ts'),
    import('../../infra/topology.ts'),
    import('../../shared/saga/index.ts'),
  ]);
  let config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`selo saga: ${error.message}\n`);
      return undefined;
    }
    throw error;
  }
  const topology = resolveTopology(config.environment);
  const clients = createAwsClients(config.aws);
  return { topology, clients, sagas: new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name, stateIndexName: topology.sagaTable.stateIndex.name }) };
}

/**
 * Runs `selo saga resolve | approve | retry-compensation` against the environment's saga table,
 * bus and audit stream: the same `shared/saga` functions the console calls.
 */
export async function runResolution(args: readonly string[], io: CommandIo): Promise<number> {
  const [action = ''] = args;
  let parsed;
  try {
    parsed = parseArgs({
      args: args.slice(1),
      options: { outcome: { type: 'string' }, evidence: { type: 'string' }, operator: { type: 'string' }, 'reason-code': { type: 'string' }, json: { type: 'boolean', default: false } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usage(io, action, (error as Error).message);
  }
  const { values } = parsed;
  const [id, ...extra] = parsed.positionals;
  if (id === undefined || extra.length > 0) return usage(io, action, 'takes one id');
  if (action === 'resolve') {
    if (values.outcome !== 'settled' && values.outcome !== 'rejected') return usage(io, action, `--outcome must be settled or rejected, got ${JSON.stringify(values.outcome) ?? 'nothing'}`);
    if (values.evidence === undefined || values.evidence.trim() === '') return usage(io, action, '--evidence is required');
  } else if (values.outcome !== undefined || values['reason-code'] !== undefined || (action === 'approve' && values.evidence !== undefined)) {
    return usage(io, action, `${action} takes no --outcome, --reason-code${action === 'approve' ? ' or --evidence' : ''}`);
  }
  const approvals = approvalsOf(io.env);
  if (approvals === undefined) return usage(io, action, `SELO_RESOLVE_APPROVALS must be 1 or 2, got ${JSON.stringify(io.env['SELO_RESOLVE_APPROVALS'])}`);
  const operator = operatorOf(values.operator, io.env);
  // An EndToEndId alone names our payment (PAY#) or a payment to our customer (IN#), whichever exists.
  const sagaId = id.includes('#') ? id : undefined;

  const [saga, { SeloError }] = await Promise.all([import('../../shared/saga/index.ts'), import('../../shared/errors/index.ts')]);
  const opened = await openSagaTable(io);
  if (opened === undefined) return 2;
  const { topology, clients, sagas } = opened;
  const { deps, audit } = await resolutionDeps(clients, topology, sagas, approvals);
  try {
    // The saga an id names: a payment, ours or to our customer (retry-compensation also serves
    // DICT operations); both a PAY# and an IN# saga (a payment to ourselves) is ambiguous.
    let target = sagaId;
    if (target === undefined) {
      const { sagaIdCandidates } = await import('./saga.ts');
      const payments = action !== 'retry-compensation';
      const candidates = payments ? [`PAY#${id}`, `IN#${id}`] : sagaIdCandidates(id);
      const found: string[] = [];
      for (const candidate of candidates) if ((await sagas.get(candidate)) !== undefined) found.push(candidate);
      if (payments && found.length > 1) throw new saga.ResolutionError('RESOLUTION_INVALID', `${id} names both ${found.join(' and ')}: give the saga id`, { id, sagas: found });
      target = found[0] ?? `PAY#${id}`;
    }
    let result: ResolutionResult;
    if (action === 'resolve') {
      result = await saga.resolveSaga(deps, { sagaId: target, outcome: values.outcome as 'settled' | 'rejected', evidence: values.evidence ?? '', operator, ...(values['reason-code'] === undefined ? {} : { reasonCode: values['reason-code'] }) });
    } else if (action === 'approve') {
      result = await saga.approveResolution(deps, { sagaId: target, operator });
    } else {
      result = await saga.retryCompensation(deps, { sagaId: target, operator, ...(values.evidence === undefined ? {} : { evidence: values.evidence }) });
    }
    io.stdout.write(values.json ? `${JSON.stringify({ status: result.status, sagaId: result.saga.sagaId, state: result.saga.state, ...(result.status === 'pending-approval' ? { request: result.request } : {}), ...('outcome' in result ? { outcome: result.outcome } : {}), ...('events' in result ? { events: result.events } : {}), ...(result.status === 'already-resolved' ? { resolvedBy: result.resolvedBy, republished: result.republished } : {}) })}\n` : formatResolution(result));
    return 0;
  } catch (error) {
    if (error instanceof SeloError && (error instanceof saga.ResolutionError || error.code === 'SAGA_NOT_FOUND')) {
      io.stderr.write(values.json ? `${JSON.stringify({ error: error.code, message: error.message })}\n` : `selo saga ${action}: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await audit.close().catch(() => undefined);
    clients.destroy();
  }
}
