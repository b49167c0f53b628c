import { DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { isConditionalCheckFailure } from '../errors/index.ts';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** Options of {@link DedupeStore}. */
export interface DedupeStoreOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`); markers share it under `DEDUPE#…`. */
  tableName: string;
  /** The table's TTL attribute (topology `sagaTable.ttlAttribute`), epoch seconds. @defaultValue 'expiresAt' */
  ttlAttribute?: string;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

const SORT_KEY = 'MARKER';

/**
 * Seen-before markers (e.g. ICOM `PI-ResourceId`s already handled, which the stream may deliver
 * twice): a conditional put of an item that expires. DynamoDB deletes expired items only
 * eventually and dynalite not at all (DESIGN §3), so an expired marker counts as absent on every
 * read and may be claimed again.
 */
export class DedupeStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #ttl: string;
  readonly #now: () => Date;

  constructor(options: DedupeStoreOptions) {
    if (options.tableName === '') throw new RangeError('DedupeStoreOptions.tableName must not be empty, got ""');
    this.#client = options.client;
    this.#table = options.tableName;
    this.#ttl = options.ttlAttribute ?? 'expiresAt';
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Claims `key` for `ttlSeconds`. True when this caller is the first (or the earlier marker had
   * expired); false when an unexpired marker exists.
   */
  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    return this.#put(key, ttlSeconds, undefined);
  }

  /**
   * Claims `key` for `holder` for `ttlSeconds`. True when the marker is `holder`'s: claimed now
   * (absent or expired before) or already `holder`'s (a redelivery of the same holder's work,
   * which then renews it); false when another holder's unexpired marker exists.
   */
  async claimAs(key: string, holder: string, ttlSeconds: number): Promise<boolean> {
    if (holder === '') throw new RangeError('holder must not be empty, got ""');
    return this.#put(key, ttlSeconds, holder);
  }

  /** The conditional put behind {@link claim} (no holder) and {@link claimAs}. */
  async #put(key: string, ttlSeconds: number, holder: string | undefined): Promise<boolean> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
    const nowSeconds = Math.floor(this.#now().getTime() / 1000);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: { ...this.#key(key), ...(holder === undefined ? {} : { holder: { S: holder } }), [this.#ttl]: { N: String(nowSeconds + ttlSeconds) } },
          ConditionExpression: holder === undefined ? 'attribute_not_exists(pk) OR #ttl <= :now' : 'attribute_not_exists(pk) OR #ttl <= :now OR holder = :holder',
          ExpressionAttributeNames: { '#ttl': this.#ttl },
          ExpressionAttributeValues: { ':now': { N: String(nowSeconds) }, ...(holder === undefined ? {} : { ':holder': { S: holder } }) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  /** Whether an unexpired marker for `key` exists. */
  async isClaimed(key: string): Promise<boolean> {
    const got = await this.#client.send(
      new GetItemCommand({ TableName: this.#table, Key: this.#key(key), ConsistentRead: true }),
    );
    const expiresAt = got.Item?.[this.#ttl]?.N;
    return expiresAt !== undefined && Number(expiresAt) > Math.floor(this.#now().getTime() / 1000);
  }

  #key(key: string): Record<string, AttributeValue> {
    return { pk: { S: `DEDUPE#${key}` }, sk: { S: SORT_KEY } };
  }

  /** Removes a marker (a claim that turned out not to be needed); removing an absent one is fine. */
  async release(key: string): Promise<void> {
    await this.#client.send(new DeleteItemCommand({ TableName: this.#table, Key: this.#key(key) }));
  }
}
