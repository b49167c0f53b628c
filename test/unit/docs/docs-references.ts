// What the docs check reads in a Markdown page: the `selo …` command lines it shows (in code spans
// and code blocks) and its relative links.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../../../bin/commands/index.ts';

/** One `selo …` command line found in a page. */
export interface CommandReference {
  /** The command line from `selo` on, without a leading `./`, a prompt or a trailing comment. */
  text: string;
  /** 1-based line of the page. */
  line: number;
}

const COMMAND_AT_START = /^(?:\$\s+)?(?:\.\/)?(selo\s.*|selo)$/u;

function cleaned(command: string): string {
  return command.replace(/\s+#.*$/u, '').replace(/[\s\\]+$/u, '').trim();
}

/**
 * The `selo …` commands shown in a page: each code span that starts with `selo` or `./selo`, and
 * each line of a fenced code block that does (after an optional `$ ` prompt). Prose that merely
 * says "selo" is not a command.
 */
export function commandReferences(markdown: string): CommandReference[] {
  const found: CommandReference[] = [];
  let fenced = false;
  markdown.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (/^\s*```/u.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) {
      const match = COMMAND_AT_START.exec(raw.trim());
      if (match !== null) found.push({ text: cleaned(match[1] as string), line });
      return;
    }
    for (const span of raw.matchAll(/`([^`]+)`/gu)) {
      const match = COMMAND_AT_START.exec((span[1] as string).trim());
      if (match !== null) found.push({ text: cleaned(match[1] as string), line });
    }
  });
  return found;
}

/** The flags (`--name`) an option list declares; `-h, --help` is always there. */
function declaredFlags(flags: readonly { flag: string }[]): Set<string> {
  const names = new Set(['--help', '-h']);
  for (const { flag } of flags) for (const name of flag.matchAll(/--?[A-Za-z][\w-]*/gu)) names.add(name[0]);
  return names;
}

/**
 * What is wrong with one `selo …` command line against the registered commands: an unknown
 * command, subcommand or flag. Empty when it is right. Placeholders (`<id>`, `[--max 50]`,
 * `…`) are read as what they stand for: the flags inside brackets are checked too.
 */
export function checkCommandReference(commands: readonly Command[], text: string): string[] {
  const words = text.split(/\s+/u).slice(1);
  const name = words[0];
  // `selo` alone, a placeholder for any command, or a line of output (`selo console: open …`).
  if (name === undefined || /^[<[…|]/u.test(name) || name.endsWith(':')) return [];
  // `selo test` is the wrapper script's (./selo); `selo help [<command> [<sub>]]` the framework's.
  if (name === 'test') return [];
  if (name === 'help') return words.length > 1 ? checkCommandReference(commands, `selo ${words.slice(1).join(' ')}`) : [];
  const command = commands.find((c) => c.name === name);
  if (command === undefined) return [`no command 'selo ${name}'`];
  let scope = `selo ${name}`;
  let options = command.help.options;
  const rest = words.slice(1);
  if (command.subcommands !== undefined) {
    const sub = rest[0];
    if (sub !== undefined && /^[a-z][a-z-]*$/u.test(sub)) {
      const subcommand = command.subcommands.find((s) => s.name === sub);
      if (subcommand === undefined) return [`'${scope}' has no subcommand '${sub}'`];
      scope = `${scope} ${sub}`;
      options = [...options, ...subcommand.help.options];
    }
  }
  const known = declaredFlags(options);
  const problems: string[] = [];
  for (const word of rest) {
    // A flag, possibly inside a bracketed placeholder or with `=value`.
    const flag = /^[[(]*(--?[A-Za-z][\w-]*)/u.exec(word)?.[1];
    if (flag !== undefined && !known.has(flag)) problems.push(`'${scope}' has no option ${flag}`);
  }
  return problems;
}

/**
 * Relative links (`[text](path)`, `[text](path#anchor)`) whose file does not exist, resolved
 * against `baseDir`; links to the web and to anchors of the same page are not checked here.
 */
export function checkRelativeLinks(markdown: string, baseDir: string): string[] {
  const problems: string[] = [];
  for (const match of markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/gu)) {
    const target = match[1] as string;
    if (/^[a-z][a-z0-9+.-]*:/iu.test(target) || target.startsWith('#')) continue;
    const path = target.split('#')[0] as string;
    if (!existsSync(join(baseDir, decodeURIComponent(path)))) problems.push(`broken link ${path}`);
  }
  return problems;
}
