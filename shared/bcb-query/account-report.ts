import { appHdrSpec } from '../iso20022/app-hdr.ts';
import { el, writeXml } from '../iso20022/xml-writer.ts';
import type { XmlElementSpec } from '../iso20022/xml-writer.ts';
import type { XmlElement } from '../xml/index.ts';

/**
 * The SPI's query of one entry (lançamento) of a PI account and its answer (issue 17): how a direct
 * participant learns whether a payment whose pacs.002 never came was settled.
 *
 * - camt.060 (`AcctRptgReq`, catalogue 5.13: camt.060.spi.1.9) asks; `RptgReq/ReqdMsgNmId` =
 *   `camt.054` asks for "the detail of one specific entry", named by `RptgReq/Id` (the EndToEndId;
 *   the XSD's pattern for `Id` is the EndToEndId's or the RtrId's), for the account of
 *   `AcctOwnr/Agt/FinInstnId/ClrSysMmbId/MmbId`.
 * - camt.054 (`BkToCstmrDbtCdtNtfctn`, camt.054.spi.1.16) answers: `Ntfctn/Id` repeats the
 *   camt.060's MsgId; `Ntry/Sts/Cd` is `BOOK` (settled and booked) or `INFO` (not settled, for
 *   information); `Ntry/CdtDbtInd` is `DBIT` on the payer's PI account and `CRDT` on the
 *   receiver's; `Ntry/AddtlNtryInf` carries an error code and `Ntfctn/AddtlNtfctnInf` its detail
 *   when the query failed.
 *
 * Both are SPI messages like a pacs.008: the camt.060 is signed by the participant and POSTed to
 * ICOM (`/api/v1/in/{ispb}/msgs`); the SPI answers asynchronously, the camt.054 signed by the BCB
 * on the participant's ICOM stream (`/api/v1/out/{ispb}/stream/start`), or an admi.002.
 *
 * Sources: the SPI message catalogue's camt.060 1.9 and camt.054 1.16 as public SPI clients model
 * them (RicardoSantos-99/isox `lib/isox/dictionary/camt060.ex`, `camt054.ex`,
 * `lib/isox/generated/camt060/v1_9.ex`); the BCB's staff in bacen/pix-perguntas-e-respostas #28
 * ("foi gerada uma CAMT.054 … em resposta a CAMT.060"), #43 (a participant's camt.060 posted as a
 * message, its answer awaited on the stream, "nem um retorno do admi.002") and #52 (a camt.054
 * "consulta de detalhes de um lançamento" for an EndToEndId: `Ntfctn/Id` the participant's MsgId,
 * `Sts/Cd` BOOK, `CdtDbtInd` DBIT). No camt.060/camt.054 XSD is in the repository
 * (docs/conformance.md): these builders and readers check the fields selo writes and reads.
 */

/** camt.060 as selo writes it (SPI catalogue 5.13). */
export const CAMT_060 = { msgDefIdr: 'camt.060.spi.1.9', namespace: 'https://www.bcb.gov.br/pi/camt.060/1.9' } as const;
/** camt.054 as the SPI writes it (SPI catalogue 5.13). */
export const CAMT_054 = { msgDefIdr: 'camt.054.spi.1.16', namespace: 'https://www.bcb.gov.br/pi/camt.054/1.16' } as const;

/** What selo asks: the entry of one payment on its own PI account. */
export interface EntryQuery {
  /** Our ISPB: `AppHdr/Fr` and the account owner. */
  readonly ispb: string;
  /** The BCB's ISPB (`AppHdr/To`). */
  readonly bcbIspb: string;
  /** `AppHdr/BizMsgIdr` and `GrpHdr/MsgId`: `M` + ISPB + 23 alphanumerics. */
  readonly msgId: string;
  /** UTC with milliseconds. */
  readonly createdAt: string;
  /** The payment's EndToEndId (`RptgReq/Id`). */
  readonly endToEndId: string;
}

/** Writes the camt.060 asking for the camt.054 of one entry, with an empty `Sgntr` (signed by the caller, like every SPI message). */
export function buildEntryQuery(query: EntryQuery): string {
  const agent = (ispb: string): XmlElementSpec => el('Agt', [el('FinInstnId', [el('ClrSysMmbId', [el('MmbId', ispb)])])]);
  const body = el('AcctRptgReq', [
    el('GrpHdr', [el('MsgId', query.msgId), el('CreDtTm', query.createdAt)]),
    el('RptgReq', [el('Id', query.endToEndId), el('ReqdMsgNmId', 'camt.054'), el('AcctOwnr', [agent(query.ispb)])]),
  ]);
  const appHdr = appHdrSpec({ fromIspb: query.ispb, toIspb: query.bcbIspb, bizMsgIdr: query.msgId, msgDefIdr: CAMT_060.msgDefIdr, creDt: query.createdAt });
  return writeXml(el('Envelope', [appHdr, el('Document', [body])], { xmlns: CAMT_060.namespace }));
}

