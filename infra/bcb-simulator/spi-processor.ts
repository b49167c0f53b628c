import { END_TO_END_ID, END_TO_END_ID_TIME_REASON, MESSAGE_ID, MessageFormatError, PAYMENT_PRIORITIES, RETURN_ID, buildPibr002, endToEndIdTimeProblem } from '../../shared/iso20022/index.ts';
import type { AppHdr } from '../../shared/iso20022/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { bookedEntry, entryQueryProblem, entryReport, ENTRY_NOT_FOUND } from './account-reports.ts';
import type { Ledger, ReceivedMessage } from './ledger.ts';
import { DUPLICATE_INSTRUCTION_REASON } from './settlement-engine.ts';
import type { SettlementEngine } from './settlement-engine.ts';
import type { SpiEmitter } from './spi-emitter.ts';
import type { SpiContent, SpiFinding } from './spi-inspection.ts';
import type { SpiInspector } from './spi-inspector.ts';

/** Dependencies of {@link SpiProcessor}. */
export interface SpiProcessorDeps {
  readonly bcbIspb: string;
  /** Parses, reads the header and content, validates the XSD and checks the signature (the XSD on this thread, the rest on this thread or others). */
  readonly inspector: SpiInspector;
  readonly ledger: Ledger;
  readonly emitter: SpiEmitter;
  readonly engine: SettlementEngine;
  readonly logger: Logger;
}

/** A message refused after the 201: becomes an admi.002 to the sender. */
class Refusal extends Error {
  readonly code: string;
  readonly location: string | undefined;
  constructor(code: string, message: string, location?: string) {
    super(message);
    this.code = code;
    this.location = location;
  }
}

/**
 * What the simulated SPI does with each message after answering 201 (ICOM is asynchronous):
 * parse, XSD validation, signature verification with the signer bound to `AppHdr/Fr`, sender
 * and identifier checks, duplicate detection, then the business flow. Anything refused becomes
 * a signed admi.002 on the sender's stream naming the problem.
 */
export class SpiProcessor {
  private readonly deps: SpiProcessorDeps;
  private readonly seenBizMsgIdr = new Set<string>();
  /** Settles when the inspection of the message posted last has settled. */
  private previous: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(deps: SpiProcessorDeps) {
    this.deps = deps;
  }

  /** Messages still being processed. */
  get pending(): number {
    return this.inFlight;
  }

