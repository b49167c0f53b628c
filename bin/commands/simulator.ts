import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ReceiverBehaviour } from '../../infra/bcb-simulator/index.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { INBOUND_FLAG_HELP, INBOUND_FLAG_OPTIONS, inboundTrafficFlags } from './inbound-flags.ts';
import { portOption } from './options.ts';
import { untilSignal } from './signals.ts';

const SIMULATOR_HELP: CommandHelp = {
  usage: [
    'selo simulator [--pki <dir>] [--port 0] [--admin-port 0] [--host 127.0.0.1] [--settlement-limit-ms 40000] [--long-poll-ms 5000]',
    '               [--receiver accept|reject:CODE|never|live] [--psp-receiver live|accept|reject:CODE|never]',
    '               [--inbound-rate N [--inbound-to ISPB] [--inbound-count N] [--inbound-payers 99999010,99999011]]',
    '               [--faults \'{"errorRate":0.1,"latencyMs":50}\'] [--no-schema-validation] [--inspection-threads N]',
    '               [--dict-claim-resolution-period-ms 604800000] [--dict-claim-completion-period-ms 2592000000]',
  ],
  description: `Runs the BCB simulator (ICOM and DICT over mTLS, admin over plain HTTP on loopback) with the
development PKI written by "selo pki init". Once ready it prints "selo: ready {json}" with its origin
(url: what SELO_BCB_URL takes), the icom, dict and admin URLs; Ctrl-C (SIGINT) or SIGTERM stops it.

Receivers: --receiver is how participants without their own behaviour answer a pacs.008 sent to
them. The PSP of the PKI (selo's ISPB) answers as --psp-receiver says: live means selo itself must
answer with its pacs.002 ACSP or RJCT, or the payment ends in AB03.

Inbound traffic: each payment is a pacs.008 that the SPI forwards to the receiver's stream; its ACSP
settles it (ACCC to it, ACSC to the payer), its RJCT or no answer in time (AB03) rejects it. The
admin endpoint controls it while running: POST /inbound-traffic {"toIspb":"…","ratePerSecond":N,"count":N}
starts or replaces a run, GET /inbound-traffic reports it, DELETE /inbound-traffic stops it.`,
  options: [
    { flag: '--pki <dir>', description: 'the development PKI (default .selo/pki); --pki-dir is an alias' },
    { flag: '--pki-dir <dir>', description: 'the same as --pki' },
    { flag: '--port <port>', description: 'the mTLS port for ICOM and DICT (default 0: any free port)' },
    { flag: '--admin-port <port>', description: 'the plain-HTTP admin port on loopback (default 0: any free port)' },
    { flag: '--host <address>', description: 'the loopback address to bind (default 127.0.0.1)' },
    { flag: '--settlement-limit-ms <ms>', description: 'a payment without an answer this long after AccptncDtTm is rejected AB03 (default 40000)' },
    { flag: '--long-poll-ms <ms>', description: 'how long a stream request waits before answering 204 (default 5000)' },
    { flag: '--receiver <mode>', description: 'accept, reject:CODE, never or live: how other participants answer (default accept)' },
    { flag: '--psp-receiver <mode>', description: 'the same for selo\'s ISPB (default live)' },
    ...INBOUND_FLAG_HELP,
    { flag: '--faults <json>', description: 'faults active from the start, e.g. \'{"errorRate":0.1,"latencyMs":50}\'' },
    { flag: '--no-schema-validation', description: 'do not validate SPI messages against the catalogue XSDs' },
    { flag: '--dict-claim-resolution-period-ms <ms>', description: 'the DICT claim resolution period (default 604800000, 7 days)' },
    { flag: '--dict-claim-completion-period-ms <ms>', description: 'the DICT claim completion period (default 2592000000, 30 days)' },
    { flag: '--inspection-threads <N>', description: 'signature inspection threads (default one less than the cores, 2 to 4)' },
  ],
};


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
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr.write(`selo simulator: ${(error as Error).message}\n${formatUsage(simulatorCommand)}`);
    return 2;
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
  help: SIMULATOR_HELP,
  async run(args, io) {
    try {
      return await run(args, io);
    } catch (error) {
      io.stderr.write(`selo simulator: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
  },
};
