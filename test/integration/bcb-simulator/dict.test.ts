import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { Agent } from 'undici';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { buildDictBody, parseDictBody, parseDictProblem } from '../../../shared/dict/index.ts';
import type { DictObject } from '../../../shared/dict/index.ts';
import { TrustStore, pemSigningKey, signDict, verifyDict } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { BCB_ISPB, ISPB_A, ISPB_B, createSimulatorTestPki, mtlsAgent, startTestSimulator } from './simulator-fixture.ts';
import type { SimulatorTestPki } from './simulator-fixture.ts';

let pki: SimulatorTestPki;
let sim: BcbSimulator;
let agentA: Agent;
let agentB: Agent;
let keyA: SigningKey;
let keyB: SigningKey;
const bcbTrust = new TrustStore();
const RESOLUTION_MS = 4_000;
const COMPLETION_MS = 8_000;

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, {
    dictEntryReadPolicy: { capacity: 3, refillPerSecond: 0.001 },
    // Short claim periods, long enough that the "too early" requests land inside them on a busy machine.
    dictClaimResolutionPeriodMs: RESOLUTION_MS,
    dictClaimCompletionPeriodMs: COMPLETION_MS,
  });
  agentA = mtlsAgent(pki, pki.tlsA);
  agentB = mtlsAgent(pki, pki.tlsB);
  requesting.set(agentA, ISPB_A).set(agentB, ISPB_B);
  keyA = pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem);
  keyB = pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem);
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
});

afterAll(async () => {
  await agentA.close();
  await agentB.close();
  await sim.close();
});

interface DictCall {
  status: number;
  contentType: string;
  body: string;
}

/** The ISPB of an agent's client certificate, sent as PI-RequestingParticipant on reads. */
const requesting = new Map<Agent, string>();

