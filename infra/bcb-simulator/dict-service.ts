import { randomBytes, randomUUID } from 'node:crypto';
import { DictBodyError, buildDictBody, buildDictProblem, parseDictBody } from '../../shared/dict/index.ts';
import type { DictObject, DictProblem } from '../../shared/dict/index.ts';
import { XmlSignatureError, signDict, verifyDict } from '../../shared/xmldsig/index.ts';
import type { SigningKey, TrustStore } from '../../shared/xmldsig/index.ts';
import { corruptSignature } from './faults.ts';
import type { FaultController } from './faults.ts';
import { TokenBuckets } from './token-bucket.ts';
import type { TokenBucketPolicy } from './token-bucket.ts';

/** Claim states (DICT API 2.12.1 `ClaimStatus`). */
export type ClaimStatus = 'OPEN' | 'WAITING_RESOLUTION' | 'CONFIRMED' | 'CANCELLED' | 'COMPLETED';

/** A DICT entry as the simulator stores it. */
export interface DictEntry {
  readonly key: string;
  /** The `Entry` element's value (Key, KeyType, Account, Owner, dates). */
  entry: DictObject;
  /** ISPB of the participant holding it (`Account/Participant`). */
  participant: string;
  openClaimId: string | undefined;
}

/** A claim as the simulator stores it. */
export interface DictClaim {
  readonly id: string;
  readonly key: string;
  readonly claimer: string;
  readonly donor: string;
  status: ClaimStatus;
  /** The `Claim` element's value. */
  claim: DictObject;
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

/**
 * Legal claim transitions (DICT manual, "Reivindicação"): the donor acknowledges and confirms,
 * the claimer completes after confirmation, either side cancels before completion.
 */
export const CLAIM_TRANSITIONS: Readonly<Record<'acknowledge' | 'confirm' | 'cancel' | 'complete', { from: readonly ClaimStatus[]; to: ClaimStatus; by: 'donor' | 'claimer' | 'either' }>> = {
  acknowledge: { from: ['OPEN'], to: 'WAITING_RESOLUTION', by: 'donor' },
  confirm: { from: ['OPEN', 'WAITING_RESOLUTION'], to: 'CONFIRMED', by: 'donor' },
  cancel: { from: ['OPEN', 'WAITING_RESOLUTION', 'CONFIRMED'], to: 'CANCELLED', by: 'either' },
  complete: { from: ['CONFIRMED'], to: 'COMPLETED', by: 'claimer' },
};

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function objectAt(value: DictObject, property: string): DictObject {
  const v = value[property];
  return typeof v === 'object' && !Array.isArray(v) ? v : {};
}

const REQUEST_SCHEMAS: Readonly<Record<string, string>> = {
  createEntry: 'CreateEntryRequest',
  deleteEntry: 'DeleteEntryRequest',
  createClaim: 'CreateClaimRequest',
  acknowledge: 'AcknowledgeClaimRequest',
  confirm: 'ConfirmClaimRequest',
  cancel: 'CancelClaimRequest',
  complete: 'CompleteClaimRequest',
};

/**
 * The simulated DICT API v2: entries (create, get, delete) and claims (create, list, get,
 * acknowledge, confirm, cancel, complete) with the claim state machine; write requests must be
 * signed in the DICT profile by a certificate bound to the caller's ISPB (else a signed 400
 * `RequestSignatureInvalid`); every answer, errors included, is signed; `RequestId` makes a
 * repeated write answer the same; token buckets answer 429 `RateLimited`.
 */
export class DictService {
  private readonly deps: DictServiceDeps;
  /** Entries by key. */
  readonly entries = new Map<string, DictEntry>();
  /** Claims by id. */
  readonly claims = new Map<string, DictClaim>();
  private readonly idempotent = new Map<string, { fingerprint: string; answer: DictAnswer }>();
  private readonly readBuckets: TokenBuckets;
  private readonly writeBuckets: TokenBuckets;

  constructor(deps: DictServiceDeps) {
    this.deps = deps;
    this.readBuckets = new TokenBuckets(deps.entryReadPolicy);
    this.writeBuckets = new TokenBuckets(deps.writePolicy);
  }

