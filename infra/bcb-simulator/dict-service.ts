import { randomBytes, randomUUID } from 'node:crypto';
import { DictBodyError, buildDictBody, buildDictProblem, parseDictBody } from '../../shared/dict/index.ts';
import type { DictObject, DictProblem } from '../../shared/dict/index.ts';
import { XmlSignatureError, signDict, verifyDict } from '../../shared/xmldsig/index.ts';
import type { SigningKey, TrustStore } from '../../shared/xmldsig/index.ts';
import { corruptSignature } from './faults.ts';
import type { FaultController } from './faults.ts';
import { CLAIMABLE_KEY_TYPES, CLAIM_REASON_RULES, CLAIM_TRANSITIONS, ClaimRuleViolation, decideClaimOperation } from './claim-rules.ts';
import type { ClaimOperation, ClaimRole, ClaimStatus, ClaimType } from './claim-rules.ts';
import { TokenBuckets } from './token-bucket.ts';
import type { TokenBucketPolicy } from './token-bucket.ts';

/** A DICT entry as the simulator stores it. */
export interface DictEntry {
  readonly key: string;
  /** The `Entry` element's value (Key, KeyType, Account, Owner, dates). */
  entry: DictObject;
  /** ISPB of the participant holding it (`Account/Participant`). */
  participant: string;
}

/** A claim as the simulator stores it. */
export interface DictClaim {
  readonly id: string;
  readonly key: string;
  readonly claimer: string;
  readonly donor: string;
  readonly type: ClaimType;
  /** When the claim was created (ISO 8601); `OpenClaimCreationDate` of the entry. */
  readonly createdAt: string;
  status: ClaimStatus;
  /** The `Claim` element's value. */
  claim: DictObject;
  /** The donor's entry, removed from the directory when the donor confirmed. */
  donorEntry: DictObject | undefined;
}

/** An answer of the DICT service. */
export interface DictAnswer {
  readonly status: number;
  readonly contentType: 'application/xml' | 'application/problem+xml';
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Dependencies of {@link DictService}. */
export interface DictServiceDeps {
  readonly key: SigningKey;
  readonly trustStore: TrustStore;
  readonly faults: FaultController;
  readonly entryReadPolicy: TokenBucketPolicy;
  readonly writePolicy: TokenBucketPolicy;
  /** Resolution period of a claim (`ResolutionPeriodEnd` = creation + this), ms. */
  readonly claimResolutionPeriodMs: number;
  /** Completion period of an ownership claim (`CompletionPeriodEnd` = creation + this), ms. */
  readonly claimCompletionPeriodMs: number;
  /** The clock. @defaultValue `() => new Date()` */
  readonly now?: () => Date;
}

/** One request to the DICT service. */
export interface DictRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Request headers, names in lower case (as node:http gives them). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  /** ISPB of the caller's client certificate. */
  readonly caller: string;
}

const ERROR_BASE = 'https://dict.pi.rsfn.net.br/api/v2/error/';

