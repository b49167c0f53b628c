import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EnvReader } from '../../shared/config/index.ts';
import { HsmPool, TokenSession, readHsmConfig } from '../../shared/hsm/index.ts';
import type { HsmConfig } from '../../shared/hsm/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import { buildCertificate, parseDistinguishedName, softwareSigner } from '../../shared/pki/index.ts';
import { TrustStore, hsmSigningKey, pemSigningKey, signDict, signSpi, verifyDict, verifySpi } from '../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../shared/xmldsig/index.ts';
import { useProjectSoftHsm } from '../../infra/softhsm/index.ts';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import type { SignedXml } from 'xml-crypto';
import { formatUsage } from './help.ts';

const XMLDSIG_HELP: CommandHelp = {
  usage: ['selo bench xmldsig [--seconds <n per case>] [--spec <folder with spi-5.13.1/examples>] [--hsm [--hsm-key <label>]]'],
  description: `Signs and verifies the BCB example messages (shared/iso20022/examples, see SOURCES.md there)
with selo and with xml-crypto (software RSA-2048 key on both sides) and prints documents/s and the
ratios. A script, not a test: it never fails on time.`,
  options: [
    { flag: '--seconds <n>', description: 'seconds per case (default 2)' },
    { flag: '--spec <folder>', description: 'read <folder>/spi-5.13.1/examples instead of the copies in the repository' },
    { flag: '--hsm', description: 'also SPI signing through the HSM pool (SELO_HSM_* configuration), 8 documents in flight' },
    { flag: '--hsm-key <label>', description: 'the HSM key for --hsm (default SELO_HSM_SIGNING_KEY_LABEL)' },
  ],
};


/**
 * The BCB's example messages the benchmark signs and verifies, kept in the repository (byte copies
 * of the SPI catalogue 5.13.1 examples; provenance in `SOURCES.md` there), so the benchmark runs
 * on any clone. `--spec <folder>` reads `<folder>/spi-5.13.1/examples` instead.
 */
export const BENCH_EXAMPLES_DIR = join(import.meta.dirname, '../../shared/iso20022/examples');

/** The example files of {@link BENCH_EXAMPLES_DIR} the benchmark reads. */
export const BENCH_EXAMPLE_FILES = ['pacs.002_PSP_1_msg.xml', 'pacs.008_END_1_msg.xml', 'pacs.008_END_10_msg.xml'] as const;

const IN_FLIGHT = 8;

const EXC = 'http://www.w3.org/2001/10/xml-exc-c14n#';

interface Material {
  keyPem: string;
  certPem: string;
  dispose(): void;
}

function makeKeyAndCertificate(): Material {
  const dir = mkdtempSync(join(tmpdir(), 'selo-bench-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/C=BR/O=Selo Bench/CN=bench', '-sha256'], { stdio: 'ignore' });
  return { keyPem: readFileSync(join(dir, 'k.pem'), 'utf8'), certPem: readFileSync(join(dir, 'c.pem'), 'utf8'), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `once` back to back for `seconds` (after a short warm-up) and returns operations per second. */
async function rate(seconds: number, once: () => unknown): Promise<number> {
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) await once();
  let count = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) {
    await once();
    count++;
  }
  return count / ((performance.now() - start) / 1000);
}

/** xml-crypto's signer class: a development dependency, loaded by the benchmark alone (the worker image has production dependencies only). */
type SignedXmlClass = typeof SignedXml;

function xmlCryptoSigner(SignedXmlImpl: SignedXmlClass, keyPem: string, certPem: string): (xml: string) => string {
  return (xml) => {
    const sig = new SignedXmlImpl({ privateKey: keyPem, publicCert: certPem, canonicalizationAlgorithm: EXC, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' });
    sig.addReference({
      xpath: '/*',
      transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', EXC],
      digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
      isEmptyUri: true,
    });
    sig.computeSignature(xml, { prefix: 'ds', location: { reference: '/*', action: 'prepend' } });
    return sig.getSignedXml();
  };
}

function xmlCryptoVerifier(SignedXmlImpl: SignedXmlClass, certPem: string): (xml: string) => boolean {
  return (xml) => {
    const sig = new SignedXmlImpl({ publicCert: certPem });
    const doc = xml;
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(doc)?.[0];
    if (signature === undefined) throw new Error('no signature');
    sig.loadSignature(signature);
    return sig.checkSignature(doc);
  };
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** Runs `once` with {@link IN_FLIGHT} callers for `seconds` (after a short warm-up) and returns completions per second. */
async function concurrentRate(seconds: number, once: () => Promise<unknown>): Promise<number> {
  const loop = async (until: number, count: { done: number }): Promise<void> => {
    while (performance.now() < until) {
      await once();
      count.done++;
    }
  };
  const warm = { done: 0 };
  const warmUntil = performance.now() + 300;
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(warmUntil, warm)));
  const measured = { done: 0 };
  const start = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => loop(start + seconds * 1000, measured)));
  return measured.done / ((performance.now() - start) / 1000);
}

