import { describe, expect, it } from 'vitest';
import { CKR, loadPkcs11js, readHsmConfig, recoveryOf, toHsmError } from '../../../shared/hsm/index.ts';
import { EnvReader } from '../../../shared/config/index.ts';
import { FakePkcs11Error } from './fake-pkcs11-port.ts';

describe('toHsmError', () => {
  it.each([
    [CKR.SESSION_HANDLE_INVALID, 'HSM_SESSION_LOST', 'transient', 'session'],
    [CKR.SESSION_CLOSED, 'HSM_SESSION_LOST', 'transient', 'session'],
    [CKR.DEVICE_ERROR, 'HSM_DEVICE_ERROR', 'transient', 'module'],
    [CKR.DEVICE_REMOVED, 'HSM_DEVICE_ERROR', 'transient', 'module'],
    [CKR.TOKEN_NOT_PRESENT, 'HSM_TOKEN_NOT_PRESENT', 'transient', 'module'],
    [CKR.USER_NOT_LOGGED_IN, 'HSM_NOT_LOGGED_IN', 'transient', 'login'],
    [CKR.CRYPTOKI_NOT_INITIALIZED, 'HSM_UNAVAILABLE', 'transient', 'module'],
    [CKR.OPERATION_ACTIVE, 'HSM_SESSION_BUSY', 'transient', 'session'],
    [CKR.PIN_INCORRECT, 'HSM_PIN_INCORRECT', 'permanent', 'none'],
    [CKR.PIN_LOCKED, 'HSM_PIN_LOCKED', 'permanent', 'none'],
    [CKR.KEY_HANDLE_INVALID, 'HSM_KEY_NOT_FOUND', 'permanent', 'key'],
    [CKR.OBJECT_HANDLE_INVALID, 'HSM_KEY_NOT_FOUND', 'permanent', 'key'],
    [CKR.MECHANISM_INVALID, 'HSM_MECHANISM_INVALID', 'permanent', 'none'],
    [CKR.KEY_FUNCTION_NOT_PERMITTED, 'HSM_KEY_UNUSABLE', 'permanent', 'none'],
    [0x7777, 'HSM_ERROR', 'transient', 'session'],
  ])('maps CKR 0x%s to %s (%s, recovery %s)', (ckr, code, retryability, recovery) => {
    const error = toHsmError(new FakePkcs11Error(ckr, 'C_Sign'), 'HSM sign');
    expect(error).toMatchObject({ code, retryability });
    expect(recoveryOf(error)).toBe(recovery);
    expect(error.details).toMatchObject({ ckr, method: 'C_Sign' });
    expect(error.cause).toBeInstanceOf(FakePkcs11Error);
  });

  it('treats an error without a CKR value (library not loadable) as a transient unavailable module', () => {
    const error = toHsmError(new Error('/x.so: cannot open shared object file'), 'HSM start');
    expect(error).toMatchObject({ code: 'HSM_UNAVAILABLE', retryability: 'transient' });
    expect(recoveryOf(error)).toBe('module');
  });

  it('uses the same CKR values as the pkcs11js binding', () => {
    const pkcs11js = loadPkcs11js() as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(CKR)) {
      expect(pkcs11js[`CKR_${name}`], name).toBe(value);
    }
  });
});

describe('readHsmConfig', () => {
  it('applies development defaults when SELO_ENV is local', () => {
    const reader = new EnvReader({});
    const config = readHsmConfig(reader);
    reader.finish();
    expect(config).toMatchObject({ modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'selo-dev', sessions: 4, acquireTimeoutMs: 5000 });
  });

  it('requires the PIN outside local development and never quotes a malformed secret', () => {
    const reader = new EnvReader({ SELO_ENV: 'prod', SELO_HSM_SESSIONS: 'many' });
    readHsmConfig(reader);
    expect(() => reader.finish()).toThrow(/SELO_HSM_PIN is required but not set; SELO_HSM_SESSIONS must be an integer/);
  });
});
