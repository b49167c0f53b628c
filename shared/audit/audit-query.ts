import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { readAuditParquetSql } from './audit-parquet.ts';
import { AUDIT_COLUMNS, AUDIT_PARTITION_COLUMNS, auditTableDdl } from './audit-schema.ts';
import type { AuditSystem } from './audit-record.ts';

/** Options of {@link queryAuditTrail}. */
export interface AuditQueryOptions {
  s3: S3Client;
  /** The audit bucket (topology `auditBucket`). */
  bucket: string;
  /** SQL over the view `audit` (DuckDB dialect). */
  sql: string;
  /** Earliest `recorded_at` included. */
  from: Date;
  /** Latest `recorded_at` included. */
  to: Date;
  /** Systems whose partitions are read. @defaultValue both */
  systems?: readonly AuditSystem[];
  /** Objects downloaded at once. @defaultValue 8 */
  downloadConcurrency?: number;
}

/** Rows of an audit query, values made JSON-safe (times ISO 8601 UTC, big integers as numbers when exact, else strings). */
export interface AuditQueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  /** Parquet objects the view read. */
  objects: number;
}

/**
 * The SQL was refused by DuckDB (syntax, unknown column, type error…); the message is DuckDB's.
 * `code` is stable; nothing about the data is wrong.
 */
export class AuditSqlError extends Error {
  readonly code = 'AUDIT_SQL_INVALID';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditSqlError';
  }
}

const HOUR = 3_600_000;

/**
 * The day prefixes (`audit/<system>/year=…/month=…/day=…/`) covering [from, to], and a test for
 * whether an object key's hour lies within the range. Listing by day keeps a month's query at
 * ~60 List calls instead of ~1,500.
 */
export function partitionsCovering(from: Date, to: Date, systems: readonly AuditSystem[]): { dayPrefixes: string[]; inRange: (key: string) => boolean } {
  const first = Math.floor(from.getTime() / HOUR) * HOUR;
  const last = Math.floor(to.getTime() / HOUR) * HOUR;
  const days = new Set<string>();
  for (let day = Math.floor(first / (24 * HOUR)) * 24 * HOUR; day <= last; day += 24 * HOUR) {
    days.add(new Date(day).toISOString().slice(0, 10));
  }
  const dayPrefixes = systems.flatMap((system) => [...days].map((d) => `audit/${system}/year=${d.slice(0, 4)}/month=${d.slice(5, 7)}/day=${d.slice(8, 10)}/`));
  const inRange = (key: string): boolean => {
    const m = /\/year=(\d{4})\/month=(\d\d)\/day=(\d\d)\/hour=(\d\d)\/[^/]+\.parquet$/.exec(key);
    if (m === null) return false;
    const hour = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]));
    return hour >= first && hour <= last;
  };
  return { dayPrefixes, inRange };
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }));
    for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

async function download(s3: S3Client, bucket: string, keys: readonly string[], dir: string, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] ?? '';
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const file = join(dir, key);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, (await object.Body?.transformToByteArray()) ?? new Uint8Array());
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
}

function timestampLiteral(at: Date): string {
  return `TIMESTAMP '${at.toISOString().replace('T', ' ').replace('Z', '')}'`;
}

/** A DuckDB value as JSON can carry it. */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}

/**
 * Runs `sql` in DuckDB over the audit trail between `from` and `to`: lists the Parquet objects of
 * the hour partitions covering the range, downloads them to a temporary folder (DuckDB cannot
 * reach S3 here), and loads into the table `audit` their rows with `recorded_at` in [from, to],
 * with the hive partition columns year, month, day and hour (INTEGER). With no objects `audit`
 * is empty but has every column. `sql` then runs with DuckDB's external access off: it reads
 * `audit` and nothing on the machine. Throws {@link AuditSqlError} when DuckDB refuses the SQL.
 */
export async function queryAuditTrail(options: AuditQueryOptions): Promise<AuditQueryResult> {
  if (!(options.from.getTime() <= options.to.getTime())) throw new RangeError(`AuditQueryOptions.from must not be after to, got ${options.from.toISOString()} > ${options.to.toISOString()}`);
  const systems = options.systems ?? ['spi', 'dict'];
  const { dayPrefixes, inRange } = partitionsCovering(options.from, options.to, systems);
  const keys = (await Promise.all(dayPrefixes.map((prefix) => listKeys(options.s3, options.bucket, prefix)))).flat().filter(inRange);
  const dir = await mkdtemp(join(tmpdir(), 'selo-audit-query-'));
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  const connection = await instance.connect();
  try {
    await download(options.s3, options.bucket, keys, dir, options.downloadConcurrency ?? 8);
    const columns = [...AUDIT_COLUMNS.map((c) => `"${c.name}"`), ...AUDIT_PARTITION_COLUMNS].join(', ');
    if (keys.length === 0) {
      await connection.run(`CREATE TABLE audit_empty (${auditTableDdl()}, ${AUDIT_PARTITION_COLUMNS.map((c) => `${c} INTEGER`).join(', ')})`);
      await connection.run(`CREATE VIEW audit AS SELECT ${columns} FROM audit_empty`);
    } else {
      const glob = join(dir, 'audit', '*', '*', '*', '*', '*', '*.parquet');
      await connection.run(
        `CREATE TABLE audit AS SELECT ${columns} FROM ${readAuditParquetSql(glob)} WHERE recorded_at BETWEEN ${timestampLiteral(options.from)} AND ${timestampLiteral(options.to)}`,
      );
    }
    // The records are in memory now; the SQL that follows may read nothing else: no local file
    // (the PKI's keys sit on the same machine), no COPY TO, ATTACH or extension. DuckDB refuses to
    // turn this back on while the database runs, so the SQL cannot undo it.
    await connection.run('SET enable_external_access = false');
    let reader;
    try {
      reader = await connection.runAndReadAll(options.sql);
    } catch (error) {
      throw new AuditSqlError((error as Error).message, { cause: error });
    }
    const rows = reader.getRowObjectsJS().map((row) => jsonSafe(row) as Record<string, unknown>);
    return { columns: reader.columnNames(), rows, objects: keys.length };
  } finally {
    connection.closeSync();
    instance.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Rows as an aligned text table; long or multi-line cells are cut to `maxCell` characters. */
export function formatAuditTable(result: Pick<AuditQueryResult, 'columns' | 'rows'>, maxCell = 60): string {
  const cell = (value: unknown): string => {
    const text = value === null || value === undefined ? 'NULL' : typeof value === 'string' ? value : JSON.stringify(value);
    const flat = text.replace(/\r?\n/g, '⏎');
    return flat.length > maxCell ? `${flat.slice(0, maxCell - 1)}…` : flat;
  };
  const body = result.rows.map((row) => result.columns.map((c) => cell(row[c])));
  const widths = result.columns.map((c, i) => Math.max(c.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(result.columns), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), `(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`].join('\n') + '\n';
}
