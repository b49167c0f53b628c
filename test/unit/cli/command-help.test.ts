import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../bin/commands/index.ts';
import type { Command, CommandHelp, CommandIo } from '../../../bin/commands/index.ts';
import { runCommandLine } from '../../../bin/commands/help.ts';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The registered commands, each with a `run` that fails the test if help ever reaches it. */
const GUARDED: readonly Command[] = COMMANDS.map((c) => ({ ...c, run: () => Promise.reject(new Error(`selo ${c.name}: run was called for a help request`)) }));

async function selo(commands: readonly Command[], ...argv: string[]): Promise<Ran> {
  const out = { stdout: '', stderr: '' };
  const stream = (key: 'stdout' | 'stderr'): PassThrough => {
    const s = new PassThrough();
    s.on('data', (chunk: Buffer) => (out[key] += chunk.toString('utf8')));
    return s;
  };
  const io: CommandIo = { stdin: new PassThrough(), stdout: stream('stdout'), stderr: stream('stderr'), env: {} };
  const code = await runCommandLine(commands, argv, io);
  await new Promise((resolve) => setImmediate(resolve));
  return { code, ...out };
}

/** Every `--flag` a usage line mentions. */
function flagsIn(usage: readonly string[]): string[] {
  return [...new Set(usage.join(' ').match(/--[a-z][a-z0-9-]*/g) ?? [])];
}

function expectHelp(ran: Ran, prefix: string, help: CommandHelp, usage: readonly string[]): void {
  expect(ran.code, prefix).toBe(0);
  expect(ran.stderr, prefix).toBe('');
  expect(ran.stdout.startsWith(`usage: ${prefix}`), `${prefix}: ${ran.stdout.slice(0, 80)}`).toBe(true);
  expect(help.description.trim(), prefix).not.toBe('');
  expect(ran.stdout).toContain(help.description.trimEnd());
  expect(ran.stdout).toMatch(/\noptions:\n(.*\n)*\s+-h, --help\s+show this help/);
  // A usage line names the command, or continues the one before it (indented).
  for (const line of usage) expect(line.startsWith(prefix) || /^\s/.test(line), `${prefix}: usage line ${line}`).toBe(true);
  const declared = help.options.map((o) => o.flag);
  for (const option of help.options) expect(ran.stdout, prefix).toMatch(new RegExp(`\\n {2}${option.flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +\\S`));
  // Each flag the usage shows is explained under options.
  for (const flag of flagsIn(usage)) expect(declared.some((d) => d.split(/[ ,=[]/).includes(flag)), `${prefix}: ${flag} is in the usage but not under options`).toBe(true);
}

describe('selo --help', () => {
  it('registers at least the operations commands', () => {
    expect(COMMANDS.map((c) => c.name)).toEqual(expect.arrayContaining(['saga', 'dlq', 'audit', 'ops', 'console']));
  });

  for (const command of COMMANDS) {
    describe(`selo ${command.name}`, () => {
      it('prints its help with its options on --help, -h and "selo help", and exits 0', async () => {
        const usage = command.subcommands === undefined ? command.help.usage : command.subcommands.flatMap((s) => s.help.usage);
        const ran = await selo(GUARDED, command.name, '--help');
        expectHelp(ran, `selo ${command.name}`, command.help, command.subcommands === undefined ? usage : []);
        expect(usage.length).toBeGreaterThan(0);
        for (const line of usage) expect(ran.stdout).toContain(line);
        expect(await selo(GUARDED, command.name, '-h')).toEqual(ran);
        expect(await selo(GUARDED, 'help', command.name)).toEqual(ran);
        for (const sub of command.subcommands ?? []) expect(ran.stdout).toMatch(new RegExp(`\\n {2}${sub.name} +${sub.summary.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      });

      for (const sub of command.subcommands ?? []) {
        it(`prints the help of "${sub.name}" on --help anywhere in its arguments, and on "selo help ${command.name} ${sub.name}"`, async () => {
          const ran = await selo(GUARDED, command.name, sub.name, '--help');
          expectHelp(ran, `selo ${command.name} ${sub.name}`, sub.help, sub.help.usage);
          expect(await selo(GUARDED, 'help', command.name, sub.name)).toEqual(ran);
          expect(await selo(GUARDED, command.name, sub.name, 'some-argument', '-h')).toEqual(ran);
        });
      }
    });
  }

  it('lists every command on "selo help" and exits 0; with nothing at all it exits 2', async () => {
    const ran = await selo(GUARDED, 'help');
    expect(ran.code).toBe(0);
    for (const command of COMMANDS) expect(ran.stdout).toContain(`  ${command.name} `);
    expect((await selo(GUARDED)).code).toBe(2);
  });

  it('runs only declared subcommands: an undeclared one is a usage error that never reaches the command', async () => {
    const withSubs = COMMANDS.filter((c) => c.subcommands !== undefined);
    expect(withSubs.length).toBeGreaterThan(0);
    for (const command of withSubs) {
      const ran = await selo(GUARDED, command.name, 'no-such-subcommand');
      expect(ran.code, command.name).toBe(2);
      expect(ran.stderr).toContain(`selo ${command.name}: unknown subcommand "no-such-subcommand"`);
    }
  });

  it('passes arguments after "--" to the command, --help among them', async () => {
    const seen: string[][] = [];
    const echo: Command = { name: 'echo', summary: 'echo', help: { usage: ['selo echo [-- args]'], description: 'echoes', options: [] }, run: (args) => (seen.push([...args]), Promise.resolve(0)) };
    expect((await selo([echo], 'echo', '--', '--help')).code).toBe(0);
    expect(seen).toEqual([['--', '--help']]);
  });

  it('refuses help for an unknown command with exit 2', async () => {
    const ran = await selo(GUARDED, 'help', 'nope');
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('no help for "nope"');
  });
});
