import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CLAIM_TRANSITIONS, FaultController, Ledger, TokenBuckets, buildMultipart, corruptSignature, multipartBoundary, parseMultipart, resolveSimulatorOptions,
} from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulatorOptions } from '../../../infra/bcb-simulator/index.ts';
import { Mailbox } from '../../../infra/bcb-simulator/mailbox.ts';
import type { OutboundMessage } from '../../../infra/bcb-simulator/mailbox.ts';

afterEach(() => {
  vi.useRealTimers();
});

const BASE = { tlsKey: 'k', tlsCertificate: 'c', clientCa: 'ca', signingKey: { certificate: undefined, sign: () => Promise.resolve(Buffer.alloc(0)) } } as unknown as BcbSimulatorOptions;

function message(id: string): OutboundMessage {
  return { resourceId: id, toIspb: '99999004', type: 'pacs.002', content: () => Promise.resolve(`<x>${id}</x>`) };
}

describe('multipart/mixed', () => {
  it('round-trips parts with their headers', () => {
    const built = buildMultipart([{ headers: { 'PI-ResourceId': 'a1' }, body: '<a/>' }, { headers: { 'PI-ResourceId': 'b2' }, body: '<b>é</b>' }]);
    const parts = parseMultipart(built.body, multipartBoundary(`multipart/mixed; boundary="${built.boundary}"`) ?? '');
    expect(parts.map((p) => [p.headers['pi-resourceid'], p.body.toString('utf8')])).toEqual([['a1', '<a/>'], ['b2', '<b>é</b>']]);
  });

  it('refuses a body without its closing delimiter', () => {
    expect(() => parseMultipart(Buffer.from('--x\r\nContent-Type: a\r\n\r\nbody'), 'x')).toThrow(/closing delimiter/);
  });
});

