import { DeleteRuleCommand, PutRuleCommand, PutTargetsCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../shared/aws/index.ts';

/** One event as the downstream system received it. */
export interface DownstreamEvent {
  detailType: string;
  source: string;
  /** The payment's EndToEndId (detail `endToEndId`), when the event names one. */
  endToEndId: string | undefined;
  sagaId: string | undefined;
  data: unknown;
  receivedAt: number;
}

/** Options of {@link DownstreamSubscriber.create}. */
export interface DownstreamSubscriberOptions {
  clients: Pick<AwsClients, 'sqs' | 'events'>;
  eventBusName: string;
  /** Queue and rule name. */
  name: string;
  /** The `detail-type`s to subscribe to. */
  detailTypes: readonly string[];
  /** Parallel long polls. @defaultValue 4 */
  pollers?: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A downstream system as the README tells one to subscribe: its own SQS queue and its own
 * EventBridge rule on `detail-type`. Polls until closed; `close` removes the rule and the queue.
 */
export class DownstreamSubscriber {
  readonly #options: DownstreamSubscriberOptions;
  readonly #queueUrl: string;
  #running = false;
  #loops: Promise<void>[] = [];
  #abort = new AbortController();

  private constructor(options: DownstreamSubscriberOptions, queueUrl: string) {
    this.#options = options;
    this.#queueUrl = queueUrl;
  }

  /** Creates the queue and the rule (with the queue as its target). */
  static async create(options: DownstreamSubscriberOptions): Promise<DownstreamSubscriber> {
    const { sqs, events: eventBridge } = options.clients;
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: options.name }))).QueueUrl;
    if (queueUrl === undefined) throw new Error(`CreateQueue ${options.name} returned no QueueUrl`);
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    if (arn === undefined) throw new Error(`queue ${options.name} has no QueueArn`);
    await eventBridge.send(
      new PutRuleCommand({
        Name: options.name,
        EventBusName: options.eventBusName,
        EventPattern: JSON.stringify({ source: [{ prefix: 'selo.' }], 'detail-type': [...options.detailTypes] }),
        State: 'ENABLED',
      }),
    );
    const targets = await eventBridge.send(new PutTargetsCommand({ Rule: options.name, EventBusName: options.eventBusName, Targets: [{ Id: 'downstream', Arn: arn }] }));
    if ((targets.FailedEntryCount ?? 0) > 0) throw new Error(`PutTargets for ${options.name} failed: ${JSON.stringify(targets.FailedEntries)}`);
    return new DownstreamSubscriber(options, queueUrl);
  }

  /** Starts polling; `onEvent` gets every event, in arrival order per poller. */
  start(onEvent: (event: DownstreamEvent) => void): void {
    if (this.#running) return;
    this.#running = true;
    const pollers = this.#options.pollers ?? 4;
    for (let i = 0; i < pollers; i++) this.#loops.push(this.#poll(onEvent));
  }

  async #poll(onEvent: (event: DownstreamEvent) => void): Promise<void> {
    const { sqs } = this.#options.clients;
    while (this.#running) {
      let messages;
      try {
        messages = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: this.#queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }), { abortSignal: this.#abort.signal })).Messages ?? [];
      } catch {
        if (!this.#running) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      const receivedAt = Date.now();
      for (const message of messages) {
        let body: unknown;
        try {
          body = JSON.parse(message.Body ?? '');
        } catch {
          continue;
        }
        if (!isRecord(body)) continue;
        const detail = isRecord(body.detail) ? body.detail : {};
        onEvent({
          detailType: typeof body['detail-type'] === 'string' ? body['detail-type'] : '',
          source: typeof body.source === 'string' ? body.source : '',
          endToEndId: typeof detail.endToEndId === 'string' ? detail.endToEndId : undefined,
          sagaId: typeof detail.sagaId === 'string' ? detail.sagaId : undefined,
          data: detail.data,
          receivedAt,
        });
      }
      if (messages.length > 0) {
        await sqs
          .send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }))
          .catch(() => undefined);
      }
    }
  }

  /** Stops polling and removes the rule, its target and the queue; idempotent. */
  async close(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
    const { sqs, events: eventBridge } = this.#options.clients;
    const { name, eventBusName } = this.#options;
    await eventBridge.send(new RemoveTargetsCommand({ Rule: name, EventBusName: eventBusName, Ids: ['downstream'] })).catch(() => undefined);
    await eventBridge.send(new DeleteRuleCommand({ Name: name, EventBusName: eventBusName })).catch(() => undefined);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: this.#queueUrl })).catch(() => undefined);
  }
}
