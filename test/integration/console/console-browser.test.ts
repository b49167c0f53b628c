import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { startLocalAuditDelivery } from '../../../shared/audit/parquet-delivery.ts';
import type { LocalAuditDelivery } from '../../../shared/audit/parquet-delivery.ts';
import { Operations } from '../../../shared/ops/index.ts';
import { SELO_CLI } from '../../support/selo-cli.ts';
import { waitUntil } from '../../support/wait-until.ts';
import { Subscriber, publishFailure, seedPayment } from '../compensate-support.ts';

/** The screenshots go to docs/img (committed) with SELO_CONSOLE_SCREENSHOTS=docs, else to a temporary folder, so a test run leaves the tree as it was. */
const IMAGES = process.env.SELO_CONSOLE_SCREENSHOTS === 'docs' ? fileURLToPath(new URL('../../../docs/img/', import.meta.url)) : mkdtempSync(join(tmpdir(), 'selo-console-shots-'));
/** Debian's chromium; without the background-networking flags it stalls on this closed network. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const topology = resolveTopology('local');

let stack: LocalStack;
let operations: Operations;
let delivery: LocalAuditDelivery;
let consoleUrl: string;
let token: string;
let profile: string;
let browser: BrowserContext;
let page: Page;
let elsewhere: Server;
let subscriber: Subscriber;

function queueUrl(name: string): Promise<string> {
  return stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: name })).then((got) => got.QueueUrl ?? '');
}

interface RunningConsole {
  child: ChildProcess;
  url: string;
  token: string;
}

const consoles: RunningConsole[] = [];

/** Starts `selo console` as an operator would, on a free port, and reads its ready line. */
async function startConsoleProcess(env: Record<string, string> = {}): Promise<RunningConsole> {
  const child = spawn(process.execPath, [SELO_CLI, 'console', '--port', '0'], { env: { PATH: process.env.PATH ?? '', ...stack.env(), SELO_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`[selo console] ${chunk.toString('utf8')}`));
  const ready = await waitUntil('selo console ready', () => /selo: ready (\{.*\})\n/.exec(out)?.[1], { timeoutMs: 60_000, intervalMs: 50 });
  const running = { child, ...(JSON.parse(ready) as { url: string; token: string }) };
  consoles.push(running);
  return running;
}

/** Logs in without a browser; resolves to the session cookie. */
async function logIn(console_: RunningConsole, operator: string): Promise<string> {
  const answer = await fetch(`${console_.url}/login`, { method: 'POST', redirect: 'manual', headers: { origin: console_.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ operator, token: console_.token }).toString() });
  expect(answer.status).toBe(303);
  return (answer.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(IMAGES, `console-${name}.png`) });
}

beforeAll(async () => {
  stack = await startLocalStack();
  operations = new Operations({ sqs: stack.clients.sqs, dynamodb: stack.clients.dynamodb, s3: stack.clients.s3, sagaTable: topology.sagaTable.name, auditBucket: topology.auditBucket, queues: topology.queues });
  delivery = await startLocalAuditDelivery({ clients: stack.clients, topology, pollIntervalMs: 100, bufferIntervalMs: 300 });
  // A downstream subscriber: sees what a resolution publishes.
  subscriber = new Subscriber(stack);
  await subscriber.start('console-test-downstream', { source: ['selo.operations'] });
  ({ url: consoleUrl, token } = await startConsoleProcess());
  profile = mkdtempSync(join(tmpdir(), 'selo-console-chromium-'));
  browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1100, height: 720 } });
  page = browser.pages()[0] ?? (await browser.newPage());
  // A page on another origin (same host, another port: "same-site", so a SameSite=Strict cookie still goes along).
  elsewhere = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<form id="f" method="post" action="${consoleUrl}/dead-letters/sign/replay"><input name="max" value="10"><input name="csrf" value="guess"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  if (process.env.SELO_CONSOLE_SCREENSHOTS !== 'docs') rmSync(IMAGES, { recursive: true, force: true });
  for (const { child } of consoles) {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
  }
  await new Promise((resolve) => elsewhere?.close(resolve));
  await subscriber?.stop();
  await delivery?.close();
  await stack?.close();
}, 60_000);

