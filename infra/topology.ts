/**
 * selo's AWS resources, declared once (DESIGN §3). The local bootstrap creates exactly these on
 * the stand-ins and the CDK app builds exactly these in AWS, so local and cloud cannot drift.
 * The retry budget (`maxReceiveCount`, visibility timeouts) lives here, not in code
 * (HOUSE_STYLE rule 4).
 */

/** An SQS work queue and its dead-letter queue. */
export interface QueueDeclaration {
  /** Logical name; the physical name is `selo-<env>-<key>`. */
  key: string;
  /** What the queue feeds. */
  purpose: string;
  /** Seconds a received message stays invisible before redelivery. */
  visibilityTimeoutSeconds: number;
  /** Receives before SQS moves the message to the DLQ. */
  maxReceiveCount: number;
  /** Seconds a message is kept in the work queue. */
  messageRetentionSeconds: number;
  /** Seconds a message is kept in the DLQ (SQS maximum: 14 days). */
  dlqRetentionSeconds: number;
}

/** A target of a rule: one of the declared queues. */
export interface RuleTarget {
  /** Key of the target queue. */
  queue: string;
}

/** An EventBridge rule on selo's bus. */
export interface RuleDeclaration {
  /** Logical name; the physical name is `selo-<env>-<key>`. */
  key: string;
  description: string;
  /** An EventBridge event pattern (AWS "Event patterns" syntax). */
  eventPattern: Readonly<Record<string, unknown>>;
  targets: readonly RuleTarget[];
}

/** The whole declared topology, before environment names are applied. */
export interface TopologyDeclaration {
  queues: readonly QueueDeclaration[];
  rules: readonly RuleDeclaration[];
  audit: { shardCount: number; retentionHours: number };
  sagaTable: { partitionKey: string; sortKey: string; ttlAttribute: string; stateIndex: { name: string; partitionKey: string; sortKey: string } };
}

const DAY = 86_400;

/** Failure facts that start a compensation (DESIGN §1: only definite negative outcomes). */
export const COMPENSATION_TRIGGERS: readonly string[] = [
  'SigningFailed',
  'PaymentRejected',
  'MessageRejected',
  'TransmissionRejected',
  'TransmissionFailed',
  'SignatureInvalid',
  'DictOperationFailed',
  // An operator's `selo saga retry-compensation` for a COMPENSATION_FAILED saga (issue 17).
  'CompensationRetryRequested',
];

/** Facts operations must look at. */
export const OPERATIONS_ALERTS: readonly string[] = [
  'PaymentInDoubt',
  'CompensationFailed',
  'OutcomeConflict',
  // A second request for one payment with other content: never signed, never compensated.
  'RequestConflict',
  // The transmit worker gave up on a message for a reason other than a definite refusal.
  'TransmitStepDeadLettered',
  // A message from the BCB (or a DICT answer) whose signature does not verify: quarantined.
  'SignatureInvalid',
  // The verify worker gave up on a message (never silently: operations replay or inspect it).
  'VerifyStepDeadLettered',
  // An admi.002 about a message selo sent more than once: it may refuse the copy, not the original.
  'RejectionAmbiguous',
  // Core banking decided on an inbound payment after its answer could still count: not sent.
  'InboundDecisionLate',
  // A correctly signed message of a type selo does not handle yet, kept with its bytes.
  'UnsupportedMessageReceived',
];

/**
 * selo's topology.
 *
 * Visibility timeouts are short so that the messages a crashed worker held come back within
 * seconds, inside the SPI's limits (a pacs.008 settles or is rejected AB03 40 s after its
 * acceptance, IN BCB 5/2020; a receiver is measured in seconds, Manual de Tempos do Pix): with 60 s,
 * every payment in flight at a task replacement ended AB03 (issue 15). They do not bound how long a
 * handler may run: the runtime extends a message's visibility every third of the timeout while its
 * handler runs (sqs-consumer heartbeat: every 2 s for 6 s), so a transmit waiting out the BCB's
 * HTTP timeout (`SELO_BCB_TIMEOUT_MS`, 10 s) or a sign waiting for an HSM session
 * (`SELO_HSM_ACQUIRE_TIMEOUT_MS`) keeps its message, and a heartbeat may fail once and still be in
 * time. A second receive while the first still runs (a heartbeat lost twice) is harmless: every
 * step is a conditional saga write. Transient failures set their own visibility (the backoff), so
 * the retry budget (`maxReceiveCount`) keeps its meaning.
 */
