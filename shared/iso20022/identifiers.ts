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

/** A date-time in the SPI's ISONormalisedDateTime form: UTC with milliseconds (`2020-01-01T08:30:12.000Z`). */
export function isoDateTime(at: Date): string {
  return at.toISOString();
}
