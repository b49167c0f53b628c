import { createHash, verify as cryptoVerify } from 'node:crypto';
import {
  canonicalizeDocument,
  canonicalizeElement,
  childElements,
  descendantElements,
  getAttribute,
  hasAttribute,
  parseXml,
  textContent,
} from '../xml/index.ts';
import type { XmlDocument, XmlElement, XmlParseOptions } from '../xml/index.ts';
import { ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N, ALGORITHM_RSA_SHA256, ALGORITHM_SHA256, DSIG_NAMESPACE } from './algorithms.ts';
import { DistinguishedNameSyntaxError, parseRfc2253 } from './distinguished-name.ts';
import { spiParts } from './sign.ts';
import type { TrustStore, TrustedCertificate } from './trust-store.ts';
import { XmlSignatureError } from './xmldsig-error.ts';
import type { XmlSignatureErrorCode } from './xmldsig-error.ts';

/** Options of {@link verifySpi} and {@link verifyDict}. */
export interface VerifyOptions {
  /** The certificates whose signatures are accepted. */
  trustStore: TrustStore;
  /** The instant the signer's validity is checked at. @defaultValue now */
  now?: Date;
  /** Parser limits for the input. @defaultValue the parser's defaults */
  parse?: XmlParseOptions;
}

/** A SPI message whose signature verified; `appHdr` and `document` are exactly what was digested. */
export interface VerifiedSpiMessage {
  /** The parsed message. */
  readonly xml: XmlDocument;
  /** The signed `AppHdr` element (its `Sgntr/ds:Signature` was excluded from the digest). */
  readonly appHdr: XmlElement;
  /** The signed `Document` element. */
  readonly document: XmlElement;
  /** The trusted certificate that verified the signature. */
  readonly signer: TrustedCertificate;
  /** `AppHdr/Fr/FIId/FinInstnId/Othr/Id`, the sender's ISPB. */
  readonly fromIspb: string;
}

/** A DICT body whose signature verified; `root` is the signed document element. */
export interface VerifiedDictMessage {
  readonly xml: XmlDocument;
  /** The signed root element (its first child is the `ds:Signature`, excluded from the digest). */
  readonly root: XmlElement;
  readonly signer: TrustedCertificate;
  /** The `ds:Signature` element, to skip when reading `root`. */
  readonly signature: XmlElement;
}

// DESIGN §2: the references of each profile, in order.
const SPI_REFERENCES: readonly ReferenceSpec[] = [
  { uri: 'keyinfo', name: 'KeyInfo', transforms: [ALGORITHM_EXC_C14N] },
  { uri: 'empty', name: 'AppHdr', transforms: [ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N] },
  { uri: 'absent', name: 'Document', transforms: [ALGORITHM_EXC_C14N] },
];
const DICT_REFERENCES: readonly ReferenceSpec[] = [
  { uri: 'keyinfo', name: 'KeyInfo', transforms: [ALGORITHM_EXC_C14N] },
  { uri: 'empty', name: 'whole document', transforms: [ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N] },
];

const WS_TEXT = /^[ \t\r\n]*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function reject(code: XmlSignatureErrorCode, message: string, details?: Readonly<Record<string, unknown>>): never {
  throw new XmlSignatureError(code, message, details);
}

function isDs(element: XmlElement, localName: string): boolean {
  return element.localName === localName && element.namespaceUri === DSIG_NAMESPACE;
}

/** The element children, refusing non-whitespace text (which would be ignored by a schema-less reader). */
function dsChildren(element: XmlElement): XmlElement[] {
  for (const child of element.children) {
    if (child.kind === 'text' && !WS_TEXT.test(child.value)) {
      reject('XMLDSIG_SIGNATURE_STRUCTURE_INVALID', `unexpected text inside ds:${element.localName}`);
    }
  }
  return childElements(element);
}

function expectDs(element: XmlElement | undefined, localName: string, where: string): XmlElement {
  if (element === undefined || !isDs(element, localName)) {
    reject('XMLDSIG_SIGNATURE_STRUCTURE_INVALID', `expected ds:${localName} in ${where}, found ${element === undefined ? 'nothing' : `<${element.name}>`}`);
  }
  return element;
}