  /** Processes one posted message in the background; never throws. */
  submit(record: ReceivedMessage, xml: string): void {
    this.inFlight++;
    this.process(record, xml)
      .catch((error: unknown) => {
        this.deps.logger.error({ err: error, resourceId: record.resourceId }, 'unexpected error processing a SPI message');
      })
      .finally(() => {
        this.inFlight--;
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Resolves when nothing is being processed. */
  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async process(record: ReceivedMessage, xml: string): Promise<void> {
    const { ledger } = this.deps;
    // Inspections may finish in any order on several threads; messages are acted on in the order
    // they were posted (duplicate detection, settlement), as the BCB would.
    const inspecting = this.deps.inspector.inspect(xml);
    const inTurn = this.previous.then(() => inspecting);
    this.previous = inTurn.then(
      () => undefined,
      () => undefined,
    );
    let header: AppHdr | undefined;
    try {
      const inspection = await inTurn;
      header = inspection.header;
      if (header !== undefined) record.bizMsgIdr = header.bizMsgIdr;
      if (inspection.type !== undefined) record.type = inspection.type;
      if (!inspection.ok) throw refusalOf(inspection.finding);
      // From here on everything is synchronous, so that duplicate detection cannot race.
      if (inspection.xsd !== undefined) throw refusalOf(inspection.xsd);
      const verifiedHeader = inspection.header;
      if (inspection.signature !== undefined) throw refusalOf(inspection.signature);
      if (verifiedHeader.fromIspb !== record.ispb) throw new Refusal('SENDER_ISPB_MISMATCH', `AppHdr/Fr ${verifiedHeader.fromIspb} is not the ISPB of the client certificate (${record.ispb})`, '/Envelope/AppHdr/Fr');
      if (verifiedHeader.toIspb !== this.deps.bcbIspb) throw new Refusal('RECEIVER_ISPB_INVALID', `AppHdr/To must be the SPI (${this.deps.bcbIspb}), got ${verifiedHeader.toIspb}`, '/Envelope/AppHdr/To');
      if (!MESSAGE_ID.test(verifiedHeader.bizMsgIdr) || verifiedHeader.bizMsgIdr.slice(1, 9) !== verifiedHeader.fromIspb) {
        throw new Refusal('BIZMSGIDR_INVALID', `BizMsgIdr ${verifiedHeader.bizMsgIdr} is not M + the sender's ISPB + 23 alphanumerics`, '/Envelope/AppHdr/BizMsgIdr');
      }
      // Every answer a receiver posts is on record, a copy refused below included: a test can then
      // see that a participant never sent two different answers for one payment.
      const answered = inspection.content;
      if (answered !== undefined && 'type' in answered && answered.type === 'pacs.002') {
        for (const status of answered.statuses) ledger.noteAnswer(status, verifiedHeader.fromIspb, status.status === 'RJCT' ? `RJCT ${status.reason?.code ?? ''}`.trim() : status.status, record.receivedAt);
      }
      if (this.seenBizMsgIdr.has(verifiedHeader.bizMsgIdr)) {
        // A resent copy of a message already received changes nothing and is answered by nothing:
        // the SPI is idempotent on resends (BCB staff, bacen/pix-perguntas-e-respostas #442: after
        // a 201 the participant gets the pacs.002 or admi.002 about the message sent before, no
        // resend is needed; #180: the idempotency window is in the Catálogo de Serviços do SFN,
        // Volume VI). No BCB text seen names an admi.002 for a repeated BizMsgIdr, and an admi.002's
        // RjctgPtyRsn is free text (Max35Text), not a code list; the code invented here before
        // (DUPLICATE_BIZMSGIDR) is gone.
        ledger.setOutcome(record, 'duplicate', { code: 'BIZMSGIDR_REPEATED', message: `BizMsgIdr ${verifiedHeader.bizMsgIdr} was already received: ignored` });
        return;
      }
      this.seenBizMsgIdr.add(verifiedHeader.bizMsgIdr);
      const content = inspection.content;
      if (content === undefined || 'code' in content) throw refusalOf(content ?? { code: 'ISO20022_MESSAGE_INVALID', message: 'the message content could not be read' });
      this.dispatch(content, verifiedHeader, record);
      if (record.outcome === 'processing') ledger.setOutcome(record, 'accepted');
    } catch (error) {
      const refusal =
        error instanceof Refusal ? error : error instanceof MessageFormatError ? new Refusal(error.code, error.message) : undefined;
      if (refusal === undefined) throw error;
      ledger.setOutcome(record, 'invalid', { code: refusal.code, message: refusal.message });
      this.deps.emitter.admi002(record.ispb, header?.bizMsgIdr ?? record.resourceId, {
        code: refusal.code,
        description: refusal.message,
        ...(refusal.location === undefined ? {} : { errorLocation: refusal.location }),
      });
    }
  }

  private dispatch(content: SpiContent, header: AppHdr, record: ReceivedMessage): void {
    const now = new Date();
    switch (content.type) {
      case 'pacs.008': {
        content.transactions.forEach((tx, i) => {
          const location = `/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[${i + 1}]`;
          if (!END_TO_END_ID.test(tx.endToEndId)) throw new Refusal('ENDTOENDID_INVALID', `EndToEndId ${tx.endToEndId} does not have the BCB format`, `${location}/PmtId/EndToEndId`);
          if (tx.debtorAgentIspb !== header.fromIspb) throw new Refusal('DEBTOR_AGENT_INVALID', `DbtrAgt ${tx.debtorAgentIspb} is not the sender ${header.fromIspb}`, `${location}/DbtrAgt`);
        });
        for (const tx of content.transactions) {
          if (this.deps.ledger.hasPayment(tx.endToEndId)) {
            // A second pacs.008 with a known EndToEndId never settles twice (reason code: see DUPLICATE_INSTRUCTION_REASON).
            this.deps.ledger.setOutcome(record, 'duplicate', { code: 'DUPLICATE_ENDTOENDID', message: `EndToEndId ${tx.endToEndId} was already received` });
            this.deps.engine.refuse(tx, header.fromIspb, DUPLICATE_INSTRUCTION_REASON, `EndToEndId ${tx.endToEndId} duplicado`);
            continue;
          }
          // The EndToEndId's time must be near the SPI's (END_TO_END_ID_TIME_TOLERANCE names the
          // BCB sources: 1 h 30 min behind at most for a priority order, 12 h either way for any).
          // Checked after the duplicate rule: a late copy of a known payment is a copy, not a refusal.
          const priority = PAYMENT_PRIORITIES[content.serviceLevel ?? 'PAGPRI'] === 'HIGH';
          const late = endToEndIdTimeProblem(tx.endToEndId, now, { priority });
          if (late !== undefined) {
            // The id is spent all the same: the SPI refuses any later use of it.
            this.deps.ledger.addPayment({ endToEndId: tx.endToEndId, kind: 'pacs.008', payerIspb: header.fromIspb, receiverIspb: tx.creditorAgentIspb, amount: tx.amount, bizMsgIdr: header.bizMsgIdr, receivedAt: now.toISOString(), status: 'pending' });
            this.deps.ledger.decide(tx.endToEndId, 'rejected', END_TO_END_ID_TIME_REASON);
            // The SPI's own words for the priority case (bacen/pix-perguntas-e-respostas #282).
            this.deps.engine.refuse(tx, header.fromIspb, END_TO_END_ID_TIME_REASON, late.rule === 'PRIORITY_LATE' ? 'A data/hora no identificador da ordem de novo pagamento prioritario está mais de 1h30m atrasada' : `A data/hora no identificador da ordem está fora da tolerância de 12 horas: ${late.message}`);
            continue;
          }
          this.deps.engine.begin(tx, header.bizMsgIdr, header.fromIspb, now);
        }
        return;
      }
      case 'pacs.002': {
        for (const status of content.statuses) {
          if (status.status !== 'ACSP' && status.status !== 'RJCT') {
            throw new Refusal('STATUS_NOT_ALLOWED', `a participant answers ACSP or RJCT, got ${status.status}`, '/Envelope/Document/FIToFIPmtStsRpt/TxInfAndSts/TxSts');
          }
          // The answer names what it answers by OrgnlInstrId: a pacs.008's EndToEndId, or a pacs.004's
          // RtrId (whose OrgnlEndToEndId is the returned payment's, pacs.002 XSD; bacen/pix-api #184, #250).
          this.deps.engine.answer(header.fromIspb, status.originalInstructionId, status.status, status.reason, status.originalEndToEndId);
        }
        return;
      }
      case 'pacs.004': {
        content.returns.forEach((ret, i) => {
          const location = `/Envelope/Document/PmtRtr/TxInf[${i + 1}]`;
          if (!RETURN_ID.test(ret.returnId)) throw new Refusal('RTRID_INVALID', `RtrId ${ret.returnId} does not have the BCB format`, `${location}/RtrId`);
          if (ret.debtorAgentIspb !== header.fromIspb) throw new Refusal('DEBTOR_AGENT_INVALID', `DbtrAgt ${ret.debtorAgentIspb} is not the sender ${header.fromIspb}`, `${location}/DbtrAgt`);
        });
        for (const ret of content.returns) this.deps.engine.returnPayment(ret, header.bizMsgIdr, header.fromIspb, now);
        return;
      }
      case 'pibr.001': {
        const data = content.data;
        this.deps.emitter.emit(header.fromIspb, 'pibr.002', header.bizMsgIdr, undefined, (h) =>
          buildPibr002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, originalData: data }),
        );
        return;
      }
      case 'pibr.002': {
        // A participant answers the SPI's pibr.001 with a pibr.002 whose OrgnlData repeats the
        // request's Data (catalogue 5.13.1, pibr.002 EchoRpt); an answer to no echo sent to it is refused.
        const echo = this.deps.ledger.answerEcho(header.fromIspb, content.originalData, header.bizMsgIdr, now);
        if (echo === undefined) {
          throw new Refusal('ECHO_UNKNOWN', `OrgnlData ${JSON.stringify(content.originalData)} matches no pibr.001 the SPI sent to ${header.fromIspb}`, '/Envelope/Document/EchoRpt/EchoTxInf/OrgnlData');
        }
        return;
      }
      case 'camt.060': {
        // A participant asks about an entry of its PI account; the SPI answers on the participant's
        // ICOM stream with a camt.054 signed like every SPI message (bacen/pix-perguntas-e-respostas
        // #28: "foi gerada uma CAMT.054 ... em resposta a CAMT.060"; #43: a camt.060 POSTed like any
        // message, answered asynchronously or refused with an admi.002).
        const problem = entryQueryProblem(content, header.fromIspb, header.bizMsgIdr);
        if (problem !== undefined) throw new Refusal(problem.code, problem.message, problem.location);
        const query = { msgId: header.bizMsgIdr, id: content.id ?? '' };
        const booked = bookedEntry(this.deps.ledger, query.id, header.fromIspb);
        this.deps.emitter.emit(header.fromIspb, 'camt.054', query.id, booked === undefined ? ENTRY_NOT_FOUND : 'BOOK', (h) => entryReport(query, header.fromIspb, h, booked));
        return;
      }
      case 'unsupported':
        throw new Refusal('MESSAGE_TYPE_NOT_SUPPORTED', `the simulator does not process ${content.message}`, '/Envelope/Document');
      case 'defect': {
        const error = new Error(`reading the ${record.type ?? 'message'} content failed: ${content.message}`);
        if (content.stack !== undefined) error.stack = content.stack;
        throw error;
      }
    }
  }
}

function refusalOf(finding: SpiFinding): Refusal {
  return new Refusal(finding.code, finding.message, finding.location);
}
