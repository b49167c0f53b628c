import { PermanentError } from '../errors/index.ts';

/**
 * Why a signed message was rejected. Stable codes; callers and audit records use them.
 *
 * - `XMLDSIG_SIGNATURE_MISSING` / `XMLDSIG_SIGNATURE_MULTIPLE`: not exactly one `ds:Signature`.
 * - `XMLDSIG_SIGNATURE_MISPLACED`: not in `AppHdr/Sgntr` (SPI) or not the root's first child (DICT).
 * - `XMLDSIG_MESSAGE_MULTIPLE_APPHDR` / `XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT`: more than one `AppHdr` / `Document` anywhere.
 * - `XMLDSIG_MESSAGE_STRUCTURE_INVALID`: `AppHdr` and `Document` are not the two children of the root (moved or missing).
 * - `XMLDSIG_SIGNATURE_STRUCTURE_INVALID`: the `ds:Signature` has elements the profile does not have (e.g. `ds:Object`).
 * - `XMLDSIG_ALGORITHM_NOT_ALLOWED`: an algorithm or transform other than exc-c14n, RSA-SHA256, SHA-256, enveloped-signature.
 * - `XMLDSIG_REFERENCES_INVALID`: the references are not exactly the profile's, in its order.
 * - `XMLDSIG_REFERENCE_TARGET_INVALID`: the `#id` reference does not point to this signature's `KeyInfo` alone.
 * - `XMLDSIG_KEYINFO_INVALID`: `KeyInfo` is not one `X509Data/X509IssuerSerial`, or its name or serial is unreadable.
 * - `XMLDSIG_EMBEDDED_CERTIFICATE`: `KeyInfo` offers a certificate; signers are taken from the trust store only.
 * - `XMLDSIG_SIGNER_UNKNOWN`: no trusted certificate has this issuer and serial.
 * - `XMLDSIG_SIGNER_EXPIRED` / `XMLDSIG_SIGNER_NOT_YET_VALID`: outside the certificate's validity.
 * - `XMLDSIG_SIGNER_ISPB_MISMATCH`: the certificate is bound to another ISPB than `AppHdr/Fr`.
 * - `XMLDSIG_DIGEST_MISMATCH`: a referenced element changed (`details.reference` names it).
 * - `XMLDSIG_SIGNATURE_MISMATCH`: `SignatureValue` does not verify over `SignedInfo`.
 */
export type XmlSignatureErrorCode =
  | 'XMLDSIG_SIGNATURE_MISSING'
  | 'XMLDSIG_SIGNATURE_MULTIPLE'
  | 'XMLDSIG_SIGNATURE_MISPLACED'
  | 'XMLDSIG_MESSAGE_MULTIPLE_APPHDR'
  | 'XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT'
  | 'XMLDSIG_MESSAGE_STRUCTURE_INVALID'
  | 'XMLDSIG_SIGNATURE_STRUCTURE_INVALID'
  | 'XMLDSIG_ALGORITHM_NOT_ALLOWED'
  | 'XMLDSIG_REFERENCES_INVALID'
  | 'XMLDSIG_REFERENCE_TARGET_INVALID'
  | 'XMLDSIG_KEYINFO_INVALID'
  | 'XMLDSIG_EMBEDDED_CERTIFICATE'
  | 'XMLDSIG_SIGNER_UNKNOWN'
  | 'XMLDSIG_SIGNER_EXPIRED'
  | 'XMLDSIG_SIGNER_NOT_YET_VALID'
  | 'XMLDSIG_SIGNER_ISPB_MISMATCH'
  | 'XMLDSIG_DIGEST_MISMATCH'
  | 'XMLDSIG_SIGNATURE_MISMATCH';

/** A signature that selo does not accept. Permanent: the same message fails again. */
export class XmlSignatureError extends PermanentError {
  /** The reason, one of {@link XmlSignatureErrorCode}. */
  declare readonly code: XmlSignatureErrorCode;

  constructor(code: XmlSignatureErrorCode, message: string, details?: Readonly<Record<string, unknown>>) {
    super(code, message, details === undefined ? {} : { details });
  }
}

/** An input the signer cannot sign (not a SPI envelope, already signed, …): `XMLDSIG_SIGNING_INPUT_INVALID`. */
export class XmlSigningError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('XMLDSIG_SIGNING_INPUT_INVALID', message, options);
  }
}
