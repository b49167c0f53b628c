// Signed-and-transmitted payments per second through the real path on this machine: the local
// stack, the sign worker with SoftHSM, the transmit worker over mTLS, the BCB simulator, all in
// this process. Baseline measured in the same run: SoftHSM signatures/s through the same pool
// size. Also prints HTTP requests per TLS handshake. Then the same again with the transmit worker
// posting multipart/mixed (SELO_ICOM_MULTIPART_MAX = --multipart), with its ratios to the first
// run. A script, not a test: it never fails on time.
//   node scripts/bench-pipeline.ts [--payments 500] [--multipart 10] [--multipart-first] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
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

const { values } = parseArgs({ options: { payments: { type: 'string', default: '500' }, multipart: { type: 'string', default: '10' }, 'multipart-first': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const PAYMENTS = Number(values.payments);
/** SELO_ICOM_MULTIPART_MAX of the second run (1: no second run). */
const MULTIPART = Number(values.multipart);
if (!Number.isSafeInteger(MULTIPART) || MULTIPART < 1 || MULTIPART > 10) throw new RangeError(`--multipart must be 1 to 10 (the ICOM's messages per POST), got ${String(values.multipart)}`);
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
const transmitQueueName = topology.queues.find((q) => q.key === 'transmit')?.name ?? '';
const transmitQueueUrl = (await stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: transmitQueueName }))).QueueUrl ?? '';

/** Messages waiting in the transmit queue. */
async function transmitBacklog(): Promise<number> {
  const attributes = await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: transmitQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(attributes.Attributes?.ApproximateNumberOfMessages ?? '0');
}

/**
 * One run of the sign and transmit workers over the same stand-ins and simulator. `stage`:
 * the transmit worker starts only once every payment is signed and waiting in its queue, and the
 * time is the transmit stage's alone (its queue full, as after an outage or under a burst).
 */
