import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchemaValidationError, XsdBatchValidator, buildPacs008, generateEndToEndId, generateMessageId } from '../../../shared/iso20022/index.ts';
import { pemSigningKey, signSpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

let pki: TestPki;
let key: SigningKey;
let root: string;

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('xsd-batch');
  key = pemSigningKey(leaf.keyPem, leaf.certPem);
  root = mkdtempSync(join(tmpdir(), 'selo-xsd-batch-test-'));
});
afterAll(() => {
  pki.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** A signed pacs.008; `brokenEndToEndId` replaces the EndToEndId (after building) to break the schema. */
async function pacs008(brokenEndToEndId?: string): Promise<string> {
  const now = new Date().toISOString();
  const id = generateMessageId('99999004');
  const endToEndId = generateEndToEndId('99999004');
  const xml = buildPacs008({
      appHdr: { fromIspb: '99999004', toIspb: '00038166', bizMsgIdr: id, creDt: now },
      msgId: id,
      creDtTm: now,
      transactions: [
        {
          endToEndId, amount: '10.00', acceptanceDateTime: now, localInstrument: 'MANU',
          debtor: { name: 'Fulano', taxId: '12345678901' }, debtorAccount: { number: '123456', branch: '0001', type: 'CACC' }, debtorAgentIspb: '99999004',
          creditorAgentIspb: '99999005', creditor: { taxId: '10987654321' }, creditorAccount: { number: '654321', branch: '0001', type: 'CACC' }, purpose: 'IPAY',
        },
      ],
    });
  return signSpi(brokenEndToEndId === undefined ? xml : xml.replace(endToEndId, brokenEndToEndId), key);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

describe('XsdBatchValidator', () => {
  it('validates messages that arrive together in one xmllint run', async () => {
    const validator = new XsdBatchValidator({ maxDelayMs: 20 });
    try {
      const messages = await Promise.all(Array.from({ length: 12 }, () => pacs008()));
      await Promise.all(messages.map((m) => validator.validate(m, 'pacs.008.spi.1.16')));
      expect(validator.stats).toEqual({ runs: 1, messages: 12, rechecked: 0 });
    } finally {
      await validator.close();
    }
  });

  it('refuses the invalid message of a batch with the path of the offending element, and passes its batch-mates', async () => {
    const validator = new XsdBatchValidator({ workRoot: root, maxDelayMs: 20 });
    try {
      const [good1, bad, good2] = await Promise.all([pacs008(), pacs008('X-not-an-id'), pacs008()]);
      const outcomes = await Promise.allSettled([good1, bad, good2].map((m) => validator.validate(m ?? '', 'pacs.008.spi.1.16')));
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const error = (outcomes[1] as PromiseRejectedResult).reason as unknown;
      expect(error).toBeInstanceOf(SchemaValidationError);
      expect((error as SchemaValidationError).violations[0]?.path).toBe('/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/PmtId/EndToEndId');
      expect(validator.stats.rechecked).toBe(1);
    } finally {
      await validator.close();
    }
  });

  it('reuses its work files across runs instead of writing new ones, and removes them on close', async () => {
    const workRoot = mkdtempSync(join(root, 'slots-'));
    const validator = new XsdBatchValidator({ workRoot, maxDelayMs: 20 });
    const messages = await Promise.all(Array.from({ length: 5 }, () => pacs008()));
    await Promise.all(messages.map((m) => validator.validate(m, 'pacs.008.spi.1.16')));
    const afterFirst = filesUnder(workRoot).filter((f) => f.endsWith('.xml'));
    await Promise.all(messages.slice(0, 3).map((m) => validator.validate(m, 'pacs.008.spi.1.16')));
    expect(validator.stats.runs).toBe(2);
    expect(filesUnder(workRoot).filter((f) => f.endsWith('.xml'))).toEqual(afterFirst);
    expect(afterFirst).toHaveLength(5);
    await validator.close();
    expect(filesUnder(workRoot)).toEqual([]);
  });

  it('removes the work folders of processes that no longer run, and keeps those of live ones', async () => {
    const workRoot = mkdtempSync(join(root, 'abandoned-'));
    // A process that has ended: its pid is free (and not reused within these few milliseconds).
    const ended = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid ?? 0;
    expect(ended).toBeGreaterThan(0);
    for (const name of [`selo-xsd-batch-${ended}-AbCdEf`, `selo-xsd-batch-${process.ppid}-GhIjKl`, 'selo-xsd-batch-other', 'unrelated']) {
      mkdirSync(join(workRoot, name));
      writeFileSync(join(workRoot, name, 'slot-0.xml'), '<x/>');
    }
    const validator = new XsdBatchValidator({ workRoot, maxDelayMs: 0 });
    await validator.validate(await pacs008(), 'pacs.008.spi.1.16');
    const names = readdirSync(workRoot);
    expect(names).not.toContain(`selo-xsd-batch-${ended}-AbCdEf`);
    expect(names).toEqual(expect.arrayContaining([`selo-xsd-batch-${process.ppid}-GhIjKl`, 'selo-xsd-batch-other', 'unrelated']));
    // Its own folder carries its pid.
    expect(names.filter((n) => n.startsWith(`selo-xsd-batch-${process.pid}-`))).toHaveLength(1);
    await validator.close();
  });

  it('waits minRunIntervalMs after a run before the next, gathering what arrives meanwhile', async () => {
    const validator = new XsdBatchValidator({ workRoot: root, maxDelayMs: 0, minRunIntervalMs: 2_000 });
    try {
      const messages = await Promise.all(Array.from({ length: 4 }, () => pacs008()));
      await validator.validate(messages[0] ?? '', 'pacs.008.spi.1.16');
      const later: Promise<void>[] = [];
      for (const message of messages.slice(1)) {
        later.push(validator.validate(message, 'pacs.008.spi.1.16'));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await Promise.all(later);
      expect(validator.stats).toMatchObject({ runs: 2, messages: 4 });
    } finally {
      await validator.close();
    }
  });

  it('rejects with "cannot run xmllint" when xmllint is not on the PATH', async () => {
    const path = process.env.PATH;
    const validator = new XsdBatchValidator({ workRoot: root });
    try {
      const message = await pacs008();
      // The xmllint shell starts on first use and takes the PATH of that moment.
      process.env.PATH = join(root, 'no-such-dir');
      await expect(validator.validate(message, 'pacs.008.spi.1.16')).rejects.toThrow(/cannot run xmllint/);
    } finally {
      process.env.PATH = path;
      await validator.close();
    }
  });

  it('refuses work after close', async () => {
    const validator = new XsdBatchValidator({ workRoot: root });
    await validator.close();
    await expect(validator.validate(await pacs008(), 'pacs.008.spi.1.16')).rejects.toThrow(/closed/);
  });
});
