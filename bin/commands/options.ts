/**
 * A `--<name>` port flag: a whole number from 0 (any free port) to 65535, or `fallback` when the
 * flag was not given. Throws a RangeError naming the flag and the bad value.
 */
export function portOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed > 65_535) throw new RangeError(`--${name} must be a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  return parsed;
}
