export {
  derTlv, derSequence, derSet, derInteger, derOid, derNull, derBoolean, derBitString, derOctetString, derUtf8String,
  derPrintableString, derIa5String, derTime, derExplicit, derImplicitPrimitive, derRead, derChildren, derDecodeOid,
} from './der.ts';
export type { DerElement } from './der.ts';
export {
  encodeName, formatRfc2253, parseDistinguishedName, certificateIssuerRfc2253, certificateSubjectRfc2253, certificateSubject,
  certificateSerialDecimal, certificateIspb, parseCertificate, certificateNames, certificateSerial, formatRdnSequence, parseRfc2253, readRdnSequence,
  certificateSubjectDer,
  namesEqual, DistinguishedNameSyntaxError,
} from './name.ts';
export type { NameAttribute, DistinguishedName, RdnAttribute, RdnSequence } from './name.ts';
export {
  softwareSigner, buildCertificate, buildCertificationRequest, buildExtensions, keyIdentifier, subjectPublicKeyInfo,
  sha256WithRsaAlgorithm, toPem,
} from './certificate.ts';
export type {
  Signer, KeyUsage, ExtendedKeyUsage, SubjectAltNames, CertificateOptions, BuiltCertificate, CertificationRequestOptions,
  BuiltCertificationRequest,
} from './certificate.ts';
export { buildCrl, parseCrls, verifyCrlSignature, crlDistributionPoints, derDecodeTime, CrlFormatError } from './crl.ts';
export type { CertificateRevocationList, RevokedEntry, CrlReason, CrlEntryOptions, CrlOptions, BuiltCrl } from './crl.ts';
export {
  CrlRevocationChecker, CertificateRevokedError, RevocationUnknownError, CrlInvalidError, createRevocationChecker, parseCertificateBundle,
} from './revocation.ts';
export type {
  RevocationChecker, RevocationPolicy, RevocationLogger, RevocationUnknownCode, CrlRevocationCheckerOptions, CrlStatus,
} from './revocation.ts';
export { refreshCrlFile, CrlRefreshError, CrlFetchError } from './crl-refresh.ts';
export type { CrlRefreshOptions, CrlRefreshResult } from './crl-refresh.ts';
