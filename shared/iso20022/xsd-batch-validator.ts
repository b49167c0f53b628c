import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPI_SCHEMA_FILES, schemaText, validateSpiMessage } from './xsd-validation.ts';
import type { SpiSchema } from './xsd-validation.ts';

/** Options of {@link XsdBatchValidator}. */
export interface XsdBatchValidatorOptions {
  /**
   * Messages validated by one `xmllint` run at most.
   * @defaultValue 1000
   */
  maxBatch?: number;
  /**
   * How long a message waits for batch-mates before its run starts.
   * @defaultValue 2
   */
  maxDelayMs?: number;
  /**
   * `xmllint` runs at once.
   * @defaultValue 1
   */
  maxProcesses?: number;
  /**
   * Least time between the starts of two runs (unless a batch is full). Each run costs a process
   * start and a schema parse (about 10 ms of CPU on the development VM); a busy caller trades this
   * much latency for larger batches.
   * @defaultValue 0
   */
  minRunIntervalMs?: number;
  /**
   * Where the work files go. A memory file system makes writing them cost a copy; on a disk
   * file system creating and removing a file per message costs more than validating it.
   * @defaultValue `/dev/shm` when writable, else the OS temporary directory
   */
  workRoot?: string;
}

/** Counters of an {@link XsdBatchValidator}. */
export interface XsdBatchStats {
  /** `xmllint` runs over batches. */
  readonly runs: number;
  /** Messages validated in those runs. */
  readonly messages: number;
  /** Messages the batch refused and that were checked again alone. */
  readonly rechecked: number;
}

const MEMORY_FS = '/dev/shm';

/** Work folders are named `<prefix><pid>-<random>`, so that one left by a killed process can be told apart. */
const WORK_DIR_PREFIX = 'selo-xsd-batch-';
const WORK_DIR_PATTERN = /^selo-xsd-batch-(\d+)-/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the work folders of processes that no longer run (killed before `close`): in `/dev/shm`
 * they would hold memory until the machine restarts. Best effort: a folder that cannot be read or
 * removed is left alone.
 */
