import { BatchGetItemCommand, BatchWriteItemCommand, DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { isConditionalCheckFailure } from '../errors/index.ts';
import type { AttributeValue, BatchGetItemCommandOutput, BatchWriteItemCommandOutput, DynamoDBClient, KeysAndAttributes, WriteRequest } from '@aws-sdk/client-dynamodb';

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

/** DynamoDB's limits: keys per BatchGetItem, requests per BatchWriteItem. */
const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
/** Rounds a batch request is repeated for what DynamoDB left unprocessed (throttling) before giving up. */
const UNPROCESSED_ROUNDS = 5;

/** Thrown when DynamoDB leaves part of a batch unprocessed round after round. */
export class DedupeBatchIncompleteError extends Error {
  readonly code = 'DEDUPE_BATCH_INCOMPLETE';
  constructor(operation: string, left: number) {
    super(`${operation}: ${left} key(s) still unprocessed after ${UNPROCESSED_ROUNDS} rounds`);
    this.name = 'DedupeBatchIncompleteError';
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

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
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
    const nowSeconds = Math.floor(this.#now().getTime() / 1000);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: { pk: { S: `DEDUPE#${key}` }, sk: { S: SORT_KEY }, [this.#ttl]: { N: String(nowSeconds + ttlSeconds) } },
          ConditionExpression: 'attribute_not_exists(pk) OR #ttl <= :now',
          ExpressionAttributeNames: { '#ttl': this.#ttl },
          ExpressionAttributeValues: { ':now': { N: String(nowSeconds) } },
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
      new GetItemCommand({ TableName: this.#table, Key: { pk: { S: `DEDUPE#${key}` }, sk: { S: SORT_KEY } }, ConsistentRead: true }),
    );
    const expiresAt = got.Item?.[this.#ttl]?.N;
    return expiresAt !== undefined && Number(expiresAt) > Math.floor(this.#now().getTime() / 1000);
  }

  /**
   * The keys among `keys` that have an unexpired marker, read in one BatchGetItem per 100 keys
   * (strongly consistent) instead of one GetItem each.
   */
  async claimedAmong(keys: readonly string[]): Promise<Set<string>> {
    const claimed = new Set<string>();
    const nowSeconds = Math.floor(this.#now().getTime() / 1000);
    for (const chunk of chunks([...new Set(keys)], BATCH_GET_LIMIT)) {
      let request: KeysAndAttributes | undefined = { Keys: chunk.map((key) => this.#key(key)), ConsistentRead: true };
      for (let round = 1; request !== undefined; round += 1) {
        if (round > UNPROCESSED_ROUNDS) throw new DedupeBatchIncompleteError('BatchGetItem', request.Keys?.length ?? 0);
        const got: BatchGetItemCommandOutput = await this.#client.send(new BatchGetItemCommand({ RequestItems: { [this.#table]: request } }));
        for (const item of got.Responses?.[this.#table] ?? []) {
          const expiresAt = item[this.#ttl]?.N;
          const pk = item.pk?.S;
          if (pk !== undefined && expiresAt !== undefined && Number(expiresAt) > nowSeconds) claimed.add(pk.slice('DEDUPE#'.length));
        }
        request = got.UnprocessedKeys?.[this.#table];
        if (request?.Keys?.length === 0) request = undefined;
      }
    }
    return claimed;
  }

  /**
   * Writes a marker for each of `keys` for `ttlSeconds`, unconditionally (whoever wrote first does
   * not matter to the caller), in one BatchWriteItem per 25 keys instead of one PutItem each.
   */
  async markAll(keys: readonly string[], ttlSeconds: number): Promise<void> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
    const expiresAt = String(Math.floor(this.#now().getTime() / 1000) + ttlSeconds);
    for (const chunk of chunks([...new Set(keys)], BATCH_WRITE_LIMIT)) {
      let requests: WriteRequest[] | undefined = chunk.map((key) => ({ PutRequest: { Item: { ...this.#key(key), [this.#ttl]: { N: expiresAt } } } }));
      for (let round = 1; requests !== undefined && requests.length > 0; round += 1) {
        if (round > UNPROCESSED_ROUNDS) throw new DedupeBatchIncompleteError('BatchWriteItem', requests.length);
        const written: BatchWriteItemCommandOutput = await this.#client.send(new BatchWriteItemCommand({ RequestItems: { [this.#table]: requests } }));
        requests = written.UnprocessedItems?.[this.#table];
      }
    }
  }

  #key(key: string): Record<string, AttributeValue> {
    return { pk: { S: `DEDUPE#${key}` }, sk: { S: SORT_KEY } };
  }

  /** Removes a marker (a claim that turned out not to be needed); removing an absent one is fine. */
  async release(key: string): Promise<void> {
    await this.#client.send(new DeleteItemCommand({ TableName: this.#table, Key: { pk: { S: `DEDUPE#${key}` }, sk: { S: SORT_KEY } } }));
  }
}
