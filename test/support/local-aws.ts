import { join } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { AuditRecord } from '../../shared/audit/index.ts';
import { newTraceparent, paymentSagaId } from '../../shared/events/index.ts';

/** A message received in a test: its raw body, its body as JSON (or `{}`), and its attributes. */
export interface ReceivedMessage {
  raw: string;
  body: Record<string, unknown>;
  attributes: Record<string, string>;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Receives from `url` until a message's raw body satisfies `predicate`; throws after `timeoutMs`. */
export async function receiveMatching(sqs: SQSClient, url: string, predicate: (body: string) => boolean, timeoutMs = 15_000): Promise<ReceivedMessage> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    for (const m of got.Messages ?? []) {
      if (predicate(m.Body ?? '')) {
        const attributes = Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']));
        return { raw: m.Body ?? '', body: parseJson(m.Body ?? ''), attributes };
      }
    }
  }
  throw new Error(`no matching message arrived on ${url} within ${timeoutMs} ms`);
}

/** Every audit record on the stream so far (all shards, from the start). */
export async function readAuditRecords(kinesis: KinesisClient, streamName: string): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  const shards = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of shards.Shards ?? []) {
    const iterator = await kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator.ShardIterator, Limit: 10_000 }));
    for (const r of got.Records ?? []) records.push(JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as AuditRecord);
  }
  return records;
}

/**
 * A downstream subscriber: a queue `name` and a rule of the same name on `eventBusName` sending it
 * the events that match `pattern`. Returns the queue's URL.
 */
export async function subscribeQueue(clients: { sqs: SQSClient; events: EventBridgeClient }, eventBusName: string, name: string, pattern: Record<string, unknown>): Promise<string> {
  const url = (await clients.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl ?? '';
  const arn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  await clients.events.send(new PutRuleCommand({ Name: name, EventBusName: eventBusName, EventPattern: JSON.stringify(pattern) }));
  await clients.events.send(new PutTargetsCommand({ Rule: name, EventBusName: eventBusName, Targets: [{ Id: 'q', Arn: arn }] }));
  return url;
}

/** A valid pacs.008 credit transfer from PSP 99999004 to 99999005, as core banking sends it. */
export function creditTransfer(endToEndId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endToEndId,
    amount: '150.00',
    acceptanceDateTime: '2026-11-28T17:00:00.000Z',
    localInstrument: 'MANU',
    debtor: { name: 'Fulano de Tal', taxId: '70000000000' },
    debtorAccount: { number: '500000', branch: '3000', type: 'CACC' },
    creditorAgentIspb: '99999005',
    creditor: { taxId: '80000000000' },
    creditorAccount: { number: '600000', branch: '4000', type: 'CACC' },
    purpose: 'IPAY',
    ...overrides,
  };
}

/** A PutEvents entry for `PaymentRequested` as core banking publishes it. */
export function paymentRequestedEntry(eventBusName: string, endToEndId: string, data: unknown): { EventBusName: string; Source: string; DetailType: string; Detail: string } {
  return {
    EventBusName: eventBusName,
    Source: 'core.banking',
    DetailType: 'PaymentRequested',
    Detail: JSON.stringify({ version: 1, sagaId: paymentSagaId(endToEndId), endToEndId, attempt: 1, traceparent: newTraceparent(), data }),
  };
}

/** The environment a worker under test needs, pointed at the stand-ins, a test token and a dev PKI. */
export function workerTestEnv(options: {
  stackEnv: Record<string, string>;
  token: { modulePath: string; tokenLabel: string; pin: string };
  pkiDir: string;
  /** The BCB simulator's origin, for the transmit worker. */
  bcbUrl?: string;
  /** Anything to add or replace. */
  extra?: Record<string, string>;
}): Record<string, string> {
  const { pkiDir } = options;
  return {
    ...options.stackEnv,
    SELO_ISPB: '99999004',
    SELO_HSM_MODULE: options.token.modulePath,
    SELO_HSM_TOKEN_LABEL: options.token.tokenLabel,
    SELO_HSM_PIN: options.token.pin,
    SELO_SIGNING_CERT: join(pkiDir, 'psp-signing.crt'),
    ...(options.bcbUrl === undefined
      ? {}
      : { SELO_BCB_URL: options.bcbUrl, SELO_BCB_CA: join(pkiDir, 'ca.crt'), SELO_TLS_CERT: join(pkiDir, 'psp-tls-client.crt'), SELO_TLS_KEY: join(pkiDir, 'psp-tls-client.key') }),
    SELO_HEALTH_PORT: '0',
    SELO_SQS_WAIT_SECONDS: '1',
    SELO_LOG_LEVEL: process.env.SELO_TEST_LOG_LEVEL ?? 'silent',
    ...options.extra,
  };
}
