import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp as buildFauxqs } from 'fauxqs';
import { createAwsClients } from '../../shared/aws/index.ts';
import type { AwsClients } from '../../shared/aws/index.ts';
import { startEventBridgeEmulator } from '../eventbridge/index.ts';
import { resolveTopology } from '../topology.ts';
import { provisionTopology } from './provision.ts';
import type { ProvisionedTopology } from './provision.ts';
import { closeServer, listen } from './node-server.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { fixFauxqsLongPolling } from './sqs-long-poll.ts';
import { inProcessSqs } from './sqs-in-process.ts';

const require = createRequire(import.meta.url);

/** kinesalite and dynalite: CommonJS factories of `http.Server`s (no type declarations). */
type LevelServerFactory = (options: Record<string, unknown>) => Server;

/**
 * The DynamoDB stand-ins the local stack can run: DynamoDB Local (AWS's own emulator, a JVM child
 * process; transactions, ReturnValuesOnConditionCheckFailure, TTL settings) or dynalite (in this
 * process; starts in a fraction of a second, neither of those). Chosen by measurement in
 * scripts/bench-dynamodb-standins.ts (docs/local-stack.md).
 */
export const LOCAL_DYNAMODB_STAND_INS = ['dynamodb-local', 'dynalite'] as const;
export type LocalDynamoDbStandIn = (typeof LOCAL_DYNAMODB_STAND_INS)[number];

/** The stand-in when neither {@link LocalStackOptions.dynamodb} nor `SELO_LOCAL_DYNAMODB` names one. */
export const DEFAULT_LOCAL_DYNAMODB: LocalDynamoDbStandIn = 'dynalite';

/**
 * The DynamoDB stand-in `SELO_LOCAL_DYNAMODB` names (`dynamodb-local` or `dynalite`), or the
 * default when it is unset or empty; any other value is a RangeError that names the variable.
 */
export function localDynamoDbFromEnv(env: Readonly<Record<string, string | undefined>>): LocalDynamoDbStandIn {
  const value = env['SELO_LOCAL_DYNAMODB'];
  if (value === undefined || value === '') return DEFAULT_LOCAL_DYNAMODB;
  const known = LOCAL_DYNAMODB_STAND_INS.find((name) => name === value);
  if (known === undefined) throw new RangeError(`SELO_LOCAL_DYNAMODB must be one of ${LOCAL_DYNAMODB_STAND_INS.join(', ')}, got ${JSON.stringify(value)}`);
  return known;
}

/** Ports of the local stand-ins; 0 picks a free one. */
export interface LocalStackPorts {
  /** fauxqs: SQS and S3 on one port. @defaultValue 0 */
  sqs?: number;
  /** kinesalite. @defaultValue 0 */
  kinesis?: number;
  /** DynamoDB (DynamoDB Local or dynalite). @defaultValue 0 */
  dynamodb?: number;
  /** selo's EventBridge emulator. @defaultValue 0 */
  events?: number;
}

/** Options of {@link startLocalStack}. */
export interface LocalStackOptions {
  /**
   * Address every server binds to.
   * @defaultValue '127.0.0.1'
   */
  host?: string;
  /** @defaultValue all 0 (ephemeral) */
  ports?: LocalStackPorts;
  /** @defaultValue 'sa-east-1' */
  region?: string;
  /** Account id in ARNs. @defaultValue '000000000000' */
  accountId?: string;
  /** Environment whose topology is provisioned. @defaultValue 'local' */
  environment?: string;
  /** Create the topology's resources once the servers are up. @defaultValue true */
  provision?: boolean;
  /** The PSP's ISPB, passed to workers through {@link LocalStack.env}. @defaultValue '99999004' */
  ispb?: string;
  /**
   * The DynamoDB stand-in. The one place it is chosen: `selo up`, the demo and every test stack
   * come through here.
   * @defaultValue `SELO_LOCAL_DYNAMODB` when set, else {@link DEFAULT_LOCAL_DYNAMODB}
   */
  dynamodb?: LocalDynamoDbStandIn;
}

/** Endpoint URLs of a running local stack, as `selo up` prints them. */
export interface LocalEndpoints {
  sqs: string;
  s3: string;
  events: string;
  kinesis: string;
  dynamodb: string;
  region: string;
}

/** A running local stack. */
export interface LocalStack {
  endpoints: LocalEndpoints;
  /** Which DynamoDB stand-in runs. */
  dynamodbStandIn: LocalDynamoDbStandIn;
  accountId: string;
  /** The provisioned topology, when `provision` was true. */
  provisioned: ProvisionedTopology | undefined;
  /** SDK clients pointed at the stack. Destroyed by `close`. */
  clients: AwsClients;
  /** Environment variables that point selo's configuration at this stack. */
  env(): Record<string, string>;
  /** Stops every server; idempotent; runs every step even if one fails. */
  close(): Promise<void>;
}

