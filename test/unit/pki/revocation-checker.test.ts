import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError } from '../../../shared/errors/index.ts';
import { CertificateRevokedError, CrlInvalidError, CrlRevocationChecker, RevocationUnknownError, createRevocationChecker } from '../../../shared/pki/index.ts';
import type { RevocationLogger } from '../../../shared/pki/index.ts';
import { memoryCa, memoryCrl, memoryLeaf } from '../../support/memory-pki.ts';
import type { MemoryIdentity } from '../../support/memory-pki.ts';

let root: MemoryIdentity;
let ca: MemoryIdentity;
let good: MemoryIdentity;
let revoked: MemoryIdentity;
let dir: string;
let counter = 0;

/** Writes `pem` to a new file (or over `path`, atomically) and returns its path. */
function crlFile(pem: string | Buffer, path = join(dir, `crl-${++counter}.crl`)): string {
  writeFileSync(`${path}.tmp`, pem);
  renameSync(`${path}.tmp`, path);
  return path;
}

function recordingLogger(): RevocationLogger & { lines: { level: string; facts: object; message: string }[] } {
  const lines: { level: string; facts: object; message: string }[] = [];
  return {
    lines,
    info: (facts, message) => lines.push({ level: 'info', facts, message }),
    warn: (facts, message) => lines.push({ level: 'warn', facts, message }),
    error: (facts, message) => lines.push({ level: 'error', facts, message }),
  };
}

/** What `run` threw; undefined when it returned. */
function errorOf(run: () => void): unknown {
  try {
    run();
    return undefined;
  } catch (error) {
    return error;
  }
}

function codeOf(run: () => void): string | undefined {
  const error = errorOf(run);
  return error === undefined ? undefined : (error as { code?: string }).code ?? (error instanceof Error ? error.message : 'a non-Error');
}

