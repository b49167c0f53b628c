/**
 * Faults the simulator injects, set per test (`simulator.faults.set`), from the admin endpoint
 * or from the command line. Every rate is a share in [0, 1]; 1 means every request.
 */
export interface FaultSettings {
  /** Which interface the request faults apply to. @defaultValue 'all' */
  scope?: 'icom' | 'dict' | 'all';
  /** Milliseconds added before every answer (slow BCB). @defaultValue 0 */
  latencyMs?: number;
  /** Share of requests answered with {@link FaultSettings.errorStatus} (a 4xx or 5xx). @defaultValue 0 */
  errorRate?: number;
  /** Status of injected errors (5xx). @defaultValue 503 */
  errorStatus?: number;
  /** Share of requests whose connection is destroyed without an answer. @defaultValue 0 */
  resetRate?: number;
  /** Share of requests never answered (the client times out). @defaultValue 0 */
  hangRate?: number;
  /** Share of requests answered 429 (throttled). @defaultValue 0 */
  throttleRate?: number;
  /** Share of signed answers (SPI messages on the streams, DICT responses) whose signature is broken. @defaultValue 0 */
  invalidSignatureRate?: number;
  /** Share of pacs.008 whose receiver answer is dropped, so the payment ends in AB03. @defaultValue 0 */
  dropAnswerRate?: number;
  /**
   * Share of settled or rejected payments whose pacs.002 to the payer is never queued: the SPI
   * decided and its ledger knows, the payer hears nothing (its payment becomes in doubt; issue 17).
   * @defaultValue 0
   */
  dropPayerStatusRate?: number;
  /**
   * Share of settled or rejected payments whose pacs.002 to the receiver is never queued: the SPI
   * decided, the receiver (for selo, a payment to its customer) hears nothing and cannot tell
   * whether to credit. @defaultValue 0
   */
  dropReceiverStatusRate?: number;
  /** Share of stream deliveries repeated later with the same `PI-ResourceId`. @defaultValue 0 */
  streamDuplicateRate?: number;
  /** Refuse TLS handshakes with a fatal `handshake_failure` alert. @defaultValue false */
  tlsHandshakeFailure?: boolean;
  /**
   * How many requests the request faults (error, reset, hang, throttle) may hit before they
   * stop, e.g. 2 for "the next two requests fail". @defaultValue unlimited
   */
  budget?: number;
}

/** A request fault chosen for one request. */
export type RequestFault = 'error' | 'reset' | 'hang' | 'throttle' | undefined;

const RATE_FIELDS = ['errorRate', 'resetRate', 'hangRate', 'throttleRate', 'invalidSignatureRate', 'dropAnswerRate', 'dropPayerStatusRate', 'dropReceiverStatusRate', 'streamDuplicateRate'] as const;

/** Checks fault settings, naming the field and value that is wrong. */
export function validateFaults(settings: FaultSettings): FaultSettings {
  for (const field of RATE_FIELDS) {
    const value = settings[field];
    if (value !== undefined && (typeof value !== 'number' || !(value >= 0 && value <= 1))) {
      throw new RangeError(`FaultSettings.${field} must be a number in [0, 1], got ${JSON.stringify(value)}`);
    }
  }
  if (settings.latencyMs !== undefined && !(Number.isFinite(settings.latencyMs) && settings.latencyMs >= 0)) {
    throw new RangeError(`FaultSettings.latencyMs must be a non-negative number, got ${JSON.stringify(settings.latencyMs)}`);
  }
  // 4xx too: a refusal the client must not retry (e.g. 403) is a fault worth injecting.
  if (settings.errorStatus !== undefined && !(Number.isInteger(settings.errorStatus) && settings.errorStatus >= 400 && settings.errorStatus <= 599)) {
    throw new RangeError(`FaultSettings.errorStatus must be a 4xx or 5xx status, got ${JSON.stringify(settings.errorStatus)}`);
  }
  if (settings.budget !== undefined && !(Number.isInteger(settings.budget) && settings.budget >= 0)) {
    throw new RangeError(`FaultSettings.budget must be a non-negative integer, got ${JSON.stringify(settings.budget)}`);
  }
  if (settings.scope !== undefined && !['icom', 'dict', 'all'].includes(settings.scope)) {
    throw new RangeError(`FaultSettings.scope must be icom, dict or all, got ${JSON.stringify(settings.scope)}`);
  }
  return settings;
}

/** Counts of faults injected so far, for tests and the admin endpoint. */
export interface FaultCounts {
  error: number;
  reset: number;
  hang: number;
  throttle: number;
  invalidSignature: number;
  droppedAnswer: number;
  droppedPayerStatus: number;
  droppedReceiverStatus: number;
  streamDuplicate: number;
  tlsHandshakeFailure: number;
}

