import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BcbBodyInvalidError, BcbHttpClient, BcbUnavailableError, IcomStreamClient, IcomStreamError, MultipartError, buildMultipart } from '../../shared/bcb-client/index.ts';
import type { BcbRawRequestOptions, BcbRawResponse } from '../../shared/bcb-client/index.ts';
import { createTestPki } from '../support/test-pki.ts';
import type { TestPki } from '../support/test-pki.ts';

const ISPB = '99999004';
const NEXT = `/api/v1/out/${ISPB}/stream/abc-1`;

/** An http port that answers from a script and records the requests. */
function scripted(answers: BcbRawResponse[]): { http: { sendRaw: (method: 'GET' | 'DELETE', path: string, options: BcbRawRequestOptions) => Promise<BcbRawResponse> }; calls: { method: string; path: string; options: BcbRawRequestOptions }[] } {
  const calls: { method: string; path: string; options: BcbRawRequestOptions }[] = [];
  return {
    calls,
    http: {
      sendRaw(method, path, options) {
        calls.push({ method, path, options });
        const answer = answers.shift();
        return answer === undefined ? Promise.reject(new Error('no scripted answer')) : Promise.resolve(answer);
      },
    },
  };
}

function answer(status: number, headers: Record<string, string>, body: string | Buffer = ''): BcbRawResponse {
  const buffer = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { status, headers, body: buffer, encodedBytes: buffer.length };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code ?? 'none';
  }
  return 'resolved';
}

describe('IcomStreamClient', () => {
  it('opens a stream at stream/start asking for multipart, and answers 204 with its PI-Pull-Next', async () => {
    const { http, calls } = scripted([answer(204, { 'pi-pull-next': NEXT })]);
    const got = await new IcomStreamClient({ http, ispb: ISPB }).start();
    expect(got).toMatchObject({ status: 204, pullNext: NEXT, messages: [] });
    expect(calls[0]).toMatchObject({ method: 'GET', path: `/api/v1/out/${ISPB}/stream/start` });
    expect(calls[0]?.options.headers?.accept).toContain('multipart/mixed');
  });

  it('reads the stream of an ISPB with letters (ISPBType [0-9A-Z]{8}) and refuses one that is not an ISPB', async () => {
    const { http, calls } = scripted([answer(204, { 'pi-pull-next': '/api/v1/out/99999A04/stream/abc-1' })]);
    await new IcomStreamClient({ http, ispb: '99999A04' }).start();
    expect(calls[0]?.path).toBe('/api/v1/out/99999A04/stream/start');
    expect(() => new IcomStreamClient({ http, ispb: '9999a04' })).toThrow(/ispb must be an ISPB/);
  });

  it('reads one application/xml message with its PI-ResourceId, bytes untouched', async () => {
    const xml = '<?xml version="1.0" encoding="UTF-8"?><Envelope>ação</Envelope>\r\n';
    const { http } = scripted([answer(200, { 'pi-pull-next': NEXT, 'content-type': 'application/xml; charset=utf-8', 'pi-resourceid': 'r1' }, xml)]);
    const got = await new IcomStreamClient({ http, ispb: ISPB, multipart: false }).next(NEXT);
    expect(got.messages).toHaveLength(1);
    expect(got.messages[0]).toMatchObject({ resourceId: 'r1', contentType: 'application/xml; charset=utf-8' });
    expect(got.messages[0]?.body.equals(Buffer.from(xml, 'utf8'))).toBe(true);
    expect(got.exchange).toMatchObject({ method: 'GET', path: NEXT });
  });

  it('splits a multipart/mixed answer into messages, each with its part PI-ResourceId', async () => {
    const built = buildMultipart([
      { headers: { 'Content-Type': 'application/xml; charset=utf-8', 'PI-ResourceId': 'a' }, body: '<A/>' },
      { headers: { 'Content-Type': 'application/xml; charset=utf-8', 'PI-ResourceId': 'b' }, body: '<B>\r\n--not-a-boundary\r\n</B>' },
    ]);
    const { http } = scripted([answer(200, { 'pi-pull-next': NEXT, 'content-type': `multipart/mixed; boundary=${built.boundary}` }, built.body)]);
    const got = await new IcomStreamClient({ http, ispb: ISPB }).next(NEXT);
    expect(got.messages.map((m) => [m.resourceId, m.body.toString('utf8')])).toEqual([['a', '<A/>'], ['b', '<B>\r\n--not-a-boundary\r\n</B>']]);
  });

  it('refuses answers that break the protocol, with typed codes', async () => {
    const client = (a: BcbRawResponse): IcomStreamClient => new IcomStreamClient({ http: scripted([a]).http, ispb: ISPB });
    expect(await codeOf(client(answer(204, {})).start())).toBe('ICOM_STREAM_ANSWER_INVALID');
    expect(await codeOf(client(answer(204, { 'pi-pull-next': '/api/v1/out/12345678/stream/x-1' })).start())).toBe('ICOM_STREAM_ANSWER_INVALID');
    expect(await codeOf(client(answer(200, { 'pi-pull-next': NEXT, 'content-type': 'application/xml' }, '<A/>')).start())).toBe('ICOM_STREAM_ANSWER_INVALID');
    expect(await codeOf(client(answer(200, { 'pi-pull-next': NEXT, 'content-type': 'text/plain', 'pi-resourceid': 'x' }, 'hi')).start())).toBe('ICOM_STREAM_ANSWER_INVALID');
    const noId = buildMultipart([{ headers: { 'Content-Type': 'application/xml' }, body: '<A/>' }]);
    expect(await codeOf(client(answer(200, { 'pi-pull-next': NEXT, 'content-type': `multipart/mixed; boundary=${noId.boundary}` }, noId.body)).start())).toBe('ICOM_STREAM_ANSWER_INVALID');
    const broken = client(answer(200, { 'pi-pull-next': NEXT, 'content-type': 'multipart/mixed; boundary=zz' }, '--zz\r\nContent-Type: application/xml\r\n\r\n<A/>'));
    await expect(broken.start()).rejects.toBeInstanceOf(MultipartError);
  });

  it('will not follow a PI-Pull-Next outside its own stream', async () => {
    const client = new IcomStreamClient({ http: scripted([]).http, ispb: ISPB });
    expect(await codeOf(client.next('/api/v1/in/99999004/msgs'))).toBe('ICOM_STREAM_ANSWER_INVALID');
    expect(await codeOf(client.next(`/api/v1/out/${ISPB}/stream/../../in/msgs`))).toBe('ICOM_STREAM_ANSWER_INVALID');
    expect(await codeOf(client.close('https://elsewhere/api'))).toBe('ICOM_STREAM_ANSWER_INVALID');
  });

  it('classifies 429 (with Retry-After), 5xx, an expired stream and other 4xx', async () => {
    const client = (a: BcbRawResponse): IcomStreamClient => new IcomStreamClient({ http: scripted([a]).http, ispb: ISPB });
    const throttled = await client(answer(429, { 'retry-after': '2' })).start().catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(IcomStreamError);
    expect(throttled).toMatchObject({ code: 'ICOM_STREAM_THROTTLED', status: 429, retryAfterMs: 2000, retryability: 'transient' });
    expect(await codeOf(client(answer(503, {})).start())).toBe('ICOM_STREAM_UNAVAILABLE');
    expect(await codeOf(client(answer(404, {})).next(NEXT))).toBe('ICOM_STREAM_EXPIRED');
    expect(await codeOf(client(answer(404, {})).start())).toBe('ICOM_STREAM_REFUSED');
    expect(await codeOf(client(answer(403, {})).start())).toBe('ICOM_STREAM_REFUSED');
  });

  it('closes with DELETE on the PI-Pull-Next path; 410 (the stream already gone) is closed too', async () => {
    const { http, calls } = scripted([answer(200, {}), answer(410, {}), answer(409, {})]);
    const client = new IcomStreamClient({ http, ispb: ISPB });
    await client.close(NEXT);
    expect(calls[0]).toMatchObject({ method: 'DELETE', path: NEXT });
    await expect(client.close(NEXT)).resolves.toBeUndefined();
    expect(await codeOf(client.close(NEXT))).toBe('ICOM_STREAM_REFUSED');
  });
});

