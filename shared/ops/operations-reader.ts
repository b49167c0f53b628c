import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { isSagaId } from '../events/index.ts';
import type { Saga } from '../saga/index.ts';
import { AlertError, alertResolution } from './alerts.ts';
import type { AlertStore, OperationsAlert, RaisedAlert } from './alerts.ts';

/** The kind of an alert whose queue body selo could not read as an EventBridge event. */
export const UNREADABLE_ALERT = 'Unreadable';

/** Options of {@link drainOperationsQueue}. */
export interface DrainOptions {
  sqs: SQSClient;
  /** The operations queue (topology `operations`). */
  queueUrl: string;
  alerts: Pick<AlertStore, 'record'>;
  /** Messages read in one drain at most; the rest wait for the next. @defaultValue 1000 */
  maxMessages?: number;
}

/** What one drain did. */
export interface DrainResult {
  /** Messages received. */
  received: number;
  /** Events recorded (new alerts, or a new raising of an alert). */
  recorded: number;
  /** Events already recorded (a redelivery): deleted, nothing changed. */
  repeated: number;
  /** Messages that could not be recorded: left in the queue, received again after its visibility timeout. */
  failed: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(record: Record<string, unknown>, name: string): string | undefined {
  const value = record[name];
  return typeof value === 'string' && value !== '' ? value.slice(0, 200) : undefined;
}

/**
 * What an operations queue message raised. The body is read leniently (an alert must never be
 * lost for its shape): a body that is not an EventBridge event becomes an {@link UNREADABLE_ALERT}
 * alert that names the message, never its content (which may hold personal data).
 */
export function raisedAlertOf(message: Pick<Message, 'MessageId' | 'Body'>, receivedAt: Date): RaisedAlert {
  const messageId = message.MessageId ?? 'unknown';
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.Body ?? '');
  } catch {
    parsed = undefined;
  }
  const kind = isRecord(parsed) ? text(parsed, 'detail-type') : undefined;
  if (!isRecord(parsed) || kind === undefined) {
    return { eventId: messageId, kind: UNREADABLE_ALERT, source: 'unknown', time: receivedAt.toISOString(), data: { reason: `operations queue message ${messageId} is not an EventBridge event` } };
  }
  let detail = parsed.detail;
  if (typeof detail === 'string') {
    try {
      detail = JSON.parse(detail);
    } catch {
      detail = undefined;
    }
  }
  const fields = isRecord(detail) ? detail : {};
  const time = text(parsed, 'time');
  const sagaId = isSagaId(fields.sagaId) ? fields.sagaId : undefined;
  const raised: RaisedAlert = {
    eventId: text(parsed, 'id') ?? messageId,
    kind,
    source: text(parsed, 'source') ?? 'unknown',
    time: time !== undefined && !Number.isNaN(Date.parse(time)) ? new Date(time).toISOString() : receivedAt.toISOString(),
    data: fields.data,
  };
  if (sagaId !== undefined) raised.sagaId = sagaId;
  for (const field of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) {
    const id = text(fields, field);
    if (id !== undefined) raised[field] = id;
  }
  return raised;
}

/**
 * Drains the operations queue into the alert record: each message is recorded, then deleted, so
 * the durable record (not SQS, whose receives hide messages for their visibility timeout) is the
 * open list every reader shows. A message whose recording fails stays in the queue and is received
 * again; recording is idempotent per event, so a crash between the two writes repeats nothing.
 * Several readers may drain at once (each message goes to one of them).
 */
export async function drainOperationsQueue(options: DrainOptions): Promise<DrainResult> {
  const max = options.maxMessages ?? 1000;
  const result: DrainResult = { received: 0, recorded: 0, repeated: 0, failed: 0 };
  while (result.received < max) {
    const got = await options.sqs.send(new ReceiveMessageCommand({ QueueUrl: options.queueUrl, MaxNumberOfMessages: Math.min(10, max - result.received), WaitTimeSeconds: 0 }));
    const messages = got.Messages ?? [];
    if (messages.length === 0) break;
    result.received += messages.length;
    for (const message of messages) {
      try {
        const { recorded } = await options.alerts.record(raisedAlertOf(message, new Date()));
        await options.sqs.send(new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: message.ReceiptHandle }));
        if (recorded) result.recorded += 1;
        else result.repeated += 1;
      } catch {
        result.failed += 1;
      }
    }
  }
  return result;
}

