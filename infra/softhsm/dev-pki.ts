import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentError } from '../../shared/errors/index.ts';
import { ISPB_PATTERN } from '../../shared/iso20022/index.ts';
import { TokenSession } from '../../shared/hsm/index.ts';
import { buildCertificate, buildCrl, certificateIssuerRfc2253, certificateSerial, certificateSerialDecimal, parseCrls, softwareSigner } from '../../shared/pki/index.ts';
import type { CrlEntryOptions, CrlReason, DistinguishedName } from '../../shared/pki/index.ts';

/** File names `selo pki init` writes, relative to its `--dir`. */
export const DEV_PKI_FILES = {
  /** Test CA certificate (trust anchor for every other certificate here). */
  caCertificate: 'ca.crt',
  /** Test CA private key (software, PKCS#8 PEM). */
  caKey: 'ca.key',
  /** The test CA's CRL (PEM), empty at first; `selo pki revoke` adds to it, `selo pki crl` re-issues it. */
  caCrl: 'ca.crl',
  /** PSP message-signing certificate; its key lives only in the HSM token. */
  pspSigningCertificate: 'psp-signing.crt',
  /** PSP mTLS client certificate for the PEM key below. */
  pspTlsClientCertificate: 'psp-tls-client.crt',
  /** PSP mTLS client key (PKCS#8 PEM). */
  pspTlsClientKey: 'psp-tls-client.key',
  /** PSP mTLS client certificate for the HSM-held key (pkcs11 engine). */
  pspTlsClientHsmCertificate: 'psp-tls-client-hsm.crt',
  /** BCB simulator TLS server certificate (CN/SAN localhost, 127.0.0.1, ::1). */
  bcbTlsServerCertificate: 'bcb-tls-server.crt',
  /** BCB simulator TLS server key. */
  bcbTlsServerKey: 'bcb-tls-server.key',
  /** BCB simulator message-signing certificate. */
  bcbSigningCertificate: 'bcb-signing.crt',
  /** BCB simulator message-signing key. */
  bcbSigningKey: 'bcb-signing.key',
  /** What was written: ISPBs, key labels, issuer DN and serials (JSON). */
  manifest: 'pki.json',
} as const;

/** Options of {@link initDevPki}. */
export interface DevPkiOptions {
  /** Directory to write into (created when missing). */
  dir: string;
  /** PKCS#11 library. */
  modulePath: string;
  /** Token holding the PSP's HSM keys. */
  tokenLabel: string;
  /** Token user PIN. */
  pin: string;
  /** PSP ISPB. @defaultValue '99999004' */
  pspIspb?: string;
  /** BCB ISPB. @defaultValue '00038166' */
  bcbIspb?: string;
  /** Label of the PSP signing key in the token. @defaultValue 'selo-psp-signing' */
  signingKeyLabel?: string;
  /** Label of the PSP mTLS key in the token. @defaultValue 'selo-psp-tls' */
  tlsKeyLabel?: string;
  /** Overwrite existing files. @defaultValue false */
  force?: boolean;
  /** Validity of every certificate, days. @defaultValue 825 */
  validityDays?: number;
}

/** What {@link initDevPki} wrote. */
export interface DevPkiResult {
  /** Absolute paths by role (keys of {@link DEV_PKI_FILES}). */
  files: Record<keyof typeof DEV_PKI_FILES, string>;
  /** The manifest's content. */
  manifest: DevPkiManifest;
}

/** Content of `pki.json`. */
export interface DevPkiManifest {
  /** ISPB convention of the subjects. */
  ispbAttribute: 'serialNumber (2.5.4.5)';
  /** PSP facts. */
  psp: { ispb: string; tokenLabel: string; signingKeyLabel: string; tlsKeyLabel: string; signingCertificateSerial: string };
  /** BCB facts. */
  bcb: { ispb: string; signingCertificateSerial: string };
  /** RFC 2253 issuer DN of every certificate (the CA's subject). */
  issuerRfc2253: string;
}

function rsaKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
}

