// Signed-and-transmitted payments per second through the real path on this machine: the local
// stack, the sign worker with SoftHSM, the transmit worker over mTLS, the BCB simulator, all in
// this process. Baseline measured in the same run: SoftHSM signatures/s through the same pool
// size. Also prints HTTP requests per TLS handshake. A script, not a test: it never fails on time.
//   node scripts/bench-pipeline.ts [--payments 500] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createAwsClients } from '../shared/aws/index.ts';
import { initDevPki, writeSoftHsmConf } from '../infra/softhsm/index.ts';
import { resolveTopology } from '../infra/topology.ts';
import { newTraceparent, paymentSagaId } from '../shared/events/index.ts';
import { HsmPool, initToken } from '../shared/hsm/index.ts';
import { createLogger } from '../shared/logging/index.ts';
import { startSignWorker } from '../workers/sign/index.ts';
import { startTransmitWorker } from '../workers/transmit/index.ts';
import { generateEndToEndId } from '../shared/iso20022/index.ts';

const { values } = parseArgs({ options: { payments: { type: 'string', default: '500' }, json: { type: 'boolean', default: false } } });
const PAYMENTS = Number(values.payments);
const ISPB = '99999004';
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const topology = resolveTopology('local');
const quiet = createLogger({ name: 'bench', level: 'silent' });

