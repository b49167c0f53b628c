import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { encodeEventBody, newTraceparent, paymentSagaId, dictSagaId } from '../../../shared/events/index.ts';
import { creditTransfer, paymentRequestedEntry as requestedEntry, readAuditRecords, receiveMatching as receiveFrom, workerTestEnv } from '../../support/local-aws.ts';
import type { ReceivedMessage } from '../../support/local-aws.ts';
import { generateEndToEndId, parsePacs008 } from '../../../shared/iso20022/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { TrustStore, verifyDict, verifySpi } from '../../../shared/xmldsig/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let worker: SignWorker;
let sagas: SagaStore;
const trustStore = new TrustStore();

function queue(key: string): { url: string; dlqUrl: string } {
  const found = stack.provisioned?.queues[key];
  if (found === undefined) throw new Error(`queue ${key} not provisioned`);
  return found;
}

function newEndToEndId(): string {
  return generateEndToEndId(ISPB);
}

function transaction(endToEndId: string, amount = '150.00'): Record<string, unknown> {
  return creditTransfer(endToEndId, { amount, creditorAgentIspb: '20000000', creditorAccount: { number: '600000', branch: '4000', type: 'SVGS' } });
}

function paymentRequestedEntry(endToEndId: string, data: unknown): ReturnType<typeof requestedEntry> {
  return requestedEntry(topology.eventBusName, endToEndId, data);
}

function receiveMatching(url: string, predicate: (body: string) => boolean, timeoutMs = 15_000): Promise<ReceivedMessage> {
  return receiveFrom(stack.clients.sqs, url, predicate, timeoutMs);
}

function auditRecords(): Promise<AuditRecord[]> {
  return readAuditRecords(stack.clients.kinesis, topology.auditStream.name);
}

function inlinePayload(body: Record<string, unknown>): string {
  const payload = (body.detail as { data: { payload: { inline?: string } } }).data.payload;
  if (payload.inline === undefined) throw new Error('payload is not inline');
  return payload.inline;
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-sign-pki-'));
  await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  trustStore.add(readFileSync(join(pkiDir, 'psp-signing.crt')), { ispb: ISPB });
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  worker = await startSignWorker({
    env: workerTestEnv({ stackEnv: stack.env(), token, pkiDir }),
  });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await stack?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('sign worker', () => {
  it('turns a PaymentRequested on the bus into a MessageSigned whose pacs.008 verifies, with the saga SIGNED and audited', async () => {
    const endToEndId = newEndToEndId();
    const put = await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(endToEndId, { message: 'pacs.008', transaction: transaction(endToEndId) })] }));
    expect(put.FailedEntryCount).toBe(0);

    const signed = await receiveMatching(queue('transmit').url, (body) => body.includes(endToEndId));
    expect(signed.body).toMatchObject({ 'detail-type': 'MessageSigned', source: 'selo.sign', detail: { endToEndId, sagaId: paymentSagaId(endToEndId), data: { channel: 'spi', messageType: 'pacs.008' } } });
    const verified = verifySpi(inlinePayload(signed.body), { trustStore });
    expect(verified.fromIspb).toBe(ISPB);
    const pacs008 = parsePacs008(verified);
    expect(pacs008.transactions[0]).toMatchObject({ endToEndId, amount: '150.00', debtorAgentIspb: ISPB });
    expect((signed.body.detail as { bizMsgIdr: string }).bizMsgIdr).toBe(pacs008.appHdr.bizMsgIdr);

    const saga = await sagas.get(paymentSagaId(endToEndId));
    expect(saga?.state).toBe('SIGNED');
    expect(saga?.bizMsgIdr).toBe(pacs008.appHdr.bizMsgIdr);
    expect(saga?.compensations.map((c) => c.action)).toEqual(['PaymentReversalRequested']);
    await expect.poll(async () => (await auditRecords()).some((r) => r.end_to_end_id === endToEndId && r.transition_to === 'SIGNED'), { timeout: 10_000 }).toBe(true);
  });

  it('publishes the same signed bytes when the request is delivered again, and moves the saga once', async () => {
    const endToEndId = newEndToEndId();
    const entry = paymentRequestedEntry(endToEndId, { message: 'pacs.008', transaction: transaction(endToEndId) });
    const body = encodeEventBody({ detailType: entry.DetailType, source: entry.Source, detail: JSON.parse(entry.Detail) as never, id: randomUUID(), time: '2026-11-28T17:00:05Z' });
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: body }));
    const first = await receiveMatching(queue('transmit').url, (b) => b.includes(endToEndId));
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: body }));
    const second = await receiveMatching(queue('transmit').url, (b) => b.includes(endToEndId));
    expect(inlinePayload(second.body)).toBe(inlinePayload(first.body));
    const saga = await sagas.get(paymentSagaId(endToEndId));
    expect(saga?.history.filter((t) => t.to === 'SIGNED')).toHaveLength(1);
  });

  it('sends an invalid request to the DLQ with its reason, publishes SigningFailed, and keeps going', async () => {
    const bad = newEndToEndId();
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(bad, { message: 'pacs.008', transaction: transaction(bad, '10.5') })] }));
    const dead = await receiveMatching(queue('sign').dlqUrl, (b) => b.includes(bad));
    expect(dead.attributes['selo-error-code']).toBe('SIGN_REQUEST_INVALID');
    expect(dead.attributes['selo-error-reason']).toContain('data.transaction.amount');
    const failed = await receiveMatching(queue('compensate').url, (b) => b.includes(bad));
    expect(failed.body).toMatchObject({ 'detail-type': 'SigningFailed', detail: { endToEndId: bad } });

    const good = newEndToEndId();
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(good, { message: 'pacs.008', transaction: transaction(good) })] }));
    await receiveMatching(queue('transmit').url, (b) => b.includes(good));
  });

  it('sends malformed JSON to the DLQ with its reason', async () => {
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue('sign').url, MessageBody: '{"detail-type": "PaymentRequested", "detail": ' }));
    const dead = await receiveMatching(queue('sign').dlqUrl, (b) => b.startsWith('{"detail-type": "PaymentRequested", "detail": '));
    expect(dead.attributes['selo-error-code']).toBe('MALFORMED_EVENT');
  });

  it('signs a DICT CreateEntryRequest in the DICT profile', async () => {
    const requestId = randomUUID();
    const body = {
      Entry: {
        Key: '+5561988880000',
        KeyType: 'PHONE',
        Account: { Participant: ISPB, Branch: '0001', AccountNumber: '0007654321', AccountType: 'CACC', OpeningDate: '2010-01-10T03:00:00Z' },
        Owner: { Type: 'NATURAL_PERSON', TaxIdNumber: '11122233300', Name: 'João Silva' },
      },
      Reason: 'USER_REQUESTED',
      RequestId: requestId,
    };
    await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: topology.eventBusName,
            Source: 'core.banking',
            DetailType: 'DictRequested',
            Detail: JSON.stringify({ version: 1, sagaId: dictSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { operation: 'createEntry', body } }),
          },
        ],
      }),
    );
    const signed = await receiveMatching(queue('transmit').url, (b) => b.includes(requestId));
    expect(signed.body).toMatchObject({ detail: { requestId, data: { channel: 'dict', messageType: 'createEntry' } } });
    const dictTrust = new TrustStore();
    dictTrust.add(readFileSync(join(pkiDir, 'psp-signing.crt')));
    expect(verifyDict(inlinePayload(signed.body), { trustStore: dictTrust }).root.localName).toBe('CreateEntryRequest');
    expect((await sagas.get(dictSagaId(requestId)))?.state).toBe('SIGNED');
  });
});
