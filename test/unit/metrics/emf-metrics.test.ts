import { afterEach, describe, expect, it, vi } from 'vitest';
import { EnvReader, ConfigError } from '../../../shared/config/index.ts';
import { EmfMetrics, NO_METRICS, countingPublisher, quantise, readMetricsConfig, recordStage, startProcessMetrics } from '../../../shared/metrics/index.ts';
import type { EventToPublish } from '../../../shared/runtime/index.ts';
import { emfProblems } from '../../support/emf-spec.ts';

interface Line {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [member: string]: unknown;
}

function emitter(options: { now?: () => number } = {}): { metrics: EmfMetrics; lines: string[]; parsed: () => Line[] } {
  const lines: string[] = [];
  const metrics = new EmfMetrics({ namespace: 'selo/test', service: 'sign', write: (line) => lines.push(line), now: options.now ?? (() => 1_700_000_000_123) });
  return { metrics, lines, parsed: () => lines.map((l) => JSON.parse(l) as Line) };
}

function event(detailType: string, data: unknown = {}): EventToPublish {
  return { detailType, detail: { version: 1, sagaId: 'PAY#E1', attempt: 1, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', data } };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('EmfMetrics', () => {
  it('writes one EMF document per metric and dimension values that the specification accepts', () => {
    const { metrics, lines, parsed } = emitter();
    metrics.count('Payments', { Outcome: 'settled' });
    metrics.count('Payments', { Outcome: 'settled' }, 2);
    metrics.count('Payments', { Outcome: 'rejected' });
    metrics.observe('StageLatency', { Stage: 'request_to_signed' }, 12);
    metrics.count('HsmErrors', {});
    metrics.flush();
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(emfProblems(line)).toEqual([]);
    const [settled, rejected, latency, hsm] = parsed();
    expect(settled).toEqual({
      _aws: { Timestamp: 1_700_000_000_123, CloudWatchMetrics: [{ Namespace: 'selo/test', Dimensions: [['Outcome']], Metrics: [{ Name: 'Payments', Unit: 'Count' }] }] },
      Service: 'sign',
      Outcome: 'settled',
      Payments: 3,
    });
    expect(rejected?.Payments).toBe(1);
    expect(latency?.StageLatency).toEqual({ Values: [12], Counts: [1] });
    expect(latency?._aws.CloudWatchMetrics[0]?.Metrics).toEqual([{ Name: 'StageLatency', Unit: 'Milliseconds' }]);
    // HsmErrors is published per service and for all services together.
    expect(hsm?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([[], ['Service']]);
  });

  it('aggregates 1,500 observations of an interval into distinct values with counts, not one value each', () => {
    const { metrics, lines, parsed } = emitter();
    for (let i = 0; i < 1500; i += 1) metrics.observe('StageLatency', { Stage: 'signed_to_bcb_accepted' }, 20 + (i % 10));
    metrics.flush();
    expect(lines).toHaveLength(1);
    const target = parsed()[0]?.StageLatency as { Values: number[]; Counts: number[] };
    expect(target.Values).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(target.Counts).toEqual(Array.from({ length: 10 }, () => 150));
  });

  it('splits a distribution of more than 100 distinct values over several lines of at most 100 values each', () => {
    const { metrics, lines, parsed } = emitter();
    // 250 distinct values survive the two-digit quantisation: 1.0 … 9.9 (90), 10 … 99 (90), 100 … 790 (70).
    const values = [...Array.from({ length: 90 }, (_, i) => 1 + i / 10), ...Array.from({ length: 90 }, (_, i) => 10 + i), ...Array.from({ length: 70 }, (_, i) => 100 + i * 10)];
    for (const v of values) metrics.observe('HsmPoolWait', {}, v);
    metrics.flush();
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(emfProblems(line)).toEqual([]);
    const targets = parsed().map((l) => l.HsmPoolWait as { Values: number[]; Counts: number[] });
    expect(targets.map((t) => t.Values.length)).toEqual([100, 100, 50]);
    expect(targets.flatMap((t) => t.Counts).reduce((a, b) => a + b, 0)).toBe(250);
  });

  it('keeps observations to two significant digits and counts negative ones as zero', () => {
    expect(quantise(1234)).toBe(1200);
    expect(quantise(2_349)).toBe(2300);
    expect(quantise(0.456)).toBe(0.46);
    expect(quantise(-3)).toBe(0);
  });

  it('starts a new interval at each flush and writes nothing for an empty one', () => {
    const { metrics, lines } = emitter();
    metrics.count('BcbResponses', { Status: '201' });
    metrics.flush();
    metrics.flush();
    expect(lines).toHaveLength(1);
  });

  it('drops a non-finite value or an empty dimension value instead of throwing or writing an invalid line', () => {
    const { metrics, lines } = emitter();
    metrics.observe('StageLatency', { Stage: 'request_to_signed' }, Number.NaN);
    metrics.count('Payments', { Outcome: '' });
    metrics.flush();
    expect(lines).toEqual([]);
  });

  it('writes on its interval, and what is left when closed', async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const metrics = new EmfMetrics({ namespace: 'selo/test', service: 'sign', flushIntervalMs: 10_000, write: (line) => lines.push(line) });
    metrics.start();
    metrics.count('Payments', { Outcome: 'settled' });
    vi.advanceTimersByTime(9_999);
    expect(lines).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(lines).toHaveLength(1);
    metrics.count('Payments', { Outcome: 'settled' });
    await metrics.close();
    await metrics.close();
    expect(lines).toHaveLength(2);
  });

  it('refuses a namespace EMF does not accept, naming the option', () => {
    expect(() => new EmfMetrics({ namespace: '', service: 'sign' })).toThrow(/EmfMetricsOptions\.namespace/);
  });
});

describe('metrics configuration', () => {
  it('is off unless SELO_METRICS=emf, with the namespace selo/<env> by default', () => {
    const off = readMetricsConfig(new EnvReader({}), 'prod');
    expect(off).toMatchObject({ mode: 'off', namespace: 'selo/prod', flushSeconds: 10 });
    expect(startProcessMetrics(off, 'sign').metrics).toBe(NO_METRICS);
    const on = readMetricsConfig(new EnvReader({ SELO_METRICS: 'emf', SELO_METRICS_NAMESPACE: 'bank/pix', SELO_METRICS_SERVICE: 'compensate-sweeper' }), 'prod');
    expect(on).toMatchObject({ mode: 'emf', namespace: 'bank/pix', service: 'compensate-sweeper' });
  });

  it('names SELO_METRICS when it holds an unknown mode', () => {
    const reader = new EnvReader({ SELO_METRICS: 'statsd' });
    readMetricsConfig(reader, 'prod');
    expect(() => reader.finish()).toThrow(ConfigError);
    expect(() => reader.finish()).toThrow(/SELO_METRICS/);
  });
});

describe('worker metrics', () => {
  it('counts payments by the outcome of each published event, after the publish succeeded', async () => {
    const { metrics, parsed } = emitter();
    const published: string[] = [];
    const counting = countingPublisher({ publish: (events) => { published.push(...events.map((e) => e.detailType)); return Promise.resolve(); } }, metrics);
    await counting.publish([event('PaymentSettled'), event('InboundPaymentRejected'), event('MessageSigned')]);
    await expect(countingPublisher({ publish: () => Promise.reject(new Error('bus down')) }, metrics).publish([event('PaymentSettled')])).rejects.toThrow('bus down');
    metrics.flush();
    expect(published).toEqual(['PaymentSettled', 'InboundPaymentRejected', 'MessageSigned']);
    expect(parsed().map((l) => [l.Outcome, l.Payments])).toEqual([['settled', 1], ['inbound_rejected', 1]]);
  });

  it('measures each worker\'s stage from the input\'s receipt or event time, and the inbound answer from answerMs', () => {
    const { metrics, parsed } = emitter();
    const now = Date.parse('2026-11-28T17:00:01.500Z');
    recordStage(metrics, 'sign', { time: '2026-11-28T17:00:01.000Z', data: {} }, [event('MessageSigned')], now);
    recordStage(metrics, 'verify', { time: '2026-11-28T17:00:00.000Z', data: { receivedAt: '2026-11-28T17:00:01.250Z' } }, [event('PaymentSettled')], now);
    recordStage(metrics, 'transmit', { time: '2026-11-28T17:00:01.400Z', data: {} }, [event('MessageTransmitted', { answerMs: 830 })], now);
    // A failed sign publishes no MessageSigned: no stage.
    recordStage(metrics, 'sign', { time: '2026-11-28T17:00:00.000Z', data: {} }, [event('InboundDecisionLate')], now);
    metrics.flush();
    expect(parsed().map((l) => [l.Stage, l.StageLatency])).toEqual([
      ['request_to_signed', { Values: [500], Counts: [1] }],
      ['receipt_to_verified', { Values: [250], Counts: [1] }],
      ['signed_to_bcb_accepted', { Values: [100], Counts: [1] }],
      ['inbound_receipt_to_bcb_accepted', { Values: [830], Counts: [1] }],
    ]);
  });
});
