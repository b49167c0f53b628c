import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, EnvReader } from '../../shared/config/index.ts';
import { SeloError } from '../../shared/errors/index.ts';
import { HsmPool, readHsmConfig } from '../../shared/hsm/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import { XmlParseError } from '../../shared/xml/index.ts';
import { XmlSigningError, hsmSigningKey, pemSigningKey, signDict, signSpi } from '../../shared/xmldsig/index.ts';
import type { HsmKeyRef, SigningKey } from '../../shared/xmldsig/index.ts';
import { useProjectSoftHsm } from '../../infra/softhsm/index.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';

const SIGN_HELP: CommandHelp = {
  usage: ['selo sign --profile spi|dict --key <PEM file | pkcs11:URI> --cert <PEM file> [--key-info-id <id>] [--max-bytes <n>] < in.xml > signed.xml'],
  description: `Signs the XML on stdin per the BCB SPI or DICT profile and writes the signed XML to stdout.
A pkcs11: URI (RFC 7512) names a key in the HSM: pkcs11:token=<label>;object=<key label>[;id=<%xx…>][;type=private].`,
  options: [
    { flag: '--profile spi|dict', description: 'the SPI layout (signature in AppHdr/Sgntr) or the DICT one (enveloped, first child)' },
    { flag: '--key <PEM file | pkcs11:URI>', description: 'the private key: a PEM file, or a key in the HSM' },
    { flag: '--cert <PEM file>', description: 'the key\'s certificate (its issuer and serial go in KeyInfo)' },
    { flag: '--key-info-id <id>', description: 'the KeyInfo Id (default: a fresh one)' },
    { flag: '--max-bytes <n>', description: 'stdin larger than this is refused without being read whole (default and maximum 4194304)' },
  ],
  environment: 'SELO_HSM_PIN (never on the command line) and SELO_HSM_MODULE for a pkcs11: key',
  exitCodes: '0 signed, 1 signing refused (e.g. already signed, not a SPI envelope), 2 unusable input or usage',
};


/** A failure that makes the command exit 2 (usage, unreadable file, malformed XML). */
export class UnusableInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnusableInputError';
  }
}

/**
 * The most `selo sign` and `selo verify` read from stdin, bytes: the XML parser's own limit
 * (shared/xml parseXml `maxBytes`), which refuses anything larger anyway.
 */
export const DEFAULT_MAX_INPUT_BYTES = 4 * 1024 * 1024;

/** stdin held more than the limit: the command exits 2 without reading the rest. */
export class InputTooLargeError extends UnusableInputError {
  readonly code = 'INPUT_TOO_LARGE';
  constructor(maxBytes: number) {
    super(`INPUT_TOO_LARGE: stdin holds more than ${maxBytes} bytes (--max-bytes); reading stopped there`);
    this.name = 'InputTooLargeError';
  }
}

/**
 * Reads a stream into a Buffer, at most `maxBytes`: past that it stops reading (the stream is
 * destroyed, so a writer on the other end of a pipe sees it closed) and throws
 * {@link InputTooLargeError}, so memory stays bounded by the limit, not by the input.
 */
