import { randomInt } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/**
 * An ISPB: 8 characters, digits or upper-case letters (`ISPBType` of the SPI XSDs, e.g.
 * shared/spec/spi-5.13.1/xsd/pacs.008.spi.1.16.xsd: `[0-9A-Z]{8}`; the BCB's virtual participants
 * in homologation include `99999A03`, `99999A04`). Not "8 digits".
 */
export const ISPB_PATTERN = /^[0-9A-Z]{8}$/;
const ISPB = ISPB_PATTERN;

/** `[E]` + ISPB + `yyyyMMddHHmm` (UTC) + 11 alphanumerics (BCB SPI catalogue, EndToEndIdType). */
export const END_TO_END_ID = /^E[0-9A-Z]{8}[0-9]{4}[0-1][0-9][0-3][0-9][0-2][0-9][0-5][0-9][a-zA-Z0-9]{11}$/;
/** `[D]` + ISPB + `yyyyMMddHHmm` (UTC) + 11 alphanumerics: the return identifier of a pacs.004. */
export const RETURN_ID = /^D[0-9A-Z]{8}[0-9]{4}[0-1][0-9][0-3][0-9][0-2][0-9][0-5][0-9][a-zA-Z0-9]{11}$/;
/** `[M]` + ISPB + 23 alphanumerics (MsgIdType): BizMsgIdr and MsgId. */
export const MESSAGE_ID = /^M[0-9A-Z]{8}[a-zA-Z0-9]{23}$/;

/**
 * How far the time in an EndToEndId (`yyyyMMddHHmm`, UTC) may be from the time the SPI processes
 * the order. Two BCB sources, which disagree for a priority order:
 * - the SPI catalogue's rule for the field, as restated word for word in the Open Finance Brasil
 *   payments API (`endToEndId`: "Para ordens prioritárias e não prioritárias, aceita-se o
 *   preenchimento, pelo agente que gerou o ´EndToEndId´, com uma tolerância máxima de 12 horas,
 *   para o futuro e para o passado, em relação ao horário efetivo de processamento da ordem pelo
 *   SPI");
 * - the SPI itself, quoted by BCB staff in bacen/pix-perguntas-e-respostas #282 (2020): a pacs.008
 *   refused with pacs.002 RJCT `FF08` "A data/hora no identificador da ordem de novo pagamento
 *   prioritario está mais de 1h30m atrasada", the BCB confirming that the date-time meant is the
 *   EndToEndId's.
 * selo takes the safer reading (assumption, README "Conformance notes"): a priority order
 * (`InstrPrty` HIGH, `PAGPRI`) at most 1 h 30 min in the past; every order at most 12 h either way.
 */
export const END_TO_END_ID_TIME_TOLERANCE = {
  /** How far behind the SPI's time a priority order's EndToEndId may be, ms (1 h 30 min). */
  priorityPastMs: 90 * 60_000,
  /** How far behind or ahead any order's EndToEndId may be, ms (12 h). */
  anyMs: 12 * 3_600_000,
} as const;

/** The reason code the SPI gives a pacs.008 whose EndToEndId time is out of its window (bacen/pix-perguntas-e-respostas #282). */
export const END_TO_END_ID_TIME_REASON = 'FF08';

/** The instant (UTC, to the minute) in an EndToEndId or RtrId, or undefined when the id has none or names no real date. */
export function endToEndIdTime(id: string): Date | undefined {
  const match = /^[ED][0-9A-Z]{8}(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})[a-zA-Z0-9]{11}$/.exec(id);
  if (match === null) return undefined;
  const [year, month, day, hour, minute] = match.slice(1).map(Number) as [number, number, number, number, number];
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute));
  // Date.UTC rolls 2026-02-30 over into March: only a date that reads back the same is real.
  if (at.getUTCFullYear() !== year || at.getUTCMonth() !== month - 1 || at.getUTCDate() !== day || at.getUTCHours() !== hour || at.getUTCMinutes() !== minute) return undefined;
  return at;
}

/** Which part of the rule an EndToEndId's time breaks, and how, for messages. */
export interface EndToEndIdTimeProblem {
  /** `PRIORITY_LATE`: over 1 h 30 min behind (priority order); `OUT_OF_WINDOW`: over 12 h either way; `NO_TIME`: no valid date-time. */
  readonly rule: 'PRIORITY_LATE' | 'OUT_OF_WINDOW' | 'NO_TIME';
  readonly message: string;
}

/**
 * Why the SPI would refuse `endToEndId` if it processed the order at `at`
 * ({@link END_TO_END_ID_TIME_TOLERANCE}), or undefined when its time is within the window.
 * `priority`: the order is priority (`InstrPrty` HIGH, `SvcLvl/Prtry` PAGPRI).
 */
