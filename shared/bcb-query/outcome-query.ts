import { generateMessageId } from '../iso20022/index.ts';
import { parseAppHdr } from '../iso20022/app-hdr.ts';
import type { BcbHttpClient } from '../bcb-client/index.ts';
import { signSpi, verifySpi } from '../xmldsig/index.ts';
import type { SigningKey, TrustStore } from '../xmldsig/index.ts';
import { buildEntryQuery, judgeEntryReport, readEntryReport } from './account-report.ts';

/** The payment asked about. */
export interface OutcomeQuestion {
  readonly sagaId: string;
  readonly endToEndId: string;
  /** The amount we sent, when the saga knows it (the sign step's reversal holds it). */
  readonly amount?: string;
}

/** The BCB's answer about one payment, judged. */
export interface OutcomeAnswer {
  /** `settled`: definite (the BCB booked it); `unknown`: a person decides. */
  readonly outcome: 'settled' | 'unknown';
  /** One line: which message said what (kept in the audit trail and the saga). */
  readonly evidence: string;
  /** The camt.060 sent, signed when a key was given (for the audit trail). */
  readonly request: string;
  /** Where it was sent (ICOM path). */
  readonly path: string;
  /** The camt.054 received, as the BCB signed it; absent when no answer came. */
  readonly response?: string;
}

/** Asks the BCB how one of our payments ended (a port: the in-doubt resolver takes any implementation). */
export interface BcbOutcomeQuery {
  ask(question: OutcomeQuestion): Promise<OutcomeAnswer>;
}

/** Options of {@link IcomOutcomeQuery}. */
export interface IcomOutcomeQueryOptions {
  /** An mTLS client of the ICOM origin (the transmit worker's settings). */
  http: Pick<BcbHttpClient, 'send'>;
  /** Our ISPB. */
  ispb: string;
  /** The BCB's signing certificates, bound to its ISPB: the answer is believed only when it verifies. */
  trustStore: TrustStore;
  /** Signs the camt.060 as every SPI message is signed; without it the request goes unsigned (the simulator's synchronous form accepts that, the BCB would not). @defaultValue unsigned */
  signingKey?: SigningKey;
  /** @defaultValue '00038166' */
  bcbIspb?: string;
  /**
   * Where the camt.060 goes and the camt.054 comes back, in one exchange. The BCB answers a camt.060
   * POSTed to `/api/v1/in/{ispb}/msgs` asynchronously, on the ICOM stream; the simulator also
   * offers this synchronous form so that the compensation worker can ask without owning a stream.
   * @defaultValue `/api/v1/in/{ispb}/account-reports` (the simulator's synchronous form)
   */
  path?: string;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/**
 * Sends a camt.060 asking for the camt.054 of one EndToEndId on our PI account and judges the
 * verified answer (`judgeEntryReport`). A transport failure, a non-2xx answer or an answer whose
 * signature does not verify rejects: the caller keeps the payment IN_DOUBT and asks again later.
 */
export class IcomOutcomeQuery implements BcbOutcomeQuery {
  readonly #options: IcomOutcomeQueryOptions;
  readonly #bcbIspb: string;
  readonly #now: () => Date;

  constructor(options: IcomOutcomeQueryOptions) {
    this.#options = options;
    this.#bcbIspb = options.bcbIspb ?? '00038166';
    this.#now = options.now ?? (() => new Date());
  }

  async ask(question: OutcomeQuestion): Promise<OutcomeAnswer> {
    const { ispb } = this.#options;
    const msgId = generateMessageId(ispb);
    const unsigned = buildEntryQuery({ ispb, bcbIspb: this.#bcbIspb, msgId, createdAt: this.#now().toISOString(), endToEndId: question.endToEndId });
    const request = this.#options.signingKey === undefined ? unsigned : await signSpi(unsigned, this.#options.signingKey);
    const path = this.#options.path ?? `/api/v1/in/${ispb}/account-reports`;
    const response = await this.#options.http.send('POST', path, request, { 'content-type': 'application/xml; charset=utf-8' });
    if (response.status < 200 || response.status > 299) throw new Error(`the account report answered ${response.status}: ${response.body.slice(0, 200)}`);
    const verified = verifySpi(response.body, { trustStore: this.#options.trustStore, now: this.#now() });
    const appHdr = parseAppHdr(verified.appHdr);
    if (appHdr.fromIspb !== this.#bcbIspb || appHdr.toIspb !== ispb) throw new Error(`the account report is from ${appHdr.fromIspb} to ${appHdr.toIspb}, not from the BCB to us`);
    const verdict = judgeEntryReport(readEntryReport(verified.document), { ispb, msgId, endToEndId: question.endToEndId, ...(question.amount === undefined ? {} : { amount: question.amount }) }, appHdr.bizMsgIdr);
    return { ...verdict, request, path, response: response.body };
  }
}
