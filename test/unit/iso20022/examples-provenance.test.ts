import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BENCH_EXAMPLES_DIR, BENCH_EXAMPLE_FILES } from '../../../bin/commands/bench.ts';
import { recordedFiles } from '../../support/provenance.ts';

const ROOT = join(import.meta.dirname, '../../..');
const EXAMPLES = join(ROOT, 'shared/iso20022/examples');

/** Rows of the SOURCES.md table: file → bytes and SHA-256. */
const recorded = (): ReturnType<typeof recordedFiles> => recordedFiles(join(EXAMPLES, 'SOURCES.md'), '.xml');

describe('the BCB example messages kept in the repository', () => {
  it('are where selo bench xmldsig reads them by default, inside the repository', () => {
    const fromRoot = relative(ROOT, BENCH_EXAMPLES_DIR);
    expect(fromRoot.startsWith('..') || isAbsolute(fromRoot)).toBe(false);
    expect(fromRoot).toBe(join('shared', 'iso20022', 'examples'));
  });

  it('match, byte for byte, the size and SHA-256 that SOURCES.md records for each, the bench files included', () => {
    const rows = recorded();
    expect(rows.size).toBe(6);
    for (const file of BENCH_EXAMPLE_FILES) expect(rows.has(file)).toBe(true);
    for (const [file, { bytes, sha256 }] of rows) {
      const content = readFileSync(join(EXAMPLES, file));
      expect([file, content.length, createHash('sha256').update(content).digest('hex')]).toEqual([file, bytes, sha256]);
    }
  });

  it('are kept once: no file under test/fixtures is a copy of one of them', () => {
    const examples = new Set([...recorded().values()].map((row) => row.sha256));
    const fixtures = readdirSync(join(ROOT, 'test/fixtures'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    const copies = fixtures
      .map((entry) => join(entry.parentPath, entry.name))
      .filter((path) => examples.has(createHash('sha256').update(readFileSync(path)).digest('hex')))
      .map((path) => relative(ROOT, path));
    expect(copies).toEqual([]);
  });
});
