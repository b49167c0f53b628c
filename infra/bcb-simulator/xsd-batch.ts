import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPI_SCHEMA_FILES, validateSpiMessage } from '../../shared/iso20022/index.ts';
import type { SpiSchema } from '../../shared/iso20022/index.ts';

/** Options of {@link XsdBatchValidator}. */
export interface XsdBatchOptions {
  /** Largest batch handed to one xmllint process. @defaultValue 1000 */
  maxBatch?: number;
  /** How long a message waits for batch-mates when no batch is running, ms. @defaultValue 2 */
  maxDelayMs?: number;
  /** xmllint processes at a time; while they run, new messages gather into the next batch. @defaultValue 1 */
  maxProcesses?: number;
}

interface Pending {
  xml: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const XSD_DIR = join(import.meta.dirname, '..', '..', 'shared', 'iso20022', 'xsd');

/**
 * Validates SPI messages against the catalogue XSDs in batches: one `xmllint` process per batch
 * (a process per message costs ~35 ms, mostly parsing the schema; a batch of 1,000 takes
 * ~0.3 s). A message that fails is validated again alone with shared/iso20022's
 * `validateSpiMessage`, so the error is exactly the one selo itself reports (paths included).
 * The `Sgntr` wildcard is made lax as shared/iso20022 does (the signature is checked by the
 * verifier).
 */
export class XsdBatchValidator {
  private readonly queues = new Map<SpiSchema, Pending[]>();
  private readonly timers = new Map<SpiSchema, NodeJS.Timeout>();
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxProcesses: number;
  private dir: Promise<string> | undefined;
  private closed = false;
  private running = 0;

  constructor(options: XsdBatchOptions = {}) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 2;
    this.maxProcesses = options.maxProcesses ?? 1;
    if (!(Number.isInteger(this.maxBatch) && this.maxBatch >= 1)) throw new RangeError(`XsdBatchOptions.maxBatch must be a positive integer, got ${this.maxBatch}`);
  }

  /** Whether a schema exists for this message definition (e.g. `pacs.008.spi.1.16`). */
  static has(msgDefIdr: string): msgDefIdr is SpiSchema {
    return Object.hasOwn(SPI_SCHEMA_FILES, msgDefIdr);
  }

  /** Resolves when `xml` is valid; rejects with shared/iso20022's `SchemaValidationError` otherwise. */
  validate(xml: string, schema: SpiSchema): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the XSD validator is closed'));
    return new Promise<void>((resolve, reject) => {
      const queue = this.queues.get(schema) ?? [];
      this.queues.set(schema, queue);
      queue.push({ xml, resolve, reject });
      if (queue.length >= this.maxBatch && this.running < this.maxProcesses) this.flush(schema);
      else if (!this.timers.has(schema) && this.running < this.maxProcesses) this.timers.set(schema, setTimeout(() => this.flush(schema), this.maxDelayMs));
    });
  }

  /** Stops accepting messages and removes the working folder once batches in flight end. */
  async close(): Promise<void> {
    this.closed = true;
    for (const schema of [...this.queues.keys()]) this.flush(schema);
    while (this.running > 0) await new Promise((r) => setTimeout(r, 5));
    if (this.dir !== undefined) await rm(await this.dir, { recursive: true, force: true });
  }

  private workDir(): Promise<string> {
    this.dir ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'selo-sim-xsd-'));
      for (const [name, file] of Object.entries(SPI_SCHEMA_FILES)) {
        const text = readFileSync(join(XSD_DIR, file), 'utf8').replace(
          '<xs:any namespace="http://www.w3.org/2000/09/xmldsig#"/>',
          '<xs:any namespace="http://www.w3.org/2000/09/xmldsig#" processContents="lax"/>',
        );
        await writeFile(join(dir, `${name}.xsd`), text);
      }
      return dir;
    })();
    return this.dir;
  }

  private flush(schema: SpiSchema): void {
    const timer = this.timers.get(schema);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(schema);
    const queue = this.queues.get(schema) ?? [];
    const batch = queue.splice(0, this.maxBatch);
    if (queue.length === 0) this.queues.delete(schema);
    if (batch.length === 0) return;
    this.running++;
    this.runBatch(schema, batch)
      .catch((error: unknown) => {
        for (const item of batch) item.reject(error);
      })
      .finally(() => {
        this.running--;
        // What gathered while this batch ran goes next, as one batch per schema.
        for (const next of [...this.queues.keys()]) if (this.running < this.maxProcesses || this.closed) this.flush(next);
      });
  }

  private async runBatch(schema: SpiSchema, batch: Pending[]): Promise<void> {
    const dir = await this.workDir();
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
            item.resolve(); // the batch said no, alone it passes: trust the detailed check
          } catch (error) {
            item.reject(error);
          }
        }),
      );
    } finally {
      await Promise.all(files.map((f) => rm(f, { force: true })));
    }
  }
}
