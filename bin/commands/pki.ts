import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EnvReader } from '../../shared/config/index.ts';
import { initToken, readHsmConfig } from '../../shared/hsm/index.ts';
import { crlDistributionPoints, parseCertificate, parseCertificateBundle, refreshCrlFile } from '../../shared/pki/index.ts';
import type { CrlReason } from '../../shared/pki/index.ts';
import { initDevPki, issueDevCrl, useProjectSoftHsm } from '../../infra/softhsm/index.ts';
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

const REVOKE_HELP: CommandHelp = {
  usage: ['selo pki revoke --dir <dir> --cert <file> [--reason keyCompromise]'],
  description: `Revokes a certificate of the development CA: re-issues <dir>/ca.crl with its serial added (the
file is replaced atomically; workers with SELO_BCB_CRL_FILES pointing at it reload it within a second).`,
  options: [
    { flag: '--dir <dir>', description: 'the development PKI (required)' },
    { flag: '--cert <file>', description: 'PEM certificate to revoke, issued by that CA (required)' },
    { flag: '--reason <reason>', description: 'CRL reason code (keyCompromise, superseded, cessationOfOperation, ...); none by default' },
  ],
};

const CRL_HELP: CommandHelp = {
  usage: ['selo pki crl --dir <dir> [--days 30]'],
  description: 'Re-issues the development CA\'s CRL (<dir>/ca.crl) with the same entries and a new nextUpdate.',
  options: [
    { flag: '--dir <dir>', description: 'the development PKI (required)' },
    { flag: '--days <n>', description: 'days until nextUpdate (default 30)' },
  ],
};

const CRL_URLS_HELP: CommandHelp = {
  usage: ['selo pki crl-urls --cert <file>'],
  description: `Prints the CRL distribution points of each certificate in a PEM file (the BCB's certificates and
the ICP-Brasil CAs above them), one URL a line: where "selo pki fetch-crl" downloads from.`,
  options: [{ flag: '--cert <file>', description: 'PEM file with one or more certificates (required)' }],
};

const FETCH_CRL_HELP: CommandHelp = {
  usage: ['selo pki fetch-crl --url <url> --out <file> --issuers <file>'],
  description: `Downloads a CRL from its distribution point and replaces the cached file when it is signed by one of
the CA certificates, not expired, and not older than the cached one; otherwise the file is left as it
was. Run it on a schedule (cron, a sidecar) for every file in SELO_BCB_CRL_FILES.`,
  options: [
    { flag: '--url <url>', description: 'the distribution point (http or https; required)' },
    { flag: '--out <file>', description: 'the cached CRL file to replace (required)' },
    { flag: '--issuers <file>', description: 'PEM file with the CA certificates that may sign it (required)' },
  ],
  exitCodes: '0 replaced or unchanged, 1 not fetched or refused (the file is untouched), 2 usage',
};

async function revoke(rest: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { dir: { type: 'string' }, cert: { type: 'string' }, reason: { type: 'string' } }, strict: true });
  if (values.dir === undefined || values.cert === undefined) {
    io.stderr.write(`selo pki: --dir and --cert are required\n${formatUsage(pkiCommand, 'revoke')}`);
    return 2;
  }
  const reason = values.reason as Exclude<CrlReason, 'unspecified'> | undefined;
  const result = await issueDevCrl({ dir: resolve(values.dir), revoke: [{ certificatePem: readFileSync(values.cert, 'utf8'), ...(reason === undefined ? {} : { reason }) }] });
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

async function reissue(rest: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { dir: { type: 'string' }, days: { type: 'string', default: '30' } }, strict: true });
  const days = Number(values.days);
  if (values.dir === undefined || !Number.isInteger(days) || days < 1) {
    io.stderr.write(`selo pki: --dir is required and --days must be a positive integer\n${formatUsage(pkiCommand, 'crl')}`);
    return 2;
  }
  const result = await issueDevCrl({ dir: resolve(values.dir), nextUpdate: new Date(Date.now() + days * 86_400_000) });
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

function crlUrls(rest: readonly string[], io: CommandIo): number {
  const { values } = parseArgs({ args: [...rest], options: { cert: { type: 'string' } }, strict: true });
  if (values.cert === undefined) {
    io.stderr.write(`selo pki: --cert is required\n${formatUsage(pkiCommand, 'crl-urls')}`);
    return 2;
  }
  const certificates = parseCertificateBundle(readFileSync(values.cert, 'utf8'));
  if (certificates.length === 0) certificates.push(parseCertificate(readFileSync(values.cert)));
  for (const url of new Set(certificates.flatMap((c) => crlDistributionPoints(c)))) io.stdout.write(`${url}\n`);
  return 0;
}

async function fetchCrl(rest: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { url: { type: 'string' }, out: { type: 'string' }, issuers: { type: 'string' } }, strict: true });
  if (values.url === undefined || values.out === undefined || values.issuers === undefined) {
    io.stderr.write(`selo pki: --url, --out and --issuers are required\n${formatUsage(pkiCommand, 'fetch-crl')}`);
    return 2;
  }
  const result = await refreshCrlFile({ url: values.url, out: values.out, issuers: parseCertificateBundle(readFileSync(values.issuers, 'utf8')) });
  io.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'revoke') return revoke(rest, io);
  if (sub === 'crl') return reissue(rest, io);
  if (sub === 'crl-urls') return crlUrls(rest, io);
  if (sub === 'fetch-crl') return fetchCrl(rest, io);
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

/**
 * `selo pki init --dir <dir>`: the development PKI (issue 2 item 8); `revoke` and `crl` maintain
 * its CA's CRL, `crl-urls` and `fetch-crl` keep cached CRLs fresh (issue 16 item 7).
 */
export const pkiCommand: Command = {
  name: 'pki',
  summary: 'development PKI and CRLs: pki init|revoke|crl|crl-urls|fetch-crl',
  help: { usage: [], description: 'The development PKI: a test CA and every key and certificate the local stack needs; CRLs.', options: [] },
  subcommands: [
    { name: 'init', summary: 'write the development PKI', help: INIT_HELP },
    { name: 'revoke', summary: 'revoke a certificate of the development CA (ca.crl)', help: REVOKE_HELP },
    { name: 'crl', summary: 're-issue the development CA\'s CRL', help: CRL_HELP },
    { name: 'crl-urls', summary: 'print the CRL distribution points of certificates', help: CRL_URLS_HELP },
    { name: 'fetch-crl', summary: 'download a CRL and replace the cached file when it is valid and newer', help: FETCH_CRL_HELP },
  ],
  async run(args, io) {
    try {
      return await run(args, io);
    } catch (error) {
      io.stderr.write(`selo pki: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
  },
};
