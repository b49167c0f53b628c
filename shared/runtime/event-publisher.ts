import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { EventBridgeClient, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PermanentError, TransientError } from '../errors/index.ts';
import type { Logger } from '../logging/index.ts';
import { Coalescer } from './coalescer.ts';
import type { EventToPublish } from './types.ts';

/** EventBridge limits (PutEvents API reference): 10 entries and 256 KiB per request. */
export const EVENTBRIDGE_LIMITS = { entriesPerRequest: 10, bytesPerRequest: 256 * 1024 } as const;

/** One entry as the port sends it. */
export interface EventEntry {
  source: string;
  detailType: string;
  detail: string;
  resources: readonly string[];
}

/** The one EventBridge call: one slot per entry, undefined when accepted, else the error code. */
export interface PutEventsPort {
  putEvents(eventBusName: string, entries: readonly EventEntry[]): Promise<readonly (string | undefined)[]>;
}

/** The port over the real SDK client. */
export function eventBridgePutEventsPort(client: EventBridgeClient): PutEventsPort {
  return {
    async putEvents(eventBusName, entries) {
      const request: PutEventsRequestEntry[] = entries.map((e) => ({
        EventBusName: eventBusName,
        Source: e.source,
        DetailType: e.detailType,
        Detail: e.detail,
        Resources: [...e.resources],
      }));
      const output = await client.send(new PutEventsCommand({ Entries: request }));
      const results = output.Entries ?? [];
      return entries.map((_, i) => {
        const result = results[i];
        if (result === undefined) return 'MissingResult';
        return result.ErrorCode === undefined || result.ErrorCode === null ? undefined : result.ErrorCode;
      });
    },
  };
}

/** Where events go; the runtime depends on this, not on EventBridge. */
export interface EventPublisher {
  /** Resolves once every event was accepted; throws a TransientError when retries ran out. */
  publish(events: readonly EventToPublish[]): Promise<void>;
}

/** Options of {@link EventBridgePublisher}. */
export interface EventBridgePublisherOptions {
  port: PutEventsPort;
  /** selo's bus (topology `eventBusName`). */
  eventBusName: string;
  /** Source of events that name none (`selo.sign`). */
  defaultSource: string;
  logger?: Logger;
  /** Attempts per entry before giving up (the message then backs off in its queue). @defaultValue 6 */
  maxAttempts?: number;
  /** First retry delay. @defaultValue 100 */
  retryBaseDelayMs?: number;
  /** Longest retry delay. @defaultValue 2000 */
  retryMaxDelayMs?: number;
  /** Random source for jitter, in [0, 1). @defaultValue Math.random */
  random?: () => number;
}

/** The size EventBridge charges an entry (PutEvents "Calculating the event entry size"). */
function entrySize(entry: EventEntry): number {
  return 14 + Buffer.byteLength(entry.source) + Buffer.byteLength(entry.detailType) + Buffer.byteLength(entry.detail) + entry.resources.reduce((sum, r) => sum + Buffer.byteLength(r), 0);
}

/**
 * Publishes events with PutEvents in requests of ≤10 entries / 256 KiB, retrying the entries that
 * failed (and requests that failed whole) with exponential backoff and jitter. A single event over
 * 256 KiB is a permanent error: the producer must use a claim check (DESIGN §1).
 */
export class EventBridgePublisher implements EventPublisher {
  readonly #port: PutEventsPort;
  readonly #bus: string;
  readonly #source: string;
  readonly #logger: Logger | undefined;
  readonly #maxAttempts: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #random: () => number;

