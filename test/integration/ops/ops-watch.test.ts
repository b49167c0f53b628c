import { spawn } from 'node:child_process';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import type { OpsView } from '../../../bin/commands/ops.ts';
import { SELO_CLI, runSeloCli } from '../../support/selo-cli.ts';
import type { SeloCliRun } from '../../support/selo-cli.ts';
import { waitUntil } from '../../support/wait-until.ts';
import { publishFailure, seedPayment } from '../compensate-support.ts';

const topology = resolveTopology('local');
const operationsQueue = topology.queues.find((q) => q.key === 'operations');
let stack: LocalStack;
let sagas: SagaStore;
let queueUrl: string;

beforeAll(async () => {
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  queueUrl = (await stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: operationsQueue?.name ?? '' }))).QueueUrl ?? '';
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

function selo(...args: string[]): Promise<SeloCliRun> {
  return runSeloCli(stack.env(), ...args);
}

async function queued(): Promise<number> {
  const got = await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(got.Attributes?.ApproximateNumberOfMessages ?? '0') + Number(got.Attributes?.ApproximateNumberOfMessagesNotVisible ?? '0');
}

async function watchOnce(): Promise<OpsView> {
  const ran = await selo('ops', 'watch', '--once', '--json');
  expect(ran.stderr).toBe('');
  expect(ran.status).toBe(0);
  return JSON.parse(ran.stdout) as OpsView;
}

function openOf(view: OpsView, kind: string): OpsView['groups'][number]['alerts'] {
  return view.groups.find((g) => g.kind === kind)?.alerts ?? [];
}

