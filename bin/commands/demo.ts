import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';

const DEMO_HELP: CommandHelp = {
  usage: [
    'selo demo [--payments 500] [--rate 25] [--mix accept=85,reject=7,late=5,never=3]',
    '          [--settlement-limit-ms 5000] [--late-ms 1500] [--faults \'<json>\'] [--timeout-s N]',
    '          [--worker-processes 1] [--inbound 200] [--inbound-rate 10] [--inbound-mix reject=10,never=5]',
    '          [--warm-up 20] [--pki-dir .selo/pki] [--json]',
  ],
  description: `Runs selo end to end on this machine: the local AWS stand-ins, the BCB simulator and every worker;
publishes PaymentRequested events as core banking would, with the simulated receivers playing the
outcome mix (accept: settles; reject: RJCT AM04, compensated; late: answers after --late-ms, settles;
never: AB03 at the settlement limit, compensated); subscribes as a downstream system would; shows
progress; ends with a report. At the same time, simulated payer PSPs pay our customers and the demo
plays core banking's decision maker.`,
  options: [
    { flag: '--payments <N>', description: 'PaymentRequested events to publish (default 500)' },
    { flag: '--rate <R>', description: 'per second (default 25)' },
    { flag: '--mix <list>', description: 'the receivers\' outcome mix (default accept=85,reject=7,late=5,never=3)' },
    { flag: '--settlement-limit-ms <ms>', description: 'the SPI\'s limit in the simulator (default 5000)' },
    { flag: '--late-ms <ms>', description: 'how late a late receiver answers, below the limit (default 1500)' },
    { flag: '--faults <json>', description: 'simulator faults, e.g. \'{"streamDuplicateRate":0.2}\' or \'{"invalidSignatureRate":0.05}\'' },
    { flag: '--timeout-s <s>', description: 'give up after this long (default: payments/rate + the limit + 120 s)' },
    { flag: '--worker-processes <0-5>', description: '0: workers in the demo\'s process; 1 (default): one "selo worker all" child; 2: send side and receive side apart' },
    { flag: '--inbound <N>', description: 'payments to our customers (default 200; 0 turns it off)' },
    { flag: '--inbound-rate <R>', description: 'per second (default 10)' },
    { flag: '--inbound-mix <list>', description: 'the share core banking rejects (AC03) and never decides (AB03); the rest it accepts' },
    { flag: '--warm-up <N>', description: 'SPI echoes (pibr.001 → pibr.002) sent through every worker and awaited before the first payment, so that the figures are those of warm processes (default 20; 0: none, the first payments meet cold processes)' },
    { flag: '--pki-dir <dir>', description: 'the development PKI (default .selo/pki)' },
    { flag: '--json', description: 'also print the summary as one JSON object on the last line' },
  ],
  exitCodes: '0 no payment lost or duplicated, 1 otherwise, 2 bad usage',
};


function positive(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0 || parsed > max) throw new RangeError(`--${name} must be a number above 0 and at most ${max}, got ${JSON.stringify(value)}`);
  return parsed;
}

function workerProcessesOf(value: string | undefined): number {
  if (value === undefined) return 1;
  if (!/^\d+$/.test(value) || Number(value) > 5) throw new RangeError(`--worker-processes must be 0 to 5, got ${JSON.stringify(value)}`);
  return Number(value);
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  let options;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        payments: { type: 'string' },
        rate: { type: 'string' },
        mix: { type: 'string' },
        'settlement-limit-ms': { type: 'string' },
        'late-ms': { type: 'string' },
        'timeout-s': { type: 'string' },
        faults: { type: 'string' },
        'worker-processes': { type: 'string' },
        inbound: { type: 'string' },
        'inbound-rate': { type: 'string' },
        'inbound-mix': { type: 'string' },
        'pki-dir': { type: 'string' },
        'warm-up': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    }));
    const { DEFAULT_MIX, parseMix } = await import('../demo/demo-plan.ts');
    const { DEFAULT_DECISION_MIX, parseDecisionMix } = await import('../demo/inbound-decider.ts');
    const payments = positive(values.payments, 'payments', 500, 1_000_000);
    if (!Number.isInteger(payments)) throw new RangeError(`--payments must be a whole number, got ${JSON.stringify(values.payments)}`);
    const ratePerSecond = positive(values.rate, 'rate', 25, 100_000);
    const settlementLimitMs = positive(values['settlement-limit-ms'], 'settlement-limit-ms', 5_000, 600_000);
    const lateDelayMs = positive(values['late-ms'], 'late-ms', Math.min(1_500, settlementLimitMs / 2), 600_000);
    if (lateDelayMs >= settlementLimitMs) throw new RangeError(`--late-ms (${lateDelayMs}) must be below --settlement-limit-ms (${settlementLimitMs}): a later answer is an AB03`);
    const defaultTimeout = payments / ratePerSecond + settlementLimitMs / 1000 + 120;
    const timeoutMs = positive(values['timeout-s'], 'timeout-s', defaultTimeout, 86_400) * 1000;
    const { defaultPkiDir } = await import('../../infra/local/local-hsm.ts');
    const { validateFaults } = await import('../../infra/bcb-simulator/index.ts');
    let faults;
    if (values.faults !== undefined) {
      try {
        faults = validateFaults(JSON.parse(values.faults) as never);
      } catch (error) {
        throw new RangeError(`--faults: ${(error as Error).message}`);
      }
    }
    options = {
      payments,
      ratePerSecond,
      mix: values.mix === undefined ? DEFAULT_MIX : parseMix(values.mix),
      settlementLimitMs,
      lateDelayMs,
      timeoutMs,
      json: values.json,
      pkiDir: values['pki-dir'] === undefined ? await defaultPkiDir() : resolve(values['pki-dir']),
      interactive: (io.stderr as NodeJS.WriteStream).isTTY === true,
      ...(faults === undefined ? {} : { faults }),
      workerProcesses: workerProcessesOf(values['worker-processes']),
      inboundPayments: values.inbound === '0' ? 0 : Math.round(positive(values.inbound, 'inbound', 200, 1_000_000)),
      inboundRatePerSecond: positive(values['inbound-rate'], 'inbound-rate', 10, 10_000),
      inboundMix: values['inbound-mix'] === undefined ? DEFAULT_DECISION_MIX : parseDecisionMix(values['inbound-mix']),
      warmUpEchoes: values['warm-up'] === '0' ? 0 : Math.round(positive(values['warm-up'], 'warm-up', 20, 10_000)),
    };
  } catch (error) {
    io.stderr.write(`selo demo: ${(error as Error).message}\n${formatUsage(demoCommand)}`);
    return 2;
  }
  const { runDemo } = await import('../demo/run-demo.ts');
  const { summary, inbound } = await runDemo(options, io);
  return summary.lost === 0 && summary.duplicated === 0 && (inbound === undefined || (inbound.lost === 0 && inbound.duplicated === 0)) ? 0 : 1;
}

/** `selo demo`: the whole pipeline end to end, with a report. */
export const demoCommand: Command = { name: 'demo', summary: 'run selo end to end (stand-ins, BCB simulator, all workers) and report outcomes, latency and throughput', help: DEMO_HELP, run };
