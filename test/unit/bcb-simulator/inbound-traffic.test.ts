import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InboundTraffic, Ledger, fakeCpf, resolveInboundTraffic, resolveSimulatorOptions } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulatorOptions, LedgerPayment } from '../../../infra/bcb-simulator/index.ts';
import { END_TO_END_ID, MESSAGE_ID, amountToCents } from '../../../shared/iso20022/index.ts';
import type { CreditTransfer } from '../../../shared/iso20022/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { inboundTrafficFlags } from '../../../bin/commands/inbound-flags.ts';

const TO = '99999004';

/** A CPF's check digits by the Receita Federal rule, written independently of the generator's. */
function cpfIsValid(cpf: string): boolean {
  const d = [...cpf].map(Number);
  const digit = (n: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (d[i] ?? 0) * (n + 1 - i);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  return /^\d{11}$/.test(cpf) && digit(9) === d[9] && digit(10) === d[10];
}

describe('resolveInboundTraffic', () => {
  it('applies the defaults', () => {
    expect(resolveInboundTraffic({ toIspb: TO, ratePerSecond: 2 })).toEqual({
      toIspb: TO, ratePerSecond: 2, count: undefined, payerIspbs: ['99999010', '99999011'], minAmount: '0.01', maxAmount: '2500.00', dictShare: 0.5,
    });
  });

  it('names the field and the bad value', () => {
    const bad = (options: object): (() => unknown) => () => resolveInboundTraffic({ toIspb: TO, ratePerSecond: 1, ...options }, 'X', new Set(['00038166']));
    expect(bad({ toIspb: '1234' })).toThrow('X.toIspb must be 8 characters [0-9A-Z], got "1234"');
    expect(bad({ ratePerSecond: 0 })).toThrow('X.ratePerSecond must be a number more than 0 and at most 1000, got 0');
    expect(bad({ ratePerSecond: 1001 })).toThrow(/X\.ratePerSecond/);
    expect(bad({ ratePerSecond: '5' })).toThrow(/X\.ratePerSecond/);
    expect(bad({ count: 2.5 })).toThrow('X.count must be a positive integer, got 2.5');
    expect(bad({ payerIspbs: [] })).toThrow(/X\.payerIspbs must be a non-empty list/);
    expect(bad({ payerIspbs: ['99999010', 'x'] })).toThrow(/X\.payerIspbs\[1\] must be 8 characters/);
    expect(bad({ payerIspbs: [TO] })).toThrow(/X\.payerIspbs\[0\] must not be the receiver/);
    expect(bad({ payerIspbs: ['00038166'] })).toThrow(/X\.payerIspbs\[0\] must not be the BCB or a configured participant/);
    expect(bad({ minAmount: '10.001' })).toThrow(/X\.minAmount/);
    expect(bad({ minAmount: '0.00' })).toThrow(/X\.minAmount/);
    expect(bad({ minAmount: '5.00', maxAmount: '4.99' })).toThrow('X.maxAmount must be at least minAmount (5.00), got "4.99"');
    expect(bad({ dictShare: 1.5 })).toThrow(/X\.dictShare/);
  });

  it('is checked with the simulator options, naming BcbSimulatorOptions.inboundTraffic and refusing a configured participant as payer', () => {
    const base = { tlsKey: 'k', tlsCertificate: 'c', clientCa: 'ca', signingKey: {} } as unknown as BcbSimulatorOptions;
    expect(() => resolveSimulatorOptions({ ...base, inboundTraffic: { toIspb: TO, ratePerSecond: -1 } })).toThrow(/^BcbSimulatorOptions\.inboundTraffic\.ratePerSecond/);
    expect(() => resolveSimulatorOptions({ ...base, participants: [{ ispb: '99999005' }], inboundTraffic: { toIspb: TO, ratePerSecond: 1, payerIspbs: ['99999005'] } })).toThrow(
      /BcbSimulatorOptions\.inboundTraffic\.payerIspbs\[0\]/,
    );
    expect(resolveSimulatorOptions({ ...base, inboundTraffic: { toIspb: TO, ratePerSecond: 3, count: 7 } }).inboundTraffic).toMatchObject({ ratePerSecond: 3, count: 7 });
  });
});

describe('InboundTraffic', () => {
  let submitted: { tx: CreditTransfer; bizMsgIdr: string; payer: string }[];
  let traffic: InboundTraffic;

  beforeEach(() => {
    vi.useFakeTimers();
    submitted = [];
    traffic = new InboundTraffic({ submit: (tx, bizMsgIdr, payer) => submitted.push({ tx, bizMsgIdr, payer }), reserved: new Set(), logger: createLogger({ name: 'test', level: 'silent' }) });
  });

  afterEach(() => {
    traffic.close();
    vi.useRealTimers();
  });

  it('sends at the rate: one at once, then one every 1000/rate ms', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 10 });
    expect(submitted).toHaveLength(1);
    vi.advanceTimersByTime(1_000);
    expect(submitted).toHaveLength(11);
    vi.advanceTimersByTime(2_000);
    expect(submitted).toHaveLength(31);
  });

  it('sends several per tick above 100 a second and keeps the rate', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 500 });
    vi.advanceTimersByTime(1_000);
    expect(submitted.length).toBeGreaterThanOrEqual(495);
    expect(submitted.length).toBeLessThanOrEqual(505);
  });

  it('stops by itself after count, and its timer is gone', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 100, count: 5 });
    vi.advanceTimersByTime(10_000);
    expect(submitted).toHaveLength(5);
    expect(traffic.status()).toMatchObject({ running: false, sent: 5, pending: 5 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('generates nothing after stop or close, and refuses to start after close', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 10 });
    vi.advanceTimersByTime(500);
    const sent = submitted.length;
    expect(traffic.stop()).toMatchObject({ running: false, sent });
    vi.advanceTimersByTime(5_000);
    expect(submitted).toHaveLength(sent);
    traffic.start({ toIspb: TO, ratePerSecond: 10 });
    traffic.close();
    vi.advanceTimersByTime(5_000);
    expect(submitted).toHaveLength(sent + 1);
    expect(vi.getTimerCount()).toBe(0);
    expect(() => traffic.start({ toIspb: TO, ratePerSecond: 1 })).toThrow(/closed/);
  });

  it('does not make up for a stalled event loop with a burst', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 10 });
    vi.setSystemTime(Date.now() + 10_000); // ten seconds pass without any timer firing
    vi.advanceTimersByTime(100);
    expect(submitted.length).toBeLessThanOrEqual(3);
    vi.advanceTimersByTime(1_000);
    expect(submitted.length).toBeLessThanOrEqual(13);
  });

  it('counts the decisions of its own payments per run, with the reasons', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 1, count: 3 });
    vi.advanceTimersByTime(2_000);
    const decide = (i: number, status: 'settled' | 'rejected', reasonCode?: string): void =>
      traffic.decided({ endToEndId: submitted[i]?.tx.endToEndId ?? '', status, ...(reasonCode === undefined ? {} : { reasonCode }) } as LedgerPayment);
    decide(0, 'settled');
    decide(1, 'rejected', 'AB03');
    traffic.decided({ endToEndId: 'E9999900520260101120000000000000', status: 'settled' } as LedgerPayment); // not its own
    expect(traffic.status()).toMatchObject({ sent: 3, settled: 1, rejected: 1, pending: 1, rejectedByReason: { AB03: 1 } });
    traffic.start({ toIspb: TO, ratePerSecond: 1, count: 1 });
    decide(2, 'rejected', 'AC03'); // a payment of the replaced run
    expect(traffic.status()).toMatchObject({ sent: 1, settled: 0, rejected: 0, pending: 1 });
  });

  it('writes valid credit transfers from the payers in turn to the receiver, with varied amounts in range', () => {
    traffic.start({ toIspb: TO, ratePerSecond: 1000, count: 200, minAmount: '1.00', maxAmount: '50.00', dictShare: 0.5 });
    vi.advanceTimersByTime(1_000);
    expect(submitted).toHaveLength(200);
    expect(submitted.slice(0, 4).map((s) => s.payer)).toEqual(['99999010', '99999011', '99999010', '99999011']);
    for (const { tx, bizMsgIdr, payer } of submitted) {
      expect(tx.endToEndId).toMatch(END_TO_END_ID);
      expect(tx.endToEndId.slice(1, 9)).toBe(payer);
      expect(bizMsgIdr).toMatch(MESSAGE_ID);
      expect(bizMsgIdr.slice(1, 9)).toBe(payer);
      expect(tx).toMatchObject({ debtorAgentIspb: payer, creditorAgentIspb: TO, purpose: 'IPAY' });
      expect(tx.acceptanceDateTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(amountToCents(tx.amount)).toBeGreaterThanOrEqual(100n);
      expect(amountToCents(tx.amount)).toBeLessThanOrEqual(5000n);
      expect(cpfIsValid(tx.debtor.taxId) && cpfIsValid(tx.creditor.taxId)).toBe(true);
      expect(tx.debtor.name.length).toBeGreaterThan(0);
      if (tx.localInstrument === 'DICT') expect(tx.creditorAccount.proxy).toMatch(/^[0-9a-f-]{36}$/);
      else expect(tx).toMatchObject({ localInstrument: 'MANU', creditorAccount: expect.not.objectContaining({ proxy: expect.anything() as unknown }) as unknown });
    }
    expect(new Set(submitted.map((s) => s.tx.amount)).size).toBeGreaterThan(50);
    expect(new Set(submitted.map((s) => s.tx.localInstrument))).toEqual(new Set(['DICT', 'MANU']));
    expect(traffic.isSimulatedPayer('99999010')).toBe(true);
    expect(traffic.isSimulatedPayer(TO)).toBe(false);
  });
});

