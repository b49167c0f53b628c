import { X509Certificate, createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { DEV_PKI_FILES, initDevPki, issueDevCrl } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { encodeEventBody, paymentSagaId } from '../../../shared/events/index.ts';
import { createLogger } from '../../../shared/logging/index.ts';
import { generateEndToEndId, generateMessageId } from '../../../shared/iso20022/index.ts';
import { buildCertificate, certificateSubject, softwareSigner } from '../../../shared/pki/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import type { SagaState } from '../../../shared/saga/index.ts';
import { pemSigningKey } from '../../../shared/xmldsig/index.ts';
import { startVerifyWorker } from '../../../workers/verify/index.ts';
import type { VerifyWorker } from '../../../workers/verify/index.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';
import { collectFacts } from '../../support/fact-collector.ts';
import type { FactCollector } from '../../support/fact-collector.ts';
import { subscribeQueue, workerTestEnv } from '../../support/local-aws.ts';
import { bcbMessageReceived, signedPacs002, statusOf } from '../../unit/workers/verify-messages.ts';
import type { BcbSender } from '../../unit/workers/verify-messages.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let verify: VerifyWorker;
let sagas: SagaStore;
let verifyUrl: string;
/** The BCB's current signing certificate (bcb-signing.crt of the dev PKI). */
let bcb: BcbSender;
/** A second BCB signing certificate of the dev CA, trusted like the first (a rotation), revoked by the tests. */
let rotated: BcbSender;
let rotatedPem: string;
/** The verify worker's log lines (JSON). */
const logLines: string[] = [];

let facts: FactCollector;

async function transmittedPayment(): Promise<{ endToEndId: string; sagaId: string }> {
  const endToEndId = generateEndToEndId(ISPB);
  const sagaId = paymentSagaId(endToEndId);
  await sagas.create({ sagaId, ids: { endToEndId, bizMsgIdr: generateMessageId(ISPB) }, reason: 'test', attempt: 1 });
  for (const to of ['SIGNED', 'TRANSMITTING', 'TRANSMITTED'] as const satisfies readonly SagaState[]) {
    await sagas.transition({ sagaId, to, reason: 'test', attempt: 1, idempotencyKey: `test-${to}` });
  }
  return { endToEndId, sagaId };
}

/** Delivers an ACSC for a new transmitted payment, signed by `sender`, as the receive worker would. */
async function deliverSettlement(sender: BcbSender): Promise<{ sagaId: string; resourceId: string }> {
  const { endToEndId, sagaId } = await transmittedPayment();
  const resourceId = randomUUID().replace(/-/g, '');
  await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: verifyUrl, MessageBody: encodeEventBody(bcbMessageReceived(resourceId, await signedPacs002(sender, statusOf(endToEndId, 'ACSC')))) }));
  return { sagaId, resourceId };
}

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-verify-revocation-'));
  const pki = await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  // A second BCB signing certificate from the dev CA, with the first one's subject attributes.
  const caCert = new X509Certificate(readFileSync(pki.files.caCertificate));
  const caKey = createPrivateKey(readFileSync(pki.files.caKey));
  const current = new X509Certificate(readFileSync(pki.files.bcbSigningCertificate));
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const built = await buildCertificate({
    subject: certificateSubject(current), issuer: certificateSubject(caCert), subjectPublicKey: keys.publicKey, issuerPublicKey: caCert.publicKey,
    signer: softwareSigner(caKey), keyUsage: ['digitalSignature', 'nonRepudiation'],
  });
  rotatedPem = built.pem;
  writeFileSync(join(pkiDir, 'bcb-trust.pem'), `${readFileSync(pki.files.bcbSigningCertificate, 'utf8')}${rotatedPem}`);
  bcb = { key: pemSigningKey(readFileSync(pki.files.bcbSigningKey, 'utf8'), readFileSync(pki.files.bcbSigningCertificate, 'utf8')), toIspb: ISPB };
  rotated = { key: pemSigningKey(keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), rotatedPem), toIspb: ISPB };

  stack = await startLocalStack();
  sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
  verifyUrl = stack.provisioned?.queues.verify?.url ?? '';
  facts = collectFacts(stack.clients.sqs, await subscribeQueue(stack.clients, topology.eventBusName, 'downstream-revocation', { source: ['selo.verify'] }));

  verify = await startVerifyWorker({
    env: workerTestEnv({
      stackEnv: stack.env(), token, pkiDir,
      extra: {
        SELO_BCB_SIGNING_CERT: join(pkiDir, 'bcb-trust.pem'),
        // The dev CA's CRL (selo pki init writes it, empty) and the CA that signs it; SELO_REVOCATION defaults to require.
        SELO_BCB_CRL_FILES: join(pkiDir, DEV_PKI_FILES.caCrl),
        SELO_BCB_CRL_ISSUERS: pki.files.caCertificate,
        // A message whose CRL is stale is retried: 1–2 s, then 2–4 s, … so that the five receives
        // of the verify queue outlast the CRL refresh in the last test.
        SELO_BACKOFF_BASE_SECONDS: '2', SELO_BACKOFF_MAX_SECONDS: '8',
      },
    }),
    logger: createLogger({ name: 'selo.verify', level: 'info', destination: { write: (line: string) => { logLines.push(line); } } }),
  });
}, 120_000);

