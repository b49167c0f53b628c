import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../bin/commands/index.ts';
import type { Command, CommandHelp } from '../../../bin/commands/index.ts';
import { checkCommandReference, checkRelativeLinks, commandReferences } from './docs-references.ts';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');

function markdownFiles(): string[] {
  const docs = join(ROOT, 'docs');
  const pages = existsSync(docs) ? readdirSync(docs, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join(docs, f)) : [];
  return [join(ROOT, 'README.md'), ...pages];
}

const help = (flags: string[]): CommandHelp => ({ usage: [], description: '', options: flags.map((flag) => ({ flag, description: '' })) });
const FAKE: readonly Command[] = [
  { name: 'demo', summary: '', help: help(['--payments <n>', '--json']), run: () => Promise.resolve(0) },
  { name: 'saga', summary: '', help: help([]), subcommands: [{ name: 'show', summary: '', help: help(['--json']) }], run: () => Promise.resolve(0) },
];

describe('the checks themselves', () => {
  it('finds selo commands in code spans and code blocks, not in prose', () => {
    const refs = commandReferences('selo does things.\nRun `./selo demo --payments 5` or:\n```\nselo saga show E1 --json   # one payment\n$ selo up\n```\n');
    expect(refs.map((r) => r.text)).toEqual(['selo demo --payments 5', 'selo saga show E1 --json', 'selo up']);
  });

  it('refuses an unknown command, an unknown subcommand and an unknown flag', () => {
    expect(checkCommandReference(FAKE, 'selo demo --payments 5 --json')).toEqual([]);
    expect(checkCommandReference(FAKE, 'selo demo --paymnets 5')).toEqual(["'selo demo' has no option --paymnets"]);
    expect(checkCommandReference(FAKE, 'selo deploy')).toEqual(["no command 'selo deploy'"]);
    expect(checkCommandReference(FAKE, 'selo saga drop E1')).toEqual(["'selo saga' has no subcommand 'drop'"]);
    expect(checkCommandReference(FAKE, 'selo saga show E1 --csv')).toEqual(["'selo saga show' has no option --csv"]);
    expect(checkCommandReference(FAKE, 'selo saga show E1 --help')).toEqual([]);
    expect(checkCommandReference(FAKE, 'selo help saga show')).toEqual([]);
    expect(checkCommandReference(FAKE, 'selo demo: local stack up')).toEqual([]);
    expect(checkCommandReference(FAKE, 'selo help sagas')).toEqual(["no command 'selo sagas'"]);
  });

  it('refuses a relative link to a file that does not exist', () => {
    const problems = checkRelativeLinks('[ok](README.md) [web](https://example.org/x) [anchor](#quick-start) [gone](docs/nothing-here.md#part)', ROOT);
    expect(problems).toEqual(['broken link docs/nothing-here.md']);
  });
});

describe.each(markdownFiles().map((file) => [relative(ROOT, file), file]))('%s', (_name, file) => {
  const text = readFileSync(file, 'utf8');

  it('links only to files that exist', () => {
    expect(checkRelativeLinks(text, dirname(file))).toEqual([]);
  });

  it('names only selo commands, subcommands and flags the CLI has', () => {
    const problems = commandReferences(text).flatMap((ref) => checkCommandReference(COMMANDS, ref.text).map((p) => `line ${ref.line}: ${p} (in "${ref.text}")`));
    expect(problems).toEqual([]);
  });
});
