import { X509Certificate, createPrivateKey, createPublicKey, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PermanentError } from '../errors/index.ts';

/**
 * The port the signer uses for the RSA step: RSASSA-PKCS1-v1_5 with SHA-256 over `data`
 * (the canonical `SignedInfo`), done by whoever holds the private key — the HSM pool in
 * production, a PEM key in tests and tooling.
 */
export interface SigningKey {
  /** The certificate of the key; its issuer and serial go into `KeyInfo`. */
  readonly certificate: X509Certificate;
  /** Signs `data` with RSA PKCS#1 v1.5 over SHA-256 and resolves to the signature bytes. */
  sign(data: Buffer): Promise<Buffer>;
}

/** Which key in the HSM to use (PKCS#11 `CKA_LABEL` and/or `CKA_ID`). */
export interface HsmKeyRef {
  label?: string;
  id?: Buffer;
}

/** The part of the HSM pool (shared/hsm) the signer needs; typed structurally. */
export interface HsmSigner {
  /** Signs with `CKM_SHA256_RSA_PKCS` using the key `keyRef`. */
  sign(data: Buffer, keyRef: HsmKeyRef): Promise<Buffer>;
}

function toCertificate(certificate: X509Certificate | string | Buffer): X509Certificate {
  return certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
}

function assertRsa(certificate: X509Certificate): void {
  if (certificate.publicKey.asymmetricKeyType !== 'rsa') {
    throw new PermanentError('XMLDSIG_KEY_NOT_RSA', `the signing certificate has a ${String(certificate.publicKey.asymmetricKeyType)} key; the BCB profiles require RSA`);
  }
}

/**
 * A software key from a PEM (PKCS#1 or PKCS#8) private key and its certificate. Signing runs on
 * libuv's thread pool, so the event loop stays free.
 *
 * @throws PermanentError `XMLDSIG_KEY_MISMATCH` when the key does not belong to the certificate.
 */
export function pemSigningKey(privateKeyPem: string | Buffer, certificatePem: X509Certificate | string | Buffer): SigningKey {
  const certificate = toCertificate(certificatePem);
  assertRsa(certificate);
  const privateKey: KeyObject = createPrivateKey(privateKeyPem);
  const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (!derived.equals(certificate.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new PermanentError('XMLDSIG_KEY_MISMATCH', 'the private key does not belong to the certificate');
  }
  return {
    certificate,
    sign: (data) =>
      new Promise<Buffer>((resolve, reject) => {
        cryptoSign('sha256', data, privateKey, (error, signature) => {
          if (error) reject(error);
          else resolve(signature);
        });
      }),
  };
}

/**
 * A key held in the HSM, used through the HSM pool (`CKM_SHA256_RSA_PKCS` hashes and signs,
 * which is exactly the RSA-SHA256 the profiles need).
 */
export function hsmSigningKey(pool: HsmSigner, keyRef: HsmKeyRef, certificate: X509Certificate | string | Buffer): SigningKey {
  const cert = toCertificate(certificate);
  assertRsa(cert);
  const ref: HsmKeyRef = { ...keyRef };
  return { certificate: cert, sign: (data) => pool.sign(data, ref) };
}