export const TOPOLOGY: TopologyDeclaration = {
  queues: [
    { key: 'sign', purpose: 'requests from core banking (and answers to the BCB), to be signed in the HSM', visibilityTimeoutSeconds: 6, maxReceiveCount: 5, messageRetentionSeconds: 4 * DAY, dlqRetentionSeconds: 14 * DAY },
    { key: 'transmit', purpose: 'signed messages, to be sent to the BCB over mTLS', visibilityTimeoutSeconds: 6, maxReceiveCount: 8, messageRetentionSeconds: 4 * DAY, dlqRetentionSeconds: 14 * DAY },
    { key: 'verify', purpose: 'messages from the BCB, to be signature-checked and published', visibilityTimeoutSeconds: 6, maxReceiveCount: 5, messageRetentionSeconds: 4 * DAY, dlqRetentionSeconds: 14 * DAY },
    { key: 'compensate', purpose: 'definite failures, to be compensated once', visibilityTimeoutSeconds: 10, maxReceiveCount: 6, messageRetentionSeconds: 4 * DAY, dlqRetentionSeconds: 14 * DAY },
    { key: 'operations', purpose: 'alerts for operations: in-doubt payments, failed compensations, conflicting outcomes', visibilityTimeoutSeconds: 30, maxReceiveCount: 10, messageRetentionSeconds: 14 * DAY, dlqRetentionSeconds: 14 * DAY },
  ],
  rules: [
    {
      key: 'requests-to-sign',
      description: 'Core banking requests go to the sign worker',
      // selo.compensate: a DICT compensation (e.g. cancelling a claim) is a DICT request of its own.
      eventPattern: { source: ['core.banking', 'selo.compensate'], 'detail-type': ['PaymentRequested', 'DictRequested'] },
      targets: [{ queue: 'sign' }],
    },
    {
      key: 'answers-to-sign',
      description: "Core banking's decisions on inbound payments, and the SPI's echoes, are answered by the sign worker",
      eventPattern: {
        $or: [
          { source: ['core.banking'], 'detail-type': ['InboundPaymentDecided'] },
          { source: ['selo.verify'], 'detail-type': ['EchoReceived'] },
        ],
      },
      targets: [{ queue: 'sign' }],
    },
    {
      key: 'queries-to-sign',
      description: "The in-doubt sweeper's questions to the BCB (camt.060) are signed and sent like any SPI message",
      eventPattern: { source: ['selo.compensate'], 'detail-type': ['OutcomeQueryRequested'] },
      targets: [{ queue: 'sign' }],
    },
    {
      key: 'signed-to-transmit',
      description: 'Signed messages go to the transmit worker',
      eventPattern: { source: ['selo.sign'], 'detail-type': ['MessageSigned'] },
      targets: [{ queue: 'transmit' }],
    },
    {
      key: 'dict-answers-to-verify',
      description: 'DICT answers received by the transmit worker go to the verify worker',
      eventPattern: { source: ['selo.transmit'], 'detail-type': ['DictResponseReceived'] },
      targets: [{ queue: 'verify' }],
    },
    {
      key: 'failures-to-compensate',
      description: 'Definite failures go to the compensation worker',
      eventPattern: { source: [{ prefix: 'selo.' }], 'detail-type': [...COMPENSATION_TRIGGERS] },
      targets: [{ queue: 'compensate' }],
    },
    {
      key: 'alerts-to-operations',
      description: 'What operations must act on',
      eventPattern: { source: [{ prefix: 'selo.' }], 'detail-type': [...OPERATIONS_ALERTS] },
      targets: [{ queue: 'operations' }],
    },
  ],
  // 7 days: a delivery stopped over a long weekend is still replayable from the stream (issue 19).
  audit: { shardCount: 2, retentionHours: 168 },
  sagaTable: { partitionKey: 'pk', sortKey: 'sk', ttlAttribute: 'expiresAt', stateIndex: { name: 'by-state', partitionKey: 'stateShard', sortKey: 'updatedAt' } },
};

/** A queue with its physical names. */
export interface ResolvedQueue extends QueueDeclaration {
  name: string;
  dlqName: string;
}

/** A rule with its physical name. */
export interface ResolvedRule extends RuleDeclaration {
  name: string;
}

/** The topology with the physical names of one environment. */
export interface ResolvedTopology {
  environment: string;
  eventBusName: string;
  queues: readonly ResolvedQueue[];
  rules: readonly ResolvedRule[];
  auditStream: { name: string; shardCount: number; retentionHours: number };
  /** Audit records as Parquet, `audit/{spi|dict}/year=…/month=…/day=…/hour=…/`. */
  auditBucket: string;
  /** Claim-check payloads and quarantined messages. */
  payloadBucket: string;
  sagaTable: TopologyDeclaration['sagaTable'] & { name: string };
}

