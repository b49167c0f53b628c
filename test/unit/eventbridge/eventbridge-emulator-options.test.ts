import { describe, expect, it } from 'vitest';
import { EventBridgeEmulator, EventBridgeEmulatorOptionsError } from '../../../infra/eventbridge/index.ts';
import type { EventBridgeEmulatorOptions } from '../../../infra/eventbridge/index.ts';

const valid: EventBridgeEmulatorOptions = { sqsEndpoint: 'http://127.0.0.1:4566' };

describe('EventBridgeEmulator options', () => {
  it('accepts the minimal options and is not started until start() is called', () => {
    const emulator = new EventBridgeEmulator(valid);
    expect(() => emulator.url).toThrow(/not started/u);
  });

  it.each<[string, Partial<EventBridgeEmulatorOptions>]>([
    ['sqsEndpoint', { sqsEndpoint: 'not a url' }],
    ['port', { port: 70_000 }],
    ['accountId', { accountId: '42' }],
    ['region', { region: 'mars' }],
    ['deliveryAttempts', { deliveryAttempts: 0 }],
    ['retryDelayMs', { retryDelayMs: -1 }],
  ])('rejects a bad %s with an error naming the field and the value', (field, override) => {
    let caught: unknown;
    try {
      new EventBridgeEmulator({ ...valid, ...override });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EventBridgeEmulatorOptionsError);
    expect((caught as Error).message).toContain(`EventBridgeEmulatorOptions.${field}`);
    expect((caught as Error).message).toContain(JSON.stringify(Object.values(override)[0]));
  });
});
