import { XmlParseError } from './xml-error.ts';
import type { XmlErrorCode } from './xml-error.ts';
import { XML_NAMESPACE, XMLNS_NAMESPACE } from './xml-node.ts';
import type {
  XmlAttribute,
  XmlComment,
  XmlDocument,
  XmlElement,
  XmlNamespaceDeclaration,
  XmlNode,
  XmlProcessingInstruction,
  XmlText,
} from './xml-node.ts';

/** Limits applied by {@link parseXml}. */
export interface XmlParseOptions {
  /**
   * Largest accepted input, in bytes (UTF-8) for a Buffer or UTF-16 units for a string.
   * @defaultValue 4 MiB (ICOM messages are far smaller; the BCB caps a POST at 10 messages)
   */
  maxBytes?: number;
  /**
   * Deepest accepted element nesting (the root is depth 1).
   * @defaultValue 64 (ISO 20022 SPI messages nest about 15 deep)
   */
  maxDepth?: number;
  /**
   * Most nodes (elements, text, comments, PIs) accepted in one document.
   * @defaultValue 200 000
   */
  maxNodes?: number;
  /**
   * Most attributes (namespace declarations included) on one element.
   * @defaultValue 64
   */
  maxAttributes?: number;
}

const DEFAULTS: Required<XmlParseOptions> = {
  maxBytes: 4 * 1024 * 1024,
  maxDepth: 64,
  maxNodes: 200_000,
  maxAttributes: 64,
};

function resolveOptions(options: XmlParseOptions | undefined): Required<XmlParseOptions> {
  const resolved = { ...DEFAULTS, ...options };
  for (const [field, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new RangeError(`XmlParseOptions.${field} must be a positive integer, got ${String(value)}`);
    }
  }
  return resolved;
}

