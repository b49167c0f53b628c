import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The SoftHSM token and development PKI `selo up` made sure of. */
export interface LocalHsm {
  softHsmConf: string;
  tokenLabel: string;
  pkiDir: string;
  created: boolean;
}

/**
 * Points SoftHSM at the project-local token (unless SOFTHSM2_CONF is set), creates the token and
 * the development PKI when they are missing, and says where they are.
 */
export async function prepareLocalHsm(pkiDir: string, env: Readonly<Record<string, string | undefined>>): Promise<LocalHsm> {
  const { EnvReader } = await import('../../shared/config/index.ts');
  const { initToken, readHsmConfig } = await import('../../shared/hsm/index.ts');
  const { DEV_PKI_FILES, initDevPki, useProjectSoftHsm } = await import('../softhsm/index.ts');
  const softHsmConf = useProjectSoftHsm(process.env);
  const reader = new EnvReader(env);
  const hsm = readHsmConfig(reader);
  reader.finish();
  if (existsSync(join(pkiDir, DEV_PKI_FILES.manifest))) return { softHsmConf, tokenLabel: hsm.tokenLabel, pkiDir, created: false };
  if (hsm.soPin !== undefined) initToken({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, soPin: hsm.soPin });
  await initDevPki({ dir: pkiDir, modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, signingKeyLabel: hsm.signingKeyLabel });
  return { softHsmConf, tokenLabel: hsm.tokenLabel, pkiDir, created: true };
}

/** `.selo/pki` in the repository: where `selo up` and `selo demo` keep the development PKI. */
export async function defaultPkiDir(): Promise<string> {
  const { REPO_ROOT } = await import('../softhsm/index.ts');
  return join(REPO_ROOT, '.selo', 'pki');
}
