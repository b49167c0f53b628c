import { ConfigError, loadConfig } from '../../shared/config/index.ts';
import type { Command, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';

function run(args: readonly string[], io: CommandIo): number {
  if (args.length !== 1 || args[0] !== 'check') {
    io.stderr.write(formatUsage(configCommand, 'check'));
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
export const configCommand: Command = {
  name: 'config',
  summary: 'check the configuration in the environment (selo config check)',
  help: { usage: [], description: 'selo\'s configuration, as the workers read it from the environment.', options: [] },
  subcommands: [
    {
      name: 'check',
      summary: 'parse the configuration and print it, or say which variable is wrong',
      help: {
        usage: ['selo config check'],
        description: 'Parses selo\'s configuration from the environment (SELO_* and AWS_* variables) and prints it as JSON, or says which variable is wrong.',
        options: [],
        exitCodes: '0 valid, 2 a variable is missing or malformed',
      },
    },
  ],
  run: (args, io) => Promise.resolve().then(() => run(args, io)),
};
