import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import type { LocalStack } from '../../infra/local/index.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { inboundSagaId, newTraceparent, paymentSagaId } from '../../shared/events/index.ts';
import type { CompensationRegistration, SagaState, SagaStore } from '../../shared/saga/index.ts';

const topology = resolveTopology('local');

/** An event as a downstream subscriber's queue receives it. */
export interface Delivered {
  id: string;
  detailType: string;
  source: string;
  detail: { sagaId: string; endToEndId?: string; requestId?: string; data: Record<string, unknown> };
}

/**
 * A downstream subscriber: its own rule (on `pattern`) and queue, drained in the background into
 * `events`, so a test can both wait for an event and count everything that arrived.
 */
export class Subscriber {
  readonly events: Delivered[] = [];
  readonly #stack: LocalStack;
  #url = '';
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(stack: LocalStack) {
    this.#stack = stack;
  }

  async start(name: string, pattern: Record<string, unknown>): Promise<void> {
    const { sqs, events } = this.#stack.clients;
    this.#url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl ?? '';
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.#url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    await events.send(new PutRuleCommand({ Name: name, EventBusName: topology.eventBusName, EventPattern: JSON.stringify(pattern) }));
    await events.send(new PutTargetsCommand({ Rule: name, EventBusName: topology.eventBusName, Targets: [{ Id: 'q', Arn: arn }] }));
    this.#running = true;
    this.#loop = this.#drain();
  }

  async #drain(): Promise<void> {
    const { sqs } = this.#stack.clients;
    while (this.#running) {
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: this.#url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 })).catch(() => ({ Messages: [] }));
      const messages = got.Messages ?? [];
      for (const m of messages) {
        const body = JSON.parse(m.Body ?? '{}') as { id: string; 'detail-type': string; source: string; detail: Delivered['detail'] };
        this.events.push({ id: body.id, detailType: body['detail-type'], source: body.source, detail: body.detail });
      }
      if (messages.length > 0) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.#url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) })).catch(() => undefined);
      }
    }
  }

  /** Events of one saga (by the detail's saga id, or the saga a DICT compensation undoes). */
  of(sagaId: string, detailType?: string): Delivered[] {
    return this.events.filter((e) => (e.detail.sagaId === sagaId || e.detail.data.compensates === sagaId) && (detailType === undefined || e.detailType === detailType));
  }

  /** Waits until `count` events of `detailType` arrived for `sagaId`. */
  async waitFor(sagaId: string, detailType: string, options: { count?: number; timeoutMs?: number } = {}): Promise<Delivered[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      const found = this.of(sagaId, detailType);
      if (found.length >= (options.count ?? 1)) return found;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`no ${detailType} for ${sagaId} within ${options.timeoutMs ?? 30_000} ms; got ${JSON.stringify(this.of(sagaId).map((e) => e.detailType))}`);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** A fresh EndToEndId of PSP 99999004. */
export function newEndToEndId(): string {
  return `E99999004202611281700${randomUUID().replace(/-/g, '').slice(0, 11)}`;
}

/** The reversal the sign worker registers at SIGNED (workers/sign/handler.ts). */
export function signReversal(endToEndId: string, amount = '150.00'): CompensationRegistration {
  return { step: 'sign', action: 'PaymentReversalRequested', params: { endToEndId, amount } };
}

/**
 * A payment saga walked through `path` the way the workers write it, the sign step registering
 * `compensation` (the sign worker's reversal unless told otherwise).
 */
export async function seedPayment(sagas: SagaStore, path: readonly SagaState[], options: { compensation?: CompensationRegistration | null; endToEndId?: string; inbound?: boolean } = {}): Promise<{ endToEndId: string; sagaId: string }> {
  const endToEndId = options.endToEndId ?? newEndToEndId();
  // `inbound`: a payment to one of our customers (IN#, begun RECEIVED), never compensated.
  const sagaId = options.inbound === true ? inboundSagaId(endToEndId) : paymentSagaId(endToEndId);
  await sagas.create({ sagaId, ids: { endToEndId }, reason: 'PaymentRequested', attempt: 1 });
  const compensation = options.compensation === undefined ? signReversal(endToEndId) : options.compensation;
  for (const to of path) {
    await sagas.transition({ sagaId, to, reason: `seeded ${to}`, attempt: 1, idempotencyKey: `seed-${to}`, ...(to === 'SIGNED' && compensation !== null ? { compensation } : {}) });
  }
  return { endToEndId, sagaId };
}

/** Publishes a failure fact on selo's bus as its producer would. */
export async function publishFailure(stack: LocalStack, detailType: string, ids: { sagaId: string; endToEndId?: string; requestId?: string }, data: unknown, source = 'selo.verify'): Promise<void> {
  const detail = { version: 1, ...ids, attempt: 1, traceparent: newTraceparent(), data };
  const put = await stack.clients.events.send(new PutEventsCommand({ Entries: [{ EventBusName: topology.eventBusName, Source: source, DetailType: detailType, Detail: JSON.stringify(detail) }] }));
  if (put.FailedEntryCount !== 0) throw new Error(`PutEvents refused ${detailType}`);
}
