import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECEIVER_REJECTION_CODES } from '../../../shared/events/index.ts';
import {
  PAYMENT_PRIORITIES, PURPOSE_CODES, RETURN_REASON_CODES, buildPacs002, buildPacs004, buildPacs008, checkSpiSchema, compileSpiSchemas, generateEndToEndId, generateMessageId, generateReturnId, parsePacs002,
  spiSchemaOfNamespace, SPI_MESSAGES,
} from '../../../shared/iso20022/index.ts';
import type { CreditTransfer, ServiceLevel, TransactionStatus } from '../../../shared/iso20022/index.ts';
import { pemSigningKey, signSpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

const PSP = '99999004';
const OTHER = '9999A005';
const SPI = '00038166';
let pki: TestPki;
let key: SigningKey;

beforeAll(async () => {
  pki = createTestPki();
  const leaf = pki.issue('xsd conformance');
  key = pemSigningKey(leaf.keyPem, leaf.certPem);
  await compileSpiSchemas();
});
afterAll(() => pki.dispose());

function header(from: string): { fromIspb: string; toIspb: string; bizMsgIdr: string; creDt: string } {
  return { fromIspb: from, toIspb: SPI, bizMsgIdr: generateMessageId(from), creDt: new Date().toISOString() };
}

const LOCAL_INSTRUMENTS: readonly CreditTransfer['localInstrument'][] = ['MANU', 'DICT', 'QRDN', 'QRES', 'INIC', 'AUTO', 'APDN', 'APES'];

function transfer(overrides: Partial<CreditTransfer> = {}): CreditTransfer {
  return {
    endToEndId: generateEndToEndId(PSP),
    amount: '1234.5',
    acceptanceDateTime: new Date().toISOString(),
    localInstrument: 'MANU',
    debtor: { name: 'Fulana de Tal Ç', taxId: '70000000000' },
    debtorAccount: { number: '500000', branch: '0001', type: 'CACC' },
    debtorAgentIspb: PSP,
    creditorAgentIspb: OTHER,
    creditor: { taxId: '12345678000199' },
    creditorAccount: { number: '600000', type: 'SVGS' },
    purpose: 'IPAY',
    ...overrides,
  };
}

/** Signs `unsigned` and checks it against the official XSD, as the sign worker does before anything leaves. */
async function conforms(unsigned: string, schema: 'pacs.008.spi.1.16' | 'pacs.002.spi.1.17' | 'pacs.004.spi.1.5'): Promise<void> {
  checkSpiSchema(await signSpi(unsigned, key), schema);
}

describe('every pacs.008 selo builds conforms to pacs.008.spi.1.16.xsd', () => {
  for (const localInstrument of LOCAL_INSTRUMENTS) {
    it(`${localInstrument}, with every service level and purpose`, async () => {
      for (const serviceLevel of Object.keys(PAYMENT_PRIORITIES) as ServiceLevel[]) {
        for (const purpose of PURPOSE_CODES) {
          const h = header(PSP);
          const tx = transfer({
            localInstrument, purpose,
            ...(localInstrument === 'DICT' ? { creditorAccount: { number: '600000', branch: '4000', type: 'CACC', proxy: '+5561988887777' } } : {}),
            ...(localInstrument.startsWith('QR') ? { txId: 'QRtx0123456789abcdefABCDEF' } : {}),
          });
          await conforms(buildPacs008({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, serviceLevel, transactions: [tx] }), 'pacs.008.spi.1.16');
        }
      }
    });
  }

  it('with remittance information, every account type, and several transactions', async () => {
    const h = header(PSP);
    const types = ['CACC', 'SVGS', 'SLRY', 'TRAN', 'OTHR'] as const;
    const transactions = types.map((type) => transfer({ remittanceInformation: 'Pagamento do pedido nº 42 — obrigado!', debtorAccount: { number: '1', type }, creditorAccount: { number: '123456789012345', branch: '9999', type } }));
    await conforms(buildPacs008({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, transactions }), 'pacs.008.spi.1.16');
  });
});

describe('every pacs.002 selo (and the simulator) builds conforms to pacs.002.spi.1.17.xsd', () => {
  function pacs002(status: TransactionStatus): string {
    const h = header(PSP);
    return buildPacs002({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, statuses: [status] });
  }

  it('ACSP, ACSC and ACCC, for a payment and for a return (OrgnlInstrId is the RtrId)', async () => {
    const e2e = generateEndToEndId(OTHER);
    const returnId = generateReturnId(OTHER);
    const now = new Date().toISOString();
    for (const status of ['ACSP', 'ACSC', 'ACCC'] as const) {
      for (const instruction of [e2e, returnId]) {
        const settled = status === 'ACSP' ? {} : { settlementDateTime: now, interbankSettlementDate: now.slice(0, 10) };
        await conforms(pacs002({ originalInstructionId: instruction, originalEndToEndId: e2e, status, ...settled }), 'pacs.002.spi.1.17');
      }
    }
  });

  it('RJCT with every code a receiver may give and those the simulated SPI uses, with and without text', async () => {
    const e2e = generateEndToEndId(OTHER);
    for (const code of [...RECEIVER_REJECTION_CODES, 'AB03', 'AB11', 'DU03', 'DUPL', 'ED05', 'AM18']) {
      await conforms(pacs002({ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'RJCT', reason: { code } }), 'pacs.002.spi.1.17');
      await conforms(pacs002({ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'RJCT', reason: { code, additionalInformation: 'conta inexistente' } }), 'pacs.002.spi.1.17');
    }
  });

  it('RJCT whose additional information is longer than one AddtlInf (Max105Text): written as several, read back whole', async () => {
    const e2e = generateEndToEndId(OTHER);
    // 251 characters, accents included (the XSD counts characters, not bytes).
    const text = `A data/hora no identificador da ordem está fora da tolerância de 12 horas: ${'é'.repeat(100)} ${'x'.repeat(75)}`;
    expect(Array.from(text)).toHaveLength(251);
    const xml = pacs002({ originalInstructionId: e2e, originalEndToEndId: e2e, status: 'RJCT', reason: { code: 'FF08', additionalInformation: text } });
    await conforms(xml, 'pacs.002.spi.1.17');
    expect([...xml.matchAll(/<AddtlInf>([^<]*)<\/AddtlInf>/g)].map((m) => Array.from(m[1] ?? '').length)).toEqual([105, 105, 41]);
    expect(parsePacs002(xml).statuses[0]?.reason).toEqual({ code: 'FF08', additionalInformation: text });
  });
});

describe('every pacs.004 selo (and the simulator) builds conforms to pacs.004.spi.1.5.xsd', () => {
  it('with every return reason and settlement priority, with and without text and remittance information, and several returns', async () => {
    for (const code of RETURN_REASON_CODES) {
      for (const settlementPriority of ['HIGH', 'NORM'] as const) {
        const h = header(PSP);
        const one = {
          returnId: generateReturnId(PSP),
          originalEndToEndId: generateEndToEndId(OTHER),
          amount: '10.5',
          settlementPriority,
          reason: code === 'MD06' ? { code, additionalInformation: 'devolvido a pedido do recebedor' } : { code },
          ...(code === 'BE08' ? { remittanceInformation: 'estorno da compra 42' } : {}),
          debtorAgentIspb: PSP,
          creditorAgentIspb: OTHER,
        };
        const returns = code === 'FR01' ? [one, { ...one, returnId: generateReturnId(PSP), amount: '0.01' }] : [one];
        await conforms(buildPacs004({ appHdr: h, msgId: h.bizMsgIdr, creDtTm: h.creDt, returns }), 'pacs.004.spi.1.5');
      }
    }
  });
});

describe('spiSchemaOfNamespace', () => {
  it('names the XSD of the three message versions selo has one of, and nothing for the others', () => {
    expect(spiSchemaOfNamespace(SPI_MESSAGES['pacs.008'].namespace)).toBe('pacs.008.spi.1.16');
    expect(spiSchemaOfNamespace(SPI_MESSAGES['pacs.002'].namespace)).toBe('pacs.002.spi.1.17');
    expect(spiSchemaOfNamespace(SPI_MESSAGES['pacs.004'].namespace)).toBe('pacs.004.spi.1.5');
    for (const type of ['pibr.001', 'pibr.002', 'admi.002'] as const) expect(spiSchemaOfNamespace(SPI_MESSAGES[type].namespace)).toBeUndefined();
    expect(spiSchemaOfNamespace('https://www.bcb.gov.br/pi/pacs.008/1.15')).toBeUndefined();
    expect(spiSchemaOfNamespace('urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08')).toBeUndefined();
  });
});
