import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MessageFormatError,
  buildAdmi002,
  buildPacs002,
  buildPacs004,
  buildPibr001,
  buildPibr002,
  parseAdmi002,
  parsePacs004,
  parsePibr001,
  parsePibr002,
  parseSpiMessage,
} from '../../../shared/iso20022/index.ts';
import type { Admi002, Pacs004, Pibr001, Pibr002 } from '../../../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

/** The BCB's example messages (SPI catalogue 5.13.1), kept once in the repository. */
const EXAMPLES = join(import.meta.dirname, '../../../shared/iso20022/examples');

let pki: TestPki;
let key: SigningKey;
let trust: TrustStore;

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('spi-messages');
  key = pemSigningKey(leaf.keyPem, leaf.certPem);
  trust = new TrustStore();
  trust.add(leaf.certPem);
});
afterAll(() => pki.dispose());

const PSP = { fromIspb: '00038166', toIspb: '99999010', bizMsgIdr: 'M00038166abcdefghijklmnopqrstuvw', creDt: '2024-03-05T14:07:09.123Z' } as const;
const SPI = { fromIspb: '99999010', toIspb: '00038166', bizMsgIdr: 'M99999010abcdefghijklmnopqrstuvw', creDt: '2024-03-05T14:07:10.000Z' } as const;

const pacs004: Pacs004 = {
  appHdr: PSP,
  msgId: 'M00038166abcdefghijklmnopqrstuvw',
  creDtTm: '2024-03-05T14:07:09.123Z',
  returns: [
    {
      returnId: 'D00038166202403051407abcdefghij1',
      originalEndToEndId: 'E12345678202403041200abcdefghijk',
      amount: '10.5',
      settlementPriority: 'HIGH',
      reason: { code: 'MD06', additionalInformation: 'Devolução pedida pelo cliente & confirmada' },
      remittanceInformation: 'pedido <42>',
      debtorAgentIspb: '00038166',
      creditorAgentIspb: '12345678',
    },
    {
      returnId: 'D00038166202403051407abcdefghij2',
      originalEndToEndId: 'E12345678202403041200abcdefghijl',
      amount: '0.01',
      settlementPriority: 'HIGH',
      reason: { code: 'FR01' },
      debtorAgentIspb: '00038166',
      creditorAgentIspb: '12345678',
    },
  ],
};

const pibr001: Pibr001 = { appHdr: PSP, msgId: PSP.bizMsgIdr, creDtTm: PSP.creDt, data: 'Campo livre' };
const pibr002: Pibr002 = { appHdr: SPI, msgId: SPI.bizMsgIdr, creDtTm: SPI.creDt, originalData: 'Campo livre' };
const admi002: Admi002 = {
  appHdr: SPI,
  rejectedBizMsgIdr: 'M00038166abcdefghijklmnopqrstuvw',
  reason: {
    code: 'ESQM',
    rejectionDateTime: '2024-03-05T14:07:10.000Z',
    errorLocation: '/Envelope/Document/PmtRtr/TxInf/RtrId',
    description: 'Mensagem não está de acordo com o schema',
  },
};

/** Signs, verifies and parses what was verified: the path every inbound message takes. */
async function signVerifyParse(xml: string): Promise<ReturnType<typeof parseSpiMessage>> {
  const signed = await signSpi(xml, key);
  return parseSpiMessage(verifySpi(signed, { trustStore: trust }));
}

function replace(xml: string, from: string, to: string): string {
  expect(xml).toContain(from);
  return xml.replace(from, to);
}

