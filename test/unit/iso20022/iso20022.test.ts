import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SchemaValidationError,
  amountFromCents,
  amountToCents,
  buildPacs002,
  buildPacs008,
  generateEndToEndId,
  generateMessageId,
  generateReturnId,
  endToEndIdOfPaymentMessageId,
  normalizeAmount,
  paymentMessageId,
  parsePacs002,
  parsePacs008,
  validateSpiMessage,
  END_TO_END_ID,
  MESSAGE_ID,
  RETURN_ID,
} from '../../../shared/iso20022/index.ts';
import type { Pacs008, SpiSchema } from '../../../shared/iso20022/index.ts';
import { TrustStore, pemSigningKey, signSpi, verifySpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { createTestPki } from '../../support/test-pki.ts';
import type { TestPki } from '../../support/test-pki.ts';

/** The BCB's example messages (SPI catalogue 5.13.1), kept once in the repository. */
const EXAMPLES = join(import.meta.dirname, '../../../shared/iso20022/examples');
const SCHEMA_OF: Readonly<Record<string, SpiSchema>> = {
  'pacs.008_CONTA_1_msg.xml': 'pacs.008.spi.1.16',
  'pacs.008_END_1_msg.xml': 'pacs.008.spi.1.16',
  'pacs.008_END_10_msg.xml': 'pacs.008.spi.1.16',
  'pacs.002_SPI_1_msg.xml': 'pacs.002.spi.1.17',
  'pacs.002_PSP_1_msg.xml': 'pacs.002.spi.1.17',
  'pacs.002_ERRO_1_msg.xml': 'pacs.002.spi.1.17',
};

let pki: TestPki;
let key: SigningKey;
let trust: TrustStore;

beforeAll(() => {
  pki = createTestPki();
  const leaf = pki.issue('iso20022');
  key = pemSigningKey(leaf.keyPem, leaf.certPem);
  trust = new TrustStore();
  trust.add(leaf.certPem);
});
afterAll(() => pki.dispose());

const AT = new Date('2024-03-05T14:07:09.123Z');
const sample: Pacs008 = {
  appHdr: { fromIspb: '00038166', toIspb: '99999010', bizMsgIdr: 'M00038166abcdefghijklmnopqrstuvw', creDt: '2024-03-05T14:07:09.123Z' },
  msgId: 'M00038166abcdefghijklmnopqrstuvw',
  creDtTm: '2024-03-05T14:07:09.123Z',
  transactions: [
    {
      endToEndId: 'E00038166202403051407abcdefghijk',
      amount: '1234.5',
      acceptanceDateTime: '2024-03-05T14:07:08.000Z',
      localInstrument: 'DICT',
      debtor: { name: 'Fulano & Cia <Ltda>', taxId: '70000000000' },
      debtorAccount: { number: '500000', branch: '3000', type: 'CACC' },
      debtorAgentIspb: '00038166',
      creditorAgentIspb: '20000000',
      creditor: { taxId: '80000000000' },
      creditorAccount: { number: '600000', branch: '4000', type: 'SVGS', proxy: 'fulano@example.com' },
      purpose: 'IPAY',
      remittanceInformation: 'Pagamento ção',
    },
  ],
};

describe('identifiers', () => {
  it('generates EndToEndId, BizMsgIdr/MsgId and RtrId in the BCB formats', () => {
    const e2e = generateEndToEndId('00038166', { at: AT });
    expect(e2e).toMatch(END_TO_END_ID);
    expect(e2e.slice(0, 21)).toBe('E00038166202403051407');
    expect(generateMessageId('00038166')).toMatch(MESSAGE_ID);
    expect(generateReturnId('00038166', { at: AT })).toMatch(RETURN_ID);
    expect(generateEndToEndId('00038166', { at: AT, random: () => 0 })).toBe('E00038166202403051407AAAAAAAAAAA');
  });

  it('derives a pacs.008\'s MsgId from its EndToEndId and back (MsgIdType of pacs.008.spi.1.16.xsd), refusing what is not one', () => {
    const e2e = generateEndToEndId('00038166', { at: AT });
    const msgId = paymentMessageId(e2e);
    expect(msgId).toMatch(MESSAGE_ID);
    expect(msgId).toBe(`M${e2e.slice(1)}`);
    expect(endToEndIdOfPaymentMessageId(msgId)).toBe(e2e);
    // A MsgId drawn at random is not, as a rule, one of a payment (its characters 10–21 are no minute stamp).
    expect(endToEndIdOfPaymentMessageId('M00038166abcdefghijklmnopqrstuvw')).toBeUndefined();
    expect(endToEndIdOfPaymentMessageId(`D${e2e.slice(1)}`)).toBeUndefined();
    expect(() => paymentMessageId(`D${e2e.slice(1)}`)).toThrow(RangeError);
  });

  it('refuses an ISPB that is not 8 characters', () => {
    expect(() => generateEndToEndId('1234')).toThrow(RangeError);
  });
});

describe('amounts', () => {
  it('keeps amounts as decimal strings with two decimals', () => {
    expect(normalizeAmount('1000')).toBe('1000.00');
    expect(normalizeAmount('0.1')).toBe('0.10');
    expect(amountToCents('9999999999999999.99')).toBe(999999999999999999n);
    expect(amountFromCents(30n)).toBe('0.30');
    for (const bad of ['1.001', '-1', '1e3', '01', '', '1.']) expect(() => normalizeAmount(bad), bad).toThrow(/not an amount/);
  });
});

describe('XSD validation', () => {
  for (const [file, schema] of Object.entries(SCHEMA_OF)) {
    it(`validates the BCB example ${file} once its Sgntr holds a signature`, async () => {
      const example = readFileSync(join(EXAMPLES, file), 'utf8');
      await expect(validateSpiMessage(example, schema)).rejects.toThrow(/Sgntr/);
      await expect(validateSpiMessage(await signSpi(example, key), schema)).resolves.toBeUndefined();
    });
  }

  it('names the path of the offending element', async () => {
    const example = readFileSync(join(EXAMPLES, 'pacs.008_END_10_msg.xml'), 'utf8');
    const broken = await signSpi(example.replace('E9999901012341234123412345678902', 'X-not-an-id'), key);
    const error = await validateSpiMessage(broken, 'pacs.008.spi.1.16').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SchemaValidationError);
    const violation = (error as SchemaValidationError).violations[0];
    expect(violation?.path).toMatch(/^\/Envelope\/Document\/FIToFICstmrCdtTrf\/CdtTrfTxInf\[\d+\]\/PmtId\/EndToEndId$/);
    expect((error as SchemaValidationError).code).toBe('ISO20022_SCHEMA_INVALID');
    // The offending value (which may be personal data) stays out of the error and its logs.
    expect((error as SchemaValidationError).message).not.toContain('X-not-an-id');
    expect(JSON.stringify((error as SchemaValidationError).violations)).not.toContain('X-not-an-id');
  });
});

