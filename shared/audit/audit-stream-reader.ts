import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { AuditRecord } from './audit-record.ts';

/**
 * Reads every audit record on `streamName` from the trim horizon, all shards, page by page, until
 * each shard has nothing more: what a local Firehose delivery or the demo's count needs.
 * Records that are not JSON are counted as `unreadable`, not thrown.
 */
export async function readAuditStream(kinesis: KinesisClient, streamName: string, onRecord: (record: AuditRecord) => void): Promise<{ records: number; unreadable: number }> {
  let records = 0;
  let unreadable = 0;
  const shards = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of shards.Shards ?? []) {
    let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (iterator !== undefined) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const r of page.Records ?? []) {
        try {
          onRecord(JSON.parse(Buffer.from(r.Data ?? []).toString('utf8')) as AuditRecord);
          records += 1;
        } catch {
          unreadable += 1;
        }
      }
      // An open shard always returns a next iterator; an empty page at the tip means done.
      if ((page.Records ?? []).length === 0 || page.MillisBehindLatest === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return { records, unreadable };
}