function hsmConfig(io: CommandIo): HsmConfig {
  useProjectSoftHsm(process.env);
  const reader = new EnvReader(io.env);
  const config = readHsmConfig(reader);
  reader.finish();
  return config;
}

/**
 * SPI signing through the HSM pool: the key `keyLabel` (or the configured signing key), a
 * throwaway certificate for its public key (KeyInfo needs an issuer and serial), and one
 * signature verified before timing so the figure is for correct output.
 */
async function hsmRate(seconds: number, xml: string, keyLabel: string, io: CommandIo): Promise<{ rate: number; description: string }> {
  const config = hsmConfig(io);
  const label = keyLabel === '' ? config.signingKeyLabel : keyLabel;
  const session = TokenSession.open(config);
  let publicKey;
  try {
    publicKey = session.publicKey({ label });
  } finally {
    session.close();
  }
  const ca = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const name = parseDistinguishedName('CN=selo bench HSM,O=Selo Bench,C=BR');
  const certificate = await buildCertificate({ subject: name, issuer: parseDistinguishedName('CN=selo bench CA,O=Selo Bench,C=BR'), subjectPublicKey: publicKey, issuerPublicKey: ca.publicKey, signer: softwareSigner(ca.privateKey) });
  const pool = new HsmPool({
    modulePath: config.modulePath,
    tokenLabel: config.tokenLabel,
    pin: config.pin,
    sessions: config.sessions,
    maxWaiting: config.maxWaiting,
    acquireTimeoutMs: config.acquireTimeoutMs,
    metricsIntervalMs: 0,
    // stdout carries the figures; the pool's log lines go to stderr.
    logger: createLogger({ name: 'selo.hsm', level: 'warn', destination: process.stderr }),
  });
  try {
    await pool.start();
    if (!pool.ready()) throw new Error(`the HSM pool is not ready (token ${JSON.stringify(config.tokenLabel)}, ${config.modulePath})`);
    const key = hsmSigningKey(pool, { label }, certificate.certificate);
    const trustStore = new TrustStore();
    trustStore.add(certificate.pem);
    verifySpi(await signSpi(xml, key), { trustStore });
    const rate = await concurrentRate(seconds, () => signSpi(xml, key));
    return { rate, description: `token ${config.tokenLabel}, key ${label}, ${config.sessions} sessions` };
  } finally {
    await pool.close();
  }
}

