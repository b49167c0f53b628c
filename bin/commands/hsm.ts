import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EnvReader } from '../../shared/config/index.ts';
import { SeloError } from '../../shared/errors/index.ts';
import { initToken, readHsmConfig, TokenSession } from '../../shared/hsm/index.ts';
import type { HsmConfig } from '../../shared/hsm/index.ts';
import { buildCertificationRequest, parseDistinguishedName } from '../../shared/pki/index.ts';
import { useProjectSoftHsm } from '../../infra/softhsm/index.ts';
import { formatHsmBench, runHsmBench } from '../../scripts/bench-hsm.ts';
import type { Command, CommandIo, Subcommand } from './command.ts';
import { formatUsage } from './help.ts';

const HSM_ENVIRONMENT = `SELO_HSM_MODULE, SELO_HSM_TOKEN_LABEL, SELO_HSM_PIN, SELO_HSM_SO_PIN, SELO_HSM_SESSIONS (PINs are
read from the environment only: a command line can be read by every user of the machine in the process list);
SoftHSM uses .selo/softhsm/softhsm2.conf unless SOFTHSM2_CONF is set`;

const HSM_SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'init',
    summary: 'create the development token (idempotent)',
    help: { usage: ['selo hsm init [--label L]'], description: 'Creates the development token, or says it already exists. PINs from SELO_HSM_PIN and SELO_HSM_SO_PIN.', options: [{ flag: '--label <L>', description: 'the token label (default SELO_HSM_TOKEN_LABEL)' }], environment: HSM_ENVIRONMENT },
  },
  {
    name: 'keygen',
    summary: 'an RSA key pair inside the token',
    help: {
      usage: ['selo hsm keygen --label L [--bits 2048|3072|4096]'],
      description: 'Generates an RSA key pair inside the token: sensitive, not extractable.',
      options: [{ flag: '--label <L>', description: 'the key label (required)' }, { flag: '--bits 2048|3072|4096', description: 'the modulus length (default 2048)' }],
      environment: HSM_ENVIRONMENT,
    },
  },
  {
    name: 'list',
    summary: 'keys and their security attributes',
    help: { usage: ['selo hsm list [--json]'], description: 'Lists the token\'s keys with their security attributes (sensitive, extractable, …).', options: [{ flag: '--json', description: 'print them as JSON' }], environment: HSM_ENVIRONMENT },
  },
  {
    name: 'csr',
    summary: 'a PKCS#10 request signed inside the HSM',
    help: {
      usage: ['selo hsm csr --label L --subject "CN=…,O=…,C=BR" [--out file]'],
      description: 'Writes a PKCS#10 certification request for a key in the token, signed inside the HSM.',
      options: [
        { flag: '--label <L>', description: 'the key (required)' },
        { flag: '--subject <DN>', description: 'the subject, RFC 4514 style (required)' },
        { flag: '--out <file>', description: 'write the PEM there (default stdout)' },
      ],
      environment: HSM_ENVIRONMENT,
    },
  },
  {
    name: 'bench',
    summary: 'signatures per second through the HSM pool',
    help: {
      usage: ['selo hsm bench [--json] [--key L] [--sessions N] [--duration-ms MS] [--in-flight 1,2,4,8,16]'],
      description: 'Measures RSA signatures per second through the HSM pool at several numbers of signatures in flight.',
      options: [
        { flag: '--json', description: 'print the result as JSON' },
        { flag: '--key <L>', description: 'the key (default selo-bench, generated when missing)' },
        { flag: '--sessions <N>', description: 'pool sessions (default SELO_HSM_SESSIONS)' },
        { flag: '--duration-ms <MS>', description: 'time per step' },
        { flag: '--in-flight <list>', description: 'signatures in flight per step, comma separated' },
      ],
      environment: HSM_ENVIRONMENT,
    },
  },
];


function config(io: CommandIo): HsmConfig {
  useProjectSoftHsm(process.env);
  const reader = new EnvReader(io.env);
  const hsm = readHsmConfig(reader);
  reader.finish();
  return hsm;
}

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

