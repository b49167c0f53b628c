import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { KinesisAuditProducer, exchangeAuditRecord, kinesisPutRecordsPort, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { startLocalAuditDelivery } from '../../../shared/audit/parquet-delivery.ts';

const SELO = fileURLToPath(new URL('../../../bin/selo.ts', import.meta.url));
const topology = resolveTopology('local');
const endToEndId = `E99999004${new Date().toISOString().slice(0, 16).replace(/\D/g, '')}${randomUUID().replaceAll('-', '').slice(0, 11)}`;
const now = Date.now();
let stack: LocalStack;
let records: AuditRecord[];
let old: AuditRecord;

/** Runs the CLI in a child process, asynchronously: the stand-ins it talks to live in this process. */
function selo(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SELO, ...args], { env: { PATH: process.env.PATH ?? '', ...stack.env() }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  stack = await startLocalStack();
  const origin = { worker: 'transmit', system: 'spi' as const, sagaId: `PAY#${endToEndId}`, endToEndId, attempt: 1 };
  records = [
    transitionAuditRecord({ ...origin, worker: 'sign' }, { from: 'REQUESTED', to: 'SIGNED', reason: 'signed' }, new Date(now - 3_000)),
    exchangeAuditRecord(
      origin,
      {
        requestDate: new Date(now - 2_000),
        method: 'POST',
        path: '/api/v1/in/99999004/msgs',
        requestHeaders: { 'content-type': 'application/xml' },
        requestBody: '<Envelope/>',
        response: { statusCode: 201, headers: {}, body: '', signatureValid: null, receivedAt: new Date(now - 1_950) },
      },
      new Date(now - 1_900),
    ),
    transitionAuditRecord(origin, { from: 'TRANSMITTING', to: 'TRANSMITTED', reason: 'ICOM 201' }, new Date(now - 1_800)),
  ];
  // Three days old: outside the default window of 24 h.
  old = transitionAuditRecord(origin, { from: 'SIGNED', to: 'TRANSMITTING', reason: 'an older attempt' }, new Date(now - 3 * 86_400_000));
  const producer = new KinesisAuditProducer({ port: kinesisPutRecordsPort(stack.clients.kinesis), streamName: topology.auditStream.name });
  await producer.put([...records, old, records[0] as AuditRecord]);
  await producer.close();
  const delivery = await startLocalAuditDelivery({ clients: stack.clients, topology, pollIntervalMs: 50, bufferIntervalMs: 100_000 });
  const deadline = Date.now() + 20_000;
  while (delivery.stats().read < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  await delivery.close();
  expect(delivery.stats()).toMatchObject({ read: 5, delivered: 4, duplicates: 1 });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('selo audit query', () => {
  it('returns the records of one EndToEndId from the last 24 h as JSON rows', async () => {
    const result = await selo('audit', 'query', `SELECT * FROM audit WHERE end_to_end_id = '${endToEndId}' ORDER BY recorded_at`, '--json');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const rows = JSON.parse(result.stdout) as Record<string, unknown>[];
    const partition = (at: Date): number[] => [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(), at.getUTCHours()];
    expect(rows.map(({ year, month, day, hour, ...record }) => ({ record, partition: [year, month, day, hour] }))).toEqual(
      records.map((record) => ({ record, partition: partition(new Date(record.recorded_at)) })),
    );
  });

  it('reads older partitions with --from and --to, and prints a table', async () => {
    const from = new Date(now - 4 * 86_400_000).toISOString();
    const to = new Date(now - 2 * 86_400_000).toISOString();
    const result = await selo('audit', 'query', `SELECT worker, transition_to, count(*) AS n FROM audit WHERE end_to_end_id = '${endToEndId}' GROUP BY ALL`, '--from', from, '--to', to, '--system', 'spi');
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toEqual([expect.stringMatching(/^worker\s+transition_to\s+n$/), expect.stringMatching(/^-+\s+-+\s+-+$/), expect.stringMatching(/^transmit\s+TRANSMITTING\s+1$/), '(1 row)', '']);
    const dict = await selo('audit', 'query', `SELECT count(*) AS n FROM audit WHERE end_to_end_id = '${endToEndId}'`, '--system', 'dict', '--json');
    expect(JSON.parse(dict.stdout)).toEqual([{ n: 0 }]);
  });

  it('exits 1 with DuckDB\'s message when the SQL is refused', async () => {
    const result = await selo('audit', 'query', 'SELECT no_such_column FROM audit');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('selo audit: the SQL was refused: Binder Error: Referenced column "no_such_column" not found');
    expect(result.stdout).toBe('');
  });

  it('reads the audit records and nothing else on the machine: a local file is refused', async () => {
    const result = await selo('audit', 'query', "SELECT content FROM read_text('/etc/hostname')");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('file system operations are disabled by config');
    expect(result.stdout).toBe('');
  });

  it('exits 2 on bad usage', async () => {
    for (const args of [['query'], ['query', 'SELECT 1', '--system', 'pix'], ['query', 'SELECT 1', '--from', 'yesterday'], ['nothing']]) {
      const result = await selo('audit', ...args);
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toContain('usage: selo audit query');
    }
  });
});
