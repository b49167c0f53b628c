import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { demoPayment, DEMO_REJECT_REASON, RECEIVER_OF } from '../../bin/demo/demo-plan.ts';
import type { DemoPayment } from '../../bin/demo/demo-plan.ts';
import { TERMINAL_EVENTS } from '../../bin/demo/demo-report.ts';
import { DownstreamSubscriber } from '../../bin/demo/downstream-subscriber.ts';
import { InboundDecider } from '../../bin/demo/inbound-decider.ts';
import type { WorkerName } from '../../bin/worker-set.ts';
import { WORKER_NAMES } from '../../bin/worker-set.ts';
import { resolveTopology } from '../../infra/topology.ts';
import { ContainerStack, docker, healthOf, IMAGE_UID, SELO_ISPB, until } from './container-stack.ts';

/**
 * Issue 18: the image Fargate runs, one container per worker, killed for real. 300 payments as
 * core banking publishes them and 60 payments to selo's customers from the simulator's payer
 * PSPs; mid-run the transmit container and then the sign container are `docker kill`ed (SIGKILL)
 * and started again, and the verify container is `docker stop`ped under load (SIGTERM, Fargate's
 * 30 s) and started again.
 */
const PAYMENTS = 300;
const RATE = 10;
const BURST = 50;
const INBOUND = 60;
const topology = resolveTopology('local');

let stack: ContainerStack;
let subscriber: DownstreamSubscriber | undefined;
let decider: InboundDecider | undefined;

beforeAll(async () => {
  stack = await ContainerStack.start(inject('containerImages'));
  await Promise.all(WORKER_NAMES.map((name) => stack.startWorker(name)));
}, 300_000);

afterAll(async () => {
  await subscriber?.close();
  await decider?.close();
  await stack?.close();
});

function workerId(name: WorkerName): string {
  const container = stack.workers.get(name);
  if (container === undefined) throw new Error(`no ${name} container`);
  return container.getId();
}

describe('the worker image', () => {
  it('runs selo worker as the unprivileged user, with Node as PID 1', async () => {
    const id = workerId('sign');
    expect(await docker('exec', id, 'id', '-u')).toBe(String(IMAGE_UID));
    expect(await docker('inspect', '-f', '{{.Config.User}}', id)).toBe('selo');
    expect((await docker('exec', id, 'cat', '/proc/1/cmdline')).split('\0').slice(0, 4)).toEqual(['node', '/app/bin/selo.ts', 'worker', 'sign']);
  });
});

