import type { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { PermanentError, TransientError } from '../errors/index.ts';
import { CrlFormatError, parseCrls, verifyCrlSignature } from './crl.ts';
import type { CertificateRevocationList } from './crl.ts';
import { certificateNames, formatRdnSequence, namesEqual } from './name.ts';
import { toPem } from './certificate.ts';

/** Options of {@link refreshCrlFile}. */
export interface CrlRefreshOptions {
  /** Where the CA publishes the CRL (a certificate's `cRLDistributionPoints`), http or https. */
  url: string;
  /** The cached file to replace (written as PEM). */
  out: string;
  /** CA certificates; the downloaded CRL must be signed by one of them. */
  issuers: readonly X509Certificate[];
  /** Largest CRL accepted, bytes (ICP-Brasil CAs publish CRLs of a few MB). @defaultValue 64 MiB */
  maxBytes?: number;
  /** Time allowed for the whole download, ms. @defaultValue 60000 */
  timeoutMs?: number;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** What {@link refreshCrlFile} did. */
export interface CrlRefreshResult {
  /** `replaced`: the file now holds the downloaded CRL; `unchanged`: the file already held this CRL or a newer one. */
  outcome: 'replaced' | 'unchanged';
  issuer: string;
  thisUpdate: string;
  nextUpdate: string;
  crlNumber: string | undefined;
  revoked: number;
}

/**
 * The CRL could not be fetched (`CRL_FETCH_FAILED`, transient: try again at the next run) or is
 * not acceptable (`CRL_REFRESH_REFUSED`, permanent: wrong signer, expired, older than the cached
 * one, not a CRL). Either way the cached file is left as it was.
 */
export class CrlRefreshError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CRL_REFRESH_REFUSED', message, options);
  }
}

/** The download failed (network, HTTP status, size): transient, the cached file is untouched. */
export class CrlFetchError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CRL_FETCH_FAILED', message, options);
  }
}

async function download(url: URL, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (error) {
    throw new CrlFetchError(`GET ${url.href} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (response.status !== 200 || response.body === null) {
    await response.body?.cancel();
    throw new CrlFetchError(`GET ${url.href} answered ${response.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes) {
        await response.body.cancel();
        throw new CrlFetchError(`GET ${url.href}: the CRL exceeds ${maxBytes} bytes`);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    if (error instanceof CrlFetchError) throw error;
    throw new CrlFetchError(`GET ${url.href}: the body could not be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return Buffer.concat(chunks);
}

function summary(crl: CertificateRevocationList, outcome: CrlRefreshResult['outcome']): CrlRefreshResult {
  return {
    outcome,
    issuer: formatRdnSequence(crl.issuer),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate.toISOString(),
    crlNumber: crl.crlNumber?.toString(10),
    revoked: crl.revoked.size,
  };
}

/**
 * Downloads a CRL from its distribution point and replaces the cached file with it, what a
 * scheduled job (cron, a sidecar) runs so the workers' CRL files stay fresh: the CRL must parse,
 * be signed by one of `issuers`, not be past its `nextUpdate`, and be newer than the cached one
 * of the same issuer (by `cRLNumber`, else `thisUpdate`: an attacker replaying an old CRL cannot
 * un-revoke a certificate). The file is written aside and renamed, so a worker never reads half
 * of it; the workers reload it on its next modification time.
 *
 * @throws {@link CrlFetchError} when the download fails; {@link CrlRefreshError} when the CRL is refused.
 */
export async function refreshCrlFile(options: CrlRefreshOptions): Promise<CrlRefreshResult> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new RangeError(`CrlRefreshOptions.url must be an http(s) URL, got ${JSON.stringify(options.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`CrlRefreshOptions.url must be an http(s) URL, got ${JSON.stringify(options.url)}`);
  if (options.issuers.length === 0) throw new RangeError('CrlRefreshOptions.issuers must hold at least one CA certificate, got []');
  const now = (options.now ?? (() => new Date()))();
  const bytes = await download(url, options.maxBytes ?? 64 * 1024 * 1024, options.timeoutMs ?? 60_000);
  let crls: CertificateRevocationList[];
  try {
    crls = parseCrls(bytes);
  } catch (error) {
    throw new CrlRefreshError(`${url.href} did not answer a usable CRL: ${error instanceof CrlFormatError ? error.message : String(error)}`, { cause: error });
  }
  const [crl, extra] = crls;
  if (crl === undefined || extra !== undefined) throw new CrlRefreshError(`${url.href} answered ${crls.length} CRLs; a distribution point serves one`);
  const issuer = options.issuers.find((c) => namesEqual(certificateNames(c).subject, crl.issuer) && verifyCrlSignature(crl, c.publicKey));
  if (issuer === undefined) throw new CrlRefreshError(`the CRL from ${url.href} (${formatRdnSequence(crl.issuer)}) is signed by none of the configured CA certificates`);
  if (crl.nextUpdate.getTime() < now.getTime()) throw new CrlRefreshError(`the CRL from ${url.href} expired at ${crl.nextUpdate.toISOString()}: the CA has not published a newer one there`);
  if (existsSync(options.out)) {
    let cached: CertificateRevocationList[] = [];
    try {
      cached = parseCrls(readFileSync(options.out));
    } catch {
      // An unreadable cached file is replaced by a good CRL.
    }
    const previous = cached.find((c) => namesEqual(c.issuer, crl.issuer));
    if (previous !== undefined) {
      const older = previous.crlNumber !== undefined && crl.crlNumber !== undefined ? crl.crlNumber < previous.crlNumber : crl.thisUpdate < previous.thisUpdate;
      if (older) throw new CrlRefreshError(`the CRL from ${url.href} is older than the cached one (thisUpdate ${crl.thisUpdate.toISOString()} < ${previous.thisUpdate.toISOString()}): not replaced`);
      if (previous.der.equals(crl.der)) return summary(crl, 'unchanged');
    }
  }
  writeFileSync(`${options.out}.tmp`, toPem('X509 CRL', crl.der), { mode: 0o644 });
  renameSync(`${options.out}.tmp`, options.out);
  return summary(crl, 'replaced');
}
