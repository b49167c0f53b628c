import type { InboundTrafficOptions } from '../../infra/bcb-simulator/index.ts';
import type { OptionHelp } from './command.ts';

/** The inbound traffic generator's flags, as `parseArgs` returns them (strings, or absent). */
export interface InboundFlagValues {
  readonly 'inbound-rate'?: string | undefined;
  readonly 'inbound-to'?: string | undefined;
  readonly 'inbound-count'?: string | undefined;
  readonly 'inbound-payers'?: string | undefined;
}

/** `parseArgs` declarations of {@link InboundFlagValues}. */
export const INBOUND_FLAG_OPTIONS = {
  'inbound-rate': { type: 'string' },
  'inbound-to': { type: 'string' },
  'inbound-count': { type: 'string' },
  'inbound-payers': { type: 'string' },
} as const;

/** The inbound traffic flags' help, shared by the commands that take them. */
export const INBOUND_FLAG_HELP: readonly OptionHelp[] = [
  { flag: '--inbound-rate <N>', description: 'simulated payer PSPs pay the customers of --inbound-to N times a second (at most 1000)' },
  { flag: '--inbound-to <ISPB>', description: 'whose customers they pay (default selo\'s ISPB); needs --inbound-rate' },
  { flag: '--inbound-count <N>', description: 'that many payments in all (default until stopped); needs --inbound-rate' },
  { flag: '--inbound-payers <ISPB,…>', description: 'the payer PSPs (default 99999010,99999011); needs --inbound-rate' },
];

/**
 * The generator's options from `--inbound-rate N [--inbound-to ISPB] [--inbound-count N]
 * [--inbound-payers ISPB,ISPB]`, or undefined when `--inbound-rate` is absent (the other flags
 * then are refused). `--inbound-to` defaults to `defaultToIspb` (selo's own ISPB). Throws a
 * RangeError naming the flag and the bad value; ranges (rate limit, ISPB format) are checked by
 * the simulator, naming the option field.
 */
export function inboundTrafficFlags(values: InboundFlagValues, defaultToIspb: string): InboundTrafficOptions | undefined {
  const rate = values['inbound-rate'];
  if (rate === undefined) {
    const stray = (['inbound-to', 'inbound-count', 'inbound-payers'] as const).find((name) => values[name] !== undefined);
    if (stray !== undefined) throw new RangeError(`--${stray} needs --inbound-rate`);
    return undefined;
  }
  const ratePerSecond = Number(rate);
  if (!/^\d+(\.\d+)?$/.test(rate) || !(ratePerSecond > 0)) throw new RangeError(`--inbound-rate must be a number of payments per second above 0, got ${JSON.stringify(rate)}`);
  const countText = values['inbound-count'];
  if (countText !== undefined && !/^[1-9]\d*$/.test(countText)) throw new RangeError(`--inbound-count must be a positive integer, got ${JSON.stringify(countText)}`);
  const payers = values['inbound-payers']?.split(',').map((s) => s.trim());
  return {
    toIspb: values['inbound-to'] ?? defaultToIspb,
    ratePerSecond,
    ...(countText === undefined ? {} : { count: Number(countText) }),
    ...(payers === undefined ? {} : { payerIspbs: payers }),
  };
}
