import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EnvReader } from '../../shared/config/index.ts';
import { initToken, readHsmConfig } from '../../shared/hsm/index.ts';
import { initDevPki, useProjectSoftHsm } from '../../infra/softhsm/index.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';

const INIT_HELP: CommandHelp = {
  usage: ['selo pki init --dir <dir> [--force] [--psp-ispb 99999004] [--bcb-ispb 00038166]'],
  description: `Writes the development PKI (test CA, PSP signing key inside the HSM token, PSP mTLS, BCB TLS
server and BCB signing keys and certificates). Creates the development token first when SELO_ENV is local.`,
  options: [
    { flag: '--dir <dir>', description: 'where to write it (required)' },
    { flag: '--force', description: 'write it again over what is there' },
    { flag: '--psp-ispb <ISPB>', description: 'selo\'s ISPB in the certificates (default SELO_ISPB, else 99999004)' },
    { flag: '--bcb-ispb <ISPB>', description: 'the BCB\'s ISPB (default 00038166)' },
  ],
  environment: 'SELO_HSM_* (see "selo hsm --help"), SELO_ISPB',
};


async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'init') {
    io.stderr.write(formatUsage(pkiCommand));
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: { dir: { type: 'string' }, force: { type: 'boolean', default: false }, 'psp-ispb': { type: 'string' }, 'bcb-ispb': { type: 'string' } },
    strict: true,
  });
  if (values.dir === undefined) {
    io.stderr.write(`selo pki: --dir is required\n${formatUsage(pkiCommand, 'init')}`);
    return 2;
  }
  useProjectSoftHsm(process.env);
  const reader = new EnvReader(io.env);
  const hsm = readHsmConfig(reader);
  const ispb = reader.string('SELO_ISPB', { default: '99999004' });
  reader.finish();
  if (hsm.soPin !== undefined) initToken({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, soPin: hsm.soPin });
  const result = await initDevPki({
    dir: resolve(values.dir), modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, signingKeyLabel: hsm.signingKeyLabel,
    pspIspb: values['psp-ispb'] ?? ispb, force: values.force,
    ...(values['bcb-ispb'] === undefined ? {} : { bcbIspb: values['bcb-ispb'] }),
  });
  io.stdout.write(`${JSON.stringify({ files: result.files, ...result.manifest }, null, 2)}\n`);
  return 0;
}

/** `selo pki init --dir <dir>`: the development PKI (issue 2 item 8). */
export const pkiCommand: Command = {
  name: 'pki',
  summary: 'development PKI: pki init --dir <dir>',
  help: { usage: [], description: 'The development PKI: a test CA and every key and certificate the local stack needs.', options: [] },
  subcommands: [{ name: 'init', summary: 'write the development PKI', help: INIT_HELP }],
  async run(args, io) {
    try {
      return await run(args, io);
    } catch (error) {
      io.stderr.write(`selo pki: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
  },
};
