import { parseArgs } from 'node:util';
import type { AwsClients } from '../../shared/aws/index.ts';
import type { SeloConfig } from '../../shared/config/index.ts';
import type { ResolvedTopology } from '../../infra/topology.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { commandConfig } from './options.ts';
import { untilSignal } from './signals.ts';

const QUERY_HELP: CommandHelp = {
  usage: ['selo audit query "<SQL>" [--from ISO] [--to ISO] [--system spi|dict] [--json]'],
  description: `Runs DuckDB SQL over the table "audit": the audit records (one column per AuditRecord field,
plus year, month, day, hour) whose recorded_at lies in [--from, --to], read from the Parquet objects
of the audit bucket's partitions audit/{spi|dict}/year=…/hour=…/. The SQL reads nothing else: DuckDB's
access to files (and COPY, ATTACH, extensions) is off while it runs.`,
  options: [
    { flag: '--from <ISO>', description: 'earliest recorded_at, an ISO 8601 time or date (default: 24 h before --to)' },
    { flag: '--to <ISO>', description: 'latest recorded_at (default: now)' },
    { flag: '--system spi|dict', description: 'read only that system\'s partitions (default: both)' },
    { flag: '--json', description: 'print the rows as one JSON array' },
  ],
  exitCodes: '0 ok, 1 the SQL was refused (DuckDB\'s message), 2 bad usage or configuration',
};

const DELIVER_HELP: CommandHelp = {
  usage: ['selo audit deliver [--once] [--from-trim-horizon] [--poll-ms 1000] [--buffer-seconds 60] [--buffer-mib 5]'],
  description: `The local Firehose: reads the audit stream and writes Parquet objects per system and hour to the
audit bucket (unreadable records under audit/errors/), resuming after its checkpoint in the bucket.
Runs until Ctrl-C or SIGTERM unless --once.`,
  options: [
    { flag: '--once', description: 'read to the tip of the stream, write, and exit' },
    { flag: '--from-trim-horizon', description: 'ignore the stored checkpoint and read every shard from its oldest record' },
    { flag: '--poll-ms <ms>', description: 'pause between polls once the shards are read to their tip (default 1000)' },
    { flag: '--buffer-seconds <s>', description: 'write once the oldest buffered record waited this long (default 60)' },
    { flag: '--buffer-mib <MiB>', description: 'or once this much is buffered (default 5)' },
  ],
  exitCodes: '0 ok, 1 delivery failed, 2 bad usage or configuration',
};

function fail(io: CommandIo, message: string, subcommand?: string): number {
  io.stderr.write(`selo audit: ${message}\n${formatUsage(auditCommand, subcommand)}`);
  return 2;
}

const ISO = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d))?$/;