function algorithmOf(element: XmlElement, allowed: string, what: string): void {
  const algorithm = getAttribute(element, 'Algorithm');
  if (algorithm !== allowed) {
    reject('XMLDSIG_ALGORITHM_NOT_ALLOWED', `${what} ${JSON.stringify(algorithm ?? null)} is not allowed (only ${allowed})`);
  }
  if (dsChildrenAny(element)) reject('XMLDSIG_ALGORITHM_NOT_ALLOWED', `${what} parameters (e.g. InclusiveNamespaces) are not allowed`);
}

function dsChildrenAny(element: XmlElement): boolean {
  return element.children.some((c) => c.kind === 'element' || (c.kind === 'text' && !WS_TEXT.test(c.value)));
}

function decodeBase64(text: string, what: string, code: XmlSignatureErrorCode): Buffer {
  // The BCB wraps base64 at 76 columns with CR LF; any XML whitespace is tolerated.
  const compact = text.replace(/[ \t\r\n]+/g, '');
  if (compact === '' || !BASE64.test(compact)) reject(code, `${what} is not base64`);
  return Buffer.from(compact, 'base64');
}

interface ParsedReference {
  element: XmlElement;
  uri: string | undefined;
  digest: Buffer;
}

function parseReference(element: XmlElement, index: number, expectedTransforms: readonly string[]): ParsedReference {
  const [transforms, digestMethod, digestValue, extra] = dsChildren(element);
  if (extra !== undefined) reject('XMLDSIG_SIGNATURE_STRUCTURE_INVALID', `ds:Reference ${index + 1} has unexpected <${extra.name}>`);
  const transformList = dsChildren(expectDs(transforms, 'Transforms', `Reference ${index + 1}`));
  if (transformList.length !== expectedTransforms.length) {
    reject('XMLDSIG_ALGORITHM_NOT_ALLOWED', `Reference ${index + 1} must have exactly the transforms ${expectedTransforms.join(', ')}`);
  }
  transformList.forEach((transform, i) => {
    algorithmOf(expectDs(transform, 'Transform', `Reference ${index + 1}`), expectedTransforms[i] as string, `Reference ${index + 1} transform`);
  });
  algorithmOf(expectDs(digestMethod, 'DigestMethod', `Reference ${index + 1}`), ALGORITHM_SHA256, 'DigestMethod');
  const value = expectDs(digestValue, 'DigestValue', `Reference ${index + 1}`);
  const digest = decodeBase64(textContent(value), `DigestValue of Reference ${index + 1}`, 'XMLDSIG_SIGNATURE_STRUCTURE_INVALID');
  return { element, uri: getAttribute(element, 'URI'), digest };
}

interface ParsedSignature {
  signedInfo: XmlElement;
  signatureValue: Buffer;
  keyInfo: XmlElement;
  keyInfoId: string;
  references: ParsedReference[];
  issuer: ReturnType<typeof parseRfc2253>;
  serial: bigint;
}

/** What the profile expects of one reference: its URI form and its transforms. */
interface ReferenceSpec {
  uri: 'keyinfo' | 'empty' | 'absent';
  name: string;
  transforms: readonly string[];
}

function checkReferenceUri(element: XmlElement, index: number, spec: ReferenceSpec, keyInfoId: string): void {
  const uri = getAttribute(element, 'URI');
  const expected = spec.uri === 'keyinfo' ? `URI="#${keyInfoId}"` : spec.uri === 'empty' ? 'URI=""' : 'no URI';
  const ok = spec.uri === 'keyinfo' ? uri === `#${keyInfoId}` : spec.uri === 'empty' ? uri === '' : !hasAttribute(element, 'URI');
  if (!ok) {
    reject('XMLDSIG_REFERENCES_INVALID', `reference ${index + 1} must have ${expected} (the ${spec.name}), found ${uri === undefined ? 'no URI' : `URI=${JSON.stringify(uri)}`}`);
  }
}

