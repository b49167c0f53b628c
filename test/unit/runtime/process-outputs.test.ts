import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { kinesisPutRecordsPort, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { KinesisPutRecordsPort } from '../../../shared/audit/index.ts';
import { createAwsClients } from '../../../shared/aws/index.ts';
import type { AwsClients } from '../../../shared/aws/index.ts';
import { newTraceparent } from '../../../shared/events/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { eventBridgePutEventsPort, ProcessOutputs } from '../../../shared/runtime/index.ts';
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

function outputsOver(putRecords: KinesisPutRecordsPort = kinesisPutRecordsPort(clients.kinesis), workerCloseTimeoutMs?: number): ProcessOutputs {
  return new ProcessOutputs({ putRecords, putEvents: eventBridgePutEventsPort(clients.events), auditStreamName: 'audit', eventBusName: 'bus', logger, ...(workerCloseTimeoutMs === undefined ? {} : { workerCloseTimeoutMs }) });
}

const record = (worker: string): ReturnType<typeof transitionAuditRecord> => transitionAuditRecord({ worker, system: 'spi', sagaId: `PAY#${worker}` }, { from: 'A', to: 'B', reason: worker });
const fact = (name: string): EventToPublish => ({ detailType: 'MessageSigned', detail: { version: 1, sagaId: `PAY#${name}`, attempt: 1, traceparent: newTraceparent(), data: {} } });

describe('ProcessOutputs', () => {
  it('carries the records and events of several workers written together in one PutRecords and one PutEvents', async () => {
    const outputs = outputsOver();
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

  it('closes a worker’s view once its own records are in, while the others keep writing; the owner closes the producer', async () => {
    const outputs = outputsOver();
    try {
      const stopping = outputs.audit();
      const staying = outputs.audit();
      const pending = stopping.put([record('receive')]);
      // The other worker keeps the producer busy meanwhile.
      const busy = Array.from({ length: 20 }, (_, i) => staying.put([record(`verify${i}`)]));
      await stopping.close();
      await pending;
      await expect(stopping.put([record('receive')])).rejects.toMatchObject({ code: 'AUDIT_PRODUCER_CLOSED' });
      await staying.put([record('verify')]);
      await Promise.all(busy);
      expect(staying.health().ok).toBe(true);
      await outputs.close();
      expect(staying.health().ok).toBe(false);
      await expect(staying.put([record('verify')])).rejects.toMatchObject({ code: 'AUDIT_PRODUCER_CLOSED' });
    } finally {
      await outputs.close();
    }
  });

  it('does not hold a stopping worker longer than its close timeout when Kinesis never answers', async () => {
    const never: KinesisPutRecordsPort = { putRecords: () => new Promise(() => undefined) };
    const outputs = outputsOver(never, 50);
    const view = outputs.audit();
    const put = view.put([record('transmit')]);
    put.catch(() => undefined);
    const started = Date.now();
    await view.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(view.health().buffered).toBe(1);
    await outputs.close(50);
    expect(view.health().ok).toBe(false);
  });
});
