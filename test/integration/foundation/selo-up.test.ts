import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSoftHsmConf } from '../../../infra/softhsm/index.ts';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { resolveTopology } from '../../../infra/topology.ts';
import { newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { createAwsClients } from '../../../shared/aws/index.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';

const SELO = fileURLToPath(new URL('../../../bin/selo.ts', import.meta.url));

interface Ready {
  child: ChildProcessWithoutNullStreams;
  endpoints: Record<string, string>;
  output: string[];
}

// Each run gets its own SoftHSM token directory and PKI, never the developer's .selo/.
const scratch = mkdtempSync(join(tmpdir(), 'selo-up-'));
const softHsmConf = writeSoftHsmConf(join(scratch, 'softhsm'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function startUp(extra: readonly string[] = []): Promise<Ready> {
  const child = spawn(
    process.execPath,
    [SELO, 'up', '--sqs-port', '0', '--kinesis-port', '0', '--dynamodb-port', '0', '--events-port', '0', '--bcb-port', '0', '--pki-dir', join(scratch, 'pki'), ...extra],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SOFTHSM2_CONF: softHsmConf } },
  );
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 60 s:\n${output.join('\n')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`selo up exited with ${String(code)} before ready:\n${output.join('\n')}`)));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    createInterface({ input: child.stdout }).on('line', (line) => {
      output.push(line);
      if (line.startsWith('selo: ready ')) {
        clearTimeout(timer);
        resolve({ child, endpoints: JSON.parse(line.slice('selo: ready '.length)) as Record<string, string>, output });
      }
    });
  });
}

const clientCache = new Map<string, ReturnType<typeof createAwsClients>>();
function clients2(endpoints: Record<string, string>): ReturnType<typeof createAwsClients> {
  const key = JSON.stringify(endpoints);
  let found = clientCache.get(key);
  if (found === undefined) {
    found = createAwsClients({ region: endpoints.region ?? '', accountId: '000000000000', endpoints });
    clientCache.set(key, found);
  }
  return found;
}
afterAll(() => {
  for (const c of clientCache.values()) c.destroy();
});

async function requestPayment(clients: ReturnType<typeof createAwsClients>, endToEndId: string): Promise<void> {
  const transaction = {
    endToEndId, amount: '1.00', acceptanceDateTime: new Date().toISOString(), localInstrument: 'MANU',
    debtor: { name: 'Fulano', taxId: '70000000000' }, debtorAccount: { number: '1', type: 'CACC' },
    creditorAgentIspb: '99999005', creditor: { taxId: '80000000000' }, creditorAccount: { number: '2', type: 'CACC' }, purpose: 'IPAY',
  };
  const put = await clients.events.send(
    new PutEventsCommand({
      Entries: [{
        EventBusName: resolveTopology('local').eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested',
        Detail: JSON.stringify({ version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pacs.008', transaction } }),
      }],
    }),
  );
  expect(put.FailedEntryCount).toBe(0);
}

function exitOf(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null) return Promise.resolve({ code: child.exitCode, signal: null });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Pids whose parent is `pid`, read from /proc (Linux). */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '(ended)';
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

function portRefuses(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('selo up', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`prints the ready line, serves the topology, and stops cleanly on ${signal}`, async () => {
      const { child, endpoints, output } = await startUp();
      try {
        expect(Object.keys(endpoints).sort()).toEqual(['dynamodb', 'events', 'kinesis', 'region', 's3', 'sqs']);
        expect(endpoints.region).toBe('sa-east-1');
        expect(output.join('\n')).toContain('EventBridge selo emulator');
        expect(output.join('\n')).toContain(`SOFTHSM2_CONF=${softHsmConf}`);
        expect(readdirSync(join(scratch, 'pki')).sort()).toContain('psp-signing.crt');

        const clients = createAwsClients({ region: endpoints.region ?? '', accountId: '000000000000', endpoints });
        try {
          const queues = await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'selo-local-' }));
          expect(queues.QueueUrls?.some((url) => url.endsWith('/selo-local-sign'))).toBe(true);
        } finally {
          clients.destroy();
        }
        if (signal === 'SIGTERM') {
          // The workers run too: a payment requested on the bus goes the whole way to SETTLED.
          const endToEndId = generateEndToEndId('99999004');
          await requestPayment(clients2(endpoints), endToEndId);
          const sagas = new SagaStore({ client: clients2(endpoints).dynamodb, tableName: resolveTopology('local').sagaTable.name });
          await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 30_000, interval: 250 }).toBe('SETTLED');
        }
        // Everything runs in the one process (XSD validation included, in process) but DynamoDB
        // Local's JVM, which must end with it (checked below).
        const children = childrenOf(child.pid ?? -1);
        for (const pid of children) expect(commandOf(pid), `child ${pid}`).toMatch(/^(\(ended\)|java)$/);

        child.kill(signal);
        const exit = await exitOf(child);
        expect(exit).toEqual({ code: 0, signal: null });
        await expect.poll(() => children.filter((pid) => existsSync(`/proc/${pid}`)), { timeout: 5_000 }).toEqual([]);
        for (const key of ['sqs', 'events', 'kinesis', 'dynamodb']) {
          expect(await portRefuses(endpoints[key] ?? ''), key).toBe(true);
        }
        expect(output.join('')).toContain(`${signal} received, stopping`);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  }

  it('runs the stand-ins and the simulator with --no-workers, and prints every variable "selo worker all" needs to settle a payment', async () => {
    const { child, endpoints, output } = await startUp(['--no-workers']);
    let workers: ChildProcessWithoutNullStreams | undefined;
    try {
      const exports = Object.fromEntries(
        output.join('\n').split('\n').flatMap((line) => {
          const match = /^\s*export ([A-Z0-9_]+)=(.*)$/.exec(line);
          return match === null ? [] : [[match[1] ?? '', match[2] ?? '']];
        }),
      );
      for (const name of ['SELO_SIGNING_CERT', 'SELO_BCB_URL', 'SELO_BCB_CA', 'SELO_BCB_SIGNING_CERT', 'SELO_TLS_CERT', 'SELO_TLS_KEY', 'SOFTHSM2_CONF']) expect(exports[name], name).toBeDefined();
      expect(exports.SELO_BCB_URL).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(output.join('\n')).not.toMatch(/PIN/);
      // Only the printed exports (and PATH; health on any free port, so tests never collide).
      workers = spawn(process.execPath, [SELO, 'worker', 'all'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...exports, SELO_HEALTH_PORT: '0' } });
      const workerOutput: string[] = [];
      workers.stderr.on('data', (chunk: Buffer) => workerOutput.push(chunk.toString('utf8')));
      const endToEndId = generateEndToEndId('99999004');
      await requestPayment(clients2(endpoints), endToEndId);
      const sagas = new SagaStore({ client: clients2(endpoints).dynamodb, tableName: resolveTopology('local').sagaTable.name });
      await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 45_000, interval: 250 }).toBe('SETTLED');
      workers.kill('SIGTERM');
      expect((await exitOf(workers)).code, workerOutput.join('')).toBe(0);
      child.kill('SIGTERM');
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    } finally {
      if (workers !== undefined && workers.exitCode === null) workers.kill('SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);

  it('refuses a malformed port with a clear message and exit code 2', async () => {
    const child = spawn(process.execPath, [SELO, 'up', '--sqs-port', 'abc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exit = await exitOf(child);
    expect(exit.code).toBe(2);
    expect(stderr).toContain('--sqs-port must be a port number from 0 to 65535, got "abc"');
  });
});
