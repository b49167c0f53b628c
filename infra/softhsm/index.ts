export { REPO_ROOT, PROJECT_SOFTHSM_DIR, writeSoftHsmConf, useProjectSoftHsm } from './softhsm-environment.ts';
export { initDevPki, DEV_PKI_FILES } from './dev-pki.ts';
export type { DevPkiOptions, DevPkiResult } from './dev-pki.ts';
