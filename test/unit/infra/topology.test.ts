import { describe, expect, it } from 'vitest';
import { COMPENSATION_TRIGGERS, TOPOLOGY, resolveTopology } from '../../../infra/topology.ts';

describe('topology', () => {
  it('gives every queue a dead-letter queue and a bounded retry budget', () => {
    const topology = resolveTopology('local');
    expect(topology.queues.map((q) => q.name)).toEqual([
      'selo-local-sign',
      'selo-local-transmit',
      'selo-local-verify',
      'selo-local-compensate',
      'selo-local-operations',
    ]);
    for (const queue of topology.queues) {
      expect(queue.dlqName).toBe(`${queue.name}-dlq`);
      expect(queue.maxReceiveCount).toBeGreaterThanOrEqual(1);
      expect(queue.maxReceiveCount).toBeLessThanOrEqual(10);
      // SQS limits: visibility ≤ 12 h, retention ≤ 14 days.
      expect(queue.visibilityTimeoutSeconds).toBeLessThanOrEqual(43_200);
      expect(queue.dlqRetentionSeconds).toBeLessThanOrEqual(1_209_600);
      expect(queue.dlqRetentionSeconds).toBeGreaterThanOrEqual(queue.messageRetentionSeconds);
    }
  });

  it('brings a crashed worker\'s messages on the payment path back within seconds, well inside the SPI\'s 40 s', () => {
    for (const key of ['sign', 'transmit', 'verify', 'compensate']) {
      const queue = TOPOLOGY.queues.find((q) => q.key === key);
      expect(queue?.visibilityTimeoutSeconds, key).toBeLessThanOrEqual(10);
      // The runtime's heartbeat (a third of the timeout) must fire at least twice per timeout.
      expect(queue?.visibilityTimeoutSeconds, key).toBeGreaterThanOrEqual(3);
    }
  });

  it('sends core banking\'s decisions on inbound payments and the SPI\'s echoes to the sign worker, and their alerts to operations', () => {
    const answers = resolveTopology('local').rules.find((r) => r.key === 'answers-to-sign');
    expect(answers?.targets).toEqual([{ queue: 'sign' }]);
    expect(answers?.eventPattern).toEqual({ $or: [{ source: ['core.banking'], 'detail-type': ['InboundPaymentDecided'] }, { source: ['selo.verify'], 'detail-type': ['EchoReceived'] }] });
    const alerts = resolveTopology('local').rules.find((r) => r.key === 'alerts-to-operations');
    expect(alerts?.eventPattern['detail-type']).toEqual(expect.arrayContaining(['InboundDecisionLate', 'UnsupportedMessageReceived']));
    // Nothing on the receiving side is compensated: no money moved before the SPI settled.
    expect(COMPENSATION_TRIGGERS).not.toContain('InboundPaymentRejected');
  });

    it('names every resource after the environment', () => {
    const topology = resolveTopology('prod');
    expect(topology.eventBusName).toBe('selo-prod-bus');
    expect(topology.auditStream.name).toBe('selo-prod-audit');
    expect(topology.auditBucket).toBe('selo-prod-audit');
    expect(topology.payloadBucket).toBe('selo-prod-payloads');
    expect(topology.sagaTable.name).toBe('selo-prod-saga');
    expect(topology.rules.every((r) => r.name.startsWith('selo-prod-'))).toBe(true);
  });

  it('sends only the in-doubt sweeper\'s OutcomeQueryRequested to the sign worker, never to compensation or operations (issue 17)', () => {
    const rules = resolveTopology('local').rules;
    expect(rules.find((r) => r.key === 'queries-to-sign')).toMatchObject({ eventPattern: { source: ['selo.compensate'], 'detail-type': ['OutcomeQueryRequested'] }, targets: [{ queue: 'sign' }] });
    expect(COMPENSATION_TRIGGERS).not.toContain('OutcomeQueryRequested');
  });

  it('routes core banking requests to the sign queue and definite failures to compensation', () => {
    const rules = resolveTopology('local').rules;
    expect(rules.find((r) => r.key === 'requests-to-sign')?.targets).toEqual([{ queue: 'sign' }]);
    const failures = rules.find((r) => r.key === 'failures-to-compensate');
    expect(failures?.eventPattern['detail-type']).toEqual(COMPENSATION_TRIGGERS);
    expect(COMPENSATION_TRIGGERS).not.toContain('PaymentInDoubt');
  });

  it('rejects an environment name that would break resource naming rules', () => {
    expect(() => resolveTopology('Prod')).toThrow(/environment name/);
    expect(() => resolveTopology('a'.repeat(21))).toThrow(/max 20/);
  });

  it('rejects a rule that targets an undeclared queue', () => {
    const broken = { ...TOPOLOGY, rules: [{ key: 'x', description: 'x', eventPattern: {}, targets: [{ queue: 'nowhere' }] }] };
    expect(() => resolveTopology('local', broken)).toThrow('rule x targets undeclared queue nowhere');
  });
});