/** A DICT error answered as a signed `application/problem+xml`. */
class DictError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, detail: string) {
    super(detail);
    this.status = status;
    this.type = type;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function objectAt(value: DictObject, property: string): DictObject {
  const v = value[property];
  return typeof v === 'object' && !Array.isArray(v) ? v : {};
}

const REQUEST_SCHEMAS: Readonly<Record<string, string>> = {
  createEntry: 'CreateEntryRequest',
  updateEntry: 'UpdateEntryRequest',
  deleteEntry: 'DeleteEntryRequest',
  createClaim: 'CreateClaimRequest',
  acknowledge: 'AcknowledgeClaimRequest',
  confirm: 'ConfirmClaimRequest',
  cancel: 'CancelClaimRequest',
  complete: 'CompleteClaimRequest',
};

/** Operations whose request must carry `PI-RequestingParticipant` (DICT API 2.12.1: getEntry, getClaim). */
const REQUESTING_PARTICIPANT_OPERATIONS = new Set(['getEntry', 'getClaim']);
const REQUESTING_PARTICIPANT = /^[a-z0-9]{8}$/i;
/**
 * The other header parameters of `GET /entries/{Key}` (getEntry) that the DICT OpenAPI 2.12.1
 * marks `required: true`, with the OpenAPI's pattern (`PI-EndToEndId` has none).
 */
const GET_ENTRY_HEADERS: Readonly<Record<string, RegExp | undefined>> = {
  'PI-PayerId': /^([0-9]{11}|[0-9]{14})$/,
  'PI-EndToEndId': undefined,
};

/** Reasons an entry update may give (updateEntry, "Restrições"): EVP keys not USER_REQUESTED. */
const UPDATE_REASONS = ['USER_REQUESTED', 'BRANCH_TRANSFER', 'RECONCILIATION', 'RFB_VALIDATION'];
const EVP_UPDATE_REASONS = ['BRANCH_TRANSFER', 'RECONCILIATION', 'RFB_VALIDATION'];

/**
 * The simulated DICT API v2: entries (create, get, update, delete) and claims (create, list,
 * get, acknowledge, confirm, cancel, complete) with the claim state machine and its periods
 * ({@link decideClaimOperation}); write requests must be signed in the DICT profile by a
 * certificate bound to the caller's ISPB (else a signed 400 `RequestSignatureInvalid`); reads
 * that the OpenAPI gives a `PI-RequestingParticipant` header need it, equal to the caller's
 * ISPB (400 `BadRequest` when missing or malformed, 403 `Forbidden` when another); getEntry
 * needs `PI-PayerId` and `PI-EndToEndId` and listClaims the `Participant` query parameter (400
 * `BadRequest` without); a write may be made to answer 409 `ResourceConflict`
 * ({@link DictService.conflictNextWrites}); every
 * answer, errors included, is signed; `RequestId` makes a repeated write answer the same; token
 * buckets answer 429 `RateLimited`.
 */
export class DictService {
  private readonly deps: DictServiceDeps;
  private readonly now: () => Date;
  /** Entries by key. */
  readonly entries = new Map<string, DictEntry>();
  /** Claims by id. */
  readonly claims = new Map<string, DictClaim>();
  /** Claims neither completed nor cancelled, by key (a key has at most one). */
  private readonly openClaims = new Map<string, string>();
  private readonly idempotent = new Map<string, { fingerprint: string; answer: DictAnswer }>();
  private readonly readBuckets: TokenBuckets;
  private readonly writeBuckets: TokenBuckets;
  private conflictsLeft = 0;
  private conflictsGiven = 0;

  constructor(deps: DictServiceDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.readBuckets = new TokenBuckets(deps.entryReadPolicy);
    this.writeBuckets = new TokenBuckets(deps.writePolicy);
  }

  /**
   * Answers the next `count` write requests whose operation the OpenAPI gives a 409
   * (createEntry, createClaim, the claim's acknowledge/confirm/cancel/complete) with a signed 409
   * `ResourceConflict` without performing them, as the DICT does while another operation holds
   * the resource; the resent request then runs normally.
   */
  conflictNextWrites(count: number): void {
    if (!(Number.isInteger(count) && count >= 0)) throw new RangeError(`conflictNextWrites count must be a non-negative integer, got ${String(count)}`);
    this.conflictsLeft = count;
  }

  /** How many 409 `ResourceConflict` answers {@link DictService.conflictNextWrites} gave so far. */
  get resourceConflicts(): number {
    return this.conflictsGiven;
  }

  /** The id of the open (not completed, not cancelled) claim on `key`, if any. */
  openClaimOf(key: string): string | undefined {
    return this.openClaims.get(key);
  }

  /** Answers one request under `/api/v2` from the participant `caller`. */
  async handle(request: DictRequest): Promise<DictAnswer> {
    try {
      return await this.route(request);
    } catch (error) {
      if (error instanceof DictError || error instanceof ClaimRuleViolation) return this.problem(error.status, error.type, error.message);
      if (error instanceof DictBodyError) return this.problem(400, 'BadRequest', error.message);
      throw error;
    }
  }

