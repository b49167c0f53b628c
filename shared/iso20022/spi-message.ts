import { childElements, childElementsNamed, elementPath, findPath, getAttribute, parseXml, textContent } from '../xml/index.ts';
import type { XmlDocument, XmlElement } from '../xml/index.ts';
import { normalizeAmount } from './amount.ts';
import { MessageFormatError, appHdrSpec, documentBody, parseAppHdr } from './app-hdr.ts';
import type { AppHdr } from './app-hdr.ts';
import { MESSAGE_ID } from './identifiers.ts';
import { SPI_MESSAGES, messageOfNamespace } from './namespaces.ts';
import type { SpiMessageType } from './namespaces.ts';
import { envelopeParts } from './pacs-008.ts';
import { el, writeXml } from './xml-writer.ts';
import type { XmlElementSpec } from './xml-writer.ts';

/**
 * What a SPI parser reads: the verified `AppHdr` and `Document` that shared/xmldsig's
 * `verifySpi` returns, a parsed envelope, or its text.
 */
export type SpiMessageInput = { readonly appHdr: XmlElement; readonly document: XmlElement } | XmlDocument | string;

/** The header fields a builder takes (`msgDefIdr` defaults to the version selo writes). */
export type AppHdrInput = Omit<AppHdr, 'msgDefIdr'> & { readonly msgDefIdr?: string };

/** ISONormalisedDateTime as the SPI writes it: UTC with milliseconds. */
export const SPI_DATE_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
/** An ISPB. */
export const ISPB_PATTERN = /^[0-9A-Z]{8}$/;

/** The `AppHdr` and `Document` of any accepted input. */
export function spiMessageParts(input: SpiMessageInput): { appHdr: XmlElement; document: XmlElement } {
  if (typeof input === 'string') return envelopeParts(parseXml(input));
  if ('root' in input) return envelopeParts(input);
  return input;
}

/**
 * The parts of a message of type `message` (any namespace version) whose `Document` holds
 * exactly one `bodyName`; the header is read and its identifiers and date checked.
 */
export function readSpiMessage(input: SpiMessageInput, message: string, bodyName: string): { appHdr: AppHdr; body: XmlElement; version: string } {
  const { appHdr, document } = spiMessageParts(input);
  const kind = messageOfNamespace(document.namespaceUri);
  if (kind?.message !== message) throw new MessageFormatError(`${elementPath(document)}: namespace ${JSON.stringify(document.namespaceUri)} is not a ${message}`);
  const header = parseAppHdr(appHdr);
  checkFormat(header.bizMsgIdr, MESSAGE_ID, `${elementPath(appHdr)}/BizMsgIdr`, 'M + ISPB + 23 alphanumerics');
  checkFormat(header.fromIspb, ISPB_PATTERN, `${elementPath(appHdr)}/Fr/FIId/FinInstnId/Othr/Id`, 'an ISPB (8 characters [0-9A-Z])');
  checkFormat(header.toIspb, ISPB_PATTERN, `${elementPath(appHdr)}/To/FIId/FinInstnId/Othr/Id`, 'an ISPB (8 characters [0-9A-Z])');
  checkFormat(header.creDt, SPI_DATE_TIME, `${elementPath(appHdr)}/CreDt`, 'a UTC date-time with milliseconds');
  return { appHdr: header, body: documentBody(document, bodyName), version: kind.version };
}

/** Throws a {@link MessageFormatError} naming `path` when `value` does not match `pattern`. */
export function checkFormat(value: string, pattern: RegExp, path: string, expected: string): string {
  if (!pattern.test(value)) throw new MessageFormatError(`${path}: ${JSON.stringify(value)} is not ${expected}`);
  return value;
}

/** Throws naming `path` when `value` is not 1..`max` characters. */
export function checkLength(value: string, max: number, path: string): string {
  if (value.length < 1 || value.length > max) throw new MessageFormatError(`${path}: must be 1 to ${max} characters, got ${value.length}`);
  return value;
}

