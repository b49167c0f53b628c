export { parseXml, positionOf, isWhitespaceText } from './parse-xml.ts';
export type { XmlParseOptions } from './parse-xml.ts';
export { XmlParseError } from './xml-error.ts';
export type { XmlErrorCode } from './xml-error.ts';
export {
  XML_NAMESPACE,
  XMLNS_NAMESPACE,
  getAttribute,
  hasAttribute,
  childElements,
  childElementsNamed,
  firstChildElement,
  descendantElements,
  textContent,
  findPath,
  elementPath,
} from './xml-node.ts';
export type {
  XmlAttribute,
  XmlNamespaceDeclaration,
  XmlText,
  XmlComment,
  XmlProcessingInstruction,
  XmlElement,
  XmlNode,
  XmlDocument,
} from './xml-node.ts';
export { canonicalizeElement, canonicalizeDocument, EXC_C14N, EXC_C14N_WITH_COMMENTS } from './exc-c14n.ts';
export type { ExcC14nOptions } from './exc-c14n.ts';
export { escapeXmlText, escapeXmlAttribute } from './escape.ts';
