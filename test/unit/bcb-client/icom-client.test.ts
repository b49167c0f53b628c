import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { IcomClient, retryAfterSeconds } from '../../../shared/bcb-client/index.ts';
import type { BcbHttpClient, BcbResponse } from '../../../shared/bcb-client/index.ts';

interface Sent {
  method: string;
  path: string;
  body: Buffer;
  headers: Readonly<Record<string, string>>;
}

/** A BcbHttpClient stand-in that records what was sent and answers 201. */
function fakeHttp(sent: Sent[]): BcbHttpClient {
  const fake = {
    send(method: string, path: string, body: string | Buffer, headers: Readonly<Record<string, string>>): Promise<BcbResponse> {
      sent.push({ method, path, body: Buffer.from(body), headers });
      return Promise.resolve({ status: 201, headers: { 'pi-resourceid': 'abc' }, body: '' });
    },
  };
  return fake as unknown as BcbHttpClient;
}

describe('IcomClient', () => {
  it('compresses the POST body and says Content-Encoding: gzip when gzip is on', async () => {
    const sent: Sent[] = [];
    await new IcomClient({ http: fakeHttp(sent), ispb: '99999004', gzip: true }).post('<Envelope>é</Envelope>');
    expect(sent[0]?.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(sent[0]?.body ?? Buffer.alloc(0)).toString('utf8')).toBe('<Envelope>é</Envelope>');
  });

  it('sends the body as is, without Content-Encoding, by default', async () => {
    const sent: Sent[] = [];
    await new IcomClient({ http: fakeHttp(sent), ispb: '99999004' }).post('<Envelope/>');
    expect(sent[0]?.headers['content-encoding']).toBeUndefined();
    expect(sent[0]?.body.toString('utf8')).toBe('<Envelope/>');
  });

  it('reads Retry-After as delay-seconds or as an HTTP-date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterSeconds('7', now)).toBe(7);
    expect(retryAfterSeconds('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds(undefined, now)).toBeUndefined();
  });
});
