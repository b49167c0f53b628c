import { describe, expect, it } from 'vitest';
import { AUDIT_COLUMNS, auditPartitionPrefix, objectTimestamp, parseAuditRecord, partitionOf } from '../../../shared/audit/audit-schema.ts';
import { formatAuditTable, jsonSafe, partitionsCovering } from '../../../shared/audit/audit-query.ts';
import { transitionAuditRecord } from '../../../shared/audit/index.ts';

const record = transitionAuditRecord({ worker: 'verify', system: 'spi', sagaId: 'PAY#E1', endToEndId: 'E1' }, { from: 'TRANSMITTED', to: 'SETTLED', reason: 'ACSC' }, new Date('2026-05-01T10:59:59.999Z'));

describe('audit Parquet records', () => {
  it('has one column per AuditRecord field, with Glue types matching the DuckDB ones', () => {
    expect(AUDIT_COLUMNS.map((c) => c.name)).toEqual(Object.keys(record));
    expect(AUDIT_COLUMNS.filter((c) => c.type !== 'VARCHAR').map((c) => `${c.name}:${c.glueType}`)).toEqual([
      'recorded_at:timestamp',
      'request_date:timestamp',
      'response_status_code:int',
      'response_signature_valid:boolean',
      'duration_ms:int',
      'attempt:int',
    ]);
  });

  it('parses a record, ignoring unknown fields and filling absent nullable ones with null', () => {
    const { attempt: _attempt, ...withoutAttempt } = record;
    expect(parseAuditRecord(JSON.stringify({ ...withoutAttempt, extra: 1 }))).toEqual({ ok: true, record: { ...record, attempt: null } });
  });

  it('refuses what Firehose could not partition or convert, saying which', () => {
    const cases: [unknown, string, RegExp][] = [
      ['{"a":', 'partitioning-failed', /not JSON/],
      [[1, 2], 'partitioning-failed', /not a JSON object/],
      [{ ...record, system: 'pix' }, 'partitioning-failed', /system must be "spi" or "dict", got "pix"/],
      [{ ...record, recorded_at: '2026-05-01 10:00' }, 'partitioning-failed', /recorded_at must be an ISO 8601 UTC time/],
      [{ ...record, response_status_code: '201' }, 'format-conversion-failed', /response_status_code must be INTEGER, got "201"/],
      [{ ...record, duration_ms: 2 ** 31 }, 'format-conversion-failed', /duration_ms must be INTEGER/],
      [{ ...record, response_signature_valid: 'true' }, 'format-conversion-failed', /response_signature_valid must be BOOLEAN/],
      [{ ...record, request_date: 'yesterday' }, 'format-conversion-failed', /request_date must be TIMESTAMP/],
      [{ ...record, record_id: null }, 'format-conversion-failed', /record_id is required/],
      [{ ...record, record_id: '' }, 'format-conversion-failed', /record_id must not be empty/],
    ];
    for (const [input, failure, reason] of cases) {
      const parsed = parseAuditRecord(typeof input === 'string' ? input : Buffer.from(JSON.stringify(input)));
      expect(parsed.ok, JSON.stringify(input)).toBe(false);
      expect(parsed, JSON.stringify(input)).toMatchObject({ failure, reason: expect.stringMatching(reason) as unknown });
    }
  });

  it('partitions by the UTC hour of recorded_at, as Firehose lays out keys', () => {
    expect(auditPartitionPrefix(partitionOf(record))).toBe('audit/spi/year=2026/month=05/day=01/hour=10/');
    expect(auditPartitionPrefix(partitionOf({ system: 'dict', recorded_at: '2026-12-31T23:00:00.000Z' }))).toBe('audit/dict/year=2026/month=12/day=31/hour=23/');
    expect(objectTimestamp(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02-03-04-05');
  });
});

describe('audit query helpers', () => {
  it('lists the day prefixes covering a range and keeps only the hours inside it', () => {
    const { dayPrefixes, inRange } = partitionsCovering(new Date('2026-05-01T22:30:00Z'), new Date('2026-05-02T01:10:00Z'), ['spi', 'dict']);
    expect(dayPrefixes).toEqual(['audit/spi/year=2026/month=05/day=01/', 'audit/spi/year=2026/month=05/day=02/', 'audit/dict/year=2026/month=05/day=01/', 'audit/dict/year=2026/month=05/day=02/']);
    expect(inRange('audit/spi/year=2026/month=05/day=01/hour=21/x.parquet')).toBe(false);
    expect(inRange('audit/spi/year=2026/month=05/day=01/hour=22/x.parquet')).toBe(true);
    expect(inRange('audit/dict/year=2026/month=05/day=02/hour=01/x.parquet')).toBe(true);
    expect(inRange('audit/dict/year=2026/month=05/day=02/hour=02/x.parquet')).toBe(false);
    expect(inRange('audit/dict/year=2026/month=05/day=02/hour=01/x.json')).toBe(false);
  });

  it('makes DuckDB values JSON-safe and prints them as a table with long cells cut', () => {
    expect(jsonSafe({ n: 3n, big: 2n ** 60n, at: new Date('2026-05-01T10:00:00.000Z'), list: [1n] })).toEqual({ n: 3, big: '1152921504606846976', at: '2026-05-01T10:00:00.000Z', list: [1] });
    const table = formatAuditTable({ columns: ['worker', 'body'], rows: [{ worker: 'sign', body: `<a>\n${'x'.repeat(100)}</a>` }, { worker: 'transmit', body: null }] }, 12);
    expect(table).toBe(['worker    body', '--------  ------------', 'sign      <a>⏎xxxxxxx…', 'transmit  NULL', '(2 rows)', ''].join('\n'));
  });
});
