import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
}

interface Pending {
  xml: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * XSD validation for a busy process. {@link validateSpiMessage} starts `xmllint` and parses the
 * schema for every message (tens of milliseconds, and `spawn` blocks the event loop while it
 * forks); this gathers the messages of a few milliseconds and validates them in one run. A message
 * the batch run refuses is checked again alone, so its error names the offending path exactly as
 * {@link validateSpiMessage} does. `close()` waits for running batches and removes its files.
 */
export class XsdBatchValidator {
  readonly #queues = new Map<SpiSchema, Pending[]>();
  readonly #timers = new Map<SpiSchema, NodeJS.Timeout>();
  readonly #maxBatch: number;
  readonly #maxDelayMs: number;
  readonly #maxProcesses: number;
  #dir: Promise<string> | undefined;
  #closed = false;
  #running = 0;

  constructor(options: XsdBatchValidatorOptions = {}) {
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#maxDelayMs = options.maxDelayMs ?? 2;
    this.#maxProcesses = options.maxProcesses ?? 1;
    for (const [field, value, min] of [['maxBatch', this.#maxBatch, 1], ['maxDelayMs', this.#maxDelayMs, 0], ['maxProcesses', this.#maxProcesses, 1]] as const) {
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

  /** Validates what is queued, waits for running batches, removes the work files; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const schema of [...this.#queues.keys()]) this.#flush(schema);
    while (this.#running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.#dir !== undefined) await rm(await this.#dir, { recursive: true, force: true });
  }

  #workDir(): Promise<string> {
    this.#dir ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'selo-xsd-batch-'));
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
    const batch = queue.splice(0, this.#maxBatch);
    if (queue.length === 0) this.#queues.delete(schema);
    if (batch.length === 0) return;
    this.#running += 1;
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
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const files = batch.map((_, i) => join(dir, `${id}-${i}.xml`));
    await Promise.all(batch.map((item, i) => writeFile(files[i] ?? '', item.xml)));
    try {
      const stderr = await new Promise<string>((resolve, reject) => {
        execFile('xmllint', ['--noout', '--nonet', '--schema', join(dir, `${schema}.xsd`), ...files], { maxBuffer: 64 * 1024 * 1024 }, (error, _stdout, err) => {
          if (error === null || typeof error.code === 'number') resolve(err);
          else reject(new Error(`cannot run xmllint: ${error.message}`, { cause: error }));
        });
      });
      const valid = new Set<string>();
      for (const line of stderr.split('\n')) if (line.endsWith(' validates')) valid.add(line.slice(0, -' validates'.length));
      await Promise.all(
        batch.map(async (item, i) => {
          if (valid.has(files[i] ?? '')) {
            item.resolve();
            return;
          }
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
      await Promise.all(files.map((file) => rm(file, { force: true })));
    }
  }
}