describe('XSD validation of hostile input', () => {
  it('refuses what is not well-formed, and never expands an external entity', async () => {
    await expect(validateSpiMessage('<Envelope><AppHdr>', 'pacs.008.spi.1.16')).rejects.toBeInstanceOf(SchemaValidationError);
    const xxe = '<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope xmlns="https://www.bcb.gov.br/pi/pacs.008/1.16">&e;</Envelope>';
    const error = await validateSpiMessage(xxe, 'pacs.008.spi.1.16').then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaValidationError);
    expect(JSON.stringify(error)).not.toMatch(/root:/);
    expect((error as SchemaValidationError).message).not.toMatch(/root:/);
  });
});

describe('pacs.008', () => {
  it('builds a message that validates against the XSD once signed, and parses back to the same value', async () => {
    const xml = buildPacs008(sample);
    const signed = await signSpi(xml, key);
    await validateSpiMessage(signed, 'pacs.008.spi.1.16');
    const verified = verifySpi(signed, { trustStore: trust });
    const parsed = parsePacs008(verified);
    expect(parsed.transactions[0]?.amount).toBe('1234.50');
    // parsePacs008 reads SvcLvl/Prtry: the builder's default, PAGPRI.
    expect(parsed).toEqual({ ...sample, serviceLevel: 'PAGPRI', appHdr: { ...sample.appHdr, msgDefIdr: 'pacs.008.spi.1.16' }, transactions: [{ ...sample.transactions[0], amount: '1234.50' }] });
  });

  it('parses the BCB examples', () => {
    const parsed = parsePacs008(readFileSync(join(EXAMPLES, 'pacs.008_END_10_msg.xml'), 'utf8'));
    expect(parsed.transactions).toHaveLength(10);
    expect(parsed.appHdr.fromIspb).toBe('00038166');
  });

  it('refuses an EndToEndId in the wrong format', () => {
    expect(() => buildPacs008({ ...sample, transactions: [{ ...(sample.transactions[0] as Pacs008['transactions'][0]), endToEndId: 'E123' }] })).toThrow(/EndToEndId/);
  });
});

describe('pacs.002', () => {
  it('builds a rejection that validates once signed and parses back', async () => {
    const xml = buildPacs002({
      appHdr: { fromIspb: '99999010', toIspb: '00038166', bizMsgIdr: 'M99999010abcdefghijklmnopqrstuvw', creDt: '2024-03-05T14:07:10.000Z' },
      msgId: 'M99999010abcdefghijklmnopqrstuvw',
      creDtTm: '2024-03-05T14:07:10.000Z',
      statuses: [{ originalInstructionId: 'E00038166202403051407abcdefghijk', originalEndToEndId: 'E00038166202403051407abcdefghijk', status: 'RJCT', reason: { code: 'AB03', additionalInformation: 'Tempo excedido' } }],
    });
    await validateSpiMessage(await signSpi(xml, key), 'pacs.002.spi.1.17');
    expect(parsePacs002(xml).statuses[0]).toMatchObject({ status: 'RJCT', reason: { code: 'AB03' } });
  });

  it('parses the settled BCB example', () => {
    expect(parsePacs002(readFileSync(join(EXAMPLES, 'pacs.002_SPI_1_msg.xml'), 'utf8')).statuses[0]).toMatchObject({
      status: 'ACCC',
      settlementDateTime: '2020-01-01T08:30:12.000Z',
      interbankSettlementDate: '2020-01-01',
    });
  });
});