function parseSignature(signature: XmlElement, specs: readonly ReferenceSpec[]): ParsedSignature {
  const [first, second, third, extra] = dsChildren(signature);
  if (extra !== undefined) reject('XMLDSIG_SIGNATURE_STRUCTURE_INVALID', `ds:Signature has unexpected <${extra.name}> (only SignedInfo, SignatureValue, KeyInfo)`);
  const signedInfo = expectDs(first, 'SignedInfo', 'Signature');
  const signatureValue = expectDs(second, 'SignatureValue', 'Signature');
  const keyInfo = expectDs(third, 'KeyInfo', 'Signature');

  // KeyInfo: an Id and only X509Data/X509IssuerSerial (DESIGN §2); never a certificate.
  const keyInfoElements = descendantElements(keyInfo);
  if (keyInfoElements.some((e) => e.localName === 'X509Certificate' || e.localName === 'KeyValue' || e.localName === 'RSAKeyValue')) {
    reject('XMLDSIG_EMBEDDED_CERTIFICATE', 'KeyInfo offers a certificate or key; signers are taken from the trust store by issuer and serial only');
  }
  const keyInfoId = getAttribute(keyInfo, 'Id');
  if (keyInfoId === undefined || keyInfoId === '') reject('XMLDSIG_KEYINFO_INVALID', 'KeyInfo has no Id');
  const keyInfoChildren = dsChildren(keyInfo);
  const x509Data = keyInfoChildren[0];
  if (keyInfoChildren.length !== 1 || x509Data === undefined || !isDs(x509Data, 'X509Data')) {
    reject('XMLDSIG_KEYINFO_INVALID', 'KeyInfo must hold exactly one X509Data');
  }
  const x509Children = dsChildren(x509Data);
  const issuerSerial = x509Children[0];
  if (x509Children.length !== 1 || issuerSerial === undefined || !isDs(issuerSerial, 'X509IssuerSerial')) {
    reject('XMLDSIG_KEYINFO_INVALID', 'X509Data must hold exactly one X509IssuerSerial');
  }
  const [issuerName, serialNumber, more] = dsChildren(issuerSerial);
  if (more !== undefined || issuerName === undefined || serialNumber === undefined || !isDs(issuerName, 'X509IssuerName') || !isDs(serialNumber, 'X509SerialNumber')) {
    reject('XMLDSIG_KEYINFO_INVALID', 'X509IssuerSerial must hold X509IssuerName then X509SerialNumber');
  }
  let issuer: ReturnType<typeof parseRfc2253>;
  try {
    issuer = parseRfc2253(textContent(issuerName));
  } catch (error) {
    if (!(error instanceof DistinguishedNameSyntaxError)) throw error;
    reject('XMLDSIG_KEYINFO_INVALID', `X509IssuerName is not a distinguished name: ${error.message}`);
  }
  const serialText = textContent(serialNumber).trim();
  if (!/^[0-9]{1,60}$/.test(serialText)) reject('XMLDSIG_KEYINFO_INVALID', 'X509SerialNumber is not a decimal integer');

  // SignedInfo: exc-c14n, RSA-SHA256, exactly the profile's references in its order.
  const [c14nMethod, signatureMethod, ...referenceElements] = dsChildren(signedInfo);
  algorithmOf(expectDs(c14nMethod, 'CanonicalizationMethod', 'SignedInfo'), ALGORITHM_EXC_C14N, 'CanonicalizationMethod');
  algorithmOf(expectDs(signatureMethod, 'SignatureMethod', 'SignedInfo'), ALGORITHM_RSA_SHA256, 'SignatureMethod');
  if (referenceElements.length !== specs.length || referenceElements.some((r) => !isDs(r, 'Reference'))) {
    reject('XMLDSIG_REFERENCES_INVALID', `SignedInfo must have exactly ${specs.length} references, found ${referenceElements.length}`);
  }
  referenceElements.forEach((r, i) => checkReferenceUri(r, i, specs[i] as ReferenceSpec, keyInfoId));
  const references = referenceElements.map((r, i) => parseReference(r, i, specs[i]?.transforms ?? []));
  const valueBytes = decodeBase64(textContent(signatureValue), 'SignatureValue', 'XMLDSIG_SIGNATURE_MISMATCH');
  return { signedInfo, signatureValue: valueBytes, keyInfo, keyInfoId, references, issuer, serial: BigInt(serialText) };
}

/** Checks the `#id` reference: it must name this signature's KeyInfo and no other element may carry that id. */
function checkKeyInfoReference(document: XmlDocument, parsed: ParsedSignature): void {
  for (const element of descendantElements(document.root)) {
    if (element === parsed.keyInfo) continue;
    for (const attribute of element.attributes) {
      if (attribute.value === parsed.keyInfoId && /^(Id|ID|id)$/.test(attribute.localName)) {
        reject('XMLDSIG_REFERENCE_TARGET_INVALID', `another element (<${element.name}>) carries the KeyInfo id ${parsed.keyInfoId}`);
      }
    }
  }
}

