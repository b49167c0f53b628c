// What the receive worker's unit tests share: an ICOM stream answer, a forward that takes
// everything, and a short wait for a condition.
import type { IcomStreamAnswer } from '../../shared/bcb-client/index.ts';
import type { ForwardResult } from '../../workers/receive/index.ts';
import { waitUntil } from '../support/wait-until.ts';

/** The stream path of the test participant. */
export const BASE = '/api/v1/out/99999004/stream';

/** An ICOM stream answer: 200 with `ids` as messages, or 204 when there are none. */
export function answer(pullNext: string, ids: string[] = []): IcomStreamAnswer {
  const at = new Date();
  return {
    status: ids.length === 0 ? 204 : 200,
    pullNext,
    messages: ids.map((id) => ({ resourceId: id, contentType: 'application/xml', body: Buffer.from('<A/>'), headers: {} })),
    exchange: { requestDate: at, method: 'GET', path: pullNext, requestHeaders: {}, responseHeaders: {}, receivedAt: at },
  };
}

/** A forward that puts every message of the answer on the verify queue. */
export const forwarded = (a: IcomStreamAnswer): Promise<ForwardResult> => Promise.resolve({ read: a.messages.length, forwarded: a.messages.length, duplicates: 0 });

/** Waits (checking every 2 ms) until `check` holds; the fakes answer within milliseconds. */
export async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  await waitUntil('condition', check, { timeoutMs, intervalMs: 2 });
}
