import { availableParallelism } from 'node:os';
import type { X509Certificate } from 'node:crypto';
import { RECEIVER_REJECTION_CODES } from '../../shared/events/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import type { FaultSettings } from './faults.ts';
import { validateFaults } from './faults.ts';
import type { TokenBucketPolicy } from './token-bucket.ts';
import { resolveInboundTraffic } from './inbound-traffic.ts';
import type { InboundTrafficOptions, ResolvedInboundTraffic } from './inbound-traffic.ts';

/**
 * How a receiving participant answers a pacs.008 the simulator forwards to it.
 *
 * - `accept`: answers ACSP after `delayMs` (a delay past the settlement limit is a late answer,
 *   ignored: the payment ends in AB03);
 * - `reject`: answers RJCT with `reasonCode` after `delayMs`;
 * - `never`: never answers (AB03 at the limit);
 * - `live`: a real client answers: the pacs.008 waits on its stream and its pacs.002 decides.
 */
export type ReceiverBehaviour =
  | { readonly mode: 'accept'; readonly delayMs?: number }
  | { readonly mode: 'reject'; readonly reasonCode: string; readonly additionalInformation?: string; readonly delayMs?: number }
  | { readonly mode: 'never' }
  | { readonly mode: 'live' };

/** A participant of the simulated SPI/DICT. */
export interface ParticipantOptions {
  /** ISPB, 8 characters `[0-9A-Z]`; also the `serialNumber` of its client certificate's subject. */
  readonly ispb: string;
  /** Certificates whose signatures are accepted from this participant (bound to its ISPB). @defaultValue none */
  readonly signingCertificates?: readonly (string | Buffer | X509Certificate)[];
  /** How it answers pacs.008 addressed to it. @defaultValue {@link BcbSimulatorOptions.defaultReceiver} */
  readonly receiver?: ReceiverBehaviour;
}

/** Options of {@link startBcbSimulator}: one type, defaults applied once in {@link resolveSimulatorOptions}. */
export interface BcbSimulatorOptions {
  /** TLS server key (PEM). */
  readonly tlsKey: string | Buffer;
  /** TLS server certificate (PEM). */
  readonly tlsCertificate: string | Buffer;
  /** CA certificates client certificates must chain to (PEM). */
  readonly clientCa: string | Buffer | readonly (string | Buffer)[];
  /** The BCB message-signing key; every SPI message and DICT response is signed with it. */
  readonly signingKey: SigningKey;
  /** The BCB's ISPB (`AppHdr/Fr` of what the simulator sends, `To` of what it receives). @defaultValue '00038166' */
  readonly bcbIspb?: string;
  /** Known participants and their behaviour. Unknown ISPBs with a valid client certificate may connect. @defaultValue [] */
  readonly participants?: readonly ParticipantOptions[];
  /** Behaviour of receivers without their own. @defaultValue `{ mode: 'accept' }` */
  readonly defaultReceiver?: ReceiverBehaviour;
  /** Loopback address to bind. @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** mTLS port (ICOM and DICT); 0 picks a free one. @defaultValue 0 */
  readonly port?: number;
  /** Plain-HTTP admin port on loopback; 0 picks a free one, `null` disables it. @defaultValue 0 */
  readonly adminPort?: number | null;
  /** Time from `AccptncDtTm` after which a payment without an answer is rejected AB03, ms. @defaultValue 40000 */
  readonly settlementLimitMs?: number;
  /** How long a stream request waits for a message before answering 204, ms. @defaultValue 5000 */
  readonly longPollMs?: number;
  /** Parallel streams per participant; one more is answered 429. @defaultValue 6 */
  readonly maxStreams?: number;
  /**
   * A stream with no request for this long is closed and its unconfirmed messages redelivered, ms.
   * Until then it counts towards `maxStreams` and its `PI-Pull-Next` can still be followed (or its
   * previous iteration re-read) by any client: see the rule on abandoned streams in `mailbox.ts`
   * (no BCB text on this expiry was found; the default is this simulator's assumption).
   * @defaultValue 30000
   */
  readonly streamIdleTimeoutMs?: number;
  /** Messages per POST (ICOM limit). @defaultValue 10 */
  readonly maxMessagesPerPost?: number;
  /** Messages per stream answer (ICOM limit). @defaultValue 10 */
  readonly maxMessagesPerPull?: number;
  /** Largest request body after decompression, bytes. @defaultValue 5242880 */
  readonly maxBodyBytes?: number;
  /** Request headers ICOM accepts (lower case); others are answered 400. @defaultValue {@link DEFAULT_ALLOWED_HEADERS} */
  readonly allowedHeaders?: readonly string[];
  /** Validate SPI messages against the catalogue XSDs (libxml2, on the main thread; the inspection threads check the rest). @defaultValue true */
  readonly schemaValidation?: boolean;
  /**
   * Worker threads that parse posted SPI messages and check their signatures, so that the event
   * loop keeps serving TLS and HTTP; 0 does it on the event loop.
   * @defaultValue one less than the available cores, at least 2 (the event loop is idle half the
   * time, so two threads gain about 1.2× on two cores) and at most 4
   */
  readonly inspectionThreads?: number;
  /** DICT entry-read token bucket (policy ENTRIES_READ_PARTICIPANT_ANTISCAN) per participant. @defaultValue 100 tokens, 10/s */
  readonly dictEntryReadPolicy?: TokenBucketPolicy;
  /** DICT write token bucket per participant. @defaultValue 1000 tokens, 100/s */
  readonly dictWritePolicy?: TokenBucketPolicy;
  /**
   * DICT claim resolution period: `ResolutionPeriodEnd` is the claim's creation plus this. An
   * ownership claim cannot be confirmed, nor a portability cancelled, with reason
   * `DEFAULT_OPERATION` before it ends (`ClaimResolutionPeriodNotEnded`). Milliseconds, so that
   * tests can use a few. @defaultValue 604800000 (7 days, the DICT's resolution period)
   */
  readonly dictClaimResolutionPeriodMs?: number;
  /**
   * DICT ownership-claim completion period: `CompletionPeriodEnd` is the claim's creation plus
   * this (ownership claims only). The claimer cannot complete, nor cancel with
   * `DEFAULT_OPERATION`, before it ends (`ClaimCompletionPeriodNotEnded`); a confirmation with
   * `USER_REQUESTED` ends it at once. Milliseconds. @defaultValue 2592000000 (30 days)
   */
  readonly dictClaimCompletionPeriodMs?: number;
  /**
   * Simulated payer PSPs paying a participant from the start (the inbound traffic generator);
   * also started, replaced and stopped with {@link BcbSimulator.inbound} or the admin endpoint
   * `/inbound-traffic`. @defaultValue none
   */
  readonly inboundTraffic?: InboundTrafficOptions;
  /** Faults active from the start. @defaultValue none */
  readonly faults?: FaultSettings;
  /** Logger. @defaultValue a `bcb-simulator` logger at level `warn` */
  readonly logger?: Logger;
}