describe('pacs.004', () => {
  it('writes the PmtRtr structure of the catalogue (1.5 namespace, D… RtrId, BRL amount with two decimals)', () => {
    const xml = buildPacs004(pacs004);
    expect(xml).toContain('<Envelope xmlns="https://www.bcb.gov.br/pi/pacs.004/1.5">');
    expect(xml).toContain('<MsgDefIdr>pacs.004.spi.1.5</MsgDefIdr>');
    expect(xml).toContain('<NbOfTxs>2</NbOfTxs>');
    expect(xml).toContain('<RtrdIntrBkSttlmAmt Ccy="BRL">10.50</RtrdIntrBkSttlmAmt>');
    expect(xml).toContain('<Ustrd>pedido &lt;42&gt;</Ustrd>');
    expect(xml.indexOf('<RtrId>')).toBeLessThan(xml.indexOf('<OrgnlEndToEndId>'));
  });

  it('signs, verifies and parses back to the same value', async () => {
    const parsed = await signVerifyParse(buildPacs004(pacs004));
    expect(parsed.type).toBe('pacs.004');
    expect(parsed.version).toBe('1.5');
    expect(parsed.message).toEqual({
      ...pacs004,
      appHdr: { ...PSP, msgDefIdr: 'pacs.004.spi.1.5' },
      returns: [{ ...pacs004.returns[0], amount: '10.50' }, pacs004.returns[1]],
    });
  });

  it('refuses to build a RtrId that is not D + ISPB + minute + 11 alphanumerics, naming the element', () => {
    const first = pacs004.returns[0] as Pacs004['returns'][0];
    expect(() => buildPacs004({ ...pacs004, returns: [{ ...first, returnId: 'E00038166202403051407abcdefghij1' }] })).toThrow(/PmtRtr\/TxInf\[1\]\/RtrId/);
  });

  it('refuses a zero or floating-point-looking amount and an unknown reason code', () => {
    const first = pacs004.returns[0] as Pacs004['returns'][0];
    expect(() => buildPacs004({ ...pacs004, returns: [{ ...first, amount: '0.00' }] })).toThrow(/RtrdIntrBkSttlmAmt.*greater than zero/);
    expect(() => buildPacs004({ ...pacs004, returns: [{ ...first, amount: '1e3' }] })).toThrow(MessageFormatError);
    expect(() => buildPacs004({ ...pacs004, returns: [{ ...first, reason: { code: 'AB03' as 'BE08' } }] })).toThrow(/RtrRsnInf\/Rsn\/Cd/);
  });

  it('names the path of a missing OrgnlEndToEndId', () => {
    const xml = replace(buildPacs004(pacs004), '<OrgnlEndToEndId>E12345678202403041200abcdefghijk</OrgnlEndToEndId>', '');
    expect(() => parsePacs004(xml)).toThrow('/Envelope/Document/PmtRtr/TxInf[1]/OrgnlEndToEndId is missing');
  });

  it('names the path of a malformed RtrId, a non-BRL amount and a wrong NbOfTxs', () => {
    const xml = buildPacs004(pacs004);
    expect(() => parsePacs004(replace(xml, 'D00038166202403051407abcdefghij2', 'D0003816620240305'))).toThrow('/Envelope/Document/PmtRtr/TxInf[2]/RtrId');
    expect(() => parsePacs004(replace(xml, 'Ccy="BRL">10.50', 'Ccy="USD">10.50'))).toThrow('/Envelope/Document/PmtRtr/TxInf[1]/RtrdIntrBkSttlmAmt: Ccy must be BRL');
    expect(() => parsePacs004(replace(xml, 'Ccy="BRL">10.50', 'Ccy="BRL">10.505'))).toThrow(/TxInf\[1\]\/RtrdIntrBkSttlmAmt/);
    expect(() => parsePacs004(replace(xml, '<NbOfTxs>2</NbOfTxs>', '<NbOfTxs>3</NbOfTxs>'))).toThrow('/Envelope/Document/PmtRtr/GrpHdr/NbOfTxs: says 3 but the message holds 2 TxInf');
  });

  it('accepts an older pacs.004 namespace version on input', () => {
    const xml = buildPacs004(pacs004).replace('https://www.bcb.gov.br/pi/pacs.004/1.5', 'https://www.bcb.gov.br/pi/pacs.004/1.3');
    expect(parsePacs004(xml).returns).toHaveLength(2);
    expect(parseSpiMessage(xml)).toMatchObject({ type: 'pacs.004', version: '1.3' });
  });
});

