import { PermanentError } from '../errors/index.ts';

/**
 * Why an XML input was refused by {@link parseXml}. Stable, UPPER_SNAKE; callers branch on it.
 *
 * - `XML_TOO_LARGE`: the input exceeds `maxBytes`.
 * - `XML_TOO_DEEP`: elements are nested deeper than `maxDepth`.
 * - `XML_TOO_MANY_NODES`: more nodes than `maxNodes`, or more attributes on one element than `maxAttributes`.
 * - `XML_DTD_FORBIDDEN`: a `<!DOCTYPE …>` (DTDs enable XXE and entity-expansion attacks).
 * - `XML_ENTITY_FORBIDDEN`: a reference to an entity other than the five predefined ones.
 * - `XML_ENCODING_UNSUPPORTED`: not UTF-8 (declared or actual).
 * - `XML_NAMESPACE_ERROR`: an unbound prefix, an illegal namespace declaration, duplicate expanded names.
 * - `XML_MALFORMED`: anything else that is not well-formed XML 1.0.
 */
export type XmlErrorCode =
  | 'XML_TOO_LARGE'
  | 'XML_TOO_DEEP'
  | 'XML_TOO_MANY_NODES'
  | 'XML_DTD_FORBIDDEN'
  | 'XML_ENTITY_FORBIDDEN'
  | 'XML_ENCODING_UNSUPPORTED'
  | 'XML_NAMESPACE_ERROR'
  | 'XML_MALFORMED';

/**
 * An XML input that selo refuses to process. Permanent: the same bytes will fail again.
 * `details` carries `line` and `column` (1-based) when the failure has a position.
 */
export class XmlParseError extends PermanentError {
  /** The reason, one of {@link XmlErrorCode}. */
  declare readonly code: XmlErrorCode;
  /** 1-based line of the failure, when known. */
  readonly line: number | undefined;
  /** 1-based column of the failure, when known. */
  readonly column: number | undefined;

  constructor(code: XmlErrorCode, message: string, position?: { line: number; column: number }) {
    super(code, position === undefined ? message : `${message} (line ${position.line}, column ${position.column})`, {
      details: position === undefined ? {} : { line: position.line, column: position.column },
    });
    this.line = position?.line;
    this.column = position?.column;
  }
}
