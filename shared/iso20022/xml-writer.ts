import { escapeXmlAttribute, escapeXmlText } from '../xml/index.ts';

/** An element to write: name, optional attributes, and text or children (`undefined` children are skipped). */
export interface XmlElementSpec {
  readonly name: string;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly text?: string;
  readonly children?: readonly (XmlElementSpec | undefined)[];
}

/** Shorthand for an {@link XmlElementSpec}: text when `content` is a string, children when an array. */
export function el(name: string, content?: string | readonly (XmlElementSpec | undefined)[], attributes?: Readonly<Record<string, string>>): XmlElementSpec {
  if (typeof content === 'string') return { name, text: content, ...(attributes === undefined ? {} : { attributes }) };
  return { name, children: content ?? [], ...(attributes === undefined ? {} : { attributes }) };
}

function write(spec: XmlElementSpec, indent: string, out: string[]): void {
  const attributes = Object.entries(spec.attributes ?? {})
    .map(([k, v]) => ` ${k}="${escapeXmlAttribute(v)}"`)
    .join('');
  if (spec.text !== undefined) {
    out.push(`${indent}<${spec.name}${attributes}>${escapeXmlText(spec.text)}</${spec.name}>`);
    return;
  }
  const children = (spec.children ?? []).filter((c): c is XmlElementSpec => c !== undefined);
  if (children.length === 0) {
    out.push(`${indent}<${spec.name}${attributes}/>`);
    return;
  }
  out.push(`${indent}<${spec.name}${attributes}>`);
  for (const child of children) write(child, `${indent}    `, out);
  out.push(`${indent}</${spec.name}>`);
}

/** Writes a document (UTF-8 declaration, four-space indentation, one element per line, as the BCB examples). */
export function writeXml(root: XmlElementSpec): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  write(root, '', out);
  return out.join('\n');
}
