import { describe, expect, it } from 'vitest';
import { BcbUnavailableError, answerError } from '../../../shared/bcb-client/index.ts';
import type { BcbResponse, IcomPosted, IcomPostedBatch } from '../../../shared/bcb-client/index.ts';
import { ConfigError } from '../../../shared/config/index.ts';
import { MultipartIcomPort, exchangesOf, readTransmitWorkerConfig } from '../../../workers/transmit/index.ts';
import type { MultipartIcomClient } from '../../../workers/transmit/index.ts';

function answer(status: number, headers: Record<string, string> = {}): BcbResponse {
  return { status, headers, body: status === 201 ? '' : '<Problem><Title>refused</Title></Problem>' };
}

/**
 * An ICOM client that records every POST: a multipart POST gets `batchStatus`, a single message
 * 201 unless its text is in `refusedAlone`.
 */
function fakeClient(options: { batchStatus?: number; refusedAlone?: ReadonlySet<string>; ids?: 'each' | 'none' } = {}): MultipartIcomClient & { posts: string[][]; boundaries: string[] } {
  let next = 0;
  const posts: string[][] = [];
  const boundaries: string[] = [];
  return {
    postPath: '/api/v1/in/99999004/msgs',
    gzip: false,
    posts,
    boundaries,
    post(xml: string): Promise<IcomPosted> {
      posts.push([xml]);
      if (options.refusedAlone?.has(xml) === true) return Promise.reject(answerError('POST', answer(400)));
      next += 1;
      return Promise.resolve({ resourceId: `R${next}`, response: answer(201, { 'pi-resourceid': `R${next}` }) });
    },
    postMany(xmls: readonly string[], { boundary }: { boundary: string }): Promise<IcomPostedBatch> {
      posts.push([...xmls]);
      boundaries.push(boundary);
      const status = options.batchStatus ?? 201;
      if (status !== 201) return Promise.reject(answerError('POST', answer(status)));
      const ids = xmls.map(() => `R${(next += 1)}`);
      return Promise.resolve({ resourceIds: options.ids === 'none' ? [] : ids, response: answer(201, { 'pi-resourceid': ids.join(',') }) });
    },
  };
}

const messages = (n: number): string[] => Array.from({ length: n }, (_, i) => `<Envelope n="${i + 1}"/>`);

