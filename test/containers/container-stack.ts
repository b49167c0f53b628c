import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GenericContainer, Wait } from 'testcontainers';
import type { StartedTestContainer } from 'testcontainers';
import type { WorkerName } from '../../bin/worker-set.ts';
import { WORKER_NAMES } from '../../bin/worker-set.ts';
import type { LedgerPayment, ReceivedMessage } from '../../infra/bcb-simulator/index.ts';
import { createAwsClients } from '../../shared/aws/index.ts';
import type { AwsClients } from '../../shared/aws/index.ts';

const run = promisify(execFile);

/** The images the global setup built (scripts/containers.sh prepare). */
export interface ContainerImages {
  workerImage: string;
  stackImage: string;
  startedDockerd: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    containerImages: ContainerImages;
  }
}

/** The image's unprivileged user (Dockerfile: uid/gid 10001). */
export const IMAGE_UID = 10001;
/** selo's ISPB in the development PKI `selo pki init` writes. */
export const SELO_ISPB = '99999004';
/** Where the image keeps the token and the PKI; a host folder is mounted there. */
const STATE_IN_CONTAINER = '/app/.selo';

/** `docker <args>`; its stdout, trimmed. */
export async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

/** The container's health as Docker's HEALTHCHECK sees it (`starting`, `healthy`, `unhealthy`). */
export async function healthOf(id: string): Promise<string> {
  return docker('inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{end}}', id);
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function chownTree(path: string): void {
  chownSync(path, IMAGE_UID, IMAGE_UID);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry));
}

/** Waits (bounded) until `check` resolves true; false when the time ran out. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * selo as compose runs it, through testcontainers: an init container (SoftHSM token and the
 * development PKI in a host folder mounted at /app/.selo), the stack container (`selo up
 * --no-workers`: stand-ins and BCB simulator) and one container per worker, all on the host's
 * network with ports picked free here. Ryuk is off (its image cannot be pulled): `close`
 * removes every container this started.
 */
export class ContainerStack {
  readonly stateDir: string;
  readonly ports: { sqs: number; kinesis: number; dynamodb: number; events: number; bcb: number; admin: number; health: Record<WorkerName, number>; spareHealth: number };
  readonly clients: AwsClients;
  readonly #images: ContainerImages;
  readonly #started: StartedTestContainer[] = [];
  readonly workers = new Map<WorkerName, StartedTestContainer>();

  private constructor(images: ContainerImages, stateDir: string, ports: ContainerStack['ports']) {
    this.#images = images;
    this.stateDir = stateDir;
    this.ports = ports;
    const endpoint = (port: number): string => `http://127.0.0.1:${port}`;
    this.clients = createAwsClients({
      region: 'sa-east-1',
      accountId: '000000000000',
      endpoints: { sqs: endpoint(ports.sqs), s3: endpoint(ports.sqs), kinesis: endpoint(ports.kinesis), dynamodb: endpoint(ports.dynamodb), events: endpoint(ports.events) },
    });
  }