describe('selo console', () => {
  it('refuses every page and action without a login', async () => {
    const page = await fetch(`${consoleUrl}/`, { redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');
    const action = await fetch(`${consoleUrl}/dead-letters/sign/replay`, { method: 'POST', redirect: 'manual', headers: { origin: consoleUrl, 'content-type': 'application/x-www-form-urlencoded' }, body: 'max=1' });
    expect(action.status).toBe(401);
    expect(await action.text()).toContain('CONSOLE_LOGIN_REQUIRED');
    const forged = await fetch(`${consoleUrl}/`, { redirect: 'manual', headers: { cookie: 'selo_console=made-up' } });
    expect(forged.status).toBe(303);
    const wrongToken = await fetch(`${consoleUrl}/login`, { method: 'POST', redirect: 'manual', headers: { origin: consoleUrl, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ operator: 'mallory', token: 'not-the-token-at-all' }).toString() });
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.headers.get('set-cookie')).toBeNull();
    // DNS rebinding: a name that resolves to 127.0.0.1 still carries its own Host (fetch cannot set Host).
    const otherHost = await new Promise<number | undefined>((resolve, reject) => {
      request(`${consoleUrl}/login`, { headers: { host: 'attacker.example' } }, (answer) => {
        answer.resume();
        resolve(answer.statusCode);
      }).on('error', reject).end();
    });
    expect(otherHost).toBe(421);
  });

  it('logs in with the printed token, shows an in-doubt payment, and resolves it once, audited', async () => {
    const { sagaId, endToEndId } = await seedPayment(operations.sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
    await publishFailure(stack, 'PaymentInDoubt', { sagaId, endToEndId }, { channel: 'spi', reason: 'no pacs.002 within 40000 ms', limitMs: 40_000 }, 'selo.compensate');
    // A saga whose history holds markup: shown as text, never run.
    const hostile = await seedPayment(operations.sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
    await operations.sagas.transition({ sagaId: hostile.sagaId, to: 'IN_DOUBT', from: ['TRANSMITTED'], reason: '<script>document.title="owned"</script><img src=x>', attempt: 1, idempotencyKey: 'hostile' });

    await page.goto(`${consoleUrl}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await shot('login');
    await page.getByLabel('Your name').fill('ana');
    await page.getByLabel('Console token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${consoleUrl}/`);
    const cookies = await browser.cookies(consoleUrl);
    expect(cookies).toEqual([expect.objectContaining({ name: 'selo_console', httpOnly: true, sameSite: 'Strict' })]);

    const inDoubt = page.locator('section', { has: page.getByRole('heading', { name: /^IN_DOUBT/ }) });
    await expect.poll(() => inDoubt.getByRole('link', { name: sagaId }).count()).toBe(1);
    await expect.poll(() => page.getByRole('cell', { name: sagaId }).count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator('section', { has: page.getByRole('heading', { name: /^Open alerts/ }) }).textContent()).toContain('PaymentInDoubt');
    await shot('attention');

    await page.goto(`${consoleUrl}/sagas/${encodeURIComponent(hostile.sagaId)}`);
    expect(await page.getByRole('cell', { name: /<script>document.title/ }).count()).toBe(1);
    expect(await page.locator('main script, main img').count()).toBe(0);
    expect(await page.title()).not.toBe('owned');

    await page.getByPlaceholder('EndToEndId, RequestId or saga id').fill(endToEndId);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.waitForURL(`${consoleUrl}/sagas/${encodeURIComponent(sagaId)}`);
    await shot('saga');
    await page.getByLabel('settled (PaymentSettled)').check();
    await page.getByLabel('Evidence').fill('SPI statement line 4711: ACSC at 10:02:03');
    await page.getByRole('button', { name: 'Resolve' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('resolved settled, now SETTLED');
    expect(await page.locator('.state').textContent()).toBe('SETTLED');
    expect((await operations.sagas.get(sagaId))?.history.at(-1)).toMatchObject({ from: 'IN_DOUBT', to: 'SETTLED' });
    expect((await operations.sagas.get(sagaId))?.history.at(-1)?.reason).toContain('ana');

    // Exactly once: the form posted again (a double submit, a second tab) changes nothing and says so.
    expect(await page.getByRole('button', { name: 'Resolve' }).count()).toBe(0);
    const cookie = (await browser.cookies(consoleUrl)).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value')) ?? '';
    const again = await fetch(`${consoleUrl}/sagas/${encodeURIComponent(sagaId)}/resolve`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: consoleUrl, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, outcome: 'settled', evidence: 'again' }).toString() });
    expect(again.status).toBe(303);
    await page.reload();
    expect(await page.getByRole('status').textContent()).toContain('already resolved settled');
    await waitUntil('PaymentSettled delivered downstream', () => subscriber.events.some((e) => e.detailType === 'PaymentSettled' && e.detail.sagaId === sagaId));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(subscriber.events.filter((e) => e.detail.sagaId === sagaId).map((e) => e.detailType)).toEqual(['PaymentSettled']);

    // Its alert left the open list with the resolution.
    await page.goto(`${consoleUrl}/alerts`);
    expect(await page.locator('main').textContent()).not.toContain(sagaId);

    // Audited: the resolution's transition is in the audit trail, by query in the console.
    await waitUntil('the resolution in the audit trail', async () => (await operations.queryAudit({ sql: `SELECT 1 FROM audit WHERE saga_id = '${sagaId}' AND transition_to = 'SETTLED'`, from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) })).rows.length === 1, { timeoutMs: 30_000, intervalMs: 500 });
    await page.goto(`${consoleUrl}/audit`);
    await page.getByLabel('SQL over the table audit').fill(`SELECT saga_id, transition_from, transition_to, transition_reason FROM audit WHERE saga_id = '${sagaId}' ORDER BY recorded_at`);
    await page.getByLabel('To', { exact: true }).fill(new Date(Date.now() + 60_000).toISOString());
    await page.getByRole('button', { name: 'Run' }).click();
    const result = page.locator('table.result');
    await expect.poll(() => result.locator('tbody tr').count()).toBe(1);
    expect(await result.locator('tbody tr').first().textContent()).toMatch(/IN_DOUBTSETTLED.*ana/);
    await shot('audit');
    // The SQL reads the audit records, nothing on the machine.
    await page.getByLabel('SQL over the table audit').fill("SELECT content FROM read_text('/etc/hostname')");
    await page.getByRole('button', { name: 'Run' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('file system operations are disabled');
  });

  it('lists a dead letter and replays it to its work queue', async () => {
    const dlq = await queueUrl(topology.queues.find((q) => q.key === 'sign')?.dlqName ?? '');
    const body = JSON.stringify({ id: 'dead-1', 'detail-type': 'PaymentRequested', source: 'core.banking', detail: { sagaId: 'PAY#E99999004202612071000deadletter1', data: { debtor: { taxId: '70000000000' } } } });
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body, MessageAttributes: { 'selo-error-code': { DataType: 'String', StringValue: 'SIGN_REQUEST_INVALID' }, 'selo-error-reason': { DataType: 'String', StringValue: 'amount must be a decimal string' } } }));
    await page.goto(`${consoleUrl}/dead-letters`);
    await shot('dead-letters');
    await page.getByRole('link', { name: 'sign', exact: true }).click();
    await expect.poll(() => page.getByRole('cell', { name: 'SIGN_REQUEST_INVALID' }).count()).toBe(1);
    expect(await page.getByRole('cell', { name: 'PaymentRequested PAY#E99999004202612071000deadletter1' }).count()).toBe(1);
    expect(await page.locator('main').textContent()).not.toContain('70000000000');
    await page.getByRole('button', { name: 'Replay to sign' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Replayed 1 message(s) to sign');
    const sign = await queueUrl(topology.queues.find((q) => q.key === 'sign')?.name ?? '');
    const replayed = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: sign, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    expect(replayed.Messages?.map((m) => m.Body)).toEqual([body]);
  });

  it('refuses a state-changing request from another origin, and one without the session\'s CSRF token', async () => {
    const dlq = await queueUrl(topology.queues.find((q) => q.key === 'verify')?.dlqName ?? '');
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: '{"detail-type":"BcbMessageReceived"}' }));
    const attacker = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`;
    const refused = page.waitForResponse((r) => r.url().startsWith(consoleUrl) && r.request().method() === 'POST');
    await page.goto(attacker);
    const answer = await refused;
    expect(answer.status()).toBe(403);
    expect(await answer.text()).toContain('CONSOLE_CROSS_SITE');

    // The same from a script with the session's cookie but no browser: Origin and CSRF decide.
    const cookie = (await browser.cookies(consoleUrl)).map((c) => `${c.name}=${c.value}`).join('; ');
    const post = (origin: string, csrf: string): Promise<Response> =>
      fetch(`${consoleUrl}/dead-letters/verify/replay`, { method: 'POST', redirect: 'manual', headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ max: '10', csrf }).toString() });
    await page.goto(`${consoleUrl}/dead-letters/verify`);
    const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value')) ?? '';
    expect((await post('http://evil.example', csrf)).status).toBe(403);
    const noCsrf = await post(consoleUrl, 'guess');
    expect(noCsrf.status).toBe(403);
    expect(await noCsrf.text()).toContain('CONSOLE_CSRF');
    const left = await operations.listDeadLetters('verify');
    expect(left).toHaveLength(1);
    // With both, it goes through: the refusals above were the checks, not a broken replay.
    expect((await post(consoleUrl, csrf)).status).toBe(303);
    expect(await operations.listDeadLetters('verify')).toHaveLength(0);
    await page.goto(`${consoleUrl}/alerts`);
    await shot('alerts');
    for (const name of ['login', 'attention', 'saga', 'audit', 'dead-letters', 'alerts']) expect(statSync(join(IMAGES, `console-${name}.png`)).size).toBeLessThan(200_000);
  });

  it('with four eyes, applies a resolution only when a second operator approves it', async () => {
    const fourEyes = await startConsoleProcess({ SELO_RESOLVE_APPROVALS: '2' });
    const { sagaId } = await seedPayment(operations.sagas, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT']);
    const sagaPath = `/sagas/${encodeURIComponent(sagaId)}`;
    await page.goto(`${fourEyes.url}/login`);
    await page.getByLabel('Your name').fill('ana');
    await page.getByLabel('Console token').fill(fourEyes.token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${fourEyes.url}/`);
    await page.goto(`${fourEyes.url}${sagaPath}`);
    await page.getByLabel('rejected (PaymentRejected, then compensated)').check();
    await page.getByLabel('Evidence').fill('SPI desk: rejected AB03 at 10:02');
    await page.getByLabel('Reason code for a rejection').fill('AB03');
    await page.getByRole('button', { name: 'Resolve' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('waiting for another operator');
    expect(await page.locator('.state').textContent()).toBe('IN_DOUBT');
    await page.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('RESOLUTION_SELF_APPROVAL');
    expect((await operations.sagas.get(sagaId))?.state).toBe('IN_DOUBT');

    const bob = await logIn(fourEyes, 'bob');
    const pageForBob = await (await fetch(`${fourEyes.url}${sagaPath}`, { headers: { cookie: bob } })).text();
    expect(pageForBob).toContain('requested by ana');
    const csrf = /name="csrf" value="([^"]+)"/.exec(pageForBob)?.[1] ?? '';
    const approved = await fetch(`${fourEyes.url}${sagaPath}/approve`, { method: 'POST', redirect: 'manual', headers: { cookie: bob, origin: fourEyes.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
    expect(approved.status).toBe(303);
    const saga = await operations.sagas.get(sagaId);
    expect(saga?.state).toBe('REJECTED');
    expect(saga?.history.at(-1)?.reason).toMatch(/ana.*approved by bob|bob.*ana/);
  });
});
