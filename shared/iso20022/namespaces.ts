/** Message definitions selo writes (SPI catalogue 5.13.1) and the namespace of each. */
export const SPI_MESSAGES = {
  'pacs.008': { msgDefIdr: 'pacs.008.spi.1.16', namespace: 'https://www.bcb.gov.br/pi/pacs.008/1.16' },
  'pacs.002': { msgDefIdr: 'pacs.002.spi.1.17', namespace: 'https://www.bcb.gov.br/pi/pacs.002/1.17' },
} as const;

/** Which SPI message a namespace belongs to; older catalogue versions are accepted on input. */
export function messageOfNamespace(namespace: string): { message: string; version: string } | undefined {
  const match = /^https:\/\/www\.bcb\.gov\.br\/pi\/([a-z]{4}\.[0-9]{3})\/([0-9]+\.[0-9]+)$/.exec(namespace);
  return match === null ? undefined : { message: match[1] ?? '', version: match[2] ?? '' };
}