describe('fakeCpf', () => {
  it('has 11 digits with valid check digits', () => {
    for (let i = 0; i < 100; i++) expect(cpfIsValid(fakeCpf())).toBe(true);
  });
});

describe('Ledger and simulated recipients', () => {
  it('records a message to a simulated payer without counting it as unconfirmed', () => {
    const ledger = new Ledger();
    const sent = { toIspb: '99999010', type: 'pacs.002', bizMsgIdr: 'M', reference: 'E', createdAt: '', deliveries: 0, confirmed: false };
    ledger.recordSent({ ...sent, resourceId: 'r1', simulatedRecipient: true });
    ledger.recordSent({ ...sent, resourceId: 'r2', toIspb: '99999004' });
    expect(ledger.summary()).toMatchObject({ sent: 2, unconfirmed: 1 });
  });
});

describe('inbound traffic flags', () => {
  it('builds the options, the receiver defaulting to selo\'s ISPB', () => {
    expect(inboundTrafficFlags({ 'inbound-rate': '2.5', 'inbound-count': '10', 'inbound-payers': '99999010, 99999012' }, TO)).toEqual({
      toIspb: TO, ratePerSecond: 2.5, count: 10, payerIspbs: ['99999010', '99999012'],
    });
    expect(inboundTrafficFlags({}, TO)).toBeUndefined();
  });

  it('refuses a bad flag, naming it', () => {
    expect(() => inboundTrafficFlags({ 'inbound-rate': 'fast' }, TO)).toThrow('--inbound-rate must be a number of payments per second above 0, got "fast"');
    expect(() => inboundTrafficFlags({ 'inbound-rate': '1', 'inbound-count': '0' }, TO)).toThrow(/--inbound-count must be a positive integer/);
    expect(() => inboundTrafficFlags({ 'inbound-count': '3' }, TO)).toThrow('--inbound-count needs --inbound-rate');
  });
});
