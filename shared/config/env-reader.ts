import { PermanentError } from '../errors/index.ts';

/** The environment as a plain map (normally `process.env`). */
export type Env = Readonly<Record<string, string | undefined>>;

/** One problem found while reading configuration: which variable and what is wrong with it. */
export interface ConfigProblem {
  /** The environment variable's name. */
  variable: string;
  /** What is wrong, in words an operator can act on. */
  problem: string;
}

/**
 * Configuration is missing or malformed. The message names every offending variable, so one
 * start-up attempt shows everything that must be fixed. Values of secret variables are never
 * quoted.
 */
export class ConfigError extends PermanentError {
  /** Every problem found. */
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(
      'CONFIG_INVALID',
      `invalid configuration: ${problems.map((p) => `${p.variable} ${p.problem}`).join('; ')}`,
      { details: { variables: problems.map((p) => p.variable) } },
    );
    this.problems = problems;
  }
}

/** Options shared by the readers of {@link EnvReader}. */
export interface ReadOptions<T> {
  /** Used when the variable is unset or empty; without it the variable is required. */
  default?: T;
  /** When true, the value is never quoted in an error message. */
  secret?: boolean;
}

/**
 * Reads typed values from the environment and collects every problem, so that
 * {@link EnvReader.finish} reports them all at once (HOUSE_STYLE rule 5).
 */
export class EnvReader {
  readonly #env: Env;
  readonly #problems: ConfigProblem[] = [];

  constructor(env: Env) {
    this.#env = env;
  }

  #raw(variable: string): string | undefined {
    const value = this.#env[variable];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  #missing<T>(variable: string, options: ReadOptions<T>): T | undefined {
    if ('default' in options) return options.default;
    this.#problems.push({ variable, problem: 'is required but not set' });
    return undefined;
  }

  #shown(value: string, options: ReadOptions<unknown>): string {
    return options.secret === true ? '(value hidden)' : JSON.stringify(value);
  }

  /** A string value. */
  string(variable: string, options: ReadOptions<string> = {}): string {
    const raw = this.#raw(variable);
    return raw ?? this.#missing(variable, options) ?? '';
  }

  /** An optional string: undefined when unset. */
  optionalString(variable: string): string | undefined {
    return this.#raw(variable);
  }

  /** An integer within [min, max]. */
  integer(variable: string, options: ReadOptions<number> & { min?: number; max?: number } = {}): number {
    const raw = this.#raw(variable);
    if (raw === undefined) return this.#missing(variable, options) ?? 0;
    const value = Number(raw);
    const min = options.min ?? Number.MIN_SAFE_INTEGER;
    const max = options.max ?? Number.MAX_SAFE_INTEGER;
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
      this.#problems.push({ variable, problem: `must be an integer, got ${this.#shown(raw, options)}` });
      return options.default ?? 0;
    }
    if (value < min || value > max) {
      this.#problems.push({ variable, problem: `must be between ${min} and ${max}, got ${value}` });
      return options.default ?? 0;
    }
    return value;
  }

  /** A boolean written as true/false/1/0/yes/no. */
  boolean(variable: string, options: ReadOptions<boolean> = {}): boolean {
    const raw = this.#raw(variable);
    if (raw === undefined) return this.#missing(variable, options) ?? false;
    const lower = raw.toLowerCase();
    if (['true', '1', 'yes'].includes(lower)) return true;
    if (['false', '0', 'no'].includes(lower)) return false;
    this.#problems.push({ variable, problem: `must be true or false, got ${this.#shown(raw, options)}` });
    return options.default ?? false;
  }

  /** One of a fixed set of values. */
  oneOf<const T extends string>(variable: string, allowed: readonly T[], options: ReadOptions<T> = {}): T {
    const raw = this.#raw(variable);
    if (raw === undefined) return this.#missing(variable, options) ?? allowed[0]!;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.#problems.push({ variable, problem: `must be one of ${allowed.join(', ')}, got ${this.#shown(raw, options)}` });
    return options.default ?? allowed[0]!;
  }

  /** An http(s) URL; undefined when unset and not required. */
  optionalUrl(variable: string): string | undefined {
    const raw = this.#raw(variable);
    if (raw === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      this.#problems.push({ variable, problem: `must be an http(s) URL, got ${JSON.stringify(raw)}` });
      return undefined;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      this.#problems.push({ variable, problem: `must be an http(s) URL, got ${JSON.stringify(raw)}` });
      return undefined;
    }
    return raw.replace(/\/+$/, '');
  }

  /** Records a problem found by a caller's own check. */
  problem(variable: string, problem: string): void {
    this.#problems.push({ variable, problem });
  }

  /** Throws a {@link ConfigError} naming every problem found so far. */
  finish(): void {
    if (this.#problems.length > 0) throw new ConfigError([...this.#problems]);
  }
}
