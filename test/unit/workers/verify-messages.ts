import { BCB_MESSAGE_RECEIVED, RECEIVE_SOURCE, inboxSagaId, newTraceparent } from '../../../shared/events/index.ts';
import type { EventDetail } from '../../../shared/events/index.ts';
import { buildAdmi002, buildPacs002, buildPacs004, buildPacs008, buildPibr001, buildPibr002, generateMessageId } from '../../../shared/iso20022/index.ts';
import type { CreditTransfer, PaymentReturn, TransactionStatus } from '../../../shared/iso20022/index.ts';
import { signSpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';

/** Who signs the test messages "from the BCB", and to whom they go. */
export interface BcbSender {
  key: SigningKey;
  /** AppHdr/Fr. @defaultValue '00038166' */
  fromIspb?: string;
  /** AppHdr/To: the PSP under test. */
  toIspb: string;
}

/** A header as the SPI writes it: a fresh BizMsgIdr of the sender, now. */
function header(sender: BcbSender): { fromIspb: string; toIspb: string; bizMsgIdr: string; creDt: string } {
  const fromIspb = sender.fromIspb ?? '00038166';
  return { fromIspb, toIspb: sender.toIspb, bizMsgIdr: generateMessageId(fromIspb), creDt: new Date().toISOString() };
}

/** A signed pibr.001 (an echo the SPI sends us) carrying `data`. */
export async function signedPibr001(sender: BcbSender, data: string): Promise<string> {
  const h = header(sender);
  return signSpi(buildPibr001({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, data }), sender.key);
}

/**
 * A signed message of a type selo does not handle: a pibr.002 written, then put in the namespace
 * of `messageType` (e.g. `camt.060`) before signing, so its signature is valid.
 */
export async function signedUnsupported(sender: BcbSender, messageType: string): Promise<string> {
  const h = header(sender);
  const xml = buildPibr002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, originalData: 'x' }).replaceAll('https://www.bcb.gov.br/pi/pibr.002/1.3', `https://www.bcb.gov.br/pi/${messageType}/1.0`);
  return signSpi(xml, sender.key);
}

/** A signed pacs.002 with one status. */
export async function signedPacs002(sender: BcbSender, status: TransactionStatus): Promise<string> {
  const h = header(sender);
  return signSpi(buildPacs002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, statuses: [status] }), sender.key);
}

/** A signed admi.002 refusing the message `rejectedBizMsgIdr`. */
export async function signedAdmi002(sender: BcbSender, rejectedBizMsgIdr: string, code: string, description = 'refused'): Promise<string> {
  const h = header(sender);
  return signSpi(buildAdmi002({ appHdr: h, rejectedBizMsgIdr, reason: { code, description, rejectionDateTime: h.creDt } }), sender.key);
}

/** A signed pacs.008 forwarded by the SPI to the creditor agent. */
export async function signedPacs008(sender: BcbSender, transaction: CreditTransfer): Promise<string> {
  const h = header(sender);
  return signSpi(buildPacs008({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, transactions: [transaction] }), sender.key);
}

/** A signed pacs.004 forwarded by the SPI to the original payer. */
export async function signedPacs004(sender: BcbSender, ret: PaymentReturn): Promise<string> {
  const h = header(sender);
  return signSpi(buildPacs004({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, returns: [ret] }), sender.key);
}

/** A signed pibr.002 answering an echo with `data`. */
export async function signedPibr002(sender: BcbSender, data: string): Promise<string> {
  const h = header(sender);
  return signSpi(buildPibr002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, originalData: data }), sender.key);
}

/** A status of the payment `endToEndId` (settled now unless RJCT). */
export function statusOf(endToEndId: string, status: TransactionStatus['status'], reasonCode?: string): TransactionStatus {
  if (status === 'RJCT') return { originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status, reason: { code: reasonCode ?? 'AC03', additionalInformation: 'conta inexistente' } };
  const now = new Date().toISOString();
  return { originalInstructionId: endToEndId, originalEndToEndId: endToEndId, status, settlementDateTime: now, interbankSettlementDate: now.slice(0, 10) };
}

/** A credit transfer from PSP 99999005 to `creditorAgentIspb`. */
export function inboundTransfer(endToEndId: string, creditorAgentIspb: string): CreditTransfer {
  return {
    endToEndId,
    amount: '321.09',
    acceptanceDateTime: new Date().toISOString(),
    localInstrument: 'DICT',
    debtor: { name: 'Fulana de Tal', taxId: '70000000000' },
    debtorAccount: { number: '500000', branch: '3000', type: 'CACC' },
    debtorAgentIspb: '99999005',
    creditorAgentIspb,
    creditor: { taxId: '80000000000' },
    creditorAccount: { number: '600000', branch: '4000', type: 'CACC', proxy: '+5561988887777' },
    purpose: 'IPAY',
  };
}

/** Flips one character of the SignatureValue: the signature no longer verifies. */
export function corruptSignatureValue(xml: string): string {
  const match = /<(?:ds:)?SignatureValue[^>]*>\s*([A-Za-z0-9+/])/.exec(xml);
  if (match === null) throw new Error('no SignatureValue to corrupt');
  const index = match.index + match[0].length - 1;
  return xml.slice(0, index) + (xml[index] === 'A' ? 'B' : 'A') + xml.slice(index + 1);
}

/** The `BcbMessageReceived` the receive worker puts on the verify queue for one message. */
export function bcbMessageReceived(resourceId: string, xml: string, copy?: string): { detailType: string; source: string; detail: EventDetail<unknown> } {
  return {
    detailType: BCB_MESSAGE_RECEIVED,
    source: RECEIVE_SOURCE,
    detail: {
      version: 1,
      sagaId: inboxSagaId(resourceId),
      attempt: 1,
      traceparent: newTraceparent(),
      data: { channel: 'spi', resourceId, receivedAt: new Date().toISOString(), contentType: 'application/xml; charset=utf-8', payload: { inline: xml }, ...(copy === undefined ? {} : { copy }) },
    },
  };
}
