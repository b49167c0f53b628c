import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { generateEndToEndId, parseAdmi002, parsePacs002, parsePacs008, validateSpiMessage } from '../../../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import {
  BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, describe as describeMessage, drainStream, mtlsAgent, postMessages, signedPacs008, startTestSimulator,
} from './simulator-fixture.ts';
import type { SimulatorTestPki, StreamedMessage } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
let keyB: SigningKey;
let bcbTrust: TrustStore;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { participants: [] });
  sim.participants.addSigningCertificate(ISPB_A, pki.signingA.certPem);
  sim.participants.addSigningCertificate(ISPB_B, pki.signingB.certPem);
  agentA = mtlsAgent(pki, pki.tlsA);
  agentB = mtlsAgent(pki, pki.tlsB);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
  keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
  bcbTrust = new TrustStore();
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
});

afterAll(async () => {
  await agentA.close();
  await agentB.close();
  await sim.close();
});

/** Drains A's and B's streams, after the simulator processed everything posted. */
async function drainBoth(): Promise<{ a: StreamedMessage[]; b: StreamedMessage[] }> {
  await sim.idle();
  return { a: await drainStream(agentA, sim, ISPB_A), b: await drainStream(agentB, sim, ISPB_B) };
}

describe('BCB simulator SPI flow', () => {
  it('settles a signed pacs.008: signed pacs.002 ACSC to the payer, pacs.008 and ACCC to the receiver', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
    const { xml, endToEndId } = await signedPacs008(keyA);
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
    const payment = await sim.ledger.waitForDecision(endToEndId);
    expect(payment).toMatchObject({ status: 'settled', payerIspb: ISPB_A, receiverIspb: ISPB_B, amount: '10.50' });
    const { a, b } = await drainBoth();
    const toPayer = a.map((m) => verifySpi(m.xml, { trustStore: bcbTrust })).map((v) => parsePacs002({ appHdr: v.appHdr, document: v.document }));
    expect(toPayer).toHaveLength(1);
    expect(toPayer[0]?.appHdr).toMatchObject({ fromIspb: BCB_ISPB, toIspb: ISPB_A });
    expect(toPayer[0]?.statuses[0]).toMatchObject({ originalEndToEndId: endToEndId, status: 'ACSC' });
    expect(b.map((m) => describeMessage(m.xml).type)).toEqual(['pacs.008', 'pacs.002']);
    const forwarded = verifySpi(b[0]?.xml ?? '', { trustStore: bcbTrust });
    expect(parsePacs008({ appHdr: forwarded.appHdr, document: forwarded.document }).transactions[0]?.endToEndId).toBe(endToEndId);
    const credited = verifySpi(b[1]?.xml ?? '', { trustStore: bcbTrust });
    expect(parsePacs002({ appHdr: credited.appHdr, document: credited.document }).statuses[0]).toMatchObject({ originalEndToEndId: endToEndId, status: 'ACCC' });
  });

  it('answers an invalid signature with a signed admi.002 and settles nothing', async () => {
    const { xml, endToEndId, bizMsgIdr } = await signedPacs008(keyA);
    const tampered = xml.replace('<Amt>', '<Amt>').replace('>10.50<', '>99.50<');
    expect((await postMessages(agentA, sim, ISPB_A, tampered)).status).toBe(201);
    const { a } = await drainBoth();
    const verified = verifySpi(a[0]?.xml ?? '', { trustStore: bcbTrust });
    const admi = parseAdmi002({ appHdr: verified.appHdr, document: verified.document });
    expect(admi.rejectedBizMsgIdr).toBe(bizMsgIdr);
    expect(admi.reason.code).toBe('XMLDSIG_DIGEST_MISMATCH');
    expect(sim.ledger.hasPayment(endToEndId)).toBe(false);
  });

  it('answers a message signed by another participant than AppHdr/Fr with an admi.002', async () => {
    const { xml, endToEndId } = await signedPacs008(keyB, { from: ISPB_A });
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
    const { a } = await drainBoth();
    expect(a.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ type: 'admi.002', reason: 'XMLDSIG_SIGNER_ISPB_MISMATCH' })]);
    expect(sim.ledger.hasPayment(endToEndId)).toBe(false);
  });

  it('answers a schema-invalid message with an admi.002 naming the path', async () => {
    // The builder refuses a transfer without Purp (required by the XSD): it is taken out after building.
    const { xml } = await signedPacs008(keyA, { alter: (unsigned) => unsigned.replace(/<Purp>[\s\S]*?<\/Purp>/, '') });
    expect((await postMessages(agentA, sim, ISPB_A, xml)).status).toBe(201);
    const { a } = await drainBoth();
    const verified = verifySpi(a[0]?.xml ?? '', { trustStore: bcbTrust });
    const admi = parseAdmi002({ appHdr: verified.appHdr, document: verified.document });
    expect(admi.reason.code).toBe('ISO20022_SCHEMA_INVALID');
    expect(admi.reason.errorLocation).toBe('/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf');
  });

  it('settles a duplicate once: a resent BizMsgIdr is ignored (idempotent), a new BizMsgIdr with the same EndToEndId gets RJCT DU03 valid under the pacs.002 1.17 XSD', async () => {
    const first = await signedPacs008(keyA);
    const again = await signedPacs008(keyA, { endToEndId: first.endToEndId });
    expect((await postMessages(agentA, sim, ISPB_A, first.xml)).status).toBe(201);
    await sim.ledger.waitForDecision(first.endToEndId);
    expect((await postMessages(agentA, sim, ISPB_A, first.xml)).status).toBe(201);
    expect((await postMessages(agentA, sim, ISPB_A, again.xml)).status).toBe(201);
    await sim.idle();
    const { a, b } = await drainBoth();
    expect(a.map((m) => describeMessage(m.xml))).toEqual([
      expect.objectContaining({ type: 'pacs.002', status: 'ACSC' }),
      expect.objectContaining({ type: 'pacs.002', status: 'RJCT', reason: 'DU03' }),
    ]);
    await validateSpiMessage(a[1]?.xml ?? '', 'pacs.002.spi.1.17');
    expect(sim.ledger.received().filter((r) => r.bizMsgIdr === first.bizMsgIdr).map((r) => r.outcome)).toEqual(['accepted', 'duplicate']);
    expect(b.filter((m) => describeMessage(m.xml).status === 'ACCC')).toHaveLength(1);
    expect(sim.ledger.payments().filter((p) => p.endToEndId === first.endToEndId && p.status === 'settled')).toHaveLength(1);
  });

  it("refuses a priority pacs.008 whose EndToEndId time is over 1 h 30 min behind with RJCT FF08 and the SPI's words, and takes a scheduled one 11 h behind", async () => {
    const HOUR = 3_600_000;
    const late = await signedPacs008(keyA, { endToEndId: generateEndToEndId(ISPB_A, { at: new Date(Date.now() - 2 * HOUR) }) });
    const recent = await signedPacs008(keyA, { endToEndId: generateEndToEndId(ISPB_A, { at: new Date(Date.now() - 80 * 60_000) }) });
    // PAGAGD (scheduled, InstrPrty NORM): the 12 h window applies, not the 1 h 30 min one.
    const asScheduled = (unsigned: string): string => unsigned.replace('<InstrPrty>HIGH</InstrPrty>', '<InstrPrty>NORM</InstrPrty>').replace('<Prtry>PAGPRI</Prtry>', '<Prtry>PAGAGD</Prtry>');
    const scheduled = await signedPacs008(keyA, { endToEndId: generateEndToEndId(ISPB_A, { at: new Date(Date.now() - 11 * HOUR) }), alter: asScheduled });
    const beyond = await signedPacs008(keyA, { endToEndId: generateEndToEndId(ISPB_A, { at: new Date(Date.now() + 13 * HOUR) }), alter: asScheduled });
    for (const message of [late, recent, scheduled, beyond]) expect((await postMessages(agentA, sim, ISPB_A, message.xml)).status).toBe(201);
    expect(await sim.ledger.waitForDecision(late.endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'FF08' });
    expect(await sim.ledger.waitForDecision(beyond.endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'FF08' });
    expect((await sim.ledger.waitForDecision(recent.endToEndId)).status).toBe('settled');
    expect((await sim.ledger.waitForDecision(scheduled.endToEndId)).status).toBe('settled');
    const { a, b } = await drainBoth();
    const refusals = a.map((m) => verifySpi(m.xml, { trustStore: bcbTrust })).flatMap((v) => parsePacs002({ appHdr: v.appHdr, document: v.document }).statuses).filter((st) => st.status === 'RJCT');
    expect(refusals.find((st) => st.originalEndToEndId === late.endToEndId)?.reason).toEqual({ code: 'FF08', additionalInformation: 'A data/hora no identificador da ordem de novo pagamento prioritario está mais de 1h30m atrasada' });
    expect(refusals.find((st) => st.originalEndToEndId === beyond.endToEndId)?.reason?.code).toBe('FF08');
    await validateSpiMessage(a.find((m) => m.xml.includes(late.endToEndId))?.xml ?? '', 'pacs.002.spi.1.17');
    // Refused ones never reach the receiver.
    expect(b.filter((m) => m.xml.includes(late.endToEndId) || m.xml.includes(beyond.endToEndId))).toEqual([]);
  });

  it('rejects with the receiver reason code when the receiver rejects', async () => {
    sim.participants.setReceiver(ISPB_B, { mode: 'reject', reasonCode: 'AC03', additionalInformation: 'conta inexistente' });
    const { xml, endToEndId } = await signedPacs008(keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    expect(await sim.ledger.waitForDecision(endToEndId)).toMatchObject({ status: 'rejected', reasonCode: 'AC03' });
    const { a } = await drainBoth();
    expect(a.map((m) => describeMessage(m.xml))).toEqual([expect.objectContaining({ status: 'RJCT', reason: 'AC03' })]);
    sim.participants.setReceiver(ISPB_B, { mode: 'accept' });
  });

  it('accepts one message, several as multipart/mixed, and gzip bodies', async () => {
    const messages = await Promise.all([signedPacs008(keyA), signedPacs008(keyA), signedPacs008(keyA)]);
    const multipart = await postMessages(agentA, sim, ISPB_A, messages.map((m) => m.xml));
    expect(multipart.status).toBe(201);
    const zipped = await signedPacs008(keyA);
    const gz = await postMessages(agentA, sim, ISPB_A, gzipSync(Buffer.from(zipped.xml)), { 'content-encoding': 'gzip' });
    expect(gz.status).toBe(201);
    for (const m of [...messages, zipped]) expect((await sim.ledger.waitForDecision(m.endToEndId)).status).toBe('settled');
    await drainBoth();
  });

  it('refuses more than 10 messages in one POST and a wrong content type', async () => {
    const { xml } = await signedPacs008(keyA);
    expect((await postMessages(agentA, sim, ISPB_A, Array.from({ length: 11 }, () => xml))).status).toBe(400);
    expect((await postMessages(agentA, sim, ISPB_A, xml, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await postMessages(agentA, sim, ISPB_A, xml, { 'x-custom': '1' })).status).toBe(400);
  });

  it('answers a pibr.001 echo with a pibr.002', async () => {
    const { buildPibr001, generateMessageId } = await import('../../../shared/iso20022/index.ts');
    const { signSpi } = await import('../../../shared/xmldsig/index.ts');
    const id = generateMessageId(ISPB_A);
    const now = new Date().toISOString();
    const xml = await signSpi(buildPibr001({ appHdr: { fromIspb: ISPB_A, toIspb: BCB_ISPB, bizMsgIdr: id, creDt: now }, msgId: id, creDtTm: now, data: 'ping 42' }), keyA);
    await postMessages(agentA, sim, ISPB_A, xml);
    const { a } = await drainBoth();
    expect(a.map((m) => describeMessage(m.xml).type)).toEqual(['pibr.002']);
    expect(a[0]?.xml).toContain('ping 42');
  });
});
