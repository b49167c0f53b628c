import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificateIspb, parseCertificate } from '../../shared/pki/index.ts';
import { pemSigningKey } from '../../shared/xmldsig/index.ts';
import { DEV_PKI_FILES } from '../softhsm/index.ts';
import { validateReceiver } from './simulator-options.ts';
import type { BcbSimulatorOptions, ParticipantOptions, ReceiverBehaviour } from './simulator-options.ts';

/** The parts of {@link BcbSimulatorOptions} that come from a PKI folder. */
export type SimulatorPki = Pick<BcbSimulatorOptions, 'tlsKey' | 'tlsCertificate' | 'clientCa' | 'signingKey' | 'bcbIspb'> & {
  readonly participants: ParticipantOptions[];
};

/** Options of {@link loadSimulatorPki}. */
export interface SimulatorPkiOptions {
  /**
   * How the simulator answers pacs.008 addressed to the PSP (selo's own ISPB, from its
   * certificate). `live` by default: selo itself must answer with its pacs.002, as at the BCB;
   * `accept` would answer ACSP on selo's behalf and hide a receiving side that does not answer.
   * @defaultValue `{ mode: 'live' }`
   */
  readonly pspReceiver?: ReceiverBehaviour;
}

/**
 * Reads the folder `selo pki init --dir` wrote: the BCB TLS server and signing keys, the test CA
 * as the client CA, and the PSP's signing certificate, trusted for the ISPB in its subject; the
 * PSP is a participant answering as {@link SimulatorPkiOptions.pspReceiver} says.
 */
export function loadSimulatorPki(dir: string, options: SimulatorPkiOptions = {}): SimulatorPki {
  const pspReceiver = validateReceiver('SimulatorPkiOptions.pspReceiver', options.pspReceiver ?? { mode: 'live' });
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  const bcbSigningCertificate = read(DEV_PKI_FILES.bcbSigningCertificate);
  const pspSigningCertificate = read(DEV_PKI_FILES.pspSigningCertificate);
  const pspIspb = certificateIspb(parseCertificate(pspSigningCertificate));
  if (pspIspb === undefined) throw new RangeError(`${join(dir, DEV_PKI_FILES.pspSigningCertificate)} carries no ISPB in its subject serialNumber`);
  const bcbIspb = certificateIspb(parseCertificate(bcbSigningCertificate));
  return {
    tlsKey: read(DEV_PKI_FILES.bcbTlsServerKey),
    tlsCertificate: read(DEV_PKI_FILES.bcbTlsServerCertificate),
    clientCa: read(DEV_PKI_FILES.caCertificate),
    signingKey: pemSigningKey(read(DEV_PKI_FILES.bcbSigningKey), bcbSigningCertificate),
    ...(bcbIspb === undefined ? {} : { bcbIspb }),
    participants: [{ ispb: pspIspb, signingCertificates: [pspSigningCertificate], receiver: pspReceiver }],
  };
}
