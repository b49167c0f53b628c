import type { SqsJsonTransport } from '../eventbridge/index.ts';
import { TransientError } from '../../shared/errors/index.ts';

/** The part of a Fastify app (fauxqs) used: request injection, without a socket. */
export interface InjectableApp {
  inject(request: { method: 'POST'; url: string; headers: Record<string, string>; payload: string }): PromiseLike<{ statusCode: number; body: string }>;
}

/** An SQS action the in-process stand-in refused or answered with something else than a JSON object. */
export class InProcessSqsError extends TransientError {
  /** SQS's error type (`__type`, e.g. `com.amazonaws.sqs#QueueDoesNotExist`), or `''`. */
  readonly sqsErrorType: string;

  constructor(action: string, status: number, sqsErrorType: string, message: string, cause?: unknown) {
    super('SQS_REQUEST_REFUSED', `SQS ${action} answered ${status}${sqsErrorType === '' ? '' : ` ${sqsErrorType}`}${message === '' ? '' : `: ${message}`}`, {
      details: { action, status, sqsErrorType },
      ...(cause === undefined ? {} : { cause }),
    });
    this.sqsErrorType = sqsErrorType;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * SQS actions injected into fauxqs's own request handling in this process (Fastify's `inject`:
 * routing, parsing and the action run as for a request from the network, without the SDK and the
 * sockets). The EventBridge emulator of the local stack delivers through it: on AWS, EventBridge's
 * deliveries to SQS cost selo nothing, and here they cost the demo's process two HTTP ends and an
 * SDK call per SendMessageBatch. The queue's region travels as the SDK's signature would carry it
 * (the credential scope of an `Authorization` header, which fauxqs reads and does not check).
 */
export function inProcessSqs(app: InjectableApp, endpoint: string): SqsJsonTransport {
  const host = new URL(endpoint).host;
  return async (action, input, region) => {
    const answer = await app.inject({
      method: 'POST',
      url: '/',
      headers: {
        host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `AmazonSQS.${action}`,
        authorization: `AWS4-HMAC-SHA256 Credential=test/20000101/${region}/sqs/aws4_request, SignedHeaders=host, Signature=0`,
      },
      payload: JSON.stringify(input),
    });
    let body: unknown;
    let parseError: unknown;
    try {
      body = answer.body === '' ? {} : JSON.parse(answer.body);
    } catch (error) {
      parseError = error;
    }
    const refused = answer.statusCode < 200 || answer.statusCode > 299;
    if (!refused && isObject(body)) return body;
    const fields = isObject(body) ? body : {};
    const type = typeof fields['__type'] === 'string' ? fields['__type'] : '';
    const message = typeof fields['message'] === 'string' ? fields['message'] : typeof fields['Message'] === 'string' ? fields['Message'] : isObject(body) ? '' : `not a JSON object: ${answer.body.slice(0, 200)}`;
    throw new InProcessSqsError(action, answer.statusCode, type, message, parseError);
  };
}
