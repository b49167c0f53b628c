/** Streams a command writes to; injected so tests can capture them. */
export interface CommandIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
}

/** One `selo <name> …` command. */
export interface Command {
  /** The word after `selo`. */
  name: string;
  /** One line for `selo help`. */
  summary: string;
  /**
   * Runs the command with the arguments after its name and resolves to the process exit code
   * (0 success, 1 failure the command reports, 2 unusable input or usage).
   */
  run(args: readonly string[], io: CommandIo): Promise<number>;
}
