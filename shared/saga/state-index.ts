import { QueryCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Shards of the saga table's `by-state` index. Its partition key is `<state>#<n>`, n in
 * [0, STATE_INDEX_SHARDS), instead of the state alone: every settled payment would otherwise be
 * written to one index partition, and a DynamoDB partition takes at most 1,000 write units a
 * second (DynamoDB Developer Guide, "Partitions and data distribution" / "Burst and adaptive
 * capacity"). A saga item of about 2 KB costs 2 write units per index write, so one state could
 * carry only about 500 payments a second; 8 shards carry 8 times that (about 4,000 payments a
 * second per state, above one participant's peaks in the SPI), while a reader pays 8 small
 * queries per page (the in-doubt sweeper reads two states per sweep). Changing the count re-keys
 * every item: it is a constant, not a setting.
 */
export const STATE_INDEX_SHARDS = 8;

/** The attribute that holds the index's partition key (`<state>#<n>`), beside the plain `state`. */
export const STATE_SHARD_ATTRIBUTE = 'stateShard';

/** The shard of an item: FNV-1a (32 bits) of its key (`pk`, e.g. the saga id), modulo the shard count. */
export function stateShardOf(key: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % STATE_INDEX_SHARDS;
}

/** The index partition key of the item `key` in `state`: `<state>#<n>`. */
export function stateIndexKey(state: string, key: string): string {
  return `${state}#${stateShardOf(key)}`;
}

type Item = Record<string, AttributeValue>;

/** Options of {@link queryStateIndex}. */
export interface StateIndexQuery {
  client: DynamoDBClient;
  tableName: string;
  indexName: string;
  /** The `state` to list (a saga state, or an alert's `ALERT#OPEN`). */
  state: string;
  /** Most items in the page. */
  limit: number;
  /** Only items whose `updatedAt` is before this. @defaultValue no bound */
  updatedBefore?: Date;
  /** What a previous page returned. @defaultValue the first page */
  cursor?: string;
}

/** Where one shard's reading stands: not started, done, or after this item (`updatedAt`, `pk`, `sk`). */
type ShardPosition = null | 0 | [string, string, string];

interface Cursor {
  state: string;
  shards: ShardPosition[];
}

function decodeCursor(text: string, state: string): ShardPosition[] {
  let cursor: Cursor;
  try {
    cursor = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
  } catch (error) {
    throw new RangeError(`cursor is not one a page returned, got ${JSON.stringify(text)}`, { cause: error });
  }
  if (cursor.state !== state || !Array.isArray(cursor.shards) || cursor.shards.length !== STATE_INDEX_SHARDS) {
    throw new RangeError(`cursor is not one a page of ${state} returned, got ${JSON.stringify(text)}`);
  }
  return cursor.shards;
}

function s(item: Item, name: string): string {
  return item[name]?.S ?? '';
}

/**
 * One page of the items in `state`, oldest change first, across every shard of the `by-state`
 * index: each shard is queried from where the cursor left it, the answers are merged by
 * `updatedAt`, and only items no unread item of another shard can precede are returned, so pages
 * are in order and nothing is skipped or returned twice. `cursor` is absent on the last page.
 */
export async function queryStateIndex(query: StateIndexQuery): Promise<{ items: Item[]; cursor?: string }> {
  const positions: ShardPosition[] = query.cursor === undefined ? Array.from({ length: STATE_INDEX_SHARDS }, () => null) : decodeCursor(query.cursor, query.state);
  const names: Record<string, string> = { '#shard': STATE_SHARD_ATTRIBUTE };
  let condition = '#shard = :shard';
  const before: Item = {};
  if (query.updatedBefore !== undefined) {
    condition += ' AND #updatedAt < :before';
    names['#updatedAt'] = 'updatedAt';
    before[':before'] = { S: query.updatedBefore.toISOString() };
  }
  const answers = await Promise.all(
    positions.map(async (position, shard) => {
      if (position === 0) return undefined;
      const key = `${query.state}#${shard}`;
      const result = await query.client.send(
        new QueryCommand({
          TableName: query.tableName,
          IndexName: query.indexName,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':shard': { S: key }, ...before },
          Limit: query.limit,
          ...(position === null ? {} : { ExclusiveStartKey: { [STATE_SHARD_ATTRIBUTE]: { S: key }, updatedAt: { S: position[0] }, pk: { S: position[1] }, sk: { S: position[2] } } }),
        }),
      );
      return { items: result.Items ?? [], more: result.LastEvaluatedKey !== undefined };
    }),
  );
  // A shard with more to read bounds the page: nothing changed after its last item read may be
  // returned, since its next unread item may come before it.
  let bound: string | undefined;
  for (const answer of answers) {
    const last = answer?.more === true ? answer.items.at(-1) : undefined;
    if (last !== undefined && (bound === undefined || s(last, 'updatedAt') < bound)) bound = s(last, 'updatedAt');
  }
  // A k-way merge on updatedAt that takes each shard's items in the order DynamoDB returned them
  // (items with equal updatedAt have no other order): what is taken of a shard is always a prefix
  // of its answer, so the shard resumes right after the last item taken.
  const heads = answers.map(() => 0);
  const merged: { shard: number; item: Item }[] = [];
  while (merged.length < query.limit) {
    let pick: number | undefined;
    answers.forEach((answer, shard) => {
      const head = answer?.items[heads[shard] ?? 0];
      if (head === undefined || (bound !== undefined && s(head, 'updatedAt') > bound)) return;
      const best = pick === undefined ? undefined : answers[pick]?.items[heads[pick] ?? 0];
      if (best === undefined || s(head, 'updatedAt') < s(best, 'updatedAt')) pick = shard;
    });
    if (pick === undefined) break;
    const item = answers[pick]?.items[heads[pick] ?? 0];
    if (item === undefined) break;
    merged.push({ shard: pick, item });
    heads[pick] = (heads[pick] ?? 0) + 1;
  }
  const next: ShardPosition[] = [...positions];
  answers.forEach((answer, shard) => {
    if (answer === undefined) return;
    const taken = heads[shard] ?? 0;
    const last = taken === 0 ? undefined : answer.items[taken - 1];
    if (taken === answer.items.length && !answer.more) next[shard] = 0;
    else if (last !== undefined) next[shard] = [s(last, 'updatedAt'), s(last, 'pk'), s(last, 'sk')];
  });
  const items = merged.map((m) => m.item);
  if (next.every((p) => p === 0)) return { items };
  return { items, cursor: Buffer.from(JSON.stringify({ state: query.state, shards: next } satisfies Cursor), 'utf8').toString('base64url') };
}
