import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack } from '../../infra/local/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { SagaStore } from '../../shared/saga/index.ts';
import type { Saga } from '../../shared/saga/index.ts';
import { seedPayment } from './compensate-support.ts';

const SELO = fileURLToPath(new URL('../../bin/selo.ts', import.meta.url));
const topology = resolveTopology('local');
let stack: LocalStack;
let sagas: SagaStore;

beforeAll(async () => {
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

/** Runs the CLI in a child process, asynchronously: the stand-ins it talks to live in this process. */
function selo(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SELO, ...args], { env: { PATH: process.env.PATH ?? '', ...stack.env() }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

describe('selo saga', () => {
  it('shows a payment by EndToEndId or saga id: state, ids, history and compensations', async () => {
    const { endToEndId, sagaId } = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED']);
    await sagas.transition({ sagaId, to: 'COMPENSATING', from: ['REJECTED'], reason: 'PaymentRejected AM04 event=e-1', attempt: 2, idempotencyKey: 'compensating#1' });
    await sagas.recordCompensation({ sagaId, step: 'sign', outcome: 'FAILED', errorCode: 'EVENTBRIDGE_UNAVAILABLE' });

    const shown = await selo('saga', 'show', endToEndId);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(`${sagaId}  COMPENSATING`);
    expect(shown.stdout).toContain(`endToEndId=${endToEndId}`);
    expect(shown.stdout).toMatch(/\d{4}-\d\d-\d\dT[\d:.]+Z {2}REJECTED → COMPENSATING {2}attempt 2 {2}\[compensating#1\] {2}PaymentRejected AM04 event=e-1/);
    expect(shown.stdout).toMatch(/#\d+ sign: PaymentReversalRequested \{"endToEndId":"E\w+","amount":"150.00"\} {2}FAILED {2}attempts 1 {2}last error EVENTBRIDGE_UNAVAILABLE/);

    const json = await selo('saga', 'show', sagaId, '--json');
    expect(json.status).toBe(0);
    const saga = JSON.parse(json.stdout) as Saga;
    expect(saga).toEqual(await sagas.get(sagaId));
    expect(saga.history.map((t) => t.to)).toEqual(['REQUESTED', 'SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'REJECTED', 'COMPENSATING']);
  });

  it('exits 1 for an id with no saga, naming where it looked', async () => {
    const result = await selo('saga', 'show', 'E99999004202611281700nothingther');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('PAY#E99999004202611281700nothingther, IN#E99999004202611281700nothingther, DICT#E99999004202611281700nothingther');
  });

  it('lists the sagas in one state, with --limit and --json', async () => {
    const first = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'IN_DOUBT']);
    const second = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
    await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);

    const listed = await selo('saga', 'list', '--state', 'IN_DOUBT', '--json');
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.stdout) as Saga[]).map((s) => s.sagaId)).toEqual([first.sagaId, second.sagaId]);

    const limited = await selo('saga', 'list', '--state', 'IN_DOUBT', '--limit', '1');
    expect(limited.status).toBe(0);
    expect(limited.stdout).toContain('IN_DOUBT: 1 saga(s) (first 1; --limit for more)');
    expect(limited.stdout).toContain(first.sagaId);
    expect(limited.stdout).not.toContain(second.sagaId);

    const empty = await selo('saga', 'list', '--state', 'COMPENSATION_FAILED', '--json');
    expect(empty.status).toBe(0);
    expect(JSON.parse(empty.stdout)).toEqual([]);
  });

  it('exits 2 on bad usage or configuration', async () => {
    const badState = await selo('saga', 'list', '--state', 'LOST');
    expect(badState.status).toBe(2);
    expect(badState.stderr).toContain('--state must be one of REQUESTED,');
    expect((await selo('saga', 'show')).status).toBe(2);
    expect((await selo('saga', 'frobnicate')).status).toBe(2);
    const noConfig = await new Promise<number | null>((resolve) => {
      execFile(process.execPath, [SELO, 'saga', 'show', 'x'], { env: { PATH: process.env.PATH ?? '' } }, (error) => resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : null));
    });
    expect(noConfig).toBe(2);
  });
  it('resolves by EndToEndId the payment to our customer (IN#) when that is the saga there, and refuses an id that names both PAY# and IN#', async () => {
    const id = 'E99999004202611281700bothbothbot';
    const inDoubt = ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'] as const;
    await seedPayment(sagas, inDoubt, { endToEndId: id, inbound: true, compensation: null });
    const only = await selo('saga', 'resolve', id, '--outcome', 'rejected', '--evidence', 'SPI desk', '--operator', 'alice', '--json');
    expect(only.stderr).toBe('');
    expect(JSON.parse(only.stdout)).toMatchObject({ status: 'resolved', sagaId: `IN#${id}`, state: 'REJECTED', events: ['InboundPaymentRejected'] });

    await seedPayment(sagas, inDoubt, { endToEndId: id });
    const both = await selo('saga', 'resolve', id, '--outcome', 'settled', '--evidence', 'e', '--operator', 'alice', '--json');
    expect(both.status).toBe(1);
    expect(JSON.parse(both.stderr)).toMatchObject({ error: 'RESOLUTION_INVALID', message: `${id} names both PAY#${id} and IN#${id}: give the saga id` });
    expect((await sagas.get(`PAY#${id}`))?.state).toBe('IN_DOUBT');
  });
});
