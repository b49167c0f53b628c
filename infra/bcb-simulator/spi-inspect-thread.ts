/**
 * Entry point of a SPI inspection thread (see {@link ThreadedSpiInspector}): keeps its own copy
 * of the participants' signing certificates and answers each inspection request in order. It
 * does not check the XSD: that is done on the main thread, so that no inspection thread loads
 * libxml2's WebAssembly (see `shared/iso20022/xsd-validation.ts`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TrustStore } from '../../shared/xmldsig/index.ts';
import { inspectSpiMessage } from './spi-inspection.ts';
import type { InspectAnswer, InspectRequest, InspectThreadData, TrustedSigner } from './spi-inspector.ts';

const trustStore = new TrustStore();

function trust(signer: TrustedSigner): void {
  trustStore.add(typeof signer.certificate === 'string' ? signer.certificate : Buffer.from(signer.certificate), { ispb: signer.ispb });
}

const { signers } = workerData as InspectThreadData;
for (const signer of signers) trust(signer);

parentPort?.on('message', (request: InspectRequest) => {
  if (request.kind === 'trust') {
    trust(request);
    return;
  }
  let answer: InspectAnswer;
  try {
    answer = { id: request.id, inspection: inspectSpiMessage(request.xml, trustStore, { schemaValidation: false }) };
  } catch (error) {
    answer = { id: request.id, error: { message: error instanceof Error ? error.message : String(error), stack: error instanceof Error ? error.stack : undefined } };
  }
  parentPort?.postMessage(answer);
});
