import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { transitionAuditRecord } from '../../../shared/audit/index.ts';
import { createAwsClients } from '../../../shared/aws/index.ts';
import type { AwsClients } from '../../../shared/aws/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { newTraceparent } from '../../../shared/events/index.ts';
import { ProcessOutputs } from '../../../shared/runtime/index.ts';
import type { EventToPublish } from '../../../shared/runtime/index.ts';
import { startLoopbackHttp } from '../../support/loopback-http.ts';
import type { LoopbackHttp } from '../../support/loopback-http.ts';

// The real SDK clients against a loopback server that answers PutRecords and PutEvents as
// Kinesis and EventBridge do, and keeps what each call carried.
interface Call {
  target: string;
  body: { Records?: unknown[]; Entries?: { Source: string }[] };
}
let server: LoopbackHttp;
let clients: AwsClients;
const calls: Call[] = [];
const logger = createLogger({ name: 'test', level: 'silent' });

beforeAll(async () => {
  server = await startLoopbackHttp((request, text, response) => {
    const body = JSON.parse(text) as Call['body'];
    const target = String(request.headers['x-amz-target']);
    calls.push({ target, body });
    const answer = target.endsWith('PutRecords')
      ? { FailedRecordCount: 0, Records: (body.Records ?? []).map((_, i) => ({ SequenceNumber: String(i), ShardId: 'shardId-000000000000' })) }
      : { FailedEntryCount: 0, Entries: (body.Entries ?? []).map((_, i) => ({ EventId: `e${i}` })) };
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(JSON.stringify(answer));
  });
  clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints: { kinesis: server.url, events: server.url } });
});

afterAll(async () => {
  clients.destroy();
  await server.close();
});

beforeEach(() => {
  calls.length = 0;
});

const record = (worker: string): ReturnType<typeof transitionAuditRecord> => transitionAuditRecord({ worker, system: 'spi', sagaId: `PAY#${worker}` }, { from: 'A', to: 'B', reason: worker });
const fact = (name: string): EventToPublish => ({ detailType: 'MessageSigned', detail: { version: 1, sagaId: `PAY#${name}`, attempt: 1, traceparent: newTraceparent(), data: {} } });

describe('ProcessOutputs', () => {
  it('carries the records and events of several workers written together in one PutRecords and one PutEvents', async () => {
    const outputs = new ProcessOutputs({ clients, auditStreamName: 'audit', eventBusName: 'bus', logger });
    try {
      const [sign, transmit, verify] = [outputs.audit(), outputs.audit(), outputs.audit()];
      await Promise.all([sign.put([record('sign')]), transmit.put([record('transmit'), record('transmit')]), verify.put([record('verify')])]);
      await Promise.all([outputs.publisher('sign', logger).publish([fact('a')]), outputs.publisher('transmit', logger).publish([fact('b')])]);
      const putRecords = calls.filter((c) => c.target.endsWith('PutRecords'));
      const putEvents = calls.filter((c) => c.target.endsWith('PutEvents'));
      expect(putRecords.map((c) => c.body.Records?.length)).toEqual([4]);
      expect(putEvents.map((c) => c.body.Entries?.map((e) => e.Source))).toEqual([['selo.sign', 'selo.transmit']]);
    } finally {
      await outputs.close();
    }
  });

  it('lets a worker’s close flush without closing the producer the others write to; its owner closes it', async () => {
    const outputs = new ProcessOutputs({ clients, auditStreamName: 'audit', eventBusName: 'bus', logger });
    const first = outputs.audit();
    const second = outputs.audit();
    const pending = first.put([record('receive')]);
    await first.close();
    await pending;
    expect(calls.filter((c) => c.target.endsWith('PutRecords'))).toHaveLength(1);
    await second.put([record('verify')]);
    expect(second.health().ok).toBe(true);
    await outputs.close();
    expect(second.health().ok).toBe(false);
    await expect(second.put([record('verify')])).rejects.toThrow();
  });
});
