import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import type { AuditRecord } from '../../../shared/audit/index.ts';
import { buildDictProblem } from '../../../shared/dict/index.ts';
import { dictSagaId, echoSagaId, encodeEventBody, inboundSagaId, newTraceparent, paymentSagaId } from '../../../shared/events/index.ts';
import type { EventDetail } from '../../../shared/events/index.ts';
import { buildPacs002, generateEndToEndId, generateMessageId, generateReturnId, paymentMessageId } from '../../../shared/iso20022/index.ts';
import { BizMsgIndex, SagaStore } from '../../../shared/saga/index.ts';
import type { SagaState } from '../../../shared/saga/index.ts';
import { pemSigningKey, signDict, signSpi } from '../../../shared/xmldsig/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { startVerifyWorker } from '../../../workers/verify/index.ts';
import type { VerifyWorker } from '../../../workers/verify/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { creditTransfer, paymentRequestedEntry, readAuditRecords, workerTestEnv } from '../../support/local-aws.ts';
import {
  bcbMessageReceived, corruptSignatureValue, inboundTransfer, signedAdmi002, signedPacs002, signedPacs004, signedPacs008, signedPibr001, signedPibr002, statusOf,
} from '../../unit/workers/verify-messages.ts';
import type { BcbSender } from '../../unit/workers/verify-messages.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let sign: SignWorker;
let verify: VerifyWorker;
let sagas: SagaStore;
let bcb: BcbSender;
/** Signs with the PSP's TLS client key: a real certificate of the dev CA, but not the BCB's. */
let impostor: BcbSender;
let verifyUrl: string;

/** What a downstream subscriber (its own rule on selo.verify and its own queue) has seen. */
interface Fact {
  detailType: string;
  detail: EventDetail<Record<string, unknown>>;
}
const seen: Fact[] = [];
let collecting = true;
let collector: Promise<void> | undefined;

async function collect(url: string): Promise<void> {
  while (collecting) {
    const got = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = got.Messages ?? [];
    for (const m of messages) {
      const body = JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: Fact['detail'] };
      seen.push({ detailType: body['detail-type'], detail: body.detail });
    }
    if (messages.length > 0) {
      await stack.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
    }
  }
}

function factsFor(sagaId: string, detailType?: string): Fact[] {
  return seen.filter((f) => f.detail.sagaId === sagaId && (detailType === undefined || f.detailType === detailType));
}

async function factOf(sagaId: string, detailType: string): Promise<Fact> {
  await expect.poll(() => factsFor(sagaId, detailType).length, { timeout: 30_000 }).toBeGreaterThan(0);
  return factsFor(sagaId, detailType)[0] as Fact;
}

async function deliver(resourceId: string, xml: string, copy?: string): Promise<void> {
  await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: verifyUrl, MessageBody: encodeEventBody(bcbMessageReceived(resourceId, xml, copy)) }));
}

/**
 * Before counting facts: the worker has dealt with every delivery (its queue is empty: it deletes
 * only after publishing), and a later payment's fact has arrived, so earlier facts would have too.
 */
async function allHandled(copy?: string): Promise<void> {
  await verifyQueueDrained();
  const marker = await transmittedPayment();
  await deliver(newResourceId(), await signedPacs002(bcb, statusOf(marker.endToEndId, 'ACSC')), copy);
  await factOf(marker.sagaId, 'PaymentSettled');
}

/** The EchoReceived facts published for the pibr.001 read as `resourceId`. */
function echoesOf(resourceId: string): unknown[] {
  return seen.filter((f) => f.detailType === 'EchoReceived' && f.detail.data.resourceId === resourceId);
}

/** Waits until the verify queue is empty: the worker deletes a message only after publishing its facts. */
async function verifyQueueDrained(): Promise<void> {
  await expect
    .poll(async () => {
      const { Attributes } = await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: verifyUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
    }, { timeout: 30_000 })
    .toBe(0);
}

function newResourceId(): string {
  return randomUUID().replace(/-/g, '');
}

