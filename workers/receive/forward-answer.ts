import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { exchangeAuditRecord } from '../../shared/audit/index.ts';
import type { AuditRecord, AuditSink } from '../../shared/audit/index.ts';
import type { IcomStreamAnswer, IcomStreamMessage } from '../../shared/bcb-client/index.ts';
import { CLAIM_CHECK_THRESHOLD_BYTES } from '../../shared/claim-check/index.ts';
import type { ClaimCheckReference, ClaimCheckStore } from '../../shared/claim-check/index.ts';
import { TransientError } from '../../shared/errors/index.ts';
import { BCB_MESSAGE_RECEIVED, EVENT_DETAIL_VERSION, RECEIVE_SOURCE, encodeEventBody, inboxSagaId, newTraceparent } from '../../shared/events/index.ts';
import type { BcbMessageReceivedData } from '../../shared/events/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { RecentResources } from './recent-resources.ts';
import { sendDurably } from './verify-queue.ts';
import type { FailedEntry, QueueEntry, SendDurablyOptions, VerifyQueuePort } from './verify-queue.ts';

/** A response body larger than this goes to the audit trail as its claim-check reference (Kinesis takes 1 MiB per record). */
export const AUDIT_INLINE_BODY_BYTES = 768 * 1024;

/** Some messages of an answer did not reach the verify queue: the answer must not be confirmed. */
export class VerifyQueueSendError extends TransientError {
  constructor(failed: readonly FailedEntry[]) {
    super('VERIFY_QUEUE_SEND_FAILED', `${failed.length} message(s) did not reach the verify queue (${[...new Set(failed.map((f) => f.code))].join(', ')})`, {
      details: { failed: failed.length },
    });
  }
}

/** The audit trail did not take the records of an answer: the answer must not be confirmed. */
export class ReceiveAuditError extends TransientError {
  constructor(cause: unknown) {
    super('RECEIVE_AUDIT_FAILED', 'the audit records of a stream answer were not accepted', { cause });
  }
}

