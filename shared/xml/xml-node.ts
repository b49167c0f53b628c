/** The namespace of the `xml:` prefix, bound by definition (Namespaces in XML 1.0 §3). */
export const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
/** The namespace of `xmlns` declarations. */
export const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

/** An attribute after namespace resolution; namespace declarations are not attributes here. */
export interface XmlAttribute {
  /** The qualified name as written (`Ccy`, `xml:lang`). */
  readonly name: string;
  /** The prefix, or `''` when unprefixed. */
  readonly prefix: string;
  /** The local part of the name. */
  readonly localName: string;
  /** The namespace URI; `''` for unprefixed attributes (they are in no namespace). */
  readonly namespaceUri: string;
  /** The normalized value (entities and character references resolved, XML 1.0 §3.3.3). */
  readonly value: string;
}

/** A namespace declaration written on an element (`xmlns="…"` has prefix `''`). */
export interface XmlNamespaceDeclaration {
  readonly prefix: string;
  readonly uri: string;
}

/** Character data (text and CDATA sections, merged), line ends normalized to `\n`. */
export interface XmlText {
  readonly kind: 'text';
  value: string;
  readonly parent: XmlElement | null;
}

/** A comment. */
export interface XmlComment {
  readonly kind: 'comment';
  readonly value: string;
  readonly parent: XmlElement | null;
}

/** A processing instruction other than the XML declaration. */
export interface XmlProcessingInstruction {
  readonly kind: 'pi';
  readonly target: string;
  readonly data: string;
  readonly parent: XmlElement | null;
}

/** An element with its namespace context. */
export interface XmlElement {
  readonly kind: 'element';
  /** The qualified name as written. */
  readonly name: string;
  /** The prefix, or `''`. */
  readonly prefix: string;
  readonly localName: string;
  /** The namespace URI, `''` when the element is in no namespace. */
  readonly namespaceUri: string;
  /** Attributes in document order (namespace declarations excluded). */
  readonly attributes: readonly XmlAttribute[];
  /** Namespace declarations written on this element, in document order. */
  readonly namespaces: readonly XmlNamespaceDeclaration[];
  /** Prefix → URI bindings in scope here (`''` is the default namespace). Shared with the parent when unchanged. */
  readonly inScope: ReadonlyMap<string, string>;
  readonly children: XmlNode[];
  readonly parent: XmlElement | null;
  /** Offset (UTF-16 units) of `<` of the start tag in the parsed text. */
  readonly start: number;
  /** Offset just past `>` of the start tag. */
  readonly startTagEnd: number;
  /** Offset of `<` of the end tag (equals `startTagEnd` for `<a/>`). */
  endTagStart: number;
  /** Offset just past the end of the element. */
  end: number;
  /** Whether written as `<a/>`. */
  readonly selfClosing: boolean;
}

/** Any node inside the document. */
export type XmlNode = XmlElement | XmlText | XmlComment | XmlProcessingInstruction;

/** A parsed document. */
export interface XmlDocument {
  /** The text that was parsed (BOM removed); element offsets refer to it. */
  readonly source: string;
  /** Comments and processing instructions before the root element. */
  readonly prolog: readonly (XmlComment | XmlProcessingInstruction)[];
  /** The document element. */
  readonly root: XmlElement;
  /** Comments and processing instructions after the root element. */
  readonly epilog: readonly (XmlComment | XmlProcessingInstruction)[];
}

/** The value of the attribute with this local name and no namespace, if present. */
export function getAttribute(element: XmlElement, localName: string): string | undefined {
  for (const attribute of element.attributes) {
    if (attribute.localName === localName && attribute.namespaceUri === '') return attribute.value;
  }
  return undefined;
}

/** Whether the attribute with this local name and no namespace is present. */
export function hasAttribute(element: XmlElement, localName: string): boolean {
  return getAttribute(element, localName) !== undefined;
}

/** The element children of an element, in order. */
export function childElements(element: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of element.children) if (child.kind === 'element') out.push(child);
  return out;
}

/** The element children with this local name (and namespace, when given). */
export function childElementsNamed(element: XmlElement, localName: string, namespaceUri?: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of element.children) {
    if (child.kind === 'element' && child.localName === localName && (namespaceUri === undefined || child.namespaceUri === namespaceUri)) {
      out.push(child);
    }
  }
  return out;
}

/** The first element child with this local name (and namespace, when given). */
export function firstChildElement(element: XmlElement, localName: string, namespaceUri?: string): XmlElement | undefined {
  for (const child of element.children) {
    if (child.kind === 'element' && child.localName === localName && (namespaceUri === undefined || child.namespaceUri === namespaceUri)) {
      return child;
    }
  }
  return undefined;
}

/** Every element in the subtree rooted at `element` (itself included), in document order. */
export function descendantElements(element: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const stack: XmlElement[] = [element];
  while (stack.length > 0) {
    const next = stack.pop() as XmlElement;
    out.push(next);
    for (let i = next.children.length - 1; i >= 0; i--) {
      const child = next.children[i];
      if (child !== undefined && child.kind === 'element') stack.push(child);
    }
  }
  return out;
}

/** The concatenated character data of the element's descendants. */
export function textContent(element: XmlElement): string {
  let out = '';
  for (const child of element.children) {
    if (child.kind === 'text') out += child.value;
    else if (child.kind === 'element') out += textContent(child);
  }
  return out;
}

/**
 * Follows a path of local names from `element` (first match at each step), e.g.
 * `['Fr', 'FIId', 'FinInstnId', 'Othr', 'Id']`.
 */
export function findPath(element: XmlElement, path: readonly string[]): XmlElement | undefined {
  let current: XmlElement | undefined = element;
  for (const step of path) {
    if (current === undefined) return undefined;
    current = firstChildElement(current, step);
  }
  return current;
}

/** An XPath-like location (`/Envelope/AppHdr/Fr`, with `[n]` when siblings share the name) for messages. */
export function elementPath(element: XmlElement): string {
  const steps: string[] = [];
  let current: XmlElement | null = element;
  while (current !== null) {
    const parent: XmlElement | null = current.parent;
    let step = current.localName;
    if (parent !== null) {
      const same = childElementsNamed(parent, current.localName);
      if (same.length > 1) step += `[${same.indexOf(current) + 1}]`;
    }
    steps.unshift(step);
    current = parent;
  }
  return `/${steps.join('/')}`;
}
