export { CAMT_060, CAMT_054, buildEntryQuery, readEntryQuery, buildEntryReport, readEntryReport, judgeEntryReport } from './account-report.ts';
export type { EntryQuery, EntryReport, ReportedEntry, EntryVerdict, EntryReportInput } from './account-report.ts';
export { OUTCOME_QUERY_REQUESTED, decodeOutcomeQueryRequested, outcomeQueryDetail } from './query-request.ts';
export type { OutcomeQueryRequestedData } from './query-request.ts';
export { EntryReportUnmatchedError, applyEntryReport } from './entry-report-match.ts';
export type { EntryReportDeps, EntryReportApplied } from './entry-report-match.ts';
