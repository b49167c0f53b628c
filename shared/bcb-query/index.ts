export { CAMT_060, CAMT_054, buildEntryQuery, readEntryQuery, buildEntryReport, readEntryReport, judgeEntryReport } from './account-report.ts';
export type { EntryQuery, EntryReport, ReportedEntry, EntryVerdict, EntryReportInput } from './account-report.ts';
export { IcomOutcomeQuery } from './outcome-query.ts';
export type { BcbOutcomeQuery, OutcomeQuestion, OutcomeAnswer, IcomOutcomeQueryOptions } from './outcome-query.ts';
