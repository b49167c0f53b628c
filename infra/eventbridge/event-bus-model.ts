import { randomUUID } from 'node:crypto';
import { isJsonObject, matchesEventPattern, parseEventPattern, InvalidEventPatternError } from './event-pattern.ts';
import type { EventPattern, JsonObject, JsonValue } from './event-pattern.ts';
import {
  EventBridgeApiError,
  invalidEventPatternError,
  limitExceededError,
  resourceAlreadyExistsError,
  resourceNotFoundError,
  validationError,
} from './errors.ts';
import { parseSqsQueueArn } from './sqs-delivery.ts';
import type { TargetDispatcher } from './sqs-delivery.ts';
import { checkTargetInput, renderTargetInput } from './target-input.ts';
import type { InputTransformerSpec, TargetInputSpec } from './target-input.ts';

/** Name of the event bus every account has. */
export const DEFAULT_EVENT_BUS_NAME = 'default';
/** Most entries one PutEvents call may carry (AWS quota). */
export const MAX_PUT_EVENTS_ENTRIES = 10;
/** Largest PutEvents entry, in bytes, as sized by {@link putEventsEntrySize} (256 KB). */
export const MAX_PUT_EVENTS_ENTRY_BYTES = 256 * 1024;
/** Most targets one rule may have (AWS quota). */
export const MAX_TARGETS_PER_RULE = 5;

/** Options of {@link EventBusModel}. */
export interface EventBusModelOptions {
  /** Region written into ARNs and events. */
  region: string;
  /** Account id written into ARNs and events. */
  accountId: string;
  /** Where matched events go. */
  dispatcher: TargetDispatcher;
  /** Clock; injectable for tests. @defaultValue `() => new Date()` */
  now?: () => Date;
}

/** The request parameters of an action, as decoded from the JSON body. */
export type ActionInput = JsonObject;

/** The parts of a PutEvents entry that count towards its size. */
export interface PutEventsEntrySizeInput {
  Time?: unknown;
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  Resources?: unknown;
}

/**
 * Size of a PutEvents entry as the AWS page "Calculating PutEvents event entry size" defines
 * it: 14 bytes for `Time` when present, plus the UTF-8 byte lengths of `Source`, `DetailType`,
 * `Detail` and of each `Resources` entry.
 */
export function putEventsEntrySize(entry: PutEventsEntrySizeInput): number {
  const bytes = (value: unknown): number => (typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : 0);
  let size = entry.Time === undefined || entry.Time === null ? 0 : 14;
  size += bytes(entry.Source) + bytes(entry.DetailType) + bytes(entry.Detail);
  if (Array.isArray(entry.Resources)) {
    for (const resource of entry.Resources) size += bytes(resource);
  }
  return size;
}

/**
 * An EventBridge timestamp the way AWS writes it in events: ISO 8601, UTC, no milliseconds.
 */
export function formatEventTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/u, 'Z');
}

interface TargetState {
  Id: string;
  Arn: string;
  RoleArn?: string;
  Input?: string;
  InputPath?: string;
  InputTransformer?: InputTransformerSpec;
  SqsParameters?: { MessageGroupId?: string };
}

interface RuleState {
  name: string;
  arn: string;
  eventBusName: string;
  eventPatternText?: string;
  eventPattern?: EventPattern;
  scheduleExpression?: string;
  state: string;
  description?: string;
  roleArn?: string;
  targets: Map<string, TargetState>;
}

interface EventBusState {
  name: string;
  arn: string;
  description?: string;
  creationTime: Date;
  lastModifiedTime: Date;
  rules: Map<string, RuleState>;
}

