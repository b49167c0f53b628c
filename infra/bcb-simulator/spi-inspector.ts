import { X509Certificate } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../shared/logging/index.ts';
import type { TrustStore } from '../../shared/xmldsig/index.ts';
import { inspectSpiMessage, withSchemaCheck } from './spi-inspection.ts';
import type { SpiInspection } from './spi-inspection.ts';

/** Runs {@link inspectSpiMessage} for the SPI processor, on this thread or on worker threads. */
export interface SpiInspector {
  /** Inspects one posted message; rejects only on a defect. */
  inspect(xml: string): Promise<SpiInspection>;
  /** Trusts one more participant signing certificate (after `trustStore.add` on this thread). */
  trust(certificate: string | Buffer | X509Certificate, ispb: string): void;
  /** Stops the threads; inspections still pending finish on this thread. */
  close(): Promise<void>;
}

/** A certificate as it crosses to a worker thread. */
export interface TrustedSigner {
  readonly certificate: string | Uint8Array;
  readonly ispb: string;
}

/** What an inspection thread starts with. */
export interface InspectThreadData {
  readonly signers: readonly TrustedSigner[];
}

/** A request to an inspection thread. */
export type InspectRequest = { readonly kind: 'inspect'; readonly id: number; readonly xml: string } | ({ readonly kind: 'trust' } & TrustedSigner);

/** An inspection thread's answer. */
export type InspectAnswer =
  | { readonly id: number; readonly inspection: SpiInspection }
  | { readonly id: number; readonly error: { readonly message: string; readonly stack: string | undefined } };

function portable(certificate: string | Buffer | X509Certificate): string | Uint8Array {
  return certificate instanceof X509Certificate ? certificate.raw : certificate;
}

/** What every inspection checks besides the parse and the signature. */
export interface InspectionSettings {
  /** Validate against the XSD (when selo has the message's). */
  readonly schemaValidation: boolean;
}

/**
 * Inspects on the calling thread (no threads configured). With `schemaValidation`, libxml2 must be
 * loaded in this thread first (`compileSpiSchemas`).
 */
export function inlineSpiInspector(trustStore: TrustStore, settings: InspectionSettings): SpiInspector {
  return {
    inspect: (xml) => Promise.resolve().then(() => inspectSpiMessage(xml, trustStore, settings)),
    trust: () => undefined, // the processor's trust store is the one used
    close: () => Promise.resolve(),
  };
}

interface Pending {
  readonly xml: string;
  resolve(inspection: SpiInspection): void;
  reject(error: Error): void;
}

interface InspectionThread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  alive: boolean;
}

/** Options of {@link ThreadedSpiInspector}. */
export interface ThreadedSpiInspectorOptions {
  /** Worker threads, ≥ 1. */
  readonly threads: number;
  /** The processor's trust store: its certificates are copied to each thread, and it is used on this thread if a thread dies. */
  readonly trustStore: TrustStore;
  /** The certificates of `trustStore`, with their ISPBs, as given to it. */
  readonly signers: readonly { readonly certificate: string | Buffer | X509Certificate; readonly ispb: string }[];
  readonly settings: InspectionSettings;
  readonly logger: Logger;
}

/**
 * Spreads inspections over worker threads (the parse, the canonicalisations and the RSA check
 * are most of a message's CPU), so that the event loop keeps serving TLS and HTTP. The XSD check
 * (about 0.2 ms a pacs.008) stays on this thread, which must have libxml2 loaded
 * (`compileSpiSchemas`): a thread holding libxml2's WebAssembly can abort the whole process when
 * it is torn down (nodejs/node#64500). Each request
 * goes to the thread with the fewest pending. A thread that dies is not replaced: its pending
 * inspections, and later ones when no thread is left, run on this thread, so nothing is lost.
 */
export class ThreadedSpiInspector implements SpiInspector {
  private readonly threads: InspectionThread[] = [];
  private readonly options: ThreadedSpiInspectorOptions;
  private nextId = 0;
  private closed = false;

  constructor(options: ThreadedSpiInspectorOptions) {
    if (!(Number.isInteger(options.threads) && options.threads >= 1)) throw new RangeError(`threads must be a positive integer, got ${JSON.stringify(options.threads)}`);
    this.options = options;
    const signers: TrustedSigner[] = options.signers.map((s) => ({ certificate: portable(s.certificate), ispb: s.ispb }));
    try {
      for (let i = 0; i < options.threads; i++) this.threads.push(this.startThread(signers));
    } catch (error) {
      this.closed = true;
      for (const thread of this.threads) void thread.worker.terminate();
      throw error;
    }
  }

  inspect(xml: string): Promise<SpiInspection> {
    const thread = this.leastBusy();
    if (thread === undefined) return Promise.resolve().then(() => inspectSpiMessage(xml, this.options.trustStore, this.options.settings));
    const id = this.nextId++;
    const inspected = new Promise<SpiInspection>((resolve, reject) => {
      // A thread with work keeps the process alive until it answers; an idle one does not.
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { xml, resolve, reject });
      thread.worker.postMessage({ kind: 'inspect', id, xml } satisfies InspectRequest);
    });
    return this.options.settings.schemaValidation ? inspected.then((inspection) => withSchemaCheck(xml, inspection)) : inspected;
  }

  trust(certificate: string | Buffer | X509Certificate, ispb: string): void {
    // Messages on one port arrive in order: an inspection posted after this sees the certificate.
    for (const thread of this.threads) if (thread.alive) thread.worker.postMessage({ kind: 'trust', certificate: portable(certificate), ispb } satisfies InspectRequest);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map(async (thread) => {
      const pending = [...thread.pending.values()];
      thread.pending.clear();
      thread.alive = false;
      await thread.worker.terminate();
      this.finishHere(pending);
    }));
  }

  private leastBusy(): InspectionThread | undefined {
    let best: InspectionThread | undefined;
    for (const thread of this.threads) if (thread.alive && (best === undefined || thread.pending.size < best.pending.size)) best = thread;
    return best;
  }

  private startThread(signers: readonly TrustedSigner[]): InspectionThread {
    const worker = new Worker(new URL('./spi-inspect-thread.ts', import.meta.url), { workerData: { signers } satisfies InspectThreadData });
    worker.unref(); // an idle thread must not keep the process alive (a simulator left open)
    const thread: InspectionThread = { worker, pending: new Map(), alive: true };
    worker.on('message', (answer: InspectAnswer) => {
      const pending = thread.pending.get(answer.id);
      if (pending === undefined) return;
      thread.pending.delete(answer.id);
      if (thread.pending.size === 0) worker.unref();
      if ('error' in answer) {
        const error = new Error(answer.error.message);
        if (answer.error.stack !== undefined) error.stack = answer.error.stack;
        pending.reject(error);
      } else {
        pending.resolve(answer.inspection);
      }
    });
    const lost = (reason: string): void => {
      if (!thread.alive) return;
      thread.alive = false;
      if (!this.closed) this.options.logger.error({ reason, pending: thread.pending.size }, 'a SPI inspection thread stopped; its messages are inspected on the main thread');
      const pending = [...thread.pending.values()];
      thread.pending.clear();
      this.finishHere(pending);
    };
    worker.on('error', (error: Error) => lost(error.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    return thread;
  }

  private finishHere(pending: readonly Pending[]): void {
    for (const p of pending) {
      try {
        p.resolve(inspectSpiMessage(p.xml, this.options.trustStore, { schemaValidation: false })); // inspect() adds the XSD check
      } catch (error) {
        p.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