  /** A signed problem answer. */
  async problem(status: number, type: string, detail: string): Promise<DictAnswer> {
    const problem: DictProblem = { type: `${ERROR_BASE}${type}`, title: type, status, detail, correlationId: randomBytes(16).toString('hex') };
    return { status, contentType: 'application/problem+xml', body: await this.sign(buildDictProblem(problem)) };
  }

  private async sign(xml: string): Promise<string> {
    const signed = await signDict(xml, this.deps.key);
    return this.deps.faults.breakSignature() ? corruptSignature(signed) : signed;
  }

  private async ok(status: number, schema: string, value: DictObject): Promise<DictAnswer> {
    const body = buildDictBody(schema, { ResponseTime: this.now().toISOString(), CorrelationId: randomBytes(16).toString('hex'), ...value }, { strict: false });
    return { status, contentType: 'application/xml', body: await this.sign(body) };
  }

  /** Verifies a signed write request and reads it; the signer must belong to the caller. */
  private readSigned(schema: string, body: string, caller: string): { value: DictObject; fingerprint: string } {
    let verified;
    try {
      verified = verifyDict(body, { trustStore: this.deps.trustStore });
    } catch (error) {
      if (error instanceof XmlSignatureError) throw new DictError(400, 'RequestSignatureInvalid', `${error.code}: ${error.message}`);
      throw new DictError(400, 'BadRequest', error instanceof Error ? error.message : String(error));
    }
    if (verified.signer.ispb !== undefined && verified.signer.ispb !== caller) {
      throw new DictError(400, 'RequestSignatureInvalid', `the request is signed by ${verified.signer.ispb}, not by the caller ${caller}`);
    }
    const value = parseDictBody(schema, verified.root);
    return { value, fingerprint: JSON.stringify(value) };
  }

  /** `PI-RequestingParticipant` must be present, 8 alphanumerics, and the caller's ISPB (OpenAPI: getEntry, getClaim). */
  private checkRequestingParticipant(operation: string, request: DictRequest): void {
    if (!REQUESTING_PARTICIPANT_OPERATIONS.has(operation)) return;
    const raw = request.headers['pi-requestingparticipant'];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (value === undefined || value === '') throw new DictError(400, 'BadRequest', `${operation} needs the PI-RequestingParticipant header`);
    if (!REQUESTING_PARTICIPANT.test(value)) throw new DictError(400, 'BadRequest', `PI-RequestingParticipant must be 8 characters [a-z0-9], got ${JSON.stringify(value)}`);
    if (value.toUpperCase() !== request.caller) {
      throw new DictError(403, 'Forbidden', `PI-RequestingParticipant ${value} is not the participant of the client certificate (${request.caller})`);
    }
  }

  /**
   * getEntry's required headers besides `PI-RequestingParticipant` (DICT OpenAPI 2.12.1,
   * `GET /entries/{Key}`, header parameters `PI-PayerId` and `PI-EndToEndId`, `required: true`):
   * missing or malformed is a 400 `BadRequest` (components/responses/BadRequest), naming the header.
   */
  private checkGetEntryHeaders(request: DictRequest): void {
    for (const [name, format] of Object.entries(GET_ENTRY_HEADERS)) {
      const raw = request.headers[name.toLowerCase()];
      const value = Array.isArray(raw) ? raw.join(',') : raw;
      if (value === undefined || value === '') throw new DictError(400, 'BadRequest', `getEntry needs the ${name} header`);
      if (format !== undefined && !format.test(value)) throw new DictError(400, 'BadRequest', `${name} does not match ${format.source}`);
    }
  }

