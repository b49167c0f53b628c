import { pino } from 'pino';
import type { Logger, DestinationStream, Level } from 'pino';

/**
 * Paths whose values never reach a log line: HSM PINs, private keys, passwords, tokens, and the
 * personal data a Pix message carries (CPF/CNPJ, names). Configured once here (HOUSE_STYLE 14).
 * A top-level `name` is the logger's own (the component); names of people sit inside objects.
 */
export const REDACTED_PATHS: readonly string[] = [
  'pin', '*.pin', 'soPin', '*.soPin', 'userPin', '*.userPin',
  'password', '*.password', 'secret', '*.secret', 'secretAccessKey', '*.secretAccessKey',
  'privateKey', '*.privateKey', 'key', '*.key', 'passphrase', '*.passphrase',
  'authorization', '*.authorization', 'headers.authorization', 'token', '*.token',
  'cpf', '*.cpf', 'cnpj', '*.cnpj', 'taxId', '*.taxId', '*.name', 'Nm', '*.Nm',
  'document', '*.document', 'payload', '*.payload', 'body', '*.body', 'xml', '*.xml',
];

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Name of the component, written as `name` on every line. */
  name: string;
  /**
   * Minimum level written.
   * @defaultValue 'info'
   */
  level?: Level | 'silent';
  /**
   * Where lines go.
   * @defaultValue standard output
   */
  destination?: DestinationStream;
}

/** Creates selo's pino logger: JSON, one line per event, secrets and personal data redacted. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: [...REDACTED_PATHS], censor: '[REDACTED]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination(1),
  );
}

export type { Logger };
