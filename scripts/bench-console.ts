// The operations console's page weight and time to first byte, on the local stand-ins with
// seeded work (sagas in doubt, open alerts, dead letters), beside a baseline measured in the same
// run: node:http answering a prepared string of the same size. A script, not a test: it prints.
//   node scripts/bench-console.ts [--sagas 50] [--rounds 30]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { startConsole } from '../infra/console/index.ts';
import { startLocalStack } from '../infra/local/index.ts';
import { resolveTopology } from '../infra/topology.ts';
import { newTraceparent } from '../shared/events/index.ts';
import { Operations } from '../shared/ops/index.ts';

const { values } = parseArgs({ options: { sagas: { type: 'string', default: '50' }, rounds: { type: 'string', default: '30' } } });
const sagaCount = Number(values.sagas);
const rounds = Number(values.rounds);
const topology = resolveTopology('local');
const stack = await startLocalStack();
const operations = new Operations({ sqs: stack.clients.sqs, dynamodb: stack.clients.dynamodb, s3: stack.clients.s3, sagaTable: topology.sagaTable.name, auditBucket: topology.auditBucket, queues: topology.queues });
const console_ = await startConsole({ operations });

try {
  // Seeded work: sagas in doubt, each with its alert; a few dead letters.
  let first = '';
  for (let i = 0; i < sagaCount; i += 1) {
    const endToEndId = `E99999004202612071000bench${String(i).padStart(5, '0')}`;
    const sagaId = `PAY#${endToEndId}`;
    first ||= sagaId;
    await operations.sagas.create({ sagaId, ids: { endToEndId }, reason: 'PaymentRequested', attempt: 1 });
    for (const to of ['SIGNED', 'TRANSMITTING', 'TRANSMITTED', 'IN_DOUBT'] as const) await operations.sagas.transition({ sagaId, to, reason: `bench ${to}`, attempt: 1, idempotencyKey: to });
    const detail = { version: 1, sagaId, endToEndId, attempt: 1, traceparent: newTraceparent(), data: { channel: 'spi', reason: 'no pacs.002 within 40000 ms' } };
    await stack.clients.events.send(new PutEventsCommand({ Entries: [{ EventBusName: topology.eventBusName, Source: 'selo.compensate', DetailType: 'PaymentInDoubt', Detail: JSON.stringify(detail) }] }));
  }
  const dlq = (await stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: topology.queues[0]?.dlqName ?? '' }))).QueueUrl ?? '';
  for (let i = 0; i < 10; i += 1) await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: JSON.stringify({ 'detail-type': 'PaymentRequested', detail: { sagaId: `PAY#E${i}` } }) }));
  await operations.refreshAlerts();

  const login = await fetch(`${console_.url}/login`, { method: 'POST', redirect: 'manual', headers: { origin: console_.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ operator: 'bench', token: console_.token }).toString() });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';

  const measure = async (url: string, headers: Record<string, string>): Promise<{ ttfb: number[]; bytes: number }> => {
    const ttfb: number[] = [];
    let bytes = 0;
    for (let i = 0; i < rounds; i += 1) {
      const started = performance.now();
      const answer = await fetch(url, { headers });
      ttfb.push(performance.now() - started);
      bytes = (await answer.arrayBuffer()).byteLength;
      if (answer.status !== 200) throw new Error(`${url}: ${answer.status}`);
    }
    ttfb.sort((a, b) => a - b);
    return { ttfb, bytes };
  };
  const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

  const pages = ['/', '/alerts', '/dead-letters', '/dead-letters/sign', `/sagas/${encodeURIComponent(first)}`, '/audit', '/console.css'];
  const results = [];
  for (const page of pages) results.push({ page, ...(await measure(`${console_.url}${page}`, { cookie })) });

  // Baseline: the same bytes from node:http with no work behind them.
  const largest = Math.max(...results.map((r) => r.bytes));
  const body = 'x'.repeat(largest);
  const baseline = createServer((_request, response) => response.end(body));
  await new Promise<void>((resolve) => baseline.listen(0, '127.0.0.1', resolve));
  const base = await measure(`http://127.0.0.1:${(baseline.address() as AddressInfo).port}/`, {});
  baseline.close();

  process.stdout.write(`selo console: ${sagaCount} sagas in doubt with their alerts, 10 dead letters; ${rounds} requests per page, one at a time\n`);
  process.stdout.write(`page                                  bytes   TTFB p50 ms  p95 ms  ×baseline(p50)\n`);
  for (const r of results) {
    process.stdout.write(`${r.page.slice(0, 36).padEnd(36)} ${String(r.bytes).padStart(7)}  ${pct(r.ttfb, 50).toFixed(1).padStart(11)}  ${pct(r.ttfb, 95).toFixed(1).padStart(6)}  ${(pct(r.ttfb, 50) / pct(base.ttfb, 50)).toFixed(1).padStart(14)}\n`);
  }
  process.stdout.write(`${'baseline: node:http, static string'.padEnd(36)} ${String(base.bytes).padStart(7)}  ${pct(base.ttfb, 50).toFixed(1).padStart(11)}  ${pct(base.ttfb, 95).toFixed(1).padStart(6)}\n`);
} finally {
  await console_.close();
  await stack.close();
}
