import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { gunzipSync } from 'node:zlib';
import { buildPacs004, buildPacs008, generateEndToEndId, generateMessageId, generateReturnId } from '../../../shared/iso20022/index.ts';
import type { CreditTransfer } from '../../../shared/iso20022/index.ts';
import { buildCertificate, softwareSigner } from '../../../shared/pki/index.ts';
import type { DistinguishedName } from '../../../shared/pki/index.ts';
import { TrustStore, pemSigningKey, signSpi } from '../../../shared/xmldsig/index.ts';
import type { SigningKey } from '../../../shared/xmldsig/index.ts';
import { buildMultipart, multipartBoundary, parseMultipart, startBcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulator, BcbSimulatorOptions } from '../../../infra/bcb-simulator/index.ts';

/** ISPBs of the two test participants and the BCB. */
export const ISPB_A = '99999004';
export const ISPB_B = '99999005';
export const BCB_ISPB = '00038166';

/** A key and certificate in PEM. */
export interface PemIdentity {
  readonly keyPem: string;
  readonly certPem: string;
}

/** Everything the simulator tests need. */
export interface SimulatorTestPki {
  readonly caPem: string;
  readonly server: PemIdentity;
  readonly bcbSigning: PemIdentity;
  readonly tlsA: PemIdentity;
  readonly tlsB: PemIdentity;
  readonly signingA: PemIdentity;
  readonly signingB: PemIdentity;
  /** A client certificate for ISPB A issued by another CA. */
  readonly foreignTls: PemIdentity;
  readonly foreignCaPem: string;
}

function keyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

async function caOf(name: string): Promise<{ name: DistinguishedName; key: { privateKey: KeyObject; publicKey: KeyObject }; pem: string }> {
  const dn: DistinguishedName = [{ type: 'C', value: 'BR' }, { type: 'O', value: 'selo simulator tests' }, { type: 'CN', value: name }];
  const key = keyPair();
  const cert = await buildCertificate({ subject: dn, issuer: dn, subjectPublicKey: key.publicKey, signer: softwareSigner(key.privateKey), ca: true });
  return { name: dn, key, pem: cert.pem };
}

async function leaf(
  ca: Awaited<ReturnType<typeof caOf>>,
  cn: string,
  ispb: string | undefined,
  usage: 'server' | 'client' | 'signing',
): Promise<PemIdentity> {
  const key = keyPair();
  const subject: DistinguishedName = [
    { type: 'C', value: 'BR' },
    { type: 'O', value: 'selo simulator tests' },
    ...(ispb === undefined ? [] : [{ type: 'serialNumber', value: ispb }]),
    { type: 'CN', value: cn },
  ];
  const cert = await buildCertificate({
    subject, issuer: ca.name, subjectPublicKey: key.publicKey, issuerPublicKey: ca.key.publicKey, signer: softwareSigner(ca.key.privateKey),
    ...(usage === 'signing'
      ? { keyUsage: ['digitalSignature', 'nonRepudiation'] as const }
      : { keyUsage: ['digitalSignature', 'keyEncipherment'] as const, extendedKeyUsage: [usage === 'server' ? 'serverAuth' as const : 'clientAuth' as const] }),
    ...(usage === 'server' ? { subjectAltNames: { dns: ['localhost'], ip: ['127.0.0.1'] } } : {}),
  });
  return { keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certPem: cert.pem };
}

/** Builds the test PKI in memory (a second CA issues the foreign client certificate). */
export async function createSimulatorTestPki(): Promise<SimulatorTestPki> {
  const ca = await caOf('selo simulator test CA');
  const other = await caOf('some other CA');
  return {
    caPem: ca.pem,
    server: await leaf(ca, 'localhost', undefined, 'server'),
    bcbSigning: await leaf(ca, 'BCB signing', BCB_ISPB, 'signing'),
    tlsA: await leaf(ca, `psp-${ISPB_A}`, ISPB_A, 'client'),
    tlsB: await leaf(ca, `psp-${ISPB_B}`, ISPB_B, 'client'),
    signingA: await leaf(ca, `psp-${ISPB_A} signing`, ISPB_A, 'signing'),
    signingB: await leaf(ca, `psp-${ISPB_B} signing`, ISPB_B, 'signing'),
    foreignTls: await leaf(other, `psp-${ISPB_A}`, ISPB_A, 'client'),
    foreignCaPem: other.pem,
  };
}

