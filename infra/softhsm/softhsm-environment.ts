import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above this file). */
export const REPO_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the project-local SoftHSM lives: `<repo>/.selo/softhsm` (gitignored). */
export const PROJECT_SOFTHSM_DIR: string = join(REPO_ROOT, '.selo', 'softhsm');

/**
 * Writes a `softhsm2.conf` in `dir` whose token directory is `dir/tokens` (both created when
 * missing; an existing conf is left alone) and returns the conf's path.
 */
export function writeSoftHsmConf(dir: string): string {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  if (!existsSync(conf)) {
    writeFileSync(conf, [
      '# Project-local SoftHSM for selo (written by infra/softhsm); see softhsm2.conf(5).',
      `directories.tokendir = ${tokens}`,
      'objectstore.backend = file',
      'log.level = ERROR',
      'slots.removable = false',
      'slots.mechanisms = ALL',
      'library.reset_on_fork = false',
      '',
    ].join('\n'), { mode: 0o600 });
  }
  return conf;
}

/**
 * Points SoftHSM at the project-local configuration unless `SOFTHSM2_CONF` is already set
 * (an operator's choice wins). Must run before the PKCS#11 module is initialised in this
 * process, because SoftHSM reads the variable in `C_Initialize`. Returns the conf in use.
 */
export function useProjectSoftHsm(env: NodeJS.ProcessEnv = process.env, dir: string = PROJECT_SOFTHSM_DIR): string {
  const current = env['SOFTHSM2_CONF'];
  if (current !== undefined && current !== '') return current;
  const conf = writeSoftHsmConf(dir);
  env['SOFTHSM2_CONF'] = conf;
  return conf;
}
