import type { RevocationChecker } from '../pki/index.ts';
import { TrustStore } from '../xmldsig/index.ts';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The BCB trust store: every certificate in `pem` (one or more PEM blocks, e.g. the current and
 * the next BCB signing certificate during a rotation), each bound to the BCB's ISPB so that an SPI
 * message signed with it must carry `AppHdr/Fr` = `bcbIspb`. With `revocation`, a signer listed in
 * its issuer's CRL is refused (`CERTIFICATE_REVOKED`).
 *
 * @throws RangeError when `pem` holds no certificate or one that cannot be read.
 */
export function bcbTrustStore(pem: string, bcbIspb: string, revocation?: RevocationChecker): TrustStore {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new RangeError('the BCB trust store PEM holds no certificate');
  const store = new TrustStore(revocation === undefined ? {} : { revocation });
  for (const [i, block] of blocks.entries()) {
    try {
      store.add(block, { ispb: bcbIspb });
    } catch (error) {
      throw new RangeError(`certificate ${i + 1} of the BCB trust store cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  return store;
}
