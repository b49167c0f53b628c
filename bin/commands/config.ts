import { ConfigError, loadConfig } from '../../shared/config/index.ts';
import type { Command, CommandIo } from './command.ts';

function run(args: readonly string[], io: CommandIo): number {
  if (args.length !== 1 || args[0] !== 'check') {
    io.stderr.write('usage: selo config check\nParses selo\'s configuration from the environment and prints it, or says which variable is wrong.\n');
    return 2;
  }
  try {
    const config = loadConfig(io.env);
    io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`selo: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/** `selo config check`: what the workers will read from this environment. */
export const configCommand: Command = { name: 'config', summary: 'check the configuration in the environment (selo config check)', run: (args, io) => Promise.resolve().then(() => run(args, io)) };
