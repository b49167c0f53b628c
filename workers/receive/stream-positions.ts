import { randomUUID } from 'node:crypto';
import { DeleteItemCommand, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PermanentError, isConditionalCheckFailure } from '../../shared/errors/index.ts';
import { ISPB_PATTERN } from '../../shared/iso20022/index.ts';

/** Stream slots per participant: the ICOM limit of 6 parallel reads (DESIGN §2). */
export const STREAM_SLOTS = 6;

/** What {@link StreamPositionPort.claim} found. */
export type SlotClaim =
  /** The slot is this process's now; `pullNext` is the position its last owner saved, if any. */
  | { status: 'claimed'; pullNext: string | undefined }
  /** Another live process holds the slot until `until` (epoch ms). */
  | { status: 'held'; until: number };

/**
 * Durable stream positions with leases: one slot per parallel stream. A process claims a slot
 * before it reads, saves the slot's position (the `PI-Pull-Next` to GET next) once the answer
 * before it is durable, renews its lease while it reads, and releases the slot at close.
 */
export interface StreamPositionPort {
  /** How long a claim, save or renewal holds a slot, ms; the reader renews a slot nothing extended for a third of it. */
  readonly leaseMs: number;
  /** Claims `slot` when it is free, its lease expired, or it is already this process's. */
  claim(slot: number): Promise<SlotClaim>;
  /** Saves `pullNext` as `slot`'s position and renews the lease. @throws StreamLeaseLostError when the slot is no longer this process's */
  save(slot: number, pullNext: string): Promise<void>;
  /** Extends the lease of `slot`. @throws StreamLeaseLostError when the slot is no longer this process's */
  renew(slot: number): Promise<void>;
  /**
   * Gives `slot` up. `closed`: its stream was DELETEd, the position is forgotten; otherwise the
   * position stays for the next owner to resume and only the lease ends. Never throws for a slot
   * that is already someone else's.
   */
  release(slot: number, closed: boolean): Promise<void>;
}

/** The slot's lease passed to another process: stop reading its stream, do not DELETE it. */
export class StreamLeaseLostError extends PermanentError {
  constructor(slot: number) {
    super('STREAM_LEASE_LOST', `stream slot ${slot} is held by another process now`, { details: { slot } });
  }
}

/** Options of {@link DynamoStreamPositions}. */
export interface DynamoStreamPositionsOptions {
  client: DynamoDBClient;
  /** The saga table (topology `sagaTable.name`); positions share it under `STREAM#<ispb>`. */
  tableName: string;
  /** The participant whose stream is read (8 digits). */
  ispb: string;
  /** This process's identity in the leases. @defaultValue a random UUID */
  owner?: string;
  /**
   * Lease length, ms. A crashed owner's slots can be claimed this long after its last renewal, so
   * it must stay well under the BCB's expiry of an abandoned stream (the simulator's
   * `streamIdleTimeoutMs`, 30 s by default), or the positions are gone when the leases end.
   * @defaultValue 3000
   */
  leaseMs?: number;
  /** The table's TTL attribute (topology `sagaTable.ttlAttribute`), epoch seconds. @defaultValue 'expiresAt' */
  ttlAttribute?: string;
  /** Lifetime of a slot item nobody touches (housekeeping only: a stale position answers 404), seconds. @defaultValue 86400 */
  itemTtlSeconds?: number;
  /** Clock. @defaultValue Date.now */
  now?: () => number;
}

/**
 * {@link StreamPositionPort} in the saga table. One item per slot: `pk = STREAM#<ispb>`,
 * `sk = SLOT#<n>` (no saga key starts with `STREAM#`), attributes `pullNext`, `owner`,
 * `leaseUntil` (epoch ms), `savedAt` and the table's TTL attribute; no `state` attribute, so the
 * items stay out of the sagas' by-state index. Every write is conditional: a claim succeeds only
 * when the item is absent, its lease ended or it is already ours; a save, renewal or release only
 * while the item is ours. So two processes never read one stream at once, and a process whose
 * lease passed (a long pause) learns it at its next save, before it follows `PI-Pull-Next` again.
 * Leases compare wall clocks of different processes: clock skew shortens or lengthens them.
 */
export class DynamoStreamPositions implements StreamPositionPort {
  readonly leaseMs: number;
  readonly owner: string;
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #ttl: string;
  readonly #itemTtlSeconds: number;
  readonly #now: () => number;