function validatePort(name: string, value: number | undefined): number {
  const port = value ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`ports.${name} must be an integer from 0 to 65535, got ${String(value)}`);
  }
  return port;
}

/**
 * Starts the local stand-ins for AWS (fauxqs for SQS and S3, kinesalite for Kinesis, DynamoDB
 * Local or dynalite for DynamoDB, selo's EventBridge emulator) and provisions the topology.
 * Everything but DynamoDB Local runs in this process; DynamoDB Local's JVM ends with `close()` or
 * when this process dies, however it dies, so nothing outlives either.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? 'sa-east-1';
  const accountId = options.accountId ?? '000000000000';
  const environment = options.environment ?? 'local';
  const ports = {
    sqs: validatePort('sqs', options.ports?.sqs),
    kinesis: validatePort('kinesis', options.ports?.kinesis),
    dynamodb: validatePort('dynamodb', options.ports?.dynamodb),
    events: validatePort('events', options.ports?.events),
  };
  const dynamodbStandIn = options.dynamodb ?? localDynamoDbFromEnv(process.env);
  if (!LOCAL_DYNAMODB_STAND_INS.includes(dynamodbStandIn)) throw new RangeError(`LocalStackOptions.dynamodb must be one of ${LOCAL_DYNAMODB_STAND_INS.join(', ')}, got ${JSON.stringify(dynamodbStandIn)}`);
  const cleanups: (() => Promise<void>)[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const failures: unknown[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'local stack did not close cleanly');
  };

  try {
    // The JVM takes seconds to start: it starts first and the others start meanwhile.
    const dynamoDbLocal = dynamodbStandIn === 'dynamodb-local' ? startDynamoDbLocal({ host, port: ports.dynamodb }) : undefined;
    if (dynamoDbLocal !== undefined) {
      // Registered now, so a failure of another stand-in still stops the JVM.
      cleanups.push(async () => {
        const started = await dynamoDbLocal.catch(() => undefined);
        await started?.close();
      });
    }
    // Long polls answer as on Amazon SQS (see sqs-long-poll.ts); without it fauxqs still works.
    await fixFauxqsLongPolling();
    // fauxqs's own start function binds every interface; its app bound here keeps to loopback.
    const fauxqs = buildFauxqs({ logger: false, defaultRegion: region, host: 'localhost' });
    await fauxqs.listen({ port: ports.sqs, host });
    cleanups.push(() => fauxqs.close());
    const sqsUrl = `http://${host}:${(fauxqs.server.address() as AddressInfo).port}`;

    const kinesalite = (require('kinesalite') as LevelServerFactory)({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });
    const kinesisPort = await listen(kinesalite, ports.kinesis, host);
    cleanups.push(() => closeServer(kinesalite));

    let dynamodbPort = ports.dynamodb;
    if (dynamoDbLocal === undefined) {
      const dynalite = (require('dynalite') as LevelServerFactory)({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      dynamodbPort = await listen(dynalite, ports.dynamodb, host);
      cleanups.push(() => closeServer(dynalite));
    }

    // The emulator delivers into fauxqs in this process, without the SDK and sockets (sqs-in-process.ts).
    const events = await startEventBridgeEmulator({ host, port: ports.events, region, accountId, sqsEndpoint: sqsUrl, sqsTransport: inProcessSqs(fauxqs, sqsUrl) });
    cleanups.push(() => events.close());
    if (dynamoDbLocal !== undefined) dynamodbPort = (await dynamoDbLocal).port;

    const endpoints: LocalEndpoints = {
      sqs: sqsUrl,
      s3: sqsUrl,
      events: events.url,
      kinesis: `http://${host}:${kinesisPort}`,
      dynamodb: `http://${host}:${dynamodbPort}`,
      region,
    };
    const clients = createAwsClients({ region, accountId, endpoints });
    cleanups.push(() => Promise.resolve(clients.destroy()));
    const provisioned = options.provision === false ? undefined : await provisionTopology(clients, resolveTopology(environment), region);

    return {
      endpoints,
      dynamodbStandIn,
      accountId,
      provisioned,
      clients,
      env: () => ({
        SELO_ISPB: options.ispb ?? '99999004',
        AWS_REGION: region,
        SELO_ENV: environment,
        SELO_AWS_ACCOUNT_ID: accountId,
        SELO_SQS_ENDPOINT: endpoints.sqs,
        SELO_S3_ENDPOINT: endpoints.s3,
        SELO_EVENTS_ENDPOINT: endpoints.events,
        SELO_KINESIS_ENDPOINT: endpoints.kinesis,
        SELO_DYNAMODB_ENDPOINT: endpoints.dynamodb,
      }),
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
