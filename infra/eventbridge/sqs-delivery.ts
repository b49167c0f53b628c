import { GetQueueUrlCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { GetQueueUrlCommandInput, SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { Coalescer } from '../../shared/runtime/coalescer.ts';
import { leanClient } from '../../shared/aws/lean-client.ts';
import { KeyedSha256 } from '../../shared/aws/keyed-sha256.ts';
import { UndiciRequestHandler } from '../../shared/aws/undici-request-handler.ts';

/** One message for one target, produced when an event matches a rule. */
export interface TargetDelivery {
  /** The target's SQS queue ARN. */
  targetArn: string;
  /** The message body (the event envelope, or the target's shaped input). */
  body: string;
  /** The EventBridge event id; used as deduplication id on FIFO queues. */
  eventId: string;
  /** `SqsParameters.MessageGroupId` of the target, required by FIFO queues. */
  messageGroupId?: string;
}

/** Receives target deliveries; the emulator's port to the outside world. */
export interface TargetDispatcher {
  /** Starts delivering in the background; never throws, never rejects. */
  dispatch(delivery: TargetDelivery): void;
}

/** One SendMessageBatch entry. */
interface BatchEntry {
  Id: string;
  MessageBody: string;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
}

/** Delivery counters. */
export interface DeliveryStats {
  /** Messages accepted by SQS. */
  delivered: number;
  /** Messages given up on after every attempt failed. */
  failed: number;
  /** Attempts that failed and were retried. */
  retried: number;
  /** Deliveries still under way. */
  inFlight: number;
}

/**
 * An SQS action sent in the AWS JSON protocol (`AmazonSQS.<action>`, the body as the API names
 * it, to the queues of `region`) by other means than the SDK over HTTP, e.g. into an SQS stand-in
 * in the same process; resolves with the parsed answer, rejects when SQS refused the request.
 */
export type SqsJsonTransport = (action: 'GetQueueUrl' | 'SendMessageBatch', input: Readonly<Record<string, unknown>>, region: string) => Promise<unknown>;

/** What SendMessageBatch answers, as far as delivery reads it. */
interface SendBatchOutput {
  Successful?: readonly { Id?: string }[];
  Failed?: readonly { Id?: string; Code?: string; Message?: string }[];
}

/** Options of {@link SqsTargetDispatcher}. */
export interface SqsTargetDispatcherOptions {
  /** SQS endpoint URL (a local fauxqs). */
  endpoint: string;
  /**
   * Sends to SQS through this instead of an SDK client over HTTP (the local stack: fauxqs in the
   * same process, whose request handling runs in full, without the SDK and the socket).
   * @defaultValue the SDK's SQS client at `endpoint`
   */
  transport?: SqsJsonTransport;
  /**
   * Attempts per message before it counts as failed.
   * @defaultValue 3
   */
  maxAttempts?: number;
  /**
   * Delay before the first retry; doubles on each further retry.
   * @defaultValue 100
   */
  retryDelayMs?: number;
  /**
   * Milliseconds to wait for a connection and for a response from SQS.
   * @defaultValue 5000
   */
  requestTimeoutMs?: number;
}

/** A parsed SQS queue ARN. */
export interface SqsQueueArn {
  /** Region of the queue. */
  region: string;
  /** Owning account id. */
  accountId: string;
  /** Queue name. */
  queueName: string;
}

/**
 * Parses `arn:<partition>:sqs:<region>:<account>:<name>`.
 *
 * @returns the parts, or `undefined` when the ARN is not an SQS queue ARN.
 */
export function parseSqsQueueArn(arn: string): SqsQueueArn | undefined {
  const match = /^arn:[a-z-]+:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)$/u.exec(arn);
  if (match === null) return undefined;
  return { region: match[1] as string, accountId: match[2] as string, queueName: match[3] as string };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

/**
 * Delivers target messages to SQS, batched per queue (SendMessageBatch), with the real
 * `@aws-sdk/client-sqs` or through {@link SqsTargetDispatcherOptions.transport}, resolving each
 * queue ARN to its URL once with GetQueueUrl. Failures never escape: each message is
 * retried with exponential backoff and, if every attempt fails, counted in
 * {@link DeliveryStats.failed}.
 */
export class SqsTargetDispatcher implements TargetDispatcher {
  readonly #endpoint: string;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  readonly #requestTimeoutMs: number;
  /** The transport given, or the SDK's SQS client of each region (the default). */
  readonly #transport: SqsJsonTransport;
  readonly #clients = new Map<string, SQSClient>();
  readonly #queueUrls = new Map<string, string>();
  readonly #batchers = new Map<string, Coalescer<BatchEntry, string | undefined>>();
  readonly #inFlight = new Set<Promise<void>>();
  #delivered = 0;
  #failed = 0;
  #retried = 0;

  constructor(options: SqsTargetDispatcherOptions) {
    this.#endpoint = options.endpoint;
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryDelayMs = options.retryDelayMs ?? 100;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#transport =
      options.transport ??
      ((action, input, region) => {
        const client = this.#client(region);
        return action === 'GetQueueUrl'
          ? client.send(new GetQueueUrlCommand(input as unknown as GetQueueUrlCommandInput))
          : client.send(new SendMessageBatchCommand(input as unknown as SendMessageBatchCommandInput));
      });
  }

  /** {@inheritDoc TargetDispatcher.dispatch} */
  dispatch(delivery: TargetDelivery): void {
    const work = this.#deliver(delivery).finally(() => {
      this.#inFlight.delete(work);
    });
    this.#inFlight.add(work);
  }

  /** Current counters. */
  stats(): DeliveryStats {
    return { delivered: this.#delivered, failed: this.#failed, retried: this.#retried, inFlight: this.#inFlight.size };
  }

  /** Resolves when every delivery started so far has been delivered or given up on. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight]);
    }
  }

  /** Drains in-flight deliveries, then releases the SQS clients. Idempotent. */
  async close(): Promise<void> {
    await this.drain();
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }

  async #deliver(delivery: TargetDelivery): Promise<void> {
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt += 1) {
      try {
        await this.#send(delivery);
        this.#delivered += 1;
        return;
      } catch {
        // A stale URL may be why the send failed (queue recreated): resolve it again next time.
        this.#queueUrls.delete(delivery.targetArn);
        if (attempt < this.#maxAttempts) {
          this.#retried += 1;
          await sleep(this.#retryDelayMs * 2 ** (attempt - 1));
        }
      }
    }
    this.#failed += 1;
  }

  async #send(delivery: TargetDelivery): Promise<void> {
    const arn = parseSqsQueueArn(delivery.targetArn);
    if (arn === undefined) throw new Error(`not an SQS queue ARN: ${delivery.targetArn}`);
    let queueUrl = this.#queueUrls.get(delivery.targetArn);
    if (queueUrl === undefined) {
      const found = (await this.#transport('GetQueueUrl', { QueueName: arn.queueName }, arn.region)) as { QueueUrl?: string };
      if (typeof found.QueueUrl !== 'string') throw new Error(`no URL for queue ${arn.queueName}`);
      queueUrl = found.QueueUrl;
      this.#queueUrls.set(delivery.targetArn, queueUrl);
    }
    const fifo = arn.queueName.endsWith('.fifo');
    const failure = await this.#batcher(queueUrl, arn.region).submit({
      Id: '0',
      MessageBody: delivery.body,
      ...(fifo ? { MessageGroupId: delivery.messageGroupId ?? delivery.eventId, MessageDeduplicationId: delivery.eventId } : {}),
    });
    if (failure !== undefined) throw new Error(`SQS refused the message: ${failure}`);
  }

  /**
   * Deliveries to one queue made at about the same time travel in one SendMessageBatch (≤ 10
   * entries, ≤ 256 KiB): a busy bus costs the SQS stand-in far fewer requests.
   */
  #batcher(queueUrl: string, region: string): Coalescer<BatchEntry, string | undefined> {
    let batcher = this.#batchers.get(queueUrl);
    if (batcher === undefined) {
      batcher = new Coalescer<BatchEntry, string | undefined>({
        maxItems: 10,
        lingerMs: 0,
        weight: { of: (entry) => Buffer.byteLength(entry.MessageBody), max: 256 * 1024 },
        flush: async (entries) => {
          const output = (await this.#transport('SendMessageBatch', { QueueUrl: queueUrl, Entries: entries.map((entry, i) => ({ ...entry, Id: String(i) })) }, region)) as SendBatchOutput;
          const failed = new Map((output.Failed ?? []).map((f) => [f.Id, `${f.Code ?? 'unknown'} ${f.Message ?? ''}`.trim()]));
          const succeeded = new Set((output.Successful ?? []).map((r) => r.Id));
          // An entry SQS answered neither way was not delivered: it is retried like a failure.
          return entries.map((_, i) => failed.get(String(i)) ?? (succeeded.has(String(i)) ? undefined : 'MissingResult'));
        },
      });
      this.#batchers.set(queueUrl, batcher);
    }
    return batcher;
  }

  #client(region: string): SQSClient {
    let client = this.#clients.get(region);
    if (client === undefined) {
      client = leanClient(new SQSClient({
        endpoint: this.#endpoint,
        region,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        // Retries are ours (counted in stats); the SDK's own would hide them.
        maxAttempts: 1,
        // The middleware chain built once, not per SendMessageBatch, selo's undici transport and
        // lean chain (the demo process's CPU; shared/aws).
        cacheMiddleware: true,
        sha256: KeyedSha256,
        requestHandler: new UndiciRequestHandler({
          connectTimeoutMs: this.#requestTimeoutMs,
          headersTimeoutMs: this.#requestTimeoutMs,
          bodyTimeoutMs: this.#requestTimeoutMs,
        }),
      }));
      this.#clients.set(region, client);
    }
    return client;
  }
}
