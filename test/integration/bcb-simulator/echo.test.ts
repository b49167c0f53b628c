import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Agent } from 'undici';
import type { BcbSimulator, LedgerEcho } from '../../../infra/bcb-simulator/index.ts';
import { buildPibr002, generateMessageId, parseAdmi002, parsePibr001 } from '../../../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, drainStream, mtlsAgent, postMessages, startTestSimulator } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let keyA: SigningKey;
const bcbTrust = new TrustStore();

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki);
  agentA = mtlsAgent(pki, pki.tlsA);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
});

afterAll(async () => {
  await agentA.close();
  await sim.close();
});

/** A posts a signed pibr.002 repeating `data`; its BizMsgIdr. */
async function answerEchoFromA(data: string): Promise<string> {
  const bizMsgIdr = generateMessageId(ISPB_A);
  const now = new Date().toISOString();
  const xml = buildPibr002({ appHdr: { fromIspb: ISPB_A, toIspb: BCB_ISPB, bizMsgIdr, creDt: now }, msgId: bizMsgIdr, creDtTm: now, originalData: data });
  expect((await postMessages(agentA, sim, ISPB_A, await signSpi(xml, keyA))).status).toBe(201);
  await sim.idle();
  return bizMsgIdr;
}

function echoOf(bizMsgIdr: string): Readonly<LedgerEcho> | undefined {
  return sim.ledger.echoes().find((e) => e.bizMsgIdr === bizMsgIdr);
}

describe('BCB simulator echo (pibr.001 / pibr.002)', () => {
  it('puts a pibr.001 signed by the BCB on the participant\'s stream', async () => {
    const bizMsgIdr = sim.echo(ISPB_A, 'teste de conectividade');
    const streamed = await drainStream(agentA, sim, ISPB_A);
    expect(streamed).toHaveLength(1);
    const verified = verifySpi(streamed[0]?.xml ?? '', { trustStore: bcbTrust });
    const echo = parsePibr001({ appHdr: verified.appHdr, document: verified.document });
    expect(echo.appHdr).toMatchObject({ fromIspb: BCB_ISPB, toIspb: ISPB_A, bizMsgIdr });
    expect(echo.data).toBe('teste de conectividade');
    expect(echoOf(bizMsgIdr)).toMatchObject({ toIspb: ISPB_A, data: 'teste de conectividade' });
    expect(echoOf(bizMsgIdr)?.answeredAt).toBeUndefined();
  });

  it('records a pibr.002 repeating the echo\'s data as its answer', async () => {
    const bizMsgIdr = sim.echo(ISPB_A);
    await drainStream(agentA, sim, ISPB_A);
    const data = echoOf(bizMsgIdr)?.data ?? '';
    expect(data).toMatch(/^[0-9a-f]{32}$/);

    const answer = await answerEchoFromA(data);
    expect(echoOf(bizMsgIdr)).toMatchObject({ answerBizMsgIdr: answer, answeredAt: expect.any(String) as unknown });
    expect(sim.ledger.received().find((m) => m.bizMsgIdr === answer)).toMatchObject({ type: 'pibr.002', outcome: 'accepted' });
    expect(await drainStream(agentA, sim, ISPB_A)).toEqual([]);
  });

  it('refuses with an admi.002 a pibr.002 whose data matches no echo sent to that participant', async () => {
    const toB = sim.echo(ISPB_B, 'eco para o outro participante');
    const strange = await answerEchoFromA('nenhum eco enviou isto');
    const stolen = await answerEchoFromA('eco para o outro participante');

    const admis = (await drainStream(agentA, sim, ISPB_A)).map((m) => {
      const verified = verifySpi(m.xml, { trustStore: bcbTrust });
      return parseAdmi002({ appHdr: verified.appHdr, document: verified.document });
    });
    expect(admis.map((a) => [a.rejectedBizMsgIdr, a.reason.code])).toEqual([
      [strange, 'ECHO_UNKNOWN'],
      [stolen, 'ECHO_UNKNOWN'],
    ]);
    expect(admis[0]?.reason.errorLocation).toBe('/Envelope/Document/EchoRpt/EchoTxInf/OrgnlData');
    expect(echoOf(toB)?.answeredAt).toBeUndefined();
    expect(sim.ledger.received().find((m) => m.bizMsgIdr === strange)).toMatchObject({ outcome: 'invalid', error: { code: 'ECHO_UNKNOWN' } });
  });

  it('refuses data longer than the 35 characters of pibr.001 Data, and an ISPB that is not a participant\'s, naming them', () => {
    const sentBefore = sim.ledger.sent().length;
    expect(() => sim.echo(ISPB_A, 'x'.repeat(36))).toThrow(/echo data must be 1 to 35 characters/);
    expect(() => sim.echo(ISPB_A, '')).toThrow(/echo data/);
    expect(() => sim.echo('9999', 'x')).toThrow(/echo ispb .*"9999"/);
    expect(() => sim.echo(BCB_ISPB, 'x')).toThrow(/echo ispb/);
    expect(sim.ledger.sent()).toHaveLength(sentBefore);
  });

  it('sends an echo through the admin endpoint and lists echoes and their answers there', async () => {
    const admin = sim.adminUrl ?? '';
    const bad = await request(`${admin}/echo/${ISPB_A}`, { method: 'POST', body: JSON.stringify({ data: 42 }) });
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: string }).error).toMatch(/echo data must be a string/);

    const posted = await request(`${admin}/echo/${ISPB_A}`, { method: 'POST', body: JSON.stringify({ data: 'via admin' }) });
    expect(posted.statusCode).toBe(200);
    const sent = (await posted.body.json()) as LedgerEcho;
    expect(sent).toMatchObject({ toIspb: ISPB_A, data: 'via admin', bizMsgIdr: expect.stringMatching(/^M00038166/) as unknown });
    const streamed = await drainStream(agentA, sim, ISPB_A);
    expect(streamed.map((m) => parsePibr001(verifySpi(m.xml, { trustStore: bcbTrust })).msgId)).toEqual([sent.bizMsgIdr]);

    const answer = await answerEchoFromA('via admin');
    const listed = (await (await request(`${admin}/ledger/echoes?ispb=${ISPB_A}`)).body.json()) as LedgerEcho[];
    expect(listed.find((e) => e.bizMsgIdr === sent.bizMsgIdr)).toMatchObject({ answerBizMsgIdr: answer });
    expect(listed.every((e) => e.toIspb === ISPB_A)).toBe(true);
  });
});
