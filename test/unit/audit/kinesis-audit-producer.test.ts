import { describe, expect, it } from 'vitest';
import { drainEventLoop, waitUntil } from '../../support/wait-until.ts';
import { KinesisAuditProducer, exchangeAuditRecord, filterHeaders, transitionAuditRecord } from '../../../shared/audit/index.ts';
import type { KinesisEntry, KinesisPutRecordsPort } from '../../../shared/audit/index.ts';

const origin = { worker: 'transmit', system: 'spi' as const, sagaId: 'PAY#E1', endToEndId: 'E1' };

function record(i: number): ReturnType<typeof transitionAuditRecord> {
  return transitionAuditRecord(origin, { from: 'A', to: 'B', reason: String(i) });
}

/** A Kinesis that follows a script: per call, 'down' throws, a number fails that many leading records. */
class ScriptedKinesis implements KinesisPutRecordsPort {
  readonly calls: number[] = [];
  readonly accepted: string[] = [];
  readonly #script: ('down' | number)[];

  constructor(script: ('down' | number)[] = []) {
    this.#script = script;
  }

  putRecords(_stream: string, entries: readonly KinesisEntry[]): Promise<readonly (string | undefined)[]> {
    this.calls.push(entries.length);
    const step = this.#script.shift() ?? 0;
    if (step === 'down') return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { name: 'ECONNREFUSED' }));
    return Promise.resolve(
      entries.map((e, i) => {
        if (i < step) return 'ProvisionedThroughputExceededException';
        this.accepted.push((JSON.parse(Buffer.from(e.data).toString('utf8')) as { transition_reason: string }).transition_reason);
        return undefined;
      }),
    );
  }
}

describe('KinesisAuditProducer', () => {
  it('batches at most 500 records per PutRecords', async () => {
    const kinesis = new ScriptedKinesis();
    const producer = new KinesisAuditProducer({ port: kinesis, streamName: 's', lingerMs: 1 });
    await producer.put(Array.from({ length: 1200 }, (_, i) => record(i)));
    expect(kinesis.calls).toEqual([500, 500, 200]);
    expect(kinesis.accepted).toHaveLength(1200);
  });

  it('retries failed records and whole failed requests until they are accepted, resolving only then', async () => {
    const kinesis = new ScriptedKinesis(['down', 'down', 2]);
    const producer = new KinesisAuditProducer({ port: kinesis, streamName: 's', lingerMs: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 5 });
    await producer.put([record(1), record(2), record(3)]);
    expect(kinesis.calls).toEqual([3, 3, 3, 2]);
    expect(kinesis.accepted.sort()).toEqual(['1', '2', '3']);
    expect(producer.health()).toMatchObject({ ok: true, buffered: 0, consecutiveFailures: 0 });
  });

  it('reports unhealthy while Kinesis keeps failing', async () => {
    const kinesis = new ScriptedKinesis(['down', 'down', 'down']);
    // The call after the three failures waits for the test: health is read while Kinesis is still down.
    const back = Promise.withResolvers<void>();
    const port: KinesisPutRecordsPort = { putRecords: async (stream, entries) => (kinesis.calls.length === 3 && (await back.promise), kinesis.putRecords(stream, entries)) };
    const producer = new KinesisAuditProducer({ port, streamName: 's', lingerMs: 0, retryBaseDelayMs: 20, retryMaxDelayMs: 20, unhealthyAfterFailures: 2 });
    const put = producer.put([record(1)]);
    await waitUntil('three failed calls', () => kinesis.calls.length === 3);
    expect(producer.health()).toMatchObject({ ok: false, buffered: 1, lastError: 'ECONNREFUSED' });
    back.resolve();
    await put;
    expect(kinesis.calls).toEqual([1, 1, 1, 1]);
    expect(producer.health().ok).toBe(true);
  });

  it('rejects pending records with a transient error when closed before Kinesis returns', async () => {
    const kinesis = new ScriptedKinesis(Array.from({ length: 100 }, () => 'down' as const));
    const producer = new KinesisAuditProducer({ port: kinesis, streamName: 's', lingerMs: 0, retryBaseDelayMs: 5, retryMaxDelayMs: 5 });
    const put = producer.put([record(1)]);
    await producer.close(30);
    await expect(put).rejects.toMatchObject({ code: 'AUDIT_NOT_DELIVERED', retryability: 'transient' });
    await expect(producer.put([record(2)])).rejects.toMatchObject({ code: 'AUDIT_PRODUCER_CLOSED' });
  });

  it('makes a put wait while the buffer is full', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let requests = 0;
    const port: KinesisPutRecordsPort = { putRecords: async (_s, entries) => { requests += 1; await gate; return entries.map(() => undefined); } };
    const producer = new KinesisAuditProducer({ port, streamName: 's', lingerMs: 0, maxBufferedRecords: 2, maxBatchRecords: 2 });
    const first = producer.put([record(1), record(2)]);
    await waitUntil('the first batch sent', () => requests === 1);
    const second = producer.put([record(3), record(4)]);
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    const third = producer.put([record(5)]);
    await drainEventLoop();
    expect(requests).toBe(1);
    expect(producer.health().buffered).toBeLessThanOrEqual(4);
    expect(secondDone).toBe(false);
    release();
    await Promise.all([first, second, third]);
    expect(producer.health().buffered).toBe(0);
  });

  it('refuses a record over Kinesis\'s 1 MiB limit as a permanent error', async () => {
    const producer = new KinesisAuditProducer({ port: new ScriptedKinesis(), streamName: 's' });
    const big = exchangeAuditRecord(origin, { requestDate: new Date(), method: 'post', path: '/x', requestHeaders: {}, requestBody: 'x'.repeat(1024 * 1024) });
    await expect(producer.put([big])).rejects.toMatchObject({ code: 'AUDIT_RECORD_TOO_LARGE', retryability: 'permanent' });
  });

  it('validates its options, naming the field', () => {
    expect(() => new KinesisAuditProducer({ port: new ScriptedKinesis(), streamName: 's', maxBatchRecords: 501 })).toThrow(/maxBatchRecords.*501/);
  });
});

describe('audit records', () => {
  it('redact credentials, cookies and PINs from headers and keep the rest', () => {
    expect(filterHeaders({ Authorization: 'Bearer x', Cookie: 'a=b', 'X-Hsm-Pin': '1234', 'Content-Type': 'application/xml', 'PI-ResourceId': 'r1' })).toEqual({
      authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'x-hsm-pin': '[REDACTED]',
      'content-type': 'application/xml',
      'pi-resourceid': 'r1',
    });
  });

  it('fill the Glue columns of a BCB exchange and the selo ids', () => {
    const sent = new Date('2026-01-01T12:00:00.000Z');
    const r = exchangeAuditRecord(
      { ...origin, bizMsgIdr: 'M1' },
      { requestDate: sent, method: 'post', path: '/api/v1/in/99999004/msgs', requestHeaders: { authorization: 'x' }, requestBody: '<x/>', response: { statusCode: 201, headers: { 'pi-resourceid': 'r' }, body: '', signatureValid: null, receivedAt: new Date(sent.getTime() + 42) } },
    );
    expect(r).toMatchObject({ kind: 'response', request_method: 'POST', request_date: '2026-01-01T12:00:00.000Z', response_status_code: 201, duration_ms: 42, end_to_end_id: 'E1', biz_msg_idr: 'M1', saga_id: 'PAY#E1' });
    expect(JSON.parse(r.request_header ?? '{}')).toEqual({ authorization: '[REDACTED]' });
  });
});
