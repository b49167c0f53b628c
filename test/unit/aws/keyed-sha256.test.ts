import { createHash, createHmac } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { createAwsClients, KeyedSha256 } from '../../../shared/aws/index.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): string => createHmac('sha256', key).update(data).digest('hex');

async function digestOf(secret: string | Uint8Array | ArrayBuffer | undefined, ...chunks: (string | Uint8Array)[]): Promise<string> {
  const hash = new KeyedSha256(secret);
  for (const chunk of chunks) hash.update(chunk);
  return hex(await hash.digest());
}

describe('KeyedSha256', () => {
  it('hashes like SHA-256 without a secret, and with an empty string as one (as the SDK does)', async () => {
    expect(await digestOf(undefined, 'abc', new TextEncoder().encode('déf'))).toBe(sha256('abcdéf'));
    expect(await digestOf('', 'abc')).toBe(sha256('abc'));
  });

  it('computes HMAC-SHA-256 with a string key, a byte key, a key inside a larger buffer and an empty byte key', async () => {
    expect(await digestOf('AWS4secret', '20261208')).toBe(hmac('AWS4secret', '20261208'));
    const key = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    expect(await digestOf(new Uint8Array(key), 'string to sign')).toBe(hmac(key, 'string to sign'));
    const larger = Buffer.concat([Buffer.from('xx'), key, Buffer.from('yy')]);
    expect(await digestOf(larger.subarray(2, 2 + key.length), 'string to sign')).toBe(hmac(key, 'string to sign'));
    expect(await digestOf(new Uint8Array(0), 'data')).toBe(hmac(Buffer.alloc(0), 'data'));
  });

  it('keeps keys apart: each of 200 byte keys signs with itself, the same bytes reused for another key included', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => createHash('sha256').update(`key ${i}`).digest());
    const reused = new Uint8Array(32);
    for (const [i, key] of keys.entries()) {
      expect(await digestOf(new Uint8Array(key), `data ${i}`)).toBe(hmac(key, `data ${i}`));
      reused.set(key);
      expect(await digestOf(reused, `again ${i}`)).toBe(hmac(key, `again ${i}`));
    }
  });

  it('takes a key as an ArrayBuffer and treats null as no key, as the SDK does', async () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const buffer = key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength);
    expect(await digestOf(buffer, 'x')).toBe(hmac(key, 'x'));
    const plain = new KeyedSha256(null);
    plain.update('x');
    expect(hex(await plain.digest())).toBe(sha256('x'));
  });

  it('refuses data after an HMAC digest, lets a plain hash go on, and starts over on reset', async () => {
    const mac = new KeyedSha256('k');
    mac.update('a');
    expect(hex(await mac.digest())).toBe(hmac('k', 'a'));
    expect(() => mac.update('b')).toThrow(/already finished/);
    mac.reset();
    mac.update('b');
    expect(hex(await mac.digest())).toBe(hmac('k', 'b'));

    const plain = new KeyedSha256();
    plain.update('a');
    expect(hex(await plain.digest())).toBe(sha256('a'));
    plain.update('b');
    expect(hex(await plain.digest())).toBe(sha256('ab'));
    plain.reset();
    plain.update('c');
    expect(hex(await plain.digest())).toBe(sha256('c'));
  });

  it('is the hash every client selo builds signs with, locally and for AWS', () => {
    for (const endpoints of [{}, { sqs: 'http://127.0.0.1:1', s3: 'http://127.0.0.1:1', events: 'http://127.0.0.1:1', kinesis: 'http://127.0.0.1:1', dynamodb: 'http://127.0.0.1:1' }]) {
      const clients = createAwsClients({ region: 'sa-east-1', accountId: '000000000000', endpoints });
      try {
        for (const client of [clients.sqs, clients.s3, clients.events, clients.kinesis, clients.dynamodb]) expect(client.config.sha256).toBe(KeyedSha256);
      } finally {
        clients.destroy();
      }
    }
    // The SDK's default, for contrast: the setting is what makes the difference.
    expect(new DynamoDBClient({ region: 'sa-east-1' }).config.sha256).not.toBe(KeyedSha256);
  });
});
