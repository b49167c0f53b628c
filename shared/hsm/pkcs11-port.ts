import { createRequire } from 'node:module';
import type * as Pkcs11js from 'pkcs11js';

/** An opaque PKCS#11 handle (slot, session or object) as pkcs11js represents it. */
export type Pkcs11Handle = Buffer;

/** How to find a private key: by `CKA_LABEL`, by `CKA_ID`, or both (both must match). */
export interface KeyRef {
  /** The key's `CKA_LABEL`. */
  label?: string;
  /** The key's `CKA_ID`. */
  id?: Buffer;
}

/** The result of {@link Pkcs11Port.initialize}. */
export type InitializeResult = 'initialized' | 'already-initialized';

/**
 * The narrow slice of PKCS#11 the pool uses. The real one ({@link createPkcs11jsPort}) wraps
 * pkcs11js; unit tests pass fakes (HOUSE_STYLE rule 6). Every method throws what the module
 * throws: an error with a numeric `code` (the `CKR_*` value) and a `method` name, or a plain
 * error when the library cannot be loaded.
 */
export interface Pkcs11Port {
  /** Loads the module's shared library (dlopen). Idempotent for the same path. */
  load(modulePath: string): void;
  /** `C_Initialize` with `CKF_OS_LOCKING_OK`. */
  initialize(): InitializeResult;
  /** `C_Finalize`. */
  finalize(): void;
  /** Unloads the shared library. */
  unload(): void;
  /** The slot holding the initialised token with this label, if any. */
  findSlotByTokenLabel(label: string): Pkcs11Handle | undefined;
  /** `C_OpenSession` (serial, read-write). */
  openSession(slot: Pkcs11Handle): Pkcs11Handle;
  /** `C_CloseSession`. */
  closeSession(session: Pkcs11Handle): void;
  /** `C_Login` as the crypto user (`CKU_USER`). */
  login(session: Pkcs11Handle, pin: string): void;
  /** Handles of the private keys matching `ref`. */
  findPrivateKeys(session: Pkcs11Handle, ref: KeyRef): Pkcs11Handle[];
  /** `C_SignInit` with `CKM_SHA256_RSA_PKCS`; synchronous and cheap. */
  signInit(session: Pkcs11Handle, key: Pkcs11Handle): void;
  /** `C_Sign` on the libuv thread pool; resolves with the signature. */
  sign(session: Pkcs11Handle, data: Buffer, maxSignatureLength: number): Promise<Buffer>;
}

const require = createRequire(import.meta.url);

/** Loads the pkcs11js native binding (CommonJS) from ESM. */
export function loadPkcs11js(): typeof Pkcs11js {
  return require('pkcs11js') as typeof Pkcs11js;
}

/**
 * The real {@link Pkcs11Port}, over pkcs11js. `sign` uses `C_SignAsync`, which runs `C_Sign`
 * on a libuv worker thread so the event loop stays free (DESIGN §3: synchronous signing pins
 * it at 100 %).
 */
export function createPkcs11jsPort(): Pkcs11Port {
  const pkcs11js = loadPkcs11js();
  let module: Pkcs11js.PKCS11 | undefined;
  let loadedPath: string | undefined;
  const lib = (): Pkcs11js.PKCS11 => {
    if (module === undefined) throw new Error('PKCS#11 module not loaded');
    return module;
  };
  return {
    load(modulePath) {
      if (module !== undefined && loadedPath === modulePath) return;
      const candidate = new pkcs11js.PKCS11();
      candidate.load(modulePath);
      module = candidate;
      loadedPath = modulePath;
    },
    initialize() {
      try {
        // CKF_OS_LOCKING_OK: without it SoftHSM crashes under concurrent signing on separate
        // sessions (DESIGN §3).
        lib().C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
        return 'initialized';
      } catch (error) {
        if ((error as { code?: unknown }).code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) return 'already-initialized';
        throw error;
      }
    },
    finalize() {
      lib().C_Finalize();
    },
    unload() {
      const current = module;
      module = undefined;
      loadedPath = undefined;
      current?.close();
    },
    findSlotByTokenLabel(label) {
      const p = lib();
      for (const slot of p.C_GetSlotList(true)) {
        const info = p.C_GetTokenInfo(slot);
        // CKF_TOKEN_INITIALIZED: SoftHSM always shows one extra, uninitialised token.
        if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 && info.label.trimEnd() === label) return slot;
      }
      return undefined;
    },
    openSession(slot) {
      return lib().C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    },
    closeSession(session) {
      lib().C_CloseSession(session);
    },
    login(session, pin) {
      lib().C_Login(session, pkcs11js.CKU_USER, pin);
    },
    findPrivateKeys(session, ref) {
      const p = lib();
      const template: Pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
      if (ref.label !== undefined) template.push({ type: pkcs11js.CKA_LABEL, value: ref.label });
      if (ref.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: ref.id });
      p.C_FindObjectsInit(session, template);
      try {
        return p.C_FindObjects(session, 16);
      } finally {
        p.C_FindObjectsFinal(session);
      }
    },
    signInit(session, key) {
      lib().C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, key);
    },
    sign(session, data, maxSignatureLength) {
      return lib().C_SignAsync(session, data, Buffer.alloc(maxSignatureLength));
    },
  };
}