describe('pibr.001 and pibr.002', () => {
  it('signs, verifies and parses an echo request back to the same value', async () => {
    const xml = buildPibr001(pibr001);
    expect(xml).toContain('<Envelope xmlns="https://www.bcb.gov.br/pi/pibr.001/1.3">');
    expect(xml).toContain('<EchoReq>');
    const parsed = await signVerifyParse(xml);
    expect(parsed).toEqual({ type: 'pibr.001', version: '1.3', message: { ...pibr001, appHdr: { ...PSP, msgDefIdr: 'pibr.001.spi.1.3' } } });
  });

  it('signs, verifies and parses an echo answer back to the same value', async () => {
    const xml = buildPibr002(pibr002);
    expect(xml).toContain('<Envelope xmlns="https://www.bcb.gov.br/pi/pibr.002/1.3">');
    expect(xml).toContain('<OrgnlData>Campo livre</OrgnlData>');
    const parsed = await signVerifyParse(xml);
    expect(parsed).toEqual({ type: 'pibr.002', version: '1.3', message: { ...pibr002, appHdr: { ...SPI, msgDefIdr: 'pibr.002.spi.1.3' } } });
  });

  it('refuses echo data longer than 35 characters, naming the element', () => {
    expect(() => buildPibr001({ ...pibr001, data: 'x'.repeat(36) })).toThrow(/EchoReq\/EchoTxInf\/Data: must be 1 to 35 characters/);
    const xml = replace(buildPibr002(pibr002), '<OrgnlData>Campo livre</OrgnlData>', `<OrgnlData>${'y'.repeat(36)}</OrgnlData>`);
    expect(() => parsePibr002(xml)).toThrow('/Envelope/Document/EchoRpt/EchoTxInf/OrgnlData: must be 1 to 35 characters, got 36');
  });

  it('names a malformed MsgId and a missing EchoTxInf', () => {
    expect(() => parsePibr001(replace(buildPibr001(pibr001), '<MsgId>M00038166abcdefghijklmnopqrstuvw</MsgId>', '<MsgId>M123</MsgId>'))).toThrow('/Envelope/Document/EchoReq/GrpHdr/MsgId: "M123" is not M + ISPB + 23 alphanumerics');
    expect(() => parsePibr001(buildPibr001(pibr001).replace(/<EchoTxInf>[\s\S]*<\/EchoTxInf>/, ''))).toThrow('/Envelope/Document/EchoReq/EchoTxInf is missing');
  });

  it('refuses a pibr.002 given to the pibr.001 parser', () => {
    expect(() => parsePibr001(buildPibr002(pibr002))).toThrow(/is not a pibr\.001/);
  });
});

