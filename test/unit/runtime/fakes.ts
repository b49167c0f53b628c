import { Writable } from 'node:stream';
import type { Message } from '@aws-sdk/client-sqs';
import type { AuditRecord, AuditSink, AuditSinkHealth } from '../../../shared/audit/index.ts';
import { encodeEventBody, newTraceparent } from '../../../shared/events/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import type { Logger } from '../../../shared/logging/index.ts';
import type { DeadLetterReason, EventPublisher, EventToPublish, QueuePort } from '../../../shared/runtime/index.ts';

/** Records every queue operation in order. */
export class FakeQueue implements QueuePort {
  readonly calls: { op: 'delete' | 'visibility' | 'dlq'; messageId: string | undefined; seconds?: number; reason?: DeadLetterReason }[] = [];
  failDeadLetter = false;

  delete(message: Message): Promise<void> {
    this.calls.push({ op: 'delete', messageId: message.MessageId });
    return Promise.resolve();
  }

  changeVisibility(message: Message, seconds: number): Promise<void> {
    this.calls.push({ op: 'visibility', messageId: message.MessageId, seconds });
    return Promise.resolve();
  }

  sendToDeadLetter(message: Message, reason: DeadLetterReason): Promise<void> {
    if (this.failDeadLetter) return Promise.reject(new Error('DLQ unreachable'));
    this.calls.push({ op: 'dlq', messageId: message.MessageId, reason });
    return Promise.resolve();
  }
}

/** A publisher whose acceptance the test controls. */
export class FakePublisher implements EventPublisher {
  readonly published: EventToPublish[] = [];
  failWith: Error | undefined;
  gate: Promise<void> | undefined;

  async publish(events: readonly EventToPublish[]): Promise<void> {
    if (this.gate !== undefined) await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    this.published.push(...events);
  }
}

/** An audit sink whose acceptance the test controls. */
export class FakeAudit implements AuditSink {
  readonly accepted: AuditRecord[] = [];
  gate: Promise<void> | undefined;
  flushed = 0;

  async put(records: readonly AuditRecord[]): Promise<void> {
    if (this.gate !== undefined) await this.gate;
    this.accepted.push(...records);
  }

  flush(): Promise<void> {
    this.flushed += 1;
    return Promise.resolve();
  }

  health(): AuditSinkHealth {
    return { ok: true, buffered: 0, consecutiveFailures: 0, lastError: undefined };
  }
}

/** A promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A logger that writes nowhere. */
export function silentLogger(): Logger {
  return createLogger({ name: 'test', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}

/** An SQS message carrying a PaymentRequested event. */
export function paymentMessage(id: string, options: { receiveCount?: number; data?: unknown; body?: string } = {}): Message {
  const endToEndId = `E9999900420260101120000${id.padStart(11, '0').slice(-11)}`;
  const body =
    options.body ??
    encodeEventBody({
      detailType: 'PaymentRequested',
      source: 'core.banking',
      detail: { version: 1, sagaId: `PAY#${endToEndId}`, endToEndId, attempt: 1, traceparent: newTraceparent(), data: options.data ?? { amount: '10.00' } },
    });
  return { MessageId: id, ReceiptHandle: `rh-${id}`, Body: body, Attributes: { ApproximateReceiveCount: String(options.receiveCount ?? 1) } };
}