export function endToEndIdTimeProblem(endToEndId: string, at: Date, options: { priority: boolean }): EndToEndIdTimeProblem | undefined {
  const time = endToEndIdTime(endToEndId);
  if (time === undefined) return { rule: 'NO_TIME', message: `EndToEndId ${endToEndId} does not carry a valid yyyyMMddHHmm date-time` };
  const behindMs = at.getTime() - time.getTime();
  const minutes = `${Math.floor(Math.abs(behindMs) / 60_000)} min`;
  if (options.priority && behindMs > END_TO_END_ID_TIME_TOLERANCE.priorityPastMs) {
    return { rule: 'PRIORITY_LATE', message: `the date-time in EndToEndId ${endToEndId} is ${minutes} behind ${at.toISOString()}: a priority order's may be at most 1 h 30 min behind` };
  }
  if (Math.abs(behindMs) > END_TO_END_ID_TIME_TOLERANCE.anyMs) {
    return { rule: 'OUT_OF_WINDOW', message: `the date-time in EndToEndId ${endToEndId} is ${minutes} ${behindMs > 0 ? 'behind' : 'ahead of'} ${at.toISOString()}: it may be at most 12 h either way` };
  }
  return undefined;
}

/** Source of randomness for identifiers; injectable so tests are deterministic. */
export type RandomIndex = (maxExclusive: number) => number;

function randomAlphanumerics(count: number, random: RandomIndex): string {
  let out = '';
  for (let i = 0; i < count; i++) out += ALPHANUMERIC.charAt(random(ALPHANUMERIC.length));
  return out;
}

function checkIspb(ispb: string): void {
  if (!ISPB.test(ispb)) throw new RangeError(`ISPB must be 8 characters [0-9A-Z], got ${JSON.stringify(ispb)}`);
}

function minuteStamp(at: Date): string {
  // yyyyMMddHHmm in UTC (DESIGN §2).
  return at.toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

/** Options of the identifier generators. */
export interface IdOptions {
  /** The instant embedded in time-stamped ids. @defaultValue now */
  at?: Date;
  /** Random source. @defaultValue `crypto.randomInt` */
  random?: RandomIndex;
}

/** A new EndToEndId for a payment initiated by `ispb`. */
export function generateEndToEndId(ispb: string, options: IdOptions = {}): string {
  checkIspb(ispb);
  return `E${ispb}${minuteStamp(options.at ?? new Date())}${randomAlphanumerics(11, options.random ?? randomInt)}`;
}

/** A new return identifier (RtrId) for a pacs.004 sent by `ispb`. */
export function generateReturnId(ispb: string, options: IdOptions = {}): string {
  checkIspb(ispb);
  return `D${ispb}${minuteStamp(options.at ?? new Date())}${randomAlphanumerics(11, options.random ?? randomInt)}`;
}

/** A new BizMsgIdr / MsgId for a message sent by `ispb`. */
export function generateMessageId(ispb: string, options: IdOptions = {}): string {
  checkIspb(ispb);
  return `M${ispb}${randomAlphanumerics(23, options.random ?? randomInt)}`;
}

/**
 * The BizMsgIdr / MsgId of the pacs.008 of the payment `endToEndId`: `M` followed by the
 * EndToEndId's 31 characters after its `E` (its ISPB, minute stamp and 11 alphanumerics). The
 * catalogue's XSD types allow it: MsgIdType is `[M][0-9A-Z]{8}[a-zA-Z0-9]{23}` and the
 * EndToEndId `[E][0-9A-Z]{8}` + 12 digits + `[a-zA-Z0-9]{11}` (pacs.008.spi.1.16.xsd). One
 * payment, one pacs.008, so it is unique as the EndToEndId is, and an admi.002 quoting it leads
 * back to the payment with no pointer item to write ({@link endToEndIdOfPaymentMessageId}).
 */
export function paymentMessageId(endToEndId: string): string {
  if (!END_TO_END_ID.test(endToEndId)) throw new RangeError(`not an EndToEndId: ${JSON.stringify(endToEndId)}`);
  return `M${endToEndId.slice(1)}`;
}

/**
 * The EndToEndId whose pacs.008 would carry `msgId` ({@link paymentMessageId}); undefined when
 * `msgId` cannot be one. Only a candidate: whether that payment's message had this id is the
 * saga's to say (other messages have ids of the same form).
 */
export function endToEndIdOfPaymentMessageId(msgId: string): string | undefined {
  if (!msgId.startsWith('M')) return undefined;
  const endToEndId = `E${msgId.slice(1)}`;
  return END_TO_END_ID.test(endToEndId) ? endToEndId : undefined;
}

/** A date-time in the SPI's ISONormalisedDateTime form: UTC with milliseconds (`2020-01-01T08:30:12.000Z`). */
export function isoDateTime(at: Date): string {
  return at.toISOString();
}