describe('admi.002', () => {
  it('writes the admi.002.001.01 body with RltdRef and Rsn', () => {
    const xml = buildAdmi002(admi002);
    expect(xml).toContain('<Envelope xmlns="https://www.bcb.gov.br/pi/admi.002/1.5">');
    expect(xml).toMatch(/<admi\.002\.001\.01>\s*<RltdRef>\s*<Ref>M00038166abcdefghijklmnopqrstuvw<\/Ref>/);
    expect(xml).toContain('<RjctgPtyRsn>ESQM</RjctgPtyRsn>');
  });

  it('signs, verifies and parses back to the same value', async () => {
    const parsed = await signVerifyParse(buildAdmi002(admi002));
    expect(parsed).toEqual({ type: 'admi.002', version: '1.5', message: { ...admi002, appHdr: { ...SPI, msgDefIdr: 'admi.002.spi.1.5' } } });
  });

  it('keeps the optional fields optional', () => {
    const minimal: Admi002 = { appHdr: SPI, rejectedBizMsgIdr: 'M00038166abcdefghijklmnopqrstuvw', reason: { code: 'RJCT' } };
    expect(parseAdmi002(buildAdmi002(minimal))).toEqual({ ...minimal, appHdr: { ...SPI, msgDefIdr: 'admi.002.spi.1.5' } });
  });

  it('names a missing reason code and a malformed rejection time', () => {
    const xml = buildAdmi002(admi002);
    expect(() => parseAdmi002(replace(xml, '<RjctgPtyRsn>ESQM</RjctgPtyRsn>', ''))).toThrow('/Envelope/Document/admi.002.001.01/Rsn/RjctgPtyRsn is missing');
    expect(() => parseAdmi002(replace(xml, '2024-03-05T14:07:10.000Z</RjctnDtTm>', '2024-03-05 14:07</RjctnDtTm>'))).toThrow('/Envelope/Document/admi.002.001.01/Rsn/RjctnDtTm');
    expect(() => buildAdmi002({ ...admi002, reason: { code: 'x'.repeat(36) } })).toThrow(/Rsn\/RjctgPtyRsn/);
  });
});

describe('parseSpiMessage', () => {
  it('dispatches pacs.008 and pacs.002 by namespace, including the BCB examples', async () => {
    expect(parseSpiMessage(readFileSync(join(EXAMPLES, 'pacs.008_END_10_msg.xml'), 'utf8'))).toMatchObject({ type: 'pacs.008', version: '1.16' });
    const status = parseSpiMessage(readFileSync(join(EXAMPLES, 'pacs.002_SPI_1_msg.xml'), 'utf8'));
    expect(status.type).toBe('pacs.002');
    if (status.type === 'pacs.002') expect(status.message.statuses[0]?.status).toBe('ACCC');
    const rejected = buildPacs002({
      appHdr: SPI,
      msgId: SPI.bizMsgIdr,
      creDtTm: SPI.creDt,
      statuses: [{ originalInstructionId: 'D00038166202403051407abcdefghij1', originalEndToEndId: 'E12345678202403041200abcdefghijk', status: 'RJCT', reason: { code: 'AM09' } }],
    });
    expect((await signVerifyParse(rejected)).type).toBe('pacs.002');
  });

  it('refuses a message type selo does not handle and a foreign namespace', () => {
    const camt = buildPibr001(pibr001).replaceAll('pibr.001', 'camt.060');
    expect(() => parseSpiMessage(camt)).toThrow('camt.060 (version 1.3) is not a message selo handles');
    expect(() => parseSpiMessage(buildPibr001(pibr001).replace('https://www.bcb.gov.br/pi/pibr.001/1.3', 'urn:iso:std:iso:20022:tech:xsd:admi.002.001.01'))).toThrow(/is not a SPI message namespace/);
  });

  it('refuses a header whose BizMsgIdr or sender ISPB is malformed, naming the path', () => {
    const xml = buildPibr002(pibr002);
    expect(() => parseSpiMessage(replace(xml, '<BizMsgIdr>M99999010abcdefghijklmnopqrstuvw</BizMsgIdr>', '<BizMsgIdr>X</BizMsgIdr>'))).toThrow('/Envelope/AppHdr/BizMsgIdr: "X" is not M + ISPB + 23 alphanumerics');
    expect(() => buildPibr002({ ...pibr002, appHdr: { ...SPI, fromIspb: '123' } })).toThrow(/AppHdr\/Fr\/FIId\/FinInstnId\/Othr\/Id/);
  });

  it('refuses a pacs.004 whose Document was altered after signing', async () => {
    const signed = await signSpi(buildPacs004(pacs004), key);
    expect(() => verifySpi(signed.replace('10.50', '99.50'), { trustStore: trust })).toThrow(expect.objectContaining({ code: 'XMLDSIG_DIGEST_MISMATCH' }));
  });
});
