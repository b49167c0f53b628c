import type { EnvReader } from './env-reader.ts';

/** How selo checks the revocation of the BCB's certificates, read by {@link readRevocationConfig}. */
export interface RevocationConfig {
  /**
   * `SELO_REVOCATION`: `off` (validity dates only), `require` (fail closed: a revoked certificate,
   * or one whose status is unknown because its CRL is missing or past `nextUpdate`, is refused) or
   * `warn` (a revoked certificate is refused; a missing or expired CRL is logged and accepted).
   * @defaultValue `require` when `SELO_BCB_CRL_FILES` is set, `off` otherwise
   */
  policy: 'off' | 'require' | 'warn';
  /** `SELO_BCB_CRL_FILES`: comma-separated CRL files (DER, or PEM with one or more `X509 CRL` blocks). */
  crlFiles: string[];
  /**
   * `SELO_BCB_CRL_ISSUERS`: PEM file (or the PEM itself) with the CA certificates that issue the
   * CRLs and the BCB's certificates (the ICP-Brasil chain, root included). Components that connect
   * to the BCB also use the certificates of `SELO_BCB_CA`.
   */
  issuersPath: string | undefined;
}

/**
 * Reads `SELO_REVOCATION`, `SELO_BCB_CRL_FILES` and `SELO_BCB_CRL_ISSUERS` into `reader`.
 * `require` or `warn` without CRL files is a problem; so is a list with an empty entry.
 *
 * @param options.issuersFallback - the variable that supplies CA certificates when
 *   `SELO_BCB_CRL_ISSUERS` is unset (`SELO_BCB_CA` for TLS); without one the variable is
 *   required whenever revocation is on.
 */
export function readRevocationConfig(reader: EnvReader, options: { issuersFallback?: string } = {}): RevocationConfig {
  const list = reader.optionalString('SELO_BCB_CRL_FILES');
  const crlFiles = list === undefined ? [] : list.split(',').map((file) => file.trim());
  if (crlFiles.some((file) => file === '')) reader.problem('SELO_BCB_CRL_FILES', `must be a comma-separated list of files without empty entries, got ${JSON.stringify(list)}`);
  const policy = reader.oneOf('SELO_REVOCATION', ['off', 'require', 'warn'] as const, { default: crlFiles.length > 0 ? 'require' : 'off' });
  if (policy !== 'off' && crlFiles.length === 0) reader.problem('SELO_BCB_CRL_FILES', `is required when SELO_REVOCATION is ${policy} (the cached CRL files)`);
  const issuersPath = reader.optionalString('SELO_BCB_CRL_ISSUERS');
  if (policy !== 'off' && issuersPath === undefined && options.issuersFallback === undefined) {
    reader.problem('SELO_BCB_CRL_ISSUERS', `is required when SELO_REVOCATION is ${policy} (PEM file of the CA certificates that sign the CRLs)`);
  }
  return { policy, crlFiles: crlFiles.filter((file) => file !== ''), issuersPath };
}