function findSigner(parsed: ParsedSignature, options: VerifyOptions): TrustedCertificate {
  const signer = options.trustStore.find(parsed.issuer, parsed.serial);
  if (signer === undefined) reject('XMLDSIG_SIGNER_UNKNOWN', 'no trusted certificate has the issuer and serial in KeyInfo', { serial: parsed.serial.toString() });
  const now = (options.now ?? new Date()).getTime();
  if (now < Date.parse(signer.certificate.validFrom)) reject('XMLDSIG_SIGNER_NOT_YET_VALID', `the signer certificate is valid from ${signer.certificate.validFrom}`);
  if (now > Date.parse(signer.certificate.validTo)) reject('XMLDSIG_SIGNER_EXPIRED', `the signer certificate expired at ${signer.certificate.validTo}`);
  return signer;
}

/**
 * The signer's revocation, checked once its signature verified (so a forged message is reported
 * as the forgery it is). Throws `CERTIFICATE_REVOKED` (permanent) or, under the `require` policy,
 * `CRL_MISSING`/`CRL_EXPIRED`/… (transient: retried once operations refresh the CRL file).
 */
function checkRevocation(signer: TrustedCertificate, options: VerifyOptions): void {
  options.trustStore.revocation?.check(signer.certificate, { at: options.now ?? new Date() });
}

function checkDigest(reference: ParsedReference, canonical: string, name: string): void {
  const actual = createHash('sha256').update(canonical, 'utf8').digest();
  if (!actual.equals(reference.digest)) reject('XMLDSIG_DIGEST_MISMATCH', `the digest of the ${name} does not match`, { reference: name });
}

function checkSignatureValue(parsed: ParsedSignature, signer: TrustedCertificate): void {
  const signedInfo = Buffer.from(canonicalizeElement(parsed.signedInfo), 'utf8');
  const key = signer.certificate.publicKey;
  if (key.asymmetricKeyType !== 'rsa' || !cryptoVerify('sha256', signedInfo, key, parsed.signatureValue)) {
    reject('XMLDSIG_SIGNATURE_MISMATCH', 'SignatureValue does not verify over SignedInfo with the signer certificate');
  }
}

function allSignatures(document: XmlDocument): XmlElement[] {
  const signatures = descendantElements(document.root).filter((e) => e.localName === 'Signature' && e.namespaceUri === DSIG_NAMESPACE);
  if (signatures.length === 0) reject('XMLDSIG_SIGNATURE_MISSING', 'the message has no ds:Signature');
  if (signatures.length > 1) reject('XMLDSIG_SIGNATURE_MULTIPLE', `the message has ${signatures.length} ds:Signature elements`);
  return signatures;
}

/**
 * Verifies a SPI message per the BCB profile (DESIGN §2) and returns the verified `AppHdr` and
 * `Document`. Rejects anything else with an {@link XmlSignatureError} whose code names the
 * reason: the signature must be the only one and sit in `AppHdr/Sgntr`; the envelope must hold
 * exactly one `AppHdr` and one `Document` (anywhere in the tree); the references must be
 * `#<KeyInfo Id>`, `URI=""` (enveloped, the `AppHdr`) and URI-less (the `Document`), in that
 * order, with exc-c14n and SHA-256; the signer is found in the trust store by issuer and serial,
 * must be valid now, not revoked (when the trust store has a revocation check) and, when bound
 * to an ISPB, must be `AppHdr/Fr`.
 *
 * @throws {@link CertificateRevokedError} (`CERTIFICATE_REVOKED`) when the signer is revoked, and
 *   {@link RevocationUnknownError} when its status is unknown under the `require` policy.
 * @throws {@link XmlParseError} when the input is not acceptable XML.
 */
