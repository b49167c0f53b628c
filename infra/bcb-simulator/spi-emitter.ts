import { randomUUID } from 'node:crypto';
import { buildAdmi002, buildPacs002, buildPacs004, buildPacs008, buildPibr001, generateMessageId } from '../../shared/iso20022/index.ts';
import type { PaymentReturn } from '../../shared/iso20022/index.ts';
import type { CreditTransfer, TransactionStatus } from '../../shared/iso20022/index.ts';
import { signSpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { corruptSignature } from './faults.ts';
import type { FaultController } from './faults.ts';
import type { Ledger } from './ledger.ts';
import type { Mailbox, OutboundMessage } from './mailbox.ts';

/** A header for a message the BCB sends to `toIspb`. */
export interface BcbHeader {
  readonly fromIspb: string;
  readonly toIspb: string;
  readonly bizMsgIdr: string;
  readonly creDt: string;
}

/**
 * A new `PI-ResourceId`: 32 hex digits. From `randomUUID`, whose entropy node draws in blocks,
 * rather than a `randomBytes` call (one system call) per id: four ids per payment.
 */
export function newResourceId(): string {
  return randomUUID().replaceAll('-', '');
}

/** Dependencies of {@link SpiEmitter}. */
export interface SpiEmitterDeps {
  readonly bcbIspb: string;
  readonly key: SigningKey;
  /** The outbound queue of a participant. */
  readonly mailbox: (ispb: string) => Mailbox;
  readonly ledger: Ledger;
  readonly faults: FaultController;
  /**
   * Whether `ispb` is a payer PSP the simulator itself plays (the inbound traffic generator):
   * messages to it are recorded, never queued. @defaultValue no ISPB is
   */
  readonly simulated?: (ispb: string) => boolean;
}

/**
 * Writes the messages the simulated SPI sends, signs them with the BCB key in the SPI profile
 * and queues them on the receiver's stream. Signing is deferred to the first delivery, so that
 * messages nobody reads cost no RSA operation; messages to a simulated payer are recorded in
 * the ledger and neither signed nor queued (nobody would read them: the queue would only grow).
 */
export class SpiEmitter {
  private readonly bcbIspb: string;
  private readonly key: SigningKey;
  private readonly mailbox: (ispb: string) => Mailbox;
  private readonly ledger: Ledger;
  private readonly faults: FaultController;
  private readonly simulated: (ispb: string) => boolean;

  constructor(deps: SpiEmitterDeps) {
    this.bcbIspb = deps.bcbIspb;
    this.key = deps.key;
    this.mailbox = deps.mailbox;
    this.ledger = deps.ledger;
    this.faults = deps.faults;
    this.simulated = deps.simulated ?? (() => false);
  }

  /** Queues a message built by `build` for `toIspb`. */
  emit(toIspb: string, type: string, reference: string | undefined, status: string | undefined, build: (header: BcbHeader) => string): OutboundMessage {
    return this.emitWithHeader(toIspb, type, reference, status, build).message;
  }

  /** A pibr.001 (echo request) to `toIspb` carrying `data`; its BizMsgIdr is the ledger's reference. */
  pibr001(toIspb: string, data: string): { readonly message: OutboundMessage; readonly header: BcbHeader } {
    return this.emitWithHeader(toIspb, 'pibr.001', undefined, undefined, (header) =>
      buildPibr001({ appHdr: header, msgId: header.bizMsgIdr, creDtTm: header.creDt, data }),
    );
  }

  /** {@link SpiEmitter.emit}, also giving the header (a message about itself has its own BizMsgIdr as reference). */
  private emitWithHeader(
    toIspb: string, type: string, reference: string | undefined, status: string | undefined, build: (header: BcbHeader) => string,
  ): { readonly message: OutboundMessage; readonly header: BcbHeader } {
    const bizMsgIdr = generateMessageId(this.bcbIspb);
    const header: BcbHeader = { fromIspb: this.bcbIspb, toIspb, bizMsgIdr, creDt: new Date().toISOString() };
    let signed: Promise<string> | undefined;
    const message: OutboundMessage = {
      resourceId: newResourceId(),
      toIspb,
      type,
      content: () => {
        signed ??= signSpi(build(header), this.key).then((xml) => (this.faults.breakSignature() ? corruptSignature(xml) : xml));
        return signed;
      },
    };
    const simulated = this.simulated(toIspb);
    this.ledger.recordSent({
      resourceId: message.resourceId, toIspb, type, bizMsgIdr, reference: reference ?? bizMsgIdr, ...(status === undefined ? {} : { status }), createdAt: header.creDt, deliveries: 0, confirmed: false,
      ...(simulated ? { simulatedRecipient: true } : {}),
    });
    if (!simulated) this.mailbox(toIspb).enqueue(message);
    return { message, header };
  }

  /** A pacs.002 about one transaction. */
  pacs002(toIspb: string, status: TransactionStatus): OutboundMessage {
    return this.emit(toIspb, 'pacs.002', status.originalEndToEndId, status.status, (header) =>
      buildPacs002({ appHdr: header, msgId: header.bizMsgIdr, creDtTm: header.creDt, statuses: [status] }),
    );
  }

  /** The pacs.008 forwarded to the receiving participant. */
  pacs008(toIspb: string, transaction: CreditTransfer): OutboundMessage {
    return this.emit(toIspb, 'pacs.008', transaction.endToEndId, undefined, (header) =>
      buildPacs008({ appHdr: header, msgId: header.bizMsgIdr, creDtTm: header.creDt, transactions: [transaction] }),
    );
  }

  /** The pacs.004 forwarded to the participant that receives the returned funds. */
  pacs004(toIspb: string, ret: PaymentReturn): OutboundMessage {
    return this.emit(toIspb, 'pacs.004', ret.returnId, undefined, (header) =>
      buildPacs004({ appHdr: header, msgId: header.bizMsgIdr, creDtTm: header.creDt, returns: [ret] }),
    );
  }

  /** An admi.002 rejecting the message `rejectedBizMsgIdr` (or a resource id when none could be read). */
  admi002(toIspb: string, rejectedBizMsgIdr: string, reason: { code: string; description: string; errorLocation?: string }): OutboundMessage {
    return this.emit(toIspb, 'admi.002', rejectedBizMsgIdr, reason.code, (header) =>
      buildAdmi002({
        appHdr: header,
        rejectedBizMsgIdr: rejectedBizMsgIdr.slice(0, 33),
        reason: {
          code: reason.code.slice(0, 35),
          rejectionDateTime: header.creDt,
          description: reason.description.slice(0, 350) || reason.code,
          ...(reason.errorLocation === undefined ? {} : { errorLocation: reason.errorLocation.slice(0, 350) }),
        },
      }),
    );
  }
}
