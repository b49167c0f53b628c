import { childElementsNamed, elementPath, textContent } from '../xml/index.ts';
import { amountToCents, normalizeAmount } from './amount.ts';
import { MessageFormatError } from './app-hdr.ts';
import { END_TO_END_ID, MESSAGE_ID, RETURN_ID } from './identifiers.ts';
import {
  ISPB_PATTERN,
  SPI_DATE_TIME,
  checkFormat,
  checkLength,
  optionalBounded,
  optionalFormatted,
  readSpiMessage,
  requiredAmount,
  requiredFormatted,
  single,
  writeSpiEnvelope,
} from './spi-message.ts';
import type { AppHdrInput, SpiMessageInput } from './spi-message.ts';
import { el } from './xml-writer.ts';
import type { XmlElementSpec } from './xml-writer.ts';

/**
 * Return reasons of the SPI pacs.004 (`RtrRsnInf/Rsn/Cd`): `BE08` bank error, `FR01` fraud,
 * `MD06` refund requested by the end customer, `SL02` specific service of the creditor agent
 * (withdrawal / change services).
 */
export type ReturnReasonCode = 'BE08' | 'FR01' | 'MD06' | 'SL02';

/** The return reasons the catalogue allows. */
export const RETURN_REASON_CODES: readonly ReturnReasonCode[] = ['BE08', 'FR01', 'MD06', 'SL02'];

/** One returned transaction (`TxInf`). */
export interface PaymentReturn {
  /** `RtrId`: `D` + ISPB + `yyyyMMddHHmm` + 11 alphanumerics (see `generateReturnId`). */
  readonly returnId: string;
  /** `OrgnlEndToEndId`: the EndToEndId of the pacs.008 being returned. */
  readonly originalEndToEndId: string;
  /** `RtrdIntrBkSttlmAmt` in BRL, a decimal string (`"10.5"` is written `10.50`); never a float, greater than zero. */
  readonly amount: string;
  /** `SttlmPrty`. @defaultValue `HIGH` when building */
  readonly settlementPriority?: 'HIGH' | 'NORM';
  /** `RtrRsnInf`: the reason code and optional `AddtlInf` (1–105 characters). */
  readonly reason: { readonly code: ReturnReasonCode; readonly additionalInformation?: string };
  /** `OrgnlTxRef/RmtInf/Ustrd` (1–140 characters). */
  readonly remittanceInformation?: string;
  /** `OrgnlTxRef/DbtrAgt`: ISPB of the PSP paying the return (the original payment's creditor agent). */
  readonly debtorAgentIspb: string;
  /** `OrgnlTxRef/CdtrAgt`: ISPB of the PSP receiving the return (the original payment's debtor agent). */
  readonly creditorAgentIspb: string;
}

/** A pacs.004 (PaymentReturn) with its header. */
export interface Pacs004 {
  readonly appHdr: AppHdrInput;
  /** `GrpHdr/MsgId`: `M` + ISPB + 23 alphanumerics. */
  readonly msgId: string;
  /** `GrpHdr/CreDtTm`, UTC with milliseconds. */
  readonly creDtTm: string;
  /** At least one return (`TxInf`); `NbOfTxs` is their count. */
  readonly returns: readonly PaymentReturn[];
}

function agent(name: string, ispb: string): XmlElementSpec {
  return el(name, [el('FinInstnId', [el('ClrSysMmbId', [el('MmbId', ispb)])])]);
}