/** The verify worker's audit record of the message with this PI-ResourceId, once written. */
async function verifiedRecord(resourceId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await expect
    .poll(async () => {
      const records = await readAuditRecords(stack.clients.kinesis, topology.auditStream.name);
      found = records.find((r) => r.worker === 'verify' && r.kind === 'response' && (r.response_header ?? '').includes(resourceId));
      return found !== undefined;
    }, { timeout: 30_000 })
    .toBe(true);
  return found as AuditRecord;
}

/** Moves a new saga along `states` as the sign and transmit workers would. */
async function sagaThrough(sagaId: string, ids: { endToEndId?: string; requestId?: string; bizMsgIdr?: string }, states: readonly SagaState[]): Promise<void> {
  await sagas.create({ sagaId, ids, reason: 'test', attempt: 1 });
  for (const to of states) await sagas.transition({ sagaId, to, reason: 'test', attempt: 1, idempotencyKey: `test-${to}`, ...(to === 'SIGNED' && ids.bizMsgIdr !== undefined ? { ids: { bizMsgIdr: ids.bizMsgIdr } } : {}) });
}

async function transmittedPayment(): Promise<{ endToEndId: string; sagaId: string; bizMsgIdr: string }> {
  const endToEndId = generateEndToEndId(ISPB);
  const bizMsgIdr = generateMessageId(ISPB);
  await sagaThrough(paymentSagaId(endToEndId), { endToEndId, bizMsgIdr }, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
  return { endToEndId, sagaId: paymentSagaId(endToEndId), bizMsgIdr };
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-verify-pki-'));
  await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  verifyUrl = stack.provisioned?.queues.verify?.url ?? '';
  bcb = { key: pemSigningKey(readFileSync(join(pkiDir, 'bcb-signing.key'), 'utf8'), readFileSync(join(pkiDir, 'bcb-signing.crt'), 'utf8')), toIspb: ISPB };
  impostor = { key: pemSigningKey(readFileSync(join(pkiDir, 'psp-tls-client.key'), 'utf8'), readFileSync(join(pkiDir, 'psp-tls-client.crt'), 'utf8')), toIspb: ISPB };

  const queue = await stack.clients.sqs.send(new CreateQueueCommand({ QueueName: 'downstream-verified-facts' }));
  const downstreamUrl = queue.QueueUrl ?? '';
  const arn = (await stack.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: downstreamUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  await stack.clients.events.send(new PutRuleCommand({ Name: 'downstream-verified', EventBusName: topology.eventBusName, EventPattern: JSON.stringify({ source: ['selo.verify'] }) }));
  await stack.clients.events.send(new PutTargetsCommand({ Rule: 'downstream-verified', EventBusName: topology.eventBusName, Targets: [{ Id: 'q', Arn: arn }] }));
  collector = collect(downstreamUrl);

  const env = workerTestEnv({
    stackEnv: stack.env(), token, pkiDir,
    extra: { SELO_BCB_SIGNING_CERT: join(pkiDir, 'bcb-signing.crt'), SELO_BACKOFF_BASE_SECONDS: '0', SELO_BACKOFF_MAX_SECONDS: '1' },
  });
  sign = await startSignWorker({ env });
  verify = await startVerifyWorker({ env });
}, 120_000);

afterAll(async () => {
  collecting = false;
  await collector;
  await verify?.close();
  await sign?.close();
  await stack?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('verify worker on the local stack, with real BCB signatures', () => {
  it('publishes PaymentSettled for a BCB-signed ACSC, settles the saga and audits the message and the transition', async () => {
    const { endToEndId, sagaId, bizMsgIdr } = await transmittedPayment();
    const resourceId = newResourceId();
    await deliver(resourceId, await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    const settled = await factOf(sagaId, 'PaymentSettled');
    expect(settled.detail).toMatchObject({ endToEndId, bizMsgIdr, data: { status: 'ACSC', endToEndId, originalBizMsgIdr: bizMsgIdr, resourceId } });
    expect((await sagas.get(sagaId))?.state).toBe('SETTLED');
    const record = await verifiedRecord(resourceId);
    expect(record).toMatchObject({ saga_id: sagaId, response_signature_valid: true });
    await expect
      .poll(async () => (await readAuditRecords(stack.clients.kinesis, topology.auditStream.name)).some((r) => r.saga_id === sagaId && r.worker === 'verify' && r.transition_to === 'SETTLED'), { timeout: 20_000 })
      .toBe(true);
  });

  it('publishes PaymentRejected with the reason code for a RJCT and rejects the saga', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(endToEndId, 'RJCT', 'AB03')));
    const rejected = await factOf(sagaId, 'PaymentRejected');
    expect(rejected.detail.data).toMatchObject({ status: 'RJCT', reason: { code: 'AB03' } });
    expect((await sagas.get(sagaId))?.state).toBe('REJECTED');
  });

  it('settles once: a redelivery publishes the same fact again, a duplicate from another resource publishes nothing', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    const xml = await signedPacs002(bcb, statusOf(endToEndId, 'ACSC'));
    const first = newResourceId();
    const other = newResourceId();
    await deliver(first, xml);
    await factOf(sagaId, 'PaymentSettled');
    await deliver(first, xml);
    await deliver(other, await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    expect(JSON.parse((await verifiedRecord(other)).response_header ?? '{}')).toMatchObject({ 'selo-disposition': 'duplicate' });
    await expect.poll(() => factsFor(sagaId, 'PaymentSettled').length, { timeout: 20_000 }).toBe(2);
    await allHandled();
    const settled = factsFor(sagaId, 'PaymentSettled');
    expect(settled.map((f) => f.detail.data.resourceId)).toEqual([first, first]);
    expect((await sagas.get(sagaId))?.history.filter((t) => t.to === 'SETTLED')).toHaveLength(1);
  });

  it('acts once on a message the receive worker forwarded twice (a stream duplicate read again: same PI-ResourceId, another copy id), through the saga or, for an echo, a marker', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    const xml = await signedPacs002(bcb, statusOf(endToEndId, 'ACSC'));
    const resource = newResourceId();
    const echo = await signedPibr001(bcb, `ping-${resource.slice(0, 8)}`);
    const echoResource = newResourceId();
    await deliver(resource, xml, 'copy-one');
    await deliver(echoResource, echo, 'copy-one');
    await factOf(sagaId, 'PaymentSettled');
    await expect.poll(() => echoesOf(echoResource).length, { timeout: 30_000 }).toBe(1);
    await deliver(resource, xml, 'copy-two');
    await deliver(echoResource, echo, 'copy-two');
    // The same copy again (a redelivery or a dead-letter replay) publishes the same fact again.
    await deliver(resource, xml, 'copy-one');
    await allHandled('copy-one');
    expect(factsFor(sagaId, 'PaymentSettled')).toHaveLength(2);
    expect(echoesOf(echoResource)).toHaveLength(1);
    expect((await sagas.get(sagaId))?.history.filter((t) => t.to === 'SETTLED').map((t) => t.reason)).toEqual([expect.stringMatching(new RegExp(`\\[source ${resource}/copy-one\\]$`)) as unknown]);
  });

  it('turns a RJCT after SETTLED into OutcomeConflict and an OUTCOME_CONFLICT saga', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    await factOf(sagaId, 'PaymentSettled');
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(endToEndId, 'RJCT', 'AB03')));
    const conflict = await factOf(sagaId, 'OutcomeConflict');
    expect(conflict.detail.data).toMatchObject({ recordedState: 'SETTLED', receivedOutcome: 'REJECTED' });
    expect((await sagas.get(sagaId))?.state).toBe('OUTCOME_CONFLICT');
    expect(factsFor(sagaId, 'PaymentRejected')).toHaveLength(0);
  });

  it('quarantines a tampered message with its exact bytes and reason, publishes SignatureInvalid, never PaymentSettled, and leaves the saga alone', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    const resourceId = newResourceId();
    const tampered = corruptSignatureValue(await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    await deliver(resourceId, tampered);
    const invalid = await factOf(`INBOX#${resourceId}`, 'SignatureInvalid');
    const data = invalid.detail.data as { code: string; path: string; quarantine: { bucket: string; key: string } };
    expect(data).toMatchObject({ path: 'inbound', channel: 'spi', resourceId, code: 'XMLDSIG_SIGNATURE_MISMATCH' });
    expect(data.quarantine.bucket).toBe(topology.payloadBucket);
    expect(data.quarantine.key).toMatch(new RegExp(`^quarantine/\\d{4}/\\d{2}/\\d{2}/${resourceId}\\.xml$`));
    const object = await stack.clients.s3.send(new GetObjectCommand({ Bucket: data.quarantine.bucket, Key: data.quarantine.key }));
    expect(await object.Body?.transformToString('utf8')).toBe(tampered);
    expect(object.Metadata).toMatchObject({ 'selo-reason-code': 'XMLDSIG_SIGNATURE_MISMATCH' });
    expect((await verifiedRecord(resourceId)).response_signature_valid).toBe(false);
    expect(factsFor(sagaId)).toHaveLength(0);
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
  });

  it('quarantines a BCB-signed pacs.002 that breaks its XSD with the reason in the object metadata, acts on nothing, and settles the next message', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    const resourceId = newResourceId();
    const creDt = new Date().toISOString();
    const bizMsgIdr = generateMessageId('00038166');
    // Signed by the BCB key, but AM05 is not in ExternalStatusReason1Code (pacs.002.spi.1.17.xsd).
    const xml = await signSpi(buildPacs002({ appHdr: { fromIspb: '00038166', toIspb: ISPB, bizMsgIdr, creDt }, msgId: bizMsgIdr, creDtTm: creDt, statuses: [statusOf(endToEndId, 'RJCT', 'AM05')] }), bcb.key);
    await deliver(resourceId, xml);
    const invalid = await factOf(`INBOX#${resourceId}`, 'SignatureInvalid');
    const data = invalid.detail.data as { code: string; reason: string; quarantine: { bucket: string; key: string } };
    expect(data).toMatchObject({ code: 'ISO20022_SCHEMA_INVALID', resourceId });
    expect(data.quarantine.key).toMatch(new RegExp(`^quarantine/\\d{4}/\\d{2}/\\d{2}/${resourceId}\\.xml$`));
    const object = await stack.clients.s3.send(new GetObjectCommand({ Bucket: data.quarantine.bucket, Key: data.quarantine.key }));
    expect(await object.Body?.transformToString('utf8')).toBe(xml);
    expect(object.Metadata).toMatchObject({ 'selo-reason-code': 'ISO20022_SCHEMA_INVALID', 'selo-resource-id': resourceId });
    expect(object.Metadata?.['selo-reason']).toContain('/Envelope/Document/FIToFIPmtStsRpt/TxInfAndSts/StsRsnInf/Rsn/Cd');
    expect((await verifiedRecord(resourceId)).response_signature_valid).toBe(true);
    expect(factsFor(sagaId)).toHaveLength(0);
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
    // The worker goes on: the same payment's valid ACSC settles it.
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    await factOf(sagaId, 'PaymentSettled');
  });

  it('refuses a message signed by someone other than the BCB, or addressed to another participant, the same way', async () => {
    const { endToEndId, sagaId } = await transmittedPayment();
    const notBcb = newResourceId();
    const notUs = newResourceId();
    await deliver(notBcb, await signedPacs002(impostor, statusOf(endToEndId, 'ACSC')));
    await deliver(notUs, await signedPacs002({ ...bcb, toIspb: '99999005' }, statusOf(endToEndId, 'ACSC')));
    expect((await factOf(`INBOX#${notBcb}`, 'SignatureInvalid')).detail.data).toMatchObject({ code: 'XMLDSIG_SIGNER_UNKNOWN' });
    expect((await factOf(`INBOX#${notUs}`, 'SignatureInvalid')).detail.data).toMatchObject({ code: 'SPI_RECIPIENT_MISMATCH' });
    expect(factsFor(sagaId)).toHaveLength(0);
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
  });

  it('quarantines XXE and malformed XML and keeps running', async () => {
    const xxe = newResourceId();
    const broken = newResourceId();
    await deliver(xxe, '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Envelope>&x;</Envelope>');
    await deliver(broken, '<Envelope><AppHdr><Fr>');
    expect((await factOf(`INBOX#${xxe}`, 'SignatureInvalid')).detail.data).toMatchObject({ code: 'XML_DTD_FORBIDDEN' });
    expect((await factOf(`INBOX#${broken}`, 'SignatureInvalid')).detail.data).toMatchObject({ code: 'XML_MALFORMED' });
    const { endToEndId, sagaId } = await transmittedPayment();
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(endToEndId, 'ACSC')));
    await factOf(sagaId, 'PaymentSettled');
  });

  it('correlates an admi.002 to the payment through the BizMsgIdr the sign worker derived from its EndToEndId, with no pointer item written', async () => {
    const endToEndId = generateEndToEndId(ISPB);
    const sagaId = paymentSagaId(endToEndId);
    const transaction = creditTransfer(endToEndId, { acceptanceDateTime: new Date().toISOString() });
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(topology.eventBusName, endToEndId, { message: 'pacs.008', transaction })] }));
    await expect.poll(async () => (await sagas.get(sagaId))?.state, { timeout: 30_000 }).toBe('SIGNED');
    const bizMsgIdr = (await sagas.get(sagaId))?.bizMsgIdr ?? '';
    expect(bizMsgIdr).toBe(paymentMessageId(endToEndId));
    expect(await new BizMsgIndex({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name }).sagaOfMessage(bizMsgIdr)).toBeUndefined();
    // As the transmit worker would, without a BCB: the message was POSTed and taken.
    await sagas.transition({ sagaId, to: 'TRANSMITTING', reason: 'test', attempt: 1, idempotencyKey: 'transmitting' });
    await sagas.transition({ sagaId, to: 'TRANSMITTED', reason: 'test', attempt: 1, idempotencyKey: 'transmitted' });
    await deliver(newResourceId(), await signedAdmi002(bcb, bizMsgIdr, 'SCHEMA_INVALID', 'elemento inválido'));
    const rejected = await factOf(sagaId, 'MessageRejected');
    expect(rejected.detail).toMatchObject({ endToEndId, bizMsgIdr, data: { rejectedBizMsgIdr: bizMsgIdr, reason: { code: 'SCHEMA_INVALID', description: 'elemento inválido' } } });
    expect((await sagas.get(sagaId))?.state).toBe('REJECTED');
  });

  it('answers an echo the sign worker signed: EchoAnswered and the echo saga COMPLETED', async () => {
    const requestId = randomUUID();
    const sagaId = echoSagaId(requestId);
    const data = `ping-${Date.now()}`;
    await stack.clients.events.send(
      new PutEventsCommand({
        Entries: [{
          EventBusName: topology.eventBusName, Source: 'core.banking', DetailType: 'PaymentRequested',
          Detail: JSON.stringify({ version: 1, sagaId, requestId, attempt: 1, traceparent: newTraceparent(), data: { message: 'pibr.001', echo: { data, requestedAt: new Date().toISOString() } } }),
        }],
      }),
    );
    await expect.poll(async () => (await sagas.get(sagaId))?.state, { timeout: 30_000 }).toBe('SIGNED');
    await sagas.transition({ sagaId, to: 'TRANSMITTING', reason: 'test', attempt: 1, idempotencyKey: 'transmitting' });
    await sagas.transition({ sagaId, to: 'TRANSMITTED', reason: 'test', attempt: 1, idempotencyKey: 'transmitted' });
    await deliver(newResourceId(), await signedPibr002(bcb, data));
    expect((await factOf(sagaId, 'EchoAnswered')).detail).toMatchObject({ requestId, data: { originalData: data } });
    expect((await sagas.get(sagaId))?.state).toBe('COMPLETED');
  });

  it('asks core banking once about an inbound pacs.008 (saga IN# RECEIVED), rejects it on the SPI\'s AB03, and asks core banking about a pacs.004 returning our payment', async () => {
    const inbound = generateEndToEndId('99999005');
    await deliver(newResourceId(), await signedPacs008(bcb, inboundTransfer(inbound, ISPB)));
    expect((await factOf(inboundSagaId(inbound), 'InboundPaymentDecisionRequested')).detail.data).toMatchObject({ endToEndId: inbound, amount: '321.09', creditorAgentIspb: ISPB });
    expect((await sagas.get(inboundSagaId(inbound)))?.state).toBe('RECEIVED');
    const copy = newResourceId();
    await deliver(copy, await signedPacs008(bcb, inboundTransfer(inbound, ISPB)));
    expect(JSON.parse((await verifiedRecord(copy)).response_header ?? '{}')).toMatchObject({ 'selo-disposition': 'duplicate' });
    expect(factsFor(inboundSagaId(inbound), 'InboundPaymentDecisionRequested')).toHaveLength(1);
    // Nobody decided in time: the SPI's RJCT AB03 means "never credit", and says so.
    await deliver(newResourceId(), await signedPacs002(bcb, statusOf(inbound, 'RJCT', 'AB03')));
    expect((await factOf(inboundSagaId(inbound), 'InboundPaymentRejected')).detail.data).toMatchObject({ endToEndId: inbound, reason: { code: 'AB03' } });
    expect((await sagas.get(inboundSagaId(inbound)))?.state).toBe('REJECTED');
    const original = generateEndToEndId(ISPB);
    const returnId = generateReturnId('99999005');
    await deliver(newResourceId(), await signedPacs004(bcb, { returnId, originalEndToEndId: original, amount: '5.00', reason: { code: 'FR01' }, debtorAgentIspb: '99999005', creditorAgentIspb: ISPB }));
    // A return of our payment is decided like a payment to us: the SPI waits for our pacs.002.
    expect((await factOf(inboundSagaId(returnId), 'InboundReturnDecisionRequested')).detail.data).toMatchObject({ returnId, originalEndToEndId: original, amount: '5.00', reason: { code: 'FR01' } });
    expect((await sagas.get(inboundSagaId(returnId)))?.state).toBe('RECEIVED');
  });

  it('verifies DICT answers: a signed 201 completes the saga, a signed 409 problem rejects it', async () => {
    const answer = async (status: number, body: string): Promise<string> => {
      const requestId = randomUUID();
      await sagaThrough(dictSagaId(requestId), { requestId }, ['SIGNED', 'TRANSMITTING', 'TRANSMITTED']);
      const detail = { version: 1 as const, sagaId: dictSagaId(requestId), requestId, attempt: 1, traceparent: newTraceparent(), data: { channel: 'dict', operation: 'createEntry', status, contentType: 'application/xml', body } };
      await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: verifyUrl, MessageBody: encodeEventBody({ detailType: 'DictResponseReceived', source: 'selo.transmit', detail }) }));
      return requestId;
    };
    const ok = await answer(201, await signDict('<CreateEntryResponse><ResponseTime>2026-11-28T17:00:00.000Z</ResponseTime><CorrelationId>c1</CorrelationId></CreateEntryResponse>', bcb.key));
    const refused = await answer(409, await signDict(buildDictProblem({ type: 'https://dict.pi.rsfn.net.br/api/v2/error/EntryAlreadyExists', title: 'EntryAlreadyExists', status: 409 }), bcb.key));
    expect((await factOf(dictSagaId(ok), 'DictResponseVerified')).detail.data).toMatchObject({ operation: 'createEntry', status: 201 });
    expect((await factOf(dictSagaId(refused), 'DictOperationFailed')).detail.data).toMatchObject({ status: 409, problem: { title: 'EntryAlreadyExists' } });
    expect((await sagas.get(dictSagaId(ok)))?.state).toBe('COMPLETED');
    expect((await sagas.get(dictSagaId(refused)))?.state).toBe('REJECTED');
  });
});