export function verifySpi(xml: string | Uint8Array | XmlDocument, options: VerifyOptions): VerifiedSpiMessage {
  const document = typeof xml === 'object' && 'root' in xml ? xml : parseXml(xml, options.parse);
  const elements = descendantElements(document.root);
  const appHdrCount = elements.filter((e) => e.localName === 'AppHdr').length;
  const documentCount = elements.filter((e) => e.localName === 'Document').length;
  if (appHdrCount > 1) reject('XMLDSIG_MESSAGE_MULTIPLE_APPHDR', `the message has ${appHdrCount} AppHdr elements`);
  if (documentCount > 1) reject('XMLDSIG_MESSAGE_MULTIPLE_DOCUMENT', `the message has ${documentCount} Document elements`);
  const parts = spiParts(document.root);
  if (typeof parts === 'string') reject('XMLDSIG_MESSAGE_STRUCTURE_INVALID', parts);
  const { appHdr } = parts;

  const [signature] = allSignatures(document) as [XmlElement];
  const sgntr = signature.parent;
  if (sgntr === null || sgntr.localName !== 'Sgntr' || sgntr.parent !== appHdr || sgntr.namespaceUri !== appHdr.namespaceUri) {
    reject('XMLDSIG_SIGNATURE_MISPLACED', 'the ds:Signature must be in AppHdr/Sgntr');
  }
  if (childElements(sgntr).length !== 1) reject('XMLDSIG_SIGNATURE_MISPLACED', 'AppHdr/Sgntr must hold only the ds:Signature');
  if (childElements(appHdr).filter((e) => e.localName === 'Sgntr').length !== 1) reject('XMLDSIG_MESSAGE_STRUCTURE_INVALID', 'AppHdr must have one Sgntr');

  const parsed = parseSignature(signature, SPI_REFERENCES);
  checkKeyInfoReference(document, parsed);
  const [, appHdrRef, documentRef] = parsed.references as [ParsedReference, ParsedReference, ParsedReference];

  // Exactly one element at each step, in the AppHdr's own namespace: a second Fr, or one in a
  // foreign namespace placed first, must not decide whose signature this is.
  let fromIdElement: XmlElement | undefined = appHdr;
  for (const step of ['Fr', 'FIId', 'FinInstnId', 'Othr', 'Id']) {
    const matches: XmlElement[] = childElements(fromIdElement).filter((e) => e.localName === step);
    if (matches.length !== 1 || matches[0]?.namespaceUri !== appHdr.namespaceUri) {
      reject('XMLDSIG_MESSAGE_STRUCTURE_INVALID', `AppHdr must have exactly one Fr/FIId/FinInstnId/Othr/Id in its namespace (at ${step})`);
    }
    fromIdElement = matches[0];
  }
  if (fromIdElement === undefined) reject('XMLDSIG_MESSAGE_STRUCTURE_INVALID', 'AppHdr has no Fr/FIId/FinInstnId/Othr/Id');
  const fromIspb = textContent(fromIdElement).trim();
  const signer = findSigner(parsed, options);

  checkDigest(parsed.references[0] as ParsedReference, canonicalizeElement(parsed.keyInfo), 'KeyInfo');
  checkDigest(appHdrRef, canonicalizeElement(appHdr, { exclude: signature }), 'AppHdr');
  checkDigest(documentRef, canonicalizeElement(parts.document), 'Document');
  checkSignatureValue(parsed, signer);
  checkRevocation(signer, options);
  // Checked last so that a tampered Fr reports the digest mismatch it is.
  if (signer.ispb !== undefined && signer.ispb !== fromIspb) {
    reject('XMLDSIG_SIGNER_ISPB_MISMATCH', `the signer certificate belongs to ISPB ${signer.ispb}, but AppHdr/Fr is ${fromIspb}`, { signerIspb: signer.ispb, fromIspb });
  }
  return { xml: document, appHdr, document: parts.document, signer, fromIspb };
}

/**
 * Verifies a DICT body per the BCB profile (DESIGN §2): one enveloped `ds:Signature`, the first
 * child element of the root, references `#<KeyInfo Id>` then `URI=""` (whole document), the
 * signer from the trust store by issuer and serial. Rejects with an {@link XmlSignatureError}.
 *
 * @throws {@link XmlParseError} when the input is not acceptable XML.
 */
export function verifyDict(xml: string | Uint8Array | XmlDocument, options: VerifyOptions): VerifiedDictMessage {
  const document = typeof xml === 'object' && 'root' in xml ? xml : parseXml(xml, options.parse);
  const [signature] = allSignatures(document) as [XmlElement];
  if (signature.parent !== document.root || childElements(document.root)[0] !== signature) {
    reject('XMLDSIG_SIGNATURE_MISPLACED', 'the ds:Signature must be the first child element of the root');
  }
  const parsed = parseSignature(signature, DICT_REFERENCES);
  checkKeyInfoReference(document, parsed);
  const documentRef = parsed.references[1] as ParsedReference;
  const signer = findSigner(parsed, options);
  checkDigest(parsed.references[0] as ParsedReference, canonicalizeElement(parsed.keyInfo), 'KeyInfo');
  checkDigest(documentRef, canonicalizeDocument(document, { exclude: signature }), 'document');
  checkSignatureValue(parsed, signer);
  checkRevocation(signer, options);
  return { xml: document, root: document.root, signer, signature };
}
