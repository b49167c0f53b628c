import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InboundWorld, until } from './inbound-support.ts';

let world: InboundWorld;

// The SPI's own 40 s: what the killed process held comes back after its queue's visibility
// timeout (6 s) and is still answered in time.
beforeAll(async () => (world = await InboundWorld.start(40_000)), 60_000);
afterAll(async () => world?.close());

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

describe('receiving payments to our customers, across a crash', () => {
  it('gives no inbound payment two answers and loses none when the workers are SIGKILLed mid-run and restarted', async () => {
    const first = await world.startWorkers();
    const core = await world.decider('selo-local-inbound-crash-core', { reject: 10, never: 0 });
    world.pipeline.simulator.inbound.start({ toIspb: world.ispb, ratePerSecond: 20, count: 150 });
    // Mid-run: some payments are done, many are somewhere in the pipeline.
    await until(() => core.finished >= 20, 120_000);
    expect(core.finished).toBeLessThan(150);
    const [child] = first.children;
    if (child === undefined) throw new Error('no worker process');
    child.kill('SIGKILL');
    await exited(child);
    await world.startWorkers();
    await until(() => core.finished === 150, 240_000);

    const ledger = world.ledger();
    expect(ledger.size).toBe(150);
    expect(core.summary()).toMatchObject({ received: 150, lost: 0, duplicated: 0, late: 0 });
    for (const [id, o] of core.observations) {
      const payment = ledger.get(id);
      expect(payment?.status, id).toBe(o.decision === 'accept' ? 'settled' : 'rejected');
      expect(o.outcomes[0], id).toBe(o.decision === 'accept' ? 'settled' : 'rejected');
      // The SPI saw our answer, perhaps more than once, but never a second, different one.
      const answers = payment?.receiverAnswers ?? [];
      expect(new Set(answers), id).toEqual(new Set([o.decision === 'accept' ? 'ACSP' : 'RJCT AC03']));
    }
  }, 420_000);
});
