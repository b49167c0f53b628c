import { createHash } from 'node:crypto';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PermanentError, isConditionalCheckFailure } from '../errors/index.ts';

/** Options of {@link BizMsgIndex}. */
export interface BizMsgIndexOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`); pointers share it under `BIZMSG#…` and `ECHODATA#…`. */
  tableName: string;
  /** The table's TTL attribute (topology `sagaTable.ttlAttribute`), epoch seconds. @defaultValue 'expiresAt' */
  ttlAttribute?: string;
  /** How long a pointer is kept: well past any answer the BCB sends about a message. @defaultValue 30 days */
  ttlSeconds?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

const SORT_KEY = 'POINTER';
const DEFAULT_TTL_SECONDS = 30 * 86_400;

/** A BizMsgIdr already points to another saga: never expected (MsgIds derive from the saga id). */
export class BizMsgIndexConflictError extends PermanentError {
  constructor(bizMsgIdr: string, existing: string, requested: string) {
    super('BIZMSG_INDEX_CONFLICT', `BizMsgIdr ${bizMsgIdr} already points to saga ${existing}, not ${requested}`, { details: { bizMsgIdr, existing, requested } });
  }
}

/**
 * Pointers from what the BCB quotes back to the saga of the message it is about, written by the
 * sign worker when it signs and read by the verify worker:
 *
 * - `BIZMSG#<BizMsgIdr>` → saga id: an admi.002 names the rejected message only by its BizMsgIdr
 *   (`RltdRef/Ref`), a camt.054 our camt.060 only by its MsgId. Not written for a pacs.008, whose
 *   BizMsgIdr derives from its EndToEndId (`paymentMessageId`; the verify worker derives it back),
 *   except when signed with a drawn id (`SELO_SIGN_LEGACY_MESSAGE_IDS`, or by older versions).
 * - `ECHODATA#<SHA-256 of Data>` → saga id: a pibr.002 quotes only the pibr.001's `Data`
 *   (`EchoTxInf/OrgnlData`), so an echo is found by its data; the latest echo with the same data
 *   wins (requesters should make the data unique, e.g. a counter or a timestamp).
 *
 * Items live in the saga table with sort key `POINTER` and no `state` attribute, so the `by-state`
 * index never lists them; they expire through the table's TTL attribute.
 */
export class BizMsgIndex {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #ttl: string;
  readonly #ttlSeconds: number;
  readonly #now: () => Date;

  constructor(options: BizMsgIndexOptions) {
    if (options.tableName === '') throw new RangeError('BizMsgIndexOptions.tableName must not be empty, got ""');
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`BizMsgIndexOptions.ttlSeconds must be a positive integer, got ${String(options.ttlSeconds)}`);
    this.#client = options.client;
    this.#table = options.tableName;
    this.#ttl = options.ttlAttribute ?? 'expiresAt';
    this.#ttlSeconds = ttlSeconds;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Records that `bizMsgIdr` belongs to `sagaId`. Writing the same pointer again is a no-op (a
   * redelivered request); a BizMsgIdr already pointing elsewhere is a {@link BizMsgIndexConflictError}.
   */
  async recordMessage(bizMsgIdr: string, sagaId: string): Promise<void> {
    const pk = `BIZMSG#${bizMsgIdr}`;
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: this.#item(pk, sagaId),
          ConditionExpression: 'attribute_not_exists(pk) OR sagaId = :sagaId',
          ExpressionAttributeValues: { ':sagaId': { S: sagaId } },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      throw new BizMsgIndexConflictError(bizMsgIdr, (await this.#read(pk)) ?? '(unknown)', sagaId);
    }
  }

  /** The saga of the message with this BizMsgIdr, if selo signed it. */
  async sagaOfMessage(bizMsgIdr: string): Promise<string | undefined> {
    return this.#read(`BIZMSG#${bizMsgIdr}`);
  }

  /** Records that the echo (pibr.001) with this `Data` belongs to `sagaId` (the latest echo wins). */
  async recordEcho(data: string, sagaId: string): Promise<void> {
    await this.#client.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(echoKey(data), sagaId) }));
  }

  /** The saga of the latest echo sent with this `Data`, if any (expired pointers count as absent). */
  async sagaOfEcho(data: string): Promise<string | undefined> {
    return this.#read(echoKey(data), { skipExpired: true });
  }

  #item(pk: string, sagaId: string): Record<string, { S: string } | { N: string }> {
    const expiresAt = Math.floor(this.#now().getTime() / 1000) + this.#ttlSeconds;
    return { pk: { S: pk }, sk: { S: SORT_KEY }, sagaId: { S: sagaId }, [this.#ttl]: { N: String(expiresAt) } };
  }

  async #read(pk: string, options: { skipExpired?: boolean } = {}): Promise<string | undefined> {
    const got = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: { pk: { S: pk }, sk: { S: SORT_KEY } }, ConsistentRead: true }));
    const sagaId = got.Item?.sagaId?.S;
    if (sagaId === undefined) return undefined;
    // DynamoDB deletes expired items only eventually, dynalite never (DESIGN §3).
    const expiresAt = Number(got.Item?.[this.#ttl]?.N ?? 'Infinity');
    if (options.skipExpired === true && expiresAt <= Math.floor(this.#now().getTime() / 1000)) return undefined;
    return sagaId;
  }
}

function echoKey(data: string): string {
  return `ECHODATA#${createHash('sha256').update(data, 'utf8').digest('hex')}`;
}