function isoTime(name: string, value: string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const at = new Date(value);
  if (!ISO.test(value) || Number.isNaN(at.getTime())) throw new RangeError(`--${name} must be an ISO 8601 time such as 2026-05-01T10:00:00Z or a date 2026-05-01, got ${JSON.stringify(value)}`);
  return at;
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

async function environment(io: CommandIo): Promise<{ clients: AwsClients; topology: ResolvedTopology; logLevel: SeloConfig['logLevel'] } | undefined> {
  const config = await commandConfig(io, 'selo audit');
  if (config === undefined) return undefined;
  const [{ createAwsClients }, { resolveTopology }] = await Promise.all([import('../../shared/aws/index.ts'), import('../../infra/topology.ts')]);
  return { clients: createAwsClients(config.aws), topology: resolveTopology(config.environment), logLevel: config.logLevel };
}

async function query(args: readonly string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { from: { type: 'string' }, to: { type: 'string' }, system: { type: 'string' }, json: { type: 'boolean', default: false } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return fail(io, (error as Error).message, 'query');
  }
  const [sql, ...extra] = parsed.positionals;
  if (sql === undefined || sql.trim() === '' || extra.length > 0) return fail(io, 'query takes one SQL string (quote it)', 'query');
  const system = parsed.values.system;
  if (system !== undefined && system !== 'spi' && system !== 'dict') return fail(io, `--system must be spi or dict, got ${JSON.stringify(system)}`, 'query');
  let from: Date;
  let to: Date;
  try {
    to = isoTime('to', parsed.values.to, new Date());
    from = isoTime('from', parsed.values.from, new Date(to.getTime() - 24 * 3_600_000));
  } catch (error) {
    return fail(io, (error as Error).message, 'query');
  }
  if (from.getTime() > to.getTime()) return fail(io, `--from (${from.toISOString()}) is after --to (${to.toISOString()})`, 'query');
  const env = await environment(io);
  if (env === undefined) return 2;
  const { queryAuditTrail, formatAuditTable, AuditSqlError } = await import('../../shared/audit/audit-query.ts');
  try {
    const result = await queryAuditTrail({ s3: env.clients.s3, bucket: env.topology.auditBucket, sql, from, to, ...(system === undefined ? {} : { systems: [system] }) });
    io.stdout.write(parsed.values.json ? `${JSON.stringify(result.rows)}\n` : formatAuditTable(result));
    return 0;
  } catch (error) {
    if (error instanceof AuditSqlError) {
      io.stderr.write(`selo audit: the SQL was refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    env.clients.destroy();
  }
}

async function deliver(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  let options;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        once: { type: 'boolean', default: false },
        'from-trim-horizon': { type: 'boolean', default: false },
        'poll-ms': { type: 'string' },
        'buffer-seconds': { type: 'string' },
        'buffer-mib': { type: 'string' },
      },
      strict: true,
    }));
    const pollMs = positive('poll-ms', values['poll-ms']);
    const seconds = positive('buffer-seconds', values['buffer-seconds']);
    const mib = positive('buffer-mib', values['buffer-mib']);
    options = {
      fromTrimHorizon: values['from-trim-horizon'],
      ...(pollMs === undefined ? {} : { pollIntervalMs: Math.round(pollMs) }),
      ...(seconds === undefined ? {} : { bufferIntervalMs: Math.round(seconds * 1000) }),
      ...(mib === undefined ? {} : { bufferSizeBytes: Math.round(mib * 1024 * 1024) }),
    };
  } catch (error) {
    return fail(io, (error as Error).message, 'deliver');
  }
  const env = await environment(io);
  if (env === undefined) return 2;
  const [{ LocalAuditDelivery, kinesisAuditStreamPort, s3AuditObjectStorePort }, { createLogger }] = await Promise.all([
    import('../../shared/audit/parquet-delivery.ts'),
    import('../../shared/logging/index.ts'),
  ]);
  const logger = createLogger({ name: 'selo.audit-delivery', level: env.logLevel, destination: io.stderr });
  const delivery = new LocalAuditDelivery({
    ...options,
    stream: kinesisAuditStreamPort(env.clients.kinesis),
    store: s3AuditObjectStorePort(env.clients.s3),
    streamName: env.topology.auditStream.name,
    bucket: env.topology.auditBucket,
    logger,
  });
  try {
    if (values.once) {
      const result = await delivery.drainOnce();
      io.stdout.write(`delivered ${result.records} record(s) in ${result.objects.length} object(s) to s3://${env.topology.auditBucket}/audit/; ${result.duplicates} duplicate(s) dropped, ${result.errors.length} unreadable under audit/errors/\n`);
    } else {
      const signal = untilSignal();
      await delivery.start();
      io.stderr.write(`selo audit: delivering ${env.topology.auditStream.name} to s3://${env.topology.auditBucket}/audit/ until Ctrl-C\n`);
      io.stderr.write(`selo audit: ${await signal} received, flushing\n`);
    }
    await delivery.close();
    if (!values.once) {
      const stats = delivery.stats();
      io.stdout.write(`delivered ${stats.delivered} record(s) in ${stats.objects} object(s); ${stats.duplicates} duplicate(s) dropped, ${stats.failed} unreadable under audit/errors/\n`);
    }
    return 0;
  } catch (error) {
    await delivery.close().catch(() => undefined);
    io.stderr.write(`selo audit: delivery failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    env.clients.destroy();
  }
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'query') return query(rest, io);
  if (action === 'deliver') return deliver(rest, io);
  return fail(io, action === undefined ? 'query or deliver?' : `unknown action ${JSON.stringify(action)}`);
}

/** `selo audit query|deliver`: SQL over the audit trail in S3, and the local Firehose delivery. */
export const auditCommand: Command = {
  name: 'audit',
  summary: 'query the audit trail with SQL, or deliver the audit stream to S3 as Parquet (audit query "<SQL>" | deliver)',
  help: { usage: [], description: 'The audit trail: SQL over its Parquet objects in S3, and the local delivery that writes them.', options: [] },
  subcommands: [
    { name: 'query', summary: 'DuckDB SQL over the audit records of a time window', help: QUERY_HELP },
    { name: 'deliver', summary: 'the local Firehose: audit stream to Parquet in the audit bucket', help: DELIVER_HELP },
  ],
  run,
};
