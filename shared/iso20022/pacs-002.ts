import { childElementsNamed, findPath, parseXml, textContent } from '../xml/index.ts';
import type { XmlDocument, XmlElement } from '../xml/index.ts';
import { MessageFormatError, appHdrSpec, documentBody, optionalText, parseAppHdr, requiredText } from './app-hdr.ts';
import type { AppHdr } from './app-hdr.ts';
import { END_TO_END_ID, MESSAGE_ID } from './identifiers.ts';
import { SPI_MESSAGES, messageOfNamespace } from './namespaces.ts';
import { envelopeParts } from './pacs-008.ts';
import { el, writeXml } from './xml-writer.ts';
import type { XmlElementSpec } from './xml-writer.ts';

/** The status of one transaction (`TxInfAndSts`). */
export interface TransactionStatus {
  /** `OrgnlInstrId`: the EndToEndId (or RtrId) of the original instruction. */
  readonly originalInstructionId: string;
  readonly originalEndToEndId: string;
  /** `ACCC` settled, `ACSP` accepted by the PSP, `ACSC`, `RJCT` rejected. */
  readonly status: 'ACCC' | 'ACSC' | 'ACSP' | 'RJCT';
  /**
   * `StsRsnInf/Rsn/Cd` (e.g. `AB03`) and `AddtlInf`, for RJCT. Any length: a text longer than
   * {@link ADDITIONAL_INFORMATION_MAX_CHARS} is written as several `AddtlInf` and read back whole.
   */
  readonly reason?: { readonly code: string; readonly additionalInformation?: string };
  /** `FctvIntrBkSttlmDt/DtTm`, UTC with milliseconds. */
  readonly settlementDateTime?: string;
  /** `OrgnlTxRef/IntrBkSttlmDt`, `yyyy-MM-dd`. */
  readonly interbankSettlementDate?: string;
}

/** A pacs.002 (FIToFIPaymentStatusReport) with its header. */
export interface Pacs002 {
  readonly appHdr: Omit<AppHdr, 'msgDefIdr'> & { readonly msgDefIdr?: string };
  readonly msgId: string;
  readonly creDtTm: string;
  readonly statuses: readonly TransactionStatus[];
}

/** `AddtlInf` is a `Max105Text` (1 to 105 characters) that may repeat (`StatusReasonInformation12` in `pacs.002.spi.1.17.xsd`). */
export const ADDITIONAL_INFORMATION_MAX_CHARS = 105;

/**
 * `text` as consecutive `AddtlInf` elements of at most {@link ADDITIONAL_INFORMATION_MAX_CHARS}
 * characters (code points, as the XSD counts them), in order; none for an empty text, which
 * `Max105Text` (minLength 1) does not allow.
 */
function additionalInformation(text: string): XmlElementSpec[] {
  const characters = Array.from(text);
  const parts: XmlElementSpec[] = [];
  for (let start = 0; start < characters.length; start += ADDITIONAL_INFORMATION_MAX_CHARS) {
    parts.push(el('AddtlInf', characters.slice(start, start + ADDITIONAL_INFORMATION_MAX_CHARS).join('')));
  }
  return parts;
}

/**
 * Writes a pacs.002 SPI message (catalogue 5.13.1, version 1.17) with an empty `Sgntr`.
 *
 * @throws {@link MessageFormatError} when an identifier does not have the BCB format.
 */
export function buildPacs002(message: Pacs002): string {
  const spec = SPI_MESSAGES['pacs.002'];
  if (!MESSAGE_ID.test(message.msgId)) throw new MessageFormatError(`MsgId ${message.msgId} is not M + ISPB + 23 alphanumerics`);
  return writeXml(
    el(
      'Envelope',
      [
        appHdrSpec({ ...message.appHdr, msgDefIdr: message.appHdr.msgDefIdr ?? spec.msgDefIdr }),
        el('Document', [
          el('FIToFIPmtStsRpt', [
            el('GrpHdr', [el('MsgId', message.msgId), el('CreDtTm', message.creDtTm)]),
            ...message.statuses.map((s) => {
              if (!END_TO_END_ID.test(s.originalEndToEndId)) throw new MessageFormatError(`OrgnlEndToEndId ${s.originalEndToEndId} does not have the BCB format`);
              return el('TxInfAndSts', [
                el('OrgnlInstrId', s.originalInstructionId),
                el('OrgnlEndToEndId', s.originalEndToEndId),
                el('TxSts', s.status),
                s.reason === undefined
                  ? undefined
                  : el('StsRsnInf', [el('Rsn', [el('Cd', s.reason.code)]), ...additionalInformation(s.reason.additionalInformation ?? '')]),
                s.settlementDateTime === undefined ? undefined : el('FctvIntrBkSttlmDt', [el('DtTm', s.settlementDateTime)]),
                s.interbankSettlementDate === undefined ? undefined : el('OrgnlTxRef', [el('IntrBkSttlmDt', s.interbankSettlementDate)]),
              ]);
            }),
          ]),
        ]),
      ],
      { xmlns: spec.namespace },
    ),
  );
}

/**
 * Reads a pacs.002 from its verified `AppHdr` and `Document`, or from an envelope. Accepts any
 * pacs.002 namespace version the BCB sends.
 */
export function parsePacs002(input: { appHdr: XmlElement; document: XmlElement } | XmlDocument | string): Pacs002 {
  const { appHdr, document } = typeof input === 'string' || 'root' in input ? envelopeParts(typeof input === 'string' ? parseXml(input) : input) : input;
  if (messageOfNamespace(document.namespaceUri)?.message !== 'pacs.002') throw new MessageFormatError(`namespace ${document.namespaceUri} is not a pacs.002`);
  const body = documentBody(document, 'FIToFIPmtStsRpt');
  return {
    appHdr: parseAppHdr(appHdr),
    msgId: requiredText(body, ['GrpHdr', 'MsgId']),
    creDtTm: requiredText(body, ['GrpHdr', 'CreDtTm']),
    statuses: childElementsNamed(body, 'TxInfAndSts').map((tx): TransactionStatus => {
      const code = optionalText(tx, ['StsRsnInf', 'Rsn', 'Cd']);
      // Every AddtlInf, in order: a longer text is written as several (see additionalInformation).
      const reasonInformation = findPath(tx, ['StsRsnInf']);
      const info = reasonInformation === undefined ? undefined : childElementsNamed(reasonInformation, 'AddtlInf').map(textContent).join('').trim() || undefined;
      const settled = optionalText(tx, ['FctvIntrBkSttlmDt', 'DtTm']);
      const date = optionalText(tx, ['OrgnlTxRef', 'IntrBkSttlmDt']);
      return {
        originalInstructionId: requiredText(tx, ['OrgnlInstrId']),
        originalEndToEndId: requiredText(tx, ['OrgnlEndToEndId']),
        status: requiredText(tx, ['TxSts']) as TransactionStatus['status'],
        ...(code === undefined ? {} : { reason: { code, ...(info === undefined ? {} : { additionalInformation: info }) } }),
        ...(settled === undefined ? {} : { settlementDateTime: settled }),
        ...(date === undefined ? {} : { interbankSettlementDate: date }),
      };
    }),
  };
}