/** Holds the current faults and decides, per request or message, which one applies. */
export class FaultController {
  private settings: FaultSettings = {};
  private budgetLeft: number | undefined;
  private readonly random: () => number;
  /** What was injected since start (never reset by {@link FaultController.clear}). */
  readonly counts: FaultCounts = { error: 0, reset: 0, hang: 0, throttle: 0, invalidSignature: 0, droppedAnswer: 0, droppedPayerStatus: 0, droppedReceiverStatus: 0, streamDuplicate: 0, tlsHandshakeFailure: 0 };

  constructor(initial: FaultSettings = {}, random: () => number = Math.random) {
    this.random = random;
    this.set(initial);
  }

  /** Replaces the faults (validated). */
  set(settings: FaultSettings): void {
    this.settings = { ...validateFaults(settings) };
    this.budgetLeft = settings.budget;
  }

  /** Removes every fault. */
  clear(): void {
    this.set({});
  }

  /** The current faults. */
  get current(): Readonly<FaultSettings> {
    return { ...this.settings, ...(this.budgetLeft === undefined ? {} : { budget: this.budgetLeft }) };
  }

  private hit(rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && (rate >= 1 || this.random() < rate);
  }

  /** Added latency for a request on `surface`. */
  latencyFor(surface: 'icom' | 'dict'): number {
    return this.applies(surface) ? (this.settings.latencyMs ?? 0) : 0;
  }

  /** Status of injected errors. */
  get errorStatus(): number {
    return this.settings.errorStatus ?? 503;
  }

  private applies(surface: 'icom' | 'dict'): boolean {
    const scope = this.settings.scope ?? 'all';
    return scope === 'all' || scope === surface;
  }

  /** The request fault for one request on `surface`, if any (consumes the budget). */
  requestFault(surface: 'icom' | 'dict'): RequestFault {
    if (!this.applies(surface) || this.budgetLeft === 0) return undefined;
    let fault: RequestFault;
    if (this.hit(this.settings.resetRate)) fault = 'reset';
    else if (this.hit(this.settings.hangRate)) fault = 'hang';
    else if (this.hit(this.settings.errorRate)) fault = 'error';
    else if (this.hit(this.settings.throttleRate)) fault = 'throttle';
    if (fault !== undefined) {
      this.counts[fault]++;
      if (this.budgetLeft !== undefined) this.budgetLeft--;
    }
    return fault;
  }

  /** Whether this signed answer gets a broken signature. */
  breakSignature(): boolean {
    const hit = this.hit(this.settings.invalidSignatureRate);
    if (hit) this.counts.invalidSignature++;
    return hit;
  }

  /** Whether the receiver's answer to this payment is dropped. */
  dropAnswer(): boolean {
    const hit = this.hit(this.settings.dropAnswerRate);
    if (hit) this.counts.droppedAnswer++;
    return hit;
  }

  /** Whether the payer's pacs.002 about this decided payment is dropped. */
  dropPayerStatus(): boolean {
    const hit = this.hit(this.settings.dropPayerStatusRate);
    if (hit) this.counts.droppedPayerStatus++;
    return hit;
  }

  /** Whether the receiver's pacs.002 about this decided payment is dropped. */
  dropReceiverStatus(): boolean {
    const hit = this.hit(this.settings.dropReceiverStatusRate);
    if (hit) this.counts.droppedReceiverStatus++;
    return hit;
  }

  /** Whether this stream delivery is repeated later. */
  duplicateDelivery(): boolean {
    const hit = this.hit(this.settings.streamDuplicateRate);
    if (hit) this.counts.streamDuplicate++;
    return hit;
  }

  /** Whether this TLS handshake is refused. */
  failHandshake(): boolean {
    const hit = this.settings.tlsHandshakeFailure === true;
    if (hit) this.counts.tlsHandshakeFailure++;
    return hit;
  }
}

/**
 * Breaks an XML signature: flips one character of `SignatureValue`, so that the document still
 * parses and the structure is intact but verification fails with a signature mismatch.
 */
export function corruptSignature(xml: string): string {
  const match = /<(?:ds:)?SignatureValue[^>]*>\s*([A-Za-z0-9+/])/.exec(xml);
  if (match === null) return xml;
  const index = match.index + match[0].length - 1;
  const replacement = xml[index] === 'A' ? 'B' : 'A';
  return xml.slice(0, index) + replacement + xml.slice(index + 1);
}