afterAll(async () => {
  await facts?.stop();
  await verify?.close();
  await stack?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('verify worker: revoked BCB signing certificates', () => {
  it('settles a payment on an ACSC signed with a certificate the CRL does not list', async () => {
    const { sagaId } = await deliverSettlement(rotated);
    await facts.factOf(sagaId, 'PaymentSettled');
    expect((await sagas.get(sagaId))?.state).toBe('SETTLED');
  });

  it('quarantines with CERTIFICATE_REVOKED a message signed with a certificate revoked after the start (the CRL file is reloaded), acts on nothing, and goes on', async () => {
    const { revoked } = await issueDevCrl({ dir: pkiDir, revoke: [{ certificatePem: rotatedPem, reason: 'keyCompromise' }] });
    expect(revoked).toHaveLength(1);
    // The checker looks at the file's modification time at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const { sagaId, resourceId } = await deliverSettlement(rotated);
    const invalid = await facts.factOf(`INBOX#${resourceId}`, 'SignatureInvalid');
    const data = invalid.detail.data as { code: string; reason: string; quarantine: { bucket: string; key: string } };
    expect(data.code).toBe('CERTIFICATE_REVOKED');
    expect(data.reason).toMatch(/revoked by its issuer at .* \(keyCompromise\)/);
    const object = await stack.clients.s3.send(new GetObjectCommand({ Bucket: data.quarantine.bucket, Key: data.quarantine.key }));
    expect(object.Metadata?.['selo-reason-code']).toBe('CERTIFICATE_REVOKED');
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
    expect(facts.has(sagaId, 'PaymentSettled')).toBe(false);

    // The worker goes on: the current certificate still settles.
    const next = await deliverSettlement(bcb);
    await facts.factOf(next.sagaId, 'PaymentSettled');
  });

  it('retries, never quarantines, a message whose CRL is past nextUpdate (require), and settles it once the CRL file is refreshed', async () => {
    const day = 86_400_000;
    await issueDevCrl({ dir: pkiDir, thisUpdate: new Date(Date.now() - 2 * day), nextUpdate: new Date(Date.now() - day) });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const { sagaId, resourceId } = await deliverSettlement(bcb);
    await expect.poll(() => logLines.some((line) => line.includes('"CRL_EXPIRED"')), { timeout: 30_000 }).toBe(true);
    expect((await sagas.get(sagaId))?.state).toBe('TRANSMITTED');
    expect(facts.has(`INBOX#${resourceId}`, 'SignatureInvalid')).toBe(false);
    expect(logLines.find((line) => line.includes('"CRL_EXPIRED"'))).toMatch(/expired at .* \(nextUpdate\); refresh the file/);

    await issueDevCrl({ dir: pkiDir });
    await facts.factOf(sagaId, 'PaymentSettled');
    expect(facts.has(`INBOX#${resourceId}`, 'SignatureInvalid')).toBe(false);
  });
});
