import type { XmlDocument, XmlElement, XmlNode } from './xml-node.ts';

/** The algorithm URI of Exclusive XML Canonicalization 1.0 without comments. */
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
/** The algorithm URI of Exclusive XML Canonicalization 1.0 with comments. */
export const EXC_C14N_WITH_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';

/** Options of {@link canonicalizeElement} and {@link canonicalizeDocument}. */
export interface ExcC14nOptions {
  /**
   * Keep comments (the `#WithComments` variant).
   * @defaultValue false
   */
  withComments?: boolean;
  /**
   * An element whose whole subtree is left out, as the enveloped-signature transform does
   * with the `ds:Signature` element.
   * @defaultValue none
   */
  exclude?: XmlElement;
}

const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<"\t\n\r]/;

function escapeText(value: string): string {
  if (!TEXT_SPECIAL.test(value)) return value;
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

function escapeAttribute(value: string): string {
  if (!ATTR_SPECIAL.test(value)) return value;
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#x9;')
    .replace(/\n/g, '&#xA;')
    .replace(/\r/g, '&#xD;');
}

function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const EMPTY_RENDERED: ReadonlyMap<string, string> = new Map();

/**
 * Renders one element (and its subtree) in exclusive canonical form.
 *
 * `rendered` maps each prefix to the namespace URI the nearest output ancestor rendered for it
 * (exc-c14n §3: a namespace node is output when it is visibly utilized and not already
 * rendered with the same value by an output ancestor).
 */
function renderElement(element: XmlElement, rendered: ReadonlyMap<string, string>, out: string[], options: ExcC14nOptions): void {
  if (element === options.exclude) return;
  let declarations: [string, string][] | undefined;
  // The element's own prefix is always visibly utilized (the default namespace when unprefixed).
  const ownPrefix = element.prefix;
  const ownUri = element.namespaceUri;
  if ((rendered.get(ownPrefix) ?? '') !== ownUri) declarations = [[ownPrefix, ownUri]];
  const attributes = element.attributes;
  for (const attribute of attributes) {
    const prefix = attribute.prefix;
    if (prefix === '' || prefix === 'xml' || prefix === ownPrefix) continue;
    if (rendered.get(prefix) !== attribute.namespaceUri) {
      declarations ??= [];
      if (!declarations.some((d) => d[0] === prefix)) declarations.push([prefix, attribute.namespaceUri]);
    }
  }
  out.push('<', element.name);
  let childRendered = rendered;
  if (declarations !== undefined) {
    if (declarations.length > 1) declarations.sort((a, b) => compareCodePoints(a[0], b[0]));
    const next = new Map(rendered);
    for (const [prefix, uri] of declarations) {
      out.push(prefix === '' ? ' xmlns="' : ` xmlns:${prefix}="`, escapeAttribute(uri), '"');
      next.set(prefix, uri);
    }
    childRendered = next;
  }
  if (attributes.length === 1) {
    const attribute = attributes[0] as (typeof attributes)[0];
    out.push(' ', attribute.name, '="', escapeAttribute(attribute.value), '"');
  } else if (attributes.length > 1) {
    const sorted = [...attributes].sort(
      (a, b) => compareCodePoints(a.namespaceUri, b.namespaceUri) || compareCodePoints(a.localName, b.localName),
    );
    for (const attribute of sorted) out.push(' ', attribute.name, '="', escapeAttribute(attribute.value), '"');
  }
  out.push('>');
  for (const child of element.children) renderNode(child, childRendered, out, options);
  out.push('</', element.name, '>');
}

function renderNode(node: XmlNode, rendered: ReadonlyMap<string, string>, out: string[], options: ExcC14nOptions): void {
  switch (node.kind) {
    case 'element':
      renderElement(node, rendered, out, options);
      return;
    case 'text':
      out.push(escapeText(node.value));
      return;
    case 'comment':
      if (options.withComments === true) out.push('<!--', node.value, '-->');
      return;
    case 'pi':
      out.push('<?', node.target, node.data === '' ? '' : ` ${node.data}`, '?>');
      return;
  }
}

/**
 * Exclusive XML Canonicalization 1.0 (W3C REC xml-exc-c14n, empty InclusiveNamespaces
 * PrefixList) of the subtree rooted at `element`, as a same-document reference or a
 * `SignedInfo` is canonicalized: only namespaces visibly utilized are output, at the outermost
 * element that uses them.
 */
export function canonicalizeElement(element: XmlElement, options: ExcC14nOptions = {}): string {
  const out: string[] = [];
  renderElement(element, EMPTY_RENDERED, out, options);
  return out.join('');
}

/**
 * Exclusive XML Canonicalization 1.0 of a whole document (the `URI=""` node-set): the document
 * element plus processing instructions (and comments with `withComments`) before and after
 * it, each separated from the document element by a line feed (C14N 1.0 §2.1).
 */
export function canonicalizeDocument(document: XmlDocument, options: ExcC14nOptions = {}): string {
  const out: string[] = [];
  for (const node of document.prolog) {
    const before = out.length;
    renderNode(node, EMPTY_RENDERED, out, options);
    if (out.length > before) out.push('\n');
  }
  renderElement(document.root, EMPTY_RENDERED, out, options);
  for (const node of document.epilog) {
    const marker = out.length;
    out.push('\n');
    renderNode(node, EMPTY_RENDERED, out, options);
    if (out.length === marker + 1) out.pop();
  }
  return out.join('');
}
