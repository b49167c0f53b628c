import { pino } from 'pino';
import type { Logger, DestinationStream, Level } from 'pino';

/**
 * Paths whose values never reach a log line: HSM PINs, private keys, passwords, tokens, and the
 * personal data a Pix message carries (CPF/CNPJ, names). Configured once here (HOUSE_STYLE 14).
 * `name` alone is not redacted: the logger's own name and error names use it; people's names are
 * redacted where Pix messages put them (debtor, creditor, DICT owner).
 */
export const REDACTED_PATHS: readonly string[] = [
  'pin', '*.pin', '*.*.pin', 'soPin', '*.soPin', '*.*.soPin', 'userPin', '*.userPin',
  'privateKeyIdentifier', '*.privateKeyIdentifier', '*.*.privateKeyIdentifier', 'tls', '*.tls',
  'password', '*.password', 'secret', '*.secret', 'secretAccessKey', '*.secretAccessKey',
  'privateKey', '*.privateKey', '*.*.privateKey', 'key', '*.key', 'passphrase', '*.passphrase',
  'authorization', '*.authorization', 'headers.authorization', 'token', '*.token',
  'cpf', '*.cpf', 'cnpj', '*.cnpj', 'taxId', '*.taxId', 'debtor.name', 'creditor.name', '*.debtor.name', '*.creditor.name', 'owner.name', 'Owner.Name', '*.Owner.Name', 'Nm', '*.Nm',
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
