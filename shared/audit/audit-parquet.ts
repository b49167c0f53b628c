import { DuckDBInstance, DuckDBTimestampValue } from '@duckdb/node-api';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import type { AuditRecord } from './audit-record.ts';
import { AUDIT_COLUMNS, AUDIT_PARTITION_COLUMNS, auditTableDdl } from './audit-schema.ts';
import type { AuditColumnType } from './audit-schema.ts';

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function appendValue(appender: DuckDBAppender, type: AuditColumnType, value: unknown): void {
  if (value === null || value === undefined) {
    appender.appendNull();
    return;
  }
  switch (type) {
    case 'VARCHAR':
      appender.appendVarchar(value as string);
      return;
    case 'INTEGER':
      appender.appendInteger(value as number);
      return;
    case 'BOOLEAN':
      appender.appendBoolean(value as boolean);
      return;
    case 'TIMESTAMP':
      appender.appendTimestamp(new DuckDBTimestampValue(BigInt(Date.parse(value as string)) * 1000n));
  }
}

/**
 * Writes audit records as Parquet files with the audit table's schema ({@link AUDIT_COLUMNS},
 * Snappy-compressed like Firehose's default), through an in-memory DuckDB. Writes run one at a
 * time (one DuckDB connection). Kept out of `shared/audit/index.ts` so that workers importing the
 * audit producer do not load DuckDB's native binding.
 */
export class AuditParquetWriter {
  readonly #connection: DuckDBConnection;
  readonly #instance: DuckDBInstance;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(instance: DuckDBInstance, connection: DuckDBConnection) {
    this.#instance = instance;
    this.#connection = connection;
  }

  /** Opens an in-memory DuckDB with the staging table. */
  static async open(): Promise<AuditParquetWriter> {
    // No extension may be fetched (Parquet is built in), and one writer needs no parallelism.
    const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', threads: '1' });
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE audit_batch (${auditTableDdl()})`);
    return new AuditParquetWriter(instance, connection);
  }

  /** Writes `records` to a new Parquet file at `path` (its folder must exist). */
  write(records: readonly AuditRecord[], path: string): Promise<void> {
    const next = this.#queue.then(() => this.#write(records, path));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #write(records: readonly AuditRecord[], path: string): Promise<void> {
    if (this.#closed) throw new Error('AuditParquetWriter is closed');
    await this.#connection.run('DELETE FROM audit_batch');
    const appender = await this.#connection.createAppender('audit_batch');
    try {
      for (const record of records) {
        for (const column of AUDIT_COLUMNS) appendValue(appender, column.type, record[column.name]);
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    await this.#connection.run(`COPY audit_batch TO ${sqlString(path)} (FORMAT parquet, COMPRESSION snappy)`);
  }

  /** Waits for pending writes and closes DuckDB. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    this.#connection.closeSync();
    this.#instance.closeSync();
  }
}

/** The `read_parquet` call over files laid out as `…/audit/<system>/year=…/…/*.parquet`. */
export function readAuditParquetSql(glob: string): string {
  return `read_parquet(${sqlString(glob)}, hive_partitioning = true, hive_types = {${AUDIT_PARTITION_COLUMNS.map((c) => `'${c}': INTEGER`).join(', ')}}, union_by_name = true)`;
}
