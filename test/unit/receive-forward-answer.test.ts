import { describe, expect, it } from 'vitest';
import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckReference, ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { BCB_MESSAGE_RECEIVED, RECEIVE_SOURCE, decodeBcbMessageReceived, decodeEventBody, inboxSagaId } from '../../shared/events/index.ts';
import { RecentResources, SQS_BATCH_LIMITS, chunkEntries, createAnswerForwarder } from '../../workers/receive/index.ts';
import type { AnswerForwarderDeps, FailedEntry, QueueEntry, VerifyQueuePort } from '../../workers/receive/index.ts';
import { drainEventLoop, waitUntil } from '../support/wait-until.ts';
import { FakeAudit, silentLogger } from './runtime/fakes.ts';

/** A verify queue that refuses what the test says, and keeps what it takes. */
class FakeQueue implements VerifyQueuePort {
  readonly sent: QueueEntry[] = [];
  /** Every entry of every request, refused ones included. */
  readonly attempted: QueueEntry[] = [];
  /** Refuse these ids this many more times. */
  readonly refuse = new Map<string, number>();
  failRequests = 0;
  sendBatch(entries: readonly QueueEntry[]): Promise<readonly FailedEntry[]> {
    if (entries.length > SQS_BATCH_LIMITS.entries) throw new Error('too many entries in one request');
    if (this.failRequests > 0) {
      this.failRequests--;
      return Promise.reject(Object.assign(new Error('down'), { name: 'QueueDoesNotExist' }));
    }
    const failed: FailedEntry[] = [];
    this.attempted.push(...entries);
    for (const e of entries) {
      const left = this.refuse.get(e.id) ?? 0;
      if (left > 0) {
        this.refuse.set(e.id, left - 1);
        failed.push({ id: e.id, code: 'InternalError' });
      } else {
        this.sent.push(e);
      }
    }
    return Promise.resolve(failed);
  }
}

class FakeClaimCheck implements ClaimCheckStore {
  readonly objects = new Map<string, string>();
  put(key: string, body: string): Promise<ClaimCheckReference> {
    this.objects.set(key, body);
    return Promise.resolve({ bucket: 'payloads', key });
  }
  get(reference: ClaimCheckReference): Promise<string> {
    return Promise.resolve(this.objects.get(reference.key) ?? '');
  }
}

function decode(entry: QueueEntry): ReturnType<typeof decodeEventBody<ReturnType<typeof decodeBcbMessageReceived>>> {
  return decodeEventBody(entry.body, decodeBcbMessageReceived, 'sqs-id');
}

function answerOf(messages: { id: string; xml: string }[]): IcomStreamAnswer {
  const at = new Date('2026-11-28T17:00:00.000Z');
  return {
    status: 200,
    pullNext: '/api/v1/out/99999004/stream/s-2',
    messages: messages.map((m) => ({ resourceId: m.id, contentType: 'application/xml; charset=utf-8', body: Buffer.from(m.xml, 'utf8'), headers: { 'pi-resourceid': m.id } })),
    exchange: { requestDate: at, method: 'GET', path: '/api/v1/out/99999004/stream/s-1', requestHeaders: { accept: 'multipart/mixed' }, responseHeaders: { 'content-encoding': 'gzip' }, receivedAt: at },
  };
}

function setup(overrides: Partial<AnswerForwarderDeps> = {}): { queue: FakeQueue; audit: FakeAudit; claimCheck: FakeClaimCheck; recent: RecentResources; forward: ReturnType<typeof createAnswerForwarder> } {
  const queue = new FakeQueue();
  const audit = new FakeAudit();
  const claimCheck = new FakeClaimCheck();
  const recent = new RecentResources();
  const forward = createAnswerForwarder({ queue, audit, claimCheck, recent, logger: silentLogger(), send: { attempts: 3, backoff: { baseMs: 1, maxMs: 2 } }, ...overrides });
  return { queue, audit, claimCheck, recent, forward };
}