export async function readStream(stream: NodeJS.ReadableStream, maxBytes = DEFAULT_MAX_INPUT_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  // Leaving the for-await early calls the iterator's return(), which destroys the stream.
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
    total += bytes.byteLength;
    if (total > maxBytes) throw new InputTooLargeError(maxBytes);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

/** Parses `--max-bytes`: a whole number of bytes from 1 to {@link DEFAULT_MAX_INPUT_BYTES}. */
export function parseMaxBytes(value: string | undefined): number {
  if (value === undefined) return DEFAULT_MAX_INPUT_BYTES;
  const bytes = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > DEFAULT_MAX_INPUT_BYTES) {
    throw new UnusableInputError(`--max-bytes must be a whole number of bytes from 1 to ${DEFAULT_MAX_INPUT_BYTES} (the XML parser's limit), got ${JSON.stringify(value)}`);
  }
  return bytes;
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

/** A key named by a `pkcs11:` URI (the RFC 7512 subset `selo sign` takes). */
export interface Pkcs11KeyUri {
  /** `token`: the token label; when absent, `SELO_HSM_TOKEN_LABEL`. */
  readonly token?: string;
  /** `object`: the key's `CKA_LABEL`. */
  readonly object?: string;
  /** `id`: the key's `CKA_ID`. */
  readonly id?: Buffer;
  /** `module-path` query attribute: the PKCS#11 library; when absent, `SELO_HSM_MODULE`. */
  readonly modulePath?: string;
}

const PATH_ATTRIBUTES = new Set(['token', 'object', 'id', 'type', 'manufacturer', 'model', 'serial', 'library-description', 'library-manufacturer', 'library-version', 'slot-description', 'slot-id', 'slot-manufacturer']);

function percentDecode(value: string, what: string): Buffer {
  // RFC 7512 §2.3: attribute values are percent-encoded octets (pchar), so CKA_ID bytes can be anything.
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) throw new UnusableInputError(`pkcs11 URI: ${what} has a malformed percent-encoding`);
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value.charAt(i), 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/**
 * Parses a `pkcs11:` URI (RFC 7512): path attributes `token`, `object`, `id`, `type` (only
 * `private`); query attribute `module-path`. A PIN in the URI (`pin-value`, `pin-source`) is
 * refused: it would sit in the shell history and the process list; the PIN comes from
 * `SELO_HSM_PIN`. Token identification attributes other than `token` are accepted and ignored.
 *
 * @throws {@link UnusableInputError} naming the offending attribute.
 */
export function parsePkcs11Uri(uri: string): Pkcs11KeyUri {
  if (!uri.startsWith('pkcs11:')) throw new UnusableInputError('pkcs11 URI must start with pkcs11:');
  const rest = uri.slice('pkcs11:'.length);
  const queryAt = rest.indexOf('?');
  const path = queryAt < 0 ? rest : rest.slice(0, queryAt);
  const query = queryAt < 0 ? '' : rest.slice(queryAt + 1);
  const result: { token?: string; object?: string; id?: Buffer; modulePath?: string } = {};
  const seen = new Set<string>();
  for (const [separator, part, allowed] of [[';', path, 'path'], ['&', query, 'query']] as const) {
    for (const attribute of part.split(separator)) {
      if (attribute === '') continue;
      const equals = attribute.indexOf('=');
      if (equals <= 0) throw new UnusableInputError(`pkcs11 URI: ${JSON.stringify(attribute)} is not name=value`);
      const name = attribute.slice(0, equals);
      const value = percentDecode(attribute.slice(equals + 1), name);
      if (name === 'pin-value' || name === 'pin-source') throw new UnusableInputError(`pkcs11 URI: ${name} is not accepted; put the PIN in SELO_HSM_PIN`);
      if (seen.has(name)) throw new UnusableInputError(`pkcs11 URI: ${name} appears twice`);
      seen.add(name);
      if (allowed === 'query') {
        if (name !== 'module-path') throw new UnusableInputError(`pkcs11 URI: query attribute ${name} is not supported (only module-path)`);
        result.modulePath = value.toString('utf8');
      } else if (!PATH_ATTRIBUTES.has(name)) {
        throw new UnusableInputError(`pkcs11 URI: unknown attribute ${name}`);
      } else if (name === 'token') {
        result.token = value.toString('utf8');
      } else if (name === 'object') {
        result.object = value.toString('utf8');
      } else if (name === 'id') {
        result.id = value;
      } else if (name === 'type' && value.toString('utf8') !== 'private') {
        throw new UnusableInputError(`pkcs11 URI: type must be private (the signing key), got ${value.toString('utf8')}`);
      }
    }
  }
  if (result.object === undefined && result.id === undefined) throw new UnusableInputError('pkcs11 URI: name the key with object=<label> or id=<%xx…>');
  return result;
}

/** A signing key and what must be released once signing is over. */
interface LoadedKey {
  readonly key: SigningKey;
  readonly close: () => Promise<void>;
}

function readCertificate(certPath: string, keyArg: string, build: (certPem: Buffer) => SigningKey): SigningKey {
  const certPem = readInputFile(certPath, 'certificate');
  try {
    return build(certPem);
  } catch (error) {
    throw new UnusableInputError(`cannot use the key ${keyArg} with the certificate ${certPath}: ${(error as Error).message}`);
  }
}

async function loadHsmKey(uri: Pkcs11KeyUri, keyArg: string, certPath: string, io: CommandIo): Promise<LoadedKey> {
  useProjectSoftHsm(process.env);
  const reader = new EnvReader(io.env);
  const config = readHsmConfig(reader);
  try {
    reader.finish();
  } catch (error) {
    throw new UnusableInputError(error instanceof ConfigError ? error.message : String(error));
  }
  const keyRef: HsmKeyRef = { ...(uri.object === undefined ? {} : { label: uri.object }), ...(uri.id === undefined ? {} : { id: uri.id }) };
  const pool = new HsmPool({
    modulePath: uri.modulePath ?? config.modulePath,
    tokenLabel: uri.token ?? config.tokenLabel,
    pin: config.pin,
    // One document: one session is enough, and no metrics timer keeps the process alive.
    sessions: 1,
    metricsIntervalMs: 0,
    acquireTimeoutMs: config.acquireTimeoutMs,
    // stdout carries the signed XML; the pool's log lines go to stderr.
    logger: createLogger({ name: 'selo.hsm', level: 'warn', destination: process.stderr }),
  });
  try {
    await pool.start();
    if (!pool.ready()) throw new UnusableInputError(`cannot open the HSM token ${JSON.stringify(uri.token ?? config.tokenLabel)} with ${uri.modulePath ?? config.modulePath}`);
    const key = readCertificate(certPath, keyArg, (certPem) => hsmSigningKey(pool, keyRef, certPem));
    return { key, close: () => pool.close() };
  } catch (error) {
    await pool.close();
    if (error instanceof SeloError && !(error instanceof XmlSigningError)) throw new UnusableInputError(`HSM: ${error.message}`);
    throw error;
  }
}

async function loadKey(keyArg: string, certPath: string, io: CommandIo): Promise<LoadedKey> {
  if (keyArg.startsWith('pkcs11:')) return loadHsmKey(parsePkcs11Uri(keyArg), keyArg, certPath, io);
  const keyPem = readInputFile(keyArg, 'key');
  const key = readCertificate(certPath, keyArg, (certPem) => pemSigningKey(keyPem, certPem));
  return { key, close: () => Promise.resolve() };
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  try {
    let values: { profile?: string; key?: string; cert?: string; 'key-info-id'?: string; 'max-bytes'?: string };
    try {
      values = parseArgs({
        args: [...args],
        options: { profile: { type: 'string' }, key: { type: 'string' }, cert: { type: 'string' }, 'key-info-id': { type: 'string' }, 'max-bytes': { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (error) {
      throw new UnusableInputError((error as Error).message);
    }
    const profile = parseProfile(values.profile);
    if (values.key === undefined || values.cert === undefined) throw new UnusableInputError('--key and --cert are required');
    const input = await readStream(io.stdin, parseMaxBytes(values['max-bytes']));
    const { key, close } = await loadKey(values.key, values.cert, io);
    try {
      const options = values['key-info-id'] === undefined ? {} : { keyInfoId: values['key-info-id'] };
      const signed = profile === 'spi' ? await signSpi(input, key, options) : await signDict(input, key, options);
      io.stdout.write(signed);
    } finally {
      await close();
    }
    return 0;
  } catch (error) {
    if (error instanceof UnusableInputError || error instanceof XmlParseError || error instanceof RangeError) {
      io.stderr.write(`selo sign: ${error.message}\n${error instanceof UnusableInputError && !(error instanceof InputTooLargeError) ? formatUsage(signCommand) : ''}`);
      return 2;
    }
    if (error instanceof XmlSigningError) {
      io.stderr.write(`selo sign: ${error.code}: ${error.message}\n`);
      return 1;
    }
    if (error instanceof SeloError && error.code.startsWith('HSM_')) {
      // A key missing from the token, a wrong PIN, an absent token: the key argument is unusable.
      io.stderr.write(`selo sign: ${error.code}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/** `selo sign`: signs XML on stdin per the SPI or DICT profile. */
export const signCommand: Command = { name: 'sign', summary: 'sign XML on stdin per the BCB SPI or DICT profile', help: SIGN_HELP, run };
