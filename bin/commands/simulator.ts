import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ReceiverBehaviour } from '../../infra/bcb-simulator/index.ts';
import type { Command, CommandIo } from './command.ts';
import { INBOUND_FLAG_OPTIONS, inboundTrafficFlags } from './inbound-flags.ts';
import { portOption } from './options.ts';
import { untilSignal } from './signals.ts';

const USAGE = `usage: selo simulator [--pki <dir>] [--port 0] [--admin-port 0] [--host 127.0.0.1]
                      [--settlement-limit-ms 40000] [--long-poll-ms 5000] [--receiver accept|reject:CODE|never|live]
                      [--psp-receiver live|accept|reject:CODE|never]
                      [--inbound-rate N [--inbound-to ISPB] [--inbound-count N] [--inbound-payers 99999010,99999011]]
                      [--faults '{"errorRate":0.1,"latencyMs":50}'] [--no-schema-validation]
                      [--dict-claim-resolution-period-ms 604800000] [--dict-claim-completion-period-ms 2592000000]
                      [--inspection-threads <cores - 1, 2 to 4>]
Runs the BCB simulator (ICOM and DICT over mTLS, admin over plain HTTP on loopback) with the
development PKI written by "selo pki init" (default .selo/pki; --pki-dir is an alias). Once ready it
prints "selo: ready {json}" with its origin (url: what SELO_BCB_URL takes), the icom, dict and admin URLs; Ctrl-C (SIGINT) or SIGTERM stops it.

Receivers: --receiver is how participants without their own behaviour answer a pacs.008 sent to
them (default accept). The PSP of the PKI (selo's ISPB) answers as --psp-receiver says, default
live: selo itself must answer with its pacs.002 ACSP or RJCT, or the payment ends in AB03.

Inbound traffic: --inbound-rate N has simulated payer PSPs (--inbound-payers, default
99999010,99999011) pay the customers of --inbound-to (default selo's ISPB) N times a second
(at most 1000), --inbound-count times in all (default until stopped). Each is a pacs.008 that
the SPI forwards to the receiver's stream; its ACSP settles it (ACCC to it, ACSC to the payer),
its RJCT or no answer in time (AB03) rejects it (RJCT to both). The SPI's messages to simulated
payers are recorded in the ledger, not queued. The admin endpoint controls it while running:
POST /inbound-traffic {"toIspb":"…","ratePerSecond":N,"count":N} starts or replaces a run,
GET /inbound-traffic reports it (sent, settled, rejected, pending), DELETE /inbound-traffic stops it.
`;

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        pki: { type: 'string' },
        'pki-dir': { type: 'string' },
        port: { type: 'string' },
        'admin-port': { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        'settlement-limit-ms': { type: 'string' },
        'long-poll-ms': { type: 'string' },
        receiver: { type: 'string' },
        'psp-receiver': { type: 'string' },
        ...INBOUND_FLAG_OPTIONS,
        faults: { type: 'string' },
        'no-schema-validation': { type: 'boolean', default: false },
        'dict-claim-resolution-period-ms': { type: 'string' },
        'dict-claim-completion-period-ms': { type: 'string' },
        'inspection-threads': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr.write(`selo simulator: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  // Loaded here so that other commands do not pay for the simulator.
  const { REPO_ROOT } = await import('../../infra/softhsm/index.ts');
  const { loadSimulatorPki, startBcbSimulator } = await import('../../infra/bcb-simulator/index.ts');
  const { createLogger } = await import('../../shared/logging/index.ts');
  const { resolveSimulatorOptions, validateFaults } = await import('../../infra/bcb-simulator/index.ts');
  let options;
  try {
    const dir = resolve(values.pki ?? values['pki-dir'] ?? join(REPO_ROOT, '.selo', 'pki'));
    const receiverFlag = (name: string, value: string | undefined): ReceiverBehaviour | undefined => {
      if (value === undefined) return undefined;
      const [mode, code] = value.split(':');
      if (mode === 'reject' && code !== undefined) return { mode: 'reject', reasonCode: code };
      if (mode === 'accept' || mode === 'never' || mode === 'live') return { mode };
      throw new RangeError(`--${name} must be accept, reject:CODE, never or live, got ${JSON.stringify(value)}`);
    };
    const receiver = receiverFlag('receiver', values.receiver);
    const pspReceiver = receiverFlag('psp-receiver', values['psp-receiver']);
    const pki = loadSimulatorPki(dir, pspReceiver === undefined ? {} : { pspReceiver });
    const inboundTraffic = inboundTrafficFlags(values, pki.participants[0]?.ispb ?? '');
    const number = (name: string, value: string | undefined): number | undefined => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
      return n;
    };
    const settlementLimitMs = number('settlement-limit-ms', values['settlement-limit-ms']);
    const longPollMs = number('long-poll-ms', values['long-poll-ms']);
    const dictClaimResolutionPeriodMs = number('dict-claim-resolution-period-ms', values['dict-claim-resolution-period-ms']);
    const dictClaimCompletionPeriodMs = number('dict-claim-completion-period-ms', values['dict-claim-completion-period-ms']);
    const inspectionThreads = number('inspection-threads', values['inspection-threads']);
    options = {
      ...pki,
      host: values.host,
      port: portOption(values.port, 'port', 0),
      adminPort: portOption(values['admin-port'], 'admin-port', 0),
      schemaValidation: !values['no-schema-validation'],
      logger: createLogger({ name: 'bcb-simulator', level: 'info' }),
      ...(receiver === undefined ? {} : { defaultReceiver: receiver }),
      ...(settlementLimitMs === undefined ? {} : { settlementLimitMs }),
      ...(longPollMs === undefined ? {} : { longPollMs }),
      ...(dictClaimResolutionPeriodMs === undefined ? {} : { dictClaimResolutionPeriodMs }),
      ...(dictClaimCompletionPeriodMs === undefined ? {} : { dictClaimCompletionPeriodMs }),
      ...(inspectionThreads === undefined ? {} : { inspectionThreads }),
      ...(inboundTraffic === undefined ? {} : { inboundTraffic }),
      ...(values.faults === undefined ? {} : { faults: validateFaults(JSON.parse(values.faults) as object) }),
    };
    resolveSimulatorOptions(options); // a bad option is a usage error (2), before anything listens
  } catch (error) {
    io.stderr.write(`selo simulator: ${(error as Error).message}\n`);
    return 2;
  }
  const signal = untilSignal();
  const simulator = await startBcbSimulator(options);
  // `url` is the origin SELO_BCB_URL wants; icom and dict name the APIs' paths on it.
  io.stdout.write(`selo: ready ${JSON.stringify({ url: simulator.url, icom: simulator.icomUrl, dict: simulator.dictUrl, admin: simulator.adminUrl })}\n`);
  const received = await signal;
  io.stderr.write(`selo simulator: ${received} received, stopping\n`);
  const inbound = simulator.inbound.status();
  if (inbound.settings !== undefined) {
    io.stderr.write(`selo simulator: inbound traffic to ${inbound.settings.toIspb}: sent ${inbound.sent}, settled ${inbound.settled}, rejected ${inbound.rejected}, pending ${inbound.pending}\n`);
  }
  await simulator.close();
  return 0;
}

/** `selo simulator`: the BCB simulator standalone (issue 5 item 7). */
export const simulatorCommand: Command = {
  name: 'simulator',
  summary: 'run the BCB simulator (ICOM + DICT over mTLS, admin endpoint); Ctrl-C stops it',
  async run(args, io) {
    try {
      return await run(args, io);
    } catch (error) {
      io.stderr.write(`selo simulator: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
  },
};
