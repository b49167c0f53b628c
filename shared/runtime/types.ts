import type { AuditRecord } from '../audit/index.ts';
import type { EventDetail, EventEnvelope } from '../events/index.ts';
import type { Logger } from '../logging/index.ts';

/** A decoded, validated message as a handler receives it. */
export interface DecodedMessage<T> {
  /** The event the message carries, its detail validated and `data` decoded. */
  event: EventEnvelope<T>;
  /** SQS facts about this delivery. */
  sqs: {
    messageId: string;
    /** ApproximateReceiveCount: 1 on the first delivery. */
    receiveCount: number;
  };
}

/** What a handler gets besides the message. */
export interface HandlerContext {
  /** A logger bound to the message's correlation ids. */
  logger: Logger;
  /** This delivery's attempt number (the SQS receive count). */
  attempt: number;
  /** The queue's receive budget (topology `maxReceiveCount`); `attempt === maxReceiveCount` is the last try. */
  maxReceiveCount: number;
  /** Aborted when the runtime gives up waiting for in-flight work at shutdown. */
  signal: AbortSignal;
}

/** An event a handler wants published on selo's bus. */
export interface EventToPublish {
  /** The past-tense fact (`MessageSigned`). */
  detailType: string;
  /** The producer. @defaultValue the runtime's `source` */
  source?: string;
  detail: EventDetail<unknown>;
  /** ARNs the event concerns. @defaultValue none */
  resources?: readonly string[];
}

/** What a handler produced: the runtime publishes both, then deletes the message. */
export interface Outcome {
  events: readonly EventToPublish[];
  audit: readonly AuditRecord[];
}

/** A worker: one decoded message in, one outcome out. Throw to fail (see `classifyError`). */
export type Handler<T> = (message: DecodedMessage<T>, context: HandlerContext) => Promise<Outcome>;

/** A long-lived resource the runtime closes at shutdown (HOUSE_STYLE 7). */
export interface Closeable {
  /** Name for logs. */
  name: string;
  close(): Promise<void>;
}

/** Result of one readiness check. */
export interface CheckResult {
  ok: boolean;
  /** Short, non-secret explanation. */
  detail?: string;
}

/** A readiness check injected by the worker's `main` (e.g. the HSM pool's). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<CheckResult> | CheckResult;
}
