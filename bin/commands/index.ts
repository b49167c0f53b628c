import type { Command, CommandIo } from './command.ts';
import { runCommandLine } from './help.ts';
import { upCommand } from './up.ts';
import { configCommand } from './config.ts';
import { signCommand } from './sign.ts';
import { verifyCommand } from './verify.ts';
import { benchCommand } from './bench.ts';
import { hsmCommand } from './hsm.ts';
import { pkiCommand } from './pki.ts';
import { simulatorCommand } from './simulator.ts';
import { workerCommand } from './worker.ts';
import { dlqCommand } from './dlq.ts';
import { sagaCommand } from './saga.ts';
import { demoCommand } from './demo.ts';
import { auditCommand } from './audit.ts';
import { opsCommand } from './ops.ts';
import { consoleCommand } from './console.ts';

/**
 * Every `selo` command. Each lives in its own file in this folder; add one line here to
 * register a new one.
 */
export const COMMANDS: readonly Command[] = [
  demoCommand,
  upCommand,
  configCommand,
  signCommand,
  verifyCommand,
  benchCommand,
  hsmCommand,
  pkiCommand,
  simulatorCommand,
  workerCommand,
  dlqCommand,
  sagaCommand,
  auditCommand,
  opsCommand,
  consoleCommand,
];

/** Runs `selo <argv…>` (help included) and resolves to the exit code. */
export function runSelo(argv: readonly string[], io: CommandIo): Promise<number> {
  return runCommandLine(COMMANDS, argv, io);
}

export type { Command, CommandHelp, CommandIo, OptionHelp, Subcommand } from './command.ts';
export { formatHelp, formatUsage } from './help.ts';