/** Saga reads in flight at once while checking open alerts (a page load waits for them). */
const SAGA_READS_IN_FLIGHT = 16;

/**
 * Acknowledges every open alert whose saga has left the state that raised it
 * ({@link alertResolution}), as `selo`, with the reason. Resolves to the alerts acknowledged now.
 */
export async function acknowledgeResolvedAlerts(alerts: Pick<AlertStore, 'acknowledge'>, sagas: { get(sagaId: string): Promise<Saga | undefined> }, open: readonly OperationsAlert[]): Promise<OperationsAlert[]> {
  const candidates = open.filter((a) => a.status === 'OPEN' && a.raisedIn !== undefined && a.sagaId !== undefined);
  const acknowledged: OperationsAlert[] = [];
  for (let i = 0; i < candidates.length; i += SAGA_READS_IN_FLIGHT) {
    await Promise.all(
      candidates.slice(i, i + SAGA_READS_IN_FLIGHT).map(async (alert) => {
        const saga = await sagas.get(alert.sagaId ?? '');
        const why = saga === undefined ? undefined : alertResolution(alert, saga);
        if (why === undefined) return;
        const written = await alerts.acknowledge(alert.alertId, 'selo', why);
        if (written !== undefined) acknowledged.push(written);
      }),
    );
  }
  return acknowledged;
}

/**
 * An operator's acknowledgement of an alert no saga settles (no saga, or a kind with no state:
 * SignatureInvalid, UnsupportedMessageReceived, …). An alert its saga settles is refused
 * (`ALERT_TIED_TO_SAGA`): an in-doubt payment leaves the list by being resolved, never by being
 * dismissed.
 *
 * @throws {@link AlertError} `ALERT_NOT_FOUND`, `ALERT_NOT_OPEN` or `ALERT_TIED_TO_SAGA`.
 */
export async function acknowledgeAlert(
  alerts: Pick<AlertStore, 'get' | 'acknowledge'>,
  sagas: { get(sagaId: string): Promise<Saga | undefined> },
  input: { alertId: string; operator: string; note: string },
): Promise<OperationsAlert> {
  const alert = await alerts.get(input.alertId);
  if (alert === undefined) throw new AlertError('ALERT_NOT_FOUND', `no alert ${JSON.stringify(input.alertId)}`);
  if (alert.status !== 'OPEN') throw new AlertError('ALERT_NOT_OPEN', `alert ${input.alertId} was already acknowledged by ${alert.acknowledgedBy ?? '?'} at ${alert.acknowledgedAt ?? '?'}`);
  if (alert.raisedIn !== undefined && alert.sagaId !== undefined && (await sagas.get(alert.sagaId)) !== undefined) {
    throw new AlertError('ALERT_TIED_TO_SAGA', `alert ${input.alertId} (${alert.kind}) ends when saga ${alert.sagaId} leaves ${alert.raisedIn}: resolve the saga (selo saga resolve) instead`);
  }
  const written = await alerts.acknowledge(input.alertId, input.operator, input.note);
  if (written === undefined) throw new AlertError('ALERT_NOT_OPEN', `alert ${input.alertId} was acknowledged by someone else meanwhile`);
  return written;
}

/** Open alerts of one kind, oldest first. */
export interface AlertGroup {
  kind: string;
  alerts: (OperationsAlert & { ageSeconds: number })[];
}

/** Open alerts grouped by kind (kinds by name), each with its age at `now`, oldest first. */
export function groupAlertsByKind(open: readonly OperationsAlert[], now: Date): AlertGroup[] {
  const groups = new Map<string, AlertGroup>();
  for (const alert of open) {
    const group = groups.get(alert.kind) ?? { kind: alert.kind, alerts: [] };
    group.alerts.push({ ...alert, ageSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(alert.firstRaisedAt)) / 1000)) });
    groups.set(alert.kind, group);
  }
  for (const group of groups.values()) group.alerts.sort((a, b) => b.ageSeconds - a.ageSeconds);
  return [...groups.values()].sort((a, b) => a.kind.localeCompare(b.kind));
}

/** An age as people read it: 42s, 7m, 3h 05m, 2d 04h. */
export function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86_400)}d ${String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0')}h`;
}
