import { describe, expect, it } from 'vitest';
import {
  InvalidEventPatternError,
  matchesEventPattern,
  parseEventPattern,
  validateEventPattern,
} from '../../../infra/eventbridge/index.ts';
import type { EventPattern, JsonObject } from '../../../infra/eventbridge/index.ts';

// The example event of the AWS "Event patterns" page, extended with the fields the
// "Content filtering" examples refer to.
const ec2Event: JsonObject = {
  version: '0',
  id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '111122223333',
  time: '2017-12-22T18:43:48Z',
  region: 'us-west-1',
  resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'],
  detail: {
    'instance-id': 'i-1234567890abcdef0',
    state: 'terminated',
    'c-count': 5,
    'd-count': 3,
    'x-limit': 301.8,
    'source-ip': '10.0.0.123',
    FileName: 'dir/image.png',
    service: 'EventBridge',
    eventVersion: '',
    responseElements: null,
  },
};

function withDetail(detail: JsonObject): JsonObject {
  return { ...ec2Event, detail: { ...(ec2Event['detail'] as JsonObject), ...detail } };
}

function matches(pattern: unknown, event: JsonObject = ec2Event): boolean {
  validateEventPattern(pattern);
  return matchesEventPattern(pattern, event);
}

describe('matchesEventPattern', () => {
  describe('exact values', () => {
    it('matches the documented EC2 termination pattern', () => {
      expect(
        matches({ source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['terminated'] } }),
      ).toBe(true);
    });

    it('does not match when one field of the pattern differs (fields are ANDed)', () => {
      expect(matches({ source: ['aws.ec2'], detail: { state: ['running'] } })).toBe(false);
    });

    it('treats the values listed for a field as alternatives', () => {
      expect(matches({ source: ['aws.ec2', 'aws.fargate'] })).toBe(true);
      expect(matches({ source: ['aws.s3', 'aws.fargate'] })).toBe(false);
    });

    it('is case-sensitive', () => {
      expect(matches({ source: ['AWS.EC2'] })).toBe(false);
    });

    it('does not match when a field named by the pattern is absent', () => {
      expect(matches({ detail: { 'no-such-field': ['x'] } })).toBe(false);
    });

    it('matches numbers by value and never a string against a number', () => {
      expect(matches({ detail: { 'c-count': [5] } })).toBe(true);
      expect(matches({ detail: { 'c-count': ['5'] } })).toBe(false);
    });

    it('matches booleans exactly', () => {
      const event = withDetail({ enabled: true });
      expect(matches({ detail: { enabled: [true] } }, event)).toBe(true);
      expect(matches({ detail: { enabled: [false] } }, event)).toBe(false);
    });

    it('requires the nested structure of the pattern in the event', () => {
      expect(matches({ detail: { state: ['terminated'] } })).toBe(true);
      expect(matches({ state: ['terminated'] })).toBe(false);
    });
  });

  describe('null values and empty strings', () => {
    it('matches an empty string with [""]', () => {
      expect(matches({ detail: { eventVersion: [''] } })).toBe(true);
    });

    it('matches a null value with [null]', () => {
      expect(matches({ detail: { responseElements: [null] } })).toBe(true);
    });

    it('does not treat null and the empty string as interchangeable', () => {
      expect(matches({ detail: { responseElements: [''] } })).toBe(false);
      expect(matches({ detail: { eventVersion: [null] } })).toBe(false);
    });

    it('does not match null against an absent field', () => {
      expect(matches({ detail: { missing: [null] } })).toBe(false);
    });
  });

  describe('array values in the event', () => {
    const event: JsonObject = { ...ec2Event, resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f', 'arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f'] };

    it('matches when any element of the event array matches', () => {
      expect(matches({ resources: ['arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f', 'arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f'] }, event)).toBe(true);
    });

    it('does not match when no element of the event array matches', () => {
      expect(matches({ resources: ['arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f'] }, event)).toBe(false);
    });

    it('applies operators to each element', () => {
      expect(matches({ resources: [{ suffix: '111122223333:instance/i-b188560f' }] }, event)).toBe(true);
      expect(matches({ resources: [{ prefix: 'arn:aws:s3' }] }, event)).toBe(false);
    });

    it('matches a nested pattern against an array of objects when one element satisfies all of it', () => {
      const orders = withDetail({ items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 7 }] });
      expect(matches({ detail: { items: { sku: ['b'], qty: [{ numeric: ['>', 5] }] } } }, orders)).toBe(true);
      expect(matches({ detail: { items: { sku: ['a'], qty: [{ numeric: ['>', 5] }] } } }, orders)).toBe(false);
    });
  });

  describe('prefix', () => {
    it('matches a value that starts with the prefix', () => {
      expect(matches({ time: [{ prefix: '2017-12-22' }] })).toBe(true);
    });

    it('does not match a value that does not start with the prefix', () => {
      expect(matches({ time: [{ prefix: '2017-10-02' }] })).toBe(false);
    });

    it('is case-sensitive unless equals-ignore-case is used', () => {
      expect(matches({ detail: { service: [{ prefix: 'eventb' }] } })).toBe(false);
      expect(matches({ detail: { service: [{ prefix: { 'equals-ignore-case': 'EVENTB' } }] } })).toBe(true);
      expect(matches({ detail: { service: [{ prefix: { 'equals-ignore-case': 'lambda' } }] } })).toBe(false);
    });

    it('never matches a number', () => {
      expect(matches({ detail: { 'c-count': [{ prefix: '5' }] } })).toBe(false);
    });
  });

  describe('suffix', () => {
    it('matches a value that ends with the suffix', () => {
      expect(matches({ detail: { FileName: [{ suffix: '.png' }] } })).toBe(true);
    });

    it('does not match a value with another ending', () => {
      expect(matches({ detail: { FileName: [{ suffix: '.jpg' }] } })).toBe(false);
    });

    it('matches any casing with equals-ignore-case', () => {
      expect(matches({ detail: { FileName: [{ suffix: { 'equals-ignore-case': '.PNG' } }] } })).toBe(true);
      expect(matches({ detail: { FileName: [{ suffix: '.PNG' }] } })).toBe(false);
      expect(matches({ detail: { FileName: [{ suffix: { 'equals-ignore-case': '.GIF' } }] } })).toBe(false);
    });
  });

  describe('equals-ignore-case', () => {
    it('matches the value in any casing', () => {
      expect(matches({ 'detail-type': [{ 'equals-ignore-case': 'ec2 instance state-change notification' }] })).toBe(true);
    });

    it('does not match a different value', () => {
      expect(matches({ 'detail-type': [{ 'equals-ignore-case': 'ec2 instance launch' }] })).toBe(false);
    });
  });

  describe('anything-but', () => {
    it('matches any string besides the one given', () => {
      expect(matches({ detail: { state: [{ 'anything-but': 'initializing' }] } })).toBe(true);
      expect(matches({ detail: { state: [{ 'anything-but': 'terminated' }] } })).toBe(false);
    });

    it('matches any number besides the one given', () => {
      expect(matches({ detail: { 'c-count': [{ 'anything-but': 123 }] } })).toBe(true);
      expect(matches({ detail: { 'c-count': [{ 'anything-but': 5 }] } })).toBe(false);
    });

    it('matches values outside a list of strings or numbers', () => {
      expect(matches({ detail: { state: [{ 'anything-but': ['stopped', 'overloaded'] }] } })).toBe(true);
      expect(matches({ detail: { state: [{ 'anything-but': ['stopped', 'terminated'] }] } })).toBe(false);
      expect(matches({ detail: { 'c-count': [{ 'anything-but': [100, 200, 300] }] } })).toBe(true);
      expect(matches({ detail: { 'c-count': [{ 'anything-but': [4, 5, 6] }] } })).toBe(false);
    });

    it('does not match an absent field', () => {
      expect(matches({ detail: { missing: [{ 'anything-but': 'initializing' }] } })).toBe(false);
    });

    it('matches values that do not start with an anything-but prefix', () => {
      expect(matches({ detail: { state: [{ 'anything-but': { prefix: 'init' } }] } })).toBe(true);
      expect(matches({ detail: { state: [{ 'anything-but': { prefix: 'term' } }] } })).toBe(false);
    });

    it('matches values that do not end with an anything-but suffix', () => {
      expect(matches({ detail: { FileName: [{ 'anything-but': { suffix: '.txt' } }] } })).toBe(true);
      expect(matches({ detail: { FileName: [{ 'anything-but': { suffix: '.png' } }] } })).toBe(false);
    });

    it('ignores case with anything-but equals-ignore-case, for one value or a list', () => {
      expect(matches({ detail: { state: [{ 'anything-but': { 'equals-ignore-case': 'INITIALIZING' } }] } })).toBe(true);
      expect(matches({ detail: { state: [{ 'anything-but': { 'equals-ignore-case': 'TERMINATED' } }] } })).toBe(false);
      expect(matches({ detail: { state: [{ 'anything-but': { 'equals-ignore-case': ['Stopped', 'TERMINATED'] } }] } })).toBe(false);
      expect(matches({ detail: { state: [{ 'anything-but': { 'equals-ignore-case': ['Stopped', 'Pending'] } }] } })).toBe(true);
    });

    it('matches values outside an anything-but wildcard', () => {
      const libFile = withDetail({ FilePath: '/usr/lib/libc.so' });
      const binFile = withDetail({ FilePath: '/usr/bin/ls' });
      expect(matches({ detail: { FilePath: [{ 'anything-but': { wildcard: '*/lib/*' } }] } }, binFile)).toBe(true);
      expect(matches({ detail: { FilePath: [{ 'anything-but': { wildcard: '*/lib/*' } }] } }, libFile)).toBe(false);
      expect(matches({ detail: { FilePath: [{ 'anything-but': { wildcard: ['*/lib/*', '*/bin/*'] } }] } }, binFile)).toBe(false);
    });
  });

  describe('numeric', () => {
    it('matches the documented ranges', () => {
      expect(
        matches({
          detail: {
            'c-count': [{ numeric: ['>', 0, '<=', 5] }],
            'd-count': [{ numeric: ['<', 10] }],
            'x-limit': [{ numeric: ['=', 3.018e2] }],
          },
        }),
      ).toBe(true);
    });

    it('respects open and closed bounds', () => {
      expect(matches({ detail: { 'c-count': [{ numeric: ['>', 0, '<', 5] }] } })).toBe(false);
      expect(matches({ detail: { 'c-count': [{ numeric: ['>=', 5] }] } })).toBe(true);
      expect(matches({ detail: { 'c-count': [{ numeric: ['>', 5] }] } })).toBe(false);
    });

    it('does not match a different value with =', () => {
      expect(matches({ detail: { 'x-limit': [{ numeric: ['=', 301] }] } })).toBe(false);
    });

    it('never matches a string that looks like a number', () => {
      expect(matches({ detail: { count: [{ numeric: ['>', 0] }] } }, withDetail({ count: '5' }))).toBe(false);
    });
  });

  describe('exists', () => {
    it('matches a present field with exists: true and not an absent one', () => {
      expect(matches({ detail: { state: [{ exists: true }] } })).toBe(true);
      expect(matches({ detail: { missing: [{ exists: true }] } })).toBe(false);
    });

    it('matches an absent field with exists: false and not a present one', () => {
      expect(matches({ detail: { missing: [{ exists: false }] } })).toBe(true);
      expect(matches({ detail: { state: [{ exists: false }] } })).toBe(false);
    });

    it('matches exists: false when a whole branch of the event is missing', () => {
      expect(matches({ 'no-such-object': { state: [{ exists: false }] } })).toBe(true);
    });

    it('looks at leaf values only: an object-valued field does not exist', () => {
      expect(matches({ detail: [{ exists: true }] })).toBe(false);
      expect(matches({ detail: [{ exists: false }] })).toBe(true);
    });

    it('treats a null value as present', () => {
      expect(matches({ detail: { responseElements: [{ exists: true }] } })).toBe(true);
    });
  });

  describe('wildcard', () => {
    it('matches the documented file-name wildcard', () => {
      expect(matches({ detail: { FileName: [{ wildcard: 'dir/*.png' }] } })).toBe(true);
      expect(matches({ detail: { FileName: [{ wildcard: 'dir/*.jpg' }] } })).toBe(false);
    });

    it('matches the documented event bus ARN wildcard', () => {
      const event = withDetail({ EventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/payments' });
      expect(matches({ detail: { EventBusArn: [{ wildcard: 'arn:aws:events:us-east-1:*:event-bus/*' }] } }, event)).toBe(true);
      expect(matches({ detail: { EventBusArn: [{ wildcard: 'arn:aws:events:eu-west-1:*:event-bus/*' }] } }, event)).toBe(false);
    });

    it('lets * match zero characters and anchors both ends', () => {
      expect(matches({ detail: { FileName: [{ wildcard: 'dir/image.png*' }] } })).toBe(true);
      expect(matches({ detail: { FileName: [{ wildcard: 'image*' }] } })).toBe(false);
    });

    it('matches a literal * when it is escaped', () => {
      const star = withDetail({ note: 'a*b' });
      expect(matches({ detail: { note: [{ wildcard: 'a\\*b' }] } }, star)).toBe(true);
      expect(matches({ detail: { note: [{ wildcard: 'a\\*b' }] } }, withDetail({ note: 'axb' }))).toBe(false);
    });

    it('treats regular-expression characters literally', () => {
      expect(matches({ detail: { FileName: [{ wildcard: 'dir/image?png' }] } })).toBe(false);
    });
  });

  describe('cidr', () => {
    it('matches an address inside the block and not one outside', () => {
      expect(matches({ detail: { 'source-ip': [{ cidr: '10.0.0.0/24' }] } })).toBe(true);
      expect(matches({ detail: { 'source-ip': [{ cidr: '10.0.1.0/24' }] } })).toBe(false);
    });
  });

  describe('$or', () => {
    it('matches when any alternative matches (documented numeric example)', () => {
      const pattern = {
        detail: {
          $or: [{ 'c-count': [{ numeric: ['>', 0, '<=', 5] }] }, { 'd-count': [{ numeric: ['<', 10] }] }, { 'x-limit': [{ numeric: ['=', 3.018e2] }] }],
        },
      };
      expect(matches(pattern)).toBe(true);
      expect(matches(pattern, withDetail({ 'c-count': 50, 'd-count': 50, 'x-limit': 1 }))).toBe(false);
    });

    it('combines top-level $or with the other fields (AND)', () => {
      const pattern = { source: ['aws.ec2'], $or: [{ region: ['eu-west-1'] }, { detail: { state: ['terminated'] } }] };
      expect(matches(pattern)).toBe(true);
      expect(matches({ ...pattern, source: ['aws.s3'] })).toBe(false);
      expect(matches(pattern, withDetail({ state: 'running' }))).toBe(false);
    });
  });
});

