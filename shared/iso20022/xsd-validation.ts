import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as Libxml2Module from 'libxml2-wasm';
import type { ErrorDetail, XmlDocument, XsdValidator } from 'libxml2-wasm';
import { PermanentError } from '../errors/index.ts';
import { childElements, elementPath, parseXml } from '../xml/index.ts';
import type { XmlElement } from '../xml/index.ts';
import { messageOfNamespace } from './namespaces.ts';

/** A schema in `shared/iso20022/xsd/` (copied byte for byte from redistributions of the SPI catalogue 5.13.x; provenance in `xsd/SOURCES.md`). */
export type SpiSchema = 'pacs.008.spi.1.16' | 'pacs.002.spi.1.17' | 'pacs.004.spi.1.5';

/** The schema files of each message definition. */
export const SPI_SCHEMA_FILES: Readonly<Record<SpiSchema, string>> = {
  'pacs.008.spi.1.16': 'pacs.008.spi.1.16.xsd',
  'pacs.002.spi.1.17': 'pacs.002.spi.1.17.xsd',
  'pacs.004.spi.1.5': 'pacs.004.spi.1.5.xsd',
};

/** Whether selo has the XSD of this message definition (e.g. `pacs.008.spi.1.16`). */
export function isSpiSchema(name: string): name is SpiSchema {
  return Object.hasOwn(SPI_SCHEMA_FILES, name);
}

/**
 * The XSD of the message whose `Document` is in `namespace` (an XSD validates by its
 * `targetNamespace`: `https://www.bcb.gov.br/pi/pacs.008/1.16` is `pacs.008.spi.1.16.xsd`), or
 * undefined when selo has no XSD for it (pibr.001/002, admi.002, older versions: see
 * `xsd/SOURCES.md`).
 */
export function spiSchemaOfNamespace(namespace: string): SpiSchema | undefined {
  const kind = messageOfNamespace(namespace);
  if (kind === undefined) return undefined;
  const name = `${kind.message}.spi.${kind.version}`;
  return isSpiSchema(name) ? name : undefined;
}

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
 * The schema text selo validates with: the official XSD with the `Sgntr` wildcard made lax (the
 * verifier checks the signature's structure field by field; see xsd/SOURCES.md).
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

type Libxml2 = typeof Libxml2Module;

/**
 * libxml2, loaded on first use. Importing it instantiates a WebAssembly module in the importing
 * thread, and V8 (Node 24) can abort the process when a worker thread holding one is torn down
 * (`Check failed: (location_) != nullptr`, nodejs/node#64500; seen here with the simulator's
 * inspection threads). So only a thread that validates loads it: importing this module does not.
 */
let libxml2: Libxml2 | undefined;

/** libxml2, once {@link compileSpiSchemas} has loaded it. */
function loaded(): Libxml2 {
  if (libxml2 === undefined) throw new Error('checkSpiSchema called before compileSpiSchemas() finished: libxml2 is not loaded in this thread');
  return libxml2;
}

/** One compiled validator per schema, per thread (libxml2 in WebAssembly keeps its own heap). */
const validators = new Map<SpiSchema, XsdValidator>();

function validatorFor(schema: SpiSchema): XsdValidator {
  let validator = validators.get(schema);
  if (validator === undefined) {
    const lib = loaded();
    const schemaDocument = lib.XmlDocument.fromString(schemaText(schema));
    try {
      validator = lib.XsdValidator.fromDoc(schemaDocument);
    } finally {
      schemaDocument.dispose(); // the compiled schema keeps what it needs
    }
    validators.set(schema, validator);
  }
  return validator;
}

/**
 * Loads libxml2 in this thread and compiles every SPI schema (about 50 ms each), so that the
 * first message validated does not wait for it. Needed before {@link checkSpiSchema};
 * {@link validateSpiMessage} calls it. Idempotent.
 */
export async function compileSpiSchemas(): Promise<void> {
  libxml2 ??= await import('libxml2-wasm');
  for (const schema of Object.keys(SPI_SCHEMA_FILES) as SpiSchema[]) validatorFor(schema);
}

/**
 * The element libxml2 names by a positional path (steps of `*` or `*[n]`, child elements by
 * position from the root), found in our own parse of the message, so that the path given out
 * uses element names.
 */
function elementAt(root: XmlElement, positional: string): XmlElement | undefined {
  const steps = positional.split('/').filter((step) => step !== '');
  if (steps.shift() !== '*') return undefined;
  let element: XmlElement | undefined = root;
  for (const step of steps) {
    const match = /^\*(?:\[(\d+)\])?$/.exec(step);
    if (match === null || element === undefined) return undefined;
    element = childElements(element)[Number(match[1] ?? '1') - 1];
  }
  return element;
}

function violationsOf(xml: string, details: readonly ErrorDetail[]): SchemaViolation[] {
  let root: XmlElement | undefined;
  try {
    root = parseXml(xml).root;
  } catch {
    root = undefined; // libxml2 accepted what the hardened parser refuses: the paths stay positional
  }
  return details.map((detail) => {
    const element = root === undefined || detail.xpath === undefined ? undefined : elementAt(root, detail.xpath);
    const path = element === undefined ? detail.xpath ?? `(line ${detail.line})` : elementPath(element);
    return { path, line: detail.line, message: withoutValues(detail.message.trim()) };
  });
}

/**
 * Checks an SPI message against its official XSD with libxml2 (compiled to WebAssembly, in this
 * process: the schema is compiled once per thread, a pacs.008 takes about 0.2 ms), once
 * {@link compileSpiSchemas} has loaded it in this thread. The message
 * must already be acceptable to the hardened parser (no DTD, no entities); libxml2 parses it
 * again with its defaults, which load no DTD and expand no external entity.
 *
 * @throws {@link SchemaValidationError} naming the path of each offending element.
 */
export function checkSpiSchema(xml: string, schema: SpiSchema): void {
  // No SPI message has a DTD (the hardened parser refuses them too); libxml2 would keep the
  // entity references unexpanded and then fail on them as an internal error.
  if (xml.includes('<!DOCTYPE')) throw new SchemaValidationError(schema, [{ path: '/', line: 0, message: 'a DTD is not allowed' }]);
  const lib = loaded();
  let document: XmlDocument;
  try {
    document = lib.XmlDocument.fromString(xml);
  } catch (error) {
    const details = error instanceof lib.XmlLibError ? error.details : [];
    throw new SchemaValidationError(schema, details.length > 0 ? violationsOf(xml, details) : [{ path: '/', line: 0, message: 'not well-formed XML' }]);
  }
  try {
    validatorFor(schema).validate(document);
  } catch (error) {
    if (!(error instanceof lib.XmlValidateError)) throw error;
    const violations = violationsOf(xml, error.details);
    throw new SchemaValidationError(schema, violations.length > 0 ? violations : [{ path: '/', line: 0, message: withoutValues(error.message) }]);
  } finally {
    document.dispose();
  }
}

/** {@link checkSpiSchema}, as a promise (what the sign worker's port expects); loads libxml2 first if needed. */
export async function validateSpiMessage(xml: string, schema: SpiSchema): Promise<void> {
  if (libxml2 === undefined) await compileSpiSchemas();
  checkSpiSchema(xml, schema);
}
