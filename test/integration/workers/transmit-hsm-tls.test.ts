import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
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
import { generateEndToEndId } from '../../../shared/iso20022/index.ts';

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
    const endToEndId = generateEndToEndId(ISPB);
    const transaction = creditTransfer(endToEndId, { acceptanceDateTime: new Date().toISOString() });
    await stack.clients.events.send(new PutEventsCommand({ Entries: [paymentRequestedEntry(topology.eventBusName, endToEndId, { message: 'pacs.008', transaction })] }));
    expect((await simulator.ledger.waitForDecision(endToEndId, 20_000)).status).toBe('settled');
    const sagas = new SagaStore({ client: stack.clients.dynamodb, tableName: topology.sagaTable.name });
    await expect.poll(async () => (await sagas.get(paymentSagaId(endToEndId)))?.state, { timeout: 10_000 }).toBe('TRANSMITTED');
    expect(transmit.bcbStats().handshakes).toBeGreaterThanOrEqual(1);
  });

  it('reports the HSM on /ready: not ready while its PKCS#11 module cannot be loaded, ready once it can', async () => {
    // The module path points at nothing until the test "brings the HSM back".
    const modulePath = join(pkiDir, 'libpkcs11-outage.so');
    const { SELO_TLS_KEY: _pemKey, ...env } = workerTestEnv({
      stackEnv: stack.env(), token: { ...token, modulePath }, pkiDir, bcbUrl: simulator.url,
      extra: { SELO_TLS_CERT: join(pkiDir, DEV_PKI_FILES.pspTlsClientHsmCertificate), SELO_TLS_KEY_LABEL: 'selo-psp-tls', SELO_LOG_LEVEL: 'silent', SELO_HEALTH_PORT: '0' },
    });
    const outage = await startTransmitWorker({ env });
    try {
      const readiness = async (): Promise<{ status: number; hsm: boolean | undefined }> => {
        const response = await fetch(`http://127.0.0.1:${outage.healthPort ?? 0}/ready`);
        const body = (await response.json()) as { checks?: Record<string, { ok: boolean }> };
        return { status: response.status, hsm: body.checks?.hsm?.ok };
      };
      expect(await readiness()).toEqual({ status: 503, hsm: false });
      symlinkSync(token.modulePath, modulePath);
      await expect.poll(readiness, { timeout: 30_000, interval: 250 }).toEqual({ status: 200, hsm: true });
    } finally {
      await outage.close();
    }
    // The file's other worker, its key in the same (reachable) HSM, reports it ready.
    const response = await fetch(`http://127.0.0.1:${transmit.healthPort ?? 0}/ready`);
    expect(((await response.json()) as { checks?: Record<string, unknown> }).checks?.hsm).toMatchObject({ ok: true });
  }, 60_000);
});