/** One entry of a camt.054, as selo reads it. */
export interface ReportedEntry {
  readonly endToEndId: string | undefined;
  /** `BOOK`, `INFO`… */
  readonly status: string | undefined;
  /** `DBIT` or `CRDT`, relative to the account owner. */
  readonly creditDebit: string | undefined;
  readonly amount: string | undefined;
  /** `ValDt/DtTm`: when the entry reached its status. */
  readonly valueDateTime: string | undefined;
  /** `AddtlInfInd/MsgNmId`: the message that caused the entry (pacs.008, pacs.004). */
  readonly originMessage: string | undefined;
  /** `AddtlNtryInf`: the error code of a failed query. */
  readonly errorCode: string | undefined;
}

/** A camt.054 as selo reads it: the notification's id (our camt.060's MsgId), account, entries, error detail. */
export interface EntryReport {
  readonly msgId: string | undefined;
  readonly notificationId: string | undefined;
  readonly accountIspb: string | undefined;
  readonly entries: readonly ReportedEntry[];
  /** `AddtlNtfctnInf`: the detail of a failed query. */
  readonly errorDetail: string | undefined;
}

function child(parent: XmlElement | undefined, name: string): XmlElement | undefined {
  return parent?.children.find((c): c is XmlElement => c.kind === 'element' && c.localName === name);
}

function children(parent: XmlElement | undefined, name: string): XmlElement[] {
  return (parent?.children ?? []).filter((c): c is XmlElement => c.kind === 'element' && c.localName === name);
}

function text(element: XmlElement | undefined): string | undefined {
  if (element === undefined) return undefined;
  const value = element.children.map((c) => (c.kind === 'text' ? c.value : '')).join('').trim();
  return value === '' ? undefined : value;
}

function at(root: XmlElement | undefined, path: readonly string[]): XmlElement | undefined {
  let element = root;
  for (const name of path) element = child(element, name);
  return element;
}

/**
 * Reads the `Document` of a camt.054 (verified first: pass the `document` of shared/xmldsig's
 * `verifySpi`). Lenient on what selo does not use; undefined fields are simply absent.
 */
export function readEntryReport(document: XmlElement): EntryReport {
  const body = child(document, 'BkToCstmrDbtCdtNtfctn');
  if (body === undefined) throw new RangeError('not a camt.054: no BkToCstmrDbtCdtNtfctn');
  const notification = child(body, 'Ntfctn');
  const entries = children(notification, 'Ntry').map((entry): ReportedEntry => {
    const tx = at(entry, ['NtryDtls', 'TxDtls']);
    return {
      endToEndId: text(at(tx, ['Refs', 'EndToEndId'])),
      status: text(at(entry, ['Sts', 'Cd'])) ?? text(child(entry, 'Sts')),
      creditDebit: text(child(entry, 'CdtDbtInd')),
      amount: text(child(entry, 'Amt')),
      valueDateTime: text(at(entry, ['ValDt', 'DtTm'])),
      originMessage: text(at(entry, ['AddtlInfInd', 'MsgNmId'])),
      errorCode: text(child(entry, 'AddtlNtryInf')),
    };
  });
  return {
    msgId: text(at(body, ['GrpHdr', 'MsgId'])),
    notificationId: text(child(notification, 'Id')),
    accountIspb: text(at(notification, ['Acct', 'Id', 'Othr', 'Id'])),
    entries,
    errorDetail: text(child(notification, 'AddtlNtfctnInf')),
  };
}

/** What the BCB's answer says about one of our payments. */
export interface EntryVerdict {
  /** `settled`: the BCB booked the debit on our PI account; `unknown`: the answer proves nothing either way. */
  readonly outcome: 'settled' | 'unknown';
  /** One line for the audit trail and the operator. */
  readonly evidence: string;
}

/**
 * Decides from a verified camt.054 whether our payment settled. Settled only when the answer is to
 * this query (`Ntfctn/Id` = our MsgId), about our account, and holds an entry for the EndToEndId
 * with `Sts/Cd` BOOK and `CdtDbtInd` DBIT (our account was debited: the SPI settled the payment)
 * and no error code — and, when `amount` is known, of that amount. For a payment to one of our
 * customers (`creditDebit: 'CRDT'`), the same with CRDT: our account was credited. Anything else is `unknown`:
 * no BCB text found says an answer without a booking proves a rejection (`INFO` means "not
 * settled, for information", and an error means the query failed), so money safety keeps the
 * payment IN_DOUBT for a person (DESIGN §1: an unknown outcome is never reversed).
 */
