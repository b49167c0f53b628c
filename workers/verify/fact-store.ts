import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** Options of {@link FactStore}. */
export interface FactStoreOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`); facts share it under `FACT#…`. */
  tableName: string;
  /** The table's TTL attribute, epoch seconds. @defaultValue 'expiresAt' */
  ttlAttribute?: string;
  /** How long a fact is remembered: well past any redelivery or stream duplicate. @defaultValue 30 days */
  ttlSeconds?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/**
 * What a claim found: `first` (this source is the first to report the fact), `same-source` (the
 * same message again: a redelivery, publish the same fact again), `other-source` (another
 * message reported it first: a duplicate, do not act again).
 */
export type FactClaim = 'first' | 'same-source' | 'other-source';

const SORT_KEY = 'FACT';

/**
 * Facts without a saga of ours (a payment to one of our customers, its ACCC, a return): the first
 * message (by `PI-ResourceId`) that reports one is remembered with a conditional put, so a
 * duplicate from another resource is told apart from a redelivery of the same one.
 */
export class FactStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #ttl: string;
  readonly #ttlSeconds: number;
  readonly #now: () => Date;

  constructor(options: FactStoreOptions) {
    if (options.tableName === '') throw new RangeError('FactStoreOptions.tableName must not be empty, got ""');
    const ttlSeconds = options.ttlSeconds ?? 30 * 86_400;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`FactStoreOptions.ttlSeconds must be a positive integer, got ${String(options.ttlSeconds)}`);
    this.#client = options.client;
    this.#table = options.tableName;
    this.#ttl = options.ttlAttribute ?? 'expiresAt';
    this.#ttlSeconds = ttlSeconds;
    this.#now = options.now ?? (() => new Date());
  }

  /** Claims `fact` (e.g. `ACCC#<EndToEndId>`) for `source` (a `PI-ResourceId`). */
  async claim(fact: string, source: string): Promise<FactClaim> {
    const key = { pk: { S: `FACT#${fact}` }, sk: { S: SORT_KEY } };
    const expiresAt = Math.floor(this.#now().getTime() / 1000) + this.#ttlSeconds;
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: { ...key, source: { S: source }, [this.#ttl]: { N: String(expiresAt) } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return 'first';
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
    const got = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: key, ConsistentRead: true }));
    return got.Item?.source?.S === source ? 'same-source' : 'other-source';
  }
}
