import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { FaultSettings } from '../../infra/bcb-simulator/index.ts';
import type { LocalStack } from '../../infra/local/index.ts';
import type { ResolvedTopology } from '../../infra/topology.ts';
import type { CommandIo } from '../commands/command.ts';
import { assignOutcomes, demoEcho, demoPayment, DEMO_REJECT_REASON, RECEIVER_OF } from './demo-plan.ts';
import type { DemoPayment, OutcomeMix } from './demo-plan.ts';
import { COMPENSATED_EVENT, renderProgress, renderReport, renderStages, stageLatencies, summarise, TERMINAL_EVENTS } from './demo-report.ts';
import type { DemoSummary, LedgerCheck, PaymentObservation, TerminalOutcome } from './demo-report.ts';
import { DownstreamSubscriber } from './downstream-subscriber.ts';
import { bcbAnswerTimes, DEFAULT_DECISION_MIX, InboundDecider, inboundStages, renderInbound, renderInboundStages } from './inbound-decider.ts';
import type { DecisionMix, InboundSummary } from './inbound-decider.ts';
import { splitWorkers, startWorkerProcesses } from './worker-processes.ts';

/** Options of {@link runDemo}; the CLI validates them. */
export interface DemoOptions {
  payments: number;
  /** Payments published per second. */
  ratePerSecond: number;
  mix: OutcomeMix;
  /** The simulated SPI's settlement limit (40 s at the BCB); `never` payments end AB03 after it. */
  settlementLimitMs: number;
  /** How late the `late` receiver answers (within the limit). */
  lateDelayMs: number;
  /** Give up waiting for terminal events after this long (then they count as lost). */
  timeoutMs: number;
  /** Print the summary as one JSON object on the last line. */
  json: boolean;
  /** The development PKI folder (created on first run). */
  pkiDir: string;
  /** Redraw the progress bar in place (a terminal) rather than print a line every few seconds. */
  interactive: boolean;
  /** Faults the simulator injects from the start (stream duplicates, invalid signatures…). @defaultValue none */
  faults?: FaultSettings;
  /**
   * Processes the workers run in: 0 runs them inside the demo's process; 1 runs `selo worker all`
   * as a child (one HSM pool, as one ECS task would); 2 splits the send side from the receive side
   * (the stand-ins and the workers then use separate cores).
   * @defaultValue 1
   */
  workerProcesses?: number;
  /** Payments the simulated payer PSPs send to our customers, at the same time. @defaultValue 0 */
  inboundPayments?: number;
  /** Inbound payments per second. @defaultValue 10 */
  inboundRatePerSecond?: number;
  /** How core banking decides on them. @defaultValue {@link DEFAULT_DECISION_MIX} */
  inboundMix?: DecisionMix;
  /**
   * SPI echoes (pibr.001 → pibr.002) sent through every worker and the simulator before the first
   * payment, and awaited: a run measures warm processes, as a long-lived task is, not the first
   * second after start (JIT, first connections). 0: none. @defaultValue 0
   */
  warmUpEchoes?: number;
}

/** What {@link runDemo} returns: the summary and the checks against the simulator's ledger. */
export interface DemoResult {
  summary: DemoSummary;
  ledger: LedgerCheck;
  /**
   * Of the demo's payments, how many have on the audit stream the request selo sent to ICOM
   * (`requests`) and a BCB answer whose signature verified (`verifiedResponses`).
   */
  auditCoverage: { requests: number; verifiedResponses: number };
  /** Audit records the local Firehose wrote as Parquet at the end of the run. */
  parquetRecords: number;
  /** What the downstream subscriber saw, per EndToEndId. */
  observations: ReadonlyMap<string, PaymentObservation>;
  /** The receiving side's figures, when inbound payments ran. */
  inbound?: InboundSummary;
}

const DOWNSTREAM_EVENTS = [...Object.keys(TERMINAL_EVENTS), COMPENSATED_EVENT];