describe('BcbHttpClient.sendRaw', () => {
  let pki: TestPki;
  let server: Server;
  let origin: string;
  let client: BcbHttpClient;
  const seen: { acceptEncoding: string | undefined }[] = [];
  const xml = Buffer.from(`<Envelope>${'x'.repeat(5000)}</Envelope>`, 'utf8');

  beforeAll(async () => {
    pki = createTestPki({ asciiNames: true });
    const leaf = pki.issue('localhost');
    server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
      seen.push({ acceptEncoding: req.headers['accept-encoding'] });
      if (req.url === '/gzip') {
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/xml' }).end(gzipSync(xml));
      } else if (req.url === '/bad-gzip') {
        res.writeHead(200, { 'content-encoding': 'gzip' }).end(Buffer.from('not gzip at all'));
      } else if (req.url === '/br') {
        res.writeHead(200, { 'content-encoding': 'br' }).end('x');
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/xml' }).end(xml);
      } else if (req.url === '/hang') {
        // Never answers: only the caller's abort ends the request.
      } else {
        res.writeHead(204).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
    client = new BcbHttpClient({ origin, tls: { ca: pki.ca.certPem }, headersTimeoutMs: 5_000 });
  });

  afterAll(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    pki.dispose();
  });

  it('asks for gzip and returns the decoded bytes', async () => {
    const got = await client.sendRaw('GET', '/gzip', { maxBodyBytes: 1_000_000 });
    expect(got.status).toBe(200);
    expect(got.body.equals(xml)).toBe(true);
    expect(got.encodedBytes).toBeLessThan(xml.length);
    expect(got.headers['content-encoding']).toBe('gzip');
    expect(seen.at(-1)?.acceptEncoding).toBe('gzip');
  });

  it('refuses a body that does not decode or uses another encoding: BCB_BODY_INVALID', async () => {
    await expect(client.sendRaw('GET', '/bad-gzip', { maxBodyBytes: 1_000_000 })).rejects.toMatchObject({ code: 'BCB_BODY_INVALID' });
    await expect(client.sendRaw('GET', '/br', { maxBodyBytes: 1_000_000 })).rejects.toBeInstanceOf(BcbBodyInvalidError);
  });

  it('bounds the body on the wire and after decompression: BCB_BODY_TOO_LARGE', async () => {
    await expect(client.sendRaw('GET', '/big', { maxBodyBytes: 1_000 })).rejects.toMatchObject({ code: 'BCB_BODY_TOO_LARGE' });
    // The compressed body is small; the decompressed one is not.
    await expect(client.sendRaw('GET', '/gzip', { maxBodyBytes: 1_000 })).rejects.toMatchObject({ code: 'BCB_BODY_TOO_LARGE' });
  });

  it('gives up a request when its signal aborts', async () => {
    const abort = new AbortController();
    const pending = client.sendRaw('GET', '/hang', { maxBodyBytes: 1_000, signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await expect(pending).rejects.toBeInstanceOf(BcbUnavailableError);
  });
});