  private async write(
    operation: string,
    body: string,
    caller: string,
    run: (value: DictObject) => Promise<DictAnswer>,
  ): Promise<DictAnswer> {
    if (!this.writeBuckets.take(caller)) throw new DictError(429, 'RateLimited', 'write rate limit reached');
    const { value, fingerprint } = this.readSigned(REQUEST_SCHEMAS[operation] ?? '', body, caller);
    // DICT OpenAPI 2.12.1: ResourceConflict (409, components/responses/Conflict) is answered by
    // createEntry, createClaim and the claim's acknowledge/confirm/cancel/complete, not by
    // updateEntry or deleteEntry; nothing was done, and the request is to be made again.
    if (this.conflictsLeft > 0 && operation !== 'updateEntry' && operation !== 'deleteEntry') {
      this.conflictsLeft -= 1;
      this.conflictsGiven += 1;
      throw new DictError(409, 'ResourceConflict', 'This resource is currently being processed by another operation. Please try again in a moment.');
    }
    const requestId = text(value.RequestId);
    const memoKey = requestId === undefined ? undefined : `${caller}:${operation}:${requestId}`;
    if (memoKey !== undefined) {
      const previous = this.idempotent.get(memoKey);
      if (previous !== undefined) {
        if (previous.fingerprint !== fingerprint) throw new DictError(400, 'RequestIdAlreadyUsed', `RequestId ${requestId ?? ''} was used with other parameters`);
        return previous.answer;
      }
    }
    const answer = await run(value);
    if (memoKey !== undefined && answer.status < 500) this.idempotent.set(memoKey, { fingerprint, answer });
    return answer;
  }

  private async route(request: DictRequest): Promise<DictAnswer> {
    const { method, path, caller, body } = request;
    const segments = path.replace(/^\/api\/v2\//, '').split('/').filter((s) => s !== '').map(decodeURIComponent);
    const [collection, id, action] = segments;
    if (collection === 'entries') {
      if (method === 'POST' && id === undefined) return this.write('createEntry', body, caller, (v) => this.createEntry(v, caller));
      if (method === 'GET' && id !== undefined && action === undefined) {
        this.checkRequestingParticipant('getEntry', request);
        this.checkGetEntryHeaders(request);
        return this.getEntry(id, caller);
      }
      if (method === 'PUT' && id !== undefined && action === undefined) return this.write('updateEntry', body, caller, (v) => this.updateEntry(id, v, caller));
      if (method === 'POST' && id !== undefined && action === 'delete') return this.write('deleteEntry', body, caller, (v) => this.deleteEntry(id, v, caller));
    }
    if (collection === 'claims') {
      if (method === 'POST' && id === undefined) return this.write('createClaim', body, caller, (v) => this.createClaim(v, caller));
      if (method === 'GET' && id === undefined) return this.listClaims(request.query, caller);
      if (method === 'GET' && id !== undefined && action === undefined) {
        this.checkRequestingParticipant('getClaim', request);
        return this.getClaim(id, caller);
      }
      if (method === 'POST' && id !== undefined && action !== undefined && Object.hasOwn(CLAIM_TRANSITIONS, action)) {
        const operation = action as ClaimOperation;
        return this.write(operation, body, caller, (v) => this.transition(operation, id, v, caller));
      }
    }
    throw new DictError(404, 'NotFound', `no DICT operation ${method} ${path}`);
  }

  private async createEntry(value: DictObject, caller: string): Promise<DictAnswer> {
    const entry = objectAt(value, 'Entry');
    const account = objectAt(entry, 'Account');
    const key = text(entry.Key);
    if (key === undefined) throw new DictError(400, 'EntryInvalid', 'Entry/Key is missing');
    if (text(account.Participant) !== caller) throw new DictError(403, 'Forbidden', `Account/Participant must be the caller ${caller}`);
    const existing = this.entries.get(key);
    if (existing !== undefined) {
      const sameOwner = text(objectAt(existing.entry, 'Owner').TaxIdNumber) === text(objectAt(entry, 'Owner').TaxIdNumber);
      if (existing.participant === caller && sameOwner) throw new DictError(400, 'EntryAlreadyExists', `key ${key} is already registered`);
      throw new DictError(400, sameOwner ? 'EntryKeyInCustodyOfDifferentParticipant' : 'EntryKeyOwnedByDifferentPerson', `key ${key} is registered elsewhere`);
    }
    // A key whose donor confirmed a claim is gone from the directory but promised to the claimer.
    if (this.openClaims.has(key)) throw new DictError(400, 'EntryLockedByClaim', `key ${key} has an open claim`);
    const now = this.now().toISOString();
    const stored: DictObject = { ...entry, CreationDate: now, KeyOwnershipDate: now };
    this.entries.set(key, { key, entry: stored, participant: caller });
    return this.ok(201, 'CreateEntryResponse', { Entry: stored });
  }

  private async getEntry(key: string, caller: string): Promise<DictAnswer> {
    // Policy ENTRIES_READ_PARTICIPANT_ANTISCAN: a 200 takes one token, a 404 three.
    if (!this.readBuckets.take(caller)) throw new DictError(429, 'RateLimited', 'entry read rate limit reached (ENTRIES_READ_PARTICIPANT_ANTISCAN)');
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.readBuckets.charge(caller, 2);
      throw new DictError(404, 'NotFound', `key ${key} is not registered`);
    }
    const claimId = this.openClaims.get(key);
    const claim = claimId === undefined ? undefined : this.claims.get(claimId);
    const value: DictObject = { ...entry.entry, ...(claim === undefined ? {} : { OpenClaimCreationDate: claim.createdAt }) };
    return this.ok(200, 'GetEntryResponse', { Entry: value });
  }

