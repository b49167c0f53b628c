import type { Command } from './command.ts';
import { upCommand } from './up.ts';
import { configCommand } from './config.ts';

/**
 * Every `selo` command. Each lives in its own file in this folder; add one line here to
 * register a new one.
 */
export const COMMANDS: readonly Command[] = [
  upCommand,
  configCommand,
];

export type { Command, CommandIo } from './command.ts';