beforeAll(async () => {
  root = await memoryCa('AC Raiz de teste');
  ca = await memoryCa('AC SPB de teste', root);
  good = await memoryLeaf(ca, 'BCB current');
  revoked = await memoryLeaf(ca, 'BCB revoked');
  dir = mkdtempSync(join(tmpdir(), 'selo-revocation-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function chainFiles(options: { leafCrlNextUpdate?: Date; revokeCa?: boolean } = {}): Promise<string[]> {
  const leafCrl = await memoryCrl(ca, [revoked], options.leafCrlNextUpdate === undefined ? {} : { thisUpdate: new Date(options.leafCrlNextUpdate.getTime() - 86_400_000), nextUpdate: options.leafCrlNextUpdate });
  const rootCrl = await memoryCrl(root, options.revokeCa === true ? [ca] : []);
  return [crlFile(leafCrl.pem), crlFile(rootCrl.der)];
}

describe('CrlRevocationChecker', () => {
  it('accepts a certificate its issuer has not revoked, checking the intermediate CA against the root CRL too', async () => {
    const checker = new CrlRevocationChecker({ files: await chainFiles(), issuers: [root.certificate, ca.certificate], recheckMs: 0 });
    expect(() => checker.check(good.certificate)).not.toThrow();
    expect(checker.status().map((s) => s.revoked)).toEqual([1, 0]);
  });

  it('refuses a revoked certificate with CERTIFICATE_REVOKED, a permanent error carrying the serial and reason', async () => {
    const crl = await memoryCrl(ca, [revoked], { reason: 'keyCompromise' });
    const checker = new CrlRevocationChecker({ files: [crlFile(crl.pem), (await chainFiles())[1] as string], issuers: [root.certificate, ca.certificate] });
    const caught = errorOf(() => checker.check(revoked.certificate));
    expect(caught).toBeInstanceOf(CertificateRevokedError);
    expect((caught as CertificateRevokedError).code).toBe('CERTIFICATE_REVOKED');
    expect((caught as CertificateRevokedError).reason).toBe('keyCompromise');
    expect((caught as CertificateRevokedError).serial).toBe(BigInt(`0x${revoked.certificate.serialNumber}`).toString(10));
    expect(classifyError(caught).retryability).toBe('permanent');
  });

  it('refuses a certificate whose issuing CA the root revoked', async () => {
    const checker = new CrlRevocationChecker({ files: await chainFiles({ revokeCa: true }), issuers: [root.certificate, ca.certificate] });
    expect(codeOf(() => checker.check(good.certificate))).toBe('CERTIFICATE_REVOKED');
  });

  it('refuses at construction a CRL signed by another key under the issuer name (CRL_INVALID)', async () => {
    const impostor = await memoryCa('AC SPB de teste', root);
    const forged = await memoryCrl(impostor, []);
    expect(() => new CrlRevocationChecker({ files: [crlFile(forged.pem)], issuers: [root.certificate, ca.certificate] })).toThrow(CrlInvalidError);
    expect(() => new CrlRevocationChecker({ files: [crlFile(forged.pem)], issuers: [root.certificate, ca.certificate] })).toThrow(/signed by none of the configured CA certificates/);
  });

  it('refuses at construction an unreadable or missing file, naming it', () => {
    const garbage = crlFile('garbage');
    expect(() => new CrlRevocationChecker({ files: [garbage], issuers: [ca.certificate] })).toThrow(new RegExp(`CRL file ${garbage}`));
    expect(() => new CrlRevocationChecker({ files: [join(dir, 'absent.crl')], issuers: [ca.certificate] })).toThrow(/absent\.crl: cannot be read \(ENOENT\)/);
  });

  it('treats a CRL of another CA as no CRL for the issuer (CRL_MISSING) under require, and accepts with a warning under warn', async () => {
    const stranger = await memoryCa('AC de outra cadeia');
    const files = [crlFile((await memoryCrl(stranger, [])).pem), (await chainFiles())[1] as string];
    const required = new CrlRevocationChecker({ files, issuers: [root.certificate, ca.certificate, stranger.certificate] });
    expect(codeOf(() => required.check(good.certificate))).toBe('CRL_MISSING');
    const logger = recordingLogger();
    const lenient = new CrlRevocationChecker({ files, issuers: [root.certificate, ca.certificate, stranger.certificate], policy: 'warn', logger });
    expect(() => lenient.check(good.certificate)).not.toThrow();
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => (l.facts as { code: string }).code)).toEqual(['CRL_MISSING']);
  });

  it('refuses with CRL_EXPIRED (transient) once nextUpdate has passed, logging it once, and still refuses a serial the stale CRL lists', async () => {
    const logger = recordingLogger();
    const checker = new CrlRevocationChecker({ files: await chainFiles({ leafCrlNextUpdate: new Date(Date.now() - 60_000) }), issuers: [root.certificate, ca.certificate], logger });
    const caught = errorOf(() => checker.check(good.certificate));
    expect(caught).toBeInstanceOf(RevocationUnknownError);
    expect((caught as RevocationUnknownError).code).toBe('CRL_EXPIRED');
    expect((caught as Error).message).toMatch(/expired at .* \(nextUpdate\); refresh the file/);
    expect(classifyError(caught).retryability).toBe('transient');
    expect(codeOf(() => checker.check(good.certificate))).toBe('CRL_EXPIRED');
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(codeOf(() => checker.check(revoked.certificate))).toBe('CERTIFICATE_REVOKED');
  });

  it('accepts with a warning a certificate whose CRL expired under warn', async () => {
    const logger = recordingLogger();
    const checker = new CrlRevocationChecker({ files: await chainFiles({ leafCrlNextUpdate: new Date(Date.now() - 60_000) }), issuers: [root.certificate, ca.certificate], policy: 'warn', logger });
    expect(() => checker.check(good.certificate)).not.toThrow();
    expect(logger.lines.some((l) => l.level === 'warn' && /accepted \(SELO_REVOCATION=warn\)/.test(l.message))).toBe(true);
  });

  it('refuses a certificate whose issuer is not among the CA certificates (CRL_ISSUER_UNKNOWN)', async () => {
    const checker = new CrlRevocationChecker({ files: [(await chainFiles())[1] as string], issuers: [root.certificate] });
    expect(codeOf(() => checker.check(good.certificate))).toBe('CRL_ISSUER_UNKNOWN');
    expect(() => checker.check(good.certificate, { intermediates: [ca.certificate] })).toThrow(/no configured CRL is issued by CN=AC SPB de teste/);
  });

  it('reloads a CRL file that changed, without a restart', async () => {
    const [leafFile, rootFile] = await chainFiles();
    const path = crlFile((await memoryCrl(ca, [])).pem, leafFile);
    const logger = recordingLogger();
    const checker = new CrlRevocationChecker({ files: [path, rootFile as string], issuers: [root.certificate, ca.certificate], recheckMs: 0, logger });
    expect(() => checker.check(revoked.certificate)).not.toThrow();
    crlFile((await memoryCrl(ca, [revoked])).pem, path);
    expect(codeOf(() => checker.check(revoked.certificate))).toBe('CERTIFICATE_REVOKED');
    expect(logger.lines.map((l) => l.message)).toContain('CRL files changed: reloaded');
  });

  it('keeps the previous CRLs in force when a changed file cannot be used, and logs it', async () => {
    const [leafFile, rootFile] = await chainFiles();
    const logger = recordingLogger();
    const checker = new CrlRevocationChecker({ files: [leafFile as string, rootFile as string], issuers: [root.certificate, ca.certificate], recheckMs: 0, logger });
    crlFile('half a file', leafFile);
    expect(codeOf(() => checker.check(revoked.certificate))).toBe('CERTIFICATE_REVOKED');
    expect(logger.lines.find((l) => l.level === 'error')?.message).toBe('CRL files changed but cannot be used: the previous CRLs stay in force');
  });

  it('validates its options, naming the field', () => {
    expect(() => new CrlRevocationChecker({ files: [], issuers: [ca.certificate] })).toThrow(/files must name at least one CRL file/);
    expect(() => new CrlRevocationChecker({ files: ['x'], issuers: [] })).toThrow(/issuers must hold at least one CA certificate/);
  });
});

describe('createRevocationChecker', () => {
  it('is off without CRLs, and reads the CA certificates from the issuers file (or the PEM itself) and the extra PEM', async () => {
    expect(createRevocationChecker({ policy: 'off', crlFiles: [], issuersPath: undefined })).toBeUndefined();
    const issuersPath = join(dir, 'issuers.pem');
    writeFileSync(issuersPath, root.certPem);
    const checker = createRevocationChecker({ policy: 'require', crlFiles: await chainFiles(), issuersPath }, { extraIssuersPem: ca.certPem });
    expect(codeOf(() => checker?.check(revoked.certificate))).toBe('CERTIFICATE_REVOKED');
    expect(() => createRevocationChecker({ policy: 'require', crlFiles: ['x'], issuersPath: join(dir, 'none.pem') })).toThrow(CrlInvalidError);
    const inline = createRevocationChecker({ policy: 'require', crlFiles: await chainFiles(), issuersPath: `${root.certPem}${ca.certPem}` });
    expect(codeOf(() => inline?.check(revoked.certificate))).toBe('CERTIFICATE_REVOKED');
  });
});
