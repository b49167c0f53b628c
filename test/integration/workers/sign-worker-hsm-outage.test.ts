import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import { workerTestEnv } from '../../support/local-aws.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let scratch: string;
let stack: LocalStack;
let worker: SignWorker;
/** Where the worker looks for the PKCS#11 module: absent until the test "brings the HSM back". */
let modulePath: string;

beforeAll(async () => {
  token = createTestToken();
  scratch = mkdtempSync(join(tmpdir(), 'selo-hsm-outage-'));
  await initDevPki({ dir: join(scratch, 'pki'), modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  modulePath = join(scratch, 'libpkcs11-outage.so');
  stack = await startLocalStack();
  worker = await startSignWorker({
    env: workerTestEnv({
      stackEnv: stack.env(),
      token: { ...token, modulePath },
      pkiDir: join(scratch, 'pki'),
      extra: { SELO_BACKOFF_BASE_SECONDS: '1', SELO_BACKOFF_MAX_SECONDS: '1', SELO_LOG_LEVEL: 'silent' },
    }),
  });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await stack?.close();
  rmSync(scratch, { recursive: true, force: true });
  token?.cleanup();
});

/** The worker's readiness as its health endpoint reports it (what ECS and operators see). */
async function readiness(): Promise<{ status: number; hsm: boolean | undefined }> {
  const response = await fetch(`http://127.0.0.1:${worker.healthPort ?? 0}/ready`);
  const body = (await response.json()) as { checks?: Record<string, { ok: boolean }> };
  return { status: response.status, hsm: body.checks?.hsm?.ok };
}

describe('sign worker with a dead HSM', () => {
  it('reports not ready, keeps the request with transient failures, and signs it once the HSM is back', async () => {
    expect(await readiness()).toEqual({ status: 503, hsm: false });
    const endToEndId = generateEndToEndId(ISPB);
    const transaction = {
      endToEndId, amount: '5.00', acceptanceDateTime: new Date().toISOString(), localInstrument: 'MANU',
      debtor: { name: 'Fulano', taxId: '70000000000' }, debtorAccount: { number: '1', type: 'CACC' },
      creditorAgentIspb: '99999005', creditor: { taxId: '80000000000' }, creditorAccount: { number: '2', type: 'CACC' }, purpose: 'IPAY',
    };
    await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [{
          EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested',
          Detail: JSON.stringify({ version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pacs.008', transaction } }),
        }],
      }),
    );
    // The request was taken (its saga exists) but cannot be signed while the HSM is gone.
    const sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
    await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 10_000 }).toBe('REQUESTED');
    const dlq = stack.provisioned?.queues.sign?.dlqUrl ?? '';
    expect((await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 0 }))).Messages ?? []).toEqual([]);

    symlinkSync(token.modulePath, modulePath);
    await expect.poll(readiness, { timeout: 20_000 }).toEqual({ status: 200, hsm: true });
    await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 20_000 }).toBe('SIGNED');
    const transmit = stack.provisioned?.queues.transmit?.url ?? '';
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: transmit, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
    expect((got.Messages ?? []).some((m) => (m.Body ?? '').includes(endToEndId))).toBe(true);
  });
});
