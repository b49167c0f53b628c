// Public surface of selo's local EventBridge emulator (DESIGN §3: no emulator exists on npm).
export { EventBridgeEmulator, EventBridgeEmulatorOptionsError, startEventBridgeEmulator } from './eventbridge-emulator.ts';
export type { EventBridgeEmulatorOptions, StartedEventBridgeEmulator } from './eventbridge-emulator.ts';
export {
  InvalidEventPatternError,
  isJsonObject,
  matchesEventPattern,
  parseEventPattern,
  validateEventPattern,
} from './event-pattern.ts';
export type { EventPattern, JsonObject, JsonValue } from './event-pattern.ts';
export {
  DEFAULT_EVENT_BUS_NAME,
  EventBusModel,
  MAX_PUT_EVENTS_ENTRIES,
  MAX_PUT_EVENTS_ENTRY_BYTES,
  MAX_TARGETS_PER_RULE,
  formatEventTime,
  putEventsEntrySize,
} from './event-bus-model.ts';
export type { ActionInput, EventBusModelOptions, PutEventsEntrySizeInput } from './event-bus-model.ts';
export { EventBridgeApiError } from './errors.ts';
export { SqsTargetDispatcher, parseSqsQueueArn } from './sqs-delivery.ts';
export type { DeliveryStats, SqsJsonTransport, SqsQueueArn, SqsTargetDispatcherOptions, TargetDelivery, TargetDispatcher } from './sqs-delivery.ts';
export { checkTargetInput, renderTargetInput } from './target-input.ts';
export type { InputTransformerSpec, TargetInputContext, TargetInputSpec } from './target-input.ts';