async function call(agent: Agent, method: 'GET' | 'POST' | 'PUT', path: string, body?: string, headers: Record<string, string> = {}): Promise<DictCall> {
  const response = await request(`${sim.dictUrl}${path}`, {
    method,
    dispatcher: agent,
    headers: {
      host: 'localhost',
      ...(method === 'GET' ? { 'pi-requestingparticipant': requesting.get(agent) ?? '' } : {}),
      // getEntry's other required headers (DICT OpenAPI, GET /entries/{Key}).
      ...(method === 'GET' && path.startsWith('/entries/') ? { 'pi-payerid': '70000000000', 'pi-endtoendid': `E${requesting.get(agent) ?? ''}202612071200abcdefghijk` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/xml; charset=utf-8' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body }),
  });
  return { status: response.statusCode, contentType: String(response.headers['content-type']), body: await response.body.text() };
}

async function signed(schema: string, value: DictObject, key: SigningKey): Promise<string> {
  return signDict(buildDictBody(schema, value), key);
}

function account(participant: string): DictObject {
  return { Participant: participant, Branch: '0001', AccountNumber: '0007654321', AccountType: 'CACC', OpeningDate: '2010-01-10T03:00:00Z' };
}

function owner(taxId: string): DictObject {
  return { Type: 'NATURAL_PERSON', TaxIdNumber: taxId, Name: 'João Silva' };
}

async function createEntry(agent: Agent, key: SigningKey, ispb: string, phone: string, taxId: string, requestId = randomUUID()): Promise<DictCall> {
  const body = await signed('CreateEntryRequest', { Entry: { Key: phone, KeyType: 'PHONE', Account: account(ispb), Owner: owner(taxId) }, Reason: 'USER_REQUESTED', RequestId: requestId }, key);
  return call(agent, 'POST', '/entries/', body);
}

function verified(answer: DictCall, schema: string): DictObject {
  return parseDictBody(schema, verifyDict(answer.body, { trustStore: bcbTrust }).root);
}

async function claimStep(
  agent: Agent, key: SigningKey, ispb: string, id: string, step: 'acknowledge' | 'confirm' | 'cancel' | 'complete', reason = 'USER_REQUESTED',
): Promise<DictCall> {
  const schema = { acknowledge: 'AcknowledgeClaimRequest', confirm: 'ConfirmClaimRequest', cancel: 'CancelClaimRequest', complete: 'CompleteClaimRequest' }[step];
  const value: DictObject = { ClaimId: id, Participant: ispb, ...(step === 'confirm' || step === 'cancel' ? { Reason: reason } : {}), ...(step === 'complete' ? { RequestId: randomUUID() } : {}) };
  return call(agent, 'POST', `/claims/${id}/${step}`, await signed(schema, value, key));
}

/** The claim of an answer, after checking the BCB signature. */
function claimOf(answer: DictCall, schema: string): DictObject {
  return verified(answer, schema).Claim as DictObject;
}

/** The DICT error type of a signed problem answer. */
function problemType(answer: DictCall): string {
  return parseDictProblem(verifyDict(answer.body, { trustStore: bcbTrust }).root).type.replace('https://dict.pi.rsfn.net.br/api/v2/error/', '');
}

async function openClaim(phone: string, type: 'OWNERSHIP' | 'PORTABILITY' = 'OWNERSHIP'): Promise<DictObject> {
  expect((await createEntry(agentA, keyA, ISPB_A, phone, '11122233300')).status).toBe(201);
  const claimer = type === 'OWNERSHIP' ? owner('99988877766') : owner('11122233300');
  const body = await signed('CreateClaimRequest', { Claim: { Type: type, Key: phone, KeyType: 'PHONE', ClaimerAccount: account(ISPB_B), Claimer: claimer } }, keyB);
  const answer = await call(agentB, 'POST', '/claims/', body);
  expect(answer.status).toBe(201);
  const claim = claimOf(answer, 'CreateClaimResponse');
  expect(claim).toMatchObject({ Status: 'OPEN', DonorParticipant: ISPB_A });
  return claim;
}

/** Waits until the instant `iso` has passed (plus a little). */
async function until(iso: unknown): Promise<void> {
  const wait = new Date(String(iso)).getTime() - Date.now() + 50;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

describe('BCB simulator DICT', () => {
  it('creates, reads and deletes an entry with signed requests and signed responses', async () => {
    const created = await createEntry(agentA, keyA, ISPB_A, '+5561988880001', '11122233300');
    expect(created.status).toBe(201);
    expect((verified(created, 'CreateEntryResponse').Entry as DictObject).Key).toBe('+5561988880001');
    const read = await call(agentB, 'GET', `/entries/${encodeURIComponent('+5561988880001')}`);
    expect(read.status).toBe(200);
    expect(((verified(read, 'GetEntryResponse').Entry as DictObject).Account as DictObject).Participant).toBe(ISPB_A);
    const deleted = await call(agentA, 'POST', `/entries/${encodeURIComponent('+5561988880001')}/delete`, await signed('DeleteEntryRequest', { Key: '+5561988880001', Participant: ISPB_A, Reason: 'USER_REQUESTED' }, keyA));
    expect(deleted.status).toBe(200);
  });

  it('answers an invalid request signature with a signed 400 RequestSignatureInvalid problem', async () => {
    const body = (await signed('CreateEntryRequest', { Entry: { Key: '+5561988880002', KeyType: 'PHONE', Account: account(ISPB_A), Owner: owner('11122233300') }, Reason: 'USER_REQUESTED', RequestId: randomUUID() }, keyA)).replace('0007654321', '0007654322');
    const answer = await call(agentA, 'POST', '/entries/', body);
    expect(answer.status).toBe(400);
    expect(answer.contentType).toMatch(/^application\/problem\+xml/);
    const problem = parseDictProblem(verifyDict(answer.body, { trustStore: bcbTrust }).root);
    expect(problem).toMatchObject({ type: 'https://dict.pi.rsfn.net.br/api/v2/error/RequestSignatureInvalid', status: 400 });
  });

  it('answers a request signed by another participant with RequestSignatureInvalid', async () => {
    const body = await signed('CreateEntryRequest', { Entry: { Key: '+5561988880003', KeyType: 'PHONE', Account: account(ISPB_A), Owner: owner('11122233300') }, Reason: 'USER_REQUESTED', RequestId: randomUUID() }, keyB);
    const answer = await call(agentA, 'POST', '/entries/', body);
    expect(parseDictProblem(verifyDict(answer.body, { trustStore: bcbTrust }).root).type).toMatch(/RequestSignatureInvalid$/);
  });

  it('answers a repeated RequestId with the same response, and a reused one with other data with RequestIdAlreadyUsed', async () => {
    const requestId = randomUUID();
    const first = await createEntry(agentA, keyA, ISPB_A, '+5561988880004', '11122233300', requestId);
    const again = await createEntry(agentA, keyA, ISPB_A, '+5561988880004', '11122233300', requestId);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(verified(again, 'CreateEntryResponse').CorrelationId).toBe(verified(first, 'CreateEntryResponse').CorrelationId);
    const other = await createEntry(agentA, keyA, ISPB_A, '+5561988880099', '11122233300', requestId);
    expect(other.status).toBe(400);
    expect(other.body).toContain('RequestIdAlreadyUsed');
  });

  it('walks a claim OPEN → WAITING_RESOLUTION → CONFIRMED → COMPLETED and moves the key to the claimer', async () => {
    const id = (await openClaim('+5561988880010')).Id as string;
    expect((verified(await claimStep(agentA, keyA, ISPB_A, id, 'acknowledge'), 'AcknowledgeClaimResponse').Claim as DictObject).Status).toBe('WAITING_RESOLUTION');
    expect((verified(await claimStep(agentA, keyA, ISPB_A, id, 'confirm'), 'ConfirmClaimResponse').Claim as DictObject).Status).toBe('CONFIRMED');
    expect((verified(await claimStep(agentB, keyB, ISPB_B, id, 'complete'), 'CompleteClaimResponse').Claim as DictObject).Status).toBe('COMPLETED');
    expect(sim.dict.entries.get('+5561988880010')?.participant).toBe(ISPB_B);
    const listed = verified(await call(agentB, 'GET', `/claims/?Participant=${ISPB_B}&Status=COMPLETED`), 'ListClaimsResponse');
    expect((listed.Claims as DictObject[]).map((c) => c.Id)).toContain(id);
    // The OpenAPI's Limit: default 20, maximum 200.
    expect((await call(agentB, 'GET', `/claims/?Participant=${ISPB_B}&Limit=200`)).status).toBe(200);
    for (const bad of ['201', '0', 'many']) expect((await call(agentB, 'GET', `/claims/?Participant=${ISPB_B}&Limit=${bad}`)).status, bad).toBe(400);
  });

  it('refuses illegal claim transitions: complete before confirm, confirm by the claimer, acknowledge after cancel', async () => {
    const id = (await openClaim('+5561988880011')).Id as string;
    const early = await claimStep(agentB, keyB, ISPB_B, id, 'complete');
    expect(early.status).toBe(400);
    expect(early.body).toContain('ClaimOperationInvalid');
    expect((await claimStep(agentB, keyB, ISPB_B, id, 'confirm')).status).toBe(403);
    const cancelled = verified(await claimStep(agentB, keyB, ISPB_B, id, 'cancel'), 'CancelClaimResponse').Claim as DictObject;
    expect(cancelled).toMatchObject({ Status: 'CANCELLED', CancelledBy: 'CLAIMER' });
    expect((await claimStep(agentA, keyA, ISPB_A, id, 'acknowledge')).body).toContain('ClaimOperationInvalid');
    expect(sim.dict.entries.get('+5561988880011')?.participant).toBe(ISPB_A);
  });

  it('refuses a second open claim for the same key and deleting a key with an open claim', async () => {
    await openClaim('+5561988880012');
    const body = await signed('CreateClaimRequest', { Claim: { Type: 'OWNERSHIP', Key: '+5561988880012', KeyType: 'PHONE', ClaimerAccount: account(ISPB_B), Claimer: owner('99988877766') } }, keyB);
    expect((await call(agentB, 'POST', '/claims/', body)).body).toContain('ClaimAlreadyExistsForKey');
    const del = await call(agentA, 'POST', `/entries/${encodeURIComponent('+5561988880012')}/delete`, await signed('DeleteEntryRequest', { Key: '+5561988880012', Participant: ISPB_A, Reason: 'USER_REQUESTED' }, keyA));
    expect(del.body).toContain('EntryLockedByClaim');
  });

  it('answers entry reads beyond the token bucket with a signed 429 RateLimited', async () => {
    const statuses: number[] = [];
    let last: DictCall | undefined;
    for (let i = 0; i < 5; i++) {
      last = await call(agentA, 'GET', `/entries/${encodeURIComponent('+5561900000000')}`);
      statuses.push(last.status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 404).length).toBeLessThanOrEqual(3);
    expect(parseDictProblem(verifyDict(last?.body ?? '', { trustStore: bcbTrust }).root).type).toMatch(/RateLimited$/);
  });

  it('updates an entry with a signed PUT: account and name change, the key stays with its holder and owner', async () => {
    const phone = '+5561988880020';
    expect((await createEntry(agentA, keyA, ISPB_A, phone, '11122233300')).status).toBe(201);
    const update = (value: DictObject, key: SigningKey = keyA, agent: Agent = agentA): Promise<DictCall> =>
      signed('UpdateEntryRequest', value, key).then((body) => call(agent, 'PUT', `/entries/${encodeURIComponent(phone)}`, body));
    const moved = { ...account(ISPB_A), Branch: '0002', AccountNumber: '0001111111' };
    const answer = await update({ Key: phone, Account: moved, Owner: { ...owner('11122233300'), Name: 'João da Silva' }, Reason: 'BRANCH_TRANSFER' });
    expect(answer.status).toBe(200);
    const entry = verified(answer, 'UpdateEntryResponse').Entry as DictObject;
    expect(entry).toMatchObject({ Key: phone, Account: { Branch: '0002', AccountNumber: '0001111111' }, Owner: { Name: 'João da Silva', TaxIdNumber: '11122233300' } });
    const read = verified(await call(agentB, 'GET', `/entries/${encodeURIComponent(phone)}`), 'GetEntryResponse').Entry as DictObject;
    expect((read.Account as DictObject).Branch).toBe('0002');

    expect(problemType(await update({ Key: phone, Owner: owner('99988877766'), Reason: 'USER_REQUESTED' }))).toBe('EntryInvalid');
    expect(problemType(await update({ Key: phone, Account: account(ISPB_B), Reason: 'USER_REQUESTED' }))).toBe('Forbidden');
    expect(problemType(await update({ Key: phone, Reason: 'FRAUD' }))).toBe('InvalidReason');
    const other = await update({ Key: phone, Reason: 'USER_REQUESTED' }, keyB, agentB);
    expect([other.status, problemType(other)]).toEqual([403, 'Forbidden']);
    const tampered = (await signed('UpdateEntryRequest', { Key: phone, Reason: 'USER_REQUESTED' }, keyA)).replace('USER_REQUESTED', 'RECONCILIATION');
    const refused = await call(agentA, 'PUT', `/entries/${encodeURIComponent(phone)}`, tampered);
    expect([refused.status, problemType(refused)]).toEqual([400, 'RequestSignatureInvalid']);
  });

  it('refuses USER_REQUESTED updates of an EVP key (EVP keys change only for BRANCH_TRANSFER, RECONCILIATION, RFB_VALIDATION)', async () => {
    const evp = randomUUID();
    const body = await signed('CreateEntryRequest', { Entry: { Key: evp, KeyType: 'EVP', Account: account(ISPB_A), Owner: owner('11122233300') }, Reason: 'USER_REQUESTED', RequestId: randomUUID() }, keyA);
    expect((await call(agentA, 'POST', '/entries/', body)).status).toBe(201);
    const put = (reason: string): Promise<DictCall> => signed('UpdateEntryRequest', { Key: evp, Reason: reason }, keyA).then((b) => call(agentA, 'PUT', `/entries/${evp}`, b));
    expect(problemType(await put('USER_REQUESTED'))).toBe('InvalidReason');
    expect((await put('RECONCILIATION')).status).toBe(200);
  });

  it('checks PI-RequestingParticipant on entry and claim reads against the client certificate', async () => {
    const phone = '+5561988880030';
    expect((await createEntry(agentA, keyA, ISPB_A, phone, '11122233300')).status).toBe(201);
    const path = `/entries/${encodeURIComponent(phone)}`;
    const missing = await request(`${sim.dictUrl}${path}`, { dispatcher: agentB, headers: { host: 'localhost' } });
    const missingBody = await missing.body.text();
    expect([missing.statusCode, problemType({ status: missing.statusCode, contentType: '', body: missingBody })]).toEqual([400, 'BadRequest']);
    const malformed = await call(agentB, 'GET', path, undefined, { 'pi-requestingparticipant': '9999' });
    expect([malformed.status, problemType(malformed)]).toEqual([400, 'BadRequest']);
    const someoneElse = await call(agentB, 'GET', path, undefined, { 'pi-requestingparticipant': ISPB_A });
    expect([someoneElse.status, problemType(someoneElse)]).toEqual([403, 'Forbidden']);
    expect((await call(agentB, 'GET', path)).status).toBe(200);

    const claim = await openClaim('+5561988880031');
    const claimPath = `/claims/${claim.Id as string}`;
    expect((await call(agentA, 'GET', claimPath)).status).toBe(200);
    const wrong = await call(agentA, 'GET', claimPath, undefined, { 'pi-requestingparticipant': ISPB_B });
    expect([wrong.status, problemType(wrong)]).toEqual([403, 'Forbidden']);
  });

  it('answers a getEntry without PI-PayerId or PI-EndToEndId, and a listClaims without Participant, with a signed 400 BadRequest naming what is missing', async () => {
    const phone = '+5561988880090';
    expect((await createEntry(agentA, keyA, ISPB_A, phone, '11122233300')).status).toBe(201);
    const path = `/entries/${encodeURIComponent(phone)}`;
    for (const header of ['pi-payerid', 'pi-endtoendid']) {
      const missing = await call(agentB, 'GET', path, undefined, { [header]: '' });
      expect([missing.status, problemType(missing)]).toEqual([400, 'BadRequest']);
      expect(parseDictProblem(verifyDict(missing.body, { trustStore: bcbTrust }).root).detail).toContain(`needs the ${header === 'pi-payerid' ? 'PI-PayerId' : 'PI-EndToEndId'} header`);
    }
    const malformed = await call(agentB, 'GET', path, undefined, { 'pi-payerid': '123' });
    expect([malformed.status, problemType(malformed)]).toEqual([400, 'BadRequest']);
    const list = await call(agentB, 'GET', '/claims/');
    expect([list.status, problemType(list)]).toEqual([400, 'BadRequest']);
    expect(list.body).toContain('Participant');
    expect((await call(agentB, 'GET', `/claims/?Participant=${ISPB_B}`)).status).toBe(200);
  });

  it('answers a write with a signed 409 ResourceConflict when told to, without doing it, and takes the same request resent', async () => {
    const phone = '+5561988880091';
    const body = await signed('CreateEntryRequest', { Entry: { Key: phone, KeyType: 'PHONE', Account: account(ISPB_A), Owner: owner('11122233300') }, Reason: 'USER_REQUESTED', RequestId: randomUUID() }, keyA);
    sim.dict.conflictNextWrites(1);
    const before = sim.dict.resourceConflicts;
    const first = await call(agentA, 'POST', '/entries/', body);
    expect([first.status, problemType(first)]).toEqual([409, 'ResourceConflict']);
    expect(sim.dict.resourceConflicts - before).toBe(1);
    expect(sim.dict.entries.has(phone)).toBe(false);
    expect((await call(agentA, 'POST', '/entries/', body)).status).toBe(201);
  });

  it('enforces the ownership periods: no default confirmation before ResolutionPeriodEnd, no completion before CompletionPeriodEnd', async () => {
    const phone = '+5561988880040';
    const claim = await openClaim(phone);
    const id = claim.Id as string;
    const created = new Date(claim.LastModified as string).getTime();
    expect(new Date(claim.ResolutionPeriodEnd as string).getTime() - created).toBe(RESOLUTION_MS);
    expect(new Date(claim.CompletionPeriodEnd as string).getTime() - created).toBe(COMPLETION_MS);
    expect(claimOf(await claimStep(agentA, keyA, ISPB_A, id, 'acknowledge'), 'AcknowledgeClaimResponse').Status).toBe('WAITING_RESOLUTION');
    expect(problemType(await claimStep(agentA, keyA, ISPB_A, id, 'confirm', 'DEFAULT_OPERATION'))).toBe('ClaimResolutionPeriodNotEnded');
    await until(claim.ResolutionPeriodEnd);
    expect(claimOf(await claimStep(agentA, keyA, ISPB_A, id, 'confirm', 'DEFAULT_OPERATION'), 'ConfirmClaimResponse')).toMatchObject({ Status: 'CONFIRMED', ConfirmReason: 'DEFAULT_OPERATION' });
    // Confirmation removes the donor's entry; the key waits for the claimer. (The entry-read
    // bucket of this simulator is nearly empty by design, so the directory is read directly.)
    expect(sim.dict.entries.has(phone)).toBe(false);
    expect(problemType(await createEntry(agentA, keyA, ISPB_A, phone, '11122233300'))).toBe('EntryLockedByClaim');
    expect(problemType(await claimStep(agentB, keyB, ISPB_B, id, 'complete'))).toBe('ClaimCompletionPeriodNotEnded');
    await until(claim.CompletionPeriodEnd);
    expect(claimOf(await claimStep(agentB, keyB, ISPB_B, id, 'complete'), 'CompleteClaimResponse').Status).toBe('COMPLETED');
    expect(sim.dict.entries.get(phone)?.entry).toMatchObject({ Account: { Participant: ISPB_B }, Owner: { TaxIdNumber: '99988877766' } });
  }, 60_000);

  it('refuses a default cancellation of a portability before ResolutionPeriodEnd, and a confirmation of an OPEN claim', async () => {
    const claim = await openClaim('+5561988880041', 'PORTABILITY');
    const id = claim.Id as string;
    expect(claim.CompletionPeriodEnd).toBeUndefined();
    expect(problemType(await claimStep(agentA, keyA, ISPB_A, id, 'confirm'))).toBe('ClaimOperationInvalid');
    expect(problemType(await claimStep(agentA, keyA, ISPB_A, id, 'cancel', 'DEFAULT_OPERATION'))).toBe('ClaimResolutionPeriodNotEnded');
    expect(problemType(await claimStep(agentB, keyB, ISPB_B, id, 'cancel', 'DEFAULT_OPERATION'))).toBe('InvalidReason');
    await until(claim.ResolutionPeriodEnd);
    expect(claimOf(await claimStep(agentA, keyA, ISPB_A, id, 'cancel', 'DEFAULT_OPERATION'), 'CancelClaimResponse')).toMatchObject({ Status: 'CANCELLED', CancelledBy: 'DONOR' });
    expect(sim.dict.entries.get('+5561988880041')?.participant).toBe(ISPB_A);
  }, 30_000);
});
