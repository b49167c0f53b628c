import { buildEntryReport } from '../../shared/bcb-query/index.ts';
import type { Ledger } from './ledger.ts';

/** The simulator's code for "no booked entry for that EndToEndId on your account" (no BCB list of query error codes was found). */
export const ENTRY_NOT_FOUND = 'ENNF';

/** A camt.060 as the simulated SPI reads it (plain data: it crosses the inspection threads). */
export interface EntryQueryContent {
  readonly type: 'camt.060';
  readonly msgId: string | undefined;
  /** `RptgReq/ReqdMsgNmId`: camt.054 for the detail of one entry. */
  readonly requested: string | undefined;
  /** `RptgReq/Id`: the EndToEndId (or RtrId) of the entry. */
  readonly id: string | undefined;
  /** `RptgReq/AcctOwnr/Agt/…/MmbId`: whose PI account. */
  readonly ownerIspb: string | undefined;
}

/** Why a camt.060 is refused: an admi.002 to its sender names it. */
export interface EntryQueryProblem {
  readonly code: string;
  readonly message: string;
  readonly location: string;
}

/** What the simulated SPI refuses in a camt.060 from `senderIspb` (after its signature verified), or undefined. */
export function entryQueryProblem(query: EntryQueryContent, senderIspb: string, bizMsgIdr: string): EntryQueryProblem | undefined {
  const request = '/Envelope/Document/AcctRptgReq/RptgReq';
  if (query.msgId !== bizMsgIdr) return { code: 'MSGID_INVALID', message: `GrpHdr/MsgId ${query.msgId ?? '(none)'} is not the BizMsgIdr ${bizMsgIdr}`, location: '/Envelope/Document/AcctRptgReq/GrpHdr/MsgId' };
  if (query.requested !== 'camt.054' || query.id === undefined) return { code: 'REPORT_NOT_SUPPORTED', message: 'only the camt.054 of one entry (ReqdMsgNmId camt.054 with an Id) is answered by the simulator', location: `${request}/ReqdMsgNmId` };
  if (query.ownerIspb !== senderIspb) return { code: 'ACCOUNT_NOT_OWNED', message: `the account of ${query.ownerIspb ?? '(none)'} is not the sender's (${senderIspb})`, location: `${request}/AcctOwnr` };
  return undefined;
}

/** A settled payment's entry on one participant's PI account, as the ledger has it now. */
export interface BookedEntry {
  readonly creditDebit: 'DBIT' | 'CRDT';
  readonly amount: string;
  readonly at: string | undefined;
  readonly payerIspb: string;
  readonly receiverIspb: string;
}

/**
 * The entry `id` on the PI account of `callerIspb`: a settled payment of the caller's is booked
 * (DBIT for its payer, CRDT for its receiver); anything else — unknown, pending, rejected, or not
 * the caller's — is not: the simulator, like the BCB's booking query, reports bookings only.
 */
export function bookedEntry(ledger: Ledger, id: string, callerIspb: string): BookedEntry | undefined {
  const payment = ledger.payment(id);
  if (payment?.status !== 'settled') return undefined;
  const creditDebit = payment.payerIspb === callerIspb ? 'DBIT' : payment.receiverIspb === callerIspb ? 'CRDT' : undefined;
  if (creditDebit === undefined) return undefined;
  return { creditDebit, amount: payment.amount, at: payment.decidedAt, payerIspb: payment.payerIspb, receiverIspb: payment.receiverIspb };
}

/**
 * The camt.054 answering a valid camt.060 (see {@link entryQueryProblem}), unsigned: the emitter
 * signs it as the BCB and queues it on the sender's ICOM stream, as the SPI answers a camt.060
 * (bacen/pix-perguntas-e-respostas #28). `booked` is read when the query is processed (the
 * emitter builds at the first delivery); without it the answer is the error {@link ENTRY_NOT_FOUND}.
 */
export function entryReport(query: { msgId: string; id: string }, callerIspb: string, header: { fromIspb: string; bizMsgIdr: string; creDt: string }, booked: BookedEntry | undefined): string {
  return buildEntryReport({
    bcbIspb: header.fromIspb,
    ispb: callerIspb,
    bizMsgIdr: header.bizMsgIdr,
    createdAt: header.creDt,
    queryMsgId: query.msgId,
    endToEndId: query.id,
    ...(booked === undefined
      ? { error: { code: ENTRY_NOT_FOUND, detail: `no booked entry ${query.id} on the PI account of ${callerIspb}` } }
      : { entry: { status: 'BOOK' as const, creditDebit: booked.creditDebit, amount: booked.amount, at: booked.at ?? header.creDt, payerIspb: booked.payerIspb, receiverIspb: booked.receiverIspb } }),
  });
}