describe('MultipartIcomPort', () => {
  it('sends 10 messages posted together in ceil(10/4) = 3 POSTs, each message with its own PI-ResourceId', async () => {
    const client = fakeClient();
    const port = new MultipartIcomPort({ client, maxMessages: 4, lingerMs: 50 });
    const posted = await Promise.all(messages(10).map((xml) => port.post(xml)));
    expect(client.posts.map((p) => p.length)).toEqual([4, 4, 2]);
    expect(new Set(posted.map((p) => p.resourceId)).size).toBe(10);
    // Each message's audit names the multipart request that carried it.
    expect(exchangesOf(posted[0])?.[0]?.requestHeaders['content-type']).toBe(`multipart/mixed; boundary=${client.boundaries[0] ?? ''}`);
    expect(posted[9]?.resourceId).toBe('R10');
  });

  it('posts a message that finds no batch-mate alone, as application/xml', async () => {
    const client = fakeClient();
    const port = new MultipartIcomPort({ client, maxMessages: 10, lingerMs: 0 });
    const posted = await port.post('<Envelope/>');
    expect(client.boundaries).toEqual([]);
    expect(exchangesOf(posted)?.map((e) => e.requestHeaders['content-type'])).toEqual(['application/xml; charset=utf-8']);
  });

  it('gives each message of a POST answered 503 its own error, saying nothing was taken, with the exchange for its audit', async () => {
    const client = fakeClient({ batchStatus: 503 });
    const port = new MultipartIcomPort({ client, maxMessages: 3, lingerMs: 50 });
    const errors = await Promise.all(messages(3).map((xml) => port.post(xml).then(() => undefined, (error: unknown) => error)));
    expect(client.posts.map((p) => p.length)).toEqual([3]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(BcbUnavailableError);
      expect(error).toMatchObject({ code: 'BCB_SERVER_ERROR', delivery: 'not-sent', retryability: 'transient' });
      expect(exchangesOf(error)?.map((e) => e.response?.status)).toEqual([503]);
    }
    // Never one object shared: each handler adds its own audit records to the error it throws.
    expect(new Set(errors).size).toBe(3);
  });

  it('after a 4xx to the multipart POST posts each message alone, so that only the one the ICOM refuses is refused', async () => {
    const [good1 = '', bad = '', good2 = ''] = messages(3);
    const client = fakeClient({ batchStatus: 413, refusedAlone: new Set([bad]) });
    const port = new MultipartIcomPort({ client, maxMessages: 3, lingerMs: 50 });
    const [a, b, c] = await Promise.allSettled([good1, bad, good2].map((xml) => port.post(xml)));
    expect(client.posts.map((p) => p.length)).toEqual([3, 1, 1, 1]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { resourceId: expect.stringMatching(/^R/) as unknown } });
    expect(c).toMatchObject({ status: 'fulfilled' });
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'BCB_REQUEST_REJECTED', status: 400 } });
    // The refused batch and the message's own POST are both in its audit trail.
    expect(exchangesOf(b?.status === 'rejected' ? b.reason : undefined)?.map((e) => e.response?.status)).toEqual([413, 400]);
    expect(exchangesOf(a?.status === 'fulfilled' ? a.value : undefined)?.map((e) => e.response?.status)).toEqual([413, 201]);
  });

  it('treats a 201 without one PI-ResourceId per message as taken all the same (never resent)', async () => {
    const client = fakeClient({ ids: 'none' });
    const port = new MultipartIcomPort({ client, maxMessages: 2, lingerMs: 50 });
    const posted = await Promise.all(messages(2).map((xml) => port.post(xml)));
    expect(posted.map((p) => p.resourceId)).toEqual(['(none)', '(none)']);
    expect(client.posts).toHaveLength(1);
  });

  it('refuses a maximum outside 2 to 10 (the ICOM limit) naming the field', () => {
    expect(() => new MultipartIcomPort({ client: fakeClient(), maxMessages: 11 })).toThrow(/maxMessages must be an integer from 2 to 10.*got 11/);
    expect(() => new MultipartIcomPort({ client: fakeClient(), maxMessages: 1 })).toThrow(/maxMessages/);
  });
});

describe('transmit worker configuration', () => {
  const base = { SELO_ISPB: '99999004', SELO_BCB_URL: 'https://127.0.0.1:1', SELO_BCB_CA: 'ca.pem', SELO_TLS_CERT: 'c.pem', SELO_TLS_KEY: 'k.pem' };

  it('reads SELO_ICOM_MULTIPART_MAX, default 1 (one POST per message)', () => {
    expect(readTransmitWorkerConfig(base).icomMultipart).toEqual({ maxMessages: 1, lingerMs: 10 });
    expect(readTransmitWorkerConfig({ ...base, SELO_ICOM_MULTIPART_MAX: '10', SELO_ICOM_MULTIPART_LINGER_MS: '0' }).icomMultipart).toEqual({ maxMessages: 10, lingerMs: 0 });
  });

  it('stops at start on a SELO_ICOM_MULTIPART_MAX above the ICOM limit, naming the variable', () => {
    expect(() => readTransmitWorkerConfig({ ...base, SELO_ICOM_MULTIPART_MAX: '11' })).toThrow(ConfigError);
    expect(() => readTransmitWorkerConfig({ ...base, SELO_ICOM_MULTIPART_MAX: '11' })).toThrow(/SELO_ICOM_MULTIPART_MAX.*between 1 and 10, got 11/);
    expect(() => readTransmitWorkerConfig({ ...base, SELO_ICOM_MULTIPART_MAX: 'ten' })).toThrow(/SELO_ICOM_MULTIPART_MAX/);
  });
});
