import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClaimCheckReference } from '../../shared/claim-check/index.ts';
import { TransientError } from '../../shared/errors/index.ts';

/** A message to quarantine: its exact raw bytes and why. */
export interface QuarantineEntry {
  /** Object key, from {@link quarantineKey}. */
  key: string;
  /** The raw message exactly as received. */
  body: string;
  /** Stable reason code (`XMLDSIG_DIGEST_MISMATCH`, `XML_DTD_FORBIDDEN`, …). */
  code: string;
  /** Why, for operators. */
  reason: string;
  /** Further facts kept with the object (channel, saga id, resource id). */
  facts: Readonly<Record<string, string>>;
}

/** Where messages that failed verification are kept, never acted on. */
export interface QuarantinePort {
  put(entry: QuarantineEntry): Promise<ClaimCheckReference>;
}

/**
 * `<folder>/<yyyy>/<mm>/<dd>/<name>.xml` (UTC), `name` reduced to characters safe in any S3
 * client and console (`[A-Za-z0-9._-]`, others become `_`). `quarantine/` holds what failed
 * verification; `unsupported/` verified messages of a type selo does not handle yet.
 */
export function quarantineKey(at: Date, name: string, folder: 'quarantine' | 'unsupported' = 'quarantine'): string {
  const iso = at.toISOString();
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200) || 'message';
  return `${folder}/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${safe}.xml`;
}

/** S3 user metadata is US-ASCII and at most 2 KB in all (S3 "Object metadata"). */
function metadataValue(value: string, max: number): string {
  return value.replace(/[^\x20-\x7E]/g, '?').slice(0, max);
}

/**
 * The quarantine in the payload bucket: the raw bytes as the object, the reason in its user
 * metadata (`selo-reason-code`, `selo-reason`, and one `selo-<fact>` per fact).
 */
export class S3Quarantine implements QuarantinePort {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(options: { client: S3Client; bucket: string }) {
    if (options.bucket === '') throw new RangeError('S3Quarantine bucket must not be empty, got ""');
    this.#client = options.client;
    this.#bucket = options.bucket;
  }

  async put(entry: QuarantineEntry): Promise<ClaimCheckReference> {
    const metadata: Record<string, string> = { 'selo-reason-code': metadataValue(entry.code, 64), 'selo-reason': metadataValue(entry.reason, 1024) };
    for (const [name, value] of Object.entries(entry.facts)) metadata[`selo-${name.toLowerCase()}`] = metadataValue(value, 200);
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: entry.key, Body: entry.body, ContentType: 'application/xml', Metadata: metadata }));
    } catch (error) {
      throw new TransientError('QUARANTINE_PUT_FAILED', `could not quarantine the message in s3://${this.#bucket}/${entry.key}`, { cause: error });
    }
    return { bucket: this.#bucket, key: entry.key };
  }
}
