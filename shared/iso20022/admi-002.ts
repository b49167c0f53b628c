import { SPI_DATE_TIME, checkFormat, checkLength, optionalBounded, optionalFormatted, readSpiMessage, requiredBounded, single, writeSpiEnvelope } from './spi-message.ts';
import type { AppHdrInput, SpiMessageInput } from './spi-message.ts';
import { el } from './xml-writer.ts';

/** Why a message was rejected (`Rsn`). */
export interface RejectionReason {
  /** `RjctgPtyRsn`: the rejecting party's reason code (1–35 characters). */
  readonly code: string;
  /** `RjctnDtTm`: when it was rejected, UTC with milliseconds. */
  readonly rejectionDateTime?: string;
  /** `ErrLctn`: where in the rejected message the error is (1–350 characters). */
  readonly errorLocation?: string;
  /** `RsnDesc`: the description of the reason (1–350 characters). */
  readonly description?: string;
  /** `AddtlData`: further detail (1–1000 characters). */
  readonly additionalData?: string;
}

/**
 * An admi.002 (MessageReject, body element `admi.002.001.01`): the SPI's notice that a message
 * it accepted over ICOM (HTTP 201) failed schema, signature or business checks afterwards.
 */
export interface Admi002 {
  readonly appHdr: AppHdrInput;
  /** `RltdRef/Ref`: the BizMsgIdr of the rejected message (1–33 characters). */
  readonly rejectedBizMsgIdr: string;
  readonly reason: RejectionReason;
}

/**
 * Writes an admi.002 (catalogue 5.13.1, version 1.5) with an empty `Sgntr`. admi.002 has no
 * `GrpHdr`: its identifier is the AppHdr's BizMsgIdr.
 *
 * The admi.002 XSD is not in the project, so the output cannot be checked with
 * `validateSpiMessage`; the builder checks the header, the lengths and the date-time format.
 *
 * @throws {@link MessageFormatError} naming the offending element.
 */
export function buildAdmi002(message: Admi002): string {
  const body = 'admi.002.001.01';
  const reason = message.reason;
  checkLength(message.rejectedBizMsgIdr, 33, `${body}/RltdRef/Ref`);
  checkLength(reason.code, 35, `${body}/Rsn/RjctgPtyRsn`);
  if (reason.rejectionDateTime !== undefined) checkFormat(reason.rejectionDateTime, SPI_DATE_TIME, `${body}/Rsn/RjctnDtTm`, 'a UTC date-time with milliseconds');
  if (reason.errorLocation !== undefined) checkLength(reason.errorLocation, 350, `${body}/Rsn/ErrLctn`);
  if (reason.description !== undefined) checkLength(reason.description, 350, `${body}/Rsn/RsnDesc`);
  if (reason.additionalData !== undefined) checkLength(reason.additionalData, 1000, `${body}/Rsn/AddtlData`);
  return writeSpiEnvelope(
    'admi.002',
    message.appHdr,
    el(body, [
      el('RltdRef', [el('Ref', message.rejectedBizMsgIdr)]),
      el('Rsn', [
        el('RjctgPtyRsn', reason.code),
        reason.rejectionDateTime === undefined ? undefined : el('RjctnDtTm', reason.rejectionDateTime),
        reason.errorLocation === undefined ? undefined : el('ErrLctn', reason.errorLocation),
        reason.description === undefined ? undefined : el('RsnDesc', reason.description),
        reason.additionalData === undefined ? undefined : el('AddtlData', reason.additionalData),
      ]),
    ]),
  );
}

/**
 * Reads an admi.002 from its verified `AppHdr` and `Document`, or from an envelope; any
 * admi.002 namespace version is accepted. With no official XSD in the project, the parser
 * checks the structure itself (required `RltdRef/Ref` and `Rsn/RjctgPtyRsn`, lengths, date-time).
 *
 * @throws {@link MessageFormatError} naming the path of the offending element.
 */
export function parseAdmi002(input: SpiMessageInput): Admi002 {
  const { appHdr, body } = readSpiMessage(input, 'admi.002', 'admi.002.001.01');
  const rsn = single(body, 'Rsn');
  const rejectionDateTime = optionalFormatted(rsn, ['RjctnDtTm'], SPI_DATE_TIME, 'a UTC date-time with milliseconds');
  const errorLocation = optionalBounded(rsn, ['ErrLctn'], 350);
  const description = optionalBounded(rsn, ['RsnDesc'], 350);
  const additionalData = optionalBounded(rsn, ['AddtlData'], 1000);
  return {
    appHdr,
    rejectedBizMsgIdr: requiredBounded(single(body, 'RltdRef'), ['Ref'], 33),
    reason: {
      code: requiredBounded(rsn, ['RjctgPtyRsn'], 35),
      ...(rejectionDateTime === undefined ? {} : { rejectionDateTime }),
      ...(errorLocation === undefined ? {} : { errorLocation }),
      ...(description === undefined ? {} : { description }),
      ...(additionalData === undefined ? {} : { additionalData }),
    },
  };
}
