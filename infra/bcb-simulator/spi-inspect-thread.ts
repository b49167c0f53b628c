/**
 * Entry point of a SPI inspection thread (see {@link ThreadedSpiInspector}): keeps its own copy
 * of the participants' signing certificates and answers each inspection request in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileSpiSchemas } from '../../shared/iso20022/index.ts';
import { TrustStore } from '../../shared/xmldsig/index.ts';
import { inspectSpiMessage } from './spi-inspection.ts';
import type { InspectAnswer, InspectRequest, InspectThreadData, TrustedSigner } from './spi-inspector.ts';

const trustStore = new TrustStore();

function trust(signer: TrustedSigner): void {
  trustStore.add(typeof signer.certificate === 'string' ? signer.certificate : Buffer.from(signer.certificate), { ispb: signer.ispb });
}

const { signers, settings } = workerData as InspectThreadData;
for (const signer of signers) trust(signer);
// Before the first message, which would otherwise wait for it.
if (settings.schemaValidation) compileSpiSchemas();

parentPort?.on('message', (request: InspectRequest) => {
  if (request.kind === 'trust') {
    trust(request);
    return;
  }
  let answer: InspectAnswer;
  try {
    answer = { id: request.id, inspection: inspectSpiMessage(request.xml, trustStore, settings) };
  } catch (error) {
    answer = { id: request.id, error: { message: error instanceof Error ? error.message : String(error), stack: error instanceof Error ? error.stack : undefined } };
  }
  parentPort?.postMessage(answer);
});
