import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { loadSimulatorPki, startBcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import type { BcbSimulator } from '../../../infra/bcb-simulator/index.ts';
import { startLocalStack } from '../../../infra/local/index.ts';
import type { LocalStack } from '../../../infra/local/index.ts';
import { DEV_PKI_FILES, initDevPki } from '../../../infra/softhsm/index.ts';
import { resolveTopology } from '../../../infra/topology.ts';
import { paymentSagaId } from '../../../shared/events/index.ts';
import { SagaStore } from '../../../shared/saga/index.ts';
import { startSignWorker } from '../../../workers/sign/index.ts';
import type { SignWorker } from '../../../workers/sign/index.ts';
import { startTransmitWorker } from '../../../workers/transmit/index.ts';
import type { TransmitWorker } from '../../../workers/transmit/index.ts';
import { creditTransfer, paymentRequestedEntry, workerTestEnv } from '../../support/local-aws.ts';
import { createTestToken } from '../../support/softhsm.ts';
import type { TestToken } from '../../support/softhsm.ts';

const topology = resolveTopology('local');
const ISPB = '99999004';
let token: TestToken;
let pkiDir: string;
let stack: LocalStack;
let simulator: BcbSimulator;
let sign: SignWorker;
let transmit: TransmitWorker;

beforeAll(async () => {
  token = createTestToken();
  pkiDir = mkdtempSync(join(tmpdir(), 'selo-hsm-tls-'));
  const pki = await initDevPki({ dir: pkiDir, modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, pspIspb: ISPB });
  simulator = await startBcbSimulator({ ...loadSimulatorPki(pkiDir), adminPort: null });
  stack = await startLocalStack();
  // The mTLS client key never leaves the HSM: OpenSSL's pkcs11 engine signs the handshake.
  const { SELO_TLS_KEY: _pemKey, ...env } = workerTestEnv({
    stackEnv: stack.env(), token, pkiDir, bcbUrl: simulator.url,
    extra: { SELO_TLS_CERT: join(pkiDir, DEV_PKI_FILES.pspTlsClientHsmCertificate), SELO_TLS_KEY_LABEL: pki.manifest.psp.tlsKeyLabel, SELO_LOG_LEVEL: 'silent' },
  });
  sign = await startSignWorker({ env });
  transmit = await startTransmitWorker({ env });
}, 120_000);

afterAll(async () => {
  await transmit?.close();
  await sign?.close();
  await stack?.close();
  await simulator?.close();
  rmSync(pkiDir, { recursive: true, force: true });
  token?.cleanup();
});

describe('transmit worker with its mTLS key in the HSM', () => {
  it('delivers a payment the simulator settles, over a TLS session whose client key is held in SoftHSM', async () => {
    const endToEndId = `E${ISPB}202611281700${randomUUID().replace(/-/g, '').slice(0, 11)}`;
    const transaction = creditTransfer(endToEndId, { acceptanceDateTime: new Date().toISOString() });
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(topology.eventBusName, endToEndId, { message: 'pacs.008', transaction })] }));
    expect((await simulator.ledger.waitForDecision(endToEndId, 20_000)).status).toBe('settled');
    const sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
    await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 10_000 }).toBe('TRANSMITTED');
    expect(transmit.bcbStats().handshakes).toBeGreaterThanOrEqual(1);
  });
});