/** Starts `node <args>`, resolves with its `selo: ready {json}` line and a stop function. */
function startChild(args: string[]): Promise<{ ready: unknown; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args[1] ?? ''} exited with ${String(code)} before it was ready`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('selo: ready ')) return;
      resolve({
        ready: JSON.parse(line.slice('selo: ready '.length)),
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners('exit');
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'selo-bench-pipeline-'));
process.env['SOFTHSM2_CONF'] = writeSoftHsmConf(join(scratch, 'softhsm'));
const token = { tokenLabel: 'bench', pin: 'bench-pin' };
initToken({ modulePath: MODULE, ...token, soPin: 'bench-so-pin' });
const pkiDir = join(scratch, 'pki');
await initDevPki({ dir: pkiDir, modulePath: MODULE, ...token, pspIspb: ISPB });

// Baseline: what the HSM alone signs per second through a pool of the workers' size.
const pool = new HsmPool({ modulePath: MODULE, ...token, sessions: 4, logger: quiet, metricsIntervalMs: 0 });
await pool.start();
const data = Buffer.from('x'.repeat(2048));
let signed = 0;
const baselineStart = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (performance.now() - baselineStart < 2_000) {
      await pool.sign(data, { label: 'selo-psp-signing' });
      signed += 1;
    }
  }),
);
const hsmSignaturesPerSecond = signed / ((performance.now() - baselineStart) / 1000);
await pool.close();

// The stand-ins and the simulator run in processes of their own, as they would on a developer's
// machine (`selo up`, `selo simulator`); the workers share this one, as under `selo worker`.
const SELO = join(import.meta.dirname, '..', 'bin', 'selo.ts');
const up = await startChild([SELO, 'up', '--no-workers', '--sqs-port', '0', '--kinesis-port', '0', '--dynamodb-port', '0', '--events-port', '0', '--pki-dir', pkiDir]);
const sim = await startChild([SELO, 'simulator', '--pki', pkiDir, '--port', '0']);
const endpoints = up.ready as { sqs: string; s3: string; events: string; kinesis: string; dynamodb: string; region: string };
const clients = createAwsClients({ region: endpoints.region, accountId: '000000000000', endpoints });
const stack = {
  clients,
  env: (): Record<string, string> => ({
    AWS_REGION: endpoints.region, SELO_ENV: 'local', SELO_SQS_ENDPOINT: endpoints.sqs, SELO_S3_ENDPOINT: endpoints.s3,
    SELO_EVENTS_ENDPOINT: endpoints.events, SELO_KINESIS_ENDPOINT: endpoints.kinesis, SELO_DYNAMODB_ENDPOINT: endpoints.dynamodb,
  }),
  close: async (): Promise<void> => {
    clients.destroy();
    await up.stop();
  },
};
const simulatorUrl = new URL((sim.ready as { icom: string }).icom).origin;
const simulator = { url: simulatorUrl, close: () => sim.stop() };
const outcomes = (await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: 'bench-outcomes' }))).QueueUrl ?? '';
const arn = (await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: outcomes, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
await stack.clients.events.send(new PutRuleCommand({ Name: 'bench', EventBusName: topology.eventBusName, EventPattern: JSON.stringify({ source: ['selo.transmit'] }) }));
await stack.clients.events.send(new PutTargetsCommand({ Rule: 'bench', EventBusName: topology.eventBusName, Targets: [{ Id: 'q', Arn: arn }] }));
const env = {
  ...stack.env(),
  SELO_ISPB: ISPB,
  SELO_HSM_MODULE: MODULE,
  SELO_HSM_TOKEN_LABEL: token.tokenLabel,
  SELO_HSM_PIN: token.pin,
  SELO_SIGNING_CERT: join(pkiDir, 'psp-signing.crt'),
  SELO_BCB_URL: simulator.url,
  SELO_BCB_CA: join(pkiDir, 'ca.crt'),
  SELO_TLS_CERT: join(pkiDir, 'psp-tls-client.crt'),
  SELO_TLS_KEY: join(pkiDir, 'psp-tls-client.key'),
  SELO_HEALTH_PORT: '0',
  SELO_SQS_WAIT_SECONDS: '1',
  SELO_LOG_LEVEL: 'silent',
};
const sign = await startSignWorker({ env });
const transmit = await startTransmitWorker({ env });

const publishedAt = new Map<string, number>();
const latencies: number[] = [];
const started = performance.now();
for (let i = 0; i < PAYMENTS; i += 10) {
  const entries = Array.from({ length: Math.min(10, PAYMENTS - i) }, () => {
    const endToEndId = generateEndToEndId(ISPB);
    publishedAt.set(endToEndId, performance.now());
    const transaction = {
      endToEndId, amount: '10.00', acceptanceDateTime: new Date().toISOString(), localInstrument: 'MANU',
      debtor: { name: 'Bench', taxId: '70000000000' }, debtorAccount: { number: '1', type: 'CACC' },
      creditorAgentIspb: '99999005', creditor: { taxId: '80000000000' }, creditorAccount: { number: '2', type: 'CACC' }, purpose: 'IPAY',
    };
    return {
      EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested',
      Detail: JSON.stringify({ version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pacs.008', transaction } }),
    };
  });
  await stack.clients.events.send(new PutEventsCommand({ Entries: entries }));
}
const counts = new Map<string, number>();
let done = 0;
const deadline = Date.now() + 600_000;
while (done < PAYMENTS && Date.now() < deadline) {
  const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: outcomes, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  const messages = got.Messages ?? [];
  for (const m of messages) {
    const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: { endToEndId: string } };
    counts.set(body['detail-type'], (counts.get(body['detail-type']) ?? 0) + 1);
    const at = publishedAt.get(body.detail.endToEndId);
    if (at !== undefined) {
      latencies.push(performance.now() - at);
      publishedAt.delete(body.detail.endToEndId);
      done += 1;
    }
  }
  if (messages.length > 0) {
    await stack.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: outcomes, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
  }
}
const seconds = (performance.now() - started) / 1000;
const bcb = transmit.bcbStats();
await transmit.close();
await sign.close();
await stack.close();
await simulator.close();
rmSync(scratch, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0);
const result = {
  payments: PAYMENTS,
  transmitted: done,
  outcomes: Object.fromEntries(counts),
  seconds: +seconds.toFixed(2),
  paymentsPerSecond: +(done / seconds).toFixed(1),
  latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99) },
  hsmSignaturesPerSecond: Math.round(hsmSignaturesPerSecond),
  pipelineToHsmRatio: +(done / seconds / hsmSignaturesPerSecond).toFixed(3),
  bcbRequests: bcb.requests,
  tlsHandshakes: bcb.handshakes,
  requestsPerHandshake: +(bcb.requests / Math.max(1, bcb.handshakes)).toFixed(1),
};
if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    [
      `pipeline: ${result.transmitted}/${PAYMENTS} payments signed (SoftHSM) and transmitted (mTLS, simulator) in ${result.seconds} s: ${result.paymentsPerSecond}/s`,
      `  publish → MessageTransmitted latency p50 ${result.latencyMs.p50} ms, p95 ${result.latencyMs.p95} ms, p99 ${result.latencyMs.p99} ms; outcomes ${JSON.stringify(result.outcomes)}`,
      `  baseline, same run: SoftHSM pool ${result.hsmSignaturesPerSecond} signatures/s; pipeline / HSM = ${result.pipelineToHsmRatio}`,
      `  BCB: ${result.bcbRequests} requests over ${result.tlsHandshakes} TLS handshakes = ${result.requestsPerHandshake} requests per handshake`,
      '',
    ].join('\n'),
  );
}
