import { ESLint } from 'eslint';
import type { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

// The project's own rule block for workers/, taken from eslint.config.js (not a copy of it), run
// without type information so that snippets need no files on disk.
const configUrl = new URL('../../../eslint.config.js', import.meta.url).href;
const { default: config } = (await import(configUrl)) as { default: Linter.Config[] };
const workersBlock = config.find((block) => JSON.stringify(block.files) === JSON.stringify(['workers/**/*.ts']));

async function lint(filePath: string, code: string): Promise<string[]> {
  if (workersBlock === undefined) throw new Error('eslint.config.js has no block for workers/**/*.ts');
  const eslint = new ESLint({
    cwd: process.cwd(),
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, workersBlock],
  });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

describe('lint rules', () => {
  it('forbids a worker from importing another worker', async () => {
    for (const from of ['../transmit/handler.ts', '../../workers/transmit/index.ts']) {
      const messages = await lint('workers/sign/handler.ts', `import { x } from '${from}';\nexport const y = x;\n`);
      expect(messages, from).toHaveLength(1);
      expect(messages[0], from).toMatch(/^no-restricted-imports: .*A worker may not import from another worker/);
    }
  });

  it('lets a worker import from shared/ and from its own folder', async () => {
    const code = "import { a } from '../../shared/errors/index.ts';\nimport { b } from './decode.ts';\nexport const c = [a, b];\n";
    expect(await lint('workers/sign/handler.ts', code)).toEqual([]);
  });
});