/**
 * Headers ICOM requests may carry, lower case: the list of the ICOM manual 1.12 §2.1.8
 * ("Cabeçalhos adicionais"; restated in apolzek/open-pix docs/reference/icom-api.md, "Header
 * Whitelist"): Accept, Accept-Encoding, Connection, Content-Encoding, Content-Length,
 * Content-Type, Cookie, Host, Max-Forwards, Transfer-Encoding, User-Agent, Via. Anything else
 * (`Keep-Alive`, tracing headers such as `traceparent`/`tracestate`, any `x-…` or `PI-…`) may be
 * refused by the BCB, so the simulator refuses it.
 */
export const DEFAULT_ALLOWED_HEADERS: readonly string[] = [
  'accept', 'accept-encoding', 'connection', 'content-encoding', 'content-length', 'content-type', 'cookie', 'host', 'max-forwards',
  'transfer-encoding', 'user-agent', 'via',
];

/** {@link BcbSimulatorOptions} with every default applied. */
export type ResolvedSimulatorOptions = Required<Omit<BcbSimulatorOptions, 'logger' | 'faults' | 'adminPort' | 'inboundTraffic'>> & {
  readonly logger: Logger | undefined;
  readonly inboundTraffic: ResolvedInboundTraffic | undefined;
  readonly faults: FaultSettings;
  readonly adminPort: number | null;
};

const ISPB = /^[0-9A-Z]{8}$/;

