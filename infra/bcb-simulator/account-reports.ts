import { buildEntryReport, readEntryQuery } from '../../shared/bcb-query/index.ts';
import { generateMessageId } from '../../shared/iso20022/index.ts';
import { parseXml } from '../../shared/xml/index.ts';
import type { XmlElement } from '../../shared/xml/index.ts';
import { signSpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { corruptSignature } from './faults.ts';
import type { FaultController } from './faults.ts';
import type { Ledger } from './ledger.ts';

/** The simulator's code for "no booked entry for that EndToEndId on your account" (no BCB list of query error codes was found). */
export const ENTRY_NOT_FOUND = 'ENNF';

/** What {@link answerAccountReport} needs. */
export interface AccountReportDeps {
  readonly ledger: Ledger;
  readonly bcbIspb: string;
  readonly key: SigningKey;
  /** `invalidSignatureRate` breaks this answer's signature as it breaks every other signed answer. @defaultValue no faults */
  readonly faults?: Pick<FaultController, 'breakSignature'>;
  /** @defaultValue () => new Date() */
  readonly now?: () => Date;
}

/** A request the simulator refuses (answered 400 with the reason). */
export class AccountReportRequestError extends Error {}

function documentOf(root: XmlElement): XmlElement {
  const document = root.children.find((c): c is XmlElement => c.kind === 'element' && c.localName === 'Document');
  if (document === undefined) throw new AccountReportRequestError('the camt.060 has no Document');
  return document;
}

/**
 * Answers a camt.060 asking for the camt.054 of one entry (`ReqdMsgNmId` camt.054, `Id` =
 * EndToEndId) from the ledger, signed with the BCB's key like every message the simulated SPI
 * sends: a settled payment of the caller's is a BOOK entry (DBIT for its payer, CRDT for its
 * receiver); anything else — unknown, pending, rejected, or not the caller's — is the error
 * {@link ENTRY_NOT_FOUND}: the simulator, like the BCB's booking query, reports bookings only.
 *
 * The BCB answers a camt.060 on the ICOM stream; this synchronous form (the answer in the HTTP
 * response) exists so that selo's compensation worker can ask without reading a stream. The
 * request's signature is not checked here (mTLS names the caller); the BCB checks it.
 */
export async function answerAccountReport(deps: AccountReportDeps, body: string, callerIspb: string): Promise<string> {
  let query;
  try {
    query = readEntryQuery(documentOf(parseXml(body).root));
  } catch (error) {
    if (error instanceof AccountReportRequestError) throw error;
    throw new AccountReportRequestError(`not a camt.060: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (query.requested !== 'camt.054' || query.id === undefined || query.msgId === undefined) throw new AccountReportRequestError('only the camt.054 of one entry (ReqdMsgNmId camt.054 with an Id) is answered here');
  if (query.ownerIspb !== callerIspb) throw new AccountReportRequestError(`the account of ${query.ownerIspb ?? '(none)'} is not the caller's (${callerIspb})`);
  const now = (deps.now ?? (() => new Date()))();
  const payment = deps.ledger.payment(query.id);
  const side = payment === undefined ? undefined : payment.payerIspb === callerIspb ? 'DBIT' : payment.receiverIspb === callerIspb ? 'CRDT' : undefined;
  const booked = payment !== undefined && payment.status === 'settled' && side !== undefined;
  const xml = buildEntryReport({
    bcbIspb: deps.bcbIspb,
    ispb: callerIspb,
    bizMsgIdr: generateMessageId(deps.bcbIspb),
    createdAt: now.toISOString(),
    queryMsgId: query.msgId,
    endToEndId: query.id,
    ...(booked
      ? { entry: { status: 'BOOK' as const, creditDebit: side, amount: payment.amount, at: payment.decidedAt ?? now.toISOString(), payerIspb: payment.payerIspb, receiverIspb: payment.receiverIspb } }
      : { error: { code: ENTRY_NOT_FOUND, detail: `no booked entry ${query.id} on the PI account of ${callerIspb}` } }),
  });
  const signed = await signSpi(xml, deps.key);
  return deps.faults?.breakSignature() === true ? corruptSignature(signed) : signed;
}