/** Starts a simulator on ephemeral ports for the test PKI; `overrides` win. */
export function startTestSimulator(pki: SimulatorTestPki, overrides: Partial<BcbSimulatorOptions> = {}): Promise<BcbSimulator> {
  return startBcbSimulator({
    tlsKey: pki.server.keyPem,
    tlsCertificate: pki.server.certPem,
    clientCa: pki.caPem,
    signingKey: pemSigningKey(pki.bcbSigning.keyPem, pki.bcbSigning.certPem),
    participants: [
      { ispb: ISPB_A, signingCertificates: [pki.signingA.certPem] },
      { ispb: ISPB_B, signingCertificates: [pki.signingB.certPem] },
    ],
    longPollMs: 100,
    ...overrides,
  });
}

/** An undici agent presenting `identity` over mTLS, trusting the test CA. */
export function mtlsAgent(pki: SimulatorTestPki, identity: PemIdentity, extra: Record<string, unknown> = {}): Agent {
  return new Agent({ connect: { cert: identity.certPem, key: identity.keyPem, ca: pki.caPem, ...extra }, keepAliveTimeout: 10_000 });
}

/** What a test needs to act as participants A and B and to read what the BCB signs. */
export interface TestParticipants {
  agentA: Agent;
  agentB: Agent;
  keyA: SigningKey;
  keyB: SigningKey;
  /** The BCB's signing certificate, bound to its ISPB. */
  bcbTrust: TrustStore;
  /** Closes both agents. */
  close(): Promise<void>;
}

/** mTLS agents, signing keys and the BCB trust store of the two test participants. */
export function testParticipants(pki: SimulatorTestPki): TestParticipants {
  const bcbTrust = new TrustStore();
  bcbTrust.add(pki.bcbSigning.certPem, { ispb: BCB_ISPB });
  const agentA = mtlsAgent(pki, pki.tlsA);
  const agentB = mtlsAgent(pki, pki.tlsB);
  return {
    agentA,
    agentB,
    keyA: pemSigningKey(pki.signingA.keyPem, pki.signingA.certPem),
    keyB: pemSigningKey(pki.signingB.keyPem, pki.signingB.certPem),
    bcbTrust,
    close: async () => {
      await agentA.close();
      await agentB.close();
    },
  };
}

/** A signed pacs.008 from `from` to `to` with one transaction. */
export async function signedPacs008(
  key: SigningKey,
  options: {
    from?: string; to?: string; endToEndId?: string; bizMsgIdr?: string; amount?: string; acceptance?: Date; tx?: Partial<CreditTransfer>;
    /** Changes the built message before it is signed (content the builder itself would refuse). */
    alter?: (unsigned: string) => string;
  } = {},
): Promise<{ xml: string; endToEndId: string; bizMsgIdr: string }> {
  const from = options.from ?? ISPB_A;
  const now = new Date();
  const endToEndId = options.endToEndId ?? generateEndToEndId(from);
  const bizMsgIdr = options.bizMsgIdr ?? generateMessageId(from);
  const xml = buildPacs008({
    appHdr: { fromIspb: from, toIspb: BCB_ISPB, bizMsgIdr, creDt: now.toISOString() },
    msgId: bizMsgIdr,
    creDtTm: now.toISOString(),
    transactions: [
      {
        endToEndId,
        amount: options.amount ?? '10.50',
        acceptanceDateTime: (options.acceptance ?? now).toISOString(),
        localInstrument: 'MANU',
        debtor: { name: 'Fulano de Tal', taxId: '12345678901' },
        debtorAccount: { number: '123456', branch: '0001', type: 'CACC' },
        debtorAgentIspb: from,
        creditorAgentIspb: options.to ?? ISPB_B,
        creditor: { taxId: '10987654321' },
        creditorAccount: { number: '654321', branch: '0001', type: 'CACC' },
        purpose: 'IPAY',
        ...options.tx,
      },
    ],
  });
  return { xml: await signSpi(options.alter === undefined ? xml : options.alter(xml), key), endToEndId, bizMsgIdr };
}

/**
 * A signed pacs.004 by which `from` (default B, the original receiver) returns `amount` of the
 * payment `originalEndToEndId` to `to` (default A), reason MD06.
 */
export async function signedPacs004(
  key: SigningKey,
  options: { originalEndToEndId: string; amount: string; from?: string; to?: string },
): Promise<{ xml: string; returnId: string }> {
  const from = options.from ?? ISPB_B;
  const returnId = generateReturnId(from);
  const bizMsgIdr = generateMessageId(from);
  const now = new Date().toISOString();
  const xml = buildPacs004({
    appHdr: { fromIspb: from, toIspb: BCB_ISPB, bizMsgIdr, creDt: now },
    msgId: bizMsgIdr,
    creDtTm: now,
    returns: [{ returnId, originalEndToEndId: options.originalEndToEndId, amount: options.amount, reason: { code: 'MD06' }, debtorAgentIspb: from, creditorAgentIspb: options.to ?? ISPB_A }],
  });
  return { xml: await signSpi(xml, key), returnId };
}

