import type { AuditRecord, AuditSystem } from './audit-record.ts';

/**
 * Type of one audit column. One name per type, mapped to both DuckDB (local Parquet) and Glue
 * (the table Firehose converts with and Athena reads), so the two cannot drift.
 */
export type AuditColumnType = 'VARCHAR' | 'INTEGER' | 'BOOLEAN' | 'TIMESTAMP';

/**
 * The audit table's columns, in Parquet column order: every field of {@link AuditRecord}, no more
 * (the mapped type makes a field added to the record fail to compile until it has a column).
 * Times are `TIMESTAMP` (UTC wall clock, microsecond storage, the records carry milliseconds);
 * status code, duration and attempt are 32-bit `INTEGER`; the signature check is `BOOLEAN`.
 */
export const AUDIT_COLUMN_TYPES: { readonly [K in keyof AuditRecord]-?: AuditColumnType } = {
  record_id: 'VARCHAR',
  kind: 'VARCHAR',
  system: 'VARCHAR',
  recorded_at: 'TIMESTAMP',
  worker: 'VARCHAR',
  saga_id: 'VARCHAR',
  end_to_end_id: 'VARCHAR',
  biz_msg_idr: 'VARCHAR',
  request_id: 'VARCHAR',
  traceparent: 'VARCHAR',
  request_date: 'TIMESTAMP',
  request_method: 'VARCHAR',
  request_path: 'VARCHAR',
  request_header: 'VARCHAR',
  request_body: 'VARCHAR',
  response_status_code: 'INTEGER',
  response_signature_valid: 'BOOLEAN',
  response_header: 'VARCHAR',
  response_body: 'VARCHAR',
  duration_ms: 'INTEGER',
  transition_from: 'VARCHAR',
  transition_to: 'VARCHAR',
  transition_reason: 'VARCHAR',
  attempt: 'INTEGER',
};

/** One column of the audit table. */
export interface AuditColumn {
  name: keyof AuditRecord;
  type: AuditColumnType;
  /** The Glue (Hive DDL) type of the same column. */
  glueType: 'string' | 'int' | 'boolean' | 'timestamp';
}

const GLUE_TYPES = { VARCHAR: 'string', INTEGER: 'int', BOOLEAN: 'boolean', TIMESTAMP: 'timestamp' } as const;

/** {@link AUDIT_COLUMN_TYPES} as an ordered list, with the Glue types. */
export const AUDIT_COLUMNS: readonly AuditColumn[] = (Object.entries(AUDIT_COLUMN_TYPES) as [keyof AuditRecord, AuditColumnType][]).map(([name, type]) => ({
  name,
  type,
  glueType: GLUE_TYPES[type],
}));

/** Columns a record cannot lack: the partition is made of them, and readers dedupe by the id. */
const REQUIRED: ReadonlySet<string> = new Set(['record_id', 'system', 'recorded_at']);

/**
 * Hive partition columns of the layout, typed as the Glue table's partition keys (projected
 * integers; month, day and hour written with two digits).
 */
export const AUDIT_PARTITION_COLUMNS = ['year', 'month', 'day', 'hour'] as const;

/** ISO 8601 UTC as the records write it (`Date.toISOString`), optionally without milliseconds. */
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/;

/** Why a Kinesis record cannot become a row, named like Firehose's error output types. */
export type AuditConversionFailure =
  /** No partition can be derived (not JSON, not an object, no valid `system` or `recorded_at`). */
  | 'partitioning-failed'
  /** The partition is known but a column has the wrong type. */
  | 'format-conversion-failed';

/** The outcome of {@link parseAuditRecord}. */
export type ParsedAuditRecord = { ok: true; record: AuditRecord } | { ok: false; failure: AuditConversionFailure; reason: string };

function isTimestamp(value: string): boolean {
  return ISO_UTC.test(value) && Number.isFinite(Date.parse(value));
}

/**
 * Parses one Kinesis record's data into an audit row the way Firehose's conversion would: unknown
 * fields are ignored, absent nullable fields are null, and a value of the wrong type (or a record
 * that cannot be partitioned) is a failure, never a silently altered row.
 */
export function parseAuditRecord(data: Uint8Array | string): ParsedAuditRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (error) {
    return { ok: false, failure: 'partitioning-failed', reason: `not JSON: ${(error as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, failure: 'partitioning-failed', reason: 'not a JSON object' };
  }
  const input = parsed as Record<string, unknown>;
  if (input['system'] !== 'spi' && input['system'] !== 'dict') {
    return { ok: false, failure: 'partitioning-failed', reason: `system must be "spi" or "dict", got ${JSON.stringify(input['system']) ?? 'nothing'}` };
  }
  if (typeof input['recorded_at'] !== 'string' || !isTimestamp(input['recorded_at'])) {
    return { ok: false, failure: 'partitioning-failed', reason: `recorded_at must be an ISO 8601 UTC time, got ${JSON.stringify(input['recorded_at']) ?? 'nothing'}` };
  }
  const record: Record<string, unknown> = {};
  for (const column of AUDIT_COLUMNS) {
    const value = input[column.name] ?? null;
    if (value === null) {
      if (REQUIRED.has(column.name)) return { ok: false, failure: 'format-conversion-failed', reason: `${column.name} is required` };
    } else if (!fits(column.type, value)) {
      return { ok: false, failure: 'format-conversion-failed', reason: `${column.name} must be ${column.type}, got ${JSON.stringify(value).slice(0, 80)}` };
    }
    record[column.name] = value;
  }
  if (record['record_id'] === '') return { ok: false, failure: 'format-conversion-failed', reason: 'record_id must not be empty' };
  return { ok: true, record: record as unknown as AuditRecord };
}

function fits(type: AuditColumnType, value: unknown): boolean {
  switch (type) {
    case 'VARCHAR':
      return typeof value === 'string';
    case 'INTEGER':
      return typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;
    case 'BOOLEAN':
      return typeof value === 'boolean';
    case 'TIMESTAMP':
      return typeof value === 'string' && isTimestamp(value);
  }
}

/** An hour partition of the audit trail. */
export interface AuditPartition {
  system: AuditSystem;
  /** The hour's start, UTC. */
  hour: Date;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `year=YYYY/month=MM/day=DD/hour=HH/` of a time, UTC (Firehose's `!{timestamp:…}` layout). */
export function hourPath(at: Date): string {
  return `year=${pad(at.getUTCFullYear(), 4)}/month=${pad(at.getUTCMonth() + 1)}/day=${pad(at.getUTCDate())}/hour=${pad(at.getUTCHours())}/`;
}

/** The key prefix of one partition: `audit/<system>/year=YYYY/month=MM/day=DD/hour=HH/`. */
export function auditPartitionPrefix(partition: AuditPartition): string {
  return `audit/${partition.system}/${hourPath(partition.hour)}`;
}

/** The hour partition a record belongs to, from its `recorded_at` (UTC). */
export function partitionOf(record: Pick<AuditRecord, 'system' | 'recorded_at'>): AuditPartition {
  const hour = new Date(record.recorded_at);
  hour.setUTCMinutes(0, 0, 0);
  return { system: record.system, hour };
}

/** `yyyy-MM-dd-HH-mm-ss` (UTC), as Firehose stamps object names. */
export function objectTimestamp(at: Date): string {
  return `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}-${pad(at.getUTCHours())}-${pad(at.getUTCMinutes())}-${pad(at.getUTCSeconds())}`;
}

/** The DuckDB column list of the audit table, for `CREATE TABLE`. */
export function auditTableDdl(): string {
  return AUDIT_COLUMNS.map((c) => `"${c.name}" ${c.type}`).join(', ');
}
