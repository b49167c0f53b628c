import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { startWorkerSet } from '../../../bin/worker-set.ts';
import type { WorkerSet } from '../../../bin/worker-set.ts';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { emfProblems } from '../../support/emf-spec.ts';
import { creditTransfer, paymentRequestedEntry, receiveMatching, workerTestEnv } from '../../support/local-aws.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let workers: WorkerSet | undefined;
const lines: string[] = [];

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-metrics-pki-'));
  await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  stack = await startLocalStack();
  workers = await startWorkerSet({
    names: ['sign'],
    env: { ...workerTestEnv({ stackEnv: stack.env(), token, pkiDir }), SELO_METRICS: 'emf', SELO_METRICS_NAMESPACE: 'selo/it', SELO_METRICS_FLUSH_SECONDS: '3600' },
    logger: createLogger({ name: 'selo.test', level: 'silent' }),
    writeMetrics: (line) => lines.push(line),
  });
}, 120_000);

afterAll(async () => {
  await workers?.close();
  await stack?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('worker metrics', () => {
  it('a sign worker run writes embedded metric format lines for a payment: its signing stage and the HSM pool, valid by the specification', async () => {
    const endToEndId = generateEndToEndId(ISPB);
    const transaction = creditTransfer(endToEndId, { amount: '150.00', creditorAgentIspb: '20000000', creditorAccount: { number: '600000', branch: '4000', type: 'SVGS' } });
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(topology.eventBusName, endToEndId, { message: 'pacs.008', transaction })] }));
    const transmitQueue = stack.provisioned?.queues.transmit?.url ?? '';
    await receiveMatching(stack.clients.sqs, transmitQueue, (body) => body.includes(endToEndId), 15_000);
    // The flush interval is an hour: what is written comes from the final flush at close.
    expect(lines).toEqual([]);
    await workers?.close();
    workers = undefined;
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(emfProblems(line), line).toEqual([]);
    const documents = lines.map((line) => JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string }[] } });
    for (const d of documents) expect(d._aws.CloudWatchMetrics[0]?.Namespace).toBe('selo/it');
    const stage = documents.find((d) => d.Stage === 'request_to_signed');
    expect(stage?.Service).toBe('sign');
    expect(stage?.StageLatency).toMatchObject({ Counts: [1] });
    const wait = documents.find((d) => d.HsmPoolWait !== undefined)?.HsmPoolWait as { Counts: number[] } | undefined;
    expect(wait?.Counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    expect(documents.some((d) => d.HsmSessionsInUse !== undefined)).toBe(true);
    // No payment id is ever a dimension or a member of a metrics line.
    expect(lines.join('\n')).not.toContain(endToEndId);
  });
});
