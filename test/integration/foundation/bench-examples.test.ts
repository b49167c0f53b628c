import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'selo-bench-clone-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('selo bench xmldsig on a clone', () => {
  it('runs from a clone with no ../shared/spec beside it, reading the BCB examples kept in the repository', () => {
    // A clone as a user has it: the repository's files and its dependencies, nothing beside it.
    const clone = join(work, 'selo');
    const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter((f) => f !== '');
    expect(files).toContain('bin/selo.ts');
    for (const file of files) {
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      try {
        cpSync(join(ROOT, file), join(clone, file));
      } catch {
        // a file listed but deleted in the work tree
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    const cwd = mkdtempSync(join(work, 'cwd-'));
    const result = spawnSync(process.execPath, [join(clone, 'bin/selo.ts'), 'bench', 'xmldsig', '--seconds', '0.01'], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect(result.stderr).not.toContain('ENOENT');
    expect(result.status).toBe(0);
    for (const file of ['pacs.002_PSP_1_msg.xml', 'pacs.008_END_1_msg.xml', 'pacs.008_END_10_msg.xml']) expect(result.stdout).toContain(file);
  }, 180_000);
});
