import { randomUUID } from 'node:crypto';
import {
  CreateEventBusCommand,
  DeleteEventBusCommand,
  DeleteRuleCommand,
  DescribeEventBusCommand,
  DescribeRuleCommand,
  EventBridgeClient,
  InvalidEventPatternException,
  ListEventBusesCommand,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  ResourceNotFoundException,
  TestEventPatternCommand,
} from '@aws-sdk/client-eventbridge';
import type { PutEventsRequestEntry, Target } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEventBridgeEmulator } from '../../../infra/eventbridge/index.ts';
import type { JsonObject, StartedEventBridgeEmulator } from '../../../infra/eventbridge/index.ts';
import { inProcessSqs } from '../../../infra/local/sqs-in-process.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'us-east-1';

type FauxqsApp = ReturnType<typeof buildApp>;

let fauxqs: FauxqsApp;
let fauxqsEndpoint: string;
let emulator: StartedEventBridgeEmulator;
let events: EventBridgeClient;
let sqs: SQSClient;

beforeAll(async () => {
  // buildApp + listen instead of startFauxqs: startFauxqs always binds 0.0.0.0, and this
  // machine's rule is to bind test servers to 127.0.0.1 only.
  fauxqs = buildApp({ logger: false });
  const sqsEndpoint = await fauxqs.listen({ host: '127.0.0.1', port: 0 });
  fauxqsEndpoint = sqsEndpoint;
  emulator = await startEventBridgeEmulator({ sqsEndpoint, retryDelayMs: 10 });
  events = new EventBridgeClient({ endpoint: emulator.url, region, credentials });
  sqs = new SQSClient({ endpoint: sqsEndpoint, region, credentials });
});

afterAll(async () => {
  events.destroy();
  sqs.destroy();
  await emulator.close();
  await fauxqs.close();
});