function pkcs8(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Writes selo's development PKI (issue 2 item 8): a self-signed test CA with a software key;
 * for the PSP a signing key generated inside the HSM token (sensitive, never extractable; an
 * existing key with the label is reused) and its certificate, an mTLS client key and
 * certificate in PEM, and an mTLS certificate for a second HSM-held key; for the BCB a TLS
 * server key and certificate (localhost, 127.0.0.1, ::1) and a signing key and certificate.
 * Signing certificates carry the ISPB as the subject's `serialNumber` attribute.
 */
export async function initDevPki(options: DevPkiOptions): Promise<DevPkiResult> {
  const pspIspb = options.pspIspb ?? '99999004';
  const bcbIspb = options.bcbIspb ?? '00038166';
  for (const [field, ispb] of [['pspIspb', pspIspb], ['bcbIspb', bcbIspb]] as const) {
    if (!ISPB_PATTERN.test(ispb)) throw new PermanentError('PKI_OPTIONS_INVALID', `DevPkiOptions.${field} must be an ISPB, 8 characters [0-9A-Z] (XSD ISPBType), got ${JSON.stringify(ispb)}`);
  }
  const signingKeyLabel = options.signingKeyLabel ?? 'selo-psp-signing';
  const tlsKeyLabel = options.tlsKeyLabel ?? 'selo-psp-tls';
  const validityMs = (options.validityDays ?? 825) * 86_400_000;
  const files = Object.fromEntries(Object.entries(DEV_PKI_FILES).map(([role, name]) => [role, join(options.dir, name)])) as Record<keyof typeof DEV_PKI_FILES, string>;
  if (options.force !== true && existsSync(files.caCertificate)) {
    throw new PermanentError('PKI_EXISTS', `a PKI already exists in ${options.dir} (use --force to replace it)`);
  }
  mkdirSync(options.dir, { recursive: true });
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(notBefore.getTime() + validityMs);

  const caName: DistinguishedName = [{ type: 'C', value: 'BR' }, { type: 'O', value: 'selo development' }, { type: 'CN', value: 'selo development CA' }];
  const ca = rsaKeyPair();
  const caSigner = softwareSigner(ca.privateKey);
  const caCert = await buildCertificate({ subject: caName, issuer: caName, subjectPublicKey: ca.publicKey, signer: caSigner, ca: true, notBefore, notAfter: new Date(notBefore.getTime() + validityMs + 86_400_000) });
  const issue = (subject: DistinguishedName, publicKey: KeyObject, extra: Partial<Parameters<typeof buildCertificate>[0]>) =>
    buildCertificate({ subject, issuer: caName, subjectPublicKey: publicKey, issuerPublicKey: ca.publicKey, signer: caSigner, notBefore, notAfter, ...extra });

  const session = TokenSession.open({ modulePath: options.modulePath, tokenLabel: options.tokenLabel, pin: options.pin });
  let signingPublic: KeyObject;
  let tlsPublic: KeyObject;
  try {
    const existing = new Set(session.listKeys().filter((key) => key.class === 'private').map((key) => key.label));
    if (!existing.has(signingKeyLabel)) session.generateRsaKeyPair({ label: signingKeyLabel, bits: 2048 });
    if (!existing.has(tlsKeyLabel)) session.generateRsaKeyPair({ label: tlsKeyLabel, bits: 2048 });
    signingPublic = session.publicKey({ label: signingKeyLabel });
    tlsPublic = session.publicKey({ label: tlsKeyLabel });
  } finally {
    session.close();
  }

  const pspOrg = { type: 'O', value: 'selo development PSP' };
  const pspSigning = await issue(
    [{ type: 'C', value: 'BR' }, pspOrg, { type: 'serialNumber', value: pspIspb }, { type: 'CN', value: `selo PSP ${pspIspb} signing` }],
    signingPublic, { keyUsage: ['digitalSignature', 'nonRepudiation'] },
  );
  const pspTls = rsaKeyPair();
  const pspTlsSubject: DistinguishedName = [{ type: 'C', value: 'BR' }, pspOrg, { type: 'serialNumber', value: pspIspb }, { type: 'CN', value: `psp-${pspIspb}.selo.local` }];
  const pspTlsCert = await issue(pspTlsSubject, pspTls.publicKey, { keyUsage: ['digitalSignature', 'keyEncipherment'], extendedKeyUsage: ['clientAuth'], subjectAltNames: { dns: [`psp-${pspIspb}.selo.local`] } });
  const pspTlsHsmCert = await issue(
    [{ type: 'C', value: 'BR' }, pspOrg, { type: 'serialNumber', value: pspIspb }, { type: 'CN', value: `psp-${pspIspb}-hsm.selo.local` }],
    tlsPublic, { keyUsage: ['digitalSignature'], extendedKeyUsage: ['clientAuth'], subjectAltNames: { dns: [`psp-${pspIspb}-hsm.selo.local`] } },
  );
  const bcbOrg = { type: 'O', value: 'Banco Central do Brasil (simulator)' };
  const bcbTls = rsaKeyPair();
  const bcbTlsCert = await issue(
    [{ type: 'C', value: 'BR' }, bcbOrg, { type: 'CN', value: 'localhost' }],
    bcbTls.publicKey, { keyUsage: ['digitalSignature', 'keyEncipherment'], extendedKeyUsage: ['serverAuth'], subjectAltNames: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] } },
  );
  const bcbSigning = rsaKeyPair();
  const bcbSigningCert = await issue(
    [{ type: 'C', value: 'BR' }, bcbOrg, { type: 'serialNumber', value: bcbIspb }, { type: 'CN', value: `BCB ${bcbIspb} signing (simulator)` }],
    bcbSigning.publicKey, { keyUsage: ['digitalSignature', 'nonRepudiation'] },
  );

  const manifest: DevPkiManifest = {
    ispbAttribute: 'serialNumber (2.5.4.5)',
    psp: { ispb: pspIspb, tokenLabel: options.tokenLabel, signingKeyLabel, tlsKeyLabel, signingCertificateSerial: certificateSerialDecimal(pspSigning.certificate) },
    bcb: { ispb: bcbIspb, signingCertificateSerial: certificateSerialDecimal(bcbSigningCert.certificate) },
    issuerRfc2253: certificateIssuerRfc2253(pspSigning.certificate),
  };
  const crl = await buildCrl({ issuer: caCert.certificate, signer: caSigner, nextUpdate: new Date(Date.now() + DEV_CRL_VALIDITY_DAYS * 86_400_000) });
  const writes: [string, string, number][] = [
    [files.caCertificate, caCert.pem, 0o644],
    [files.caCrl, crl.pem, 0o644],
    [files.caKey, pkcs8(ca.privateKey), 0o600],
    [files.pspSigningCertificate, pspSigning.pem, 0o644],
    [files.pspTlsClientCertificate, pspTlsCert.pem, 0o644],
    [files.pspTlsClientKey, pkcs8(pspTls.privateKey), 0o600],
    [files.pspTlsClientHsmCertificate, pspTlsHsmCert.pem, 0o644],
    [files.bcbTlsServerCertificate, bcbTlsCert.pem, 0o644],
    [files.bcbTlsServerKey, pkcs8(bcbTls.privateKey), 0o600],
    [files.bcbSigningCertificate, bcbSigningCert.pem, 0o644],
    [files.bcbSigningKey, pkcs8(bcbSigning.privateKey), 0o600],
    [files.manifest, `${JSON.stringify(manifest, null, 2)}\n`, 0o644],
  ];
  for (const [path, content, mode] of writes) writeFileSync(path, content, { mode });
  return { files, manifest };
}