  constructor(options: DynamoStreamPositionsOptions) {
    if (options.tableName === '') throw new RangeError('DynamoStreamPositionsOptions.tableName must not be empty, got ""');
    if (!ISPB_PATTERN.test(options.ispb)) throw new RangeError(`DynamoStreamPositionsOptions.ispb must be an ISPB (8 characters [0-9A-Z]), got ${JSON.stringify(options.ispb)}`);
    const leaseMs = options.leaseMs ?? 3_000;
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 300) throw new RangeError(`DynamoStreamPositionsOptions.leaseMs must be an integer of at least 300, got ${String(options.leaseMs)}`);
    const itemTtl = options.itemTtlSeconds ?? 86_400;
    if (!Number.isSafeInteger(itemTtl) || itemTtl < 60) throw new RangeError(`DynamoStreamPositionsOptions.itemTtlSeconds must be an integer of at least 60, got ${String(options.itemTtlSeconds)}`);
    if (options.owner === '') throw new RangeError('DynamoStreamPositionsOptions.owner must not be empty, got ""');
    this.leaseMs = leaseMs;
    this.owner = options.owner ?? randomUUID();
    this.#client = options.client;
    this.#table = options.tableName;
    this.#pk = `STREAM#${options.ispb}`;
    this.#ttl = options.ttlAttribute ?? 'expiresAt';
    this.#itemTtlSeconds = itemTtl;
    this.#now = options.now ?? Date.now;
  }

  #key(slot: number): { pk: { S: string }; sk: { S: string } } {
    if (!Number.isSafeInteger(slot) || slot < 0 || slot >= STREAM_SLOTS) throw new RangeError(`slot must be an integer from 0 to ${STREAM_SLOTS - 1}, got ${String(slot)}`);
    return { pk: { S: this.#pk }, sk: { S: `SLOT#${slot}` } };
  }

  #leaseValues(now: number): Record<string, { S: string } | { N: string }> {
    return {
      ':me': { S: this.owner },
      ':until': { N: String(now + this.leaseMs) },
      ':ttl': { N: String(Math.floor(now / 1000) + this.#itemTtlSeconds) },
    };
  }

  async claim(slot: number): Promise<SlotClaim> {
    const now = this.#now();
    try {
      const out = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: this.#key(slot),
          UpdateExpression: 'SET #owner = :me, leaseUntil = :until, #ttl = :ttl',
          ConditionExpression: 'attribute_not_exists(pk) OR attribute_not_exists(#owner) OR #owner = :me OR leaseUntil <= :now',
          ExpressionAttributeNames: { '#owner': 'owner', '#ttl': this.#ttl },
          ExpressionAttributeValues: { ...this.#leaseValues(now), ':now': { N: String(now) } },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { status: 'claimed', pullNext: out.Attributes?.pullNext?.S };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const got = await this.#client.send(new GetItemCommand({ TableName: this.#table, Key: this.#key(slot), ConsistentRead: true }));
      const until = Number(got.Item?.leaseUntil?.N ?? now);
      return { status: 'held', until: Math.max(until, now) };
    }
  }

  async save(slot: number, pullNext: string): Promise<void> {
    const now = this.#now();
    await this.#ours(slot, 'SET pullNext = :next, savedAt = :at, leaseUntil = :until, #ttl = :ttl', {
      ...this.#leaseValues(now),
      ':next': { S: pullNext },
      ':at': { S: new Date(now).toISOString() },
    });
  }

  async renew(slot: number): Promise<void> {
    await this.#ours(slot, 'SET leaseUntil = :until, #ttl = :ttl', this.#leaseValues(this.#now()));
  }

  async release(slot: number, closed: boolean): Promise<void> {
    try {
      if (closed) {
        await this.#client.send(
          new DeleteItemCommand({
            TableName: this.#table,
            Key: this.#key(slot),
            ConditionExpression: '#owner = :me',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':me': { S: this.owner } },
          }),
        );
      } else {
        await this.#client.send(
          new UpdateItemCommand({
            TableName: this.#table,
            Key: this.#key(slot),
            UpdateExpression: 'REMOVE #owner SET leaseUntil = :zero',
            ConditionExpression: '#owner = :me',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':me': { S: this.owner }, ':zero': { N: '0' } },
          }),
        );
      }
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  async #ours(slot: number, update: string, values: Record<string, { S: string } | { N: string }>): Promise<void> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: this.#key(slot),
          UpdateExpression: update,
          ConditionExpression: '#owner = :me',
          ExpressionAttributeNames: { '#owner': 'owner', '#ttl': this.#ttl },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailure(error)) throw new StreamLeaseLostError(slot);
      throw error;
    }
  }
}