export function judgeEntryReport(report: EntryReport, expected: { ispb: string; msgId: string; endToEndId: string; amount?: string; creditDebit?: 'DBIT' | 'CRDT' }, bizMsgIdr: string): EntryVerdict {
  const entry = report.entries.find((e) => e.endToEndId === expected.endToEndId);
  const described = entry === undefined ? 'no entry for it' : `entry ${entry.status ?? '?'} ${entry.creditDebit ?? '?'} ${entry.amount ?? '?'}${entry.valueDateTime === undefined ? '' : ` at ${entry.valueDateTime}`}${entry.errorCode === undefined ? '' : ` error ${entry.errorCode}`}`;
  const detail = report.errorDetail === undefined ? '' : ` (${report.errorDetail.slice(0, 105)})`;
  const evidence = `camt.054 ${bizMsgIdr} answering camt.060 ${expected.msgId} for ${expected.endToEndId}: ${described}${detail}`;
  if (report.notificationId !== expected.msgId) return { outcome: 'unknown', evidence: `${evidence}; answers another query (${report.notificationId ?? 'no Ntfctn/Id'})` };
  if (report.accountIspb !== undefined && report.accountIspb !== expected.ispb) return { outcome: 'unknown', evidence: `${evidence}; about account ${report.accountIspb}` };
  if (entry?.status !== 'BOOK' || entry.creditDebit !== (expected.creditDebit ?? 'DBIT') || entry.errorCode !== undefined) return { outcome: 'unknown', evidence };
  if (expected.amount !== undefined && entry.amount !== undefined && Number(entry.amount) !== Number(expected.amount)) return { outcome: 'unknown', evidence: `${evidence}; amount differs from ours (${expected.amount})` };
  return { outcome: 'settled', evidence };
}

/** An entry the (simulated) SPI reports; see {@link buildEntryReport}. */
export interface EntryReportInput {
  readonly bcbIspb: string;
  /** The participant asked about (`AppHdr/To`, the account). */
  readonly ispb: string;
  readonly bizMsgIdr: string;
  readonly createdAt: string;
  /** The camt.060's MsgId (`Ntfctn/Id`). */
  readonly queryMsgId: string;
  readonly endToEndId: string;
  /** The entry, when there is one: BOOK (settled) with its amount, side and time. */
  readonly entry?: { readonly status: 'BOOK' | 'INFO'; readonly creditDebit: 'DBIT' | 'CRDT'; readonly amount: string; readonly at: string; readonly payerIspb: string; readonly receiverIspb: string };
  /** When there is no entry: the error code (4 characters) and its detail. */
  readonly error?: { readonly code: string; readonly detail: string };
}

/** Writes a camt.054 answering one entry query, with an empty `Sgntr` (the simulator signs it as the BCB). */
export function buildEntryReport(input: EntryReportInput): string {
  const agent = (name: string, ispb: string): XmlElementSpec => el(name, [el('FinInstnId', [el('ClrSysMmbId', [el('MmbId', ispb)])])]);
  const entry = input.entry;
  const ntry = el('Ntry', [
    el('Amt', entry?.amount ?? '0.00', { Ccy: 'BRL' }),
    el('CdtDbtInd', entry?.creditDebit ?? 'DBIT'),
    el('Sts', [el('Cd', entry?.status ?? 'INFO')]),
    ...(entry === undefined ? [] : [el('BookgDt', [el('Dt', entry.at.slice(0, 10))]), el('ValDt', [el('DtTm', entry.at)])]),
    el('BkTxCd', [el('Domn', [el('Cd', 'PMNT'), el('Fmly', [el('Cd', entry?.creditDebit === 'CRDT' ? 'RRCT' : 'IRCT'), el('SubFmlyCd', 'DMCT')])])]),
    el('AddtlInfInd', [el('MsgNmId', 'pacs.008')]),
    el('NtryDtls', [
      el('TxDtls', [
        el('Refs', [el('EndToEndId', input.endToEndId)]),
        el('RltdAgts', entry === undefined ? [] : [agent('DbtrAgt', entry.payerIspb), agent('CdtrAgt', entry.receiverIspb)]),
      ]),
    ]),
    ...(input.error === undefined ? [] : [el('AddtlNtryInf', input.error.code)]),
  ]);
  const body = el('BkToCstmrDbtCdtNtfctn', [
    el('GrpHdr', [el('MsgId', input.bizMsgIdr), el('CreDtTm', input.createdAt)]),
    el('Ntfctn', [el('Id', input.queryMsgId), el('Acct', [el('Id', [el('Othr', [el('Id', input.ispb)])])]), ntry, ...(input.error === undefined ? [] : [el('AddtlNtfctnInf', input.error.detail.slice(0, 105))])]),
  ]);
  const appHdr = appHdrSpec({ fromIspb: input.bcbIspb, toIspb: input.ispb, bizMsgIdr: input.bizMsgIdr, msgDefIdr: CAMT_054.msgDefIdr, creDt: input.createdAt });
  return writeXml(el('Envelope', [appHdr, el('Document', [body])], { xmlns: CAMT_054.namespace }));
}

/** Reads `RptgReq` of a camt.060 `Document`: what is asked, about which entry and account. */
export function readEntryQuery(document: XmlElement): { msgId: string | undefined; requested: string | undefined; id: string | undefined; ownerIspb: string | undefined } {
  const body = child(document, 'AcctRptgReq');
  if (body === undefined) throw new RangeError('not a camt.060: no AcctRptgReq');
  const request = child(body, 'RptgReq');
  return {
    msgId: text(at(body, ['GrpHdr', 'MsgId'])),
    requested: text(child(request, 'ReqdMsgNmId')),
    id: text(child(request, 'Id')),
    ownerIspb: text(at(request, ['AcctOwnr', 'Agt', 'FinInstnId', 'ClrSysMmbId', 'MmbId'])),
  };
}
