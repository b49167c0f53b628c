import { PermanentError } from '../../shared/errors/index.ts';
import {
  SchemaValidationError,
  checkSpiSchema,
  envelopeParts,
  isSpiSchema,
  messageOfNamespace,
  parseAppHdr,
  parsePacs002,
  parsePacs004,
  parsePacs008,
  parsePibr001,
  parsePibr002,
} from '../../shared/iso20022/index.ts';
import type { AppHdr, CreditTransfer, PaymentReturn, ServiceLevel, TransactionStatus } from '../../shared/iso20022/index.ts';
// The module itself, not the folder's index: the inspection threads need no saga store.
import { readEntryQuery } from '../../shared/bcb-query/account-report.ts';
import { XmlParseError, parseXml } from '../../shared/xml/index.ts';
import { XmlSignatureError, verifySpi } from '../../shared/xmldsig/index.ts';
import type { TrustStore } from '../../shared/xmldsig/index.ts';
import type { EntryQueryContent } from './account-reports.ts';

/** Why a message is refused: becomes an admi.002 naming the problem. Plain data (crosses threads). */
export interface SpiFinding {
  readonly code: string;
  readonly message: string;
  /** XPath-like location of the problem, when known. */
  readonly location?: string;
}

/** The business content of a verified SPI message, as plain data. */
export type SpiContent =
  | {
      readonly type: 'pacs.008';
      readonly transactions: readonly CreditTransfer[];
      /** `SvcLvl/Prtry` (PAGPRI: a priority order, `InstrPrty` HIGH); absent when the message has none. */
      readonly serviceLevel?: ServiceLevel;
    }
  | { readonly type: 'pacs.002'; readonly statuses: readonly TransactionStatus[] }
  | { readonly type: 'pacs.004'; readonly returns: readonly PaymentReturn[] }
  | { readonly type: 'pibr.001'; readonly data: string }
  /** A participant's answer to the SPI's echo: `OrgnlData` repeats the pibr.001's `Data`. */
  | { readonly type: 'pibr.002'; readonly originalData: string }
  /** A participant asking for a report of its PI account (camt.060; issue 17). */
  | EntryQueryContent
  | { readonly type: 'unsupported'; readonly message: string }
  /** Reading the content failed unexpectedly (a defect): the processor raises it where it would have read the content. */
  | { readonly type: 'defect'; readonly message: string; readonly stack: string | undefined };

/**
 * What can be learnt from a posted SPI message without touching the simulator's state: the
 * parse, the header and type, the signature check and the parsed content. The findings are kept
 * apart so that the processor applies them in the BCB's order (the XSD check, which needs the
 * type, sits between the header and the signature), and so that the work can run on another
 * thread: everything here is plain data.
 */
export type SpiInspection =
  | { readonly ok: false; readonly finding: SpiFinding; readonly header?: AppHdr; readonly type?: string }
  | {
      readonly ok: true;
      readonly header: AppHdr;
      /** e.g. `pacs.008`. */
      readonly type: string;
      /** e.g. `pacs.008.spi.1.16`. */
      readonly schema: string;
      /** Set when the message does not conform to its XSD (then nothing else is checked). */
      readonly xsd: SpiFinding | undefined;
      /** Set when the signature does not verify (or its signer is not the sender's). */
      readonly signature: SpiFinding | undefined;
      /** The content, or why it cannot be read; absent when the XSD or the signature failed. */
      readonly content: SpiContent | SpiFinding | undefined;
    };

const SIGNATURE_LOCATION = '/Envelope/AppHdr/Sgntr';

/** A typed refusal of the message's content or structure (a bad amount, a missing element, …). */
function formatFinding(error: unknown): SpiFinding | undefined {
  return error instanceof PermanentError ? { code: error.code, message: error.message } : undefined;
}