// Characters that need a closer look in character data: markup, references, CR (line-end
// normalization, XML 1.0 §2.11) and characters outside the XML 1.0 Char production.
const TEXT_SLOW = /[&\r\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|]]>/;
const ATTR_SLOW = /[&<\t\n\r\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const INVALID_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58 || (c >= 0xc0 && c !== 0xd7 && c !== 0xf7 && c < 0xfffe);
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 0xb7;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

interface OpenElement {
  name: string;
  prefix: string;
  localName: string;
  rawAttributes: { name: string; value: string }[];
}

/**
 * Parses XML 1.0 (UTF-8) into a small immutable-by-convention tree, refusing everything a
 * message from the BCB or core banking never needs and an attacker might use: DTDs (XXE,
 * billion laughs), entity references other than the five predefined ones, non-UTF-8
 * encodings, inputs over the size, depth and node limits. Namespaces are resolved and checked.
 *
 * @throws {@link XmlParseError} with a specific code and the line and column of the problem.
 */
export function parseXml(input: string | Uint8Array, options?: XmlParseOptions): XmlDocument {
  const limits = resolveOptions(options);
  let source: string;
  if (typeof input === 'string') {
    if (input.length > limits.maxBytes) {
      throw new XmlParseError('XML_TOO_LARGE', `XML input of ${input.length} characters exceeds the limit of ${limits.maxBytes}`);
    }
    source = input;
  } else {
    if (input.byteLength > limits.maxBytes) {
      throw new XmlParseError('XML_TOO_LARGE', `XML input of ${input.byteLength} bytes exceeds the limit of ${limits.maxBytes}`);
    }
    if (input.byteLength >= 2 && ((input[0] === 0xfe && input[1] === 0xff) || (input[0] === 0xff && input[1] === 0xfe))) {
      throw new XmlParseError('XML_ENCODING_UNSUPPORTED', 'XML input is UTF-16; only UTF-8 is accepted');
    }
    try {
      source = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch (cause) {
      throw new XmlParseError('XML_ENCODING_UNSUPPORTED', `XML input is not valid UTF-8: ${(cause as Error).message}`);
    }
  }
  if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
  return new Parser(source, limits).parse();
}

class Parser {
  private readonly src: string;
  private readonly limits: Required<XmlParseOptions>;
  private pos = 0;
  private nodes = 0;

  constructor(src: string, limits: Required<XmlParseOptions>) {
    this.src = src;
    this.limits = limits;
  }

  parse(): XmlDocument {
    const src = this.src;
    if (src.startsWith('<?xml') && isSpace(src.charCodeAt(5))) this.parseXmlDeclaration();
    const prolog: (XmlComment | XmlProcessingInstruction)[] = [];
    const epilog: (XmlComment | XmlProcessingInstruction)[] = [];
    let root: XmlElement | undefined;
    for (;;) {
      this.skipSpace();
      if (this.pos >= src.length) break;
      if (src.charCodeAt(this.pos) !== 60 /* < */) {
        this.fail('XML_MALFORMED', 'text is not allowed outside the document element');
      }
      const next = src.charCodeAt(this.pos + 1);
      const target = root === undefined ? prolog : epilog;
      if (next === 63 /* ? */) {
        target.push(this.parsePi(null));
      } else if (next === 33 /* ! */) {
        if (src.startsWith('<!--', this.pos)) target.push(this.parseComment(null));
        else if (src.startsWith('<!DOCTYPE', this.pos)) this.fail('XML_DTD_FORBIDDEN', 'a DOCTYPE declaration is not accepted (DTDs and entity declarations are forbidden)');
        else if (src.startsWith('<!ENTITY', this.pos)) this.fail('XML_ENTITY_FORBIDDEN', 'entity declarations are not accepted');
        else this.fail('XML_MALFORMED', 'unexpected markup declaration');
      } else {
        if (root !== undefined) this.fail('XML_MALFORMED', 'more than one document element');
        root = this.parseRoot();
      }
    }
    if (root === undefined) this.fail('XML_MALFORMED', 'no document element');
    return { source: src, prolog, root, epilog };
  }

  private parseXmlDeclaration(): void {
    const end = this.src.indexOf('?>', 5);
    if (end < 0) this.fail('XML_MALFORMED', 'unterminated XML declaration');
    const body = this.src.slice(5, end);
    const version = /\bversion\s*=\s*(["'])([^"']*)\1/.exec(body);
    if (version === null) this.fail('XML_MALFORMED', 'XML declaration without version');
    if (version[2] !== '1.0') this.fail('XML_MALFORMED', `XML version ${version[2] ?? ''} is not supported (only 1.0)`);
    const encoding = /\bencoding\s*=\s*(["'])([^"']*)\1/.exec(body);
    if (encoding !== null) {
      const name = (encoding[2] ?? '').toLowerCase();
      if (name !== 'utf-8' && name !== 'utf8' && name !== 'us-ascii') {
        this.fail('XML_ENCODING_UNSUPPORTED', `encoding ${JSON.stringify(encoding[2])} is not supported (only UTF-8)`);
      }
    }
    this.pos = end + 2;
  }

  private parseRoot(): XmlElement {
    const src = this.src;
    const stack: XmlElement[] = [];
    const open: OpenElement[] = [];
    const rootScope: ReadonlyMap<string, string> = new Map([['xml', XML_NAMESPACE]]);
    let root: XmlElement | undefined;
    for (;;) {
      const parent = stack[stack.length - 1];
      if (parent === undefined && root !== undefined) return root;
      if (this.pos >= src.length) this.fail('XML_MALFORMED', `unexpected end of input inside <${open[open.length - 1]?.name ?? ''}>`);
      const c = src.charCodeAt(this.pos);
      if (c !== 60) {
        if (parent === undefined) this.fail('XML_MALFORMED', 'text outside the document element');
        this.parseText(parent);
        continue;
      }
      const next = src.charCodeAt(this.pos + 1);
      if (next === 47 /* / */) {
        const element = stack.pop();
        const opened = open.pop();
        if (element === undefined || opened === undefined) this.fail('XML_MALFORMED', 'end tag without start tag');
        const endStart = this.pos;
        this.pos += 2;
        const name = this.readName();
        if (name !== opened.name) this.fail('XML_MALFORMED', `end tag </${name}> does not match <${opened.name}>`);
        this.skipSpace();
        if (src.charCodeAt(this.pos) !== 62) this.fail('XML_MALFORMED', `malformed end tag </${name}>`);
        this.pos++;
        element.endTagStart = endStart;
        element.end = this.pos;
        continue;
      }
      if (parent !== undefined) {
        if (next === 33) {
          if (src.startsWith('<!--', this.pos)) {
            parent.children.push(this.parseComment(parent));
            continue;
          }
          if (src.startsWith('<![CDATA[', this.pos)) {
            this.parseCdata(parent);
            continue;
          }
          if (src.startsWith('<!DOCTYPE', this.pos)) this.fail('XML_DTD_FORBIDDEN', 'a DOCTYPE declaration is not accepted');
          if (src.startsWith('<!ENTITY', this.pos)) this.fail('XML_ENTITY_FORBIDDEN', 'entity declarations are not accepted');
          this.fail('XML_MALFORMED', 'unexpected markup declaration');
        }
        if (next === 63) {
          parent.children.push(this.parsePi(parent));
          continue;
        }
      }
      if (stack.length >= this.limits.maxDepth) {
        this.fail('XML_TOO_DEEP', `elements nest deeper than the limit of ${this.limits.maxDepth}`);
      }
      const element = this.parseStartTag(parent ?? null, parent?.inScope ?? rootScope, open);
      if (parent === undefined) root = element;
      else parent.children.push(element);
      if (!element.selfClosing) stack.push(element);
      else open.pop();
    }
  }

  private parseStartTag(parent: XmlElement | null, parentScope: ReadonlyMap<string, string>, open: OpenElement[]): XmlElement {
    const src = this.src;
    const start = this.pos;
    this.pos++;
    this.countNode();
    const name = this.readName();
    const rawAttributes: { name: string; value: string }[] = [];
    let selfClosing = false;
    for (;;) {
      const hadSpace = this.skipSpace();
      const c = src.charCodeAt(this.pos);
      if (c === 62) {
        this.pos++;
        break;
      }
      if (c === 47 && src.charCodeAt(this.pos + 1) === 62) {
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (Number.isNaN(c)) this.fail('XML_MALFORMED', `unexpected end of input in <${name}>`);
      if (!hadSpace) this.fail('XML_MALFORMED', `expected whitespace before attribute in <${name}>`);
      const attrName = this.readName();
      this.skipSpace();
      if (src.charCodeAt(this.pos) !== 61) this.fail('XML_MALFORMED', `expected = after attribute ${attrName}`);
      this.pos++;
      this.skipSpace();
      const value = this.readAttributeValue();
      for (const seen of rawAttributes) {
        if (seen.name === attrName) this.fail('XML_MALFORMED', `duplicate attribute ${attrName} on <${name}>`, start);
      }
      rawAttributes.push({ name: attrName, value });
      if (rawAttributes.length > this.limits.maxAttributes) {
        this.fail('XML_TOO_MANY_NODES', `more than ${this.limits.maxAttributes} attributes on <${name}>`, start);
      }
    }
    const startTagEnd = this.pos;

    // Namespace declarations first (Namespaces in XML 1.0 §3, §5).
    let scope = parentScope;
    const namespaces: XmlNamespaceDeclaration[] = [];
    const plain: { name: string; value: string }[] = [];
    for (const attribute of rawAttributes) {
      const an = attribute.name;
      if (an === 'xmlns' || an.startsWith('xmlns:')) {
        const prefix = an === 'xmlns' ? '' : an.slice(6);
        const uri = attribute.value;
        if (prefix === 'xmlns') this.fail('XML_NAMESPACE_ERROR', 'the xmlns prefix cannot be declared', start);
        if (prefix === 'xml' && uri !== XML_NAMESPACE) this.fail('XML_NAMESPACE_ERROR', 'the xml prefix cannot be rebound', start);
        if (prefix !== 'xml' && uri === XML_NAMESPACE) this.fail('XML_NAMESPACE_ERROR', 'the XML namespace cannot be bound to another prefix', start);
        if (uri === XMLNS_NAMESPACE) this.fail('XML_NAMESPACE_ERROR', 'the xmlns namespace cannot be declared', start);
        if (prefix !== '' && uri === '') this.fail('XML_NAMESPACE_ERROR', `prefix ${prefix} cannot be undeclared in XML 1.0`, start);
        if (prefix.includes(':')) this.fail('XML_NAMESPACE_ERROR', `invalid prefix ${prefix}`, start);
        if (scope === parentScope) scope = new Map(parentScope);
        (scope as Map<string, string>).set(prefix, uri);
        namespaces.push({ prefix, uri });
      } else {
        plain.push(attribute);
      }
    }
    const [prefix, localName] = this.splitQName(name, start);
    const namespaceUri = prefix === '' ? (scope.get('') ?? '') : scope.get(prefix);
    if (namespaceUri === undefined) this.fail('XML_NAMESPACE_ERROR', `prefix ${prefix} of <${name}> is not declared`, start);
    const attributes: XmlAttribute[] = [];
    for (const attribute of plain) {
      const [ap, al] = this.splitQName(attribute.name, start);
      const uri = ap === '' ? '' : scope.get(ap);
      if (uri === undefined) this.fail('XML_NAMESPACE_ERROR', `prefix ${ap} of attribute ${attribute.name} is not declared`, start);
      for (const seen of attributes) {
        if (seen.localName === al && seen.namespaceUri === uri) {
          this.fail('XML_NAMESPACE_ERROR', `attributes ${seen.name} and ${attribute.name} have the same expanded name`, start);
        }
      }
      attributes.push({ name: attribute.name, prefix: ap, localName: al, namespaceUri: uri, value: attribute.value });
    }
    open.push({ name, prefix, localName, rawAttributes });
    return {
      kind: 'element',
      name,
      prefix,
      localName,
      namespaceUri,
      attributes,
      namespaces,
      inScope: scope,
      children: [],
      parent,
      start,
      startTagEnd,
      endTagStart: startTagEnd,
      end: startTagEnd,
      selfClosing,
    };
  }

  private splitQName(name: string, at: number): [string, string] {
    const colon = name.indexOf(':');
    if (colon < 0) return ['', name];
    if (colon === 0 || colon === name.length - 1 || name.indexOf(':', colon + 1) >= 0) {
      this.fail('XML_NAMESPACE_ERROR', `${name} is not a valid qualified name`, at);
    }
    return [name.slice(0, colon), name.slice(colon + 1)];
  }

  private readName(): string {
    const src = this.src;
    const start = this.pos;
    if (!isNameStart(src.charCodeAt(start))) this.fail('XML_MALFORMED', 'expected a name');
    let i = start + 1;
    while (i < src.length && isNameChar(src.charCodeAt(i))) i++;
    this.pos = i;
    return src.slice(start, i);
  }

  private readAttributeValue(): string {
    const src = this.src;
    const quote = src.charCodeAt(this.pos);
    if (quote !== 34 && quote !== 39) this.fail('XML_MALFORMED', 'attribute value must be quoted');
    const start = this.pos + 1;
    const end = src.indexOf(quote === 34 ? '"' : "'", start);
    if (end < 0) this.fail('XML_MALFORMED', 'unterminated attribute value');
    const raw = src.slice(start, end);
    this.pos = end + 1;
    if (!ATTR_SLOW.test(raw)) return raw;
    if (raw.includes('<')) this.fail('XML_MALFORMED', '< is not allowed in an attribute value', start + raw.indexOf('<'));
    this.checkChars(raw, start);
    // XML 1.0 §3.3.3: line ends normalized, then each literal whitespace character becomes a
    // space; characters from references are kept as they are.
    return this.decodeReferences(raw.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' '), start);
  }

  private parseText(parent: XmlElement): void {
    const src = this.src;
    const start = this.pos;
    let end = src.indexOf('<', start);
    if (end < 0) end = src.length;
    let value = src.slice(start, end);
    this.pos = end;
    if (TEXT_SLOW.test(value)) {
      if (value.includes(']]>')) this.fail('XML_MALFORMED', ']]> is not allowed in text', start + value.indexOf(']]>'));
      this.checkChars(value, start);
      value = this.decodeReferences(value.replace(/\r\n?/g, '\n'), start);
    }
    this.appendText(parent, value);
  }

  private parseCdata(parent: XmlElement): void {
    const start = this.pos + 9;
    const end = this.src.indexOf(']]>', start);
    if (end < 0) this.fail('XML_MALFORMED', 'unterminated CDATA section');
    const raw = this.src.slice(start, end);
    this.checkChars(raw, start);
    this.pos = end + 3;
    this.appendText(parent, raw.replace(/\r\n?/g, '\n'));
  }

  private appendText(parent: XmlElement, value: string): void {
    if (value === '') return;
    const last = parent.children[parent.children.length - 1];
    if (last !== undefined && last.kind === 'text') {
      last.value += value;
      return;
    }
    this.countNode();
    const text: XmlText = { kind: 'text', value, parent };
    parent.children.push(text);
  }

  private parseComment(parent: XmlElement | null): XmlComment {
    const start = this.pos + 4;
    const end = this.src.indexOf('--', start);
    if (end < 0) this.fail('XML_MALFORMED', 'unterminated comment');
    if (this.src.charCodeAt(end + 2) !== 62) this.fail('XML_MALFORMED', '-- is not allowed inside a comment', end);
    const raw = this.src.slice(start, end);
    this.checkChars(raw, start);
    this.pos = end + 3;
    this.countNode();
    return { kind: 'comment', value: raw.replace(/\r\n?/g, '\n'), parent };
  }

  private parsePi(parent: XmlElement | null): XmlProcessingInstruction {
    const at = this.pos;
    this.pos += 2;
    const target = this.readName();
    if (target.toLowerCase() === 'xml') this.fail('XML_MALFORMED', 'the XML declaration is only allowed at the very start', at);
    if (target.includes(':')) this.fail('XML_NAMESPACE_ERROR', `processing instruction target ${target} contains a colon`, at);
    const end = this.src.indexOf('?>', this.pos);
    if (end < 0) this.fail('XML_MALFORMED', 'unterminated processing instruction', at);
    let data = '';
    if (end > this.pos) {
      if (!isSpace(this.src.charCodeAt(this.pos))) this.fail('XML_MALFORMED', 'expected whitespace after processing instruction target', at);
      this.skipSpace();
      data = this.src.slice(Math.min(this.pos, end), end);
      this.checkChars(data, this.pos);
    }
    this.pos = end + 2;
    this.countNode();
    return { kind: 'pi', target, data: data.replace(/\r\n?/g, '\n'), parent };
  }

  private decodeReferences(value: string, at: number): string {
    if (!value.includes('&')) return value;
    return value.replace(/&([^;&]*);?/g, (match, body: string) => {
      if (!match.endsWith(';')) this.fail('XML_MALFORMED', 'unterminated reference', at);
      switch (body) {
        case 'lt':
          return '<';
        case 'gt':
          return '>';
        case 'amp':
          return '&';
        case 'quot':
          return '"';
        case 'apos':
          return "'";
        default:
          break;
      }
      let code: number;
      if (/^#[0-9]+$/.test(body)) code = Number.parseInt(body.slice(1), 10);
      else if (/^#x[0-9a-fA-F]+$/.test(body)) code = Number.parseInt(body.slice(2), 16);
      else if (/^[A-Za-z_:][\w.:-]*$/.test(body)) {
        this.fail('XML_ENTITY_FORBIDDEN', `entity reference &${body}; is not accepted (only the five predefined entities)`, at);
      } else this.fail('XML_MALFORMED', `invalid reference &${body};`, at);
      const valid =
        code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
      if (!valid) this.fail('XML_MALFORMED', `character reference &${body}; is not a legal XML character`, at);
      return String.fromCodePoint(code);
    });
  }

  private checkChars(value: string, at: number): void {
    const bad = INVALID_CHAR.exec(value);
    if (bad !== null) this.fail('XML_MALFORMED', `character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} is not allowed in XML`, at + bad.index);
  }

  private skipSpace(): boolean {
    const src = this.src;
    const start = this.pos;
    while (this.pos < src.length && isSpace(src.charCodeAt(this.pos))) this.pos++;
    return this.pos > start;
  }

  private countNode(): void {
    if (++this.nodes > this.limits.maxNodes) this.fail('XML_TOO_MANY_NODES', `more than ${this.limits.maxNodes} nodes`);
  }

  private fail(code: XmlErrorCode, message: string, at: number = this.pos): never {
    throw new XmlParseError(code, message, positionOf(this.src, at));
  }
}

/** The 1-based line and column of an offset in `source`. */
export function positionOf(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const limit = Math.min(offset, source.length);
  for (let i = source.indexOf('\n'); i >= 0 && i < limit; i = source.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: limit - lineStart + 1 };
}

/** Whether a text node holds only XML whitespace. */
export function isWhitespaceText(node: XmlNode): boolean {
  return node.kind === 'text' && WHITESPACE_ONLY.test(node.value);
}
