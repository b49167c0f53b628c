import { describe, expect, it } from 'vitest';
import { buildEntryQuery, buildEntryReport, judgeEntryReport, readEntryQuery, readEntryReport } from '../../../shared/bcb-query/index.ts';
import { parseXml } from '../../../shared/xml/index.ts';
import type { XmlElement } from '../../../shared/xml/index.ts';

const ISPB = '99999004';
const BCB = '00038166';
const E2E = 'E99999004202612071000abcdefghijk';
const MSG = 'M99999004querymsgid000000000000a';
const REPORT = 'M00038166reportmsgid00000000000b';

function documentOf(xml: string): XmlElement {
  const root = parseXml(xml).root;
  return root.children.find((c): c is XmlElement => c.kind === 'element' && c.localName === 'Document') as XmlElement;
}

function report(overrides: Partial<Parameters<typeof buildEntryReport>[0]> = {}): string {
  return buildEntryReport({
    bcbIspb: BCB, ispb: ISPB, bizMsgIdr: REPORT, createdAt: '2026-12-07T10:00:01.000Z', queryMsgId: MSG, endToEndId: E2E,
    entry: { status: 'BOOK', creditDebit: 'DBIT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: ISPB, receiverIspb: '99999005' },
    ...overrides,
  });
}

const expected = { ispb: ISPB, msgId: MSG, endToEndId: E2E, amount: '10.50' };

describe('camt.060 / camt.054 (the BCB query of one PI-account entry)', () => {
  it('asks for the camt.054 of one EndToEndId on our own account', () => {
    const xml = buildEntryQuery({ ispb: ISPB, bcbIspb: BCB, msgId: MSG, createdAt: '2026-12-07T10:00:00.000Z', endToEndId: E2E });
    expect(xml).toContain('<Envelope xmlns="https://www.bcb.gov.br/pi/camt.060/1.9">');
    expect(xml).toContain('<MsgDefIdr>camt.060.spi.1.9</MsgDefIdr>');
    expect(readEntryQuery(documentOf(xml))).toEqual({ msgId: MSG, requested: 'camt.054', id: E2E, ownerIspb: ISPB });
  });

  it('calls a payment settled only for a BOOK debit of it, answering this query, of our amount', () => {
    expect(judgeEntryReport(readEntryReport(documentOf(report())), expected, REPORT)).toEqual({
      outcome: 'settled',
      evidence: `camt.054 ${REPORT} answering camt.060 ${MSG} for ${E2E}: entry BOOK DBIT 10.50 at 2026-12-07T10:00:00.500Z`,
    });
    const unknown = (xml: string, what = expected) => judgeEntryReport(readEntryReport(documentOf(xml)), what, REPORT).outcome;
    expect(unknown(report({ entry: { status: 'INFO', creditDebit: 'DBIT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: ISPB, receiverIspb: '99999005' } }))).toBe('unknown');
    expect(unknown(report({ entry: { status: 'BOOK', creditDebit: 'CRDT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: '99999005', receiverIspb: ISPB } }))).toBe('unknown');
    expect(unknown(report({ queryMsgId: 'M99999004someotherquery000000000' }))).toBe('unknown');
    expect(unknown(report(), { ...expected, amount: '10.51' })).toBe('unknown');
    expect(unknown(report(), { ...expected, endToEndId: 'E99999004202612071000otherotherx' })).toBe('unknown');
    // An error answer (no entry) proves nothing: never read as a rejection.
    const notFound = judgeEntryReport(readEntryReport(documentOf(report({ entry: undefined, error: { code: 'ENNF', detail: 'no booked entry' } }))), expected, REPORT);
    expect(notFound).toEqual({ outcome: 'unknown', evidence: `camt.054 ${REPORT} answering camt.060 ${MSG} for ${E2E}: entry INFO DBIT 0.00 error ENNF (no booked entry)` });
  });

  it('calls a payment to our customer settled only for a BOOK credit of it (CRDT), never for a debit', () => {
    const credit = { status: 'BOOK', creditDebit: 'CRDT', amount: '10.50', at: '2026-12-07T10:00:00.500Z', payerIspb: '99999005', receiverIspb: ISPB } as const;
    const judge = (xml: string, creditDebit: 'DBIT' | 'CRDT') => judgeEntryReport(readEntryReport(documentOf(xml)), { ...expected, creditDebit }, REPORT);
    expect(judge(report({ entry: credit }), 'CRDT')).toEqual({ outcome: 'settled', evidence: `camt.054 ${REPORT} answering camt.060 ${MSG} for ${E2E}: entry BOOK CRDT 10.50 at 2026-12-07T10:00:00.500Z` });
    expect(judge(report(), 'CRDT').outcome).toBe('unknown');
    expect(judge(report({ entry: { ...credit, status: 'INFO' } }), 'CRDT').outcome).toBe('unknown');
    expect(judge(report({ entry: { ...credit, amount: '10.49' } }), 'CRDT').outcome).toBe('unknown');
  });

});