function positiveAmount(amount: string, path: string): string {
  let normalized: string;
  try {
    normalized = normalizeAmount(amount);
  } catch (error) {
    throw new MessageFormatError(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (amountToCents(normalized) === 0n) throw new MessageFormatError(`${path}: a returned amount is greater than zero`);
  return normalized;
}

function checkReturn(tx: PaymentReturn, path: string): void {
  checkFormat(tx.returnId, RETURN_ID, `${path}/RtrId`, 'D + ISPB + yyyyMMddHHmm + 11 alphanumerics');
  checkFormat(tx.originalEndToEndId, END_TO_END_ID, `${path}/OrgnlEndToEndId`, 'E + ISPB + yyyyMMddHHmm + 11 alphanumerics');
  if (!RETURN_REASON_CODES.includes(tx.reason.code)) throw new MessageFormatError(`${path}/RtrRsnInf/Rsn/Cd: ${JSON.stringify(tx.reason.code)} is not one of ${RETURN_REASON_CODES.join(', ')}`);
  if (tx.reason.additionalInformation !== undefined) checkLength(tx.reason.additionalInformation, 105, `${path}/RtrRsnInf/AddtlInf`);
  if (tx.remittanceInformation !== undefined) checkLength(tx.remittanceInformation, 140, `${path}/OrgnlTxRef/RmtInf/Ustrd`);
  checkFormat(tx.debtorAgentIspb, ISPB_PATTERN, `${path}/OrgnlTxRef/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId`, 'an ISPB (8 characters [0-9A-Z])');
  checkFormat(tx.creditorAgentIspb, ISPB_PATTERN, `${path}/OrgnlTxRef/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId`, 'an ISPB (8 characters [0-9A-Z])');
}

/**
 * Writes a pacs.004 SPI message (PaymentReturn, catalogue 5.13.1, version 1.5) with an empty
 * `Sgntr`, ready for shared/xmldsig's `signSpi`. Amounts are normalized to two decimals.
 *
 * The pacs.004 XSD is not in the project (the copy of the catalogue in shared/spec lacks it), so
 * this output cannot be checked with `validateSpiMessage`; the builder checks instead every
 * identifier, amount, code and length the catalogue constrains, with the element path in the
 * error.
 *
 * @throws {@link MessageFormatError} naming the offending element.
 */
export function buildPacs004(message: Pacs004): string {
  checkFormat(message.msgId, MESSAGE_ID, 'PmtRtr/GrpHdr/MsgId', 'M + ISPB + 23 alphanumerics');
  checkFormat(message.creDtTm, SPI_DATE_TIME, 'PmtRtr/GrpHdr/CreDtTm', 'a UTC date-time with milliseconds');
  if (message.returns.length < 1) throw new MessageFormatError('PmtRtr/TxInf: a pacs.004 has at least one return');
  const transactions = message.returns.map((tx, index) => {
    const path = `PmtRtr/TxInf[${index + 1}]`;
    checkReturn(tx, path);
    return el('TxInf', [
      el('RtrId', tx.returnId),
      el('OrgnlEndToEndId', tx.originalEndToEndId),
      el('RtrdIntrBkSttlmAmt', positiveAmount(tx.amount, `${path}/RtrdIntrBkSttlmAmt`), { Ccy: 'BRL' }),
      el('SttlmPrty', tx.settlementPriority ?? 'HIGH'),
      el('ChrgBr', 'SLEV'),
      el('RtrRsnInf', [el('Rsn', [el('Cd', tx.reason.code)]), tx.reason.additionalInformation === undefined ? undefined : el('AddtlInf', tx.reason.additionalInformation)]),
      el('OrgnlTxRef', [
        tx.remittanceInformation === undefined ? undefined : el('RmtInf', [el('Ustrd', tx.remittanceInformation)]),
        agent('DbtrAgt', tx.debtorAgentIspb),
        agent('CdtrAgt', tx.creditorAgentIspb),
      ]),
    ]);
  });
  return writeSpiEnvelope(
    'pacs.004',
    message.appHdr,
    el('PmtRtr', [
      el('GrpHdr', [
        el('MsgId', message.msgId),
        el('CreDtTm', message.creDtTm),
        el('NbOfTxs', String(message.returns.length)),
        el('SttlmInf', [el('SttlmMtd', 'CLRG')]),
      ]),
      ...transactions,
    ]),
  );
}

const MMB_ID = ['FinInstnId', 'ClrSysMmbId', 'MmbId'] as const;

/**
 * Reads a pacs.004 from its verified `AppHdr` and `Document` (what `verifySpi` returns), or from
 * a parsed or textual envelope; any pacs.004 namespace version is accepted.
 *
 * With no official XSD in the project, the parser validates the structure itself: required
 * elements, identifier formats (MsgId, RtrId, OrgnlEndToEndId, ISPBs), BRL amounts greater than
 * zero, reason codes, `NbOfTxs` equal to the number of `TxInf`, and the lengths the catalogue
 * sets. `SttlmPrty` is optional on input (1.5 requires it; older versions may not send it).
 *
 * @throws {@link MessageFormatError} naming the path of the offending element.
 */
export function parsePacs004(input: SpiMessageInput): Pacs004 {
  const { appHdr, body } = readSpiMessage(input, 'pacs.004', 'PmtRtr');
  const groupHeader = single(body, 'GrpHdr');
  const msgId = requiredFormatted(groupHeader, ['MsgId'], MESSAGE_ID, 'M + ISPB + 23 alphanumerics');
  const creDtTm = requiredFormatted(groupHeader, ['CreDtTm'], SPI_DATE_TIME, 'a UTC date-time with milliseconds');
  const count = requiredFormatted(groupHeader, ['NbOfTxs'], /^[0-9]{1,15}$/, 'a count');
  requiredFormatted(groupHeader, ['SttlmInf', 'SttlmMtd'], /^CLRG$/, 'CLRG');
  const elements = childElementsNamed(body, 'TxInf');
  if (elements.length === 0) throw new MessageFormatError(`${elementPath(body)}/TxInf is missing`);
  if (Number(count) !== elements.length) throw new MessageFormatError(`${elementPath(groupHeader)}/NbOfTxs: says ${count} but the message holds ${elements.length} TxInf`);
  const returns = elements.map((tx): PaymentReturn => {
    const amountElement = single(tx, 'RtrdIntrBkSttlmAmt');
    const amount = requiredAmount(tx, 'RtrdIntrBkSttlmAmt');
    if (amountToCents(amount) === 0n) throw new MessageFormatError(`${elementPath(amountElement)}: a returned amount is greater than zero (got ${textContent(amountElement).trim()})`);
    const priority = optionalFormatted(tx, ['SttlmPrty'], /^(HIGH|NORM)$/, 'HIGH or NORM');
    optionalFormatted(tx, ['ChrgBr'], /^SLEV$/, 'SLEV');
    const code = requiredFormatted(tx, ['RtrRsnInf', 'Rsn', 'Cd'], /^(BE08|FR01|MD06|SL02)$/, `one of ${RETURN_REASON_CODES.join(', ')}`) as ReturnReasonCode;
    const additionalInformation = optionalBounded(tx, ['RtrRsnInf', 'AddtlInf'], 105);
    const remittance = optionalBounded(tx, ['OrgnlTxRef', 'RmtInf', 'Ustrd'], 140);
    return {
      returnId: requiredFormatted(tx, ['RtrId'], RETURN_ID, 'D + ISPB + yyyyMMddHHmm + 11 alphanumerics'),
      originalEndToEndId: requiredFormatted(tx, ['OrgnlEndToEndId'], END_TO_END_ID, 'E + ISPB + yyyyMMddHHmm + 11 alphanumerics'),
      amount,
      ...(priority === undefined ? {} : { settlementPriority: priority as 'HIGH' | 'NORM' }),
      reason: { code, ...(additionalInformation === undefined ? {} : { additionalInformation }) },
      ...(remittance === undefined ? {} : { remittanceInformation: remittance }),
      debtorAgentIspb: requiredFormatted(tx, ['OrgnlTxRef', 'DbtrAgt', ...MMB_ID], ISPB_PATTERN, 'an ISPB (8 characters [0-9A-Z])'),
      creditorAgentIspb: requiredFormatted(tx, ['OrgnlTxRef', 'CdtrAgt', ...MMB_ID], ISPB_PATTERN, 'an ISPB (8 characters [0-9A-Z])'),
    };
  });
  return { appHdr, msgId, creDtTm, returns };
}
