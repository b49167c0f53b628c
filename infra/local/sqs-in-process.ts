import type { SqsJsonTransport } from '../eventbridge/index.ts';

/** The part of a Fastify app (fauxqs) used: request injection, without a socket. */
export interface InjectableApp {
  inject(request: { method: 'POST'; url: string; headers: Record<string, string>; payload: string }): PromiseLike<{ statusCode: number; body: string }>;
}

/** An SQS action refused by the in-process stand-in; names the action and SQS's error. */
export class InProcessSqsError extends Error {
  constructor(action: string, status: number, type: string, message: string) {
    super(`SQS ${action} answered ${status}${type === '' ? '' : ` ${type}`}${message === '' ? '' : `: ${message}`}`);
    this.name = 'InProcessSqsError';
  }
}

/**
 * SQS actions injected into fauxqs's own request handling in this process (Fastify's `inject`:
 * routing, parsing and the action run as for a request from the network, without the SDK and the
 * sockets). The EventBridge emulator of the local stack delivers through it: on AWS, EventBridge's
 * deliveries to SQS cost selo nothing, and here they cost the demo's process two HTTP ends and an
 * SDK call per SendMessageBatch.
 */
export function inProcessSqs(app: InjectableApp, endpoint: string): SqsJsonTransport {
  const host = new URL(endpoint).host;
  return async (action, input) => {
    const answer = await app.inject({
      method: 'POST',
      url: '/',
      headers: { host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
      payload: JSON.stringify(input),
    });
    const body = (answer.body === '' ? {} : JSON.parse(answer.body)) as { __type?: unknown; message?: unknown; Message?: unknown };
    if (answer.statusCode < 200 || answer.statusCode > 299) {
      const type = typeof body.__type === 'string' ? body.__type : '';
      const message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : '';
      throw new InProcessSqsError(action, answer.statusCode, type, message);
    }
    return body;
  };
}
