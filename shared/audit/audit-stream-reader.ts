import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { AuditRecord } from './audit-record.ts';

/**
 * Whether a shard has more to read after a page of `count` records asked with `limit`. An open
 * shard always returns a next iterator, so the end is an empty page, or one at the tip
 * (MillisBehindLatest 0) that was not cut short by the limit: kinesalite reports 0 also for a
 * full page with more behind it.
 */
export function hasMore(count: number, limit: number, millisBehindLatest: number | undefined): boolean {
  return count > 0 && (count >= limit || (millisBehindLatest ?? 0) > 0);
}

/**
 * Reads every audit record on `streamName` from the trim horizon, all shards, page by page, until
 * each shard has nothing more: what a local Firehose delivery or the demo's count needs.
 * Records that are not JSON are counted as `unreadable`, not thrown.
 */
export async function readAuditStream(kinesis: KinesisClient, streamName: string, onRecord: (record: AuditRecord) => void, pageSize = 10_000): Promise<{ records: number; unreadable: number }> {
  let records = 0;
  let unreadable = 0;
  const shards = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of shards.Shards ?? []) {
    let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (iterator !== undefined) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: pageSize }));
      for (const r of page.Records ?? []) {
        try {
          onRecord(JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as AuditRecord);
          records += 1;
        } catch {
          unreadable += 1;
        }
      }
      if (!hasMore((page.Records ?? []).length, pageSize, page.MillisBehindLatest)) break;
      iterator = page.NextShardIterator;
    }
  }
  return { records, unreadable };
}