function nonNegativeInteger(field: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`BcbSimulatorOptions.${field} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return value;
}

function positiveInteger(field: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`BcbSimulatorOptions.${field} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

/** Checks a receiver behaviour, naming the field. */
export function validateReceiver(field: string, behaviour: ReceiverBehaviour): ReceiverBehaviour {
  const modes = ['accept', 'reject', 'never', 'live'];
  if (typeof behaviour !== 'object' || !modes.includes(behaviour.mode)) throw new RangeError(`${field}.mode must be one of ${modes.join(', ')}, got ${JSON.stringify(behaviour)}`);
  if ((behaviour.mode === 'accept' || behaviour.mode === 'reject') && behaviour.delayMs !== undefined && !(Number.isFinite(behaviour.delayMs) && behaviour.delayMs >= 0)) {
    throw new RangeError(`${field}.delayMs must be a non-negative number, got ${JSON.stringify(behaviour.delayMs)}`);
  }
  // The simulated receiver's RJCT goes into a pacs.002 the simulator signs: a code outside the
  // pacs.002 1.17 list (ExternalStatusReason1Code) would make it emit a message the XSD refuses.
  if (behaviour.mode === 'reject' && !RECEIVER_REJECTION_CODES.includes(behaviour.reasonCode)) {
    throw new RangeError(`${field}.reasonCode must be a code a receiver may give (pacs.002.spi.1.17.xsd: ${RECEIVER_REJECTION_CODES.join(', ')}), got ${JSON.stringify(behaviour.reasonCode)}`);
  }
  return behaviour;
}

/**
 * ISPBs the inbound traffic generator must not play as payers: the BCB and the configured
 * participants, whose real messages would otherwise not be queued.
 */
export function reservedPayerIspbs(bcbIspb: string, participants: readonly ParticipantOptions[]): ReadonlySet<string> {
  return new Set([bcbIspb, ...participants.map((p) => p.ispb)]);
}

/** Applies the defaults and validates, naming the field and the bad value. */
export function resolveSimulatorOptions(options: BcbSimulatorOptions): ResolvedSimulatorOptions {
  const bcbIspb = options.bcbIspb ?? '00038166';
  if (!ISPB.test(bcbIspb)) throw new RangeError(`BcbSimulatorOptions.bcbIspb must be 8 characters [0-9A-Z], got ${JSON.stringify(bcbIspb)}`);
  const participants = options.participants ?? [];
  participants.forEach((p, i) => {
    if (!ISPB.test(p.ispb)) throw new RangeError(`BcbSimulatorOptions.participants[${i}].ispb must be 8 characters [0-9A-Z], got ${JSON.stringify(p.ispb)}`);
    if (p.receiver !== undefined) validateReceiver(`BcbSimulatorOptions.participants[${i}].receiver`, p.receiver);
  });
  const host = options.host ?? '127.0.0.1';
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new RangeError(`BcbSimulatorOptions.host must be a loopback address, got ${JSON.stringify(host)}`);
  const policy = (field: string, p: TokenBucketPolicy): TokenBucketPolicy => {
    if (!(p.capacity >= 1 && p.refillPerSecond >= 0)) throw new RangeError(`BcbSimulatorOptions.${field} needs capacity ≥ 1 and refillPerSecond ≥ 0, got ${JSON.stringify(p)}`);
    return p;
  };
  const inboundTraffic =
    options.inboundTraffic === undefined
      ? undefined
      : resolveInboundTraffic(options.inboundTraffic, 'BcbSimulatorOptions.inboundTraffic', reservedPayerIspbs(bcbIspb, participants));
  const maxMessagesPerPost = positiveInteger('maxMessagesPerPost', options.maxMessagesPerPost ?? 10);
  const maxMessagesPerPull = positiveInteger('maxMessagesPerPull', options.maxMessagesPerPull ?? 10);
  return {
    tlsKey: options.tlsKey,
    tlsCertificate: options.tlsCertificate,
    clientCa: options.clientCa,
    signingKey: options.signingKey,
    bcbIspb,
    participants,
    defaultReceiver: validateReceiver('BcbSimulatorOptions.defaultReceiver', options.defaultReceiver ?? { mode: 'accept' }),
    host,
    port: nonNegativeInteger('port', options.port ?? 0),
    adminPort: options.adminPort === null ? null : nonNegativeInteger('adminPort', options.adminPort ?? 0),
    settlementLimitMs: positiveInteger('settlementLimitMs', options.settlementLimitMs ?? 40_000),
    longPollMs: nonNegativeInteger('longPollMs', options.longPollMs ?? 5_000),
    maxStreams: positiveInteger('maxStreams', options.maxStreams ?? 6),
    streamIdleTimeoutMs: positiveInteger('streamIdleTimeoutMs', options.streamIdleTimeoutMs ?? 30_000),
    maxMessagesPerPost,
    maxMessagesPerPull,
    maxBodyBytes: positiveInteger('maxBodyBytes', options.maxBodyBytes ?? 5 * 1024 * 1024),
    allowedHeaders: (options.allowedHeaders ?? DEFAULT_ALLOWED_HEADERS).map((h) => h.toLowerCase()),
    schemaValidation: options.schemaValidation ?? true,
    inspectionThreads: nonNegativeInteger('inspectionThreads', options.inspectionThreads ?? Math.min(4, Math.max(2, availableParallelism() - 1))),
    dictEntryReadPolicy: policy('dictEntryReadPolicy', options.dictEntryReadPolicy ?? { capacity: 100, refillPerSecond: 10 }),
    dictWritePolicy: policy('dictWritePolicy', options.dictWritePolicy ?? { capacity: 1000, refillPerSecond: 100 }),
    dictClaimResolutionPeriodMs: nonNegativeInteger('dictClaimResolutionPeriodMs', options.dictClaimResolutionPeriodMs ?? 7 * 86_400_000),
    dictClaimCompletionPeriodMs: nonNegativeInteger('dictClaimCompletionPeriodMs', options.dictClaimCompletionPeriodMs ?? 30 * 86_400_000),
    faults: validateFaults(options.faults ?? {}),
    inboundTraffic,
    logger: options.logger,
  };
}