describe('receive: forwarding one stream answer', () => {
  it('puts each message on the verify queue as a BcbMessageReceived envelope with the exact XML', async () => {
    const { queue, forward } = setup();
    const xml = '<?xml version="1.0"?>\n<Envelope a="1">ação &amp; "q"</Envelope>';
    const result = await forward(answerOf([{ id: 'r1', xml }, { id: 'r2', xml: '<B/>' }]));
    expect(result).toEqual({ read: 2, forwarded: 2, duplicates: 0 });
    const events = queue.sent.map(decode);
    expect(events.map((e) => e.detail.data.resourceId)).toEqual(['r1', 'r2']);
    expect(events[0]).toMatchObject({ detailType: BCB_MESSAGE_RECEIVED, source: RECEIVE_SOURCE, detail: { version: 1, sagaId: inboxSagaId('r1'), attempt: 1 } });
    expect(events[0]?.detail.data).toMatchObject({ channel: 'spi', contentType: 'application/xml; charset=utf-8', payload: { inline: xml } });
    expect(events[0]?.detail.traceparent).not.toBe(events[1]?.detail.traceparent);
  });

  it('audits every message read, duplicates included, as the GET and the message as its response', async () => {
    const { audit, forward } = setup();
    await forward(answerOf([{ id: 'r1', xml: '<A/>' }, { id: 'r1', xml: '<A/>' }]));
    expect(audit.accepted).toHaveLength(2);
    expect(audit.accepted[0]).toMatchObject({
      kind: 'response', system: 'spi', worker: 'receive', saga_id: inboxSagaId('r1'), request_method: 'GET', request_path: '/api/v1/out/99999004/stream/s-1',
      response_status_code: 200, response_body: '<A/>', attempt: 1,
    });
    expect(JSON.parse(audit.accepted[0]?.response_header ?? '{}')).toMatchObject({ 'content-encoding': 'gzip', 'pi-resourceid': 'r1' });
  });

  it('gives every forwarded copy its own copy id, and a copy read again (after a restart: nothing remembered) another', async () => {
    const first = setup();
    await first.forward(answerOf([{ id: 'r1', xml: '<A/>' }, { id: 'r2', xml: '<B/>' }]));
    const again = setup();
    await again.forward(answerOf([{ id: 'r1', xml: '<A/>' }]));
    const copies = [...first.queue.sent, ...again.queue.sent].map((e) => decode(e).detail.data.copy);
    for (const copy of copies) expect(copy).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(copies).size).toBe(3);
    // A restarted forwarder sends r1 again, under a new copy id (the verify worker records it only).
    expect(again.queue.sent.map((e) => decode(e).detail.data.resourceId)).toEqual(['r1']);
  });

  it('keeps the copy id when it retries an entry SQS refused (one copy, however many sends)', async () => {
    const { queue, forward } = setup();
    queue.refuse.set('m0', 2);
    await forward(answerOf([{ id: 'a', xml: '<A/>' }]));
    expect(queue.sent).toHaveLength(1);
    const copy = decode(queue.sent[0] as QueueEntry).detail.data.copy;
    expect(copy).toMatch(/^[0-9a-f]{24}$/);
    // Two refused sends and the accepted one carried the same copy.
    expect(queue.attempted.map((e) => decode(e).detail.data.copy)).toEqual([copy, copy, copy]);
  });

  it('drops a PI-ResourceId forwarded lately, repeated in the same answer, or in flight on another stream', async () => {
    const { queue, forward, recent } = setup();
    recent.done('old');
    recent.acquire('other-stream');
    const waitFor = recent.waitFor.bind(recent);
    const waited: string[] = [];
    recent.waitFor = (id) => (waited.push(id), waitFor(id));
    const forwarding = forward(answerOf([{ id: 'old', xml: '<A/>' }, { id: 'new', xml: '<B/>' }, { id: 'new', xml: '<B/>' }, { id: 'other-stream', xml: '<C/>' }]));
    // The copy in flight on another stream is waited for: this answer is not confirmed before it is durable.
    let finished = false;
    void forwarding.then(() => (finished = true));
    await waitUntil('waiting for the other stream', () => waited.includes('other-stream'));
    await drainEventLoop();
    expect(finished).toBe(false);
    recent.done('other-stream');
    const result = await forwarding;
    expect(result).toEqual({ read: 4, forwarded: 1, duplicates: 3 });
    expect(queue.sent.map((e) => decode(e).detail.data.resourceId)).toEqual(['new']);
    // Once forwarded, a later copy is dropped.
    expect(await forward(answerOf([{ id: 'new', xml: '<B/>' }]))).toEqual({ read: 1, forwarded: 0, duplicates: 1 });
  });

  it('forwards a copy itself when the other stream forwarding it failed', async () => {
    const { queue, forward, recent } = setup();
    recent.acquire('x');
    const waitFor = recent.waitFor.bind(recent);
    const waited: string[] = [];
    recent.waitFor = (id) => (waited.push(id), waitFor(id));
    const forwarding = forward(answerOf([{ id: 'x', xml: '<X/>' }]));
    await waitUntil('waiting for the other stream', () => waited.includes('x'));
    recent.release('x');
    expect(await forwarding).toEqual({ read: 1, forwarded: 1, duplicates: 0 });
    expect(queue.sent.map((e) => decode(e).detail.data.resourceId)).toEqual(['x']);
  });

  it('retries the entries SQS refused and resolves once all are durable', async () => {
    const { queue, forward } = setup();
    queue.refuse.set('m1', 2);
    queue.failRequests = 0;
    expect(await forward(answerOf([{ id: 'a', xml: '<A/>' }, { id: 'b', xml: '<B/>' }]))).toMatchObject({ forwarded: 2 });
    expect(queue.sent.map((e) => decode(e).detail.data.resourceId)).toEqual(['a', 'b']);
  });

  it('rejects with VERIFY_QUEUE_SEND_FAILED when entries stay refused, remembering only the durable ones', async () => {
    const { queue, forward, recent } = setup();
    queue.refuse.set('m1', 10);
    await expect(forward(answerOf([{ id: 'a', xml: '<A/>' }, { id: 'b', xml: '<B/>' }]))).rejects.toMatchObject({ code: 'VERIFY_QUEUE_SEND_FAILED', retryability: 'transient' });
    // The refused one is free to be forwarded when the BCB delivers it again.
    expect(recent.acquire('b')).toBe(true);
    expect(recent.acquire('a')).toBe(false);
  });

  it('rejects when the queue is unreachable on every attempt, and remembers nothing', async () => {
    const { queue, forward, recent } = setup();
    queue.failRequests = 3;
    await expect(forward(answerOf([{ id: 'a', xml: '<A/>' }]))).rejects.toMatchObject({ code: 'VERIFY_QUEUE_SEND_FAILED' });
    expect(recent.acquire('a')).toBe(true);
  });

  it('rejects with RECEIVE_AUDIT_FAILED when the audit trail does not take the records', async () => {
    const { forward, audit } = setup();
    audit.gate = Promise.reject(new Error('kinesis closed'));
    await expect(forward(answerOf([{ id: 'a', xml: '<A/>' }]))).rejects.toMatchObject({ code: 'RECEIVE_AUDIT_FAILED' });
  });

  it('sends a payload over the claim-check threshold to S3 and the envelope carries the reference', async () => {
    const { queue, claimCheck, forward } = setup();
    const big = `<Envelope>${'x'.repeat(CLAIM_CHECK_THRESHOLD_BYTES)}</Envelope>`;
    await forward(answerOf([{ id: 'big', xml: big }, { id: 'small', xml: '<A/>' }]));
    const [first, second] = queue.sent.map(decode);
    expect(first?.detail.data.payload).toEqual({ claimCheck: { bucket: 'payloads', key: expect.stringMatching(/^receive\/[0-9a-f]{64}\.xml$/) as unknown } });
    expect([...claimCheck.objects.values()]).toEqual([big]);
    expect(second?.detail.data.payload).toEqual({ inline: '<A/>' });
    expect(queue.sent[0]?.body.length).toBeLessThan(2_000);
  });
});

describe('receive: verify queue batches', () => {
  it('keeps SendMessageBatch requests within 10 entries and 256 KiB', () => {
    const entries = Array.from({ length: 25 }, (_, i) => ({ id: `m${i}`, body: 'x'.repeat(i < 5 ? 100_000 : 10) }));
    const chunks = chunkEntries(entries);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(SQS_BATCH_LIMITS.entries);
      expect(chunk.reduce((n, e) => n + e.body.length, 0)).toBeLessThanOrEqual(SQS_BATCH_LIMITS.bytes);
    }
    expect(chunks.flat().map((e) => e.id)).toEqual(entries.map((e) => e.id));
  });
});
