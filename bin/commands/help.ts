import type { Command, CommandHelp, CommandIo, OptionHelp } from './command.ts';

/** The option every command and subcommand takes; the framework answers it. */
export const HELP_OPTION: OptionHelp = { flag: '-h, --help', description: 'show this help and exit 0' };

function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

function usageLines(usage: readonly string[]): string[] {
  return usage.map((line, i) => `${i === 0 ? 'usage: ' : '       '}${line}`);
}

/** Whether `args` ask for help: `-h` or `--help` anywhere before a `--`. */
export function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** The usage lines of a command (every subcommand's, for a command with subcommands). */
function commandUsage(command: Command): readonly string[] {
  return command.subcommands === undefined ? command.help.usage : command.subcommands.flatMap((s) => s.help.usage);
}

function body(help: CommandHelp, usage: readonly string[], extra: string[]): string {
  const lines = [...usageLines(usage), '', help.description.trimEnd(), ...extra, '', 'options:', ...table([...help.options, HELP_OPTION].map((o) => [o.flag, o.description]))];
  if (help.environment !== undefined) lines.push('', `environment: ${help.environment}`);
  if (help.exitCodes !== undefined) lines.push('', `exit codes: ${help.exitCodes}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The help of `selo <command>` or, with `subcommand`, of `selo <command> <subcommand>`: usage,
 * description, (subcommands,) options, environment, exit codes, always in that order. Undefined
 * when the command has no such subcommand.
 */
export function formatHelp(command: Command, subcommand?: string): string | undefined {
  if (subcommand !== undefined) {
    const sub = command.subcommands?.find((s) => s.name === subcommand);
    return sub === undefined ? undefined : body(sub.help, sub.help.usage, []);
  }
  const subs = command.subcommands;
  const extra = subs === undefined ? [] : ['', 'subcommands:', ...table(subs.map((s) => [s.name, s.summary])), '', `run "selo ${command.name} <subcommand> --help" for a subcommand's options`];
  return body(command.help, commandUsage(command), extra);
}

/** The short form for a usage error: the usage lines and where the rest is. */
export function formatUsage(command: Command, subcommand?: string): string {
  const sub = subcommand === undefined ? undefined : command.subcommands?.find((s) => s.name === subcommand);
  const usage = sub?.help.usage ?? commandUsage(command);
  return `${usageLines(usage).join('\n')}\nrun "selo ${command.name}${sub === undefined ? '' : ` ${sub.name}`} --help" for more\n`;
}

/** `selo help`: every command with its summary. */
export function formatCommandList(commands: readonly Command[]): string {
  return [
    'usage: selo <command> [<subcommand>] [options]',
    '',
    'commands:',
    ...table([...commands.map((c) => [c.name, c.summary] as const), ['help', 'this list; "selo help <command> [<subcommand>]" for one command']]),
    '',
    'run "selo <command> --help" for a command\'s subcommands and options',
    '',
  ].join('\n');
}

/**
 * Runs `selo <argv…>` against `commands`: `selo help [<command> [<subcommand>]]`, and `--help`
 * (or `-h`) on any command or subcommand, are answered here from the commands' declared help
 * (exit 0), so no command parses them itself; anything else goes to the command.
 */
export async function runCommandLine(commands: readonly Command[], argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(formatCommandList(commands));
    return 2;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const [target, sub, ...extra] = rest;
    if (target === undefined) {
      io.stdout.write(formatCommandList(commands));
      return 0;
    }
    const command = commands.find((c) => c.name === target);
    const text = command === undefined || extra.length > 0 ? undefined : formatHelp(command, sub);
    if (text === undefined) {
      io.stderr.write(`selo: no help for ${JSON.stringify(rest.join(' '))}\n${formatCommandList(commands)}`);
      return 2;
    }
    io.stdout.write(text);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`selo: unknown command ${JSON.stringify(name)}\n${formatCommandList(commands)}`);
    return 2;
  }
  const [first, second] = rest;
  const subNamed = (word: string | undefined): boolean => word !== undefined && command.subcommands?.some((s) => s.name === word) === true;
  // `selo hsm help [keygen]` reads like `selo help hsm [keygen]`, unless "help" is a subcommand.
  if (first === 'help' && !subNamed('help') && command.subcommands !== undefined) {
    io.stdout.write(formatHelp(command, subNamed(second) ? second : undefined) ?? '');
    return 0;
  }
  if (asksForHelp(rest)) {
    io.stdout.write(formatHelp(command, subNamed(first) ? first : undefined) ?? '');
    return 0;
  }
  // Only declared subcommands run, so a subcommand cannot exist without its help.
  if (command.subcommands !== undefined && !subNamed(first)) {
    const names = command.subcommands.map((s) => s.name).join(', ');
    io.stderr.write(`selo ${command.name}: ${first === undefined ? `which subcommand? (${names})` : `unknown subcommand ${JSON.stringify(first)} (${names})`}\n${formatUsage(command)}`);
    return 2;
  }
  return command.run(rest, io);
}