describe('selo ops', () => {
  it('reads the operations queue into open alerts grouped by kind, with age, and acknowledges an alert once its saga has left the state that raised it', async () => {
    const inDoubt = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
    // Published before the sweeper's IN_DOUBT write, as the compensation worker does: still TRANSMITTED.
    const early = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await publishFailure(stack, 'PaymentInDoubt', { sagaId: inDoubt.sagaId, endToEndId: inDoubt.endToEndId }, { channel: 'spi', reason: 'no pacs.002 within 40000 ms', limitMs: 40_000 }, 'selo.compensate');
    await publishFailure(stack, 'PaymentInDoubt', { sagaId: inDoubt.sagaId, endToEndId: inDoubt.endToEndId }, { channel: 'spi', reason: 'no pacs.002 within 40000 ms (again)' }, 'selo.compensate');
    await publishFailure(stack, 'PaymentInDoubt', { sagaId: early.sagaId, endToEndId: early.endToEndId }, { channel: 'spi', reason: 'no pacs.002' }, 'selo.compensate');
    await publishFailure(stack, 'SignatureInvalid', { sagaId: 'INBOX#r-1', bizMsgIdr: 'M00038166B2026120710000000001' } as never, { path: 'inbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest mismatch', debtor: { name: 'Fulano de Tal', taxId: '70000000000' } }, 'selo.verify');
    await waitUntil('four alerts on the operations queue', async () => (await queued()) >= 4);

    const first = await watchOnce();
    expect(first.drained).toMatchObject({ received: 4, recorded: 4, failed: 0 });
    expect(await queued()).toBe(0);
    const inDoubtAlerts = openOf(first, 'PaymentInDoubt');
    expect(inDoubtAlerts.map((a) => a.sagaId).sort()).toEqual([early.sagaId, inDoubt.sagaId].sort());
    const raisedTwice = inDoubtAlerts.find((a) => a.sagaId === inDoubt.sagaId);
    expect(raisedTwice).toMatchObject({ count: 2, raisedIn: 'IN_DOUBT', endToEndId: inDoubt.endToEndId, status: 'OPEN' });
    expect(raisedTwice?.ageSeconds).toBeGreaterThanOrEqual(0);
    const signature = openOf(first, 'SignatureInvalid');
    expect(signature).toHaveLength(1);
    expect(signature[0]?.facts).toEqual({ path: 'inbound', channel: 'spi', code: 'XMLDSIG_DIGEST_MISMATCH', reason: 'digest mismatch' });
    // Only the allowed fields of an event's data are kept: no personal data.
    expect(JSON.stringify(first)).not.toContain('70000000000');
    expect(first.deadLetters.map((d) => d.queue)).toEqual(topology.queues.map((q) => q.key));

    // The human form: grouped by kind, with age.
    const human = await selo('ops', 'watch', '--once');
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/\nPaymentInDoubt \(2\)\n {2}[0-9a-f]{16} {2}age \d+s/);
    expect(human.stdout).toContain('SignatureInvalid (1)');

    // An in-doubt payment's alert cannot be dismissed; it ends when the saga is resolved.
    const refused = await selo('ops', 'ack', raisedTwice?.alertId ?? '', '--note', 'checked');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ALERT_TIED_TO_SAGA');

    await sagas.transition({ sagaId: inDoubt.sagaId, to: 'SETTLED', from: ['IN_DOUBT'], reason: 'PaymentSettled (late pacs.002)', attempt: 1, idempotencyKey: 'late-acsc' });
    const second = await watchOnce();
    expect(second.acknowledged).toEqual([{ alertId: raisedTwice?.alertId, kind: 'PaymentInDoubt', sagaId: inDoubt.sagaId, acknowledgement: 'saga left IN_DOUBT: now SETTLED' }]);
    expect(openOf(second, 'PaymentInDoubt').map((a) => a.sagaId)).toEqual([early.sagaId]);
    // The early alert's saga has not yet entered IN_DOUBT: it stays open, and does once it has.
    await sagas.transition({ sagaId: early.sagaId, to: 'IN_DOUBT', from: ['TRANSMITTED'], reason: 'sweeper', attempt: 1, idempotencyKey: 'sweep' });
    expect(openOf(await watchOnce(), 'PaymentInDoubt').map((a) => a.sagaId)).toEqual([early.sagaId]);

    // An alert without a saga is acknowledged by an operator, once.
    const acked = await selo('ops', 'ack', signature[0]?.alertId ?? '', '--note', 'BCB certificate rotated; message re-read', '--by', 'ana');
    expect(acked.stderr).toBe('');
    expect(acked.status).toBe(0);
    expect(acked.stdout).toContain('by ana');
    expect(openOf(await watchOnce(), 'SignatureInvalid')).toEqual([]);
    const again = await selo('ops', 'ack', signature[0]?.alertId ?? '', '--note', 'twice');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('ALERT_NOT_OPEN');
  });

  it('keeps a message that is not an event as an Unreadable alert naming the message, not its content', async () => {
    const sent = await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'not json: CPF 70000000000' }));
    const view = await watchOnce();
    const unreadable = openOf(view, 'Unreadable');
    expect(unreadable).toHaveLength(1);
    expect(unreadable[0]?.facts.reason).toBe(`operations queue message ${sent.MessageId ?? ''} is not an EventBridge event`);
    expect(JSON.stringify(view)).not.toContain('70000000000');
  });

  it('without --once, prints again when what is open changes, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [SELO_CLI, 'ops', 'watch', '--json', '--interval-s', '1'], { env: { PATH: process.env.PATH ?? '', ...stack.env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const views = (): OpsView[] => out.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as OpsView);
    await waitUntil('the first view', () => views().length === 1, { timeoutMs: 30_000 });
    const conflict = await seedPayment(sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'SETTLED', 'OUTCOME_CONFLICT']);
    await publishFailure(stack, 'OutcomeConflict', { sagaId: conflict.sagaId, endToEndId: conflict.endToEndId }, { channel: 'spi', reason: 'RJCT after ACSC' });
    const second = await waitUntil('a view with the conflict', () => views().find((v) => openOf(v, 'OutcomeConflict').some((a) => a.sagaId === conflict.sagaId)), { timeoutMs: 30_000 });
    expect(openOf(second, 'OutcomeConflict')[0]).toMatchObject({ raisedIn: 'OUTCOME_CONFLICT', facts: { channel: 'spi', reason: 'RJCT after ACSC' } });
    const printed = views().length;
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    // Nothing changed between the reads after the conflict: no view was printed for them.
    expect(views()).toHaveLength(printed);
  });

  it('exits 2 on bad usage, naming the problem', async () => {
    const bad = await selo('ops', 'watch', '--interval-s', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--interval-s must be a whole number from 1 to 3600');
    expect((await selo('ops', 'ack', 'abc')).stderr).toContain('--note must say why');
    expect((await selo('ops', 'frobnicate')).status).toBe(2);
  });
});
