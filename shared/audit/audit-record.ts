import { randomUUID } from 'node:crypto';
import type { CorrelationIds } from '../events/index.ts';

/** What an audit record describes. */
export type AuditKind = 'request' | 'response' | 'transition';

/** Which BCB system the record is about; also the S3 prefix `audit/{spi|dict}/`. */
export type AuditSystem = 'spi' | 'dict';

/**
 * One audit record as written to Kinesis and read by Firehose into Parquet. Field names are the
 * Glue table's columns: the reference architecture's `request_*` / `response_*` columns plus
 * selo's ids, so the JSON maps onto the table without renaming.
 */
export interface AuditRecord {
  /** Unique id of this record (UUID); lets readers drop duplicates of a retried write. */
  record_id: string;
  /** request / response (one BCB exchange) or transition (one saga state change). */
  kind: AuditKind;
  /** `spi` or `dict`. */
  system: AuditSystem;
  /** When the record was made, ISO 8601 UTC with milliseconds. */
  recorded_at: string;
  /** The worker that wrote the record (`sign`, `transmit`…). */
  worker: string;
  /** `PAY#<EndToEndId>` or `DICT#<RequestId>`. */
  saga_id: string;
  end_to_end_id: string | null;
  biz_msg_idr: string | null;
  request_id: string | null;
  /** W3C traceparent of the step. */
  traceparent: string | null;
  /** When the request was sent, ISO 8601 UTC with milliseconds. */
  request_date: string | null;
  request_method: string | null;
  request_path: string | null;
  /** Request headers as JSON, secrets replaced by `[REDACTED]` ({@link filterHeaders}). */
  request_header: string | null;
  request_body: string | null;
  response_status_code: number | null;
  /** Whether the BCB's signature on the response verified; null when not applicable. */
  response_signature_valid: boolean | null;
  /** Response headers as JSON, filtered like the request's. */
  response_header: string | null;
  response_body: string | null;
  /** Milliseconds from sending the request to the end of the response; null for transitions. */
  duration_ms: number | null;
  /** Saga transition: the state left. */
  transition_from: string | null;
  /** Saga transition: the state entered. */
  transition_to: string | null;
  /** Saga transition: why. */
  transition_reason: string | null;
  /** Attempt number of the step that wrote the record. */
  attempt: number | null;
}

/** Header names whose values never reach the audit trail (credentials, session, PINs). */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-amz-security-token)$|pin|secret|token|password|passwd|credential/i;

/**
 * Headers as stored in the audit trail: names lower-cased, the values of credentials, cookies,
 * PINs and tokens replaced by `[REDACTED]` so their presence is still visible.
 */
export function filterHeaders(headers: Readonly<Record<string, string | readonly string[] | number | undefined>>): Record<string, string> {
  const filtered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    filtered[lower] = SECRET_HEADER.test(lower) ? '[REDACTED]' : Array.isArray(value) ? value.join(', ') : String(value);
  }
  return filtered;
}

/** The Kinesis partition key of a record: the EndToEndId, else the DICT RequestId, else the saga id. */
export function auditPartitionKey(record: AuditRecord): string {
  return record.end_to_end_id ?? record.request_id ?? record.saga_id;
}

/** What every audit record says about where it comes from. */
export interface AuditOrigin extends CorrelationIds {
  worker: string;
  system: AuditSystem;
  sagaId: string;
  traceparent?: string;
  attempt?: number;
}

function base(origin: AuditOrigin, kind: AuditKind, now: Date): AuditRecord {
  return {
    record_id: randomUUID(),
    kind,
    system: origin.system,
    recorded_at: now.toISOString(),
    worker: origin.worker,
    saga_id: origin.sagaId,
    end_to_end_id: origin.endToEndId ?? null,
    biz_msg_idr: origin.bizMsgIdr ?? null,
    request_id: origin.requestId ?? null,
    traceparent: origin.traceparent ?? null,
    request_date: null,
    request_method: null,
    request_path: null,
    request_header: null,
    request_body: null,
    response_status_code: null,
    response_signature_valid: null,
    response_header: null,
    response_body: null,
    duration_ms: null,
    transition_from: null,
    transition_to: null,
    transition_reason: null,
    attempt: origin.attempt ?? null,
  };
}

/** One BCB exchange, as the transmit worker sees it. */
export interface ExchangeAudit {
  /** When the request was sent. */
  requestDate: Date;
  method: string;
  path: string;
  requestHeaders: Readonly<Record<string, string | readonly string[] | number | undefined>>;
  requestBody: string;
  /** Absent when no response arrived (timeout, reset). */
  response?: {
    statusCode: number;
    headers: Readonly<Record<string, string | readonly string[] | number | undefined>>;
    body: string;
    /** null when the response carries no signature to check. */
    signatureValid: boolean | null;
    /** When the response was complete. */
    receivedAt: Date;
  };
}

/**
 * The audit record of a BCB request and its response (kind `response`), or of a request that got
 * no answer (kind `request`). Headers are filtered of secrets.
 */
export function exchangeAuditRecord(origin: AuditOrigin, exchange: ExchangeAudit, now: Date = new Date()): AuditRecord {
  const record = base(origin, exchange.response === undefined ? 'request' : 'response', now);
  record.request_date = exchange.requestDate.toISOString();
  record.request_method = exchange.method.toUpperCase();
  record.request_path = exchange.path;
  record.request_header = JSON.stringify(filterHeaders(exchange.requestHeaders));
  record.request_body = exchange.requestBody;
  if (exchange.response !== undefined) {
    record.response_status_code = exchange.response.statusCode;
    record.response_signature_valid = exchange.response.signatureValid;
    record.response_header = JSON.stringify(filterHeaders(exchange.response.headers));
    record.response_body = exchange.response.body;
    record.duration_ms = exchange.response.receivedAt.getTime() - exchange.requestDate.getTime();
  }
  return record;
}

/** The audit record of one saga transition. */
export function transitionAuditRecord(origin: AuditOrigin, transition: { from: string | null; to: string; reason: string }, now: Date = new Date()): AuditRecord {
  const record = base(origin, 'transition', now);
  record.transition_from = transition.from;
  record.transition_to = transition.to;
  record.transition_reason = transition.reason;
  return record;
}