  /**
   * updateEntry: the holder changes the account (same participant), the owner's name or trade
   * name; the key, the owner's type and tax id stay (OpenAPI: other changes are a delete and
   * create, a portability or an ownership claim).
   */
  private async updateEntry(key: string, value: DictObject, caller: string): Promise<DictAnswer> {
    if (text(value.Key) !== key) throw new DictError(400, 'EntryInvalid', `Key must be the key of the path ${key}`);
    const entry = this.entries.get(key);
    if (entry === undefined) throw new DictError(404, 'NotFound', `key ${key} is not registered`);
    if (entry.participant !== caller) throw new DictError(403, 'Forbidden', `key ${key} is held by another participant`);
    const reason = text(value.Reason) ?? '';
    const allowed = text(entry.entry.KeyType) === 'EVP' ? EVP_UPDATE_REASONS : UPDATE_REASONS;
    if (!allowed.includes(reason)) throw new DictError(400, 'InvalidReason', `an update of a ${text(entry.entry.KeyType) ?? ''} key takes reason ${allowed.join(', ')}, got ${reason}`);
    const account = value.Account === undefined ? undefined : objectAt(value, 'Account');
    if (account !== undefined && text(account.Participant) !== caller) throw new DictError(403, 'Forbidden', `Account/Participant must be the caller ${caller}: a key changes participant by portability`);
    const currentOwner = objectAt(entry.entry, 'Owner');
    const owner = value.Owner === undefined ? undefined : objectAt(value, 'Owner');
    if (owner !== undefined && (text(owner.Type) !== text(currentOwner.Type) || text(owner.TaxIdNumber) !== text(currentOwner.TaxIdNumber))) {
      throw new DictError(400, 'EntryInvalid', 'Owner/Type and Owner/TaxIdNumber cannot change: a new owner claims the key');
    }
    entry.entry = {
      ...entry.entry,
      ...(account === undefined ? {} : { Account: account }),
      ...(owner === undefined ? {} : { Owner: owner }),
    };
    return this.ok(200, 'UpdateEntryResponse', { Entry: entry.entry });
  }