/**
 * The end-to-end demo: the local stack, the BCB simulator and every worker in this process;
 * `payments` PaymentRequested events published as core banking would, at `ratePerSecond`, with
 * the receivers in the simulator playing the outcome mix; a downstream subscriber with its own
 * rule and queue; progress while it runs; a report at the end.
 */
export async function runDemo(options: DemoOptions, io: CommandIo): Promise<DemoResult> {
  const [{ prepareLocalHsm }, { startLocalStack, startLocalPipeline }, { createLogger }, { readAuditStream }, { resolveTopology }, { loadConfig }] = await Promise.all([
    import('../../infra/local/local-hsm.ts'),
    import('../../infra/local/index.ts'),
    import('../../shared/logging/index.ts'),
    import('../../shared/audit/index.ts'),
    import('../../infra/topology.ts'),
    import('../../shared/config/index.ts'),
  ]);
  const hsm = await prepareLocalHsm(options.pkiDir, io.env);
  const workerProcesses = options.workerProcesses ?? 1;
  // Free ports: the demo must not collide with a `selo up` running on the usual ones.
  const stack = await startLocalStack();
  const cleanups: (() => Promise<void>)[] = [() => stack.close()];
  try {
    const env = { ...io.env, ...stack.env() };
    const config = loadConfig(env);
    const topology = resolveTopology(config.environment);
    // Quiet unless asked: the demo's own output is the progress bar and the report.
    const logger = createLogger({ name: 'selo.demo', level: io.env['SELO_LOG_LEVEL'] === undefined ? 'error' : config.logLevel, destination: process.stderr });
    const pipeline = await startLocalPipeline({
      stack,
      pkiDir: hsm.pkiDir,
      env,
      logger,
      simulator: {
        settlementLimitMs: options.settlementLimitMs,
        ...(options.faults === undefined ? {} : { faults: options.faults }),
        participants: [
          // selo answers for itself: the simulator waits for our pacs.002.
          { ispb: config.ispb, receiver: { mode: 'live' } },
          { ispb: RECEIVER_OF.accept, receiver: { mode: 'accept' } },
          { ispb: RECEIVER_OF.reject, receiver: { mode: 'reject', reasonCode: DEMO_REJECT_REASON } },
          { ispb: RECEIVER_OF.late, receiver: { mode: 'accept', delayMs: options.lateDelayMs } },
          { ispb: RECEIVER_OF.never, receiver: { mode: 'never' } },
        ],
      },
      workers: workerProcesses === 0 ? undefined : [],
      workerEnv: {
        SELO_SWEEP_INTERVAL_MS: '1000',
        SELO_SPI_SETTLEMENT_LIMIT_MS: String(options.settlementLimitMs),
        SELO_IN_DOUBT_MARGIN_MS: String(Math.max(2000, Math.round(options.settlementLimitMs / 2))),
        // As 32 s is to the SPI's 40 s: room to sign and send an answer before the limit.
        SELO_INBOUND_DECISION_LIMIT_MS: String(Math.max(100, Math.round(options.settlementLimitMs * 0.8))),
      },
    });
    cleanups.push(() => pipeline.stop());
    if (workerProcesses > 0) {
      const groups = splitWorkers(workerProcesses);
      const children = await startWorkerProcesses(groups, pipeline.workerEnv);
      cleanups.push(() => children.stop());
      io.stderr.write(`selo demo: local stack and BCB simulator up; workers in ${groups.length} process(es): ${groups.map((g) => g.join(',')).join(' | ')}\n${pipeline.describe()}`);
    } else {
      io.stderr.write(`selo demo: local stack, BCB simulator and workers up\n${pipeline.describe()}`);
    }

    const subscriber = await DownstreamSubscriber.create({ clients: stack.clients, eventBusName: topology.eventBusName, name: `selo-${config.environment}-demo-downstream`, detailTypes: DOWNSTREAM_EVENTS });
    cleanups.push(() => subscriber.close());
    const observations = new Map<string, PaymentObservation>();
    const counts: Record<TerminalOutcome, number> = { settled: 0, rejected: 0, inDoubt: 0 };
    let compensated = 0;
    let rejectedAwaitingCompensation = 0;
    subscriber.start((event) => {
      const observation = event.endToEndId === undefined ? undefined : observations.get(event.endToEndId);
      if (observation === undefined) return;
      const outcome = TERMINAL_EVENTS[event.detailType];
      if (outcome !== undefined) {
        if (observation.terminal.length === 0) {
          counts[outcome] += 1;
          if (outcome === 'rejected') rejectedAwaitingCompensation += 1;
        }
        observation.terminal.push({ outcome, detailType: event.detailType, at: event.receivedAt });
      } else if (event.detailType === COMPENSATED_EVENT) {
        observation.compensations += 1;
        if (observation.compensatedAt === undefined) {
          observation.compensatedAt = event.receivedAt;
          compensated += 1;
          if (observation.terminal[0]?.outcome === 'rejected') rejectedAwaitingCompensation -= 1;
        }
      }
    });

    const inboundPayments = options.inboundPayments ?? 0;
    let decider: InboundDecider | undefined;
    if (inboundPayments > 0) {
      const core = await InboundDecider.start({ clients: stack.clients, eventBusName: topology.eventBusName, name: `selo-${config.environment}-demo-core-banking`, mix: options.inboundMix ?? DEFAULT_DECISION_MIX });
      decider = core;
      cleanups.push(() => core.close());
    }

    const warmUp = await warmUpWithEchoes(stack.clients, topology, options.warmUpEchoes ?? 0, options.ratePerSecond);
    if (warmUp !== undefined) io.stderr.write(`selo demo: warm-up: ${warmUp.echoes} SPI echoes answered in ${warmUp.ms} ms\n`);

    const outcomes = assignOutcomes(options.payments, options.mix);
    const started = Date.now();
    if (inboundPayments > 0) pipeline.simulator.inbound.start({ toIspb: config.ispb, ratePerSecond: options.inboundRatePerSecond ?? 10, count: inboundPayments });
    let published = 0;
    const progress = (): string => renderProgress({ total: options.payments, published, counts, compensated, elapsedMs: Date.now() - started });
    let lastLine = 0;
    const ticker = setInterval(() => {
      if (options.interactive) io.stderr.write(`\r${progress()}\u001b[K`);
      else if (Date.now() - lastLine >= 2000) {
        lastLine = Date.now();
        io.stderr.write(`${progress()}\n`);
      }
    }, 200);
    try {
      // Batches of up to 10 (PutEvents' limit), paced so that the rate holds over the run.
      const batchSize = Math.min(10, Math.max(1, Math.round(options.ratePerSecond / 20)));
      for (let i = 0; i < options.payments; i += batchSize) {
        const due = started + (i / options.ratePerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const at = new Date();
        const batch: DemoPayment[] = [];
        for (let j = i; j < Math.min(i + batchSize, options.payments); j++) batch.push(demoPayment(topology.eventBusName, config.ispb, outcomes[j] ?? 'accept', j, at));
        for (const payment of batch) observations.set(payment.endToEndId, { publishedAt: Date.now(), terminal: [], compensations: 0 });
        await publishAll(stack.clients.events, batch);
        published += batch.length;
      }
      const publishSeconds = (Date.now() - started) / 1000;
      const deadline = started + options.timeoutMs;
      const finished = (): boolean =>
        counts.settled + counts.rejected + counts.inDoubt === options.payments && rejectedAwaitingCompensation === 0 && (decider === undefined || decider.finished === inboundPayments);
      while (!finished() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      // A short grace period: a duplicate terminal event would arrive now.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      clearInterval(ticker);
      io.stderr.write(options.interactive ? `\r${progress()}\u001b[K\n` : `${progress()}\n`);

      let auditRecords = 0;
      const requested = new Set<string>();
      const verified = new Set<string>();
      const stageTimes = new Map<string, Partial<Record<string, number>>>();
      const inboundTimes = new Map<string, Partial<Record<string, number>>>();
      await readAuditStream(stack.clients.kinesis, topology.auditStream.name, (record) => {
        auditRecords += 1;
        const id = record.end_to_end_id;
        if (id !== null && record.saga_id.startsWith('IN#') && record.kind === 'transition' && record.transition_to !== null) {
          const times = inboundTimes.get(id) ?? {};
          times[record.transition_to] ??= Date.parse(record.recorded_at);
          inboundTimes.set(id, times);
        }
        if (id === null || !observations.has(id)) return;
        if (record.kind === 'transition' && record.transition_to !== null) {
          const times = stageTimes.get(id) ?? {};
          times[record.transition_to] ??= Date.parse(record.recorded_at);
          stageTimes.set(id, times);
        }
        if (record.worker === 'transmit' && record.request_method === 'POST') requested.add(id);
        if (record.response_signature_valid === true) verified.add(id);
      });
      // The local Firehose, once over the whole stream: what Athena would query in AWS.
      const { LocalAuditDelivery, kinesisAuditStreamPort, s3AuditObjectStorePort } = await import('../../shared/audit/parquet-delivery.ts');
      const delivery = new LocalAuditDelivery({ stream: kinesisAuditStreamPort(stack.clients.kinesis), store: s3AuditObjectStorePort(stack.clients.s3), streamName: topology.auditStream.name, bucket: topology.auditBucket, logger, checkpoint: 'memory' });
      const delivered = await delivery.drainOnce();
      await delivery.close();
      const summary = summarise(observations, auditRecords);
      // The ledger holds both directions: ours to others, and the payer PSPs' to our customers.
      const ledgerOf = (mine: (p: { payerIspb: string; receiverIspb: string }) => boolean): { settled: number; rejected: number; pending: number } => {
        const payments = pipeline.simulator.ledger.payments().filter((p) => p.kind === 'pacs.008' && mine(p));
        return { settled: payments.filter((p) => p.status === 'settled').length, rejected: payments.filter((p) => p.status === 'rejected').length, pending: payments.filter((p) => p.status === 'pending').length };
      };
      // A payment sent twice under other identifiers is refused as a duplicate EndToEndId; a message
      // resent as it was (same BizMsgIdr, after a timeout) is the SPI's idempotency, not a duplicate.
      const duplicates = pipeline.simulator.ledger.received().filter((r) => r.error?.code === 'DUPLICATE_ENDTOENDID').length;
      const ledger: LedgerCheck = { ...ledgerOf((p) => p.payerIspb === config.ispb), duplicates };
      const inbound = decider?.summary();
      const atBcb = bcbAnswerTimes(config.ispb, pipeline.simulator.ledger.sent(config.ispb), pipeline.simulator.ledger.payments());
      // With no answer to time (none decided), no figure rather than a 0 ms one.
      if (inbound !== undefined && atBcb.count > 0) inbound.atBcb = atBcb;
      // A payment the BCB saw twice under other identifiers is a duplicate even if downstream saw one outcome.
      summary.duplicated += duplicates;
      io.stdout.write(renderReport(summary, ledger, { elapsedSeconds: (Date.now() - started) / 1000, publishedPerSecond: published / Math.max(publishSeconds, 0.001) }));
      io.stdout.write(renderStages(stageLatencies(observations, stageTimes)));
      io.stdout.write(warmUp === undefined ? '  warm-up: none (the first payments meet cold processes)\n' : `  warm-up: ${warmUp.echoes} SPI echoes (pibr.001 → pibr.002) through every worker before the first payment, answered in ${warmUp.ms} ms\n`);
      io.stdout.write(`  audit as Parquet ${delivered.records} records in ${delivered.objects.length} objects under s3://${topology.auditBucket}/audit/ (local Firehose)\n`);
      if (inbound !== undefined && decider !== undefined) {
        io.stdout.write(renderInbound(inbound, ledgerOf((p) => p.receiverIspb === config.ispb)));
        io.stdout.write(renderInboundStages(inboundStages(decider.observations, inboundTimes)));
      }
      if (options.json) io.stdout.write(`${JSON.stringify(inbound === undefined ? summary : { ...summary, inbound: pickInbound(inbound) })}\n`);
      return { summary, ledger, auditCoverage: { requests: requested.size, verifiedResponses: verified.size }, parquetRecords: delivered.records, observations, ...(inbound === undefined ? {} : { inbound }) };
    } finally {
      clearInterval(ticker);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => io.stderr.write(`selo demo: ${(error as Error).message}\n`));
  }
}

/**
 * Sends `count` SPI echoes at the run's rate (at most 50/s) and waits until each echo's saga is
 * COMPLETED (its pibr.002 verified): every stage has then run its code and opened its
 * connections. Undefined when `count` is 0; an error when they are not answered within 60 s.
 */
async function warmUpWithEchoes(clients: LocalStack['clients'], topology: ResolvedTopology, count: number, ratePerSecond: number): Promise<{ echoes: number; ms: number } | undefined> {
  if (count === 0) return undefined;
  const start = Date.now();
  const { SagaStore } = await import('../../shared/saga/index.ts');
  const sagas = new SagaStore({ client: clients.dynamodb, tableName: topology.sagaTable.name });
  const echoes: string[] = [];
  const perSecond = Math.min(50, ratePerSecond);
  for (let i = 0; i < count; i++) {
    const wait = start + (i / perSecond) * 1000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const echo = demoEcho(topology.eventBusName, i, new Date());
    await publishAll(clients.events, [echo]);
    echoes.push(echo.sagaId);
  }
  const deadline = Date.now() + 60_000;
  let pending = echoes;
  while (pending.length > 0) {
    if (Date.now() > deadline) throw new Error(`warm-up: ${pending.length} of ${count} SPI echoes not answered within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const states = await Promise.all(pending.map(async (id) => (await sagas.get(id))?.state));
    pending = pending.filter((_, i) => states[i] !== 'COMPLETED');
  }
  return { echoes: count, ms: Date.now() - start };
}

/** PutEvents with the failed entries retried (the emulator, like EventBridge, may refuse some). */
async function publishAll(events: EventBridgeClient, batch: readonly { entry: DemoPayment['entry'] }[]): Promise<void> {
  let pending = batch.map((p) => p.entry);
  for (let attempt = 1; pending.length > 0; attempt++) {
    const result = await events.send(new PutEventsCommand({ Entries: pending }));
    const failed = (result.Entries ?? []).flatMap((entry, i) => (entry.ErrorCode === undefined ? [] : [pending[i]])).filter((e) => e !== undefined);
    if (failed.length === 0) return;
    if (attempt >= 5) throw new Error(`PutEvents kept refusing ${failed.length} payments: ${JSON.stringify(result.Entries?.find((e) => e.ErrorCode !== undefined))}`);
    pending = failed;
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

/** The `inbound` object of `--json`: the keys issue 14 names. */
function pickInbound(s: InboundSummary): Record<string, number> {
  return {
    received: s.received, accepted: s.accepted, rejected: s.rejected, settled: s.settled, spiRejected: s.spiRejected, late: s.late,
    lost: s.lost, duplicated: s.duplicated, answerP50Ms: s.answerP50Ms, answerP95Ms: s.answerP95Ms, answerP99Ms: s.answerP99Ms,
    ...(s.atBcb === undefined ? {} : { spiAnswerP50Ms: s.atBcb.p50Ms, spiAnswerP95Ms: s.atBcb.p95Ms, spiAnswerP99Ms: s.atBcb.p99Ms }),
  };
}
