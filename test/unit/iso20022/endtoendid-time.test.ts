import { describe, expect, it } from 'vitest';
import { END_TO_END_ID_TIME_TOLERANCE, endToEndIdTime, endToEndIdTimeProblem, generateEndToEndId } from '../../../shared/iso20022/index.ts';

const SPI_TIME = new Date('2026-12-07T12:00:30.000Z');
const id = (stamp: string): string => `E99999A04${stamp}abcDEF12345`;

describe("the EndToEndId's time rule", () => {
  it('reads the UTC minute of an EndToEndId or RtrId, and nothing from a date that does not exist', () => {
    expect(endToEndIdTime(id('202612071200'))?.toISOString()).toBe('2026-12-07T12:00:00.000Z');
    expect(endToEndIdTime(`D99999004202612071200abcDEF12345`)?.toISOString()).toBe('2026-12-07T12:00:00.000Z');
    expect(endToEndIdTime(id('202602301200'))).toBeUndefined();
    expect(endToEndIdTime(id('202612072400'))).toBeUndefined();
    expect(endToEndIdTime('not an id')).toBeUndefined();
  });

  it('allows a priority order 1 h 30 min behind, not a minute more (SPI FF08, bacen/pix-perguntas-e-respostas #282)', () => {
    expect(END_TO_END_ID_TIME_TOLERANCE.priorityPastMs).toBe(90 * 60_000);
    expect(endToEndIdTimeProblem(id('202612071031'), SPI_TIME, { priority: true })).toBeUndefined();
    expect(endToEndIdTimeProblem(id('202612071029'), SPI_TIME, { priority: true })).toMatchObject({ rule: 'PRIORITY_LATE', message: expect.stringContaining('91 min behind') as unknown });
  });

  it('allows any order 12 h either way (SPI catalogue), not beyond', () => {
    expect(endToEndIdTimeProblem(id('202612070001'), SPI_TIME, { priority: false })).toBeUndefined();
    expect(endToEndIdTimeProblem(id('202612072359'), SPI_TIME, { priority: false })).toBeUndefined();
    expect(endToEndIdTimeProblem(id('202612062359'), SPI_TIME, { priority: false })).toMatchObject({ rule: 'OUT_OF_WINDOW', message: expect.stringContaining('behind') as unknown });
    expect(endToEndIdTimeProblem(id('202612080002'), SPI_TIME, { priority: true })).toMatchObject({ rule: 'OUT_OF_WINDOW', message: expect.stringContaining('ahead of') as unknown });
    expect(endToEndIdTimeProblem(id('202613011200'), SPI_TIME, { priority: false })).toMatchObject({ rule: 'NO_TIME' });
  });

  it('finds nothing wrong with an id generated now', () => {
    const now = new Date();
    expect(endToEndIdTimeProblem(generateEndToEndId('99999004', { at: now }), now, { priority: true })).toBeUndefined();
  });
});