function bits(value: string | undefined): 2048 | 3072 | 4096 {
  const parsed = Number(value ?? '2048');
  if (parsed !== 2048 && parsed !== 3072 && parsed !== 4096) throw new Error(`--bits must be 2048, 3072 or 4096, got ${JSON.stringify(value)}`);
  return parsed;
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  const pinFlag = rest.find((a) => /^--(so-)?pin(=|$)/.test(a));
  if (pinFlag !== undefined) {
    // Refused before anything is parsed or echoed: the value itself is never repeated.
    io.stderr.write(`selo hsm: ${pinFlag.split('=')[0] ?? ''} is not accepted: PINs on a command line can be read by every user of the machine in the process list; set SELO_HSM_PIN and SELO_HSM_SO_PIN instead\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      label: { type: 'string' }, bits: { type: 'string' },
      json: { type: 'boolean', default: false }, subject: { type: 'string' }, out: { type: 'string' }, key: { type: 'string' },
      sessions: { type: 'string' }, 'duration-ms': { type: 'string' }, 'in-flight': { type: 'string' },
    },
    strict: true,
  });
  switch (sub) {
    case 'init': {
      const hsm = config(io);
      const soPin = hsm.soPin;
      if (soPin === undefined) throw new Error('the security officer PIN is needed: set SELO_HSM_SO_PIN');
      const tokenLabel = values.label ?? hsm.tokenLabel;
      const result = initToken({ modulePath: hsm.modulePath, tokenLabel, pin: hsm.pin, soPin });
      write(io.stdout, result.created ? `token ${JSON.stringify(tokenLabel)} created (serial ${result.serialNumber}); SOFTHSM2_CONF=${process.env['SOFTHSM2_CONF'] ?? ''}` : `token ${JSON.stringify(tokenLabel)} already exists (serial ${result.serialNumber})`);
      return 0;
    }
    case 'keygen': {
      if (values.label === undefined) throw new Error('--label is required');
      const hsm = config(io);
      const session = TokenSession.open(hsm);
      try {
        const key = session.generateRsaKeyPair({ label: values.label, bits: bits(values.bits) });
        write(io.stdout, `generated RSA-${bits(values.bits)} key ${JSON.stringify(key.label)} id ${key.id.toString('hex')} on token ${JSON.stringify(hsm.tokenLabel)}`);
      } finally {
        session.close();
      }
      return 0;
    }
    case 'list': {
      const hsm = config(io);
      const session = TokenSession.open(hsm);
      try {
        const keys = session.listKeys();
        if (values.json) {
          write(io.stdout, JSON.stringify(keys, null, 2));
        } else {
          for (const key of keys) {
            const flags = Object.entries(key.attributes).map(([name, on]) => `${name}=${on ? 'yes' : 'no'}`).join(' ');
            write(io.stdout, `${key.class.padEnd(7)} ${key.keyType}-${key.bits ?? '?'} ${JSON.stringify(key.label)} id=${key.id} ${flags}`);
          }
          if (keys.length === 0) write(io.stdout, `no keys on token ${JSON.stringify(hsm.tokenLabel)}`);
        }
      } finally {
        session.close();
      }
      return 0;
    }
    case 'csr': {
      if (values.label === undefined || values.subject === undefined) throw new Error('--label and --subject are required');
      const hsm = config(io);
      const subject = parseDistinguishedName(values.subject);
      const session = TokenSession.open(hsm);
      try {
        const label = values.label;
        const csr = await buildCertificationRequest({ subject, publicKey: session.publicKey({ label }), signer: (tbs) => session.sign({ label }, tbs), keyUsage: ['digitalSignature', 'nonRepudiation'] });
        if (values.out === undefined) write(io.stdout, csr.pem);
        else writeFileSync(values.out, csr.pem);
      } finally {
        session.close();
      }
      return 0;
    }
    case 'bench': {
      const hsm = config(io);
      const keyLabel = values.key ?? 'selo-bench';
      const session = TokenSession.open(hsm);
      try {
        if (!session.listKeys().some((key) => key.class === 'private' && key.label === keyLabel)) session.generateRsaKeyPair({ label: keyLabel, bits: 2048 });
      } finally {
        session.close();
      }
      const inFlight = values['in-flight']?.split(',').map(Number);
      const result = await runHsmBench({
        modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, keyLabel,
        sessions: values.sessions === undefined ? hsm.sessions : Number(values.sessions),
        ...(inFlight === undefined ? {} : { inFlight }),
        ...(values['duration-ms'] === undefined ? {} : { durationMs: Number(values['duration-ms']) }),
      });
      write(io.stdout, values.json ? JSON.stringify(result, null, 2) : formatHsmBench(result));
      return 0;
    }
    default:
      io.stderr.write(formatUsage(hsmCommand));
      return 2;
  }
}

/** `selo hsm init|keygen|list|csr|bench`: HSM key tooling (issue 3 item 4). */
export const hsmCommand: Command = {
  name: 'hsm',
  summary: 'HSM token and key tooling: init, keygen, list, csr, bench',
  help: { usage: [], description: 'The HSM token and its keys, through PKCS#11 (SoftHSM2 locally, CloudHSM in AWS).', options: [], environment: HSM_ENVIRONMENT },
  subcommands: HSM_SUBCOMMANDS,
  async run(args, io) {
    try {
      return await run(args, io);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      write(io.stderr, `selo hsm: ${message}`);
      return error instanceof SeloError || error instanceof Error ? 1 : 2;
    }
  },
};
