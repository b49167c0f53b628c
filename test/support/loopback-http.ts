import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A plain-HTTP server on 127.0.0.1 for the SDK client tests: each request's whole body, then `answer`. */
export interface LoopbackHttp {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a {@link LoopbackHttp} that reads each request's body (UTF-8) and hands it to `answer`. */
export async function startLoopbackHttp(answer: (request: IncomingMessage, body: string, response: ServerResponse) => void): Promise<LoopbackHttp> {
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => answer(request, body, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
