import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bcbAnswerTimes, INBOUND_REJECT_REASON } from '../../../bin/demo/inbound-decider.ts';
import { InboundWorld, until } from './inbound-support.ts';

let world: InboundWorld;

// 20 s: the never-decided payments end AB03 quickly; 15 s for core banking to decide.
beforeAll(async () => (world = await InboundWorld.start(20_000)), 60_000);
afterAll(async () => world?.close());

describe('receiving payments to our customers', () => {
  it('ends each of 200 inbound payments in exactly one of InboundPaymentSettled / InboundPaymentRejected, as the SPI decided', async () => {
    await world.startWorkers();
    const core = await world.decider('selo-local-inbound-core', { reject: 10, never: 5 });
    world.pipeline.simulator.inbound.start({ toIspb: world.ispb, ratePerSecond: 20, count: 200 });
    await until(() => core.finished === 200, 150_000);

    const ledger = world.ledger();
    expect(ledger.size).toBe(200);
    const summary = core.summary();
    expect(summary).toMatchObject({ received: 200, lost: 0, duplicated: 0, late: 0 });
    // The mix is drawn from the EndToEndIds: some of each, not exact shares.
    expect(summary.rejected).toBeGreaterThan(0);
    expect(summary.received - summary.accepted - summary.rejected).toBeGreaterThan(0);
    for (const [id, o] of core.observations) {
      const payment = ledger.get(id);
      expect(new Set(o.outcomes).size, id).toBe(1);
      // Credit only what the SPI settled; nothing it rejected.
      expect(o.outcomes[0], id).toBe(payment?.status === 'settled' ? 'settled' : 'rejected');
      if (o.decision === 'accept') expect(payment?.status, id).toBe('settled');
      if (o.decision === 'reject') expect([payment?.status, payment?.reasonCode, o.reasonCode], id).toEqual(['rejected', INBOUND_REJECT_REASON, INBOUND_REJECT_REASON]);
      if (o.decision === 'never') expect([payment?.status, payment?.reasonCode, o.reasonCode, payment?.receiverAnswers], id).toEqual(['rejected', 'AB03', 'AB03', undefined]);
      if (o.decision !== 'never') expect(o.answerMs, id).toBeGreaterThan(0);
      // The SPI has the time our answer reached it for every payment we answered, and only for those.
      expect(payment?.answeredAt === undefined, id).toBe(o.decision === 'never');
    }
    // The answer time as the SPI sees it covers every answered payment.
    const atSpi = bcbAnswerTimes(world.ispb, world.pipeline.simulator.ledger.sent(world.ispb), world.pipeline.simulator.ledger.payments());
    expect(atSpi.count).toBe(summary.accepted + summary.rejected);
    expect(atSpi.p50Ms).toBeGreaterThan(0);
  }, 240_000);
});