async function runVariant(extraEnv: Record<string, string>, options: { payments?: number; stage?: boolean } = {}): Promise<{
  transmitted: number; outcomes: Record<string, number>; seconds: number; paymentsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number }; bcbRequests: number; tlsHandshakes: number; requestsPerHandshake: number;
}> {
  const payments = options.payments ?? PAYMENTS;
  const sign = await startSignWorker({ env: { ...env, ...extraEnv } });
  let transmit = options.stage === true ? undefined : await startTransmitWorker({ env: { ...env, ...extraEnv } });
  const publishedAt = new Map<string, number>();
  const latencies: number[] = [];
  let started = performance.now();
  for (let i = 0; i < payments; i += 10) {
    const entries = Array.from({ length: Math.min(10, payments - i) }, () => {
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
  if (transmit === undefined) {
    // Until every payment waits in the transmit queue, or its backlog stops growing for 10 s.
    let backlog = 0;
    let grewAt = Date.now();
    while (backlog < payments && Date.now() - grewAt < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const now = await transmitBacklog();
      if (now > backlog) grewAt = Date.now();
      backlog = now;
    }
    process.stderr.write(`bench: ${backlog} of ${payments} signed payments waiting for the transmit worker\n`);
    started = performance.now();
    for (const id of publishedAt.keys()) publishedAt.set(id, started);
    transmit = await startTransmitWorker({ env: { ...env, ...extraEnv } });
  }
  const counts = new Map<string, number>();
  let done = 0;
  const deadline = Date.now() + 600_000;
  while (done < payments && Date.now() < deadline) {
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: outcomes, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = got.Messages ?? [];
    for (const m of messages) {
      const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: { endToEndId: string } };
      const at = publishedAt.get(body.detail.endToEndId);
      if (at !== undefined) {
        counts.set(body['detail-type'], (counts.get(body['detail-type']) ?? 0) + 1);
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
  process.stderr.write(`bench: ${JSON.stringify(extraEnv)}${options.stage === true ? ' transmit stage' : ''}: ${done}/${payments} in ${seconds.toFixed(1)} s\n`);
  const bcb = transmit.bcbStats();
  await transmit.close();
  await sign.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0);
  return {
    transmitted: done,
    outcomes: Object.fromEntries(counts),
    seconds: +seconds.toFixed(2),
    paymentsPerSecond: +(done / seconds).toFixed(1),
    latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99) },
    bcbRequests: bcb.requests,
    tlsHandshakes: bcb.handshakes,
    requestsPerHandshake: +(bcb.requests / Math.max(1, bcb.handshakes)).toFixed(1),
  };
}

// Both variants in the same run, after a warm-up run that is not counted (the first run of a
// process is slower), the one-POST-per-message baseline first (--multipart-first: the other way
// round). Each is measured end to end, then for the transmit stage alone.
const multipartEnv = { SELO_ICOM_MULTIPART_MAX: String(MULTIPART) };
await runVariant({}, { payments: Math.min(PAYMENTS, 100) });
const early = values['multipart-first'] && MULTIPART > 1 ? await runVariant(multipartEnv) : undefined;
const single = await runVariant({});
const multipart = MULTIPART > 1 ? (early ?? (await runVariant(multipartEnv))) : undefined;
const earlyStage = values['multipart-first'] && MULTIPART > 1 ? await runVariant(multipartEnv, { stage: true }) : undefined;
const singleStage = await runVariant({}, { stage: true });
const multipartStage = MULTIPART > 1 ? (earlyStage ?? (await runVariant(multipartEnv, { stage: true }))) : undefined;
await stack.close();
await simulator.close();
rmSync(scratch, { recursive: true, force: true });

const result = {
  payments: PAYMENTS,
  ...single,
  hsmSignaturesPerSecond: Math.round(hsmSignaturesPerSecond),
  pipelineToHsmRatio: +(single.paymentsPerSecond / hsmSignaturesPerSecond).toFixed(3),
  ...(multipart === undefined
    ? {}
    : {
        multipart: {
          maxMessagesPerPost: MULTIPART,
          ...multipart,
          // Against the one-POST-per-message run above, same machine, same run.
          throughputRatio: +(multipart.paymentsPerSecond / single.paymentsPerSecond).toFixed(2),
          requestRatio: +(multipart.bcbRequests / Math.max(1, single.bcbRequests)).toFixed(3),
          p50LatencyRatio: +(multipart.latencyMs.p50 / Math.max(1, single.latencyMs.p50)).toFixed(2),
        },
      }),
  transmitStage: {
    single: singleStage,
    ...(multipartStage === undefined ? {} : { multipart: multipartStage, throughputRatio: +(multipartStage.paymentsPerSecond / singleStage.paymentsPerSecond).toFixed(2) }),
  },
};
if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    [
      `pipeline: ${result.transmitted}/${PAYMENTS} payments signed (SoftHSM) and transmitted (mTLS, simulator) in ${result.seconds} s: ${result.paymentsPerSecond}/s`,
      `  publish → MessageTransmitted latency p50 ${result.latencyMs.p50} ms, p95 ${result.latencyMs.p95} ms, p99 ${result.latencyMs.p99} ms; outcomes ${JSON.stringify(result.outcomes)}`,
      `  baseline, same run: SoftHSM pool ${result.hsmSignaturesPerSecond} signatures/s; pipeline / HSM = ${result.pipelineToHsmRatio}`,
      `  BCB: ${result.bcbRequests} requests over ${result.tlsHandshakes} TLS handshakes = ${result.requestsPerHandshake} requests per handshake`,
      ...(result.multipart === undefined
        ? []
        : [
            `multipart (SELO_ICOM_MULTIPART_MAX=${result.multipart.maxMessagesPerPost}): ${result.multipart.transmitted}/${PAYMENTS} in ${result.multipart.seconds} s: ${result.multipart.paymentsPerSecond}/s = ${result.multipart.throughputRatio}× the one-POST-per-message run`,
            `  latency p50 ${result.multipart.latencyMs.p50} ms, p95 ${result.multipart.latencyMs.p95} ms, p99 ${result.multipart.latencyMs.p99} ms (p50 ${result.multipart.p50LatencyRatio}×); outcomes ${JSON.stringify(result.multipart.outcomes)}`,
            `  BCB: ${result.multipart.bcbRequests} requests (${result.multipart.requestRatio}× the single run's ${result.bcbRequests}) over ${result.multipart.tlsHandshakes} TLS handshakes`,
          ]),
      `transmit stage alone (its queue full of ${PAYMENTS} signed payments): one POST per message ${result.transmitStage.single.paymentsPerSecond}/s (${result.transmitStage.single.bcbRequests} requests)` +
        (result.transmitStage.multipart === undefined
          ? ''
          : `; multipart ${result.transmitStage.multipart.paymentsPerSecond}/s (${result.transmitStage.multipart.bcbRequests} requests) = ${result.transmitStage.throughputRatio}×`),
      '',
    ].join('\n'),
  );
}
