import { MESSAGE_ID } from './identifiers.ts';
import { SPI_DATE_TIME, checkFormat, checkLength, readSpiMessage, requiredBounded, requiredFormatted, single, writeSpiEnvelope } from './spi-message.ts';
import type { AppHdrInput, SpiMessageInput } from './spi-message.ts';
import { el } from './xml-writer.ts';

/** A pibr.002 (echo answer, `EchoRpt`): the answer to a pibr.001. */
export interface Pibr002 {
  readonly appHdr: AppHdrInput;
  /** `GrpHdr/MsgId`: `M` + ISPB + 23 alphanumerics. */
  readonly msgId: string;
  /** `GrpHdr/CreDtTm`, UTC with milliseconds. */
  readonly creDtTm: string;
  /** `EchoTxInf/OrgnlData`: the `Data` of the pibr.001 answered (1–35 characters). */
  readonly originalData: string;
}

/**
 * Writes a pibr.002 echo answer (catalogue 5.13.1, version 1.3) with an empty `Sgntr`.
 *
 * The pibr.002 XSD is not in the project, so the output cannot be checked with
 * `validateSpiMessage`; the builder checks the identifiers, date-time and length of `OrgnlData`.
 *
 * @throws {@link MessageFormatError} naming the offending element.
 */
export function buildPibr002(message: Pibr002): string {
  checkFormat(message.msgId, MESSAGE_ID, 'EchoRpt/GrpHdr/MsgId', 'M + ISPB + 23 alphanumerics');
  checkFormat(message.creDtTm, SPI_DATE_TIME, 'EchoRpt/GrpHdr/CreDtTm', 'a UTC date-time with milliseconds');
  checkLength(message.originalData, 35, 'EchoRpt/EchoTxInf/OrgnlData');
  return writeSpiEnvelope('pibr.002', message.appHdr, el('EchoRpt', [el('GrpHdr', [el('MsgId', message.msgId), el('CreDtTm', message.creDtTm)]), el('EchoTxInf', [el('OrgnlData', message.originalData)])]));
}

/**
 * Reads a pibr.002 from its verified `AppHdr` and `Document`, or from an envelope; any pibr.002
 * namespace version is accepted. With no official XSD in the project, the parser checks the
 * structure itself (required elements, MsgId and date-time formats, `OrgnlData` 1–35 characters).
 *
 * @throws {@link MessageFormatError} naming the path of the offending element.
 */
export function parsePibr002(input: SpiMessageInput): Pibr002 {
  const { appHdr, body } = readSpiMessage(input, 'pibr.002', 'EchoRpt');
  const groupHeader = single(body, 'GrpHdr');
  return {
    appHdr,
    msgId: requiredFormatted(groupHeader, ['MsgId'], MESSAGE_ID, 'M + ISPB + 23 alphanumerics'),
    creDtTm: requiredFormatted(groupHeader, ['CreDtTm'], SPI_DATE_TIME, 'a UTC date-time with milliseconds'),
    originalData: requiredBounded(single(body, 'EchoTxInf'), ['OrgnlData'], 35),
  };
}
