import { describe, expect, it } from 'vitest';
import type { AttributeValue, DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { resolveTopology } from '../../../infra/topology.ts';
import { STATE_INDEX_SHARDS, STATE_SHARD_ATTRIBUTE, queryStateIndex, stateIndexKey, stateShardOf } from '../../../shared/saga/index.ts';

type Item = Record<string, AttributeValue>;

/**
 * A fake DynamoDB Query over the index: the items of one partition key, by `updatedAt` (equal
 * values in insertion order, as a GSI leaves them unordered), at most `Limit`, after
 * `ExclusiveStartKey`, and `LastEvaluatedKey` when it stopped at the limit.
 */
function fakeIndex(items: readonly Item[]): { client: DynamoDBClient; queries: number } {
  const state = { queries: 0 };
  const client = {
    send: (command: QueryCommand) => {
      state.queries += 1;
      const input = command.input;
      const shard = input.ExpressionAttributeValues?.[':shard']?.S;
      const before = input.ExpressionAttributeValues?.[':before']?.S;
      const partition = items.filter((i) => i[STATE_SHARD_ATTRIBUTE]?.S === shard && (before === undefined || (i.updatedAt?.S ?? '') < before)).sort((a, b) => (a.updatedAt?.S ?? '').localeCompare(b.updatedAt?.S ?? ''));
      const start = input.ExclusiveStartKey === undefined ? 0 : partition.findIndex((i) => i.pk?.S === input.ExclusiveStartKey?.pk?.S) + 1;
      const page = partition.slice(start, start + (input.Limit ?? 100));
      const more = start + page.length < partition.length;
      return Promise.resolve({ Items: page, ...(more ? { LastEvaluatedKey: { pk: page.at(-1)?.pk } } : {}) });
    },
  } as unknown as DynamoDBClient;
  return { client, get queries() { return state.queries; } };
}

function saga(id: string, updatedAt: string, sagaState = 'FAILED'): Item {
  return { pk: { S: id }, sk: { S: 'SAGA' }, state: { S: sagaState }, [STATE_SHARD_ATTRIBUTE]: { S: stateIndexKey(sagaState, id) }, updatedAt: { S: updatedAt } };
}

async function all(client: DynamoDBClient, limit: number, state = 'FAILED'): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await queryStateIndex({ client, tableName: 't', indexName: 'by-state', state, limit, ...(cursor === undefined ? {} : { cursor }) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    ids.push(...page.items.map((i) => i.pk?.S ?? ''));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return ids;
}

describe('state index key', () => {
  it('puts a saga in the same shard in every state, <state>#<n> with n below the shard count', () => {
    const n = stateShardOf('PAY#E99999004202601011200abcdefghijk');
    expect(n).toBeGreaterThanOrEqual(0);
    expect(n).toBeLessThan(STATE_INDEX_SHARDS);
    expect(stateIndexKey('SETTLED', 'PAY#E99999004202601011200abcdefghijk')).toBe(`SETTLED#${n}`);
    expect(stateIndexKey('IN_DOUBT', 'PAY#E99999004202601011200abcdefghijk')).toBe(`IN_DOUBT#${n}`);
  });

  it('spreads 16,000 saga ids over the shards within 10 % of an even share', () => {
    const counts = Array.from({ length: STATE_INDEX_SHARDS }, () => 0);
    for (let i = 0; i < 16_000; i += 1) counts[stateShardOf(`PAY#E99999004202601011200${String(i).padStart(11, '0')}`)]! += 1;
    const even = 16_000 / STATE_INDEX_SHARDS;
    for (const count of counts) expect(Math.abs(count - even)).toBeLessThan(even / 10);
  });

  it('is the index key the topology declares', () => {
    expect(resolveTopology('local').sagaTable.stateIndex.partitionKey).toBe(STATE_SHARD_ATTRIBUTE);
  });
});

describe('queryStateIndex', () => {
  it('lists every item of a state across the shards, oldest change first, each once, whatever the page size', async () => {
    const items = Array.from({ length: 60 }, (_, i) => saga(`PAY#${i}`, `2026-01-01T00:00:${String(i % 30).padStart(2, '0')}.000Z`));
    const other = saga('PAY#settled', '2026-01-01T00:00:00.000Z', 'SETTLED');
    const { client } = fakeIndex([...items, other]);
    for (const limit of [1, 7, 100]) {
      const ids = await all(client, limit);
      expect(ids).toHaveLength(60);
      expect(new Set(ids)).toEqual(new Set(items.map((i) => i.pk?.S)));
      const times = ids.map((id) => items.find((i) => i.pk?.S === id)?.updatedAt?.S ?? '');
      expect(times).toEqual([...times].sort());
    }
  });

  it('returns one page and no cursor when everything fits, after one query per shard', async () => {
    const index = fakeIndex([saga('PAY#a', '2026-01-01T00:00:01.000Z'), saga('PAY#b', '2026-01-01T00:00:00.000Z')]);
    const page = await queryStateIndex({ client: index.client, tableName: 't', indexName: 'by-state', state: 'FAILED', limit: 10 });
    expect(page.items.map((i) => i.pk?.S)).toEqual(['PAY#b', 'PAY#a']);
    expect(page.cursor).toBeUndefined();
    expect(index.queries).toBe(STATE_INDEX_SHARDS);
  });

  it('applies updatedBefore in every shard', async () => {
    const { client } = fakeIndex([saga('PAY#old', '2026-01-01T00:00:00.000Z'), saga('PAY#new', '2026-01-02T00:00:00.000Z')]);
    const page = await queryStateIndex({ client, tableName: 't', indexName: 'by-state', state: 'FAILED', limit: 10, updatedBefore: new Date('2026-01-01T12:00:00.000Z') });
    expect(page.items.map((i) => i.pk?.S)).toEqual(['PAY#old']);
  });

  it('refuses a cursor of another state or not from a page, with a RangeError', async () => {
    const { client } = fakeIndex(Array.from({ length: 40 }, (_, i) => saga(`PAY#${i}`, `2026-01-01T00:00:${String(i).padStart(2, '0')}.000Z`)));
    const first = await queryStateIndex({ client, tableName: 't', indexName: 'by-state', state: 'FAILED', limit: 5 });
    expect(first.cursor).toBeDefined();
    await expect(queryStateIndex({ client, tableName: 't', indexName: 'by-state', state: 'IN_DOUBT', limit: 5, cursor: first.cursor ?? '' })).rejects.toThrow(RangeError);
    await expect(queryStateIndex({ client, tableName: 't', indexName: 'by-state', state: 'FAILED', limit: 5, cursor: 'not-a-cursor' })).rejects.toThrow(RangeError);
  });
});