  /** Answers one request under `/api/v2` from the participant `caller`. */
  async handle(request: { method: string; path: string; query: URLSearchParams; body: string; caller: string }): Promise<DictAnswer> {
    try {
      return await this.route(request);
    } catch (error) {
      if (error instanceof DictError) return this.problem(error.status, error.type, error.message);
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
    const body = buildDictBody(schema, { ResponseTime: new Date().toISOString(), CorrelationId: randomBytes(16).toString('hex'), ...value }, { strict: false });
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

  private async write(
    operation: string,
    body: string,
    caller: string,
    run: (value: DictObject) => Promise<DictAnswer>,
  ): Promise<DictAnswer> {
    if (!this.writeBuckets.take(caller)) throw new DictError(429, 'RateLimited', 'write rate limit reached');
    const { value, fingerprint } = this.readSigned(REQUEST_SCHEMAS[operation] ?? '', body, caller);
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

  private async route(request: { method: string; path: string; query: URLSearchParams; body: string; caller: string }): Promise<DictAnswer> {
    const { method, path, caller, body } = request;
    const segments = path.replace(/^\/api\/v2\//, '').split('/').filter((s) => s !== '').map(decodeURIComponent);
    const [collection, id, action] = segments;
    if (collection === 'entries') {
      if (method === 'POST' && id === undefined) return this.write('createEntry', body, caller, (v) => this.createEntry(v, caller));
      if (method === 'GET' && id !== undefined && action === undefined) return this.getEntry(id, caller);
      if (method === 'POST' && id !== undefined && action === 'delete') return this.write('deleteEntry', body, caller, (v) => this.deleteEntry(id, v, caller));
    }
    if (collection === 'claims') {
      if (method === 'POST' && id === undefined) return this.write('createClaim', body, caller, (v) => this.createClaim(v, caller));
      if (method === 'GET' && id === undefined) return this.listClaims(request.query, caller);
      if (method === 'GET' && id !== undefined && action === undefined) return this.getClaim(id, caller);
      if (method === 'POST' && id !== undefined && action !== undefined && action in CLAIM_TRANSITIONS) {
        const operation = action as keyof typeof CLAIM_TRANSITIONS;
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
    const now = new Date().toISOString();
    const stored: DictObject = { ...entry, CreationDate: now, KeyOwnershipDate: now };
    this.entries.set(key, { key, entry: stored, participant: caller, openClaimId: undefined });
    return this.ok(201, 'CreateEntryResponse', { Entry: stored });
  }

  private async getEntry(key: string, caller: string): Promise<DictAnswer> {
    // Policy ENTRIES_READ_PARTICIPANT_ANTISCAN: one token per query, per participant.
    if (!this.readBuckets.take(caller)) throw new DictError(429, 'RateLimited', 'entry read rate limit reached (ENTRIES_READ_PARTICIPANT_ANTISCAN)');
    const entry = this.entries.get(key);
    if (entry === undefined) throw new DictError(404, 'NotFound', `key ${key} is not registered`);
    const claim = entry.openClaimId === undefined ? undefined : this.claims.get(entry.openClaimId);
    const value: DictObject = { ...entry.entry, ...(claim === undefined ? {} : { OpenClaimCreationDate: text(claim.claim.CreationDate) ?? text(claim.claim.LastModified) }) };
    return this.ok(200, 'GetEntryResponse', { Entry: value });
  }

  private async deleteEntry(key: string, value: DictObject, caller: string): Promise<DictAnswer> {
    const entry = this.entries.get(key);
    if (text(value.Participant) !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    if (entry === undefined) throw new DictError(404, 'NotFound', `key ${key} is not registered`);
    if (entry.participant !== caller) throw new DictError(403, 'Forbidden', `key ${key} is held by another participant`);
    if (entry.openClaimId !== undefined) throw new DictError(400, 'EntryLockedByClaim', `key ${key} has an open claim`);
    this.entries.delete(key);
    return this.ok(200, 'DeleteEntryResponse', { Key: key });
  }

  private async createClaim(value: DictObject, caller: string): Promise<DictAnswer> {
    const claim = objectAt(value, 'Claim');
    const key = text(claim.Key);
    if (key === undefined) throw new DictError(400, 'ClaimInvalid', 'Claim/Key is missing');
    if (text(objectAt(claim, 'ClaimerAccount').Participant) !== caller) throw new DictError(403, 'Forbidden', `ClaimerAccount/Participant must be the caller ${caller}`);
    const entry = this.entries.get(key);
    if (entry === undefined) throw new DictError(404, 'ClaimKeyNotFound', `key ${key} is not registered`);
    if (entry.openClaimId !== undefined) throw new DictError(400, 'ClaimAlreadyExistsForKey', `key ${key} already has an open claim`);
    const sameOwner = text(objectAt(entry.entry, 'Owner').TaxIdNumber) === text(objectAt(claim, 'Claimer').TaxIdNumber);
    const type = text(claim.Type);
    if ((type === 'OWNERSHIP' && sameOwner) || (type === 'PORTABILITY' && !sameOwner)) throw new DictError(400, 'ClaimTypeInconsistent', `a ${type ?? ''} claim does not fit the entry's owner`);
    if (entry.participant === caller && sameOwner) throw new DictError(400, 'ClaimResultingEntryAlreadyExists', `key ${key} is already held by the claimer`);
    const id = randomUUID();
    const now = new Date();
    const period = new Date(now.getTime() + 7 * 86_400_000).toISOString();
    const stored: DictObject = {
      ...claim,
      DonorParticipant: entry.participant,
      Id: id,
      Status: 'OPEN',
      ResolutionPeriodEnd: period,
      CompletionPeriodEnd: period,
      LastModified: now.toISOString(),
    };
    this.claims.set(id, { id, key, claimer: caller, donor: entry.participant, status: 'OPEN', claim: stored });
    entry.openClaimId = id;
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
    const participant = query.get('Participant') ?? caller;
    if (participant !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    const status = query.getAll('Status');
    const isDonor = query.get('IsDonor') === 'true';
    const isClaimer = query.get('IsClaimer') === 'true';
    const limit = Math.min(1000, Number(query.get('Limit') ?? '100') || 100);
    const matching = [...this.claims.values()].filter(
      (c) =>
        (c.claimer === caller || c.donor === caller) &&
        (!isDonor || c.donor === caller) &&
        (!isClaimer || c.claimer === caller) &&
        (status.length === 0 || status.includes(c.status)),
    );
    return this.ok(200, 'ListClaimsResponse', { HasMoreElements: String(matching.length > limit), Claims: matching.slice(0, limit).map((c) => c.claim) });
  }

  private async transition(operation: keyof typeof CLAIM_TRANSITIONS, id: string, value: DictObject, caller: string): Promise<DictAnswer> {
    const rule = CLAIM_TRANSITIONS[operation];
    if (text(value.ClaimId) !== id) throw new DictError(400, 'ClaimInvalid', `ClaimId must be ${id}`);
    if (text(value.Participant) !== caller) throw new DictError(403, 'Forbidden', `Participant must be the caller ${caller}`);
    const claim = this.claimFor(id, caller);
    const role = claim.donor === caller ? 'donor' : 'claimer';
    if (rule.by !== 'either' && rule.by !== role) throw new DictError(403, 'Forbidden', `only the ${rule.by} may ${operation} claim ${id}`);
    if (!rule.from.includes(claim.status)) throw new DictError(400, 'ClaimOperationInvalid', `claim ${id} is ${claim.status}; ${operation} needs ${rule.from.join(' or ')}`);
    claim.status = rule.to;
    const now = new Date().toISOString();
    claim.claim = { ...claim.claim, Status: rule.to, LastModified: now };
    if (operation === 'confirm') claim.claim.ConfirmReason = text(value.Reason);
    if (operation === 'cancel') {
      claim.claim.CancelReason = text(value.Reason);
      claim.claim.CancelledBy = role === 'donor' ? 'DONOR' : 'CLAIMER';
    }
    const entry = this.entries.get(claim.key);
    if (rule.to === 'CANCELLED' || rule.to === 'COMPLETED') {
      if (entry !== undefined && entry.openClaimId === id) entry.openClaimId = undefined;
    }
    if (rule.to === 'COMPLETED' && entry !== undefined) {
      // The key moves to the claimer's account and owner (DICT manual, "Conclusão").
      entry.entry = { ...entry.entry, Account: objectAt(claim.claim, 'ClaimerAccount'), Owner: objectAt(claim.claim, 'Claimer'), KeyOwnershipDate: now };
      entry.participant = claim.claimer;
    }
    const schema = { acknowledge: 'AcknowledgeClaimResponse', confirm: 'ConfirmClaimResponse', cancel: 'CancelClaimResponse', complete: 'CompleteClaimResponse' }[operation];
    return this.ok(200, schema, { Claim: claim.claim });
  }
}
