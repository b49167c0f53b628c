import { MESSAGE_ID } from './identifiers.ts';
import { SPI_DATE_TIME, checkFormat, checkLength, readSpiMessage, requiredBounded, requiredFormatted, single, writeSpiEnvelope } from './spi-message.ts';
import type { AppHdrInput, SpiMessageInput } from './spi-message.ts';
import { el } from './xml-writer.ts';

/** A pibr.001 (echo request, `EchoReq`): a connectivity test the SPI answers with a pibr.002. */
export interface Pibr001 {
  readonly appHdr: AppHdrInput;
  /** `GrpHdr/MsgId`: `M` + ISPB + 23 alphanumerics. */
  readonly msgId: string;
  /** `GrpHdr/CreDtTm`, UTC with milliseconds. */
  readonly creDtTm: string;
  /** `EchoTxInf/Data`: free text (1–35 characters) the answer echoes back. */
  readonly data: string;
}

/**
 * Writes a pibr.001 echo request (catalogue 5.13.1, version 1.3) with an empty `Sgntr`.
 *
 * The pibr.001 XSD is not in the project, so the output cannot be checked with
 * `validateSpiMessage`; the builder checks the identifiers, date-time and length of `Data`.
 *
 * @throws {@link MessageFormatError} naming the offending element.
 */
export function buildPibr001(message: Pibr001): string {
  checkFormat(message.msgId, MESSAGE_ID, 'EchoReq/GrpHdr/MsgId', 'M + ISPB + 23 alphanumerics');
  checkFormat(message.creDtTm, SPI_DATE_TIME, 'EchoReq/GrpHdr/CreDtTm', 'a UTC date-time with milliseconds');
  checkLength(message.data, 35, 'EchoReq/EchoTxInf/Data');
  return writeSpiEnvelope('pibr.001', message.appHdr, el('EchoReq', [el('GrpHdr', [el('MsgId', message.msgId), el('CreDtTm', message.creDtTm)]), el('EchoTxInf', [el('Data', message.data)])]));
}

/**
 * Reads a pibr.001 from its verified `AppHdr` and `Document`, or from an envelope; any pibr.001
 * namespace version is accepted. With no official XSD in the project, the parser checks the
 * structure itself (required elements, MsgId and date-time formats, `Data` 1–35 characters).
 *
 * @throws {@link MessageFormatError} naming the path of the offending element.
 */
export function parsePibr001(input: SpiMessageInput): Pibr001 {
  const { appHdr, body } = readSpiMessage(input, 'pibr.001', 'EchoReq');
  const groupHeader = single(body, 'GrpHdr');
  return {
    appHdr,
    msgId: requiredFormatted(groupHeader, ['MsgId'], MESSAGE_ID, 'M + ISPB + 23 alphanumerics'),
    creDtTm: requiredFormatted(groupHeader, ['CreDtTm'], SPI_DATE_TIME, 'a UTC date-time with milliseconds'),
    data: requiredBounded(single(body, 'EchoTxInf'), ['Data'], 35),
  };
}
