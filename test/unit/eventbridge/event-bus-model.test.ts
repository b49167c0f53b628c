import { describe, expect, it } from 'vitest';
import {
  EventBridgeApiError,
  EventBusModel,
  MAX_PUT_EVENTS_ENTRY_BYTES,
  checkTargetInput,
  formatEventTime,
  putEventsEntrySize,
  renderTargetInput,
} from '../../../infra/eventbridge/index.ts';
import type { JsonObject, TargetDelivery, TargetDispatcher } from '../../../infra/eventbridge/index.ts';

class RecordingDispatcher implements TargetDispatcher {
  readonly deliveries: TargetDelivery[] = [];

  dispatch(delivery: TargetDelivery): void {
    this.deliveries.push(delivery);
  }
}

const fixedNow = new Date('2026-05-04T03:02:01.999Z');

function newModel(): { model: EventBusModel; dispatcher: RecordingDispatcher } {
  const dispatcher = new RecordingDispatcher();
  const model = new EventBusModel({ region: 'sa-east-1', accountId: '123456789012', dispatcher, now: () => fixedNow });
  return { model, dispatcher };
}

function awsTypeThrownBy(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return error instanceof EventBridgeApiError ? error.awsType : `not an EventBridgeApiError: ${String(error)}`;
  }
  return undefined;
}

const queueArn = 'arn:aws:sqs:sa-east-1:123456789012:sign';

describe('putEventsEntrySize', () => {
  it('counts 14 bytes for Time and the UTF-8 bytes of Source, DetailType, Detail and each resource', () => {
    const size = putEventsEntrySize({
      Time: 1_700_000_000,
      Source: 'selo.sign',
      DetailType: 'MessageSigned',
      Detail: '{"name":"João"}',
      Resources: ['arn:a', 'arn:bb'],
    });
    expect(size).toBe(14 + 9 + 13 + Buffer.byteLength('{"name":"João"}') + 5 + 6);
    expect(Buffer.byteLength('{"name":"João"}')).toBe(16);
  });

  it('counts nothing for an absent Time', () => {
    expect(putEventsEntrySize({ Source: 'a', DetailType: 'b', Detail: '{}' })).toBe(4);
  });
});

