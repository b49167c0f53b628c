import { createHash, randomBytes } from 'node:crypto';
import { XmlParseError, canonicalizeDocument, canonicalizeElement, childElements, descendantElements, escapeXmlText, parseXml } from '../xml/index.ts';
import type { XmlDocument, XmlElement, XmlParseOptions } from '../xml/index.ts';
import { ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N, ALGORITHM_RSA_SHA256, ALGORITHM_SHA256, DSIG_NAMESPACE } from './algorithms.ts';
import { certificateNames, certificateSerial, formatRfc2253 } from './distinguished-name.ts';
import type { SigningKey } from './signing-key.ts';
import { XmlSigningError } from './xmldsig-error.ts';

/** Options of {@link signSpi} and {@link signDict}. */
export interface SignOptions {
  /**
   * The `Id` of `ds:KeyInfo`; must be an XML NCName unique in the document.
   * @defaultValue `KI` followed by 32 random hex digits
   */
  keyInfoId?: string;
  /** Parser limits for the input. @defaultValue the parser's defaults */
  parse?: XmlParseOptions;
}

const NCNAME = /^[A-Za-z_][\w.-]*$/;

function digest(canonical: string): string {
  return createHash('sha256').update(canonical, 'utf8').digest('base64');
}

function reference(uri: string | null, transforms: readonly string[], digestValue: string): string {
  const uriAttribute = uri === null ? '' : ` URI="${uri}"`;
  const transformXml = transforms.map((t) => `<ds:Transform Algorithm="${t}"></ds:Transform>`).join('');
  return (
    `<ds:Reference${uriAttribute}><ds:Transforms>${transformXml}</ds:Transforms>` +
    `<ds:DigestMethod Algorithm="${ALGORITHM_SHA256}"></ds:DigestMethod>` +
    `<ds:DigestValue>${digestValue}</ds:DigestValue></ds:Reference>`
  );
}

const DS_DECLARATION = ` xmlns:ds="${DSIG_NAMESPACE}"`;

interface Target {
  document: XmlDocument;
  /** Offset where the signature goes, and what replaces `[from, to)` around it. */
  from: number;
  to: number;
  before: string;
  after: string;
  references: (keyInfoReference: string) => string[];
}

/**
 * Builds the signature for `target` and splices it into the source text. Everything is written
 * in canonical form already (no empty-element tags, c14n escaping), so the canonical
 * `SignedInfo` and `KeyInfo` are these very strings with the `xmlns:ds` declaration that the
 * `ds:Signature` element carries; the verifier recomputes them from the parsed output.
 */
async function signTarget(target: Target, key: SigningKey, options: SignOptions): Promise<string> {
  const keyInfoId = options.keyInfoId ?? `KI${randomBytes(16).toString('hex')}`;
  if (!NCNAME.test(keyInfoId)) throw new RangeError(`SignOptions.keyInfoId must be an XML NCName, got ${JSON.stringify(keyInfoId)}`);
  for (const element of descendantElements(target.document.root)) {
    for (const attribute of element.attributes) {
      if (attribute.value === keyInfoId && /^(Id|ID|id)$/.test(attribute.localName)) {
        throw new XmlSigningError(`the document already has an element with Id ${keyInfoId}`);
      }
    }
  }
  const { issuer } = certificateNames(key.certificate);
  const keyInfoBody =
    `<ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>${escapeXmlText(formatRfc2253(issuer))}</ds:X509IssuerName>` +
    `<ds:X509SerialNumber>${certificateSerial(key.certificate).toString(10)}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data>`;
  const keyInfoCanonical = `<ds:KeyInfo${DS_DECLARATION} Id="${keyInfoId}">${keyInfoBody}</ds:KeyInfo>`;
  const references = [reference(`#${keyInfoId}`, [ALGORITHM_EXC_C14N], digest(keyInfoCanonical)), ...target.references('')];
  const signedInfoBody =
    `<ds:CanonicalizationMethod Algorithm="${ALGORITHM_EXC_C14N}"></ds:CanonicalizationMethod>` +
    `<ds:SignatureMethod Algorithm="${ALGORITHM_RSA_SHA256}"></ds:SignatureMethod>${references.join('')}`;
  const signedInfoCanonical = `<ds:SignedInfo${DS_DECLARATION}>${signedInfoBody}</ds:SignedInfo>`;
  const signatureValue = (await key.sign(Buffer.from(signedInfoCanonical, 'utf8'))).toString('base64');
  const signature =
    `<ds:Signature${DS_DECLARATION}><ds:SignedInfo>${signedInfoBody}</ds:SignedInfo>` +
    `<ds:SignatureValue>${signatureValue}</ds:SignatureValue><ds:KeyInfo Id="${keyInfoId}">${keyInfoBody}</ds:KeyInfo></ds:Signature>`;
  const source = target.document.source;
  return `${source.slice(0, target.from)}${target.before}${signature}${target.after}${source.slice(target.to)}`;
}

function parseInput(xml: string | Uint8Array, options: SignOptions): XmlDocument {
  try {
    return parseXml(xml, options.parse);
  } catch (error) {
    if (error instanceof XmlParseError) throw error;
    throw new XmlSigningError('the input is not XML', { cause: error });
  }
}

