// What the CRL check costs the verify worker per inbound message: `verifySpi` of a BCB-signed
// pacs.002 with and without the revocation checker, in the same run, alternating rounds, and the
// time to load a large CRL (ICP-Brasil ACs publish CRLs of tens of thousands of entries)
// (HOUSE_STYLE 15: a script that prints figures, never a test).
//
//   node scripts/bench-revocation.ts [--seconds <per case and round, default 1>] [--rounds <default 5>] [--entries <revoked serials, default 50000>]
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { buildPacs002, generateEndToEndId, generateMessageId } from '../shared/iso20022/index.ts';
import { CrlRevocationChecker, buildCertificate, buildCrl, softwareSigner } from '../shared/pki/index.ts';
import type { BuiltCertificate, DistinguishedName } from '../shared/pki/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../shared/xmldsig/index.ts';
import { median, microsPerCall } from './support/micro-bench.ts';

const BCB = '00038166';
const PSP = '99999004';

interface Ca {
  name: DistinguishedName;
  keys: { privateKey: KeyObject; publicKey: KeyObject };
  built: BuiltCertificate;
}

async function ca(cn: string, parent?: Ca): Promise<Ca> {
  const name: DistinguishedName = [{ type: 'C', value: 'BR' }, { type: 'O', value: 'ICP-Brasil (bench)' }, { type: 'CN', value: cn }];
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const built = await buildCertificate({
    subject: name, issuer: parent?.name ?? name, subjectPublicKey: keys.publicKey, issuerPublicKey: parent?.keys.publicKey ?? keys.publicKey,
    signer: softwareSigner(parent?.keys.privateKey ?? keys.privateKey), ca: true,
  });
  return { name, keys, built };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, entries: { type: 'string', default: '50000' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const entries = Number(values.entries);
  if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(entries) || entries < 0) {
    throw new RangeError(`--seconds must be > 0, --rounds a positive integer and --entries a non-negative integer, got ${values.seconds}, ${values.rounds}, ${values.entries}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'selo-bench-revocation-'));
  try {
    const root = await ca('AC Raiz (bench)');
    const ac = await ca('AC SPB (bench)', root);
    const signingKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signing = await buildCertificate({
      subject: [{ type: 'C', value: 'BR' }, { type: 'O', value: 'BCB (bench)' }, { type: 'serialNumber', value: BCB }, { type: 'CN', value: 'BCB signing' }],
      issuer: ac.name, subjectPublicKey: signingKeys.publicKey, issuerPublicKey: ac.keys.publicKey, signer: softwareSigner(ac.keys.privateKey),
      keyUsage: ['digitalSignature', 'nonRepudiation'],
    });
    const revoked = Array.from({ length: entries }, () => ({ serial: BigInt(`0x${randomBytes(16).toString('hex')}`) | 1n, revokedAt: new Date() }));
    const acCrl = await buildCrl({ issuer: ac.built.certificate, signer: softwareSigner(ac.keys.privateKey), revoked });
    const rootCrl = await buildCrl({ issuer: root.built.certificate, signer: softwareSigner(root.keys.privateKey) });
    writeFileSync(join(dir, 'ac.crl'), acCrl.der);
    writeFileSync(join(dir, 'root.crl'), rootCrl.der);

    const loadStart = performance.now();
    const checker = new CrlRevocationChecker({ files: [join(dir, 'ac.crl'), join(dir, 'root.crl')], issuers: [root.built.certificate, ac.built.certificate] });
    const loadMs = performance.now() - loadStart;
    const plain = new TrustStore();
    plain.add(signing.pem, { ispb: BCB });
    const checked = new TrustStore({ revocation: checker });
    checked.add(signing.pem, { ispb: BCB });

    const e2e = generateEndToEndId(PSP);
    const h = { fromIspb: BCB, toIspb: PSP, bizMsgIdr: generateMessageId(BCB), creDt: new Date().toISOString() };
    const xml = await signSpi(buildPacs002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, statuses: [{ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'ACSC', settlementDateTime: h.creDt, interbankSettlementDate: h.creDt.slice(0, 10) }] }), pemSigningKey(signingKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), signing.pem));
    verifySpi(xml, { trustStore: checked });

    const without: number[] = [];
    const withCrl: number[] = [];
    const checkAlone: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      // Alternated, so drift on the 2 cores falls on both sides alike.
      without.push(microsPerCall(seconds, () => verifySpi(xml, { trustStore: plain })));
      withCrl.push(microsPerCall(seconds, () => verifySpi(xml, { trustStore: checked })));
      checkAlone.push(microsPerCall(seconds, () => checker.check(signing.certificate)));
    }
    const base = median(without);
    const full = median(withCrl);
    process.stdout.write(`CRL revocation check — ${rounds} alternating rounds of ${seconds}s, median kept\n`);
    process.stdout.write(`CRL of the AC: ${entries} entries, ${acCrl.der.length} bytes; load (parse + signature check of both CRLs): ${loadMs.toFixed(0)} ms\n\n`);
    process.stdout.write('verifySpi pacs.002 µs/msg  with CRL check µs/msg  check alone µs  added µs  ratio\n');
    process.stdout.write(`${base.toFixed(0).padStart(24)}  ${full.toFixed(0).padStart(21)}  ${median(checkAlone).toFixed(1).padStart(14)}  ${(full - base).toFixed(0).padStart(8)}  ${(full / base).toFixed(3).padStart(5)}×\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
