import type { SeloConfig } from '../../shared/config/index.ts';
import type { CommandIo } from './command.ts';

/**
 * A `--<name>` port flag: a whole number from 0 (any free port) to 65535, or `fallback` when the
 * flag was not given. Throws a RangeError naming the flag and the bad value.
 */
export function portOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed > 65_535) throw new RangeError(`--${name} must be a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  return parsed;
}

/**
 * selo's configuration read from `io.env`, or undefined once the problem is written to stderr as
 * `<command>: <message>` (the caller exits 2). Loaded when called, so that commands that need no
 * configuration do not pay for it.
 */
export async function commandConfig(io: CommandIo, command: string): Promise<SeloConfig | undefined> {
  const { ConfigError, loadConfig } = await import('../../shared/config/index.ts');
  try {
    return loadConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${command}: ${error.message}\n`);
      return undefined;
    }
    throw error;
  }
}
