import { PermanentError } from '../errors/index.ts';
import type { SeloErrorOptions } from '../errors/index.ts';
import { childElements, elementPath, findPath, textContent } from '../xml/index.ts';
import type { XmlElement } from '../xml/index.ts';
import { el } from './xml-writer.ts';
import type { XmlElementSpec } from './xml-writer.ts';

/** The business application header of a SPI message. */
export interface AppHdr {
  /** Sender ISPB (`Fr/FIId/FinInstnId/Othr/Id`). */
  readonly fromIspb: string;
  /** Receiver ISPB (`To/…`); messages to the SPI name the BCB, `00038166`. */
  readonly toIspb: string;
  /** `M` + ISPB + 23 alphanumerics. */
  readonly bizMsgIdr: string;
  /** e.g. `pacs.008.spi.1.16`. */
  readonly msgDefIdr: string;
  /** UTC with milliseconds. */
  readonly creDt: string;
}

/** A message that does not have the structure its type requires: `ISO20022_MESSAGE_INVALID`. */
export class MessageFormatError extends PermanentError {
  constructor(message: string, options?: SeloErrorOptions) {
    super('ISO20022_MESSAGE_INVALID', message, options);
  }
}

function fiId(ispb: string): XmlElementSpec {
  return el('FIId', [el('FinInstnId', [el('Othr', [el('Id', ispb)])])]);
}

/** The `AppHdr` element with an empty `Sgntr`, ready for shared/xmldsig's `signSpi`. */
export function appHdrSpec(header: AppHdr): XmlElementSpec {
  return el('AppHdr', [
    el('Fr', [fiId(header.fromIspb)]),
    el('To', [fiId(header.toIspb)]),
    el('BizMsgIdr', header.bizMsgIdr),
    el('MsgDefIdr', header.msgDefIdr),
    el('CreDt', header.creDt),
    el('Sgntr'),
  ]);
}

/** The text of the element at `path` under `from`; throws naming the path when absent. */
export function requiredText(from: XmlElement, path: readonly string[]): string {
  const element = findPath(from, path);
  if (element === undefined) throw new MessageFormatError(`${elementPath(from)}/${path.join('/')} is missing`);
  return textContent(element).trim();
}

/** The text of the element at `path`, or undefined. */
export function optionalText(from: XmlElement, path: readonly string[]): string | undefined {
  const element = findPath(from, path);
  return element === undefined ? undefined : textContent(element).trim();
}

/** Reads an `AppHdr` element. */
export function parseAppHdr(appHdr: XmlElement): AppHdr {
  return {
    fromIspb: requiredText(appHdr, ['Fr', 'FIId', 'FinInstnId', 'Othr', 'Id']),
    toIspb: requiredText(appHdr, ['To', 'FIId', 'FinInstnId', 'Othr', 'Id']),
    bizMsgIdr: requiredText(appHdr, ['BizMsgIdr']),
    msgDefIdr: requiredText(appHdr, ['MsgDefIdr']),
    creDt: requiredText(appHdr, ['CreDt']),
  };
}

/** The single child of `Document` (e.g. `FIToFICstmrCdtTrf`), checking its name. */
export function documentBody(document: XmlElement, expected: string): XmlElement {
  const [body, extra] = childElements(document);
  if (body === undefined || extra !== undefined || body.localName !== expected) {
    throw new MessageFormatError(`${elementPath(document)} must hold exactly one ${expected}`);
  }
  return body;
}
