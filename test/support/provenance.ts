import { readFileSync } from 'node:fs';

/** One file a `SOURCES.md` records: its size and digest. */
export interface RecordedFile {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * The files a provenance table (`SOURCES.md`) records, by name: each table row whose first cell
 * is a file name ending in `extension` and whose last two cells are its byte count and SHA-256.
 */
export function recordedFiles(sourcesPath: string, extension: string): Map<string, RecordedFile> {
  const rows = new Map<string, RecordedFile>();
  const row = new RegExp(`^\\| \`([^\`]+\\${extension})\` \\|.*\\| (\\d+) \\| \`([0-9a-f]{64})\` \\|$`);
  for (const line of readFileSync(sourcesPath, 'utf8').split('\n')) {
    const match = row.exec(line);
    if (match?.[1] !== undefined) rows.set(match[1], { bytes: Number(match[2]), sha256: match[3] ?? '' });
  }
  return rows;
}
