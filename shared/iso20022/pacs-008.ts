import { childElementsNamed, getAttribute, parseXml } from '../xml/index.ts';
import type { XmlDocument, XmlElement } from '../xml/index.ts';
import { normalizeAmount } from './amount.ts';
import { MessageFormatError, appHdrSpec, documentBody, optionalText, parseAppHdr, requiredText } from './app-hdr.ts';
import type { AppHdr } from './app-hdr.ts';
import { END_TO_END_ID, MESSAGE_ID } from './identifiers.ts';
import { SPI_MESSAGES, messageOfNamespace } from './namespaces.ts';
import { el, writeXml } from './xml-writer.ts';
import type { XmlElementSpec } from './xml-writer.ts';

/** A BCB account (`Id/Othr/Id`, branch in `Issr`, type in `Tp/Cd`). */
export interface SpiAccount {
  readonly number: string;
  /** Branch (`Issr`, up to 4 digits). */
  readonly branch?: string;
  /** `CACC`, `SVGS`, `SLRY`, `TRAN`, `OTHR`. */
  readonly type: 'CACC' | 'SVGS' | 'SLRY' | 'TRAN' | 'OTHR';
}

/** `ExternalPurpose1Code` of the pacs.008 1.16 XSD (shared/spec/spi-5.13.1/xsd/pacs.008.spi.1.16.xsd). */
export const PURPOSE_CODES = ['GSCB', 'IPAY', 'IPRT', 'OTHR', 'REFU'] as const;
/** A `Purp/Cd` value. */
export type PurposeCode = (typeof PURPOSE_CODES)[number];

/**
 * `GrpHdr/PmtTpInf/InstrPrty` (`Priority2Code`: HIGH, NORM) with `SvcLvl/Prtry` (`PrtrySvcLvlCode`:
 * PAGPRI, PAGAGD, PAGFRD) in the pacs.008 1.16 XSD. The catalogue pairs them (restated in
 * apolzek/open-pix docs/reference/iso-messages.md, GroupHeader): PAGPRI (instant) with HIGH,
 * PAGAGD (scheduled) and PAGFRD (held for fraud analysis) with NORM; only those pairs are offered.
 */
export const PAYMENT_PRIORITIES = {
  PAGPRI: 'HIGH',
  PAGAGD: 'NORM',
  PAGFRD: 'NORM',
} as const satisfies Readonly<Record<string, 'HIGH' | 'NORM'>>;
/** A `SvcLvl/Prtry` value; its `InstrPrty` follows from {@link PAYMENT_PRIORITIES}. */
export type ServiceLevel = keyof typeof PAYMENT_PRIORITIES;

/** One credit transfer (`CdtTrfTxInf`). */
export interface CreditTransfer {
  readonly endToEndId: string;
  /** Decimal string in BRL, e.g. `"1000.00"`; never a float. */
  readonly amount: string;
  /** UTC with milliseconds. */
  readonly acceptanceDateTime: string;
  /** `MndtRltdInf/Tp/LclInstrm/Prtry`: MANU, DICT, QRDN, QRES, INIC, AUTO, APDN, APES. */
  readonly localInstrument: 'MANU' | 'DICT' | 'QRDN' | 'QRES' | 'INIC' | 'AUTO' | 'APDN' | 'APES';
  readonly txId?: string;
  readonly debtor: { readonly name: string; readonly taxId: string };
  readonly debtorAccount: SpiAccount;
  readonly debtorAgentIspb: string;
  readonly creditorAgentIspb: string;
  readonly creditor: { readonly taxId: string };
  readonly creditorAccount: SpiAccount & { readonly proxy?: string };
  /**
   * `Purp/Cd`, required by the pacs.008 1.16 XSD (`CreditTransferTransaction43/Purp`, no
   * minOccurs="0"), one of its `ExternalPurpose1Code` values: {@link PURPOSE_CODES}.
   */
  readonly purpose: PurposeCode;
  /** `RmtInf/Ustrd`. */
  readonly remittanceInformation?: string;
}

/** A pacs.008 (FIToFICustomerCreditTransfer) with its header. */
export interface Pacs008 {
  readonly appHdr: Omit<AppHdr, 'msgDefIdr'> & { readonly msgDefIdr?: string };
  readonly msgId: string;
  readonly creDtTm: string;
  /** `GrpHdr/PmtTpInf/SvcLvl/Prtry` (and with it `InstrPrty`). @defaultValue `'PAGPRI'` (HIGH) */
  readonly serviceLevel?: ServiceLevel;
  readonly transactions: readonly CreditTransfer[];
}

