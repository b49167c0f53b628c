// What the XSD check costs the verify worker per inbound message: the verify worker's CPU path
// (signature verification, addressee, parse) with and without `checkSpiSchema`, in the same run,
// for a pacs.002 and a pacs.008 (HOUSE_STYLE 15: a script that prints figures, never a test).
//
//   node scripts/bench-verify-schema.ts [--seconds <per case and round, default 1>] [--rounds <default 5>]
//
// The saga writes and the event publication that follow in the worker are network round trips
// (DynamoDB, EventBridge) and are left out: the baseline is the CPU part alone, so the ratio is an
// upper bound of what the check adds to a message's handling.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  buildPacs002, buildPacs008, checkSpiSchema, compileSpiSchemas, generateEndToEndId, generateMessageId, parseAppHdr, parseSpiMessage, spiSchemaOfNamespace,
} from '../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../shared/xmldsig/index.ts';
import { median, microsPerCall } from './support/micro-bench.ts';

const BCB = '00038166';
const PSP = '99999004';

/** A throwaway BCB signing key and certificate (openssl, as `selo bench xmldsig` makes its own). */
function bcbKeyAndCertificate(): { keyPem: string; certPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'selo-bench-schema-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/C=BR/O=Selo Bench/CN=bcb', '-sha256'], { stdio: 'ignore' });
    return { keyPem: readFileSync(join(dir, 'k.pem'), 'utf8'), certPem: readFileSync(join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function header(): { fromIspb: string; toIspb: string; bizMsgIdr: string; creDt: string } {
  return { fromIspb: BCB, toIspb: PSP, bizMsgIdr: generateMessageId(BCB), creDt: new Date().toISOString() };
}

/** The verify worker's CPU path for one SPI message; `withSchema` adds the XSD check where it sits in the worker. */
function verifyPath(xml: string, trustStore: TrustStore, withSchema: boolean): void {
  const verified = verifySpi(xml, { trustStore });
  const appHdr = parseAppHdr(verified.appHdr);
  if (verified.fromIspb !== BCB || appHdr.toIspb !== PSP) throw new Error('bench message not from the BCB to us');
  if (withSchema) {
    const schema = spiSchemaOfNamespace(verified.document.namespaceUri);
    if (schema === undefined) throw new Error('bench message without an XSD');
    checkSpiSchema(xml, schema);
  }
  parseSpiMessage(verified);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--seconds must be > 0 and --rounds a positive integer, got ${values.seconds} and ${values.rounds}`);

  const compileStart = performance.now();
  await compileSpiSchemas();
  const compileMs = performance.now() - compileStart;
  const material = bcbKeyAndCertificate();
  const key = pemSigningKey(material.keyPem, material.certPem);
  const trustStore = new TrustStore();
  trustStore.add(material.certPem, { ispb: BCB });

  const e2e = generateEndToEndId(PSP);
  const h2 = header();
  const pacs002 = await signSpi(buildPacs002({ appHdr: h2, msgId: h2.bizMsgIdr, creDtTm: h2.creDt, statuses: [{ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'ACSC', settlementDateTime: h2.creDt, interbankSettlementDate: h2.creDt.slice(0, 10) }] }), key);
  const h8 = header();
  const inbound = generateEndToEndId('99999005');
  const pacs008 = await signSpi(buildPacs008({
    appHdr: h8, msgId: h8.bizMsgIdr, creDtTm: h8.creDt,
    transactions: [{
      endToEndId: inbound, amount: '321.09', acceptanceDateTime: h8.creDt, localInstrument: 'DICT',
      debtor: { name: 'Fulana de Tal', taxId: '70000000000' }, debtorAccount: { number: '500000', branch: '3000', type: 'CACC' }, debtorAgentIspb: '99999005',
      creditorAgentIspb: PSP, creditor: { taxId: '80000000000' }, creditorAccount: { number: '600000', branch: '4000', type: 'CACC', proxy: '+5561988887777' },
      purpose: 'IPAY', remittanceInformation: 'referente ao pedido 42',
    }],
  }), key);
  const cases = [{ name: 'pacs.002 (1 status)', xml: pacs002 }, { name: 'pacs.008 (1 transaction)', xml: pacs008 }];
  for (const { xml } of cases) verifyPath(xml, trustStore, true); // both must be valid before anything is measured

  process.stdout.write(`verify-worker XSD check — ${rounds} alternating rounds of ${seconds}s per case, median kept; libxml2 load + XSD compile (once per thread): ${compileMs.toFixed(0)} ms\n\n`);
  process.stdout.write('message                    bytes  verify µs/msg  verify+XSD µs/msg  XSD alone µs/msg  added µs  ratio\n');
  for (const { name, xml } of cases) {
    const without: number[] = [];
    const withSchema: number[] = [];
    const alone: number[] = [];
    const schema = spiSchemaOfNamespace(verifySpi(xml, { trustStore }).document.namespaceUri);
    if (schema === undefined) throw new Error(`${name} has no XSD`);
    for (let round = 0; round < rounds; round += 1) {
      // Alternated, so drift (thermal, other load on the 2 cores) falls on both sides alike.
      without.push(microsPerCall(seconds, () => verifyPath(xml, trustStore, false)));
      withSchema.push(microsPerCall(seconds, () => verifyPath(xml, trustStore, true)));
      alone.push(microsPerCall(seconds, () => checkSpiSchema(xml, schema)));
    }
    const base = median(without);
    const full = median(withSchema);
    process.stdout.write(
      `${name.padEnd(25)} ${String(Buffer.byteLength(xml)).padStart(6)}  ${base.toFixed(0).padStart(13)}  ${full.toFixed(0).padStart(17)}  ${median(alone).toFixed(0).padStart(16)}  ${(full - base).toFixed(0).padStart(8)}  ${(full / base).toFixed(2).padStart(5)}×\n`,
    );
  }
}

await main();