/** What {@link createAnswerForwarder} needs. */
export interface AnswerForwarderDeps {
  /** The verify queue. */
  queue: VerifyQueuePort;
  /** Where payloads over {@link CLAIM_CHECK_THRESHOLD_BYTES} go. */
  claimCheck: ClaimCheckStore;
  /** The audit trail. */
  audit: Pick<AuditSink, 'put'>;
  /** Ids this process is forwarding or forwarded lately. */
  recent: RecentResources;
  logger: Logger;
  /** Retries of refused queue entries. @defaultValue {@link sendDurably}'s */
  send?: SendDurablyOptions;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** What happened to one answer's messages. */
export interface ForwardResult {
  /** Messages in the answer. */
  read: number;
  /** Put on the verify queue now. */
  forwarded: number;
  /** Dropped: same `PI-ResourceId` as one this process forwarded lately (or has in flight). */
  duplicates: number;
}

interface Item {
  message: IcomStreamMessage;
  xml: string;
  sagaId: string;
  traceparent: string;
  /** This copy's id ({@link BcbMessageReceivedData.copy}). */
  copy: string;
  claimCheck: ClaimCheckReference | undefined;
}

/**
 * The receive worker's handler: takes one stream answer and resolves once every message in it is
 * durably on the verify queue as a `BcbMessageReceived` envelope (unverified), and audited.
 * Rejects when anything is not durable; the caller must then not confirm the answer, and the BCB
 * delivers it again.
 *
 * Stream duplicates (same `PI-ResourceId`) that this process forwarded lately or is forwarding
 * on another stream are dropped here ({@link RecentResources}), with no store round trip. The
 * others (read by another process, or again after a restart) are forwarded as another copy,
 * with their own copy id, and the verify worker records them only: the saga write of the first
 * copy refuses them, and for the few messages without a saga (echoes, quarantined or unsupported
 * messages) a marker the verify worker claims per `PI-ResourceId` does. No DynamoDB call here.
 */
export function createAnswerForwarder(deps: AnswerForwarderDeps): (answer: IcomStreamAnswer) => Promise<ForwardResult> {
  const now = deps.now ?? (() => new Date());

  async function keepLarge(item: Item): Promise<void> {
    // Measured as it travels: escaped inside the JSON envelope.
    if (Buffer.byteLength(JSON.stringify(item.xml), 'utf8') <= CLAIM_CHECK_THRESHOLD_BYTES) return;
    const key = `receive/${createHash('sha256').update(item.message.body).digest('hex')}.xml`;
    item.claimCheck = await deps.claimCheck.put(key, item.xml);
  }

  function auditRecord(answer: IcomStreamAnswer, item: Item): AuditRecord {
    const { exchange } = answer;
    const inline = Buffer.byteLength(item.xml, 'utf8') <= AUDIT_INLINE_BODY_BYTES || item.claimCheck === undefined;
    return exchangeAuditRecord(
      { worker: 'receive', system: 'spi', sagaId: item.sagaId, traceparent: item.traceparent, attempt: 1 },
      {
        requestDate: exchange.requestDate,
        method: exchange.method,
        path: exchange.path,
        requestHeaders: exchange.requestHeaders,
        requestBody: '',
        response: {
          statusCode: answer.status,
          headers: { ...exchange.responseHeaders, ...item.message.headers },
          body: inline ? item.xml : `s3://${item.claimCheck?.bucket ?? ''}/${item.claimCheck?.key ?? ''}`,
          signatureValid: null,
          receivedAt: exchange.receivedAt,
        },
      },
    );
  }

  function entryOf(item: Item, index: number, receivedAt: string): QueueEntry {
    const data: BcbMessageReceivedData = {
      channel: 'spi',
      resourceId: item.message.resourceId,
      receivedAt,
      contentType: item.message.contentType,
      payload: item.claimCheck === undefined ? { inline: item.xml } : { claimCheck: item.claimCheck },
      copy: item.copy,
    };
    return {
      id: `m${index}`,
      body: encodeEventBody({
        detailType: BCB_MESSAGE_RECEIVED,
        source: RECEIVE_SOURCE,
        detail: { version: EVENT_DETAIL_VERSION, sagaId: item.sagaId, attempt: 1, traceparent: item.traceparent, data },
      }),
    };
  }

  return async (answer) => {
    const receivedAt = now().toISOString();
    const items: Item[] = answer.messages.map((message) => ({
      message,
      // ICOM messages are UTF-8 XML; the bytes are kept as read and the verify worker checks them.
      xml: message.body.toString('utf8'),
      sagaId: inboxSagaId(message.resourceId),
      traceparent: newTraceparent(),
      copy: randomBytes(12).toString('hex'),
      claimCheck: undefined,
    }));
    if (items.length === 0) return { read: 0, forwarded: 0, duplicates: 0 };
    for (const item of items) {
      // ICOM sends UTF-8 only; other bytes cannot travel exactly in the JSON envelope, and the
      // verify worker will find the signature broken.
      if (!isUtf8(item.message.body)) deps.logger.warn({ resourceId: item.message.resourceId, code: 'ICOM_MESSAGE_NOT_UTF8' }, 'a message from the stream is not UTF-8; forwarded with replacement characters');
    }
    await Promise.all(items.map((item) => keepLarge(item)));
    // Every message read is audited, duplicates included; the answer waits for it before confirming.
    const audited: Promise<ReceiveAuditError | undefined> = deps.audit.put(items.map((item) => auditRecord(answer, item))).then(
      () => undefined,
      (error: unknown) => new ReceiveAuditError(error),
    );

    const acquired: Item[] = [];
    const settled = new Set<string>();
    try {
      // One copy per id in this answer; a copy another stream is forwarding is waited for, and
      // taken over when that forwarding fails (its answer is never confirmed on our behalf).
      const byId = new Map<string, Item>();
      for (const item of items) if (!byId.has(item.message.resourceId)) byId.set(item.message.resourceId, item);
      let pending = [...byId.values()];
      while (pending.length > 0) {
        const waiting: Item[] = [];
        for (const item of pending) (deps.recent.acquire(item.message.resourceId) ? acquired : waiting).push(item);
        const durable = await Promise.all(waiting.map((item) => deps.recent.waitFor(item.message.resourceId)));
        pending = waiting.filter((_, i) => durable[i] !== true);
      }
      const entries = acquired.map((item, i) => entryOf(item, i, receivedAt));
      const outcome = await sendDurably(deps.queue, entries, deps.send);
      const sentIds = new Set(outcome.sent);
      const sent = acquired.filter((_, i) => sentIds.has(`m${i}`));
      for (const item of sent) {
        deps.recent.done(item.message.resourceId);
        settled.add(item.message.resourceId);
      }
      const auditError = await audited;
      if (outcome.failed.length > 0) throw new VerifyQueueSendError(outcome.failed);
      if (auditError !== undefined) throw auditError;
      const result = { read: items.length, forwarded: sent.length, duplicates: items.length - acquired.length };
      deps.logger.debug({ ...result, path: answer.exchange.path }, 'stream answer forwarded to the verify queue');
      return result;
    } finally {
      for (const item of acquired) if (!settled.has(item.message.resourceId)) deps.recent.release(item.message.resourceId);
    }
  };
}
