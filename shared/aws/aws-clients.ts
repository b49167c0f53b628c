import { SQSClient } from '@aws-sdk/client-sqs';
import { S3Client } from '@aws-sdk/client-s3';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import type { AwsConfig, AwsEndpoints } from '../config/index.ts';
import { KeyedSha256 } from './keyed-sha256.ts';
import { leanClient } from './lean-client.ts';
import { UndiciRequestHandler } from './undici-request-handler.ts';

/** The AWS SDK v3 clients selo uses, built once per process. */
export interface AwsClients {
  sqs: SQSClient;
  s3: S3Client;
  events: EventBridgeClient;
  kinesis: KinesisClient;
  dynamodb: DynamoDBClient;
  /** Destroys every client's sockets. Idempotent. */
  destroy(): void;
}

/** Credentials the local stand-ins accept; they check none. */
const LOCAL_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

interface ClientSettings {
  region: string;
  cacheMiddleware: true;
  sha256: typeof KeyedSha256;
  endpoint?: string;
  credentials?: typeof LOCAL_CREDENTIALS;
  requestHandler?: NodeHttpHandler | UndiciRequestHandler;
}

/**
 * The JSON-protocol clients (SQS, EventBridge, Kinesis, DynamoDB) send through undici, in AWS and
 * locally: about 0.7× the CPU per call of the SDK's node:http handler over plain HTTP on loopback
 * (scripts/bench-sdk-call.ts; not measured over TLS to AWS). S3, with streamed bodies and
 * checksums, keeps the SDK's own handler.
 */
const UNDICI_SERVICES: ReadonlySet<keyof AwsEndpoints> = new Set(['sqs', 'events', 'kinesis', 'dynamodb']);

function settingsFor(config: AwsConfig, service: keyof AwsEndpoints): ClientSettings {
  const endpoint = config.endpoints[service];
  const undici: { requestHandler?: UndiciRequestHandler } = UNDICI_SERVICES.has(service) ? { requestHandler: new UndiciRequestHandler() } : {};
  // Each command class's middleware chain is built once per client, not on every call (selo adds
  // no middleware after a client is made). Measured on a PutItem loop: 369 against 424 µs of CPU
  // per call (scripts/bench-sdk-call.ts). A send with options (sqs-consumer's abortSignal) still
  // builds its chain and empties that client's cache, so it helps SQS least. The concurrent sends
  // of one command class then share one handler context, which the SDK's steps write per call
  // (endpoint, auth scheme, signing region): the same values for every call of a client here, one
  // endpoint and region each (SQS's queue URLs all on its one host).
  // Every client signs with KeyedSha256: the SDK's SHA-256, an HMAC key in bytes handed over as a
  // KeyObject (about 0.4× the CPU per HMAC on Node 24; keyed-sha256.ts).
  if (endpoint === undefined) return { region: config.region, cacheMiddleware: true, sha256: KeyedSha256, ...undici };
  // Local stand-ins: plain HTTP/1.1 with keep-alive. kinesis-local breaks on large responses
  // through the SDK's HTTP/2 handler (DESIGN §3), and one handler type everywhere keeps the
  // local path uniform.
  return {
    region: config.region,
    cacheMiddleware: true,
    sha256: KeyedSha256,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    requestHandler: undici.requestHandler ?? new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  };
}

/**
 * Builds the SDK clients from configuration. With no endpoint configured for a service, the
 * client talks to AWS with the default credential chain; with one, it talks to that endpoint (a
 * local stand-in) with dummy credentials. The JSON-protocol clients are made lean
 * ({@link leanClient}: one SigV4 signer per auth scheme, the user agent computed once).
 */
export function createAwsClients(config: AwsConfig): AwsClients {
  const sqs = leanClient(new SQSClient({ ...settingsFor(config, 'sqs') }));
  // Path-style addressing locally: `bucket.localhost` does not resolve without DNS tricks.
  const s3 = new S3Client({ ...settingsFor(config, 's3'), forcePathStyle: config.endpoints.s3 !== undefined });
  const events = leanClient(new EventBridgeClient({ ...settingsFor(config, 'events') }));
  const kinesis = leanClient(new KinesisClient({ ...settingsFor(config, 'kinesis') }));
  const dynamodb = leanClient(new DynamoDBClient({ ...settingsFor(config, 'dynamodb') }));
  let destroyed = false;
  return {
    sqs,
    s3,
    events,
    kinesis,
    dynamodb,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const client of [sqs, s3, events, kinesis, dynamodb]) client.destroy();
    },
  };
}