function account(name: string, value: SpiAccount & { proxy?: string }): XmlElementSpec {
  return el(name, [
    el('Id', [el('Othr', [el('Id', value.number), value.branch === undefined ? undefined : el('Issr', value.branch)])]),
    el('Tp', [el('Cd', value.type)]),
    value.proxy === undefined ? undefined : el('Prxy', [el('Id', value.proxy)]),
  ]);
}

function agent(name: string, ispb: string): XmlElementSpec {
  return el(name, [el('FinInstnId', [el('ClrSysMmbId', [el('MmbId', ispb)])])]);
}

function person(taxId: string): XmlElementSpec {
  return el('Id', [el('PrvtId', [el('Othr', [el('Id', taxId)])])]);
}

/**
 * Writes a pacs.008 SPI message (catalogue 5.13.1, version 1.16) with an empty `Sgntr`, ready
 * for `signSpi`. Amounts are normalized to two decimals; identifiers are checked.
 *
 * @throws {@link MessageFormatError} when an identifier does not have the BCB format.
 */
export function buildPacs008(message: Pacs008): string {
  const spec = SPI_MESSAGES['pacs.008'];
  const serviceLevel = message.serviceLevel ?? 'PAGPRI';
  if (!Object.hasOwn(PAYMENT_PRIORITIES, serviceLevel)) throw new MessageFormatError(`GrpHdr/PmtTpInf/SvcLvl/Prtry must be one of ${Object.keys(PAYMENT_PRIORITIES).join(', ')}, got ${JSON.stringify(serviceLevel)}`);
  if (!MESSAGE_ID.test(message.msgId)) throw new MessageFormatError(`MsgId ${message.msgId} is not M + ISPB + 23 alphanumerics`);
  if (message.transactions.length < 1) throw new MessageFormatError('a pacs.008 has at least one transaction');
  const transactions = message.transactions.map((tx) => {
    if (!END_TO_END_ID.test(tx.endToEndId)) throw new MessageFormatError(`EndToEndId ${tx.endToEndId} does not have the BCB format`);
    if (!(PURPOSE_CODES as readonly string[]).includes(tx.purpose)) throw new MessageFormatError(`CdtTrfTxInf/Purp/Cd is required, one of ${PURPOSE_CODES.join(', ')}; got ${JSON.stringify(tx.purpose) ?? 'nothing'}`);
    return el('CdtTrfTxInf', [
      el('PmtId', [el('EndToEndId', tx.endToEndId), tx.txId === undefined ? undefined : el('TxId', tx.txId)]),
      el('IntrBkSttlmAmt', normalizeAmount(tx.amount), { Ccy: 'BRL' }),
      el('AccptncDtTm', tx.acceptanceDateTime),
      el('ChrgBr', 'SLEV'),
      el('MndtRltdInf', [el('Tp', [el('LclInstrm', [el('Prtry', tx.localInstrument)])])]),
      el('Dbtr', [el('Nm', tx.debtor.name), person(tx.debtor.taxId)]),
      account('DbtrAcct', tx.debtorAccount),
      agent('DbtrAgt', tx.debtorAgentIspb),
      agent('CdtrAgt', tx.creditorAgentIspb),
      el('Cdtr', [person(tx.creditor.taxId)]),
      account('CdtrAcct', tx.creditorAccount),
      el('Purp', [el('Cd', tx.purpose)]),
      tx.remittanceInformation === undefined ? undefined : el('RmtInf', [el('Ustrd', tx.remittanceInformation)]),
    ]);
  });
  return writeXml(
    el(
      'Envelope',
      [
        appHdrSpec({ ...message.appHdr, msgDefIdr: message.appHdr.msgDefIdr ?? spec.msgDefIdr }),
        el('Document', [
          el('FIToFICstmrCdtTrf', [
            el('GrpHdr', [
              el('MsgId', message.msgId),
              el('CreDtTm', message.creDtTm),
              el('NbOfTxs', String(message.transactions.length)),
              el('SttlmInf', [el('SttlmMtd', 'CLRG')]),
              el('PmtTpInf', [el('InstrPrty', PAYMENT_PRIORITIES[serviceLevel]), el('SvcLvl', [el('Prtry', serviceLevel)])]),
            ]),
            ...transactions,
          ]),
        ]),
      ],
      { xmlns: spec.namespace },
    ),
  );
}

