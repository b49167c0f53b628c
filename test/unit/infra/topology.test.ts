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

  it('names every resource after the environment', () => {
    const topology = resolveTopology('prod');
    expect(topology.eventBusName).toBe('selo-prod-bus');
    expect(topology.auditStream.name).toBe('selo-prod-audit');
    expect(topology.auditBucket).toBe('selo-prod-audit');
    expect(topology.payloadBucket).toBe('selo-prod-payloads');
    expect(topology.sagaTable.name).toBe('selo-prod-saga');
    expect(topology.rules.every((r) => r.name.startsWith('selo-prod-'))).toBe(true);
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
