import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key pair and certificate written to the PKI's folder. */
export interface TestIdentity {
  readonly keyPath: string;
  readonly certPath: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly certificate: X509Certificate;
}

/** A throwaway PKI: an RSA-2048 CA and leaf certificates issued by it, made with the openssl CLI. */
export interface TestPki {
  readonly dir: string;
  readonly ca: TestIdentity;
  /** Issues a leaf certificate (RSA-2048, SHA-256) for `commonName`, with a random 128-bit serial. */
  issue(commonName: string, options?: { issuer?: TestIdentity }): TestIdentity;
  /** Removes the folder. */
  dispose(): void;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function identity(keyPath: string, certPath: string): TestIdentity {
  const certPem = readFileSync(certPath, 'utf8');
  return { keyPath, certPath, keyPem: readFileSync(keyPath, 'utf8'), certPem, certificate: new X509Certificate(certPem) };
}

/** Options of {@link createTestPki}. */
export interface TestPkiOptions {
  /** The CA's common name. @defaultValue `Selo Test CA` */
  caName?: string;
  /**
   * Use an ASCII-only CA name without a comma (xmlsec1 1.2 cannot look a certificate up by an
   * issuer name with non-ASCII characters). @defaultValue false
   */
  asciiNames?: boolean;
}

/**
 * Creates a CA named `C=BR, ST=São Paulo, O=Selo Test, Ltda, CN=<caName>` (a comma and
 * non-ASCII characters, so that issuer names are exercised as names, not strings).
 */
export function createTestPki(options: TestPkiOptions = {}): TestPki {
  const caName = options.caName ?? 'Selo Test CA';
  const caSubject = options.asciiNames === true ? `/C=BR/O=Selo Test/CN=${caName}` : `/C=BR/ST=São Paulo/O=Selo Test, Ltda/CN=${caName}`;
  const dir = mkdtempSync(join(tmpdir(), 'selo-pki-'));
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.pem');
  openssl(['genrsa', '-out', caKey, '2048']);
  openssl(['req', '-new', '-x509', '-utf8', '-key', caKey, '-out', caCert, '-days', '3650', '-sha256', '-subj', caSubject]);
  const ca = identity(caKey, caCert);
  let counter = 0;
  return {
    dir,
    ca,
    issue(commonName, options = {}) {
      const issuer = options.issuer ?? ca;
      const base = join(dir, `leaf-${++counter}`);
      const ext = `${base}.ext`;
      writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,nonRepudiation\n');
      openssl(['genrsa', '-out', `${base}.key`, '2048']);
      openssl(['req', '-new', '-utf8', '-key', `${base}.key`, '-out', `${base}.csr`, '-subj', `/C=BR/O=Selo Test/CN=${commonName}`]);
      openssl([
        'x509', '-req', '-in', `${base}.csr`, '-CA', issuer.certPath, '-CAkey', issuer.keyPath, '-out', `${base}.pem`,
        '-days', '825', '-sha256', '-set_serial', `0x${randomBytes(16).toString('hex').replace(/^[89a-f]/, '7')}`, '-extfile', ext,
      ]);
      return identity(`${base}.key`, `${base}.pem`);
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
