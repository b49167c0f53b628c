import type { JsonObject, JsonValue } from './event-pattern.ts';
import { parseJsonPath, readJsonPath } from './json-path.ts';
import type { JsonPathSegment } from './json-path.ts';

/** The InputTransformer of a target, as PutTargets carries it. */
export interface InputTransformerSpec {
  /** Variable name → JSON path into the event. */
  InputPathsMap?: Record<string, string>;
  /** The text sent to the target, with `<variable>` placeholders. */
  InputTemplate: string;
}

/** How a target's input is shaped; at most one of the three may be set. */
export interface TargetInputSpec {
  /** A constant JSON text sent instead of the event. */
  Input?: string;
  /** A JSON path: only that part of the event is sent. */
  InputPath?: string;
  /** Variables read from the event and placed into a template. */
  InputTransformer?: InputTransformerSpec;
}

/** Facts about the matching rule and the event that the predefined template variables expose. */
export interface TargetInputContext {
  /** Name of the rule that matched. */
  ruleName: string;
  /** ARN of the rule that matched. */
  ruleArn: string;
  /** When EventBridge received the event, ISO 8601. */
  ingestionTime: string;
}

// The predefined variables of the "Transforming target input" documentation.
const PREDEFINED_VARIABLES = ['aws.events.rule-arn', 'aws.events.rule-name', 'aws.events.event.ingestion-time', 'aws.events.event', 'aws.events.event.json'];

/** Largest number of variables an InputPathsMap may define (AWS quota). */
export const MAX_INPUT_PATHS = 100;

/**
 * Checks a target's input settings the way PutTargets does.
 *
 * @returns the reason the settings are invalid, or `undefined` when they are valid.
 */
export function checkTargetInput(spec: TargetInputSpec): string | undefined {
  const given = [spec.Input, spec.InputPath, spec.InputTransformer].filter((item) => item !== undefined).length;
  if (given > 1) return 'Only one of Input, InputPath, or InputTransformer may be specified.';
  if (spec.Input !== undefined) {
    try {
      JSON.parse(spec.Input);
    } catch {
      return 'Input is not valid JSON.';
    }
  }
  if (spec.InputPath !== undefined && parseJsonPath(spec.InputPath) === undefined) {
    return `InputPath ${JSON.stringify(spec.InputPath)} is not a valid JSON path.`;
  }
  const transformer = spec.InputTransformer;
  if (transformer !== undefined) {
    if (typeof transformer.InputTemplate !== 'string') return 'InputTransformer.InputTemplate is required.';
    const paths = transformer.InputPathsMap ?? {};
    const names = Object.keys(paths);
    if (names.length > MAX_INPUT_PATHS) return `InputPathsMap may define at most ${MAX_INPUT_PATHS} variables.`;
    for (const name of names) {
      if (name.startsWith('aws.')) return `InputPathsMap variable ${name} uses the reserved prefix "aws.".`;
      const path = paths[name];
      if (typeof path !== 'string' || parseJsonPath(path) === undefined) {
        return `InputPathsMap variable ${name} has an invalid JSON path ${JSON.stringify(path)}.`;
      }
    }
  }
  return undefined;
}

/**
 * Renders the message body a target receives for an event: the whole event as JSON, the
 * constant `Input`, the part selected by `InputPath`, or the `InputTransformer` template.
 *
 * Template substitution follows the "Transforming target input" documentation: in a JSON
 * template a placeholder inside a string literal receives the value's text (strings without
 * quotes), a placeholder outside one receives the value as JSON; a template that is not a JSON
 * object or array is text, and placeholders receive the value's text. A path that leads nowhere
 * yields `null` (or an empty text inside a string).
 *
 * The spec must have passed {@link checkTargetInput}.
 */
export function renderTargetInput(spec: TargetInputSpec, event: JsonObject, context: TargetInputContext): string {
  if (spec.Input !== undefined) return spec.Input;
  if (spec.InputPath !== undefined) {
    const segments = parseJsonPath(spec.InputPath) ?? [];
    return JSON.stringify(readJsonPath(event, segments) ?? null);
  }
  if (spec.InputTransformer !== undefined) return renderTemplate(spec.InputTransformer, event, context);
  return JSON.stringify(event);
}

function renderTemplate(transformer: InputTransformerSpec, event: JsonObject, context: TargetInputContext): string {
  const variables = new Map<string, JsonValue | undefined>();
  variables.set('aws.events.rule-arn', context.ruleArn);
  variables.set('aws.events.rule-name', context.ruleName);
  variables.set('aws.events.event.ingestion-time', context.ingestionTime);
  variables.set('aws.events.event', event);
  variables.set('aws.events.event.json', event);
  for (const [name, path] of Object.entries(transformer.InputPathsMap ?? {})) {
    const segments: JsonPathSegment[] = parseJsonPath(path) ?? [];
    variables.set(name, readJsonPath(event, segments));
  }
  const template = transformer.InputTemplate;
  const trimmed = template.trimStart();
  const jsonTemplate = trimmed.startsWith('{') || trimmed.startsWith('[');
  let output = '';
  let inString = false;
  for (let index = 0; index < template.length; index += 1) {
    const char = template[index] as string;
    if (char === '<') {
      const close = template.indexOf('>', index + 1);
      const name = close < 0 ? undefined : template.slice(index + 1, close);
      if (name !== undefined && (variables.has(name) || PREDEFINED_VARIABLES.includes(name))) {
        const value = variables.get(name);
        output += jsonTemplate && !inString ? asJson(value) : asText(value, jsonTemplate);
        index = close;
        continue;
      }
    }
    if (jsonTemplate) {
      if (char === '\\' && inString) {
        output += char + (template[index + 1] ?? '');
        index += 1;
        continue;
      }
      if (char === '"') inString = !inString;
    }
    output += char;
  }
  return output;
}

function asJson(value: JsonValue | undefined): string {
  return JSON.stringify(value ?? null);
}

function asText(value: JsonValue | undefined, insideJsonString: boolean): string {
  if (value === undefined || value === null) return insideJsonString ? '' : 'null';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  // Inside a JSON string literal the text must stay a valid string body.
  return insideJsonString ? JSON.stringify(text).slice(1, -1) : text;
}