  constructor(options: EventBridgePublisherOptions) {
    if (options.eventBusName === '') throw new RangeError('EventBridgePublisherOptions.eventBusName must not be empty, got ""');
    if (options.defaultSource === '') throw new RangeError('EventBridgePublisherOptions.defaultSource must not be empty, got ""');
    const maxAttempts = options.maxAttempts ?? 6;
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`EventBridgePublisherOptions.maxAttempts must be a positive integer, got ${String(options.maxAttempts)}`);
    this.#port = options.port;
    this.#bus = options.eventBusName;
    this.#source = options.defaultSource;
    this.#logger = options.logger;
    this.#maxAttempts = maxAttempts;
    this.#baseDelay = options.retryBaseDelayMs ?? 100;
    this.#maxDelay = options.retryMaxDelayMs ?? 2_000;
    this.#random = options.random ?? Math.random;
  }

  /** {@inheritDoc EventPublisher.publish} */
  async publish(events: readonly EventToPublish[]): Promise<void> {
    let pending = events.map((event): { entry: EventEntry; size: number } => {
      const entry: EventEntry = { source: event.source ?? this.#source, detailType: event.detailType, detail: JSON.stringify(event.detail), resources: event.resources ?? [] };
      const size = entrySize(entry);
      if (size > EVENTBRIDGE_LIMITS.bytesPerRequest) {
        throw new PermanentError('EVENT_TOO_LARGE', `${event.detailType} event is ${size} bytes; EventBridge accepts at most ${EVENTBRIDGE_LIMITS.bytesPerRequest} (use a claim check)`, {
          details: { detailType: event.detailType, size },
        });
      }
      return { entry, size };
    });
    let lastError: string | undefined;
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      if (attempt > this.#maxAttempts) {
        throw new TransientError('EVENTS_NOT_PUBLISHED', `${pending.length} event(s) not accepted by EventBridge after ${this.#maxAttempts} attempts (last error ${lastError ?? 'unknown'})`, {
          details: { failed: pending.length, lastError },
        });
      }
      if (attempt > 1) {
        const step = Math.min(this.#maxDelay, this.#baseDelay * 2 ** (attempt - 2));
        await new Promise((resolve) => setTimeout(resolve, step / 2 + this.#random() * (step / 2)));
      }
      const failed: typeof pending = [];
      for (const batch of this.#batches(pending)) {
        try {
          const results = await this.#port.putEvents(this.#bus, batch.map((b) => b.entry));
          batch.forEach((b, i) => {
            const code = results[i];
            if (code !== undefined) {
              failed.push(b);
              lastError = code;
            }
          });
        } catch (error) {
          failed.push(...batch);
          lastError = error instanceof Error ? error.name : String(error);
        }
      }
      if (failed.length > 0) this.#logger?.warn({ failed: failed.length, attempt, error: lastError }, 'events not accepted; retrying');
      pending = failed;
    }
  }

  *#batches<E extends { size: number }>(entries: readonly E[]): Generator<E[]> {
    let batch: E[] = [];
    let bytes = 0;
    for (const entry of entries) {
      if (batch.length === EVENTBRIDGE_LIMITS.entriesPerRequest || (batch.length > 0 && bytes + entry.size > EVENTBRIDGE_LIMITS.bytesPerRequest)) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += entry.size;
    }
    if (batch.length > 0) yield batch;
  }
}

/**
 * A {@link PutEventsPort} that gathers the entries concurrent callers put within `lingerMs` into
 * PutEvents requests of ≤ 10 entries / 256 KiB (EventBridge's limits): the messages a worker
 * handles at once publish with one request instead of one each. Each caller gets its own entries'
 * results.
 */
export function coalescingPutEventsPort(port: PutEventsPort, options: { lingerMs?: number } = {}): PutEventsPort {
  const perBus = new Map<string, Coalescer<EventEntry, string | undefined>>();
  const coalescerOf = (bus: string): Coalescer<EventEntry, string | undefined> => {
    let coalescer = perBus.get(bus);
    if (coalescer === undefined) {
      coalescer = new Coalescer<EventEntry, string | undefined>({
        maxItems: EVENTBRIDGE_LIMITS.entriesPerRequest,
        lingerMs: options.lingerMs ?? 2,
        weight: { of: entrySize, max: EVENTBRIDGE_LIMITS.bytesPerRequest },
        flush: (entries) => port.putEvents(bus, entries),
      });
      perBus.set(bus, coalescer);
    }
    return coalescer;
  };
  return {
    async putEvents(eventBusName, entries) {
      const coalescer = coalescerOf(eventBusName);
      // A whole-request failure of a batch fails the entries of every caller in it; the
      // publisher retries them like failed entries.
      const settled = await Promise.allSettled(entries.map((entry) => coalescer.submit(entry)));
      return settled.map((r) => (r.status === 'fulfilled' ? r.value : r.reason instanceof Error ? r.reason.name : 'PutEventsFailed'));
    },
  };
}