/** The element at `path` under `from`; throws naming the full path when absent. */
export function requiredElement(from: XmlElement, path: readonly string[]): XmlElement {
  const element = findPath(from, path);
  if (element === undefined) throw new MessageFormatError(`${elementPath(from)}/${path.join('/')} is missing`);
  return element;
}

/** The trimmed text at `path`, checked against `pattern`; errors name the path. */
export function requiredFormatted(from: XmlElement, path: readonly string[], pattern: RegExp, expected: string): string {
  const element = requiredElement(from, path);
  return checkFormat(textContent(element).trim(), pattern, elementPath(element), expected);
}

/** The trimmed text at `path`, 1..`max` characters; errors name the path. */
export function requiredBounded(from: XmlElement, path: readonly string[], max: number): string {
  const element = requiredElement(from, path);
  return checkLength(textContent(element).trim(), max, elementPath(element));
}

/** Like {@link requiredBounded}, or undefined when the element is absent. */
export function optionalBounded(from: XmlElement, path: readonly string[], max: number): string | undefined {
  const element = findPath(from, path);
  return element === undefined ? undefined : checkLength(textContent(element).trim(), max, elementPath(element));
}

/** Like {@link requiredFormatted}, or undefined when the element is absent. */
export function optionalFormatted(from: XmlElement, path: readonly string[], pattern: RegExp, expected: string): string | undefined {
  const element = findPath(from, path);
  return element === undefined ? undefined : checkFormat(textContent(element).trim(), pattern, elementPath(element), expected);
}

/** A BRL amount element (`Ccy="BRL"`, decimal text), normalized to two decimals; errors name the path. */
export function requiredAmount(from: XmlElement, name: string): string {
  const element = requiredElement(from, [name]);
  const path = elementPath(element);
  if (getAttribute(element, 'Ccy') !== 'BRL') throw new MessageFormatError(`${path}: Ccy must be BRL`);
  try {
    return normalizeAmount(textContent(element).trim());
  } catch (error) {
    throw new MessageFormatError(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Checks that `parent` has no child elements other than `allowed` (the structure the catalogue defines). */
export function onlyChildren(parent: XmlElement, allowed: readonly string[]): void {
  for (const child of childElements(parent)) {
    if (!allowed.includes(child.localName)) throw new MessageFormatError(`${elementPath(child)} is not allowed here`);
  }
}

/** Checks that `parent` has exactly one child element called `name`. */
export function single(parent: XmlElement, name: string): XmlElement {
  const found = childElementsNamed(parent, name);
  const [first] = found;
  if (first === undefined) throw new MessageFormatError(`${elementPath(parent)}/${name} is missing`);
  if (found.length > 1) throw new MessageFormatError(`${elementPath(parent)}: ${name} occurs ${found.length} times, at most once allowed`);
  return first;
}

/** Writes `Envelope(AppHdr, Document(body))` in the namespace of `type`, with an empty `Sgntr`. */
export function writeSpiEnvelope(type: SpiMessageType, header: AppHdrInput, body: XmlElementSpec): string {
  const spec = SPI_MESSAGES[type];
  checkFormat(header.bizMsgIdr, MESSAGE_ID, 'AppHdr/BizMsgIdr', 'M + ISPB + 23 alphanumerics');
  checkFormat(header.fromIspb, ISPB_PATTERN, 'AppHdr/Fr/FIId/FinInstnId/Othr/Id', 'an ISPB (8 characters [0-9A-Z])');
  checkFormat(header.toIspb, ISPB_PATTERN, 'AppHdr/To/FIId/FinInstnId/Othr/Id', 'an ISPB (8 characters [0-9A-Z])');
  checkFormat(header.creDt, SPI_DATE_TIME, 'AppHdr/CreDt', 'a UTC date-time with milliseconds');
  return writeXml(el('Envelope', [appHdrSpec({ ...header, msgDefIdr: header.msgDefIdr ?? spec.msgDefIdr }), el('Document', [body])], { xmlns: spec.namespace }));
}
