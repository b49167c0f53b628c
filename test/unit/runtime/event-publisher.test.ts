import { describe, expect, it } from 'vitest';
import { newTraceparent } from '../../../shared/events/index.ts';
import { EventBridgePublisher } from '../../../shared/runtime/index.ts';
import type { EventEntry, EventToPublish, PutEventsPort } from '../../../shared/runtime/index.ts';

function event(i: number, size = 10): EventToPublish {
  return { detailType: 'MessageSigned', detail: { version: 1, sagaId: 'PAY#E1', endToEndId: 'E1', attempt: 1, traceparent: newTraceparent(), data: { i, pad: 'x'.repeat(size) } } };
}

describe('EventBridgePublisher', () => {
  it('sends at most 10 entries per PutEvents and retries only the entries that failed', async () => {
    const calls: number[] = [];
    let failNext = 2;
    const port: PutEventsPort = {
      putEvents: (_bus, entries: readonly EventEntry[]) => {
        calls.push(entries.length);
        return Promise.resolve(entries.map(() => (failNext-- > 0 ? 'ThrottlingException' : undefined)));
      },
    };
    const publisher = new EventBridgePublisher({ port, eventBusName: 'bus', defaultSource: 'selo.sign', retryBaseDelayMs: 1 });
    await publisher.publish(Array.from({ length: 23 }, (_, i) => event(i)));
    expect(calls).toEqual([10, 10, 3, 2]);
  });

  it('gives up with a transient error when entries keep failing', async () => {
    const port: PutEventsPort = { putEvents: (_bus, entries) => Promise.resolve(entries.map(() => 'InternalFailure')) };
    const publisher = new EventBridgePublisher({ port, eventBusName: 'bus', defaultSource: 'selo.sign', maxAttempts: 2, retryBaseDelayMs: 1 });
    await expect(publisher.publish([event(1)])).rejects.toMatchObject({ code: 'EVENTS_NOT_PUBLISHED', retryability: 'transient' });
  });

  it('refuses an event over 256 KiB as permanent, before sending anything', async () => {
    const calls: number[] = [];
    const port: PutEventsPort = { putEvents: (_bus, entries) => (calls.push(entries.length), Promise.resolve(entries.map(() => undefined))) };
    const publisher = new EventBridgePublisher({ port, eventBusName: 'bus', defaultSource: 'selo.sign' });
    await expect(publisher.publish([event(1), event(2, 300 * 1024)])).rejects.toMatchObject({ code: 'EVENT_TOO_LARGE', retryability: 'permanent' });
    expect(calls).toEqual([]);
  });
});
