import type { KeyRef, Pkcs11Handle, Pkcs11Port } from '../../../shared/hsm/index.ts';

/** An error shaped like pkcs11js's Pkcs11Error. */
export class FakePkcs11Error extends Error {
  readonly code: number;
  readonly method: string;
  constructor(code: number, method: string) {
    super(`CKR 0x${code.toString(16)}`);
    this.code = code;
    this.method = method;
  }
}

interface PendingSign {
  session: string;
  resolve: (signature: Buffer) => void;
  reject: (error: Error) => void;
}

/** A scriptable in-memory PKCS#11 module for unit tests. */
export class FakePkcs11Port implements Pkcs11Port {
  pin = '1234';
  keys = new Map<string, Buffer>([['signing', Buffer.from([9])]]);
  loadError: Error | undefined;
  initializeError: FakePkcs11Error | undefined;
  /** Next sign calls fail with these codes, one each. */
  signFailures: number[] = [];
  /** When true, sign resolves immediately; otherwise it waits for {@link complete}. */
  autoComplete = true;
  openSessions = new Set<string>();
  loggedIn = false;
  initialized = false;
  nextSession = 1;
  logins = 0;
  opens = 0;
  initializations = 0;
  finalizations = 0;
  maxActivePerSession = 0;
  readonly active = new Map<string, number>();
  readonly pending: PendingSign[] = [];

  load(): void {
    if (this.loadError !== undefined) throw this.loadError;
  }
  initialize(): 'initialized' {
    if (this.initializeError !== undefined) throw this.initializeError;
    this.initialized = true;
    this.initializations += 1;
    return 'initialized';
  }
  finalize(): void {
    this.initialized = false;
    this.finalizations += 1;
    this.openSessions.clear();
    this.loggedIn = false;
  }
  unload(): void {}
  findSlotByTokenLabel(): Pkcs11Handle {
    return Buffer.from([1]);
  }
  openSession(): Pkcs11Handle {
    if (!this.initialized) throw new FakePkcs11Error(0x190, 'C_OpenSession');
    const id = String(this.nextSession++);
    this.openSessions.add(id);
    this.opens += 1;
    return Buffer.from(id);
  }
  closeSession(session: Pkcs11Handle): void {
    if (!this.openSessions.delete(session.toString())) throw new FakePkcs11Error(0xb3, 'C_CloseSession');
    if (this.openSessions.size === 0) this.loggedIn = false;
  }
  login(session: Pkcs11Handle, pin: string): void {
    if (!this.openSessions.has(session.toString())) throw new FakePkcs11Error(0xb3, 'C_Login');
    if (this.loggedIn) throw new FakePkcs11Error(0x100, 'C_Login');
    if (pin !== this.pin) throw new FakePkcs11Error(0xa0, 'C_Login');
    this.loggedIn = true;
    this.logins += 1;
  }
  findPrivateKeys(session: Pkcs11Handle, ref: KeyRef): Pkcs11Handle[] {
    if (!this.openSessions.has(session.toString())) throw new FakePkcs11Error(0xb3, 'C_FindObjectsInit');
    const key = ref.label === undefined ? undefined : this.keys.get(ref.label);
    return key === undefined ? [] : [key];
  }
  signInit(session: Pkcs11Handle): void {
    const id = session.toString();
    if (!this.openSessions.has(id)) throw new FakePkcs11Error(0xb3, 'C_SignInit');
    if (!this.loggedIn) throw new FakePkcs11Error(0x101, 'C_SignInit');
    const count = (this.active.get(id) ?? 0) + 1;
    this.active.set(id, count);
    this.maxActivePerSession = Math.max(this.maxActivePerSession, count);
  }
  sign(session: Pkcs11Handle, data: Buffer): Promise<Buffer> {
    const id = session.toString();
    const done = (): void => {
      this.active.set(id, (this.active.get(id) ?? 1) - 1);
    };
    const failure = this.signFailures.shift();
    if (failure !== undefined) {
      done();
      return Promise.reject(new FakePkcs11Error(failure, 'C_Sign'));
    }
    if (this.autoComplete) {
      done();
      return Promise.resolve(Buffer.concat([Buffer.from('sig:'), data]));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({
        session: id,
        resolve: (signature) => { done(); resolve(signature); },
        reject: (error) => { done(); reject(error); },
      });
    });
  }
  /** Completes the oldest pending sign. */
  complete(): void {
    const next = this.pending.shift();
    next?.resolve(Buffer.from('sig'));
  }
}
