export { S3ClaimCheckStore, CLAIM_CHECK_THRESHOLD_BYTES } from './claim-check-store.ts';
export type { ClaimCheckStore, ClaimCheckReference } from './claim-check-store.ts';
