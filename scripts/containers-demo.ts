// The demo's payments against selo running in containers (docker-compose.yml): publishes
// PaymentRequested events as core banking would, with the demo's receivers (accept, reject AM04),
// subscribes as a downstream system would, and prints what became of them and what the BCB
// simulator's ledger says. See docs/containers.md.
//   node scripts/containers-demo.ts [--payments 100] [--rate 10]
// The compose stack's ports (4566-4569, admin 4571) unless SELO_*_ENDPOINT / SELO_BCB_ADMIN_URL say otherwise.
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { parseArgs } from 'node:util';
import { demoPayment, DEMO_REJECT_REASON, RECEIVER_OF } from '../bin/demo/demo-plan.ts';
import { TERMINAL_EVENTS } from '../bin/demo/demo-report.ts';
import { DownstreamSubscriber } from '../bin/demo/downstream-subscriber.ts';
import { resolveTopology } from '../infra/topology.ts';
import { createAwsClients } from '../shared/aws/index.ts';

const { values } = parseArgs({ options: { payments: { type: 'string', default: '100' }, rate: { type: 'string', default: '10' } } });
const payments = Number(values.payments);
const rate = Number(values.rate);
if (!Number.isInteger(payments) || payments < 1 || !(rate > 0)) {
  process.stderr.write('usage: node scripts/containers-demo.ts [--payments N] [--rate R]\n');
  process.exit(2);
}
const env = process.env;
const admin = env['SELO_BCB_ADMIN_URL'] ?? 'http://127.0.0.1:4571';
const clients = createAwsClients({
  region: 'sa-east-1',
  accountId: '000000000000',
  endpoints: {
    sqs: env['SELO_SQS_ENDPOINT'] ?? 'http://127.0.0.1:4566', s3: env['SELO_S3_ENDPOINT'] ?? 'http://127.0.0.1:4566',
    kinesis: env['SELO_KINESIS_ENDPOINT'] ?? 'http://127.0.0.1:4567', dynamodb: env['SELO_DYNAMODB_ENDPOINT'] ?? 'http://127.0.0.1:4568',
    events: env['SELO_EVENTS_ENDPOINT'] ?? 'http://127.0.0.1:4569',
  },
});
const { eventBusName } = resolveTopology('local');
await fetch(`${admin}/participants/${RECEIVER_OF.reject}/receiver`, { method: 'PUT', body: JSON.stringify({ mode: 'reject', reasonCode: DEMO_REJECT_REASON }) });
const outcomes = new Map<string, string>();
const subscriber = await DownstreamSubscriber.create({ clients, eventBusName, name: `selo-local-containers-demo-${Date.now()}`, detailTypes: Object.keys(TERMINAL_EVENTS) });
subscriber.start((event) => {
  if (event.endToEndId !== undefined) outcomes.set(event.endToEndId, event.detailType);
});
const started = Date.now();
const ids: string[] = [];
for (let i = 0; i < payments; i += 10) {
  const due = started + (i / rate) * 1000;
  if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
  const batch = Array.from({ length: Math.min(10, payments - i) }, (_, j) => demoPayment(eventBusName, '99999004', (i + j) % 10 === 0 ? 'reject' : 'accept', i + j, new Date()));
  ids.push(...batch.map((p) => p.endToEndId));
  await clients.events.send(new PutEventsCommand({ Entries: batch.map((p) => p.entry) }));
}
const deadline = Date.now() + 120_000;
while (ids.some((id) => !outcomes.has(id)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
const counts: Record<string, number> = {};
for (const id of ids) {
  const outcome = outcomes.get(id) ?? 'lost';
  counts[outcome] = (counts[outcome] ?? 0) + 1;
}
const ledger = (await (await fetch(`${admin}/ledger/summary`)).json()) as Record<string, number>;
process.stdout.write(`${JSON.stringify({ payments, seconds: Math.round((Date.now() - started) / 1000), outcomes: counts, ledger })}\n`);
await subscriber.close();
clients.destroy();
process.exitCode = counts['lost'] === undefined ? 0 : 1;