/** Headers every ICOM request sends: Host without port (DESIGN §2). */
export const ICOM_HEADERS = { host: 'localhost' } as const;

/** POSTs one message (or several as multipart/mixed) to ICOM. */
export async function postMessages(
  agent: Dispatcher,
  sim: BcbSimulator,
  pathIspb: string,
  xml: string | Buffer | readonly string[],
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const multipart = Array.isArray(xml);
  const built = multipart ? buildMultipart((xml as readonly string[]).map((body) => ({ headers: { 'Content-Type': 'application/xml; charset=utf-8' }, body }))) : undefined;
  const response = await request(`${sim.icomUrl}/in/${pathIspb}/msgs`, {
    method: 'POST',
    dispatcher: agent,
    headers: { ...ICOM_HEADERS, 'content-type': built === undefined ? 'application/xml; charset=utf-8' : `multipart/mixed; boundary=${built.boundary}`, ...headers },
    body: built === undefined ? (xml as string | Buffer) : built.body,
  });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

/** A message read from a stream. */
export interface StreamedMessage {
  readonly resourceId: string;
  readonly xml: string;
}

/** One stream answer. */
export interface StreamAnswer {
  readonly status: number;
  readonly pullNext: string | undefined;
  readonly messages: StreamedMessage[];
  readonly body: string;
}

/** GETs `path` (stream/start or a PI-Pull-Next) and reads the messages. */
export async function pull(agent: Dispatcher, sim: BcbSimulator, path: string, options: { multipart?: boolean; gzip?: boolean; method?: 'GET' | 'DELETE' } = {}): Promise<StreamAnswer> {
  const response = await request(`${sim.url}${path}`, {
    method: options.method ?? 'GET',
    dispatcher: agent,
    headers: { ...ICOM_HEADERS, accept: options.multipart === false ? 'application/xml' : 'multipart/mixed', ...(options.gzip === true ? { 'accept-encoding': 'gzip' } : {}) },
  });
  let raw = Buffer.from(await response.body.arrayBuffer());
  if (response.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
  const pullNext = response.headers['pi-pull-next'] as string | undefined;
  const contentType = String(response.headers['content-type'] ?? '');
  const messages: StreamedMessage[] = [];
  if (response.statusCode === 200 && contentType.startsWith('multipart/mixed')) {
    for (const part of parseMultipart(raw, multipartBoundary(contentType) ?? '')) messages.push({ resourceId: part.headers['pi-resourceid'] ?? '', xml: part.body.toString('utf8') });
  } else if (response.statusCode === 200 && contentType.startsWith('application/xml')) {
    messages.push({ resourceId: String(response.headers['pi-resourceid'] ?? ''), xml: raw.toString('utf8') });
  }
  return { status: response.statusCode, pullNext, messages, body: raw.toString('utf8') };
}

/** Reads `ispb`'s stream until it answers 204, confirms with DELETE, and returns what came. */
export async function drainStream(agent: Dispatcher, sim: BcbSimulator, ispb: string): Promise<StreamedMessage[]> {
  const all: StreamedMessage[] = [];
  let answer = await pull(agent, sim, `/api/v1/out/${ispb}/stream/start`);
  while (answer.status === 200) {
    all.push(...answer.messages);
    answer = await pull(agent, sim, answer.pullNext ?? '');
  }
  if (answer.pullNext !== undefined) await pull(agent, sim, answer.pullNext, { method: 'DELETE' });
  return all;
}

/** The local name of the `Document` body and a few fields, read with regular expressions (test only). */
export function describe(xml: string): { type: string; status?: string; reason?: string; endToEndId?: string; fr?: string; to?: string } {
  const ns = /<Envelope xmlns="https:\/\/www\.bcb\.gov\.br\/pi\/([a-z]{4}\.\d{3})\//.exec(xml)?.[1] ?? 'unknown';
  const pick = (name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  const status = pick('TxSts');
  const reason = pick('Cd') ?? pick('RjctgPtyRsn');
  const endToEndId = pick('OrgnlEndToEndId') ?? pick('EndToEndId');
  const fr = /<Fr>[\s\S]*?<Id>([^<]*)<\/Id>/.exec(xml)?.[1];
  const to = /<To>[\s\S]*?<Id>([^<]*)<\/Id>/.exec(xml)?.[1];
  return { type: ns, ...(status === undefined ? {} : { status }), ...(reason === undefined ? {} : { reason }), ...(endToEndId === undefined ? {} : { endToEndId }), ...(fr === undefined ? {} : { fr }), ...(to === undefined ? {} : { to }) };
}
