import { PermanentError, SeloError, TransientError } from '../errors/index.ts';

/**
 * PKCS#11 return values (CK_RV) the pool reacts to. The numbers are fixed by the PKCS#11
 * standard (v2.40 §3.6, pkcs11t.h), so this module does not need the native binding.
 */
export const CKR = {
  OK: 0x0,
  HOST_MEMORY: 0x2,
  SLOT_ID_INVALID: 0x3,
  GENERAL_ERROR: 0x5,
  FUNCTION_FAILED: 0x6,
  ARGUMENTS_BAD: 0x7,
  ATTRIBUTE_SENSITIVE: 0x11,
  ATTRIBUTE_TYPE_INVALID: 0x12,
  DATA_INVALID: 0x20,
  DATA_LEN_RANGE: 0x21,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  FUNCTION_CANCELED: 0x50,
  KEY_HANDLE_INVALID: 0x60,
  KEY_SIZE_RANGE: 0x62,
  KEY_TYPE_INCONSISTENT: 0x63,
  KEY_FUNCTION_NOT_PERMITTED: 0x68,
  MECHANISM_INVALID: 0x70,
  MECHANISM_PARAM_INVALID: 0x71,
  OBJECT_HANDLE_INVALID: 0x82,
  OPERATION_ACTIVE: 0x90,
  OPERATION_NOT_INITIALIZED: 0x91,
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  USER_PIN_NOT_INITIALIZED: 0x102,
  USER_TYPE_INVALID: 0x103,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

/**
 * What the pool must do after a failure before the next attempt can succeed:
 * - `none`: nothing; the failure is about the request (bad data, wrong PIN, missing key).
 * - `session`: discard the session and open a new one.
 * - `login`: log in again (login state is per application, not per session).
 * - `key`: forget the cached key handle and look the key up again.
 * - `module`: finalize and re-initialise the PKCS#11 module (with backoff).
 */
export type HsmRecovery = 'none' | 'session' | 'login' | 'key' | 'module';

/** Stable codes of the errors the HSM layer raises. */
export type HsmErrorCode =
  | 'HSM_BUSY'
  | 'HSM_UNAVAILABLE'
  | 'HSM_POOL_CLOSED'
  | 'HSM_SESSION_LOST'
  | 'HSM_SESSION_BUSY'
  | 'HSM_SESSION_LIMIT'
  | 'HSM_NOT_LOGGED_IN'
  | 'HSM_DEVICE_ERROR'
  | 'HSM_TOKEN_NOT_PRESENT'
  | 'HSM_PIN_INCORRECT'
  | 'HSM_PIN_LOCKED'
  | 'HSM_PIN_INVALID'
  | 'HSM_KEY_NOT_FOUND'
  | 'HSM_KEY_AMBIGUOUS'
  | 'HSM_KEY_EXISTS'
  | 'HSM_KEY_REF_INVALID'
  | 'HSM_KEY_UNUSABLE'
  | 'HSM_MECHANISM_INVALID'
  | 'HSM_DATA_INVALID'
  | 'HSM_ATTRIBUTE_SENSITIVE'
  | 'HSM_ERROR';

/** Facts attached to every HSM error; never the PIN. */
export interface HsmErrorDetails {
  /** The PKCS#11 return value, when the failure came from the module. */
  ckr?: number;
  /** Its symbolic name, e.g. `CKR_PIN_INCORRECT`. */
  ckrName?: string;
  /** The PKCS#11 function that failed, e.g. `C_Sign`. */
  method?: string;
  /** What the pool does about it. */
  recovery: HsmRecovery;
  [fact: string]: unknown;
}

interface Rule {
  code: HsmErrorCode;
  transient: boolean;
  recovery: HsmRecovery;
  text: string;
}

const RULES: ReadonlyMap<number, Rule> = new Map<number, Rule>([
  [CKR.SESSION_HANDLE_INVALID, { code: 'HSM_SESSION_LOST', transient: true, recovery: 'session', text: 'the HSM session is no longer valid' }],
  [CKR.SESSION_CLOSED, { code: 'HSM_SESSION_LOST', transient: true, recovery: 'session', text: 'the HSM session was closed' }],
  [CKR.OPERATION_ACTIVE, { code: 'HSM_SESSION_BUSY', transient: true, recovery: 'session', text: 'another operation is active on the HSM session' }],
  [CKR.OPERATION_NOT_INITIALIZED, { code: 'HSM_SESSION_LOST', transient: true, recovery: 'session', text: 'the HSM session lost its operation state' }],
  [CKR.SESSION_COUNT, { code: 'HSM_SESSION_LIMIT', transient: true, recovery: 'none', text: 'the HSM refuses more sessions' }],
  [CKR.USER_NOT_LOGGED_IN, { code: 'HSM_NOT_LOGGED_IN', transient: true, recovery: 'login', text: 'the HSM login was lost' }],
  [CKR.DEVICE_ERROR, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'module', text: 'the HSM reported a device error' }],
  [CKR.DEVICE_MEMORY, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'session', text: 'the HSM is out of memory' }],
  [CKR.DEVICE_REMOVED, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'module', text: 'the HSM device was removed' }],
  [CKR.HOST_MEMORY, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'session', text: 'the PKCS#11 library is out of host memory' }],
  [CKR.GENERAL_ERROR, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'module', text: 'the PKCS#11 library reported a general error' }],
  [CKR.FUNCTION_FAILED, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'session', text: 'the HSM function failed' }],
  [CKR.FUNCTION_CANCELED, { code: 'HSM_DEVICE_ERROR', transient: true, recovery: 'session', text: 'the HSM function was cancelled' }],
  [CKR.TOKEN_NOT_PRESENT, { code: 'HSM_TOKEN_NOT_PRESENT', transient: true, recovery: 'module', text: 'the HSM token is not present' }],
  [CKR.TOKEN_NOT_RECOGNIZED, { code: 'HSM_TOKEN_NOT_PRESENT', transient: true, recovery: 'module', text: 'the HSM token is not recognised' }],
  [CKR.SLOT_ID_INVALID, { code: 'HSM_TOKEN_NOT_PRESENT', transient: true, recovery: 'module', text: 'the HSM slot disappeared' }],
  [CKR.CRYPTOKI_NOT_INITIALIZED, { code: 'HSM_UNAVAILABLE', transient: true, recovery: 'module', text: 'the PKCS#11 module is not initialised' }],
  [CKR.PIN_INCORRECT, { code: 'HSM_PIN_INCORRECT', transient: false, recovery: 'none', text: 'the HSM rejected the configured PIN as incorrect (check SELO_HSM_PIN)' }],
  [CKR.PIN_LOCKED, { code: 'HSM_PIN_LOCKED', transient: false, recovery: 'none', text: 'the HSM user PIN is locked; an officer must unlock it' }],
  [CKR.PIN_EXPIRED, { code: 'HSM_PIN_INVALID', transient: false, recovery: 'none', text: 'the HSM user PIN has expired' }],
  [CKR.PIN_INVALID, { code: 'HSM_PIN_INVALID', transient: false, recovery: 'none', text: 'the configured HSM PIN has invalid characters' }],
  [CKR.PIN_LEN_RANGE, { code: 'HSM_PIN_INVALID', transient: false, recovery: 'none', text: 'the configured HSM PIN has an invalid length' }],
  [CKR.USER_PIN_NOT_INITIALIZED, { code: 'HSM_PIN_INVALID', transient: false, recovery: 'none', text: 'the HSM token has no user PIN yet (run selo hsm init)' }],
  [CKR.KEY_HANDLE_INVALID, { code: 'HSM_KEY_NOT_FOUND', transient: false, recovery: 'key', text: 'the HSM key handle is invalid' }],
  [CKR.OBJECT_HANDLE_INVALID, { code: 'HSM_KEY_NOT_FOUND', transient: false, recovery: 'key', text: 'the HSM object handle is invalid' }],
  [CKR.KEY_TYPE_INCONSISTENT, { code: 'HSM_KEY_UNUSABLE', transient: false, recovery: 'none', text: 'the HSM key type does not fit the mechanism' }],
  [CKR.KEY_FUNCTION_NOT_PERMITTED, { code: 'HSM_KEY_UNUSABLE', transient: false, recovery: 'none', text: 'the HSM key may not be used for signing' }],
  [CKR.KEY_SIZE_RANGE, { code: 'HSM_KEY_UNUSABLE', transient: false, recovery: 'none', text: 'the HSM key size is out of range' }],
  [CKR.MECHANISM_INVALID, { code: 'HSM_MECHANISM_INVALID', transient: false, recovery: 'none', text: 'the HSM does not support the signing mechanism' }],
  [CKR.MECHANISM_PARAM_INVALID, { code: 'HSM_MECHANISM_INVALID', transient: false, recovery: 'none', text: 'the HSM rejected the mechanism parameters' }],
  [CKR.DATA_INVALID, { code: 'HSM_DATA_INVALID', transient: false, recovery: 'none', text: 'the HSM rejected the data to sign' }],
  [CKR.DATA_LEN_RANGE, { code: 'HSM_DATA_INVALID', transient: false, recovery: 'none', text: 'the data to sign has an invalid length' }],
  [CKR.ARGUMENTS_BAD, { code: 'HSM_ERROR', transient: false, recovery: 'none', text: 'the PKCS#11 call had bad arguments' }],
  [CKR.ATTRIBUTE_SENSITIVE, { code: 'HSM_ATTRIBUTE_SENSITIVE', transient: false, recovery: 'none', text: 'the HSM refuses to reveal a sensitive attribute' }],
]);

