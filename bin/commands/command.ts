/** Streams a command writes to; injected so tests can capture them. */
export interface CommandIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
}

/** One option as `--help` lists it. */
export interface OptionHelp {
  /** The flag as typed, with its value's placeholder: `--state <STATE>`, `--json`. */
  readonly flag: string;
  /** What it does, with its default when it has one. */
  readonly description: string;
}

/**
 * What `selo <command> [<subcommand>] --help` prints. Every command and subcommand declares one;
 * the framework prints it (`bin/commands/help.ts`), so all help has the same shape.
 */
export interface CommandHelp {
  /** Usage lines, each starting with `selo <command>` (and the subcommand, for a subcommand). */
  readonly usage: readonly string[];
  /** What it does, in a few lines (wrapped as written). */
  readonly description: string;
  /** Every option it takes (`-h, --help` is added by the framework). */
  readonly options: readonly OptionHelp[];
  /** Environment variables it reads, when it reads any besides selo's configuration. */
  readonly environment?: string;
  /** Its exit codes, when they say more than 0 success, 2 usage. */
  readonly exitCodes?: string;
}

/** One `selo <command> <name> …` subcommand: its word and its help. */
export interface Subcommand {
  /** The word after the command's name. */
  readonly name: string;
  /** One line for the command's list of subcommands. */
  readonly summary: string;
  readonly help: CommandHelp;
}

/** One `selo <name> …` command. */
export interface Command {
  /** The word after `selo`. */
  name: string;
  /** One line for `selo help`. */
  summary: string;
  /**
   * Its help. For a command with subcommands, the usage lines are the subcommands' own (the
   * framework lists them) and `options` holds only what every subcommand takes, if anything.
   */
  help: CommandHelp;
  /** Its subcommands, each with its own help; absent for a command without. */
  subcommands?: readonly Subcommand[];
  /**
   * Runs the command with the arguments after its name and resolves to the process exit code
   * (0 success, 1 failure the command reports, 2 unusable input or usage). `--help` never
   * reaches it: the framework answers that.
   */
  run(args: readonly string[], io: CommandIo): Promise<number>;
}