describe('formatEventTime', () => {
  it('writes ISO 8601 UTC without milliseconds, as AWS does in events', () => {
    expect(formatEventTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05Z');
  });
});

describe('renderTargetInput', () => {
  const event: JsonObject = { 'detail-type': 'MessageSigned', detail: { id: 'E1', amount: 3, tags: ['a'], quote: 'say "hi"' } };
  const context = { ruleName: 'r', ruleArn: 'arn:aws:events:sa-east-1:123456789012:rule/r', ingestionTime: '2026-01-01T00:00:00Z' };

  it('sends the whole event when no input option is set', () => {
    expect(JSON.parse(renderTargetInput({}, event, context))).toEqual(event);
  });

  it('inserts strings without quotes inside a JSON string and as JSON outside one', () => {
    const body = renderTargetInput(
      { InputTransformer: { InputPathsMap: { id: '$.detail.id', tags: '$.detail.tags', q: '$.detail.quote' }, InputTemplate: '{"a": <id>, "b": "id=<id>", "t": <tags>, "q": "<q>"}' } },
      event,
      context,
    );
    expect(JSON.parse(body)).toEqual({ a: 'E1', b: 'id=E1', t: ['a'], q: 'say "hi"' });
  });

  it('substitutes raw text into a template that is a quoted string', () => {
    const body = renderTargetInput(
      { InputTransformer: { InputPathsMap: { id: '$.detail.id', type: '$.detail-type' }, InputTemplate: '"<id> is <type>"' } },
      event,
      context,
    );
    expect(body).toBe('"E1 is MessageSigned"');
  });

  it('yields null for a path that leads nowhere', () => {
    const body = renderTargetInput({ InputTransformer: { InputPathsMap: { x: '$.detail.missing' }, InputTemplate: '{"x": <x>}' } }, event, context);
    expect(JSON.parse(body)).toEqual({ x: null });
  });

  it('offers the predefined rule variables', () => {
    const body = renderTargetInput({ InputTransformer: { InputTemplate: '{"rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}' } }, event, context);
    expect(JSON.parse(body)).toEqual({ rule: 'r', event });
  });

  it('rejects more than one input option, bad JSON and bad paths', () => {
    expect(checkTargetInput({ Input: '{}', InputPath: '$' })).toMatch(/Only one/u);
    expect(checkTargetInput({ Input: '{nope' })).toMatch(/not valid JSON/u);
    expect(checkTargetInput({ InputPath: 'detail' })).toMatch(/not a valid JSON path/u);
    expect(checkTargetInput({ InputTransformer: { InputPathsMap: { 'aws.x': '$' }, InputTemplate: '' } })).toMatch(/reserved/u);
    expect(checkTargetInput({ InputPath: "$.detail['a-b'][0]" })).toBeUndefined();
  });
});

describe('EventBusModel', () => {
  it('hands one delivery per matching rule target to the dispatcher', () => {
    const { model, dispatcher } = newModel();
    model.handle('PutRule', { Name: 'sign', EventPattern: '{"detail-type":["PaymentRequested"]}' });
    model.handle('PutTargets', { Rule: 'sign', Targets: [{ Id: 'q', Arn: queueArn }] });
    const result = model.handle('PutEvents', {
      Entries: [
        { Source: 'core.banking', DetailType: 'PaymentRequested', Detail: '{"a":1}' },
        { Source: 'core.banking', DetailType: 'DictRequested', Detail: '{"a":2}' },
      ],
    });
    expect(result['FailedEntryCount']).toBe(0);
    expect(dispatcher.deliveries).toHaveLength(1);
    const envelope = JSON.parse(dispatcher.deliveries[0]?.body as string) as JsonObject;
    expect(envelope).toMatchObject({ account: '123456789012', region: 'sa-east-1', time: '2026-05-04T03:02:01Z', detail: { a: 1 } });
    expect(dispatcher.deliveries[0]?.targetArn).toBe(queueArn);
  });

  it('fails an entry one byte over 256 KB and accepts one exactly at the limit', () => {
    const { model } = newModel();
    const base = { Source: 'a', DetailType: 'b' };
    const padding = MAX_PUT_EVENTS_ENTRY_BYTES - 2 - '{"x":""}'.length;
    const atLimit = { ...base, Detail: `{"x":"${'y'.repeat(padding)}"}` };
    const overLimit = { ...base, Detail: `{"x":"${'y'.repeat(padding + 1)}"}` };
    expect(putEventsEntrySize(atLimit)).toBe(MAX_PUT_EVENTS_ENTRY_BYTES);
    const result = model.handle('PutEvents', { Entries: [atLimit, overLimit] });
    expect(result['FailedEntryCount']).toBe(1);
    expect((result['Entries'] as JsonObject[]).map((entry) => entry['ErrorCode'] ?? 'ok')).toEqual(['ok', 'InvalidArgument']);
  });

  it('throws ResourceNotFoundException for targets of a rule that does not exist', () => {
    const { model } = newModel();
    expect(awsTypeThrownBy(() => model.handle('ListTargetsByRule', { Rule: 'nope' }))).toBe('ResourceNotFoundException');
  });

  it('keeps targets when PutRule updates an existing rule', () => {
    const { model } = newModel();
    model.handle('PutRule', { Name: 'r', EventPattern: '{"source":["a"]}' });
    model.handle('PutTargets', { Rule: 'r', Targets: [{ Id: 'q', Arn: queueArn }] });
    model.handle('PutRule', { Name: 'r', EventPattern: '{"source":["b"]}' });
    expect(model.handle('ListTargetsByRule', { Rule: 'r' })['Targets']).toEqual([{ Id: 'q', Arn: queueArn }]);
  });

  it('limits a rule to five targets', () => {
    const { model } = newModel();
    model.handle('PutRule', { Name: 'r', EventPattern: '{"source":["a"]}' });
    const targets = Array.from({ length: 6 }, (_, n) => ({ Id: `t${n}`, Arn: queueArn }));
    expect(awsTypeThrownBy(() => model.handle('PutTargets', { Rule: 'r', Targets: targets }))).toBe('LimitExceededException');
  });
});