  private async deleteEntry(key: string, value: DictObject, caller: string): Promise<DictAnswer> {
    const entry = this.entries.get(key);
    if (text(value.Participant) !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    if (entry === undefined) throw new DictError(404, 'NotFound', `key ${key} is not registered`);
    if (entry.participant !== caller) throw new DictError(403, 'Forbidden', `key ${key} is held by another participant`);
    if (this.openClaims.has(key)) throw new DictError(400, 'EntryLockedByClaim', `key ${key} has an open claim`);
    this.entries.delete(key);
    return this.ok(200, 'DeleteEntryResponse', { Key: key });
  }

  private async createClaim(value: DictObject, caller: string): Promise<DictAnswer> {
    const claim = objectAt(value, 'Claim');
    const key = text(claim.Key);
    if (key === undefined) throw new DictError(400, 'ClaimInvalid', 'Claim/Key is missing');
    if (text(objectAt(claim, 'ClaimerAccount').Participant) !== caller) throw new DictError(403, 'Forbidden', `ClaimerAccount/Participant must be the caller ${caller}`);
    const type = text(claim.Type) as ClaimType | undefined;
    if (type !== 'OWNERSHIP' && type !== 'PORTABILITY') throw new DictError(400, 'ClaimInvalid', `Claim/Type must be OWNERSHIP or PORTABILITY, got ${type ?? '(none)'}`);
    const keyType = text(claim.KeyType) ?? '';
    if (!CLAIMABLE_KEY_TYPES[type].includes(keyType)) throw new DictError(400, 'ClaimInvalid', `a ${keyType} key cannot be the object of a ${type} claim`);
    const entry = this.entries.get(key);
    if (entry === undefined) throw new DictError(404, 'ClaimKeyNotFound', `key ${key} is not registered`);
    if (this.openClaims.has(key)) throw new DictError(400, 'ClaimAlreadyExistsForKey', `key ${key} already has an open claim`);
    const sameOwner = text(objectAt(entry.entry, 'Owner').TaxIdNumber) === text(objectAt(claim, 'Claimer').TaxIdNumber);
    if ((type === 'OWNERSHIP' && sameOwner) || (type === 'PORTABILITY' && !sameOwner)) throw new DictError(400, 'ClaimTypeInconsistent', `a ${type} claim does not fit the entry's owner`);
    if (entry.participant === caller && sameOwner) throw new DictError(400, 'ClaimResultingEntryAlreadyExists', `key ${key} is already held by the claimer`);
    const id = randomUUID();
    const now = this.now();
    const stored: DictObject = {
      ...claim,
      DonorParticipant: entry.participant,
      Id: id,
      Status: 'OPEN',
      ResolutionPeriodEnd: new Date(now.getTime() + this.deps.claimResolutionPeriodMs).toISOString(),
      // "Apenas para reivindicação de posse" (ExtendedClaim.CompletionPeriodEnd).
      ...(type === 'OWNERSHIP' ? { CompletionPeriodEnd: new Date(now.getTime() + this.deps.claimCompletionPeriodMs).toISOString() } : {}),
      LastModified: now.toISOString(),
    };
    this.claims.set(id, { id, key, claimer: caller, donor: entry.participant, type, createdAt: now.toISOString(), status: 'OPEN', claim: stored, donorEntry: undefined });
    this.openClaims.set(key, id);
    return this.ok(201, 'CreateClaimResponse', { Claim: stored });
  }

  private claimFor(id: string, caller: string): DictClaim {
    const claim = this.claims.get(id);
    if (claim === undefined || (claim.claimer !== caller && claim.donor !== caller)) throw new DictError(404, 'NotFound', `claim ${id} not found`);
    return claim;
  }

  private async getClaim(id: string, caller: string): Promise<DictAnswer> {
    return this.ok(200, 'GetClaimResponse', { Claim: this.claimFor(id, caller).claim });
  }

  private async listClaims(query: URLSearchParams, caller: string): Promise<DictAnswer> {
    // DICT OpenAPI 2.12.1, GET /claims/ (listClaims): query parameter Participant is
    // `required: true`; without it the request is malformed (400 BadRequest).
    const participant = query.get('Participant');
    if (participant === null || participant === '') throw new DictError(400, 'BadRequest', 'listClaims needs the Participant query parameter');
    if (participant !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    const status = query.getAll('Status');
    const isDonor = query.get('IsDonor') === 'true';
    const isClaimer = query.get('IsClaimer') === 'true';
    // DICT OpenAPI 2.12.1, GET /claims/ query Limit: integer, default 20, maximum 200.
    const limitText = query.get('Limit');
    const limit = limitText === null ? 20 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new DictError(400, 'BadRequest', `Limit must be an integer from 1 to 200, got ${JSON.stringify(limitText)}`);
    const matching = [...this.claims.values()].filter(
      (c) =>
        (c.claimer === caller || c.donor === caller) &&
        (!isDonor || c.donor === caller) &&
        (!isClaimer || c.claimer === caller) &&
        (status.length === 0 || status.includes(c.status)),
    );
    return this.ok(200, 'ListClaimsResponse', { HasMoreElements: String(matching.length > limit), Claims: matching.slice(0, limit).map((c) => c.claim) });
  }

  private async transition(operation: ClaimOperation, id: string, value: DictObject, caller: string): Promise<DictAnswer> {
    if (text(value.ClaimId) !== id) throw new DictError(400, 'ClaimInvalid', `ClaimId must be ${id}`);
    if (text(value.Participant) !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    const claim = this.claimFor(id, caller);
    // In an ownership claim the donor and the claimer may be the same participant.
    const roles = new Set<ClaimRole>([...(claim.donor === caller ? ['donor' as const] : []), ...(claim.claimer === caller ? ['claimer' as const] : [])]);
    const reason = text(value.Reason);
    const completionEnd = text(claim.claim.CompletionPeriodEnd);
    const cancelledBy = text(claim.claim.CancelledBy);
    const now = this.now();
    const decision = decideClaimOperation(
      {
        type: claim.type,
        status: claim.status,
        resolutionPeriodEnd: new Date(text(claim.claim.ResolutionPeriodEnd) ?? 0),
        completionPeriodEnd: completionEnd === undefined ? undefined : new Date(completionEnd),
        decidedReason: text(claim.status === 'CANCELLED' ? claim.claim.CancelReason : claim.claim.ConfirmReason),
        cancelledBy: cancelledBy === 'DONOR' ? 'donor' : cancelledBy === 'CLAIMER' ? 'claimer' : undefined,
      },
      operation,
      roles,
      reason,
      now,
    );
    const schema = { acknowledge: 'AcknowledgeClaimResponse', confirm: 'ConfirmClaimResponse', cancel: 'CancelClaimResponse', complete: 'CompleteClaimResponse' }[operation];
    if (decision.repeated) return this.ok(200, schema, { Claim: claim.claim });
    const at = now.toISOString();
    claim.status = decision.to;
    claim.claim = { ...claim.claim, Status: decision.to, LastModified: at };
    if (operation === 'confirm') {
      claim.claim.ConfirmReason = reason;
      if (decision.completionPeriodEndsNow) claim.claim.CompletionPeriodEnd = at;
      // Confirming removes the donor's entry from the directory (confirmClaim); the key stays
      // promised to the claimer until completion or cancellation.
      const entry = this.entries.get(claim.key);
      claim.donorEntry = entry?.entry;
      this.entries.delete(claim.key);
    }
    if (operation === 'cancel') {
      claim.claim.CancelReason = reason;
      // A participant that is both sides cancels in the role the reason allows (claimer first).
      const allowed = CLAIM_REASON_RULES.cancel[claim.type][reason ?? ''] ?? [];
      claim.claim.CancelledBy = roles.has('claimer') && allowed.includes('claimer') ? 'CLAIMER' : 'DONOR';
    }
    if (decision.to === 'CANCELLED' || decision.to === 'COMPLETED') {
      if (this.openClaims.get(claim.key) === id) this.openClaims.delete(claim.key);
    }
    if (decision.to === 'COMPLETED') {
      // The claimer's entry is created (completeClaim): its account, its owner.
      const kept = claim.donorEntry ?? {};
      const ownership = claim.type === 'OWNERSHIP';
      const entry: DictObject = {
        Key: claim.key,
        KeyType: text(claim.claim.KeyType) ?? text(kept.KeyType),
        Account: objectAt(claim.claim, 'ClaimerAccount'),
        Owner: objectAt(claim.claim, 'Claimer'),
        CreationDate: at,
        // A portability keeps the owner, so the date the owner got the key stays.
        KeyOwnershipDate: ownership ? at : (text(kept.KeyOwnershipDate) ?? at),
      };
      this.entries.set(claim.key, { key: claim.key, entry, participant: claim.claimer });
    }
    return this.ok(200, schema, { Claim: claim.claim });
  }
}
