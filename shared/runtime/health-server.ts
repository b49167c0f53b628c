import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CheckResult, ReadinessCheck } from './types.ts';

/** What `/ready` answers. */
export interface HealthReport {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

/** Runs every check; one that throws or takes longer than `timeoutMs` counts as failed. */
export async function runChecks(checks: readonly ReadinessCheck[], timeoutMs = 2_000): Promise<HealthReport> {
  const results: Record<string, CheckResult> = {};
  await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        results[c.name] = await Promise.race([
          Promise.resolve(c.check()),
          new Promise<CheckResult>((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
          }),
        ]);
      } catch (error) {
        results[c.name] = { ok: false, detail: error instanceof Error ? error.message : String(error) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: Object.values(results).every((r) => r.ok), checks: results };
}

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 0 */
  port?: number;
  /** What `/ready` reflects. */
  checks: () => readonly ReadinessCheck[];
}

/** A running health endpoint. */
export interface HealthServer {
  /** The bound port. */
  port: number;
  close(): Promise<void>;
}

/**
 * `GET /live` answers 200 while the process serves; `GET /ready` runs the readiness checks and
 * answers 200 or 503 with a JSON report (the ECS/ALB health check contract).
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`HealthServerOptions.port must be an integer from 0 to 65535, got ${String(options.port)}`);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (path === '/live') return send(200, { ok: true });
    if (path === '/ready' || path === '/health') {
      runChecks(options.checks()).then(
        (report) => send(report.ok ? 200 : 503, report),
        (error: unknown) => send(503, { ok: false, error: error instanceof Error ? error.message : String(error) }),
      );
      return undefined;
    }
    return send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