const CKR_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(CKR).map(([name, value]) => [value, `CKR_${name}`]));

/** The PKCS#11 return value carried by a pkcs11js `Pkcs11Error` (or a fake), if any. */
export function ckrOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

function methodOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'method' in error) {
    const method = error.method;
    if (typeof method === 'string' && method !== '') return method;
  }
  return undefined;
}

/** An error raised by the HSM layer, with the pool's recovery decision in `details.recovery`. */
export type HsmError = SeloError & { readonly details: Readonly<HsmErrorDetails> };

/** Creates an {@link HsmError}; `message` must not contain the PIN. */
export function hsmError(code: HsmErrorCode, transient: boolean, message: string, details: HsmErrorDetails, cause?: unknown): HsmError {
  const options = { details, ...(cause === undefined ? {} : { cause }) };
  return (transient ? new TransientError(code, message, options) : new PermanentError(code, message, options)) as HsmError;
}

/** The recovery the pool must run for an error made by {@link toHsmError}. */
export function recoveryOf(error: unknown): HsmRecovery {
  if (error instanceof SeloError) {
    const recovery = error.details['recovery'];
    if (recovery === 'none' || recovery === 'session' || recovery === 'login' || recovery === 'key' || recovery === 'module') return recovery;
  }
  return 'none';
}

