import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPI_SCHEMA_FILES } from '../../../shared/iso20022/index.ts';
import { recordedFiles } from '../../support/provenance.ts';

const XSD_DIR = join(import.meta.dirname, '../../../shared/iso20022/xsd');

describe('the official XSDs kept in the repository', () => {
  it('are each recorded in xsd/SOURCES.md with its size and SHA-256, byte for byte, and each is one selo validates with', () => {
    const rows = recordedFiles(join(XSD_DIR, 'SOURCES.md'), '.xsd');
    const files = readdirSync(XSD_DIR).filter((f) => f.endsWith('.xsd')).sort();
    expect([...rows.keys()].sort()).toEqual(files);
    expect(Object.values(SPI_SCHEMA_FILES).sort()).toEqual(files);
    for (const [file, { bytes, sha256 }] of rows) {
      const content = readFileSync(join(XSD_DIR, file));
      expect([file, content.length, createHash('sha256').update(content).digest('hex')]).toEqual([file, bytes, sha256]);
    }
  });

  it('say which message types have no official XSD here and why (xsd/SOURCES.md)', () => {
    const sources = readFileSync(join(XSD_DIR, 'SOURCES.md'), 'utf8').replace(/\s+/g, ' ');
    for (const missing of ['admi.002 1.5', 'pibr.001 1.3', 'pibr.002 1.3']) expect(sources).toContain(`**${missing}**`);
  });
});
