export { filterHeaders, auditPartitionKey, exchangeAuditRecord, transitionAuditRecord } from './audit-record.ts';
export type { AuditRecord, AuditKind, AuditSystem, AuditOrigin, ExchangeAudit } from './audit-record.ts';
export { KinesisAuditProducer, kinesisPutRecordsPort, KINESIS_LIMITS } from './kinesis-audit-producer.ts';
export type { AuditSink, AuditSinkHealth, KinesisAuditProducerOptions, KinesisEntry, KinesisPutRecordsPort } from './kinesis-audit-producer.ts';
export { readAuditStream } from './audit-stream-reader.ts';
