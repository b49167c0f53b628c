import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { SchemaValidationError, checkSpiSchema, compileSpiSchemas, generateEndToEndId, spiSchemaOfNamespace } from '../../../shared/iso20022/index.ts';
import { verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SimulatorTestPki, StreamedMessage, TestParticipants } from './simulator-fixture.ts';
import {
  ISPB_A, ISPB_B, createSimulatorTestPki, describe as describeMessage, drainStream, postMessages, signedPacs004, signedPacs008, startTestSimulator, testParticipants,
} from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let parties: TestParticipants;

beforeAll(async () => {
  await compileSpiSchemas();
  pki = await createSimulatorTestPki();
  // A short settlement limit, so that the AB03 timeouts come within the test.
  sim = await startTestSimulator(pki, { participants: [], settlementLimitMs: 3_000, inspectionThreads: 0 });
  sim.participants.addSigningCertificate(ISPB_A, pki.signingA.certPem);
  sim.participants.addSigningCertificate(ISPB_B, pki.signingB.certPem);
  parties = testParticipants(pki);
});

afterAll(async () => {
  await parties.close();
  await sim.close();
});

/** A pays B; the simulated B answers as its behaviour says; the payment's decision. */
async function payFromA(options: { endToEndId?: string } = {}): Promise<string> {
  const { xml, endToEndId } = await signedPacs008(parties.keyA, options);
  expect((await postMessages(parties.agentA, sim, ISPB_A, xml)).status).toBe(201);
  return endToEndId;
}

/** B returns `amount` of `originalEndToEndId` to A. */
async function returnFromB(originalEndToEndId: string, amount: string): Promise<string> {
  const { xml, returnId } = await signedPacs004(parties.keyB, { originalEndToEndId, amount });
  expect((await postMessages(parties.agentB, sim, ISPB_B, xml)).status).toBe(201);
  return returnId;
}

describe('what the BCB simulator sends conforms to the official XSDs', () => {
  it('every pacs.002 and forwarded pacs.008 and pacs.004 on the streams — settlement, refusals with long texts, duplicates, timeouts, returns — validates against pacs.002.spi.1.17.xsd / pacs.008.spi.1.16.xsd / pacs.004.spi.1.5.xsd', async () => {
    sim.participants.setReceiver(ISPB_A, { mode: 'accept' });
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
    const settled = await payFromA();
    expect(await sim.ledger.waitForDecision(settled)).toMatchObject({ status: 'settled' });

    // A refusal whose text is longer than one AddtlInf (Max105Text).
    const longText = `Conta destino encerrada em ${new Date().toISOString()}; o recebedor pede que o pagador confirme os dados da chave e tente de novo mais tarde.`;
    expect(longText.length).toBeGreaterThan(105);
    sim.participants.setReceiver(ISPB_B, { mode: 'reject', reasonCode: 'AC03', additionalInformation: longText });
    const refused = await payFromA();
    expect(await sim.ledger.waitForDecision(refused)).toMatchObject({ status: 'rejected', reasonCode: 'AC03' });

    // The same EndToEndId under a new BizMsgIdr: RJCT DU03 to the payer.
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
    await payFromA({ endToEndId: settled });

    // Nobody answers: AB03 to both once the settlement limit passes.
    sim.participants.setReceiver(ISPB_B, { mode: 'never' });
    const unanswered = await payFromA();
    expect(await sim.ledger.waitForDecision(unanswered, 10_000)).toMatchObject({ status: 'rejected', reasonCode: 'AB03' });

    // Returns: one the original payer accepts, one of an unknown payment, one over the amount left.
    const returned = await returnFromB(settled, '4.00');
    await sim.ledger.waitForDecision(returned, 10_000);
    await returnFromB(generateEndToEndId(ISPB_A), '1.00');
    await returnFromB(settled, '7.00');
    await sim.idle();

    const streamed: StreamedMessage[] = [...(await drainStream(parties.agentA, sim, ISPB_A)), ...(await drainStream(parties.agentB, sim, ISPB_B))];
    const checked: string[] = [];
    const violations: string[] = [];
    for (const { xml } of streamed) {
      const verified = verifySpi(xml, { trustStore: parties.bcbTrust });
      const schema = spiSchemaOfNamespace(verified.document.namespaceUri);
      const { type, status, reason } = describeMessage(xml);
      const what = type === 'pacs.002' ? [type, status, reason].filter((part) => part !== undefined).join(' ') : type;
      if (schema === undefined) continue; // admi.002, pibr: the repository has no official XSD of these (xsd/SOURCES.md)
      try {
        checkSpiSchema(xml, schema);
        checked.push(what);
      } catch (error) {
        if (!(error instanceof SchemaValidationError)) throw error;
        violations.push(`${what}: ${error.message}`);
      }
    }
    expect(violations).toEqual([]);
    expect(new Set(checked)).toEqual(new Set([
      'pacs.008', 'pacs.004', 'pacs.002 ACSC', 'pacs.002 ACCC', 'pacs.002 RJCT AC03', 'pacs.002 RJCT DU03', 'pacs.002 RJCT AB03', 'pacs.002 RJCT CH16', 'pacs.002 RJCT AM09',
    ]));
  });
});