describe('validateEventPattern', () => {
  const invalid: Array<[string, unknown]> = [
    ['a non-object pattern', ['aws.ec2']],
    ['a string pattern', 'aws.ec2'],
    ['null', null],
    ['an empty pattern', {}],
    ['a leaf value that is not an array', { source: 'aws.ec2' }],
    ['a numeric leaf value that is not an array', { detail: { count: 5 } }],
    ['an empty array of values', { source: [] }],
    ['an unknown operator', { source: [{ contains: 'ec2' }] }],
    ['two operators in one object', { source: [{ prefix: 'a', suffix: 'b' }] }],
    ['a nested array', { source: [['aws.ec2']] }],
    ['a prefix that is not a string', { source: [{ prefix: 5 }] }],
    ['exists that is not a boolean', { source: [{ exists: 'yes' }] }],
    ['a numeric operator that is unknown', { detail: { n: [{ numeric: ['!=', 5] }] } }],
    ['a numeric range with an odd length', { detail: { n: [{ numeric: ['>', 0, '<'] }] } }],
    ['a numeric range whose bounds cross', { detail: { n: [{ numeric: ['>', 10, '<', 5] }] } }],
    ['a numeric range with two lower bounds', { detail: { n: [{ numeric: ['>', 1, '>=', 2] }] } }],
    ['a numeric bound that is a string', { detail: { n: [{ numeric: ['>', '5'] }] } }],
    ['anything-but with mixed types', { detail: { s: [{ 'anything-but': ['a', 1] }] } }],
    ['anything-but with an unknown operator', { detail: { s: [{ 'anything-but': { numeric: ['>', 1] } }] } }],
    ['anything-but with an empty list', { detail: { s: [{ 'anything-but': [] }] } }],
    ['a wildcard with consecutive stars', { detail: { f: [{ wildcard: 'dir/**.png' }] } }],
    ['a malformed cidr', { detail: { ip: [{ cidr: '10.0.0.0/33' }] } }],
    ['$or with a single alternative', { $or: [{ source: ['a'] }] }],
    ['$or mixing objects and values', { $or: [{ source: ['a'] }, 'b'] }],
  ];

  it.each(invalid)('rejects %s', (_label, pattern) => {
    expect(() => {
      validateEventPattern(pattern);
    }).toThrow(InvalidEventPatternError);
  });

  it('accepts every documented operator', () => {
    const pattern: EventPattern = {
      source: ['aws.ec2', { prefix: 'aws.' }, { suffix: '.ec2' }, { 'equals-ignore-case': 'AWS.EC2' }, { wildcard: 'aws.*' }],
      detail: {
        a: [{ 'anything-but': 'x' }, { 'anything-but': [1, 2] }, { 'anything-but': { prefix: 'p' } }, { 'anything-but': { suffix: 's' } }],
        b: [{ 'anything-but': { 'equals-ignore-case': ['x'] } }, { 'anything-but': { wildcard: '*/lib/*' } }],
        c: [{ numeric: ['>', 0, '<=', 5] }, { numeric: ['=', 3] }, { exists: false }, { cidr: '2001:db8::/32' }],
        d: [{ prefix: { 'equals-ignore-case': 'x' } }, { suffix: { 'equals-ignore-case': 'y' } }, null, '', 0, true],
        $or: [{ e: ['1'] }, { f: ['2'] }],
      },
    };
    expect(() => {
      validateEventPattern(pattern);
    }).not.toThrow();
  });

  it('names the reason and carries a stable code', () => {
    let caught: unknown;
    try {
      validateEventPattern({ source: [{ bogus: 1 }] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidEventPatternError);
    expect((caught as InvalidEventPatternError).code).toBe('INVALID_EVENT_PATTERN');
    expect((caught as InvalidEventPatternError).message).toMatch(/Unrecognized match type bogus/u);
  });
});

describe('parseEventPattern', () => {
  it('parses and validates the text of a pattern', () => {
    expect(parseEventPattern('{"source":["aws.ec2"]}')).toEqual({ source: ['aws.ec2'] });
  });

  it('rejects text that is not JSON', () => {
    expect(() => parseEventPattern('{source:')).toThrow(InvalidEventPatternError);
  });
});