async function bench(values: { seconds: number; examples: string; hsm?: string }, io: CommandIo): Promise<number> {
  const material = makeKeyAndCertificate();
  try {
    const key = pemSigningKey(material.keyPem, material.certPem);
    // The same RSA step as xml-crypto (node:crypto, on the calling thread), so only the XML work differs.
    const privateKey = createPrivateKey(material.keyPem);
    const inlineKey: SigningKey = { certificate: new X509Certificate(material.certPem), sign: (data) => Promise.resolve(cryptoSign('sha256', data, privateKey)) };
    const trustStore = new TrustStore();
    trustStore.add(material.certPem);
    const xmlCrypto = (await import('xml-crypto')).SignedXml;
    const xcSign = xmlCryptoSigner(xmlCrypto, material.keyPem, material.certPem);
    const xcVerify = xmlCryptoVerifier(xmlCrypto, material.certPem);
    const cases = BENCH_EXAMPLE_FILES.map((file) => ({ file, xml: readFileSync(join(values.examples, file), 'utf8') }));
    const rsa = await rate(values.seconds, () => cryptoSign('sha256', Buffer.from('x'.repeat(600)), privateKey));
    io.stdout.write(`selo bench xmldsig — ${values.seconds}s per case, RSA-2048 software key, one document at a time\n`);
    io.stdout.write(`RSA-2048 sign alone (node:crypto): ${format(rsa)}/s\n\n`);
    io.stdout.write('document                  bytes  op      selo-dict  selo-spi  xml-crypto  ratio(dict)  ratio(spi)\n');
    for (const { file, xml } of cases) {
      const dictSigned = await signDict(xml, inlineKey);
      const spiSigned = await signSpi(xml, inlineKey);
      const xcSigned = xcSign(xml);
      if (!xcVerify(xcSigned)) throw new Error('xml-crypto failed to verify its own signature');
      verifyDict(dictSigned, { trustStore });
      verifySpi(spiSigned, { trustStore });
      const signDictRate = await rate(values.seconds, () => signDict(xml, inlineKey));
      const signSpiRate = await rate(values.seconds, () => signSpi(xml, inlineKey));
      const signXc = await rate(values.seconds, () => xcSign(xml));
      const verifyDictRate = await rate(values.seconds, () => verifyDict(dictSigned, { trustStore }));
      const verifySpiRate = await rate(values.seconds, () => verifySpi(spiSigned, { trustStore }));
      const verifyXc = await rate(values.seconds, () => xcVerify(xcSigned));
      const row = (op: string, d: number, s: number, x: number): string =>
        `${file.padEnd(25)} ${String(Buffer.byteLength(xml)).padStart(6)}  ${op.padEnd(6)}  ${format(d).padStart(9)}  ${format(s).padStart(8)}  ${format(x).padStart(10)}  ${(d / x).toFixed(1).padStart(10)}×  ${(s / x).toFixed(1).padStart(9)}×\n`;
      io.stdout.write(row('sign', signDictRate, signSpiRate, signXc));
      io.stdout.write(row('verify', verifyDictRate, verifySpiRate, verifyXc));
    }
    // Throughput with the thread-pool key (what the sign worker uses without an HSM), 8 documents in flight.
    const [, sample] = cases;
    if (sample !== undefined) {
      const software = await concurrentRate(values.seconds, () => signSpi(sample.xml, key));
      io.stdout.write(`\nselo SPI sign, ${sample.file}, ${IN_FLIGHT} in flight:\n`);
      const softwareLabel = 'software key (thread pool)';
      if (values.hsm === undefined) {
        io.stdout.write(`  ${softwareLabel}: ${format(software)}/s\n`);
      } else {
        const hsm = await hsmRate(values.seconds, sample.xml, values.hsm, io);
        const hsmLabel = `HSM pool (${hsm.description})`;
        const width = Math.max(softwareLabel.length, hsmLabel.length) + 1;
        io.stdout.write(`  ${`${softwareLabel}:`.padEnd(width)} ${format(software).padStart(7)}/s\n`);
        io.stdout.write(`  ${`${hsmLabel}:`.padEnd(width)} ${format(hsm.rate).padStart(7)}/s  (${(hsm.rate / software).toFixed(2)}× the software key)\n`);
      }
    }
    return 0;
  } finally {
    material.dispose();
  }
}

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [what, ...rest] = args;
  if (what !== 'xmldsig') {
    io.stderr.write(formatUsage(benchCommand));
    return 2;
  }
  let parsed: { seconds?: string; spec?: string; hsm?: boolean; 'hsm-key'?: string };
  try {
    parsed = parseArgs({ args: rest, options: { seconds: { type: 'string' }, spec: { type: 'string' }, hsm: { type: 'boolean' }, 'hsm-key': { type: 'string' } }, strict: true }).values;
  } catch (error) {
    io.stderr.write(`selo bench: ${(error as Error).message}\n${formatUsage(benchCommand, 'xmldsig')}`);
    return 2;
  }
  const seconds = Number(parsed.seconds ?? '2');
  if (!Number.isFinite(seconds) || seconds <= 0) {
    io.stderr.write(`selo bench: --seconds must be a positive number\n`);
    return 2;
  }
  if (parsed['hsm-key'] !== undefined && parsed.hsm !== true) {
    io.stderr.write(`selo bench: --hsm-key needs --hsm\n`);
    return 2;
  }
  const hsm = parsed.hsm === true ? { hsm: parsed['hsm-key'] ?? '' } : {};
  return bench({ seconds, examples: parsed.spec === undefined ? BENCH_EXAMPLES_DIR : join(parsed.spec, 'spi-5.13.1/examples'), ...hsm }, io);
}

/** `selo bench xmldsig`: selo's signer and verifier side by side with xml-crypto. */
export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmarks (selo bench xmldsig: selo vs xml-crypto, docs/s)',
  help: { usage: [], description: 'Benchmarks that print figures and ratios against a baseline measured in the same run.', options: [] },
  subcommands: [{ name: 'xmldsig', summary: 'selo\'s signer and verifier beside xml-crypto, documents/s', help: XMLDSIG_HELP }],
  run,
};
