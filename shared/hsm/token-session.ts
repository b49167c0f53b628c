import { createPublicKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type * as Pkcs11js from 'pkcs11js';
import { CKR, ckrOf, hsmError, toHsmError } from './hsm-errors.ts';
import { loadPkcs11js } from './pkcs11-port.ts';
import type { KeyRef } from './pkcs11-port.ts';

/** Where a token is and how to open it. */
export interface TokenSessionOptions {
  /** PKCS#11 library path. */
  modulePath: string;
  /** Token label. */
  tokenLabel: string;
  /** Crypto user PIN (never logged, never in an error). */
  pin: string;
}

/** Options of {@link initToken}. */
export interface InitTokenOptions {
  /** PKCS#11 library path. */
  modulePath: string;
  /** Label of the token to create (at most 32 characters). */
  tokenLabel: string;
  /** Crypto user PIN to set. */
  pin: string;
  /** Security officer PIN to set. */
  soPin: string;
}

/** The result of {@link initToken}. */
export interface InitTokenResult {
  /** False when a token with the label already existed (nothing was changed). */
  created: boolean;
  /** The token's serial number. */
  serialNumber: string;
}

/** Options of {@link TokenSession.generateRsaKeyPair}. */
export interface GenerateKeyOptions {
  /** `CKA_LABEL` of both halves. */
  label: string;
  /**
   * RSA modulus size.
   * @defaultValue 2048
   */
  bits?: 2048 | 3072 | 4096;
  /**
   * `CKA_ID` of both halves.
   * @defaultValue 16 random bytes
   */
  id?: Buffer;
}

/** A key on the token and its security attributes, as `selo hsm list` shows them. */
export interface KeyListing {
  /** `CKA_CLASS`. */
  class: 'private' | 'public' | 'other';
  /** `CKA_LABEL`. */
  label: string;
  /** `CKA_ID`, hex. */
  id: string;
  /** `CKA_KEY_TYPE`. */
  keyType: 'RSA' | 'EC' | 'other';
  /** Modulus length for RSA keys. */
  bits?: number;
  /** Security attributes (`CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, …); absent ones are omitted. */
  attributes: Partial<Record<SecurityAttribute, boolean>>;
}

/** Boolean attributes reported by {@link TokenSession.listKeys}. */
export type SecurityAttribute =
  | 'token' | 'private' | 'sensitive' | 'alwaysSensitive' | 'extractable' | 'neverExtractable'
  | 'sign' | 'verify' | 'decrypt' | 'encrypt' | 'wrap' | 'unwrap' | 'local' | 'modifiable';

function pkcs11(): typeof Pkcs11js {
  return loadPkcs11js();
}

function withModule<T>(modulePath: string, run: (p: Pkcs11js.PKCS11, lib: typeof Pkcs11js) => T): T {
  const lib = pkcs11();
  const p = new lib.PKCS11();
  try {
    p.load(modulePath);
  } catch (error) {
    throw toHsmError(error, `HSM load ${modulePath}`);
  }
  let owns = true;
  try {
    p.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (ckrOf(error) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw toHsmError(error, 'HSM initialise');
    owns = false;
  }
  try {
    return run(p, lib);
  } finally {
    if (owns) {
      try {
        p.C_Finalize();
      } catch {
        // Finalising is best effort for a short-lived tool session.
      }
    }
  }
}

function findTokenSlot(p: Pkcs11js.PKCS11, lib: typeof Pkcs11js, label: string): { slot: Buffer; info: Pkcs11js.TokenInfo } | undefined {
  for (const slot of p.C_GetSlotList(true)) {
    const info = p.C_GetTokenInfo(slot);
    if ((info.flags & lib.CKF_TOKEN_INITIALIZED) !== 0 && info.label.trimEnd() === label) return { slot, info };
  }
  return undefined;
}

/**
 * Creates a token (SoftHSM: in its first free slot) with the given label, security officer
 * PIN and user PIN. Idempotent: a token with that label is left as it is.
 */
export function initToken(options: InitTokenOptions): InitTokenResult {
  if (options.tokenLabel === '' || options.tokenLabel.length > 32) {
    throw hsmError('HSM_ERROR', false, `token label must be 1 to 32 characters, got ${JSON.stringify(options.tokenLabel)}`, { recovery: 'none' });
  }
  return withModule(options.modulePath, (p, lib) => {
    try {
      const existing = findTokenSlot(p, lib, options.tokenLabel);
      if (existing !== undefined) return { created: false, serialNumber: existing.info.serialNumber.trimEnd() };
      const free = p.C_GetSlotList(true).find((slot) => (p.C_GetTokenInfo(slot).flags & lib.CKF_TOKEN_INITIALIZED) === 0);
      if (free === undefined) throw hsmError('HSM_TOKEN_NOT_PRESENT', false, 'no free slot to initialise a token in', { recovery: 'none' });
      p.C_InitToken(free, options.soPin, options.tokenLabel.padEnd(32, ' '));
      // SoftHSM moves a freshly initialised token to a new slot id; look it up again.
      const created = findTokenSlot(p, lib, options.tokenLabel);
      if (created === undefined) throw hsmError('HSM_TOKEN_NOT_PRESENT', false, `token ${JSON.stringify(options.tokenLabel)} not found after initialisation`, { recovery: 'none' });
      const session = p.C_OpenSession(created.slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
      try {
        p.C_Login(session, lib.CKU_SO, options.soPin);
        p.C_InitPIN(session, options.pin);
        p.C_Logout(session);
      } finally {
        p.C_CloseSession(session);
      }
      return { created: true, serialNumber: created.info.serialNumber.trimEnd() };
    } catch (error) {
      throw toHsmError(error, `HSM init token ${JSON.stringify(options.tokenLabel)}`);
    }
  });
}

function bool(value: unknown): boolean | undefined {
  return Buffer.isBuffer(value) && value.length > 0 ? value[0] !== 0 : undefined;
}

function ulong(value: unknown): number | undefined {
  return Buffer.isBuffer(value) && value.length >= 4 ? value.readUInt32LE(0) : undefined;
}

/**
 * A logged-in session on one token, for tools (`selo hsm …`, `selo pki init`) rather than the
 * signing path: synchronous PKCS#11 calls, one session, closed with {@link TokenSession.close}.
 * Workers sign through the {@link HsmPool}.
 */
export class TokenSession {
  readonly #p: Pkcs11js.PKCS11;
  readonly #lib: typeof Pkcs11js;
  readonly #session: Buffer;
  readonly #owns: boolean;
  readonly #tokenLabel: string;
  #closed = false;

  private constructor(p: Pkcs11js.PKCS11, lib: typeof Pkcs11js, session: Buffer, owns: boolean, tokenLabel: string) {
    this.#p = p;
    this.#lib = lib;
    this.#session = session;
    this.#owns = owns;
    this.#tokenLabel = tokenLabel;
  }

  /** Opens a read-write session on the token and logs in as the crypto user. */
  static open(options: TokenSessionOptions): TokenSession {
    const lib = pkcs11();
    const p = new lib.PKCS11();
    try {
      p.load(options.modulePath);
    } catch (error) {
      throw toHsmError(error, `HSM load ${options.modulePath}`);
    }
    let owns = true;
    try {
      p.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
    } catch (error) {
      if (ckrOf(error) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw toHsmError(error, 'HSM initialise');
      owns = false;
    }
    try {
      const found = findTokenSlot(p, lib, options.tokenLabel);
      if (found === undefined) {
        throw hsmError('HSM_TOKEN_NOT_PRESENT', false, `no initialised token labelled ${JSON.stringify(options.tokenLabel)} (run selo hsm init)`, { recovery: 'none' });
      }
      const session = p.C_OpenSession(found.slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
      try {
        p.C_Login(session, lib.CKU_USER, options.pin);
      } catch (error) {
        if (ckrOf(error) !== CKR.USER_ALREADY_LOGGED_IN) {
          p.C_CloseSession(session);
          throw error;
        }
      }
      return new TokenSession(p, lib, session, owns, options.tokenLabel);
    } catch (error) {
      if (owns) {
        try {
          p.C_Finalize();
        } catch {
          // Best effort.
        }
      }
      throw toHsmError(error, `HSM open token ${JSON.stringify(options.tokenLabel)}`);
    }
  }

  #find(template: Pkcs11js.Template): Buffer[] {
    this.#p.C_FindObjectsInit(this.#session, template);
    try {
      return this.#p.C_FindObjects(this.#session, 1000);
    } finally {
      this.#p.C_FindObjectsFinal(this.#session);
    }
  }

  #keyTemplate(objectClass: number, ref: KeyRef): Pkcs11js.Template {
    const template: Pkcs11js.Template = [{ type: this.#lib.CKA_CLASS, value: objectClass }];
    if (ref.label !== undefined) template.push({ type: this.#lib.CKA_LABEL, value: ref.label });
    if (ref.id !== undefined) template.push({ type: this.#lib.CKA_ID, value: ref.id });
    return template;
  }

  #one(objectClass: number, ref: KeyRef, what: string): Buffer {
    const handles = this.#find(this.#keyTemplate(objectClass, ref));
    const [first] = handles;
    const name = ref.label !== undefined ? `label ${JSON.stringify(ref.label)}` : `id ${ref.id?.toString('hex') ?? '?'}`;
    if (first === undefined) {
      throw hsmError('HSM_KEY_NOT_FOUND', false, `HSM key not found: no ${what} with ${name} on token ${JSON.stringify(this.#tokenLabel)}`, { recovery: 'none', ...(ref.label === undefined ? {} : { keyLabel: ref.label }) });
    }
    if (handles.length > 1) throw hsmError('HSM_KEY_AMBIGUOUS', false, `HSM key ambiguous: ${handles.length} ${what}s with ${name}`, { recovery: 'none' });
    return first;
  }

  /**
   * Generates an RSA key pair inside the token. The private half is a token object that is
   * private, sensitive, never extractable and may only sign; the public half may only verify.
   * Refuses a label already in use.
   */
  generateRsaKeyPair(options: GenerateKeyOptions): { label: string; id: Buffer } {
    const lib = this.#lib;
    const bits = options.bits ?? 2048;
    if (![2048, 3072, 4096].includes(bits)) throw hsmError('HSM_ERROR', false, `key size must be 2048, 3072 or 4096, got ${String(bits)}`, { recovery: 'none' });
    if (options.label === '') throw hsmError('HSM_KEY_REF_INVALID', false, 'key label must not be empty', { recovery: 'none' });
    const id = options.id ?? randomBytes(16);
    try {
      if (this.#find([{ type: lib.CKA_LABEL, value: options.label }]).length > 0) {
        throw hsmError('HSM_KEY_EXISTS', false, `a key labelled ${JSON.stringify(options.label)} already exists on token ${JSON.stringify(this.#tokenLabel)}`, { recovery: 'none' });
      }
      this.#p.C_GenerateKeyPair(
        this.#session,
        { mechanism: lib.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: lib.CKA_TOKEN, value: true },
          { type: lib.CKA_PRIVATE, value: false },
          { type: lib.CKA_LABEL, value: options.label },
          { type: lib.CKA_ID, value: id },
          { type: lib.CKA_MODULUS_BITS, value: bits },
          { type: lib.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
          { type: lib.CKA_VERIFY, value: true },
          { type: lib.CKA_ENCRYPT, value: false },
          { type: lib.CKA_WRAP, value: false },
        ],
        [
          { type: lib.CKA_TOKEN, value: true },
          { type: lib.CKA_PRIVATE, value: true },
          { type: lib.CKA_SENSITIVE, value: true },
          { type: lib.CKA_EXTRACTABLE, value: false },
          { type: lib.CKA_LABEL, value: options.label },
          { type: lib.CKA_ID, value: id },
          { type: lib.CKA_SIGN, value: true },
          { type: lib.CKA_DECRYPT, value: false },
          { type: lib.CKA_UNWRAP, value: false },
        ],
      );
      return { label: options.label, id };
    } catch (error) {
      throw toHsmError(error, `HSM keygen ${JSON.stringify(options.label)}`);
    }
  }

  /** Every key on the token with its security attributes. */
  listKeys(): KeyListing[] {
    const lib = this.#lib;
    const flags: [SecurityAttribute, number][] = [
      ['token', lib.CKA_TOKEN], ['private', lib.CKA_PRIVATE], ['sensitive', lib.CKA_SENSITIVE],
      ['alwaysSensitive', lib.CKA_ALWAYS_SENSITIVE], ['extractable', lib.CKA_EXTRACTABLE],
      ['neverExtractable', lib.CKA_NEVER_EXTRACTABLE], ['sign', lib.CKA_SIGN], ['verify', lib.CKA_VERIFY],
      ['decrypt', lib.CKA_DECRYPT], ['encrypt', lib.CKA_ENCRYPT], ['wrap', lib.CKA_WRAP], ['unwrap', lib.CKA_UNWRAP],
      ['local', lib.CKA_LOCAL], ['modifiable', lib.CKA_MODIFIABLE],
    ];
    try {
      const handles = [...this.#find([{ type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY }]), ...this.#find([{ type: lib.CKA_CLASS, value: lib.CKO_PUBLIC_KEY }])];
      return handles.map((handle) => {
        const read = (type: number): unknown => {
          try {
            return this.#p.C_GetAttributeValue(this.#session, handle, [{ type }])[0]?.value;
          } catch {
            // Attribute absent for this class or sensitive: report it as absent.
            return undefined;
          }
        };
        const objectClass = ulong(read(lib.CKA_CLASS));
        const keyType = ulong(read(lib.CKA_KEY_TYPE));
        const modulus = read(lib.CKA_MODULUS);
        const label = read(lib.CKA_LABEL);
        const id = read(lib.CKA_ID);
        const attributes: Partial<Record<SecurityAttribute, boolean>> = {};
        for (const [name, type] of flags) {
          const value = bool(read(type));
          if (value !== undefined) attributes[name] = value;
        }
        const listing: KeyListing = {
          class: objectClass === lib.CKO_PRIVATE_KEY ? 'private' : objectClass === lib.CKO_PUBLIC_KEY ? 'public' : 'other',
          label: Buffer.isBuffer(label) ? label.toString('utf8') : '',
          id: Buffer.isBuffer(id) ? id.toString('hex') : '',
          keyType: keyType === lib.CKK_RSA ? 'RSA' : keyType === lib.CKK_EC ? 'EC' : 'other',
          attributes,
        };
        if (Buffer.isBuffer(modulus)) listing.bits = modulus.length * 8;
        return listing;
      });
    } catch (error) {
      throw toHsmError(error, 'HSM list keys');
    }
  }

  /** The public key of an RSA key pair, read from the token (from the public half, or the private half's public attributes). */
  publicKey(ref: KeyRef): KeyObject {
    const lib = this.#lib;
    try {
      let handle: Buffer;
      try {
        handle = this.#one(lib.CKO_PUBLIC_KEY, ref, 'public key');
      } catch {
        handle = this.#one(lib.CKO_PRIVATE_KEY, ref, 'key');
      }
      const [modulus, exponent] = this.#p.C_GetAttributeValue(this.#session, handle, [{ type: lib.CKA_MODULUS }, { type: lib.CKA_PUBLIC_EXPONENT }]);
      if (!Buffer.isBuffer(modulus?.value) || !Buffer.isBuffer(exponent?.value)) throw hsmError('HSM_KEY_UNUSABLE', false, 'the key has no RSA modulus', { recovery: 'none' });
      return createPublicKey({ key: { kty: 'RSA', n: modulus.value.toString('base64url'), e: exponent.value.toString('base64url') }, format: 'jwk' });
    } catch (error) {
      throw toHsmError(error, 'HSM read public key');
    }
  }

  /**
   * Reads raw attributes of the private key `ref`; a sensitive attribute fails with
   * `HSM_ATTRIBUTE_SENSITIVE`. For tests and audits of key protection.
   */
  readPrivateKeyAttribute(ref: KeyRef, type: number): Buffer {
    try {
      const handle = this.#one(this.#lib.CKO_PRIVATE_KEY, ref, 'private key');
      const value = this.#p.C_GetAttributeValue(this.#session, handle, [{ type }])[0]?.value;
      return Buffer.isBuffer(value) ? value : Buffer.alloc(0);
    } catch (error) {
      throw toHsmError(error, 'HSM read attribute');
    }
  }

  /** Signs `data` with `CKM_SHA256_RSA_PKCS` inside the token (off the event loop). */
  async sign(ref: KeyRef, data: Buffer): Promise<Buffer> {
    try {
      const key = this.#one(this.#lib.CKO_PRIVATE_KEY, ref, 'private key');
      this.#p.C_SignInit(this.#session, { mechanism: this.#lib.CKM_SHA256_RSA_PKCS }, key);
      return await this.#p.C_SignAsync(this.#session, data, Buffer.alloc(512));
    } catch (error) {
      throw toHsmError(error, 'HSM sign');
    }
  }

  /** Logs out, closes the session and finalises the module if this session initialised it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const step of [() => this.#p.C_Logout(this.#session), () => this.#p.C_CloseSession(this.#session), () => { if (this.#owns) this.#p.C_Finalize(); }]) {
      try {
        step();
      } catch {
        // Every step runs even if one fails (HOUSE_STYLE rule 7).
      }
    }
  }
}
