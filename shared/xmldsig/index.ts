export { signSpi, signDict, spiParts } from './sign.ts';
export type { SignOptions } from './sign.ts';
export { verifySpi, verifyDict } from './verify.ts';
export type { VerifyOptions, VerifiedSpiMessage, VerifiedDictMessage } from './verify.ts';
export { pemSigningKey, hsmSigningKey } from './signing-key.ts';
export type { SigningKey, HsmKeyRef, HsmSigner } from './signing-key.ts';
export { TrustStore } from './trust-store.ts';
export type { TrustedCertificate, TrustOptions, TrustStoreOptions } from './trust-store.ts';
export { XmlSignatureError, XmlSigningError } from './xmldsig-error.ts';
export type { XmlSignatureErrorCode } from './xmldsig-error.ts';
export {
  parseRfc2253,
  formatRfc2253,
  namesEqual,
  certificateNames,
  certificateSerial,
  DistinguishedNameSyntaxError,
} from './distinguished-name.ts';
export type { DistinguishedName, NameAttribute } from './distinguished-name.ts';
export { DSIG_NAMESPACE, ALGORITHM_EXC_C14N, ALGORITHM_RSA_SHA256, ALGORITHM_SHA256, ALGORITHM_ENVELOPED } from './algorithms.ts';