describe('options', () => {
  it('applies the defaults once', () => {
    const resolved = resolveSimulatorOptions(BASE);
    expect(resolved).toMatchObject({ bcbIspb: '00038166', settlementLimitMs: 40_000, maxStreams: 6, maxMessagesPerPost: 10, host: '127.0.0.1', defaultReceiver: { mode: 'accept' } });
  });

  it('names the field and the bad value', () => {
    expect(() => resolveSimulatorOptions({ ...BASE, settlementLimitMs: -1 })).toThrow('BcbSimulatorOptions.settlementLimitMs must be a positive integer, got -1');
    expect(() => resolveSimulatorOptions({ ...BASE, host: '0.0.0.0' })).toThrow(/host must be a loopback address/);
    expect(() => resolveSimulatorOptions({ ...BASE, participants: [{ ispb: 'abc' }] })).toThrow(/participants\[0\]\.ispb/);
    expect(() => resolveSimulatorOptions({ ...BASE, defaultReceiver: { mode: 'reject', reasonCode: 'x' } })).toThrow(/reasonCode/);
    // AM05 has the form of a code but is not in pacs.002.spi.1.17.xsd's list: the RJCT would not conform.
    expect(() => resolveSimulatorOptions({ ...BASE, defaultReceiver: { mode: 'reject', reasonCode: 'AM05' } })).toThrow(/defaultReceiver\.reasonCode must be a code a receiver may give \(pacs\.002\.spi\.1\.17\.xsd: AB09, AC03/);
    expect(resolveSimulatorOptions({ ...BASE, defaultReceiver: { mode: 'reject', reasonCode: 'AM04' } }).defaultReceiver).toEqual({ mode: 'reject', reasonCode: 'AM04' });
  });
});

describe('faults', () => {
  it('stops request faults when the budget is spent', () => {
    const faults = new FaultController({ errorRate: 1, budget: 2 });
    expect([faults.requestFault('icom'), faults.requestFault('icom'), faults.requestFault('icom')]).toEqual(['error', 'error', undefined]);
    expect(faults.counts.error).toBe(2);
  });

  it('applies request faults to the scope only', () => {
    const faults = new FaultController({ resetRate: 1, scope: 'dict' });
    expect(faults.requestFault('icom')).toBeUndefined();
    expect(faults.requestFault('dict')).toBe('reset');
  });

  it('refuses a rate outside [0, 1], naming it', () => {
    expect(() => new FaultController({ errorRate: 2 })).toThrow('FaultSettings.errorRate must be a number in [0, 1], got 2');
  });

  it('breaks a signature value without breaking the XML', () => {
    const xml = '<ds:SignatureValue>QUJD</ds:SignatureValue>';
    expect(corruptSignature(xml)).toBe('<ds:SignatureValue>AUJD</ds:SignatureValue>');
  });
});

describe('token buckets', () => {
  it('answers false when empty and refills over time', () => {
    let now = 0;
    const buckets = new TokenBuckets({ capacity: 2, refillPerSecond: 1 }, () => now);
    expect([buckets.take('A'), buckets.take('A'), buckets.take('A')]).toEqual([true, true, false]);
    expect(buckets.take('B')).toBe(true);
    now = 1000;
    expect(buckets.take('A')).toBe(true);
  });

  it('charges extra tokens after the fact, never below zero', () => {
    const buckets = new TokenBuckets({ capacity: 5, refillPerSecond: 0 }, () => 0);
    expect(buckets.take('A')).toBe(true);
    buckets.charge('A', 2);
    expect(buckets.available('A')).toBe(2);
    buckets.charge('A', 10);
    expect(buckets.take('A')).toBe(false);
  });
});

describe('ledger', () => {
  it('decides a payment once and nets positions', () => {
    const ledger = new Ledger();
    ledger.addPayment({ endToEndId: 'E1', kind: 'pacs.008', payerIspb: 'A', receiverIspb: 'B', amount: '10.05', bizMsgIdr: 'M1', receivedAt: '', status: 'pending' });
    expect(ledger.decide('E1', 'settled')).toBe(true);
    expect(ledger.decide('E1', 'rejected', 'AB03')).toBe(false);
    expect(ledger.positions()).toEqual({ A: '-10.05', B: '10.05' });
    expect(ledger.summary()).toMatchObject({ pending: 0, settled: 1, rejected: 0 });
  });

  it('counts sent messages not yet confirmed, each confirmation once', () => {
    const ledger = new Ledger();
    for (const id of ['r1', 'r2', 'r3']) ledger.recordSent({ resourceId: id, toIspb: 'A', type: 'pacs.002', bizMsgIdr: 'M', reference: 'E1', createdAt: '', deliveries: 0, confirmed: false });
    ledger.markSent('r1', 'delivered');
    ledger.markSent('r1', 'confirmed');
    ledger.markSent('r1', 'confirmed');
    ledger.markSent('r2', 'confirmed');
    expect(ledger.summary()).toMatchObject({ sent: 3, unconfirmed: 1 });
  });

  it('records an answer about a return under its RtrId, and only from the participant the return credits, with when the first arrived', () => {
    const ledger = new Ledger();
    ledger.addPayment({ endToEndId: 'E1', kind: 'pacs.008', payerIspb: 'A', receiverIspb: 'B', amount: '10.00', bizMsgIdr: 'M1', receivedAt: '', status: 'settled' });
    ledger.addPayment({ endToEndId: 'D1', kind: 'pacs.004', originalEndToEndId: 'E1', payerIspb: 'B', receiverIspb: 'A', amount: '4.00', bizMsgIdr: 'M2', receivedAt: '', status: 'pending' });
    // B is not the return's receiver: its answer, though first, is neither recorded nor timed.
    ledger.noteAnswer({ originalInstructionId: 'D1', originalEndToEndId: 'E1' }, 'B', 'ACSP', '2026-01-01T00:00:00.500Z');
    ledger.noteAnswer({ originalInstructionId: 'D1', originalEndToEndId: 'E1' }, 'A', 'ACSP', '2026-01-01T00:00:01.000Z');
    ledger.noteAnswer({ originalInstructionId: 'E1', originalEndToEndId: 'E1' }, 'B', 'RJCT AC06', '2026-01-01T00:00:03.000Z');
    ledger.noteAnswer({ originalInstructionId: 'E1', originalEndToEndId: 'E1' }, 'B', 'ACSP', '2026-01-01T00:00:04.000Z');
    expect(ledger.payment('D1')?.receiverAnswers).toEqual(['ACSP']);
    expect(ledger.payment('E1')?.receiverAnswers).toEqual(['RJCT AC06', 'ACSP']);
    // When the first answer arrived, not a later one's time, nor the time of a refused sender's.
    expect(ledger.payment('D1')?.answeredAt).toBe('2026-01-01T00:00:01.000Z');
    expect(ledger.payment('E1')?.answeredAt).toBe('2026-01-01T00:00:03.000Z');
  });

  it('matches an echo answer by participant and data, keeping the first answer', () => {
    const ledger = new Ledger();
    ledger.recordEcho({ bizMsgIdr: 'M1', toIspb: 'A', data: 'ping', sentAt: '2026-01-01T00:00:00.000Z' });
    ledger.recordEcho({ bizMsgIdr: 'M2', toIspb: 'B', data: 'pong', sentAt: '2026-01-01T00:00:00.000Z' });
    expect(ledger.answerEcho('A', 'pong', 'MA1', new Date())).toBeUndefined();
    expect(ledger.answerEcho('A', 'ping', 'MA2', new Date('2026-01-01T00:00:01.000Z'))).toMatchObject({ bizMsgIdr: 'M1', answerBizMsgIdr: 'MA2', answeredAt: '2026-01-01T00:00:01.000Z' });
    expect(ledger.answerEcho('A', 'ping', 'MA3', new Date())).toMatchObject({ bizMsgIdr: 'M1', answerBizMsgIdr: 'MA2' });
    expect(ledger.echoes('B')).toEqual([{ bizMsgIdr: 'M2', toIspb: 'B', data: 'pong', sentAt: '2026-01-01T00:00:00.000Z' }]);
  });
});

describe('mailbox', () => {
  it('redelivers the unconfirmed batch of an idle stream with the same resource ids', async () => {
    vi.useFakeTimers();
    const box = new Mailbox('99999004', { delivered: () => undefined, confirmed: () => undefined, duplicate: () => false }, 1000);
    box.enqueue(message('r1'));
    box.enqueue(message('r2'));
    const stream = box.open(6);
    if (stream === undefined) throw new Error('no stream');
    const first = await box.take(stream, 10, 0, new AbortController().signal);
    expect(first.map((m) => m.resourceId)).toEqual(['r1', 'r2']);
    expect(box.size).toBe(0);
    vi.advanceTimersByTime(1001);
    expect(box.streams.size).toBe(0);
    expect(box.size).toBe(2);
    const again = box.open(6);
    if (again === undefined) throw new Error('no stream');
    expect((await box.take(again, 10, 0, new AbortController().signal)).map((m) => m.resourceId)).toEqual(['r1', 'r2']);
    box.shutdown();
  });

  it('opens at most the allowed number of streams', () => {
    const box = new Mailbox('99999004', { delivered: () => undefined, confirmed: () => undefined, duplicate: () => false }, 1000);
    const opened = Array.from({ length: 7 }, () => box.open(6));
    expect(opened.filter((s) => s !== undefined)).toHaveLength(6);
    box.shutdown();
  });
});

describe('claim state machine', () => {
  it('lets the donor acknowledge and confirm, the claimer complete, and either side cancel before completion', () => {
    expect(CLAIM_TRANSITIONS.acknowledge).toEqual({ from: ['OPEN'], to: 'WAITING_RESOLUTION', by: 'donor' });
    // confirmClaim: "Status deve estar em WAITING_RESOLUTION".
    expect(CLAIM_TRANSITIONS.confirm.from).toEqual(['WAITING_RESOLUTION']);
    expect(CLAIM_TRANSITIONS.complete).toEqual({ from: ['CONFIRMED'], to: 'COMPLETED', by: 'claimer' });
    expect(CLAIM_TRANSITIONS.cancel.from).not.toContain('COMPLETED');
  });
});
