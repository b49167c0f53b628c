import { X509Certificate } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { ThreadedSpiInspector, inlineSpiInspector } from '../../../infra/bcb-simulator/spi-inspector.ts';
import type { SpiInspection } from '../../../infra/bcb-simulator/spi-inspection.ts';
import { compileSpiSchemas } from '../../../shared/iso20022/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { TrustStore, pemSigningKey } from '../../../shared/xmldsig/index.ts';
import { ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, postMessages, signedPacs008, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

function capturingLogger(): { logger: ReturnType<typeof createLogger>; messages: () => string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').trim().split('\n'));
      callback();
    },
  });
  return { logger: createLogger({ name: 'bcb-simulator', level: 'warn', destination }), messages: () => lines.map((l) => String((JSON.parse(l) as { msg: unknown }).msg)) };
}

const CHECK_XSD = { schemaValidation: true } as const;

describe('SPI inspection on worker threads', () => {
  let pki: SimulatorTestPki;
  let samples: Record<string, string>;
  let endToEndId: string;

  beforeAll(async () => {
    await compileSpiSchemas(); // the XSD check runs on this thread
    pki = await createSimulatorTestPki();
    const keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
    const keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
    const signed = await signedPacs008(keyA);
    endToEndId = signed.endToEndId;
    const valid = signed.xml;
    samples = {
      valid,
      tampered: valid.replace('<IntrBkSttlmAmt Ccy="BRL">10.50</IntrBkSttlmAmt>', '<IntrBkSttlmAmt Ccy="BRL">9999.50</IntrBkSttlmAmt>'),
      // B's key, but AppHdr/Fr says A: the signer is not the sender.
      otherSigner: (await signedPacs008(keyB, { from: ISPB_A })).xml,
      malformed: '<Envelope><AppHdr>',
      entity: '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>',
      unknownType: valid.replaceAll('https://www.bcb.gov.br/pi/pacs.008/1.16', 'urn:example:not-spi'),
      fromB: (await signedPacs008(keyB, { from: ISPB_B, to: ISPB_A })).xml,
      // Signed, but with an amount the parser refuses (three decimals).
      badAmount: (await signedPacs008(keyA, { alter: (xml) => xml.replace('>10.50<', '>10.505<') })).xml,
    };
    expect(samples.badAmount).toContain('>10.505<');
    expect(samples.tampered).not.toBe(valid);
    expect(samples.unknownType).not.toBe(valid);
  });

  const trustA = (): TrustStore => {
    const store = new TrustStore();
    store.add(pki.signingA.certPem, { ispb: ISPB_A });
    return store;
  };

  it('gives exactly what the inline inspection gives, for good and bad messages', async () => {
    const store = trustA();
    store.add(pki.signingB.certPem, { ispb: ISPB_B });
    const signers = [{ certificate: pki.signingA.certPem, ispb: ISPB_A }, { certificate: pki.signingB.certPem, ispb: ISPB_B }];
    const threaded = new ThreadedSpiInspector({ threads: 2, trustStore: store, signers, settings: CHECK_XSD, logger: capturingLogger().logger });
    const inline = inlineSpiInspector(store, CHECK_XSD);
    try {
      for (const [name, xml] of Object.entries(samples)) {
        const [fromThread, here] = await Promise.all([threaded.inspect(xml), inline.inspect(xml)]);
        expect(fromThread, name).toEqual(here);
      }
      const valid = await threaded.inspect(samples.valid ?? '');
      expect(valid).toMatchObject({ ok: true, type: 'pacs.008', schema: 'pacs.008.spi.1.16', signature: undefined, header: { fromIspb: ISPB_A } });
      expect(valid.ok && valid.content !== undefined && 'transactions' in valid.content ? valid.content.transactions[0]?.endToEndId : undefined).toBe(endToEndId);
      expect(await threaded.inspect(samples.tampered ?? '')).toMatchObject({ ok: true, signature: { code: 'XMLDSIG_DIGEST_MISMATCH' }, content: undefined });
      expect(await threaded.inspect(samples.otherSigner ?? '')).toMatchObject({ ok: true, signature: { code: 'XMLDSIG_SIGNER_ISPB_MISMATCH' } });
      expect(await threaded.inspect(samples.malformed ?? '')).toMatchObject({ ok: false });
      expect(await threaded.inspect(samples.entity ?? '')).toMatchObject({ ok: false });
      expect(await threaded.inspect(samples.unknownType ?? '')).toMatchObject({ ok: false, finding: { code: 'MESSAGE_TYPE_UNKNOWN' }, header: { fromIspb: ISPB_A } });
      // Three decimals: the XSD refuses it first (with the element's path, without the value), and nothing else is checked.
      const badAmount = await threaded.inspect(samples.badAmount ?? '');
      expect(badAmount).toMatchObject({ ok: true, xsd: { code: 'ISO20022_SCHEMA_INVALID', location: '/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt' }, signature: undefined, content: undefined });
      expect(JSON.stringify(badAmount)).not.toContain('10.505');
      // Without the XSD, the parser's refusal is a finding the processor turns into an admi.002, not an unexpected error.
      expect(await inlineSpiInspector(store, { schemaValidation: false }).inspect(samples.badAmount ?? '')).toMatchObject({ ok: true, xsd: undefined, signature: undefined, content: { code: 'ISO20022_AMOUNT_INVALID' } });
    } finally {
      await threaded.close();
    }
  });

  it('loads no libxml2 (WebAssembly) in an inspection thread', async () => {
    // The thread's own entry module, in a thread that records every module it resolves.
    const entry = new URL('../../../infra/bcb-simulator/spi-inspect-thread.ts', import.meta.url).href;
    const probe = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { registerHooks } = require('node:module');
      const resolved = [];
      registerHooks({ resolve(specifier, context, next) { resolved.push(specifier); return next(specifier, context); } });
      import(workerData.entry).then(() => parentPort.postMessage(resolved), (error) => parentPort.postMessage(String(error)));`;
    const worker = new Worker(probe, { eval: true, workerData: { entry, signers: [] } });
    try {
      const resolved = await new Promise<unknown>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(Array.isArray(resolved), String(resolved)).toBe(true);
      expect(resolved).toContain('../../shared/xmldsig/index.ts'); // the probe saw the thread's imports
      expect((resolved as string[]).filter((specifier) => specifier.includes('libxml2'))).toEqual([]);
    } finally {
      await worker.terminate();
    }
  });

  it('sees a signing certificate trusted after it started', async () => {
    const store = trustA();
    const inspector = new ThreadedSpiInspector({ threads: 1, trustStore: store, signers: [{ certificate: pki.signingA.certPem, ispb: ISPB_A }], settings: CHECK_XSD, logger: capturingLogger().logger });
    try {
      expect(await inspector.inspect(samples.fromB ?? '')).toMatchObject({ ok: true, signature: { code: 'XMLDSIG_SIGNER_UNKNOWN' } });
      // Given parsed (as the admin endpoint may): it crosses to the thread as DER.
      const certificateB = new X509Certificate(pki.signingB.certPem);
      store.add(certificateB, { ispb: ISPB_B });
      inspector.trust(certificateB, ISPB_B);
      expect(await inspector.inspect(samples.fromB ?? '')).toMatchObject({ ok: true, signature: undefined, header: { fromIspb: ISPB_B } });
    } finally {
      await inspector.close();
    }
  });

  it('loses nothing when a thread dies: its pending and later inspections run on the main thread', async () => {
    const store = trustA();
    const log = capturingLogger();
    const inspector = new ThreadedSpiInspector({ threads: 1, trustStore: store, signers: [{ certificate: pki.signingA.certPem, ispb: ISPB_A }], settings: CHECK_XSD, logger: log.logger });
    try {
      // A certificate the thread cannot parse makes it throw outside any handler: the thread ends.
      inspector.trust('not a certificate', ISPB_B);
      const results: SpiInspection[] = await Promise.all(Array.from({ length: 20 }, () => inspector.inspect(samples.valid ?? '')));
      expect(results.every((r) => r.ok && r.signature === undefined && r.content !== undefined && 'transactions' in r.content)).toBe(true);
      await expect.poll(() => log.messages()).toContain('a SPI inspection thread stopped; its messages are inspected on the main thread');
      expect(await inspector.inspect(samples.tampered ?? '')).toMatchObject({ ok: true, signature: { code: 'XMLDSIG_DIGEST_MISMATCH' } });
    } finally {
      await inspector.close();
    }
  });

  it('finishes inspections still pending when it closes', async () => {
    const inspector = new ThreadedSpiInspector({ threads: 1, trustStore: trustA(), signers: [{ certificate: pki.signingA.certPem, ispb: ISPB_A }], settings: CHECK_XSD, logger: capturingLogger().logger });
    const pending = Array.from({ length: 50 }, () => inspector.inspect(samples.valid ?? ''));
    await inspector.close();
    const results = await Promise.all(pending);
    expect(results).toHaveLength(50);
    expect(results.every((r) => r.ok && r.signature === undefined)).toBe(true);
  });
  it('acts on messages in the order they were posted, whatever thread inspected them, and refuses a bad amount with an admi.002', async () => {
    const keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
    for (const inspectionThreads of [0, 3]) {
      const sim = await startTestSimulator(pki, { inspectionThreads, schemaValidation: false });
      const agent = mtlsAgent(pki, pki.tlsA);
      try {
        // Ten posts of ten: each repeats an earlier message of its own post, so the earlier copy must win.
        const posts = await Promise.all(Array.from({ length: 10 }, async () => {
          const fresh = await Promise.all(Array.from({ length: 8 }, () => signedPacs008(keyA)));
          return [...fresh.map((m) => m.xml), fresh[1]?.xml ?? '', samples.badAmount ?? ''];
        }));
        for (const post of posts) expect((await postMessages(agent, sim, ISPB_A, post)).status).toBe(201);
        await sim.idle();
        const received = sim.ledger.received();
        expect(received).toHaveLength(100);
        for (let p = 0; p < 10; p++) {
          const outcomes = received.slice(p * 10, p * 10 + 10).map((r) => r.outcome);
          expect(outcomes.slice(0, 8), `threads ${inspectionThreads}, post ${p}`).toEqual(Array(8).fill('accepted'));
          // The repeat of the second message; the bad amount: only the first post's copy is new (later ones repeat its BizMsgIdr).
          expect(outcomes[8]).toBe('duplicate');
          expect(received[p * 10 + 9]).toMatchObject(p === 0 ? { outcome: 'invalid', error: { code: 'ISO20022_AMOUNT_INVALID' } } : { outcome: 'duplicate' });
        }
      } finally {
        await agent.close();
        await sim.close();
      }
    }
  });

  it('releases its threads and its port when it cannot start', async () => {
    const threads = (): number => readdirSync('/proc/self/task').length;
    const warm = await startTestSimulator(pki, { inspectionThreads: 2 });
    await warm.close();
    const before = threads();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      await expect(startTestSimulator(pki, { inspectionThreads: 2, port: (taken.address() as AddressInfo).port })).rejects.toThrow(/EADDRINUSE/);
      await expect.poll(threads).toBeLessThanOrEqual(before);
    } finally {
      taken.close();
    }
  });
});