function unique(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

async function createQueue(): Promise<{ url: string; arn: string }> {
  const created = await sqs.send(new CreateQueueCommand({ QueueName: unique('eb-target') }));
  const url = created.QueueUrl as string;
  const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return { url, arn: attributes.Attributes?.['QueueArn'] as string };
}

/** Every message the queue holds once the emulator has finished delivering. */
async function drainQueue(url: string): Promise<string[]> {
  await emulator.drain();
  const bodies: string[] = [];
  for (;;) {
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const messages = received.Messages ?? [];
    if (messages.length === 0) return bodies;
    bodies.push(...messages.map((message) => message.Body as string));
  }
}

async function ruleToQueue(pattern: unknown, target: Partial<Target> = {}, eventBusName?: string): Promise<{ rule: string; queue: { url: string; arn: string } }> {
  const rule = unique('rule');
  const queue = await createQueue();
  await events.send(new PutRuleCommand({ Name: rule, EventPattern: JSON.stringify(pattern), EventBusName: eventBusName }));
  const result = await events.send(new PutTargetsCommand({ Rule: rule, EventBusName: eventBusName, Targets: [{ Id: 'queue', Arn: queue.arn, ...target }] }));
  expect(result.FailedEntryCount).toBe(0);
  return { rule, queue };
}

function entry(source: string, detail: JsonObject, extra: Partial<PutEventsRequestEntry> = {}): PutEventsRequestEntry {
  return { Source: source, DetailType: 'PaymentRequested', Detail: JSON.stringify(detail), ...extra };
}

describe('EventBridge emulator with the real SDK clients', () => {
  it('delivers a matching event to the SQS target in the AWS envelope', async () => {
    const source = unique('core.banking');
    const { queue } = await ruleToQueue({ source: [source], 'detail-type': ['PaymentRequested'], detail: { amount: [{ numeric: ['>', 0] }] } });
    const time = new Date('2026-03-01T12:34:56.789Z');
    const put = await events.send(
      new PutEventsCommand({ Entries: [entry(source, { amount: 10, EndToEndId: 'E1' }, { Time: time, Resources: ['arn:aws:s3:::bucket'] })] }),
    );
    expect(put.FailedEntryCount).toBe(0);
    const eventId = put.Entries?.[0]?.EventId;
    expect(eventId).toMatch(/^[0-9a-f-]{36}$/u);

    const bodies = await drainQueue(queue.url);
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0] as string)).toEqual({
      version: '0',
      id: eventId,
      'detail-type': 'PaymentRequested',
      source,
      account: '000000000000',
      time: '2026-03-01T12:34:56Z',
      region: 'us-east-1',
      resources: ['arn:aws:s3:::bucket'],
      detail: { amount: 10, EndToEndId: 'E1' },
    });
  });

  it('fills in the current time without milliseconds when the entry has none', async () => {
    const source = unique('core.banking');
    const { queue } = await ruleToQueue({ source: [source] });
    const before = Date.now();
    await events.send(new PutEventsCommand({ Entries: [entry(source, { n: 1 })] }));
    const [body] = await drainQueue(queue.url);
    const envelope = JSON.parse(body as string) as { time: string };
    expect(envelope.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/u);
    expect(Date.parse(envelope.time)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('delivers nothing for an event that does not match', async () => {
    const source = unique('core.banking');
    const { queue } = await ruleToQueue({ source: [source], detail: { status: ['SETTLED'] } });
    const put = await events.send(new PutEventsCommand({ Entries: [entry(source, { status: 'REJECTED' }), entry(unique('other'), { status: 'SETTLED' })] }));
    expect(put.FailedEntryCount).toBe(0);
    expect(await drainQueue(queue.url)).toEqual([]);
  });

  it('delivers nothing through a disabled rule', async () => {
    const source = unique('core.banking');
    const { rule, queue } = await ruleToQueue({ source: [source] });
    await events.send(new PutRuleCommand({ Name: rule, EventPattern: JSON.stringify({ source: [source] }), State: 'DISABLED' }));
    await events.send(new PutEventsCommand({ Entries: [entry(source, { n: 1 })] }));
    expect(await drainQueue(queue.url)).toEqual([]);
  });

  it('routes events sent to a custom bus only to that bus’s rules', async () => {
    const bus = unique('selo-bus');
    await events.send(new CreateEventBusCommand({ Name: bus }));
    const source = unique('core.banking');
    const onBus = await ruleToQueue({ source: [source] }, {}, bus);
    const onDefault = await ruleToQueue({ source: [source] });
    await events.send(new PutEventsCommand({ Entries: [entry(source, { n: 1 }, { EventBusName: bus })] }));
    expect(await drainQueue(onBus.queue.url)).toHaveLength(1);
    expect(await drainQueue(onDefault.queue.url)).toEqual([]);
  });

  it('sends only the InputPath selection', async () => {
    const source = unique('selo.sign');
    const { queue } = await ruleToQueue({ source: [source] }, { InputPath: '$.detail.payment' });
    await events.send(new PutEventsCommand({ Entries: [entry(source, { payment: { EndToEndId: 'E2', amount: 5 }, other: true })] }));
    expect((await drainQueue(queue.url)).map((body) => JSON.parse(body) as unknown)).toEqual([{ EndToEndId: 'E2', amount: 5 }]);
  });

  it('sends the constant Input instead of the event', async () => {
    const source = unique('selo.sign');
    const { queue } = await ruleToQueue({ source: [source] }, { Input: '{"constant":true}' });
    await events.send(new PutEventsCommand({ Entries: [entry(source, { n: 1 })] }));
    expect(await drainQueue(queue.url)).toEqual(['{"constant":true}']);
  });

  it('shapes the message with an InputTransformer', async () => {
    const source = unique('selo.sign');
    const { rule, queue } = await ruleToQueue(
      { source: [source] },
      {
        InputTransformer: {
          InputPathsMap: { id: '$.detail.EndToEndId', amount: '$.detail.amount', type: '$.detail-type' },
          InputTemplate: '{"endToEndId": <id>, "amount": <amount>, "summary": "<type> <id>", "rule": "<aws.events.rule-name>"}',
        },
      },
    );
    await events.send(new PutEventsCommand({ Entries: [entry(source, { EndToEndId: 'E3', amount: 12.5 })] }));
    const bodies = await drainQueue(queue.url);
    expect(bodies.map((body) => JSON.parse(body) as unknown)).toEqual([
      { endToEndId: 'E3', amount: 12.5, summary: 'PaymentRequested E3', rule },
    ]);
  });

  it('rejects a PutEvents call with more than 10 entries as a ValidationException', async () => {
    const source = unique('core.banking');
    const entries = Array.from({ length: 11 }, (_, n) => entry(source, { n }));
    await expect(events.send(new PutEventsCommand({ Entries: entries }))).rejects.toMatchObject({
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('fails only the oversized entry and delivers its batch-mates', async () => {
    const source = unique('core.banking');
    const { queue } = await ruleToQueue({ source: [source] });
    const big = entry(source, { blob: 'x'.repeat(256 * 1024) });
    const put = await events.send(new PutEventsCommand({ Entries: [entry(source, { n: 1 }), big, entry(source, { n: 3 })] }));
    expect(put.FailedEntryCount).toBe(1);
    expect(put.Entries?.[0]?.EventId).toBeDefined();
    expect(put.Entries?.[1]).toMatchObject({ ErrorCode: 'InvalidArgument' });
    expect(put.Entries?.[1]?.ErrorMessage).toMatch(/exceeds the limit of 262144 bytes/u);
    expect(put.Entries?.[1]?.EventId).toBeUndefined();
    expect(put.Entries?.[2]?.EventId).toBeDefined();
    const delivered = (await drainQueue(queue.url)).map((body) => (JSON.parse(body) as { detail: { n: number } }).detail.n).sort();
    expect(delivered).toEqual([1, 3]);
  });

  it('reports entries missing Source, DetailType or Detail per entry', async () => {
    const source = unique('core.banking');
    const put = await events.send(
      new PutEventsCommand({
        Entries: [
          { DetailType: 'X', Detail: '{}' },
          { Source: source, Detail: '{}' },
          { Source: source, DetailType: 'X' },
          { Source: source, DetailType: 'X', Detail: 'not json' },
          entry(source, { ok: true }),
        ],
      }),
    );
    expect(put.FailedEntryCount).toBe(4);
    expect(put.Entries?.map((result) => result.ErrorCode ?? 'ok')).toEqual(['InvalidArgument', 'InvalidArgument', 'InvalidArgument', 'MalformedDetail', 'ok']);
    expect(put.Entries?.[0]?.ErrorMessage).toMatch(/Source/u);
    expect(put.Entries?.[1]?.ErrorMessage).toMatch(/DetailType/u);
    expect(put.Entries?.[2]?.ErrorMessage).toMatch(/Detail is a required argument/u);
  });

  it('agrees between TestEventPattern and delivery over a set of patterns and events', async () => {
    const source = unique('agree');
    const patterns = [
      { source: [source], detail: { status: ['SETTLED'] } },
      { source: [source], detail: { amount: [{ numeric: ['>=', 100] }] } },
      { source: [source], detail: { status: [{ 'anything-but': { prefix: 'REJ' } }] } },
      { source: [source], detail: { reason: [{ exists: false }] } },
      { source: [source], $or: [{ detail: { tags: ['urgent'] } }, { detail: { channel: [{ 'equals-ignore-case': 'PIX' }] } }] },
      { source: [source], detail: { key: [{ wildcard: 'E*-???' }] } },
    ];
    const details: JsonObject[] = [
      { n: 0, status: 'SETTLED', amount: 50 },
      { n: 1, status: 'REJECTED', amount: 500, reason: 'AB03' },
      { n: 2, status: 'PENDING', amount: 100, tags: ['batch', 'urgent'] },
      { n: 3, status: 'REJECTED', amount: 1, channel: 'pix', reason: null },
      { n: 4, status: 'SETTLED', key: 'E123-???' },
    ];
    const routes = [];
    for (const pattern of patterns) routes.push(await ruleToQueue(pattern));
    const put = await events.send(new PutEventsCommand({ Entries: details.map((detail) => entry(source, detail)) }));
    expect(put.FailedEntryCount).toBe(0);

    const expected: number[][] = [];
    for (const pattern of patterns) {
      const matching: number[] = [];
      for (const detail of details) {
        const event = {
          version: '0',
          id: randomUUID(),
          'detail-type': 'PaymentRequested',
          source,
          account: '000000000000',
          time: '2026-01-01T00:00:00Z',
          region,
          resources: [],
          detail,
        };
        const result = await events.send(new TestEventPatternCommand({ EventPattern: JSON.stringify(pattern), Event: JSON.stringify(event) }));
        if (result.Result === true) matching.push(detail['n'] as number);
      }
      expected.push(matching);
    }
    const delivered: number[][] = [];
    for (const { queue } of routes) {
      delivered.push((await drainQueue(queue.url)).map((body) => (JSON.parse(body) as { detail: { n: number } }).detail.n).sort());
    }
    expect(delivered).toEqual(expected);
    // Guard against a vacuous agreement: the set must exercise both outcomes.
    expect(expected.flat().length).toBeGreaterThan(0);
    expect(expected.some((matching) => matching.length < details.length)).toBe(true);
  });

  it('raises UnknownOperationException for an action EventBridge does not have', async () => {
    const client = new EventBridgeClient({ endpoint: emulator.url, region, credentials });
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        request.headers['x-amz-target'] = 'AWSEvents.LaunchRocket';
        return next(args);
      },
      { step: 'build', name: 'rewriteTarget' },
    );
    try {
      await expect(client.send(new ListEventBusesCommand({}))).rejects.toMatchObject({ name: 'UnknownOperationException', $metadata: { httpStatusCode: 400 } });
    } finally {
      client.destroy();
    }
  });

  it('answers a malformed body with a 400 ValidationException and stays up', async () => {
    const response = await fetch(emulator.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSEvents.PutEvents' },
      body: '{"Entries": [',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('ValidationException');
    expect(await response.json()).toMatchObject({ __type: 'ValidationException' });

    const wrongShape = await fetch(emulator.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSEvents.PutRule' },
      body: '[1, 2, 3]',
    });
    expect(wrongShape.status).toBe(400);

    const buses = await events.send(new ListEventBusesCommand({}));
    expect(buses.EventBuses?.map((bus) => bus.Name)).toContain('default');
  });

  it('raises ValidationException when a required parameter is missing', async () => {
    await expect(events.send(new PutRuleCommand({ Name: undefined, EventPattern: '{"source":["a"]}' }))).rejects.toMatchObject({
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
    });
  });
});

describe('EventBridge emulator rules, targets and buses', () => {
  it('rejects an invalid event pattern with InvalidEventPatternException from PutRule and TestEventPattern', async () => {
    await expect(events.send(new PutRuleCommand({ Name: unique('rule'), EventPattern: '{"source":"not-an-array"}' }))).rejects.toBeInstanceOf(
      InvalidEventPatternException,
    );
    await expect(
      events.send(new TestEventPatternCommand({ EventPattern: '{"source":[{"bogus":1}]}', Event: JSON.stringify({ id: '1', account: '1', source: 'a', time: 't', region, 'detail-type': 'x' }) })),
    ).rejects.toBeInstanceOf(InvalidEventPatternException);
  });

  it('raises ResourceNotFoundException for a rule or bus that does not exist', async () => {
    await expect(events.send(new DescribeRuleCommand({ Name: unique('missing') }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(events.send(new DescribeEventBusCommand({ Name: unique('missing') }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(events.send(new PutRuleCommand({ Name: unique('rule'), EventPattern: '{"source":["a"]}', EventBusName: unique('missing') }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await expect(events.send(new PutTargetsCommand({ Rule: unique('missing'), Targets: [{ Id: 'a', Arn: 'arn:aws:sqs:us-east-1:000000000000:q' }] }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it('refuses to delete a rule that still has targets, and deletes it once they are removed', async () => {
    const { rule } = await ruleToQueue({ source: ['x'] });
    await expect(events.send(new DeleteRuleCommand({ Name: rule }))).rejects.toMatchObject({ name: 'ValidationException' });
    const targets = await events.send(new ListTargetsByRuleCommand({ Rule: rule }));
    expect(targets.Targets?.map((target) => target.Id)).toEqual(['queue']);
    await events.send(new RemoveTargetsCommand({ Rule: rule, Ids: ['queue'] }));
    await events.send(new DeleteRuleCommand({ Name: rule }));
    await expect(events.send(new DescribeRuleCommand({ Name: rule }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('describes and lists rules by name prefix', async () => {
    const prefix = unique('listed');
    await events.send(new PutRuleCommand({ Name: `${prefix}-a`, EventPattern: '{"source":["a"]}', Description: 'first', State: 'DISABLED' }));
    await events.send(new PutRuleCommand({ Name: `${prefix}-b`, EventPattern: '{"source":["b"]}' }));
    await events.send(new PutRuleCommand({ Name: unique('unlisted'), EventPattern: '{"source":["c"]}' }));
    const listed = await events.send(new ListRulesCommand({ NamePrefix: prefix }));
    expect(listed.Rules?.map((rule) => rule.Name)).toEqual([`${prefix}-a`, `${prefix}-b`]);
    const described = await events.send(new DescribeRuleCommand({ Name: `${prefix}-a` }));
    expect(described).toMatchObject({
      Name: `${prefix}-a`,
      Arn: `arn:aws:events:us-east-1:000000000000:rule/${prefix}-a`,
      EventPattern: '{"source":["a"]}',
      State: 'DISABLED',
      Description: 'first',
      EventBusName: 'default',
    });
  });

  it('reports a non-SQS target as a failed entry and keeps the valid ones', async () => {
    const rule = unique('rule');
    const queue = await createQueue();
    await events.send(new PutRuleCommand({ Name: rule, EventPattern: '{"source":["a"]}' }));
    const result = await events.send(
      new PutTargetsCommand({
        Rule: rule,
        Targets: [
          { Id: 'lambda', Arn: 'arn:aws:lambda:us-east-1:000000000000:function:f' },
          { Id: 'sqs', Arn: queue.arn },
          { Id: 'both', Arn: queue.arn, Input: '{}', InputPath: '$.detail' },
        ],
      }),
    );
    expect(result.FailedEntryCount).toBe(2);
    expect(result.FailedEntries?.map((failed) => failed.TargetId)).toEqual(['lambda', 'both']);
    const targets = await events.send(new ListTargetsByRuleCommand({ Rule: rule }));
    expect(targets.Targets?.map((target) => target.Id)).toEqual(['sqs']);
  });

  it('creates, describes, lists and deletes a custom event bus', async () => {
    const name = unique('bus');
    const created = await events.send(new CreateEventBusCommand({ Name: name, Description: 'payments' }));
    expect(created.EventBusArn).toBe(`arn:aws:events:us-east-1:000000000000:event-bus/${name}`);
    const described = await events.send(new DescribeEventBusCommand({ Name: name }));
    expect(described).toMatchObject({ Name: name, Arn: created.EventBusArn, Description: 'payments' });
    expect(described.CreationTime).toBeInstanceOf(Date);
    const listed = await events.send(new ListEventBusesCommand({ NamePrefix: name }));
    expect(listed.EventBuses?.map((bus) => bus.Name)).toEqual([name]);
    await expect(events.send(new CreateEventBusCommand({ Name: name }))).rejects.toMatchObject({ name: 'ResourceAlreadyExistsException' });
    await events.send(new DeleteEventBusCommand({ Name: name }));
    await expect(events.send(new DescribeEventBusCommand({ Name: name }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(events.send(new DeleteEventBusCommand({ Name: 'default' }))).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('EventBridge emulator when SQS is down', () => {
  it('counts the failed delivery after retrying and keeps serving requests', async () => {
    // A port that was just released: nothing listens there.
    const dead = buildApp({ logger: false });
    const deadEndpoint = await dead.listen({ host: '127.0.0.1', port: 0 });
    await dead.close();
    const isolated = await startEventBridgeEmulator({ sqsEndpoint: deadEndpoint, deliveryAttempts: 3, retryDelayMs: 5 });
    const client = new EventBridgeClient({ endpoint: isolated.url, region, credentials });
    try {
      await client.send(new PutRuleCommand({ Name: 'to-dead-queue', EventPattern: '{"source":["selo.sign"]}' }));
      await client.send(new PutTargetsCommand({ Rule: 'to-dead-queue', Targets: [{ Id: 'q', Arn: 'arn:aws:sqs:us-east-1:000000000000:gone' }] }));
      const put = await client.send(new PutEventsCommand({ Entries: [entry('selo.sign', { n: 1 })] }));
      expect(put.FailedEntryCount).toBe(0);
      await isolated.drain();
      expect(isolated.stats()).toEqual({ delivered: 0, failed: 1, retried: 2, inFlight: 0 });
      const buses = await client.send(new ListEventBusesCommand({}));
      expect(buses.EventBuses?.length).toBe(1);
    } finally {
      client.destroy();
      await isolated.close();
      await isolated.close();
    }
  });
});

describe('EventBridge emulator delivering into fauxqs in the same process (inProcessSqs)', () => {
  it('delivers matching events as SQS messages without the SDK, and counts a refused delivery as failed after its retries', async () => {
    // Nothing listens at sqsEndpoint: every delivery must go through the transport.
    const isolated = await startEventBridgeEmulator({ sqsEndpoint: 'http://127.0.0.1:9', sqsTransport: inProcessSqs(fauxqs, fauxqsEndpoint), deliveryAttempts: 2, retryDelayMs: 5 });
    const client = new EventBridgeClient({ endpoint: isolated.url, region, credentials });
    try {
      const queue = await createQueue();
      const rule = unique('rule');
      await client.send(new PutRuleCommand({ Name: rule, EventPattern: '{"source":["selo.sign"]}' }));
      // The first target is a queue that does not exist: fauxqs refuses, the emulator retries once and gives up.
      await client.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'q', Arn: queue.arn }, { Id: 'gone', Arn: `arn:aws:sqs:us-east-1:000000000000:${unique('gone')}` }] }));
      const put = await client.send(new PutEventsCommand({ Entries: Array.from({ length: 10 }, (_, n) => entry('selo.sign', { n })) }));
      expect(put.FailedEntryCount).toBe(0);
      await isolated.drain();
      expect(isolated.stats()).toEqual({ delivered: 10, failed: 10, retried: 10, inFlight: 0 });
      const bodies = await drainQueue(queue.url);
      expect(bodies.map((body) => (JSON.parse(body) as { detail: { n: number } }).detail.n).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(JSON.parse(bodies[0] as string)).toMatchObject({ version: '0', source: 'selo.sign', 'detail-type': 'PaymentRequested', account: '000000000000', region: 'us-east-1' });
    } finally {
      client.destroy();
      await isolated.close();
    }
  });

  it('names the action and SQS’s error when the stand-in refuses a request', async () => {
    const send = inProcessSqs(fauxqs, fauxqsEndpoint);
    await expect(send('GetQueueUrl', { QueueName: unique('absent') }, region)).rejects.toMatchObject({ code: 'SQS_REQUEST_REFUSED', message: expect.stringMatching(/^SQS GetQueueUrl answered 400 .*QueueDoesNotExist/u) as unknown });
    const queue = await createQueue();
    const sent = (await send('SendMessageBatch', { QueueUrl: queue.url, Entries: [{ Id: '0', MessageBody: 'one' }] }, region)) as { Successful?: { Id: string }[] };
    expect(sent.Successful?.map((s) => s.Id)).toEqual(['0']);
    expect(await drainQueue(queue.url)).toEqual(['one']);
  });

  it('finds a target queue in the region its ARN names, not in fauxqs’s default one', async () => {
    const elsewhere = new SQSClient({ endpoint: fauxqsEndpoint, region: 'sa-east-1', credentials });
    const isolated = await startEventBridgeEmulator({ sqsEndpoint: 'http://127.0.0.1:9', sqsTransport: inProcessSqs(fauxqs, fauxqsEndpoint), deliveryAttempts: 1 });
    const client = new EventBridgeClient({ endpoint: isolated.url, region, credentials });
    try {
      const name = unique('sa-target');
      const url = (await elsewhere.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
      const arn = (await elsewhere.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.['QueueArn'] as string;
      expect(arn).toBe(`arn:aws:sqs:sa-east-1:000000000000:${name}`);
      const rule = unique('rule');
      await client.send(new PutRuleCommand({ Name: rule, EventPattern: '{"source":["selo.verify"]}' }));
      await client.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'q', Arn: arn }] }));
      await client.send(new PutEventsCommand({ Entries: [entry('selo.verify', { n: 1 })] }));
      await isolated.drain();
      expect(isolated.stats()).toMatchObject({ delivered: 1, failed: 0 });
      const received = await elsewhere.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }));
      expect(received.Messages?.map((m) => (JSON.parse(m.Body as string) as { detail: unknown }).detail)).toEqual([{ n: 1 }]);
    } finally {
      client.destroy();
      elsewhere.destroy();
      await isolated.close();
    }
  });
});
