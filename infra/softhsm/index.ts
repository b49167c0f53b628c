export { REPO_ROOT, PROJECT_SOFTHSM_DIR, writeSoftHsmConf, useProjectSoftHsm } from './softhsm-environment.ts';
export { initDevPki, issueDevCrl, DEV_PKI_FILES, DEV_CRL_VALIDITY_DAYS } from './dev-pki.ts';
export type { DevPkiOptions, DevPkiResult, DevCrlOptions } from './dev-pki.ts';
