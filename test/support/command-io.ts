import { PassThrough } from 'node:stream';
import type { CommandIo } from '../../bin/commands/command.ts';

/** A command's streams captured in memory, for calling a `Command.run` in a test. */
export interface CapturedIo {
  io: CommandIo;
  /** Everything written to stdout so far. */
  out(): string;
  /** Everything written to stderr so far. */
  err(): string;
}

/** Streams that keep what a command writes; `env` is what the command reads as its environment. */
export function capturedIo(env: CommandIo['env'] = {}): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  return { io: { stdin: new PassThrough(), stdout, stderr, env }, out: () => out, err: () => err };
}