const RULE_NAME = /^[.\-_A-Za-z0-9]{1,64}$/u;
const BUS_NAME = /^[/.\-_A-Za-z0-9]{1,256}$/u;
const TARGET_ID = /^[.\-_A-Za-z0-9]{1,64}$/u;
const RULE_STATES = new Set(['ENABLED', 'DISABLED', 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS']);
// TestEventPattern requires these envelope fields (TestEventPattern API reference).
const REQUIRED_TEST_EVENT_FIELDS = ['id', 'account', 'source', 'time', 'region', 'detail-type'];

function requireString(input: ActionInput, name: string): string {
  const value = input[name];
  if (typeof value !== 'string' || value === '') {
    throw validationError(`1 validation error detected: Value at '${lowerFirst(name)}' failed to satisfy constraint: Member must not be null`);
  }
  return value;
}

function optionalString(input: ActionInput, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw validationError(`Parameter ${name} must be a string.`);
  return value;
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function toJsonObject(target: TargetState): JsonObject {
  return JSON.parse(JSON.stringify(target)) as JsonObject;
}

function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

function page<T>(items: T[], input: ActionInput): { items: T[]; nextToken?: string } {
  const limitValue = input['Limit'];
  const tokenValue = input['NextToken'];
  let limit = 100;
  if (limitValue !== undefined && limitValue !== null) {
    if (typeof limitValue !== 'number' || !Number.isInteger(limitValue) || limitValue < 1 || limitValue > 100) {
      throw validationError('Limit must be an integer between 1 and 100.');
    }
    limit = limitValue;
  }
  let start = 0;
  if (tokenValue !== undefined && tokenValue !== null) {
    const decoded = typeof tokenValue === 'string' ? Buffer.from(tokenValue, 'base64url').toString('utf8') : '';
    if (!/^\d{1,9}$/u.test(decoded)) throw validationError('The NextToken is not valid.');
    start = Number(decoded);
  }
  const slice = items.slice(start, start + limit);
  const next = start + limit;
  return next < items.length ? { items: slice, nextToken: Buffer.from(String(next), 'utf8').toString('base64url') } : { items: slice };
}

/**
 * The state and behaviour of the EventBridge emulator, free of HTTP: event buses, rules,
 * targets, pattern matching and the routing of PutEvents entries to the target dispatcher.
 * Each public action takes the decoded request parameters and returns the response object,
 * or throws an {@link EventBridgeApiError}.
 */
export class EventBusModel {
  readonly #region: string;
  readonly #accountId: string;
  readonly #dispatcher: TargetDispatcher;
  readonly #now: () => Date;
  readonly #buses = new Map<string, EventBusState>();

  constructor(options: EventBusModelOptions) {
    this.#region = options.region;
    this.#accountId = options.accountId;
    this.#dispatcher = options.dispatcher;
    this.#now = options.now ?? ((): Date => new Date());
    this.#addBus(DEFAULT_EVENT_BUS_NAME);
  }

  /** Names of the actions {@link EventBusModel.handle} understands. */
  static readonly actions: readonly string[] = [
    'CreateEventBus',
    'DescribeEventBus',
    'ListEventBuses',
    'DeleteEventBus',
    'PutRule',
    'DescribeRule',
    'ListRules',
    'DeleteRule',
    'EnableRule',
    'DisableRule',
    'PutTargets',
    'ListTargetsByRule',
    'RemoveTargets',
    'PutEvents',
    'TestEventPattern',
  ];

  /**
   * Runs one action.
   *
   * @throws EventBridgeApiError for every failure the caller should see.
   */
  handle(action: string, input: ActionInput): JsonObject {
    switch (action) {
      case 'CreateEventBus':
        return this.createEventBus(input);
      case 'DescribeEventBus':
        return this.describeEventBus(input);
      case 'ListEventBuses':
        return this.listEventBuses(input);
      case 'DeleteEventBus':
        return this.deleteEventBus(input);
      case 'PutRule':
        return this.putRule(input);
      case 'DescribeRule':
        return this.describeRule(input);
      case 'ListRules':
        return this.listRules(input);
      case 'DeleteRule':
        return this.deleteRule(input);
      case 'EnableRule':
        return this.setRuleState(input, 'ENABLED');
      case 'DisableRule':
        return this.setRuleState(input, 'DISABLED');
      case 'PutTargets':
        return this.putTargets(input);
      case 'ListTargetsByRule':
        return this.listTargetsByRule(input);
      case 'RemoveTargets':
        return this.removeTargets(input);
      case 'PutEvents':
        return this.putEvents(input);
      case 'TestEventPattern':
        return this.testEventPattern(input);
      default:
        throw new EventBridgeApiError('UnknownOperationException', `Operation ${action} is not supported.`);
    }
  }

  /** CreateEventBus: `{Name, Description?}` → `{EventBusArn}`. */
  createEventBus(input: ActionInput): JsonObject {
    const name = requireString(input, 'Name');
    if (!BUS_NAME.test(name)) throw validationError(`Event bus name ${name} is not valid.`);
    if (this.#buses.has(name)) throw resourceAlreadyExistsError(`Event bus ${name} already exists.`);
    const bus = this.#addBus(name, optionalString(input, 'Description'));
    return { EventBusArn: bus.arn };
  }

  /** DescribeEventBus: `{Name?}` (name or ARN, default bus when absent). */
  describeEventBus(input: ActionInput): JsonObject {
    const bus = this.#bus(optionalString(input, 'Name'));
    return this.#describeBus(bus);
  }

  /** ListEventBuses: `{NamePrefix?, Limit?, NextToken?}`. */
  listEventBuses(input: ActionInput): JsonObject {
    const prefix = optionalString(input, 'NamePrefix') ?? '';
    const matching = [...this.#buses.values()].filter((bus) => bus.name.startsWith(prefix));
    const { items, nextToken } = page(matching, input);
    return { EventBuses: items.map((bus) => this.#describeBus(bus)), ...(nextToken === undefined ? {} : { NextToken: nextToken }) };
  }

  /**
   * DeleteEventBus: `{Name}`. Deleting a bus that does not exist succeeds, as on AWS; the
   * default bus cannot be deleted. The bus's rules and their targets go with it.
   */
  deleteEventBus(input: ActionInput): JsonObject {
    const name = this.#busName(requireString(input, 'Name'));
    if (name === DEFAULT_EVENT_BUS_NAME) throw validationError('Cannot delete event bus default.');
    this.#buses.delete(name);
    return {};
  }

  /** PutRule: creates or updates a rule; `{Name, EventPattern?, ScheduleExpression?, State?, Description?, RoleArn?, EventBusName?}`. */
  putRule(input: ActionInput): JsonObject {
    const name = requireString(input, 'Name');
    if (!RULE_NAME.test(name)) throw validationError(`Rule name ${name} is not valid.`);
    const bus = this.#bus(optionalString(input, 'EventBusName'));
    const patternText = optionalString(input, 'EventPattern');
    const scheduleExpression = optionalString(input, 'ScheduleExpression');
    if (patternText === undefined && scheduleExpression === undefined) {
      throw validationError('Parameter(s) EventPattern or ScheduleExpression must be specified.');
    }
    const state = optionalString(input, 'State') ?? 'ENABLED';
    if (!RULE_STATES.has(state)) throw validationError(`State ${state} is not valid; use ENABLED or DISABLED.`);
    const pattern = patternText === undefined ? undefined : this.#parsePattern(patternText);
    const existing = bus.rules.get(name);
    const rule: RuleState = {
      name,
      arn: this.#ruleArn(bus.name, name),
      eventBusName: bus.name,
      state,
      targets: existing?.targets ?? new Map<string, TargetState>(),
    };
    if (patternText !== undefined && pattern !== undefined) {
      rule.eventPatternText = patternText;
      rule.eventPattern = pattern;
    }
    if (scheduleExpression !== undefined) rule.scheduleExpression = scheduleExpression;
    const description = optionalString(input, 'Description');
    if (description !== undefined) rule.description = description;
    const roleArn = optionalString(input, 'RoleArn');
    if (roleArn !== undefined) rule.roleArn = roleArn;
    bus.rules.set(name, rule);
    return { RuleArn: rule.arn };
  }

  /** DescribeRule: `{Name, EventBusName?}`. */
  describeRule(input: ActionInput): JsonObject {
    return this.#describeRule(this.#rule(input, 'Name'));
  }

  /** ListRules: `{NamePrefix?, EventBusName?, Limit?, NextToken?}`. */
  listRules(input: ActionInput): JsonObject {
    const bus = this.#bus(optionalString(input, 'EventBusName'));
    const prefix = optionalString(input, 'NamePrefix') ?? '';
    const matching = [...bus.rules.values()].filter((rule) => rule.name.startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name));
    const { items, nextToken } = page(matching, input);
    return { Rules: items.map((rule) => this.#describeRule(rule)), ...(nextToken === undefined ? {} : { NextToken: nextToken }) };
  }

  /**
   * DeleteRule: `{Name, EventBusName?}`. Fails while the rule has targets, as AWS does;
   * deleting a rule that does not exist succeeds (DeleteRule API reference).
   */
  deleteRule(input: ActionInput): JsonObject {
    const name = requireString(input, 'Name');
    const bus = this.#bus(optionalString(input, 'EventBusName'));
    const rule = bus.rules.get(name);
    if (rule === undefined) return {};
    if (rule.targets.size > 0) throw validationError("Rule can't be deleted since it has targets.");
    bus.rules.delete(name);
    return {};
  }

  /** EnableRule / DisableRule: `{Name, EventBusName?}`. */
  setRuleState(input: ActionInput, state: 'ENABLED' | 'DISABLED'): JsonObject {
    this.#rule(input, 'Name').state = state;
    return {};
  }

  /** PutTargets: `{Rule, EventBusName?, Targets}`; SQS queue targets only, failures per target. */
  putTargets(input: ActionInput): JsonObject {
    const rule = this.#rule(input, 'Rule');
    const targets = input['Targets'];
    if (!Array.isArray(targets) || targets.length === 0 || targets.length > 10) {
      throw validationError('Targets must be a list of 1 to 10 targets.');
    }
    const failed: JsonObject[] = [];
    const accepted: TargetState[] = [];
    for (const raw of targets) {
      if (!isJsonObject(raw)) throw validationError('Each target must be an object.');
      const id = requireString(raw, 'Id');
      const arn = requireString(raw, 'Arn');
      const fail = (code: string, message: string): void => {
        failed.push({ TargetId: id, ErrorCode: code, ErrorMessage: message });
      };
      if (!TARGET_ID.test(id)) {
        fail('ValidationException', `Target id ${id} is not valid.`);
        continue;
      }
      if (parseSqsQueueArn(arn) === undefined) {
        fail('ValidationException', `Target ${arn} is not an SQS queue ARN; this emulator delivers only to SQS.`);
        continue;
      }
      const target = this.#decodeTarget(raw, id, arn);
      if (typeof target === 'string') {
        fail('ValidationException', target);
        continue;
      }
      accepted.push(target);
    }
    const newIds = accepted.filter((target) => !rule.targets.has(target.Id)).length;
    if (rule.targets.size + newIds > MAX_TARGETS_PER_RULE) {
      throw limitExceededError(`The requested resource exceeds the maximum number allowed: ${MAX_TARGETS_PER_RULE} targets per rule.`);
    }
    for (const target of accepted) rule.targets.set(target.Id, target);
    return { FailedEntryCount: failed.length, FailedEntries: failed };
  }

  /** ListTargetsByRule: `{Rule, EventBusName?, Limit?, NextToken?}`. */
  listTargetsByRule(input: ActionInput): JsonObject {
    const rule = this.#rule(input, 'Rule');
    const { items, nextToken } = page([...rule.targets.values()], input);
    return { Targets: items.map((target) => toJsonObject(target)), ...(nextToken === undefined ? {} : { NextToken: nextToken }) };
  }

  /** RemoveTargets: `{Rule, EventBusName?, Ids}`; ids that are not targets of the rule are ignored. */
  removeTargets(input: ActionInput): JsonObject {
    const rule = this.#rule(input, 'Rule');
    const ids = input['Ids'];
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) {
      throw validationError('Ids must be a non-empty list of target ids.');
    }
    for (const id of ids) rule.targets.delete(id);
    return { FailedEntryCount: 0, FailedEntries: [] };
  }

  /**
   * PutEvents: `{Entries}` with 1 to 10 entries (more is a ValidationException for the whole
   * call). Every other problem (missing Source/DetailType/Detail, malformed Detail, an entry over
   * 256 KB, an unknown bus) fails only its own entry, as AWS reports it.
   */
  putEvents(input: ActionInput): JsonObject {
    const entries = input['Entries'];
    if (!Array.isArray(entries) || entries.length === 0) {
      throw validationError("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1");
    }
    if (entries.length > MAX_PUT_EVENTS_ENTRIES) {
      throw validationError(
        `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to ${MAX_PUT_EVENTS_ENTRIES}`,
      );
    }
    const results: JsonObject[] = [];
    let failedCount = 0;
    for (const entry of entries) {
      const result = this.#putEvent(entry);
      if ('ErrorCode' in result) failedCount += 1;
      results.push(result);
    }
    return { FailedEntryCount: failedCount, Entries: results };
  }

  /** TestEventPattern: `{EventPattern, Event}` → `{Result}`. */
  testEventPattern(input: ActionInput): JsonObject {
    const pattern = this.#parsePattern(requireString(input, 'EventPattern'));
    const eventText = requireString(input, 'Event');
    let event: unknown;
    try {
      event = JSON.parse(eventText);
    } catch {
      throw validationError('Parameter Event is not valid: it is not JSON.');
    }
    if (!isJsonObject(event)) throw validationError('Parameter Event is not valid: it must be a JSON object.');
    const missing = REQUIRED_TEST_EVENT_FIELDS.filter((field) => !(field in event));
    if (missing.length > 0) throw validationError(`Parameter Event is not valid: missing field(s) ${missing.join(', ')}.`);
    return { Result: matchesEventPattern(pattern, event) };
  }

  #putEvent(entry: JsonValue): JsonObject {
    const invalid = (message: string, code = 'InvalidArgument'): JsonObject => ({ ErrorCode: code, ErrorMessage: message });
    if (!isJsonObject(entry)) return invalid('Entry is not an object.');
    for (const field of ['Source', 'DetailType', 'Detail'] as const) {
      const value = entry[field];
      if (typeof value !== 'string' || value === '') {
        return invalid(`Parameter ${field} is not valid. Reason: ${field} is a required argument.`);
      }
    }
    const source = entry['Source'] as string;
    const detailType = entry['DetailType'] as string;
    const detailText = entry['Detail'] as string;
    const resources = entry['Resources'] ?? [];
    if (!Array.isArray(resources) || !resources.every((item) => typeof item === 'string')) {
      return invalid('Parameter Resources is not valid. Reason: Resources must be a list of strings.');
    }
    const size = putEventsEntrySize(entry);
    if (size > MAX_PUT_EVENTS_ENTRY_BYTES) {
      return invalid(`Event entry size ${size} bytes exceeds the limit of ${MAX_PUT_EVENTS_ENTRY_BYTES} bytes.`);
    }
    let detail: unknown;
    try {
      detail = JSON.parse(detailText);
    } catch {
      return invalid('Detail is malformed.', 'MalformedDetail');
    }
    if (!isJsonObject(detail)) return invalid('Detail is malformed.', 'MalformedDetail');
    const time = this.#entryTime(entry['Time']);
    if (time === undefined) return invalid('Parameter Time is not valid.');
    const busName = entry['EventBusName'];
    if (busName !== undefined && busName !== null && typeof busName !== 'string') {
      return invalid('Parameter EventBusName is not valid.');
    }
    const bus = this.#buses.get(this.#busName(busName ?? undefined));
    if (bus === undefined) return invalid(`Event bus ${busName as string} does not exist.`, 'ResourceNotFoundException');
    const id = randomUUID();
    const event: JsonObject = {
      version: '0',
      id,
      'detail-type': detailType,
      source,
      account: this.#accountId,
      time: formatEventTime(time),
      region: this.#region,
      resources: resources,
      detail,
    };
    this.#route(bus, event);
    return { EventId: id };
  }

  #entryTime(value: JsonValue | undefined): Date | undefined {
    if (value === undefined || value === null) return this.#now();
    // The AWS JSON 1.1 protocol sends timestamps as epoch seconds.
    const date = typeof value === 'number' ? new Date(value * 1000) : typeof value === 'string' ? new Date(value) : undefined;
    return date !== undefined && Number.isFinite(date.getTime()) ? date : undefined;
  }

  #route(bus: EventBusState, event: JsonObject): void {
    const ingestionTime = formatEventTime(this.#now());
    for (const rule of bus.rules.values()) {
      if (rule.state === 'DISABLED' || rule.eventPattern === undefined) continue;
      if (!matchesEventPattern(rule.eventPattern, event)) continue;
      for (const target of rule.targets.values()) {
        const spec: TargetInputSpec = {};
        if (target.Input !== undefined) spec.Input = target.Input;
        if (target.InputPath !== undefined) spec.InputPath = target.InputPath;
        if (target.InputTransformer !== undefined) spec.InputTransformer = target.InputTransformer;
        const body = renderTargetInput(spec, event, { ruleName: rule.name, ruleArn: rule.arn, ingestionTime });
        const groupId = target.SqsParameters?.MessageGroupId;
        this.#dispatcher.dispatch({
          targetArn: target.Arn,
          body,
          eventId: event['id'] as string,
          ...(groupId === undefined ? {} : { messageGroupId: groupId }),
        });
      }
    }
  }

  #decodeTarget(raw: JsonObject, id: string, arn: string): TargetState | string {
    const target: TargetState = { Id: id, Arn: arn };
    const roleArn = raw['RoleArn'];
    if (typeof roleArn === 'string') target.RoleArn = roleArn;
    const inputValue = raw['Input'];
    const inputPath = raw['InputPath'];
    const transformer = raw['InputTransformer'];
    if (inputValue !== undefined && inputValue !== null) {
      if (typeof inputValue !== 'string') return 'Input must be a string.';
      target.Input = inputValue;
    }
    if (inputPath !== undefined && inputPath !== null) {
      if (typeof inputPath !== 'string') return 'InputPath must be a string.';
      target.InputPath = inputPath;
    }
    if (transformer !== undefined && transformer !== null) {
      if (!isJsonObject(transformer) || typeof transformer['InputTemplate'] !== 'string') {
        return 'InputTransformer must have an InputTemplate.';
      }
      const paths = transformer['InputPathsMap'] ?? {};
      if (!isJsonObject(paths) || !Object.values(paths).every((path) => typeof path === 'string')) {
        return 'InputTransformer.InputPathsMap must map names to JSON paths.';
      }
      target.InputTransformer = { InputTemplate: transformer['InputTemplate'], InputPathsMap: paths as Record<string, string> };
    }
    const sqsParameters = raw['SqsParameters'];
    if (isJsonObject(sqsParameters) && typeof sqsParameters['MessageGroupId'] === 'string') {
      target.SqsParameters = { MessageGroupId: sqsParameters['MessageGroupId'] };
    }
    const problem = checkTargetInput(target);
    return problem ?? target;
  }

  #parsePattern(text: string): EventPattern {
    try {
      return parseEventPattern(text);
    } catch (error) {
      if (error instanceof InvalidEventPatternError) throw invalidEventPatternError(error.message);
      throw error;
    }
  }

  #addBus(name: string, description?: string): EventBusState {
    const now = this.#now();
    const bus: EventBusState = {
      name,
      arn: `arn:aws:events:${this.#region}:${this.#accountId}:event-bus/${name}`,
      creationTime: now,
      lastModifiedTime: now,
      rules: new Map(),
    };
    if (description !== undefined) bus.description = description;
    this.#buses.set(name, bus);
    return bus;
  }

  #busName(nameOrArn: string | undefined): string {
    if (nameOrArn === undefined || nameOrArn === '') return DEFAULT_EVENT_BUS_NAME;
    const marker = ':event-bus/';
    const at = nameOrArn.indexOf(marker);
    return nameOrArn.startsWith('arn:') && at >= 0 ? nameOrArn.slice(at + marker.length) : nameOrArn;
  }

  #bus(nameOrArn: string | undefined): EventBusState {
    const name = this.#busName(nameOrArn);
    const bus = this.#buses.get(name);
    if (bus === undefined) throw resourceNotFoundError(`Event bus ${name} does not exist.`);
    return bus;
  }

  #rule(input: ActionInput, field: 'Name' | 'Rule'): RuleState {
    const name = requireString(input, field);
    const bus = this.#bus(optionalString(input, 'EventBusName'));
    const rule = bus.rules.get(name);
    if (rule === undefined) throw resourceNotFoundError(`Rule ${name} does not exist on EventBus ${bus.name}.`);
    return rule;
  }

  #ruleArn(busName: string, ruleName: string): string {
    const path = busName === DEFAULT_EVENT_BUS_NAME ? ruleName : `${busName}/${ruleName}`;
    return `arn:aws:events:${this.#region}:${this.#accountId}:rule/${path}`;
  }

  #describeBus(bus: EventBusState): JsonObject {
    return {
      Name: bus.name,
      Arn: bus.arn,
      ...(bus.description === undefined ? {} : { Description: bus.description }),
      CreationTime: epochSeconds(bus.creationTime),
      LastModifiedTime: epochSeconds(bus.lastModifiedTime),
    };
  }

  #describeRule(rule: RuleState): JsonObject {
    const out: JsonObject = { Name: rule.name, Arn: rule.arn, State: rule.state, EventBusName: rule.eventBusName };
    if (rule.eventPatternText !== undefined) out['EventPattern'] = rule.eventPatternText;
    if (rule.scheduleExpression !== undefined) out['ScheduleExpression'] = rule.scheduleExpression;
    if (rule.description !== undefined) out['Description'] = rule.description;
    if (rule.roleArn !== undefined) out['RoleArn'] = rule.roleArn;
    return out;
  }
}