function assertUnsigned(document: XmlDocument): void {
  if (descendantElements(document.root).some((e) => e.localName === 'Signature' && e.namespaceUri === DSIG_NAMESPACE)) {
    throw new XmlSigningError('the message already has a ds:Signature');
  }
}

/** The `AppHdr` and `Document` children of a SPI `Envelope`, or an explanation. */
export function spiParts(root: XmlElement): { appHdr: XmlElement; document: XmlElement } | string {
  const children = childElements(root);
  const [appHdr, document] = children;
  if (children.length !== 2 || appHdr === undefined || document === undefined) {
    return `the root <${root.name}> must have exactly two child elements, AppHdr and Document`;
  }
  if (appHdr.localName !== 'AppHdr' || document.localName !== 'Document') {
    return `the children of <${root.name}> must be AppHdr then Document, found ${appHdr.localName} and ${document.localName}`;
  }
  if (appHdr.namespaceUri !== root.namespaceUri || document.namespaceUri !== root.namespaceUri) {
    return 'AppHdr and Document must be in the namespace of the envelope';
  }
  return { appHdr, document };
}

/**
 * Signs a SPI message (an `Envelope` with `AppHdr` and `Document`) per the BCB SPI profile:
 * `ds:Signature` inside `AppHdr/Sgntr` (created as the last child of `AppHdr` when absent),
 * exclusive C14N, RSA-SHA256, SHA-256 and three references in this order — `#<KeyInfo Id>`,
 * `URI=""` (enveloped) meaning the `AppHdr`, and a URI-less one meaning the `Document`.
 * `KeyInfo` holds only the issuer (RFC 2253) and decimal serial of the key's certificate.
 *
 * @returns the signed XML: the input text with the signature spliced in, nothing else changed.
 * @throws {@link XmlParseError} for unusable XML; {@link XmlSigningError} for a non-SPI or already signed input.
 */
export async function signSpi(xml: string | Uint8Array, key: SigningKey, options: SignOptions = {}): Promise<string> {
  const document = parseInput(xml, options);
  const parts = spiParts(document.root);
  if (typeof parts === 'string') throw new XmlSigningError(parts);
  assertUnsigned(document);
  const { appHdr } = parts;
  const sgntrs = childElements(appHdr).filter((e) => e.localName === 'Sgntr');
  if (sgntrs.length > 1) throw new XmlSigningError('AppHdr has more than one Sgntr');
  const sgntr = sgntrs[0];
  if (sgntr !== undefined && childElements(sgntr).length > 0) throw new XmlSigningError('AppHdr/Sgntr is not empty');
  const appHdrDigest = digest(canonicalizeElement(appHdr));
  const documentDigest = digest(canonicalizeElement(parts.document));
  const references = (): string[] => [
    reference('', [ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N], appHdrDigest),
    reference(null, [ALGORITHM_EXC_C14N], documentDigest),
  ];
  let target: Target;
  if (sgntr === undefined) {
    // Adding Sgntr changes AppHdr, so digest the AppHdr as it will be (Sgntr with the signature left out).
    const sgntrName = appHdr.prefix === '' ? 'Sgntr' : `${appHdr.prefix}:Sgntr`;
    const at = appHdr.endTagStart;
    const withSgntr = parseXml(`${document.source.slice(0, at)}<${sgntrName}></${sgntrName}>${document.source.slice(at)}`, options.parse);
    const updated = spiParts(withSgntr.root);
    if (typeof updated === 'string') throw new XmlSigningError(updated);
    const updatedDigest = digest(canonicalizeElement(updated.appHdr));
    target = {
      document,
      from: at,
      to: at,
      before: `<${sgntrName}>`,
      after: `</${sgntrName}>`,
      references: () => [reference('', [ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N], updatedDigest), reference(null, [ALGORITHM_EXC_C14N], documentDigest)],
    };
  } else if (sgntr.selfClosing) {
    target = { document, from: sgntr.start, to: sgntr.end, before: `<${sgntr.name}>`, after: `</${sgntr.name}>`, references };
  } else {
    target = { document, from: sgntr.endTagStart, to: sgntr.endTagStart, before: '', after: '', references };
  }
  return signTarget(target, key, options);
}

/**
 * Signs a DICT request or response body per the BCB DICT profile: enveloped `ds:Signature` as
 * the first child of the root, exclusive C14N, RSA-SHA256, SHA-256, two references —
 * `#<KeyInfo Id>` and `URI=""` (the whole document, enveloped-signature then exc-c14n).
 *
 * @returns the signed XML: the input text with the signature spliced in after the root's start tag.
 * @throws {@link XmlParseError} for unusable XML; {@link XmlSigningError} for an already signed input.
 */
export async function signDict(xml: string | Uint8Array, key: SigningKey, options: SignOptions = {}): Promise<string> {
  const document = parseInput(xml, options);
  assertUnsigned(document);
  const root = document.root;
  const documentDigest = digest(canonicalizeDocument(document));
  const references = (): string[] => [reference('', [ALGORITHM_ENVELOPED, ALGORITHM_EXC_C14N], documentDigest)];
  const target: Target = root.selfClosing
    ? { document, from: root.startTagEnd - 2, to: root.startTagEnd, before: '>', after: `</${root.name}>`, references }
    : { document, from: root.startTagEnd, to: root.startTagEnd, before: '', after: '', references };
  return signTarget(target, key, options);
}
