import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { buildCertificate, buildCrl, certificateSerial, softwareSigner } from '../../shared/pki/index.ts';
import type { BuiltCrl, CrlEntryOptions, DistinguishedName } from '../../shared/pki/index.ts';

/** A CA or leaf built in memory: its key pair and certificate. */
export interface MemoryIdentity {
  readonly name: DistinguishedName;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificate: X509Certificate;
  readonly certPem: string;
  readonly keyPem: string;
}

function rsa(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/** A CA named `CN=<cn>`, self-signed, or issued by `parent` (an intermediate). */
export async function memoryCa(cn: string, parent?: MemoryIdentity): Promise<MemoryIdentity> {
  const name: DistinguishedName = [{ type: 'C', value: 'BR' }, { type: 'O', value: 'ICP-Brasil (test)' }, { type: 'CN', value: cn }];
  const key = rsa();
  const built = await buildCertificate({
    subject: name, issuer: parent?.name ?? name, subjectPublicKey: key.publicKey, issuerPublicKey: parent?.publicKey ?? key.publicKey,
    signer: softwareSigner(parent?.privateKey ?? key.privateKey), ca: true,
  });
  return { name, ...key, certificate: built.certificate, certPem: built.pem, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** A leaf issued by `ca`: a TLS server certificate for localhost/127.0.0.1, a TLS client certificate, or a signing certificate. */
export async function memoryLeaf(ca: MemoryIdentity, cn: string, usage: 'server' | 'client' | 'signing' = 'signing', extra: { crlDistributionPoints?: string[]; serialNumber?: string } = {}): Promise<MemoryIdentity> {
  const name: DistinguishedName = [
    { type: 'C', value: 'BR' }, { type: 'O', value: 'Banco Central do Brasil (test)' },
    ...(extra.serialNumber === undefined ? [] : [{ type: 'serialNumber', value: extra.serialNumber }]), { type: 'CN', value: cn },
  ];
  const key = rsa();
  const built = await buildCertificate({
    subject: name, issuer: ca.name, subjectPublicKey: key.publicKey, issuerPublicKey: ca.publicKey, signer: softwareSigner(ca.privateKey),
    ...(usage === 'server'
      ? { keyUsage: ['digitalSignature', 'keyEncipherment'] as const, extendedKeyUsage: ['serverAuth' as const], subjectAltNames: { dns: ['localhost'], ip: ['127.0.0.1'] } }
      : usage === 'client'
        ? { keyUsage: ['digitalSignature', 'keyEncipherment'] as const, extendedKeyUsage: ['clientAuth' as const] }
        : { keyUsage: ['digitalSignature', 'nonRepudiation'] as const }),
    ...(extra.crlDistributionPoints === undefined ? {} : { crlDistributionPoints: extra.crlDistributionPoints }),
  });
  return { name, ...key, certificate: built.certificate, certPem: built.pem, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * A CRL of `ca` listing `revoked`. A CRL "signed by another key" is the CRL of another
 * {@link memoryCa} with the same name.
 */
export async function memoryCrl(
  ca: MemoryIdentity,
  revoked: readonly MemoryIdentity[] = [],
  options: { thisUpdate?: Date; nextUpdate?: Date; reason?: CrlEntryOptions['reason'] } = {},
): Promise<BuiltCrl> {
  const thisUpdate = options.thisUpdate ?? new Date(Date.now() - 60_000);
  return buildCrl({
    issuer: ca.certificate, signer: softwareSigner(ca.privateKey), thisUpdate, nextUpdate: options.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * 86_400_000),
    revoked: revoked.map((r) => ({ serial: certificateSerial(r.certificate), revokedAt: thisUpdate, ...(options.reason === undefined ? {} : { reason: options.reason }) })),
  });
}
