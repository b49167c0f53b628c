import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { PermanentError, TransientError } from '../errors/index.ts';

/** Where a payload too large for an event was put. */
export interface ClaimCheckReference {
  bucket: string;
  key: string;
}

/**
 * EventBridge refuses entries over 256 KB (PutEvents quota). A payload over this many bytes goes
 * to S3 and the event carries a {@link ClaimCheckReference}; the margin leaves room for the
 * detail's other fields and JSON escaping.
 */
export const CLAIM_CHECK_THRESHOLD_BYTES = 128 * 1024;

/** Puts and gets claim-checked payloads. */
export interface ClaimCheckStore {
  put(key: string, body: string): Promise<ClaimCheckReference>;
  get(reference: ClaimCheckReference): Promise<string>;
}

/** A {@link ClaimCheckStore} on S3 (the topology's payload bucket). */
export class S3ClaimCheckStore implements ClaimCheckStore {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(options: { client: S3Client; bucket: string }) {
    this.#client = options.client;
    this.#bucket = options.bucket;
  }

  async put(key: string, body: string): Promise<ClaimCheckReference> {
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: 'application/xml' }));
    } catch (error) {
      throw new TransientError('CLAIM_CHECK_PUT_FAILED', `could not store the payload in s3://${this.#bucket}/${key}`, { cause: error });
    }
    return { bucket: this.#bucket, key };
  }

  async get(reference: ClaimCheckReference): Promise<string> {
    let response;
    try {
      response = await this.#client.send(new GetObjectCommand({ Bucket: reference.bucket, Key: reference.key }));
    } catch (error) {
      if (error instanceof Error && error.name === 'NoSuchKey') {
        throw new PermanentError('CLAIM_CHECK_MISSING', `the payload s3://${reference.bucket}/${reference.key} does not exist`, { cause: error });
      }
      throw new TransientError('CLAIM_CHECK_GET_FAILED', `could not read s3://${reference.bucket}/${reference.key}`, { cause: error });
    }
    return (await response.Body?.transformToString('utf8')) ?? '';
  }
}
