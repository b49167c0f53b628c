/**
 * The failure facts that start a compensation (topology `COMPENSATION_TRIGGERS`) as the
 * compensation worker reads them, and the facts it publishes.
 *
 * Producers shape their failure data differently (the runtime's `SigningFailed` carries `code`,
 * the transmit worker's `TransmissionRejected` carries `status` and `code`, the verify worker's
 * `PaymentRejected` carries the pacs.002 `reasonCode`), so the decoder is deliberately lenient:
 * it never rejects a trigger for its `data`, it takes the reason code if there is one and falls
 * back to the event's own code or detail-type. A failure event that cannot be decoded must not be
 * dead-lettered before the saga had a chance to be compensated.
 */

/** detail-types of the facts the compensation worker publishes. */
export const COMPENSATION_FACTS = {
  reversal: 'PaymentReversalRequested',
  compensated: 'PaymentCompensated',
  failed: 'CompensationFailed',
  conflict: 'OutcomeConflict',
  inDoubt: 'PaymentInDoubt',
  dictRequest: 'DictRequested',
} as const;

/** source of what the compensation worker and its in-doubt sweeper publish. */
export const COMPENSATE_SOURCE = 'selo.compensate';

/** A failure fact, decoded for the compensation worker. */
export interface CompensationTrigger {
  /** The reason code: pacs.002/admi.002 `reasonCode`, else the producer's `code`, else the detail-type. */
  reasonCode: string;
  /** What the producer said, when it said something (`reason`, `description`, `additionalInformation`). */
  description?: string;
  /** `SignatureInvalid` only: whose signature failed; only `outbound` (our own message) compensates. */
  path?: 'inbound' | 'outbound';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(record: Record<string, unknown>, field: string): string | undefined {
  const value = record[field];
  return typeof value === 'string' && value !== '' ? value.slice(0, 500) : undefined;
}

/** The last path segment of an RFC 7807 problem `type` URI (the DICT's error name, e.g. `EntryInvalid`). */
function problemName(type: string | undefined): string | undefined {
  if (type === undefined) return undefined;
  const name = type.split(/[/#]/).filter((part) => part !== '').pop();
  return name === undefined || name === 'about:blank' ? undefined : name;
}

/**
 * Decodes the `data` of a compensation trigger; never throws (see the module comment). The
 * reason code is, first found: `reasonCode`, `reason.code` (pacs.002 / admi.002 as the verify
 * worker publishes them), the DICT problem's name (`problem.type`), `code`, the detail-type.
 */
export function decodeCompensationTrigger(data: unknown, detailType: string): CompensationTrigger {
  const record = isRecord(data) ? data : {};
  const reason = isRecord(record.reason) ? record.reason : {};
  const problem = isRecord(record.problem) ? record.problem : {};
  const reasonCode = text(record, 'reasonCode') ?? text(reason, 'code') ?? problemName(text(problem, 'type')) ?? text(record, 'code') ?? detailType;
  const description =
    text(record, 'description') ??
    text(record, 'additionalInformation') ??
    text(reason, 'description') ??
    text(reason, 'additionalInformation') ??
    text(problem, 'title') ??
    text(record, 'reason');
  const path = record.path === 'inbound' || record.path === 'outbound' ? record.path : undefined;
  return { reasonCode, ...(description === undefined ? {} : { description }), ...(path === undefined ? {} : { path }) };
}
