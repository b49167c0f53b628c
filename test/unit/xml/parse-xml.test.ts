import { describe, expect, it } from 'vitest';
import { XmlParseError, parseXml } from '../../../shared/xml/index.ts';
import type { XmlErrorCode } from '../../../shared/xml/index.ts';

function codeOf(input: string | Uint8Array, options?: Parameters<typeof parseXml>[1]): XmlErrorCode | 'NONE' {
  try {
    parseXml(input, options);
    return 'NONE';
  } catch (error) {
    if (error instanceof XmlParseError) return error.code;
    throw error;
  }
}

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>`;
const XXE = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`;

describe('parseXml', () => {
  it('rejects a billion-laughs document with XML_DTD_FORBIDDEN', () => {
    expect(codeOf(BILLION_LAUGHS)).toBe('XML_DTD_FORBIDDEN');
  });

  it('rejects an XXE document with XML_DTD_FORBIDDEN', () => {
    expect(codeOf(XXE)).toBe('XML_DTD_FORBIDDEN');
  });

  it('rejects an external DTD reference', () => {
    expect(codeOf('<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>')).toBe('XML_DTD_FORBIDDEN');
  });

  it('rejects an undeclared entity reference with XML_ENTITY_FORBIDDEN', () => {
    expect(codeOf('<a>&xxe;</a>')).toBe('XML_ENTITY_FORBIDDEN');
    expect(codeOf('<a b="&xxe;"/>')).toBe('XML_ENTITY_FORBIDDEN');
  });

  it('rejects an input over maxBytes with XML_TOO_LARGE', () => {
    expect(codeOf(`<a>${'x'.repeat(2000)}</a>`, { maxBytes: 1000 })).toBe('XML_TOO_LARGE');
    expect(codeOf(Buffer.from(`<a>${'x'.repeat(2000)}</a>`), { maxBytes: 1000 })).toBe('XML_TOO_LARGE');
  });

  it('rejects deep nesting with XML_TOO_DEEP', () => {
    const deep = `${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}`;
    expect(codeOf(deep)).toBe('XML_TOO_DEEP');
    expect(codeOf(`${'<a>'.repeat(10)}${'</a>'.repeat(10)}`, { maxDepth: 10 })).toBe('NONE');
    expect(codeOf(`${'<a>'.repeat(11)}${'</a>'.repeat(11)}`, { maxDepth: 10 })).toBe('XML_TOO_DEEP');
  });

  it('rejects too many nodes and too many attributes with XML_TOO_MANY_NODES', () => {
    expect(codeOf(`<a>${'<b/>'.repeat(50)}</a>`, { maxNodes: 20 })).toBe('XML_TOO_MANY_NODES');
    const attrs = Array.from({ length: 70 }, (_, i) => `a${i}="1"`).join(' ');
    expect(codeOf(`<a ${attrs}/>`)).toBe('XML_TOO_MANY_NODES');
  });

  it('rejects non-UTF-8 encodings', () => {
    expect(codeOf('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')).toBe('XML_ENCODING_UNSUPPORTED');
    expect(codeOf(Buffer.from([0x3c, 0x61, 0x3e, 0xe9, 0x3c, 0x2f, 0x61, 0x3e]))).toBe('XML_ENCODING_UNSUPPORTED');
  });

  it('rejects malformed input with XML_MALFORMED and a position', () => {
    for (const bad of ['', '<a>', '<a></b>', '<a b=1/>', '<a b="1" b="2"/>', '<a/><b/>', 'x<a/>', '<a>\u0001</a>', '<a><!-- a -- b --></a>', '<a>]]></a>', '<a>&#0;</a>']) {
      expect(codeOf(bad), bad).toBe('XML_MALFORMED');
    }
    try {
      parseXml('<a>\n  <b></c>\n</a>');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(XmlParseError);
      expect((error as XmlParseError).line).toBe(2);
      expect((error as XmlParseError).message).toMatch(/does not match/);
    }
  });

  it('rejects namespace errors with XML_NAMESPACE_ERROR', () => {
    for (const bad of ['<p:a/>', '<a q:b="1"/>', '<a xmlns:p=""/>', '<a xmlns:xml="urn:x"/>', '<a xmlns:p="urn:x" xmlns:q="urn:x" p:b="1" q:b="2"/>']) {
      expect(codeOf(bad), bad).toBe('XML_NAMESPACE_ERROR');
    }
  });

  it('resolves namespaces, entities, character references and CR LF', () => {
    const document = parseXml('<?xml version="1.0" encoding="UTF-8"?>\r\n<r xmlns="urn:d" xmlns:p="urn:p" p:x="a&amp;b\r\nc">t&lt;\r\n&#x20AC;<![CDATA[<&>]]></r>');
    expect(document.root.namespaceUri).toBe('urn:d');
    expect(document.root.attributes[0]).toMatchObject({ localName: 'x', namespaceUri: 'urn:p', value: 'a&b c' });
    expect(document.root.children).toEqual([expect.objectContaining({ kind: 'text', value: 't<\n€<&>' })]);
  });
});