/**
 * Applies an environment's names to the declaration. Names are `selo-<env>-<key>`, which keeps
 * SQS (80), Kinesis (128), S3 (63) and DynamoDB (255) limits for environment names up to 20
 * characters.
 */
export function resolveTopology(environment: string, declaration: TopologyDeclaration = TOPOLOGY): ResolvedTopology {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(environment)) {
    throw new Error(`environment name must be lower-case letters, digits and dashes (max 20), got ${JSON.stringify(environment)}`);
  }
  const prefix = `selo-${environment}`;
  const queueKeys = new Set(declaration.queues.map((q) => q.key));
  for (const rule of declaration.rules) {
    for (const target of rule.targets) {
      if (!queueKeys.has(target.queue)) throw new Error(`rule ${rule.key} targets undeclared queue ${target.queue}`);
    }
  }
  return {
    environment,
    eventBusName: `${prefix}-bus`,
    queues: declaration.queues.map((q) => ({ ...q, name: `${prefix}-${q.key}`, dlqName: `${prefix}-${q.key}-dlq` })),
    rules: declaration.rules.map((r) => ({ ...r, name: `${prefix}-${r.key}` })),
    auditStream: { name: `${prefix}-audit`, ...declaration.audit },
    auditBucket: `${prefix}-audit`,
    payloadBucket: `${prefix}-payloads`,
    sagaTable: { ...declaration.sagaTable, name: `${prefix}-saga` },
  };
}

/** The certificates and PINs a worker reads at start (Secrets Manager in AWS, files or variables locally). */
export type WorkerSecret = 'hsm-pin' | 'cloudhsm-customer-ca' | 'signing-cert' | 'tls-client-cert' | 'bcb-ca' | 'bcb-signing-certs';

/**
 * What one worker touches, and nothing more: the CDK app derives each task role from it (least
 * privilege) and the local stack has the same resources, so a worker that needs more than this
 * fails in AWS and in review, not silently.
 */
export interface WorkerDeclaration {
  /** `selo worker <name>`. */
  name: 'sign' | 'transmit' | 'receive' | 'verify' | 'compensate';
  /** Key of the queue it consumes (and whose DLQ it dead-letters to); none for receive (the ICOM stream). */
  consumes?: string;
  /** Keys of the queues it sends to directly, besides its own DLQ. */
  sendsTo: readonly string[];
  /** Publishes events on the bus (PutEvents). */
  publishes: boolean;
  /** What it does with the payload bucket (claim checks, quarantine, DICT answers). */
  payloads: 'none' | 'read' | 'write' | 'read-write';
  /** Queries the saga table's state index (the in-doubt sweeper). */
  queriesByState: boolean;
  /** Opens sessions in the HSM (signing, or the mTLS client key through the pkcs11 engine). */
  hsm: boolean;
  /** Talks to the BCB (ICOM, DICT) over mutual TLS. */
  bcb: boolean;
  /** What it reads at start. */
  secrets: readonly WorkerSecret[];
}

/** The five workers and what each touches (README "Workers"). */
export const WORKERS: readonly WorkerDeclaration[] = [
  { name: 'sign', consumes: 'sign', sendsTo: [], publishes: true, payloads: 'write', queriesByState: false, hsm: true, bcb: false, secrets: ['hsm-pin', 'cloudhsm-customer-ca', 'signing-cert'] },
  // Reads claim-checked signed messages; writes DICT answers for the verify worker.
  { name: 'transmit', consumes: 'transmit', sendsTo: [], publishes: true, payloads: 'read-write', queriesByState: false, hsm: true, bcb: true, secrets: ['hsm-pin', 'cloudhsm-customer-ca', 'tls-client-cert', 'bcb-ca'] },
  // Puts what the ICOM stream delivers on the verify queue itself (payloads above 128 KiB in S3).
  { name: 'receive', sendsTo: ['verify'], publishes: false, payloads: 'write', queriesByState: false, hsm: true, bcb: true, secrets: ['hsm-pin', 'cloudhsm-customer-ca', 'tls-client-cert', 'bcb-ca'] },
  // Reads claim checks; writes quarantined and unsupported messages.
  { name: 'verify', consumes: 'verify', sendsTo: [], publishes: true, payloads: 'read-write', queriesByState: false, hsm: false, bcb: false, secrets: ['bcb-signing-certs'] },
  { name: 'compensate', consumes: 'compensate', sendsTo: [], publishes: true, payloads: 'none', queriesByState: true, hsm: false, bcb: false, secrets: [] },
];