function readContent(type: string, parts: ReturnType<typeof envelopeParts>): SpiContent {
  switch (type) {
    case 'pacs.008': {
      const message = parsePacs008(parts);
      return { type, transactions: message.transactions, ...(message.serviceLevel === undefined ? {} : { serviceLevel: message.serviceLevel }) };
    }
    case 'pacs.002':
      return { type, statuses: parsePacs002(parts).statuses };
    case 'pacs.004':
      return { type, returns: parsePacs004(parts).returns };
    case 'pibr.001':
      return { type, data: parsePibr001(parts).data };
    case 'pibr.002':
      return { type, originalData: parsePibr002(parts).originalData };
    case 'camt.060':
      return { type, ...readEntryQuery(parts.document) };
    default:
      return { type: 'unsupported', message: type };
  }
}

/**
 * Why `xml` does not conform to the XSD of `schema`, or `undefined` when it does or selo has no
 * XSD for it. Needs libxml2 loaded in this thread (`compileSpiSchemas`).
 */
function schemaFinding(xml: string, schema: string): SpiFinding | undefined {
  if (!isSpiSchema(schema)) return undefined;
  try {
    checkSpiSchema(xml, schema);
    return undefined;
  } catch (error) {
    if (!(error instanceof SchemaValidationError)) throw error;
    return { code: error.code, message: error.message, ...(error.violations[0] === undefined ? {} : { location: error.violations[0].path }) };
  }
}

/**
 * Adds the XSD check to an inspection made without it (on an inspection thread, which loads no
 * libxml2): the same result as {@link inspectSpiMessage} with `schemaValidation`, since a
 * message that does not conform keeps only its header, type and XSD finding.
 */
export function withSchemaCheck(xml: string, inspection: SpiInspection): SpiInspection {
  if (!inspection.ok || inspection.xsd !== undefined) return inspection;
  const xsd = schemaFinding(xml, inspection.schema);
  return xsd === undefined ? inspection : { ok: true, header: inspection.header, type: inspection.type, schema: inspection.schema, xsd, signature: undefined, content: undefined };
}

/**
 * Inspects one posted SPI message: parse, envelope and `AppHdr`, message type, signature
 * (verified against `trustStore`, signer bound to `AppHdr/Fr`), content; with `schemaValidation`,
 * the XSD (when selo has the message's) before the signature, as at the BCB. Expected problems
 * come back as findings; anything else (a defect) is thrown.
 */
export function inspectSpiMessage(xml: string, trustStore: TrustStore, options: { readonly schemaValidation: boolean }): SpiInspection {
  let parsed;
  try {
    parsed = parseXml(xml);
  } catch (error) {
    return { ok: false, finding: { code: error instanceof XmlParseError ? error.code : 'XML_INVALID', message: error instanceof Error ? error.message : String(error) } };
  }
  let parts: ReturnType<typeof envelopeParts>;
  let header: AppHdr;
  try {
    parts = envelopeParts(parsed);
    header = parseAppHdr(parts.appHdr);
  } catch (error) {
    const finding = formatFinding(error);
    if (finding === undefined) throw error;
    return { ok: false, finding };
  }
  const kind = messageOfNamespace(parts.document.namespaceUri);
  if (kind === undefined) {
    return { ok: false, header, finding: { code: 'MESSAGE_TYPE_UNKNOWN', message: `namespace ${JSON.stringify(parts.document.namespaceUri)} is not a SPI message`, location: '/Envelope/Document' } };
  }
  const schema = `${kind.message}.spi.${kind.version}`;
  if (options.schemaValidation) {
    const xsd = schemaFinding(xml, schema);
    if (xsd !== undefined) return { ok: true, header, type: kind.message, schema, xsd, signature: undefined, content: undefined };
  }
  try {
    const verified = verifySpi(parsed, { trustStore });
    parts = { appHdr: verified.appHdr, document: verified.document };
  } catch (error) {
    if (!(error instanceof XmlSignatureError)) throw error;
    return { ok: true, header, type: kind.message, schema, xsd: undefined, signature: { code: error.code, message: error.message, location: SIGNATURE_LOCATION }, content: undefined };
  }
  let content: SpiContent | SpiFinding;
  try {
    content = readContent(kind.message, parts);
  } catch (error) {
    content = formatFinding(error) ?? { type: 'defect', message: error instanceof Error ? error.message : String(error), stack: error instanceof Error ? error.stack : undefined };
  }
  return { ok: true, header, type: kind.message, schema, xsd: undefined, signature: undefined, content };
}
