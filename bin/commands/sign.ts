import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { XmlParseError } from '../../shared/xml/index.ts';
import { XmlSigningError, pemSigningKey, signDict, signSpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import type { Command, CommandIo } from './command.ts';

const USAGE = `usage: selo sign --profile spi|dict --key <PEM file | pkcs11:URI> --cert <PEM file> [--key-info-id <id>] < in.xml > signed.xml
Signs the XML on stdin per the BCB SPI or DICT profile and writes the signed XML to stdout.
Exit codes: 0 signed, 1 signing refused (e.g. already signed, not a SPI envelope), 2 unusable input or usage.`;

/** A failure that makes the command exit 2 (usage, unreadable file, malformed XML). */
export class UnusableInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnusableInputError';
  }
}

/** Reads a whole stream into a Buffer. */
export async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Reads a file named on the command line, turning failures into {@link UnusableInputError}. */
export function readInputFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UnusableInputError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

/** Parses `--profile`, refusing anything but `spi` and `dict`. */
export function parseProfile(value: string | undefined): 'spi' | 'dict' {
  if (value !== 'spi' && value !== 'dict') throw new UnusableInputError(`--profile must be spi or dict, got ${JSON.stringify(value ?? null)}`);
  return value;
}

function loadKey(keyArg: string, certPath: string): SigningKey {
  if (keyArg.startsWith('pkcs11:')) {
    // The HSM pool (shared/hsm) is wired into the sign worker; the CLI takes PEM keys for now.
    throw new UnusableInputError('pkcs11: keys are not supported by `selo sign` yet; use a PEM key file');
  }
  const keyPem = readInputFile(keyArg, 'key');
  const certPem = readInputFile(certPath, 'certificate');
  try {
    return pemSigningKey(keyPem, certPem);
  } catch (error) {
    throw new UnusableInputError(`cannot use the key ${keyArg} with the certificate ${certPath}: ${(error as Error).message}`);
  }
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  try {
    let values: { profile?: string; key?: string; cert?: string; 'key-info-id'?: string; help?: boolean };
    try {
      values = parseArgs({
        args: [...args],
        options: { profile: { type: 'string' }, key: { type: 'string' }, cert: { type: 'string' }, 'key-info-id': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (error) {
      throw new UnusableInputError((error as Error).message);
    }
    if (values.help === true) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const profile = parseProfile(values.profile);
    if (values.key === undefined || values.cert === undefined) throw new UnusableInputError('--key and --cert are required');
    const key = loadKey(values.key, values.cert);
    const input = await readStream(io.stdin);
    const options = values['key-info-id'] === undefined ? {} : { keyInfoId: values['key-info-id'] };
    const signed = profile === 'spi' ? await signSpi(input, key, options) : await signDict(input, key, options);
    io.stdout.write(signed);
    return 0;
  } catch (error) {
    if (error instanceof UnusableInputError || error instanceof XmlParseError || error instanceof RangeError) {
      io.stderr.write(`selo sign: ${error.message}\n${error instanceof UnusableInputError ? `${USAGE}\n` : ''}`);
      return 2;
    }
    if (error instanceof XmlSigningError) {
      io.stderr.write(`selo sign: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** `selo sign`: signs XML on stdin per the SPI or DICT profile. */
export const signCommand: Command = { name: 'sign', summary: 'sign XML on stdin per the BCB SPI or DICT profile', run };