function readAccount(element: XmlElement): SpiAccount & { proxy?: string } {
  const branch = optionalText(element, ['Id', 'Othr', 'Issr']);
  const proxy = optionalText(element, ['Prxy', 'Id']);
  return {
    number: requiredText(element, ['Id', 'Othr', 'Id']),
    type: requiredText(element, ['Tp', 'Cd']) as SpiAccount['type'],
    ...(branch === undefined ? {} : { branch }),
    ...(proxy === undefined ? {} : { proxy }),
  };
}

/**
 * Reads a pacs.008 from its verified `AppHdr` and `Document` (what shared/xmldsig's
 * `verifySpi` returns), or from a parsed or textual envelope. Accepts any pacs.008 namespace
 * version the BCB sends.
 *
 * @throws {@link MessageFormatError} naming the missing path.
 */
export function parsePacs008(input: { appHdr: XmlElement; document: XmlElement } | XmlDocument | string): Pacs008 {
  const { appHdr, document } = typeof input === 'string' || 'root' in input ? envelopeParts(typeof input === 'string' ? parseXml(input) : input) : input;
  if (messageOfNamespace(document.namespaceUri)?.message !== 'pacs.008') throw new MessageFormatError(`namespace ${document.namespaceUri} is not a pacs.008`);
  const body = documentBody(document, 'FIToFICstmrCdtTrf');
  const transactions = childElementsNamed(body, 'CdtTrfTxInf').map((tx): CreditTransfer => {
    const amountElement = childElementsNamed(tx, 'IntrBkSttlmAmt')[0];
    if (amountElement === undefined || getAttribute(amountElement, 'Ccy') !== 'BRL') throw new MessageFormatError('IntrBkSttlmAmt must be in BRL');
    const txId = optionalText(tx, ['PmtId', 'TxId']);
    const remittance = optionalText(tx, ['RmtInf', 'Ustrd']);
    return {
      endToEndId: requiredText(tx, ['PmtId', 'EndToEndId']),
      amount: normalizeAmount(requiredText(tx, ['IntrBkSttlmAmt'])),
      acceptanceDateTime: requiredText(tx, ['AccptncDtTm']),
      localInstrument: requiredText(tx, ['MndtRltdInf', 'Tp', 'LclInstrm', 'Prtry']) as CreditTransfer['localInstrument'],
      debtor: { name: requiredText(tx, ['Dbtr', 'Nm']), taxId: requiredText(tx, ['Dbtr', 'Id', 'PrvtId', 'Othr', 'Id']) },
      debtorAccount: readAccount(childElementsNamed(tx, 'DbtrAcct')[0] ?? tx),
      debtorAgentIspb: requiredText(tx, ['DbtrAgt', 'FinInstnId', 'ClrSysMmbId', 'MmbId']),
      creditorAgentIspb: requiredText(tx, ['CdtrAgt', 'FinInstnId', 'ClrSysMmbId', 'MmbId']),
      creditor: { taxId: requiredText(tx, ['Cdtr', 'Id', 'PrvtId', 'Othr', 'Id']) },
      creditorAccount: readAccount(childElementsNamed(tx, 'CdtrAcct')[0] ?? tx),
      ...(txId === undefined ? {} : { txId }),
      purpose: requiredText(tx, ['Purp', 'Cd']) as PurposeCode,
      ...(remittance === undefined ? {} : { remittanceInformation: remittance }),
    };
  });
  const serviceLevel = optionalText(body, ['GrpHdr', 'PmtTpInf', 'SvcLvl', 'Prtry']);
  if (serviceLevel !== undefined && !Object.hasOwn(PAYMENT_PRIORITIES, serviceLevel)) throw new MessageFormatError(`GrpHdr/PmtTpInf/SvcLvl/Prtry must be one of ${Object.keys(PAYMENT_PRIORITIES).join(', ')}, got ${JSON.stringify(serviceLevel)}`);
  return {
    appHdr: parseAppHdr(appHdr),
    msgId: requiredText(body, ['GrpHdr', 'MsgId']),
    creDtTm: requiredText(body, ['GrpHdr', 'CreDtTm']),
    ...(serviceLevel === undefined ? {} : { serviceLevel: serviceLevel as ServiceLevel }),
    transactions,
  };
}

/** The `AppHdr` and `Document` children of an `Envelope`. */
export function envelopeParts(xml: XmlDocument): { appHdr: XmlElement; document: XmlElement } {
  const appHdr = childElementsNamed(xml.root, 'AppHdr')[0];
  const document = childElementsNamed(xml.root, 'Document')[0];
  if (xml.root.localName !== 'Envelope' || appHdr === undefined || document === undefined) {
    throw new MessageFormatError('a SPI message is an Envelope with AppHdr and Document');
  }
  return { appHdr, document };
}
