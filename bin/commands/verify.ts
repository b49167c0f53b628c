import { parseArgs } from 'node:util';
import { XmlParseError } from '../../shared/xml/index.ts';
import { TrustStore, XmlSignatureError, formatRfc2253, verifyDict, verifySpi } from '../../shared/xmldsig/index.ts';
import type { TrustedCertificate } from '../../shared/xmldsig/index.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { InputTooLargeError, UnusableInputError, parseMaxBytes, parseProfile, readInputFile, readStream } from './sign.ts';

const VERIFY_HELP: CommandHelp = {
  usage: ['selo verify --profile spi|dict --trust <PEM file> [--trust <ISPB>=<PEM file> …] [--max-bytes <n>] < signed.xml'],
  description: `Verifies the signature of the XML on stdin against the trusted certificates, found by the
KeyInfo's issuer and serial (embedded certificates are never trusted).`,
  options: [
    { flag: '--profile spi|dict', description: 'the SPI layout or the DICT one' },
    { flag: '--trust [<ISPB>=]<PEM file>', description: 'a trusted certificate, repeatable; given as ISPB=file it may only sign SPI messages from that ISPB' },
    { flag: '--max-bytes <n>', description: 'stdin larger than this is refused without being read whole (default and maximum 4194304)' },
  ],
  exitCodes: '0 valid, 1 invalid (the reason on stderr), 2 unusable input (malformed XML, unreadable file) or usage',
};


function buildTrustStore(entries: readonly string[]): TrustStore {
  const store = new TrustStore();
  for (const entry of entries) {
    const bound = /^([0-9A-Z]{8})=(.+)$/.exec(entry);
    const path = bound?.[2] ?? entry;
    const pem = readInputFile(path, 'trusted certificate');
    try {
      store.add(pem, bound?.[1] === undefined ? {} : { ispb: bound[1] });
    } catch (error) {
      throw new UnusableInputError(`cannot read the certificate in ${path}: ${(error as Error).message}`);
    }
  }
  return store;
}

function describeSigner(signer: TrustedCertificate): string {
  return `${formatRfc2253(signer.subject)} (serial ${signer.serial.toString(10)})`;
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  try {
    let values: { profile?: string; trust?: string[]; 'max-bytes'?: string };
    try {
      values = parseArgs({
        args: [...args],
        options: { profile: { type: 'string' }, trust: { type: 'string', multiple: true }, 'max-bytes': { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (error) {
      throw new UnusableInputError((error as Error).message);
    }
    const profile = parseProfile(values.profile);
    if (values.trust === undefined || values.trust.length === 0) throw new UnusableInputError('at least one --trust is required');
    const trustStore = buildTrustStore(values.trust);
    const maxBytes = parseMaxBytes(values['max-bytes']);
    const input = await readStream(io.stdin, maxBytes);
    if (profile === 'spi') {
      const verified = verifySpi(input, { trustStore });
      io.stdout.write(`valid: SPI signature from ISPB ${verified.fromIspb} by ${describeSigner(verified.signer)}\n`);
    } else {
      const verified = verifyDict(input, { trustStore });
      io.stdout.write(`valid: DICT signature on <${verified.root.name}> by ${describeSigner(verified.signer)}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof XmlSignatureError) {
      io.stderr.write(`invalid: ${error.code}: ${error.message}\n`);
      return 1;
    }
    if (error instanceof UnusableInputError || error instanceof XmlParseError) {
      const code = error instanceof XmlParseError ? `${error.code}: ` : '';
      io.stderr.write(`selo verify: unusable input: ${code}${error.message}\n${error instanceof UnusableInputError && !(error instanceof InputTooLargeError) ? formatUsage(verifyCommand) : ''}`);
      return 2;
    }
    throw error;
  }
}

/** `selo verify`: verifies XML on stdin per the SPI or DICT profile. */
export const verifyCommand: Command = { name: 'verify', summary: 'verify a signed SPI or DICT message on stdin (exit 0 valid, 1 invalid, 2 unusable)', help: VERIFY_HELP, run };
