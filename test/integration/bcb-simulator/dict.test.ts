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

beforeAll(async () => {
  pki = await createSimulatorTestPki();
  sim = await startTestSimulator(pki, { dictEntryReadPolicy: { capacity: 3, refillPerSecond: 0.001 } });
  agentA = mtlsAgent(pki, pki.tlsA);
  agentB = mtlsAgent(pki, pki.tlsB);
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

async function call(agent: Agent, method: 'GET' | 'POST', path: string, body?: string): Promise<DictCall> {
  const response = await request(`${sim.dictUrl}${path}`, {
    method,
    dispatcher: agent,
    headers: { host: 'localhost', ...(body === undefined ? {} : { 'content-type': 'application/xml; charset=utf-8' }) },
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

async function claimStep(agent: Agent, key: SigningKey, ispb: string, id: string, step: 'acknowledge' | 'confirm' | 'cancel' | 'complete'): Promise<DictCall> {
  const schema = { acknowledge: 'AcknowledgeClaimRequest', confirm: 'ConfirmClaimRequest', cancel: 'CancelClaimRequest', complete: 'CompleteClaimRequest' }[step];
  const value: DictObject = { ClaimId: id, Participant: ispb, ...(step === 'confirm' || step === 'cancel' ? { Reason: 'USER_REQUESTED' } : {}), ...(step === 'complete' ? { RequestId: randomUUID() } : {}) };
  return call(agent, 'POST', `/claims/${id}/${step}`, await signed(schema, value, key));
}

async function openClaim(phone: string): Promise<string> {
  expect((await createEntry(agentA, keyA, ISPB_A, phone, '11122233300')).status).toBe(201);
  const body = await signed('CreateClaimRequest', { Claim: { Type: 'OWNERSHIP', Key: phone, KeyType: 'PHONE', ClaimerAccount: account(ISPB_B), Claimer: owner('99988877766') } }, keyB);
  const answer = await call(agentB, 'POST', '/claims/', body);
  expect(answer.status).toBe(201);
  const claim = verified(answer, 'CreateClaimResponse').Claim as DictObject;
  expect(claim).toMatchObject({ Status: 'OPEN', DonorParticipant: ISPB_A });
  return claim.Id as string;
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
    const id = await openClaim('+5561988880010');
    expect((verified(await claimStep(agentA, keyA, ISPB_A, id, 'acknowledge'), 'AcknowledgeClaimResponse').Claim as DictObject).Status).toBe('WAITING_RESOLUTION');
    expect((verified(await claimStep(agentA, keyA, ISPB_A, id, 'confirm'), 'ConfirmClaimResponse').Claim as DictObject).Status).toBe('CONFIRMED');
    expect((verified(await claimStep(agentB, keyB, ISPB_B, id, 'complete'), 'CompleteClaimResponse').Claim as DictObject).Status).toBe('COMPLETED');
    expect(sim.dict.entries.get('+5561988880010')?.participant).toBe(ISPB_B);
    const listed = verified(await call(agentB, 'GET', `/claims/?Participant=${ISPB_B}&Status=COMPLETED`), 'ListClaimsResponse');
    expect((listed.Claims as DictObject[]).map((c) => c.Id)).toContain(id);
  });

  it('refuses illegal claim transitions: complete before confirm, confirm by the claimer, acknowledge after cancel', async () => {
    const id = await openClaim('+5561988880011');
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
});
