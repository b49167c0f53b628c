// What one AWS SDK call costs the calling process in CPU, by HTTP transport: the SDK's default
// node:http handler (as selo's local clients had it: keep-alive agent, 64 sockets), the same with
// the middleware chain cached (`cacheMiddleware`), selo's undici handler with it, the same made
// lean (shared/aws/lean-client.ts: one signer per auth scheme, the user agent computed once), the
// same signing with KeyedSha256 (shared/aws/keyed-sha256.ts: HMAC keys as KeyObjects; what
// shared/aws builds for SQS, EventBridge, Kinesis and DynamoDB), and a bare node:http POST
// of the same body with no SDK (the floor). A DynamoDB PutItem, 8 concurrent callers, against a
// loopback stub in a child process that answers `{}` (so only the client side is measured).
// Rounds alternate the variants (the machine is shared and noisy); ratios are against the SDK
// default in the same run. A script, not a test: it never fails on figures.
//   node scripts/bench-sdk-call.ts [--calls 4000] [--rounds 5] [--json]
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { KeyedSha256, leanClient, UndiciRequestHandler } from '../shared/aws/index.ts';
import { median } from './support/micro-bench.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);
if (!Number.isSafeInteger(calls) || calls < 100) throw new RangeError(`--calls must be an integer ≥ 100, got ${values.calls}`);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer, got ${values.rounds}`);

// The stub: its own process, so its CPU is not the client's.
const STUB = `
const http = require('node:http');
const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': 2 }); res.end('{}'); }); });
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;
const stub = spawn(process.execPath, ['-e', STUB], { stdio: ['ignore', 'pipe', 'inherit'] });
const [portLine] = (await once(stub.stdout, 'data')) as [Buffer];
const endpoint = `http://127.0.0.1:${portLine.toString().trim()}`;

const base = { endpoint, region: 'sa-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } };
const nodeHttp = (): NodeHttpHandler => new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) });
const clients = {
  'SDK, node:http': new DynamoDBClient({ ...base, requestHandler: nodeHttp() }),
  'SDK, node:http, cacheMiddleware': new DynamoDBClient({ ...base, requestHandler: nodeHttp(), cacheMiddleware: true }),
  'SDK, undici, cacheMiddleware': new DynamoDBClient({ ...base, requestHandler: new UndiciRequestHandler(), cacheMiddleware: true }),
  'the same, lean': leanClient(new DynamoDBClient({ ...base, requestHandler: new UndiciRequestHandler(), cacheMiddleware: true })),
  'the same, KeyedSha256 (selo)': leanClient(new DynamoDBClient({ ...base, requestHandler: new UndiciRequestHandler(), cacheMiddleware: true, sha256: KeyedSha256 })),
};
const item = { pk: { S: 'PAY#E99999004202612071500abcdefghijk' }, sk: { S: 'SAGA' }, state: { S: 'SIGNED' }, version: { N: '2' }, updatedAt: { S: '2026-12-07T15:00:00.000Z' } };
const put = (): PutItemCommand => new PutItemCommand({ TableName: 'selo-local-sagas', Item: item, ConditionExpression: 'attribute_not_exists(pk)' });

// The floor: the same request body, posted with node:http and no SDK.
const rawAgent = new Agent({ keepAlive: true, maxSockets: 64 });
const rawBody = JSON.stringify({ TableName: 'selo-local-sagas', Item: item, ConditionExpression: 'attribute_not_exists(pk)' });
function rawPost(): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(`${endpoint}/`, { method: 'POST', agent: rawAgent, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem', 'content-length': Buffer.byteLength(rawBody) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(void JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(rawBody);
  });
}

const variants: Record<string, () => Promise<unknown>> = {
  ...Object.fromEntries(Object.entries(clients).map(([name, client]) => [name, () => client.send(put())])),
  'node:http POST, no SDK (floor)': rawPost,
};

/** CPU of this process per call, µs, for `n` calls by 8 concurrent callers. */
async function cpuPerCall(call: () => Promise<unknown>, n: number): Promise<number> {
  const before = process.cpuUsage();
  let started = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (started < n) {
      started += 1;
      await call();
    }
  }));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

try {
  for (const call of Object.values(variants)) await cpuPerCall(call, 1000);
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, call] of Object.entries(variants)) (samples[name] ??= []).push(await cpuPerCall(call, calls));
  }
  const reference = median(samples['SDK, node:http'] ?? []);
  const rows = Object.entries(samples).map(([name, list]) => ({ variant: name, cpuMicrosPerCall: Math.round(median(list)), ratio: Math.round((100 * median(list)) / reference) / 100, rounds: list.map(Math.round) }));
  if (values.json) console.log(JSON.stringify({ calls, rounds, rows }));
  else {
    console.log(`CPU of the calling process per DynamoDB PutItem (${calls} calls a round, 8 concurrent, medians of ${rounds} alternated rounds):`);
    for (const row of rows) console.log(`  ${row.variant.padEnd(38)} ${String(row.cpuMicrosPerCall).padStart(5)} µs  ${row.ratio.toFixed(2)}×  (rounds: ${row.rounds.join(', ')})`);
  }
} finally {
  for (const client of Object.values(clients)) client.destroy();
  rawAgent.destroy();
  stub.kill();
}
