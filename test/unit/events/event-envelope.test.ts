import { describe, expect, it } from 'vitest';
import { childTraceparent, decodeEventBody, deriveDetail, encodeEventBody, isTraceparent, newTraceparent } from '../../../shared/events/index.ts';
import type { EventDetail } from '../../../shared/events/index.ts';

const detail: EventDetail = { version: 1, sagaId: 'PAY#E9999900420260101120000abcdefghijk', endToEndId: 'E9999900420260101120000abcdefghijk', attempt: 1, traceparent: newTraceparent(), data: { amount: '1.00' } };
const identity = (data: unknown): unknown => data;

describe('decodeEventBody', () => {
  it('reads the EventBridge envelope an SQS target receives', () => {
    const event = decodeEventBody(encodeEventBody({ detailType: 'PaymentRequested', source: 'core.banking', detail, id: 'ev-1' }), identity, 'msg-1');
    expect(event).toMatchObject({ id: 'ev-1', detailType: 'PaymentRequested', source: 'core.banking', detail: { sagaId: detail.sagaId, data: { amount: '1.00' } } });
  });

  it('falls back to the SQS message id when the producer sent no event id', () => {
    expect(decodeEventBody(encodeEventBody({ detailType: 'X', source: 's', detail }), identity, 'msg-1').id).toBe('msg-1');
  });

  it.each([
    ['', 'empty body'],
    ['[1]', 'not a JSON object'],
    ['{"source":"s","detail":{}}', 'detail-type is missing'],
  ])('rejects %j as malformed (%s)', (body, reason) => {
    expect(() => decodeEventBody(body, identity, 'm')).toThrow(expect.objectContaining({ code: 'MALFORMED_EVENT', retryability: 'permanent', message: expect.stringContaining(reason) as unknown }));
  });

  it.each([
    ['version', { ...detail, version: 2 }],
    ['sagaId', { ...detail, sagaId: 'nope' }],
    ['attempt', { ...detail, attempt: 0 }],
    ['traceparent', { ...detail, traceparent: '00-abc' }],
    ['endToEndId', { ...detail, endToEndId: undefined }],
  ])('names the bad field %s of a detail', (field, bad) => {
    const body = JSON.stringify({ 'detail-type': 'X', source: 's', detail: bad });
    expect(() => decodeEventBody(body, identity, 'm')).toThrow(expect.objectContaining({ code: 'EVENT_DETAIL_INVALID', details: { field } }));
  });
});

describe('deriveDetail', () => {
  it('carries the saga and correlation ids, adds new ids and continues the trace with a new span', () => {
    const derived = deriveDetail(detail, { signed: true }, { attempt: 3, ids: { bizMsgIdr: 'M99999004abc' } });
    expect(derived).toMatchObject({ sagaId: detail.sagaId, endToEndId: detail.endToEndId, bizMsgIdr: 'M99999004abc', attempt: 3, data: { signed: true } });
    expect(derived.traceparent.split('-')[1]).toBe(detail.traceparent.split('-')[1]);
    expect(derived.traceparent).not.toBe(detail.traceparent);
    expect(isTraceparent(childTraceparent('garbage'))).toBe(true);
  });
});