/**
 * Maps anything a PKCS#11 call threw to a classified {@link HsmError} (HOUSE_STYLE rule 2).
 *
 * Known `CKR_*` values get a stable code; an unknown `CKR_*` is transient (`HSM_ERROR`) and
 * recycles the session; an error without a `CKR_*` value (the library could not be loaded,
 * the binding failed) means the module is unavailable and is re-initialised with backoff.
 * SeloErrors pass through unchanged. The original error is kept as `cause`; its message
 * never contains the PIN because pkcs11js reports only the return value's name.
 */
export function toHsmError(error: unknown, context: string): HsmError {
  if (error instanceof SeloError) return error as HsmError;
  const ckr = ckrOf(error);
  const method = methodOf(error);
  if (ckr === undefined) {
    const reason = error instanceof Error ? error.message : String(error);
    return hsmError('HSM_UNAVAILABLE', true, `${context}: the PKCS#11 module is unavailable (${reason})`, { recovery: 'module', ...(method === undefined ? {} : { method }) }, error);
  }
  const ckrName = CKR_NAMES.get(ckr) ?? `CKR_0x${ckr.toString(16)}`;
  const details: HsmErrorDetails = { ckr, ckrName, recovery: 'session', ...(method === undefined ? {} : { method }) };
  const rule = RULES.get(ckr);
  if (rule === undefined) {
    return hsmError('HSM_ERROR', true, `${context}: unexpected PKCS#11 result ${ckrName}`, details, error);
  }
  return hsmError(rule.code, rule.transient, `${context}: ${rule.text} (${ckrName})`, { ...details, recovery: rule.recovery }, error);
}