describe('containers killed mid-run', () => {
  it('gives every payment exactly one outcome, the ledger\'s, loses none and sends none twice when transmit and sign are killed and verify is stopped under load', async () => {
    const terminal = new Map<string, Set<string>>();
    subscriber = await DownstreamSubscriber.create({ clients: stack.clients, eventBusName: topology.eventBusName, name: 'selo-local-containers-downstream', detailTypes: Object.keys(TERMINAL_EVENTS) });
    subscriber.start((event) => {
      if (event.endToEndId === undefined || TERMINAL_EVENTS[event.detailType] === undefined) return;
      terminal.set(event.endToEndId, new Set([...(terminal.get(event.endToEndId) ?? []), event.detailType]));
    });
    decider = await InboundDecider.start({ clients: stack.clients, eventBusName: topology.eventBusName, name: 'selo-local-containers-core', mix: { reject: 10, never: 0 } });
    await stack.admin(`/participants/${RECEIVER_OF.reject}/receiver`, { method: 'PUT', body: { mode: 'reject', reasonCode: DEMO_REJECT_REASON } });
    await stack.admin('/inbound-traffic', { method: 'POST', body: { toIspb: SELO_ISPB, ratePerSecond: 2, count: INBOUND } });

    // Bursts of 50 (10/s on average), so that a container killed just after one has dozens of
    // messages in hand: what it had taken and not finished must come back, not vanish.
    const payments: DemoPayment[] = [];
    const publish = async (burst: number): Promise<void> => {
      const batch = Array.from({ length: BURST }, (_, j) => demoPayment(topology.eventBusName, SELO_ISPB, (burst * BURST + j) % 10 === 0 ? 'reject' : 'accept', burst * BURST + j, new Date()));
      payments.push(...batch);
      for (let i = 0; i < batch.length; i += 10) {
        const result = await stack.clients.events.send(new PutEventsCommand({ Entries: batch.slice(i, i + 10).map((p) => p.entry) }));
        expect(result.FailedEntryCount ?? 0).toBe(0);
      }
    };
    const atSimulator = async (count: number): Promise<void> => {
      await until(async () => (await stack.admin<{ received: number }>('/ledger/summary')).received >= count, 120_000, 100);
    };
    const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, (BURST / RATE) * 1000));
    let stopMs = 0;
    let stopped: { ExitCode: number; OOMKilled: boolean } | undefined;
    for (let burst = 0; burst < PAYMENTS / BURST; burst++) {
      await publish(burst);
      if (burst === 1) {
        // Transmit, while it posts this burst to the BCB.
        await atSimulator(BURST + 5);
        await docker('kill', workerId('transmit'));
        await stack.restart(workerId('transmit'));
      } else if (burst === 3) {
        // Sign, while it signs this burst.
        await docker('kill', workerId('sign'));
        await stack.restart(workerId('sign'));
      } else if (burst === 4) {
        // Verify, stopped as ECS stops a task (SIGTERM, 30 s), while the SPI's answers arrive.
        await atSimulator(4 * BURST + 5);
        const stopping = Date.now();
        await docker('stop', '--time', '30', workerId('verify'));
        stopMs = Date.now() - stopping;
        stopped = JSON.parse(await docker('inspect', '-f', '{{json .State}}', workerId('verify'))) as { ExitCode: number; OOMKilled: boolean };
        await stack.restart(workerId('verify'));
      } else {
        await pause();
      }
    }

    await until(() => terminal.size === PAYMENTS && (decider?.finished ?? 0) === INBOUND, 300_000, 500);
    const ledger = new Map((await stack.ledgerPayments()).map((p) => [p.endToEndId, p]));
    const refused = (await stack.ledgerReceived()).filter((r) => r.error?.code === 'DUPLICATE_ENDTOENDID').length;
    const outcomes = new Map<string, number>();
    for (const p of ledger.values()) {
      const key = `${p.receiverIspb === SELO_ISPB ? 'inbound' : 'outbound'} ${p.status}${p.reasonCode === undefined ? '' : ` ${p.reasonCode}`}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    console.info(`containers: ${PAYMENTS} payments in bursts of ${BURST} (${RATE}/s) and ${INBOUND} inbound; transmit and sign killed, verify stopped in ${stopMs} ms (exit ${String(stopped?.ExitCode)}); outcomes ${terminal.size}, inbound finished ${decider.finished}; ledger ${JSON.stringify(Object.fromEntries(outcomes))}; refused as duplicate EndToEndId ${refused}`);

    // docker stop: drained and ended by itself (exit 0) inside the 30 s before Docker's SIGKILL.
    expect(stopped).toMatchObject({ ExitCode: 0, OOMKilled: false });
    expect(stopMs).toBeLessThan(30_000);
    // Nothing lost: every payment reached a terminal event; exactly one kind, the ledger's decision.
    expect(payments.filter((p) => !terminal.has(p.endToEndId)).map((p) => p.endToEndId), 'payments without an outcome').toEqual([]);
    for (const payment of payments) {
      const decided = ledger.get(payment.endToEndId);
      expect(decided?.status, payment.endToEndId).not.toBe('pending');
      expect([...(terminal.get(payment.endToEndId) ?? [])], payment.endToEndId).toEqual([decided?.status === 'settled' ? 'PaymentSettled' : 'PaymentRejected']);
    }
    // Nothing sent twice with other content: a resend under other identifiers is refused as a duplicate EndToEndId.
    expect(refused).toBe(0);
    // The receiving side: every payment to our customers answered once, as core banking decided, and settled as the SPI says.
    expect(decider.summary()).toMatchObject({ received: INBOUND, lost: 0, duplicated: 0 });
    for (const [id, observation] of decider.observations) {
      const payment = ledger.get(id);
      expect(payment?.status, id).toBe(observation.outcomes[0]);
      expect(new Set(payment?.receiverAnswers ?? []).size, id).toBeLessThanOrEqual(1);
    }
  }, 600_000);
});

describe('the health check with the HSM gone', () => {
  it('reports /ready unhealthy and fails Docker\'s health check while the PKCS#11 module is missing, and recovers when it is back', async () => {
    // As test/integration/workers/sign-worker-hsm-outage.test.ts: the module path names a file
    // that appears only when the HSM "comes back" (a link, made from the host, in the mounted folder).
    const outage = join(stack.stateDir, 'hsm-outage');
    mkdirSync(outage);
    const port = stack.ports.spareHealth;
    const readiness = async (): Promise<{ status: number; hsm: boolean | undefined }> => {
      const response = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      if (response === undefined) return { status: 0, hsm: undefined };
      const body = (await response.json()) as { checks?: Record<string, { ok: boolean }> };
      return { status: response.status, hsm: body.checks?.hsm?.ok };
    };
    const id = (await stack.startExtraWorker('sign', { SELO_HSM_MODULE: '/app/.selo/hsm-outage/libsofthsm2.so', SELO_HEALTH_PORT: String(port) })).getId();
    expect(await readiness()).toEqual({ status: 503, hsm: false });
    expect(await until(async () => (await healthOf(id)) === 'unhealthy', 120_000, 1_000)).toBe(true);

    symlinkSync('/usr/lib/softhsm/libsofthsm2.so', join(outage, 'libsofthsm2.so'));
    expect(await until(async () => (await readiness()).status === 200, 60_000)).toBe(true);
    expect(await readiness()).toEqual({ status: 200, hsm: true });
    expect(await until(async () => (await healthOf(id)) === 'healthy', 60_000, 1_000)).toBe(true);
  }, 300_000);
});
