import { PermanentError } from '../errors/index.ts';

const AMOUNT = /^(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$/;

/**
 * Normalizes a BRL amount written as a decimal string (`"1000"`, `"1000.5"`) to two decimals
 * (`"1000.50"`). Amounts are never floating point.
 *
 * @throws PermanentError `ISO20022_AMOUNT_INVALID` for anything that is not a non-negative
 * decimal with at most 2 fraction digits and 16 integer digits.
 */
export function normalizeAmount(amount: string): string {
  const match = AMOUNT.exec(amount);
  if (match === null) throw new PermanentError('ISO20022_AMOUNT_INVALID', `${JSON.stringify(amount)} is not an amount (decimal, at most 2 fraction digits)`);
  const fraction = (match[2] ?? '.').slice(1).padEnd(2, '0');
  return `${match[1] ?? '0'}.${fraction}`;
}

/** The amount in centavos. */
export function amountToCents(amount: string): bigint {
  const [integer, fraction] = normalizeAmount(amount).split('.') as [string, string];
  return BigInt(integer) * 100n + BigInt(fraction);
}

/** The decimal string of an amount in centavos. */
export function amountFromCents(cents: bigint): string {
  if (cents < 0n) throw new PermanentError('ISO20022_AMOUNT_INVALID', 'amounts are not negative');
  return `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`;
}