  /** Creates the token and the PKI, starts the stack and waits for its ready line. */
  static async start(images: ContainerImages): Promise<ContainerStack> {
    const stateDir = mkdtempSync(join(tmpdir(), 'selo-containers-'));
    mkdirSync(join(stateDir, 'softhsm', 'tokens'), { recursive: true, mode: 0o700 });
    mkdirSync(join(stateDir, 'pki'));
    chownTree(stateDir);
    const [sqs, kinesis, dynamodb, events, bcb, admin, spareHealth, ...health] = await Promise.all(Array.from({ length: 7 + WORKER_NAMES.length }, () => freePort()));
    const ports = {
      sqs: sqs ?? 0, kinesis: kinesis ?? 0, dynamodb: dynamodb ?? 0, events: events ?? 0, bcb: bcb ?? 0, admin: admin ?? 0, spareHealth: spareHealth ?? 0,
      health: Object.fromEntries(WORKER_NAMES.map((name, i) => [name, health[i] ?? 0])) as Record<WorkerName, number>,
    };
    const stack = new ContainerStack(images, stateDir, ports);
    try {
      await stack.#start(stack.#container(images.workerImage)
        .withEntrypoint(['node', '/app/bin/selo.ts'])
        .withCommand(['pki', 'init', '--dir', `${STATE_IN_CONTAINER}/pki`])
        .withWaitStrategy(Wait.forOneShotStartup())
        .withStartupTimeout(120_000));
      await stack.#start(stack.#container(images.stackImage)
        .withCommand([
          'up', '--no-workers', '--pki-dir', `${STATE_IN_CONTAINER}/pki`, '--sqs-port', String(ports.sqs), '--kinesis-port', String(ports.kinesis),
          '--dynamodb-port', String(ports.dynamodb), '--events-port', String(ports.events), '--bcb-port', String(ports.bcb), '--bcb-admin-port', String(ports.admin),
        ])
        .withWaitStrategy(Wait.forLogMessage('selo: ready'))
        .withStartupTimeout(120_000));
      return stack;
    } catch (error) {
      await stack.close();
      throw error;
    }
  }

  /** A container of `image` on the host network with the state folder mounted. */
  #container(image: string): GenericContainer {
    return new GenericContainer(image).withNetworkMode('host').withBindMounts([{ source: this.stateDir, target: STATE_IN_CONTAINER, mode: 'rw' }]);
  }

  /** Starts `container` and remembers it for `close`; a failed start says what the container printed. */
  async #start(container: GenericContainer): Promise<StartedTestContainer> {
    const output: string[] = [];
    container.withLogConsumer((stream) => stream.on('data', (chunk: Buffer | string) => output.push(String(chunk))));
    try {
      const started = await container.start();
      this.#started.push(started);
      return started;
    } catch (error) {
      throw new Error(`${(error as Error).message}; the container printed:\n${output.join('').split('\n').slice(-30).join('\n')}`, { cause: error });
    }
  }

  /** What every worker reads: what `selo up --no-workers` prints, with this stack's ports. */
  workerEnv(name: WorkerName): Record<string, string> {
    const local = (port: number): string => `http://127.0.0.1:${port}`;
    return {
      SELO_ENV: 'local', SELO_ISPB: SELO_ISPB, AWS_REGION: 'sa-east-1', SELO_AWS_ACCOUNT_ID: '000000000000',
      SELO_SQS_ENDPOINT: local(this.ports.sqs), SELO_S3_ENDPOINT: local(this.ports.sqs), SELO_KINESIS_ENDPOINT: local(this.ports.kinesis),
      SELO_DYNAMODB_ENDPOINT: local(this.ports.dynamodb), SELO_EVENTS_ENDPOINT: local(this.ports.events), SELO_BCB_URL: `https://127.0.0.1:${this.ports.bcb}`,
      SELO_SIGNING_CERT: `${STATE_IN_CONTAINER}/pki/psp-signing.crt`, SELO_BCB_CA: `${STATE_IN_CONTAINER}/pki/ca.crt`,
      SELO_BCB_SIGNING_CERT: `${STATE_IN_CONTAINER}/pki/bcb-signing.crt`, SELO_TLS_CERT: `${STATE_IN_CONTAINER}/pki/psp-tls-client.crt`,
      SELO_TLS_KEY: `${STATE_IN_CONTAINER}/pki/psp-tls-client.key`, SELO_HEALTH_PORT: String(this.ports.health[name]),
      SELO_LOG_LEVEL: 'warn', SELO_BACKOFF_BASE_SECONDS: '1', SELO_BACKOFF_MAX_SECONDS: '5', SELO_SQS_WAIT_SECONDS: '1',
    };
  }

  /** `selo worker <name>` in its own container, started once Docker's health check passes. */
  async startWorker(name: WorkerName): Promise<StartedTestContainer> {
    const started = await this.#start(this.#container(this.#images.workerImage)
      .withEnvironment(this.workerEnv(name))
      .withCommand([name])
      .withWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(120_000));
    this.workers.set(name, started);
    return started;
  }

  /** One more `selo worker <name>` container with `env` over the usual, started once it says it runs (healthy or not). */
  async startExtraWorker(name: WorkerName, env: Record<string, string>): Promise<StartedTestContainer> {
    return this.#start(this.#container(this.#images.workerImage)
      .withEnvironment({ ...this.workerEnv(name), ...env })
      .withCommand([name])
      .withWaitStrategy(Wait.forLogMessage('selo: workers ready'))
      .withStartupTimeout(120_000));
  }

  /** Starts a stopped or killed container again and waits until Docker reports it healthy. */
  async restart(id: string): Promise<void> {
    await docker('start', id);
    if (!(await until(async () => (await healthOf(id)) === 'healthy', 120_000, 500))) throw new Error(`container ${id} did not become healthy again within 120 s`);
  }

  /** GET on the simulator's admin endpoint (plain HTTP on 127.0.0.1). */
  async admin<T>(path: string, init?: { method: string; body: unknown }): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${this.ports.admin}${path}`, init === undefined ? {} : { method: init.method, body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } });
    if (!response.ok) throw new Error(`admin ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  ledgerPayments(): Promise<LedgerPayment[]> {
    return this.admin<LedgerPayment[]>('/ledger/payments');
  }

  ledgerReceived(): Promise<ReceivedMessage[]> {
    return this.admin<ReceivedMessage[]>('/ledger/received');
  }

  /** Removes every container started here (newest first) and the state folder. */
  async close(): Promise<void> {
    for (const container of this.#started.reverse()) await container.stop({ timeout: 5_000 }).catch(() => undefined);
    this.#started.length = 0;
    this.clients.destroy();
    // Files the containers wrote belong to the image's user; this process is root (or owns the folder).
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
