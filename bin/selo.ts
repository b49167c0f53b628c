#!/usr/bin/env node
// selo's command line. Runs on Node 24 (type stripping); `./selo` at the repository root
// installs the toolchain first and then runs this file.
import { runSelo } from './commands/index.ts';
import type { CommandIo } from './commands/index.ts';

function main(argv: readonly string[]): Promise<number> {
  const io: CommandIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
  return runSelo(argv, io);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`selo: ${message}\n`);
    process.exitCode = 1;
  },
);
