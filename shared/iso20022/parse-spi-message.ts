import { PermanentError } from '../errors/index.ts';
import { elementPath } from '../xml/index.ts';
import { parseAdmi002 } from './admi-002.ts';
import type { Admi002 } from './admi-002.ts';
import { messageOfNamespace } from './namespaces.ts';
import { parsePacs002 } from './pacs-002.ts';
import type { Pacs002 } from './pacs-002.ts';
import { parsePacs004 } from './pacs-004.ts';
import type { Pacs004 } from './pacs-004.ts';
import { parsePacs008 } from './pacs-008.ts';
import type { Pacs008 } from './pacs-008.ts';
import { parsePibr001 } from './pibr-001.ts';
import type { Pibr001 } from './pibr-001.ts';
import { parsePibr002 } from './pibr-002.ts';
import type { Pibr002 } from './pibr-002.ts';
import { spiMessageParts } from './spi-message.ts';
import type { SpiMessageInput } from './spi-message.ts';

/**
 * A verified SPI message of a type selo does not handle (camt.*, admi.004, reda.*, …): not an
 * invalid message, so never a security alert; operations get it with its bytes (issue 14).
 */
export class UnsupportedSpiMessageError extends PermanentError {
  /** The message identifier (`camt.060`) or, when the namespace is not a SPI one, the namespace. */
  readonly messageType: string;
  constructor(messageType: string, message: string) {
    super('SPI_MESSAGE_UNSUPPORTED', message);
    this.messageType = messageType;
  }
}

/**
 * A parsed SPI message, discriminated by `type` (the message identifier, e.g. `pacs.008`);
 * `version` is the namespace version it arrived in (e.g. `1.16`).
 */
export type SpiMessage =
  | { readonly type: 'pacs.008'; readonly version: string; readonly message: Pacs008 }
  | { readonly type: 'pacs.002'; readonly version: string; readonly message: Pacs002 }
  | { readonly type: 'pacs.004'; readonly version: string; readonly message: Pacs004 }
  | { readonly type: 'pibr.001'; readonly version: string; readonly message: Pibr001 }
  | { readonly type: 'pibr.002'; readonly version: string; readonly message: Pibr002 }
  | { readonly type: 'admi.002'; readonly version: string; readonly message: Admi002 };

/**
 * Reads any SPI message selo handles, choosing the parser by the `Document` namespace
 * (`https://www.bcb.gov.br/pi/<type>/<version>`). Give it what `verifySpi` returns so that what is
 * processed is exactly what was verified.
 *
 * @throws {@link UnsupportedSpiMessageError} for a message type selo does not handle (or a
 * namespace that is not a SPI one), or a `MessageFormatError` for whatever the
 * message's parser rejects (naming the path).
 */
export function parseSpiMessage(input: SpiMessageInput): SpiMessage {
  const parts = spiMessageParts(input);
  const kind = messageOfNamespace(parts.document.namespaceUri);
  if (kind === undefined) throw new UnsupportedSpiMessageError(parts.document.namespaceUri.slice(0, 200), `${elementPath(parts.document)}: namespace ${JSON.stringify(parts.document.namespaceUri)} is not a SPI message namespace`);
  const { version } = kind;
  switch (kind.message) {
    case 'pacs.008':
      return { type: 'pacs.008', version, message: parsePacs008(parts) };
    case 'pacs.002':
      return { type: 'pacs.002', version, message: parsePacs002(parts) };
    case 'pacs.004':
      return { type: 'pacs.004', version, message: parsePacs004(parts) };
    case 'pibr.001':
      return { type: 'pibr.001', version, message: parsePibr001(parts) };
    case 'pibr.002':
      return { type: 'pibr.002', version, message: parsePibr002(parts) };
    case 'admi.002':
      return { type: 'admi.002', version, message: parseAdmi002(parts) };
    default:
      throw new UnsupportedSpiMessageError(kind.message, `${kind.message} (version ${version}) is not a message selo handles`);
  }
}
