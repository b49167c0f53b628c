// Loaded with `--import` into every process of a benchmarked demo (scripts/bench-demo-cost.ts):
// counts the HTTP requests the process makes, by AWS operation (the X-Amz-Target header: SQS,
// DynamoDB, Kinesis, EventBridge) or by method and port, and writes them to
// `$SELO_CALLS_DIR/<pid>.json` when the process exits. Measurement only; nothing is changed.
// The clients that send through undici (shared/aws's UndiciRequestHandler) are counted from
// undici's diagnostics channel, AWS operations only (the ICOM client is undici too).
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { ClientRequest, RequestOptions } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env['SELO_CALLS_DIR'];
if (dir !== undefined && dir !== '') {
  const counts = new Map<string, number>();
  const request = http.request.bind(http) as (...args: unknown[]) => ClientRequest;
  const counted = (...args: unknown[]): ClientRequest => {
    const options = (typeof args[0] === 'object' && args[0] !== null && !(args[0] instanceof URL) ? args[0] : {}) as RequestOptions;
    const headers = (options.headers ?? {}) as Record<string, unknown>;
    const target = headers['x-amz-target'] ?? headers['X-Amz-Target'];
    const key = typeof target === 'string' ? target : `${options.method ?? 'GET'} :${String(options.port ?? '')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return request(...args);
  };
  (http as { request: unknown }).request = counted;
  diagnostics.subscribe('undici:request:create', (message) => {
    // undici gives a request's headers as a flat [name, value, name, value, …] list.
    const headers = (message as { request?: { headers?: unknown } }).request?.headers;
    if (!Array.isArray(headers)) return;
    const at = headers.findIndex((name, i) => i % 2 === 0 && typeof name === 'string' && name.toLowerCase() === 'x-amz-target');
    const target: unknown = at < 0 ? undefined : headers[at + 1];
    if (typeof target === 'string') counts.set(target, (counts.get(target) ?? 0) + 1);
  });
  process.on('exit', () => {
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(Object.fromEntries(counts)));
  });
}
