import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PermanentError } from '../errors/index.ts';
import { descendantElements, elementPath, parseXml, positionOf } from '../xml/index.ts';

/** A schema in `shared/iso20022/xsd/` (copied byte for byte from the SPI catalogue 5.13.1). */
export type SpiSchema = 'pacs.008.spi.1.16' | 'pacs.002.spi.1.17';

/** The schema files of each message definition. */
export const SPI_SCHEMA_FILES: Readonly<Record<SpiSchema, string>> = {
  'pacs.008.spi.1.16': 'pacs.008.spi.1.16.xsd',
  'pacs.002.spi.1.17': 'pacs.002.spi.1.17.xsd',
};

/** One schema violation. */
export interface SchemaViolation {
  /** Location of the offending element, e.g. `/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/PmtId/EndToEndId`. */
  readonly path: string;
  readonly line: number;
  /** libxml2's message. */
  readonly message: string;
}

/** The message does not conform to its XSD. `details.violations` lists each with its path. */
export class SchemaValidationError extends PermanentError {
  /** Every violation libxml2 reported. */
  readonly violations: readonly SchemaViolation[];

  constructor(schema: string, violations: readonly SchemaViolation[]) {
    const first = violations[0];
    super('ISO20022_SCHEMA_INVALID', `${schema}: ${first === undefined ? 'invalid' : `${first.path}: ${first.message}`}${violations.length > 1 ? ` (and ${violations.length - 1} more)` : ''}`, {
      details: { schema, violations },
    });
    this.violations = violations;
  }
}

const XSD_DIR = join(import.meta.dirname, 'xsd');
const schemaCache = new Map<SpiSchema, string>();

/**
 * The schema text used for validation. The catalogue declares `Sgntr` as a strict wildcard
 * in the XML-DSig namespace, which needs the W3C xmldsig schema; as in the provenance notes of
 * shared/spec (SOURCES.md), the wildcard is made lax at load time instead — the signature's
 * structure is enforced by shared/xmldsig's verifier, field by field.
 */
/**
 * The schema text selo validates with: the official XSD with the `Sgntr` wildcard made lax (the
 * verifier checks the signature's structure field by field; see spec/SOURCES.md).
 */
export function schemaText(schema: SpiSchema): string {
  let text = schemaCache.get(schema);
  if (text === undefined) {
    text = readFileSync(join(XSD_DIR, SPI_SCHEMA_FILES[schema]), 'utf8').replace(
      '<xs:any namespace="http://www.w3.org/2000/09/xmldsig#"/>',
      '<xs:any namespace="http://www.w3.org/2000/09/xmldsig#" processContents="lax"/>',
    );
    schemaCache.set(schema, text);
  }
  return text;
}

/**
 * libxml2 quotes the offending value ("The value 'Fulano' is not accepted…", "'x' is not a valid
 * value…"). Values of a Pix message are personal data (names, CPF/CNPJ, accounts), and this
 * message goes to logs, DLQ attributes and failure events, so the value is cut out; the path
 * says where to look.
 */
export function withoutValues(message: string): string {
  return message
    .replace(/\b(value|Value) '[^']*'/g, '$1 (hidden)')
    .replace(/^'[^']*' is not/, 'the value is not')
    .replace(/: '[^']*' is not/g, ': the value is not');
}

function runXmllint(args: readonly string[], input: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('xmllint', [...args], { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error === null) resolve({ code: 0, stderr });
      else if (typeof error.code === 'number') resolve({ code: error.code, stderr });
      else reject(new Error(`cannot run xmllint: ${error.message}`, { cause: error }));
    });
    child.stdin?.end(input);
  });
}

/**
 * Validates an SPI message against its official XSD with libxml2 (`xmllint --schema`); the
 * message must already be acceptable to the hardened parser (no DTD, no entities).
 *
 * @throws {@link SchemaValidationError} naming the path of each offending element.
 */
export async function validateSpiMessage(xml: string, schema: SpiSchema): Promise<void> {
  const document = parseXml(xml);
  const dir = await mkdtemp(join(tmpdir(), 'selo-xsd-'));
  try {
    const xsd = join(dir, SPI_SCHEMA_FILES[schema]);
    await writeFile(xsd, schemaText(schema));
    const { code, stderr } = await runXmllint(['--noout', '--nonet', '--schema', xsd, '-'], xml);
    if (code === 0) return;
    const elements = descendantElements(document.root);
    const violations: SchemaViolation[] = [];
    for (const line of stderr.split('\n')) {
      const match = /^-:(\d+): element ([^:]+): Schemas validity error : (.*)$/.exec(line);
      if (match === null) continue;
      const lineNumber = Number(match[1]);
      const name = match[2] ?? '';
      const element = elements.find((e) => e.localName === name && positionOf(document.source, e.start).line === lineNumber);
      violations.push({ path: element === undefined ? `(line ${lineNumber}) ${name}` : elementPath(element), line: lineNumber, message: withoutValues(match[3] ?? '') });
    }
    if (violations.length === 0) violations.push({ path: '/', line: 0, message: stderr.trim() });
    throw new SchemaValidationError(schema, violations);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