export async function removeAbandonedWorkDirs(root: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = WORK_DIR_PATTERN.exec(name);
    const pid = Number(match?.[1]);
    if (match === null || pid === process.pid || processAlive(pid)) continue;
    try {
      await rm(join(root, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // another process removed it first, or it is not ours to remove
    }
  }
  return removed;
}

function defaultWorkRoot(): { root: string; memory: boolean } {
  try {
    accessSync(MEMORY_FS, constants.W_OK);
    return { root: MEMORY_FS, memory: true };
  } catch {
    return { root: tmpdir(), memory: false };
  }
}

interface Pending {
  xml: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Quotes one argument for the POSIX shell. */
function shellQuote(argument: string): string {
  return `'${argument.replaceAll("'", "'\\''")}'`;
}

/**
 * Runs `xmllint` through one long-lived `/bin/sh`. Starting a process from a large Node process
 * costs tens of milliseconds of its CPU (fork copies its page tables; measured 12-35 ms on the
 * development VM, the event loop blocked meanwhile); from a small shell it costs the shell. One
 * command at a time; the shell is started on first use, again if it dies, and is referenced only
 * while a command runs (an idle validator does not keep the process alive).
 */
class XmllintShell {
  #shell: ChildProcessByStdio<Writable, Readable, null> | undefined;
  #output = '';
  #pending: { resolve: (result: { code: number; output: string }) => void; reject: (error: unknown) => void } | undefined;
  readonly #marker = `__selo_xmllint_${randomUUID()}__`;

  /** Runs `xmllint args…` (stderr and stdout together); resolves with its exit code and output. */
  run(args: readonly string[]): Promise<{ code: number; output: string }> {
    if (this.#pending !== undefined) return Promise.reject(new Error('XmllintShell runs one command at a time'));
    const shell = this.#start();
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      shell.ref();
      (shell.stdout as Socket).ref();
      // The marker line carries xmllint's exit code; the newline before it ends any partial line.
      shell.stdin.write(`xmllint ${args.map(shellQuote).join(' ')} 2>&1; printf '\\n%s %d\\n' ${this.#marker} $?\n`);
    });
  }

  /** Ends the shell. */
  close(): void {
    this.#shell?.stdin.end();
    this.#shell = undefined;
  }

  #start(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.#shell !== undefined) return this.#shell;
    const shell = spawn('/bin/sh', [], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.#shell = shell;
    this.#output = '';
    shell.stdout.setEncoding('utf8');
    shell.stdout.on('data', (chunk: string) => {
      this.#output += chunk;
      const end = this.#output.lastIndexOf(`\n${this.#marker} `);
      if (end < 0 || !this.#output.endsWith('\n')) return;
      const code = Number(this.#output.slice(end + this.#marker.length + 2, -1));
      const output = this.#output.slice(0, end);
      this.#output = '';
      this.#finish(undefined, { code, output });
    });
    const died = (error?: Error): void => {
      if (this.#shell === shell) this.#shell = undefined;
      this.#finish(new Error(`the xmllint shell ended${error === undefined ? '' : `: ${error.message}`}`, { cause: error }));
    };
    shell.on('error', died);
    shell.on('exit', () => died());
    shell.stdin.on('error', () => undefined); // a dead shell is reported by 'exit'
    return shell;
  }

  #finish(error: unknown, result?: { code: number; output: string }): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#shell?.unref();
    (this.#shell?.stdout as Socket | undefined)?.unref();
    if (pending === undefined) return;
    if (result !== undefined) pending.resolve(result);
    else pending.reject(error);
  }
}

/**
 * XSD validation for a busy process. {@link validateSpiMessage} starts `xmllint` and parses the
 * schema for every message (tens of milliseconds, and `spawn` blocks the event loop while it
 * forks); this gathers the messages of a few milliseconds and validates them in one run. A message
 * the batch run refuses is checked again alone, so its error names the offending path exactly as
 * {@link validateSpiMessage} does. Each concurrent run owns a set of slot files that later runs
 * overwrite (no file is created or removed per message), in memory (`/dev/shm`) when it can.
 * `close()` waits for running batches and removes its files.
 */
export class XsdBatchValidator {
  readonly #queues = new Map<SpiSchema, Pending[]>();
  readonly #timers = new Map<SpiSchema, NodeJS.Timeout>();
  readonly #maxBatch: number;
  readonly #maxDelayMs: number;
  readonly #maxProcesses: number;
  readonly #minRunIntervalMs: number;
  #lastRunAt = Number.NEGATIVE_INFINITY;
  readonly #workRoot: string;
  readonly #memory: boolean;
  #dir: Promise<string> | undefined;
  #closed = false;
  #running = 0;
  /** Slot sets not used by a running batch; a run with none free takes a new one. */
  readonly #freeSlots: number[] = [];
  #slots = 0;
  #runs = 0;
  #messages = 0;
  #rechecked = 0;
  /** One xmllint shell per slot (slots run one batch at a time). */
  readonly #shells = new Map<number, XmllintShell>();

  constructor(options: XsdBatchValidatorOptions = {}) {
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#maxDelayMs = options.maxDelayMs ?? 2;
    this.#maxProcesses = options.maxProcesses ?? 1;
    this.#minRunIntervalMs = options.minRunIntervalMs ?? 0;
    const root = options.workRoot === undefined ? defaultWorkRoot() : { root: options.workRoot, memory: options.workRoot === MEMORY_FS };
    this.#workRoot = root.root;
    this.#memory = root.memory;
    for (const [field, value, min] of [['maxBatch', this.#maxBatch, 1], ['maxDelayMs', this.#maxDelayMs, 0], ['maxProcesses', this.#maxProcesses, 1], ['minRunIntervalMs', this.#minRunIntervalMs, 0]] as const) {
      if (!Number.isInteger(value) || value < min) throw new RangeError(`XsdBatchValidatorOptions.${field} must be an integer ≥ ${min}, got ${String(value)}`);
    }
  }

  /** Whether selo has the official XSD of `msgDefIdr`. */
  static has(msgDefIdr: string): msgDefIdr is SpiSchema {
    return Object.hasOwn(SPI_SCHEMA_FILES, msgDefIdr);
  }

  /** Resolves when `xml` is valid; rejects with the same `SchemaValidationError` as {@link validateSpiMessage}. */
  validate(xml: string, schema: SpiSchema): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the XSD validator is closed'));
    return new Promise<void>((resolve, reject) => {
      const queue = this.#queues.get(schema) ?? [];
      this.#queues.set(schema, queue);
      queue.push({ xml, resolve, reject });
      if (this.#running >= this.#maxProcesses) return;
      if (queue.length >= this.#maxBatch) this.#flush(schema);
      else if (!this.#timers.has(schema)) this.#timers.set(schema, setTimeout(() => this.#flush(schema), this.#maxDelayMs));
    });
  }

  /** Runs, messages and re-checks so far. */
  get stats(): XsdBatchStats {
    return { runs: this.#runs, messages: this.#messages, rechecked: this.#rechecked };
  }

  /** Validates what is queued, waits for running batches, removes the work files; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const schema of [...this.#queues.keys()]) this.#flush(schema);
    while (this.#running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const shell of this.#shells.values()) shell.close();
    this.#shells.clear();
    if (this.#dir !== undefined) await rm(await this.#dir, { recursive: true, force: true });
  }

  #workDir(): Promise<string> {
    this.#dir ??= (async () => {
      await removeAbandonedWorkDirs(this.#workRoot);
      const dir = await mkdtemp(join(this.#workRoot, `${WORK_DIR_PREFIX}${process.pid}-`));
      for (const schema of Object.keys(SPI_SCHEMA_FILES) as SpiSchema[]) await writeFile(join(dir, `${schema}.xsd`), schemaText(schema));
      return dir;
    })();
    return this.#dir;
  }

  #flush(schema: SpiSchema): void {
    const timer = this.#timers.get(schema);
    if (timer !== undefined) clearTimeout(timer);
    this.#timers.delete(schema);
    const queue = this.#queues.get(schema) ?? [];
    const wait = this.#lastRunAt + this.#minRunIntervalMs - performance.now();
    if (wait > 0 && !this.#closed && queue.length < this.#maxBatch) {
      this.#timers.set(schema, setTimeout(() => this.#flush(schema), wait));
      return;
    }
    const batch = queue.splice(0, this.#maxBatch);
    if (queue.length === 0) this.#queues.delete(schema);
    if (batch.length === 0) return;
    this.#running += 1;
    this.#lastRunAt = performance.now();
    this.#run(schema, batch)
      .catch((error: unknown) => {
        for (const item of batch) item.reject(error);
      })
      .finally(() => {
        this.#running -= 1;
        // What gathered while this batch ran goes next, one batch per schema.
        for (const next of [...this.#queues.keys()]) if (this.#running < this.#maxProcesses || this.#closed) this.#flush(next);
      });
  }

  async #run(schema: SpiSchema, batch: readonly Pending[]): Promise<void> {
    const dir = await this.#workDir();
    const slot = this.#freeSlots.pop() ?? this.#slots++;
    try {
      const files = batch.map((_, i) => join(dir, `${slot}-${i}.xml`));
      // Overwrites the files of earlier runs of this slot; xmllint reads only the first `batch.length`.
      if (this.#memory) batch.forEach((item, i) => writeFileSync(files[i] ?? '', item.xml));
      else await Promise.all(batch.map((item, i) => writeFile(files[i] ?? '', item.xml)));
      let shell = this.#shells.get(slot);
      if (shell === undefined) {
        shell = new XmllintShell();
        this.#shells.set(slot, shell);
      }
      const { code, output: stderr } = await shell.run(['--noout', '--nonet', '--schema', join(dir, `${schema}.xsd`), ...files]);
      // 127/126: the shell could not find or start xmllint (its other codes are validation outcomes).
      if (code === 127 || code === 126) throw new Error(`cannot run xmllint: ${stderr.trim()}`);
      this.#runs += 1;
      this.#messages += batch.length;
      const valid = new Set<string>();
      for (const line of stderr.split('\n')) if (line.endsWith(' validates')) valid.add(line.slice(0, -' validates'.length));
      await Promise.all(
        batch.map(async (item, i) => {
          if (valid.has(files[i] ?? '')) {
            item.resolve();
            return;
          }
          this.#rechecked += 1;
          try {
            await validateSpiMessage(item.xml, schema);
            // The batch said no but alone it passes: the detailed check is the one that counts.
            item.resolve();
          } catch (error) {
            item.reject(error);
          }
        }),
      );
    } finally {
      this.#freeSlots.push(slot);
    }
  }
}
