/**
 * Message definitions selo writes (SPI catalogue 5.13.1) and the namespace of each.
 *
 * pacs.008 1.16 and pacs.002 1.17 come with their XSDs (`xsd/`). pacs.004 1.5 is the
 * version the catalogue 5.13.1 README names, but its XSD was not copied; pibr.001 1.3,
 * pibr.002 1.3 and admi.002 1.5 are the versions public SPI client projects targeting the 5.13
 * catalogue use — none of these four has an official schema in the project (where they were
 * looked for: `xsd/SOURCES.md`).
 */
export const SPI_MESSAGES = {
  'pacs.008': { msgDefIdr: 'pacs.008.spi.1.16', namespace: 'https://www.bcb.gov.br/pi/pacs.008/1.16' },
  'pacs.002': { msgDefIdr: 'pacs.002.spi.1.17', namespace: 'https://www.bcb.gov.br/pi/pacs.002/1.17' },
  'pacs.004': { msgDefIdr: 'pacs.004.spi.1.5', namespace: 'https://www.bcb.gov.br/pi/pacs.004/1.5' },
  'pibr.001': { msgDefIdr: 'pibr.001.spi.1.3', namespace: 'https://www.bcb.gov.br/pi/pibr.001/1.3' },
  'pibr.002': { msgDefIdr: 'pibr.002.spi.1.3', namespace: 'https://www.bcb.gov.br/pi/pibr.002/1.3' },
  'admi.002': { msgDefIdr: 'admi.002.spi.1.5', namespace: 'https://www.bcb.gov.br/pi/admi.002/1.5' },
} as const;

/** A SPI message type selo builds and parses. */
export type SpiMessageType = keyof typeof SPI_MESSAGES;

/** Which SPI message a namespace belongs to; older catalogue versions are accepted on input. */
export function messageOfNamespace(namespace: string): { message: string; version: string } | undefined {
  const match = /^https:\/\/www\.bcb\.gov\.br\/pi\/([a-z]{4}\.[0-9]{3})\/([0-9]+\.[0-9]+)$/.exec(namespace);
  return match === null ? undefined : { message: match[1] ?? '', version: match[2] ?? '' };
}