/** How long a CRL of the development CA is valid (`nextUpdate`), days. */
export const DEV_CRL_VALIDITY_DAYS = 30;

/** Options of {@link issueDevCrl}. */
export interface DevCrlOptions {
  /** The development PKI's directory (`selo pki init --dir`). */
  dir: string;
  /** Certificates to add to the CRL (PEM); those already listed stay listed. @defaultValue none (re-issue) */
  revoke?: readonly { certificatePem: string; reason?: Exclude<CrlReason, 'unspecified'> }[];
  /** `nextUpdate`. @defaultValue now + {@link DEV_CRL_VALIDITY_DAYS} days */
  nextUpdate?: Date;
  /** `thisUpdate`. @defaultValue now */
  thisUpdate?: Date;
}

/**
 * Issues a new CRL of the development CA into `ca.crl`: the entries of the current one, plus
 * `revoke`. The file is replaced atomically (written aside, then renamed), as a job refreshing
 * the real CRLs should do, so a reader never sees half a file.
 *
 * @returns the serial numbers listed (decimal) and the CRL's `nextUpdate`.
 */
export async function issueDevCrl(options: DevCrlOptions): Promise<{ path: string; revoked: string[]; nextUpdate: string }> {
  const path = join(options.dir, DEV_PKI_FILES.caCrl);
  const caCert = new X509Certificate(readFileSync(join(options.dir, DEV_PKI_FILES.caCertificate)));
  const caKey = createPrivateKey(readFileSync(join(options.dir, DEV_PKI_FILES.caKey)));
  const entries = new Map<bigint, CrlEntryOptions>();
  if (existsSync(path)) {
    for (const crl of parseCrls(readFileSync(path))) {
      for (const [serial, entry] of crl.revoked) entries.set(serial, { serial, revokedAt: entry.revokedAt, ...(entry.reason === 'unspecified' ? {} : { reason: entry.reason }) });
    }
  }
  const thisUpdate = options.thisUpdate ?? new Date();
  for (const { certificatePem, reason } of options.revoke ?? []) {
    const certificate = new X509Certificate(certificatePem);
    if (!certificate.checkIssued(caCert)) throw new PermanentError('PKI_NOT_ISSUED_HERE', `certificate ${certificateSerialDecimal(certificate)} was not issued by the development CA in ${options.dir}`);
    const serial = certificateSerial(certificate);
    if (!entries.has(serial)) entries.set(serial, { serial, revokedAt: thisUpdate, ...(reason === undefined ? {} : { reason }) });
  }
  const crl = await buildCrl({
    issuer: caCert, signer: softwareSigner(caKey), revoked: [...entries.values()], thisUpdate,
    nextUpdate: options.nextUpdate ?? new Date(thisUpdate.getTime() + DEV_CRL_VALIDITY_DAYS * 86_400_000),
  });
  writeFileSync(`${path}.tmp`, crl.pem, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return { path, revoked: [...entries.keys()].map((serial) => serial.toString(10)), nextUpdate: crl.crl.nextUpdate.toISOString() };
}
