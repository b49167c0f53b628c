import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/logging/index.ts';
import type { Operations } from '../../shared/ops/index.ts';
import type { ResolutionResult } from '../../shared/saga/index.ts';
import type { SafeHtml } from './html.ts';
import { alertsPage, auditPage, deadLettersPage, errorPage, loginPage, overviewPage, queueDeadLettersPage, sagaPage } from './pages.ts';
import type { PageContext } from './pages.ts';

/** The resolve actions the console offers: `shared/saga`'s own functions, bound to their dependencies by the caller. */
export interface ConsoleActions {
  resolve(input: { sagaId: string; outcome: 'settled' | 'rejected'; evidence: string; operator: string; reasonCode?: string }): Promise<ResolutionResult>;
  approve(input: { sagaId: string; operator: string }): Promise<ResolutionResult>;
  retryCompensation(input: { sagaId: string; operator: string; evidence?: string }): Promise<ResolutionResult>;
  /** One line saying what a result did. */
  describe(result: ResolutionResult): string;
}

/** Options of {@link startConsole}. */
export interface ConsoleOptions {
  operations: Operations;
  /** Resolve, approve, retry compensation. @defaultValue none: the console then only reads, acknowledges and replays */
  actions?: ConsoleActions;
  /** Loopback address to bind. @defaultValue '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** The login token. @defaultValue 32 random bytes, base64url */
  token?: string;
  /** How long a session lasts, ms. @defaultValue 28800000 (8 h) */
  sessionTtlMs?: number;
  /** `Secure` on the session cookie (behind TLS, e.g. the load balancer in AWS). @defaultValue false */
  secureCookie?: boolean;
  /**
   * The origin browsers use to reach it (`https://ops.example`), when that is not the address it
   * listens on (behind a load balancer). State-changing requests must come from it.
   * @defaultValue `http://<host>:<port>`
   */
  publicOrigin?: string;
  logger?: Logger;
  /** Clock. @defaultValue () => new Date() */
  now?: () => Date;
}

/** A running console. */
export interface ConsoleServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** What the login page asks for (print it to the person who started the console, nowhere else). */
  readonly token: string;
  close(): Promise<void>;
}

interface Session {
  operator: string;
  csrf: string;
  expiresAt: number;
  flash?: string;
}

const COOKIE = 'selo_console';
const MAX_BODY = 64 * 1024;
const CSS = readFileSync(new URL('./console.css', import.meta.url), 'utf8');
const OPERATOR = /^[\p{L}\p{N} ._@-]{1,100}$/u;

/** Every answer carries these: no caching, no framing, no scripts, nothing loaded from elsewhere. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: with it Chromium sends `Origin: null` on the console's own form posts.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function cookieOf(request: IncomingMessage): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return value.join('=');
  }
  return undefined;
}

async function formOf(request: IncomingMessage): Promise<URLSearchParams> {
  const type = request.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new ConsoleRequestError(415, 'CONSOLE_FORM_EXPECTED', 'the console takes HTML form posts only');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_BODY) throw new ConsoleRequestError(413, 'CONSOLE_FORM_TOO_LARGE', `a form may hold ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** A request the console refuses, with its HTTP status and a stable code. */
export class ConsoleRequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ConsoleRequestError';
    this.status = status;
    this.code = code;
  }
}

/**
 * Starts the operations console: server-rendered pages over `node:http` on loopback. It reads and
 * acts only through {@link Operations} and the given {@link ConsoleActions}. A person logs in with
 * the token printed at start (and their name, recorded with what they do) and gets an HttpOnly,
 * SameSite=Strict session cookie; every state-changing request must be a form post from the
 * console's own origin (`Origin`, and `Sec-Fetch-Site` when the browser sends it) carrying the
 * session's CSRF token. Everything rendered is escaped (`html`), and the CSP allows no script.
 */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(32).toString('base64url');
  if (token.length < 16) throw new RangeError('ConsoleOptions.token must be at least 16 characters');
  const ttl = options.sessionTtlMs ?? 8 * 3_600_000;
  const now = options.now ?? (() => new Date());
  const sessions = new Map<string, Session>();
  let origin = options.publicOrigin ?? '';
  let allowedHosts = new Set<string>();

  const send = (response: ServerResponse, status: number, body: SafeHtml | string, headers: Record<string, string | string[]> = {}): void => {
    const text = typeof body === 'string' ? body : body.text;
    response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
    response.end(text);
  };
  const redirect = (response: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void => {
    response.writeHead(303, { ...SECURITY_HEADERS, location, 'content-length': '0', ...headers });
    response.end();
  };
  const cookie = (value: string, maxAgeSeconds: number): string => `${COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${options.secureCookie === true ? '; Secure' : ''}`;

  const sessionOf = (request: IncomingMessage): { id: string; session: Session } | undefined => {
    const id = cookieOf(request);
    if (id === undefined) return undefined;
    const session = sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= now().getTime()) {
      sessions.delete(id);
      return undefined;
    }
    return { id, session };
  };

  /** A state-changing request must come from the console's own pages. */
  const checkSameOrigin = (request: IncomingMessage): void => {
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') throw new ConsoleRequestError(403, 'CONSOLE_CROSS_SITE', `refused: a ${site} request`);
    if (request.headers.origin !== origin) throw new ConsoleRequestError(403, 'CONSOLE_CROSS_SITE', `refused: Origin ${JSON.stringify(request.headers.origin ?? null)} is not the console's`);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    // DNS rebinding: a page elsewhere that resolves its own name to 127.0.0.1 still sends its Host.
    if (!allowedHosts.has(request.headers.host ?? '')) throw new ConsoleRequestError(421, 'CONSOLE_WRONG_HOST', 'refused: unknown Host');
    const url = new URL(request.url ?? '/', origin);
    const method = request.method ?? 'GET';
    const path = url.pathname;
    if (path === '/console.css' && method === 'GET') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/css; charset=utf-8', 'content-length': String(Buffer.byteLength(CSS)), 'cache-control': 'private, max-age=3600' });
      response.end(CSS);
      return;
    }
    if (path === '/login') {
      if (method === 'GET') return send(response, 200, loginPage({}));
      if (method !== 'POST') throw new ConsoleRequestError(405, 'CONSOLE_METHOD', 'GET or POST');
      checkSameOrigin(request);
      const form = await formOf(request);
      const operator = (form.get('operator') ?? '').trim();
      if (!sameSecret(form.get('token') ?? '', token)) {
        options.logger?.warn({ event: 'console.login.refused' }, 'console login refused: wrong token');
        return send(response, 401, loginPage({ error: 'That token is not this console\'s. Use the one printed when it started.' }));
      }
      if (!OPERATOR.test(operator)) return send(response, 400, loginPage({ error: 'Your name (1 to 100 letters, digits, spaces, . _ @ -) is recorded with what you do.' }));
      const id = randomBytes(32).toString('base64url');
      sessions.set(id, { operator, csrf: randomBytes(32).toString('base64url'), expiresAt: now().getTime() + ttl });
      options.logger?.info({ event: 'console.login', operator }, 'console login');
      return redirect(response, '/', { 'set-cookie': cookie(id, Math.floor(ttl / 1000)) });
    }
    const current = sessionOf(request);
    if (current === undefined) {
      if (method === 'GET') return redirect(response, '/login');
      throw new ConsoleRequestError(401, 'CONSOLE_LOGIN_REQUIRED', 'log in first');
    }
    const { session } = current;
    let form: URLSearchParams | undefined;
    if (method === 'POST') {
      checkSameOrigin(request);
      form = await formOf(request);
      if (!sameSecret(form.get('csrf') ?? '', session.csrf)) throw new ConsoleRequestError(403, 'CONSOLE_CSRF', 'refused: the form is not from this session');
    } else if (method !== 'GET') {
      throw new ConsoleRequestError(405, 'CONSOLE_METHOD', 'GET or POST');
    }
    const flash = session.flash;
    delete session.flash;
    const context: PageContext = { operator: session.operator, csrf: session.csrf, canResolve: options.actions !== undefined, ...(flash === undefined ? {} : { flash }) };
    const done = (message: string, location: string): void => {
      session.flash = message;
      redirect(response, location);
    };
    const operations = options.operations;
    const segments = path.split('/').slice(1).map((s) => decodeURIComponent(s));

    if (form === undefined) {
      if (path === '/') {
        const [attention, refresh, deadLetters] = await Promise.all([operations.sagasNeedingAttention(50), operations.refreshAlerts(), operations.deadLetterCounts()]);
        return send(response, 200, overviewPage(context, { attention, open: refresh.open, deadLetters, now: now() }));
      }
      if (path === '/find') {
        const id = (url.searchParams.get('id') ?? '').trim();
        const saga = id === '' ? undefined : await operations.findSaga(id);
        if (saga === undefined) return send(response, 404, errorPage(context, 404, `No saga for ${JSON.stringify(id)}.`));
        return redirect(response, `/sagas/${encodeURIComponent(saga.sagaId)}`);
      }
      if (segments[0] === 'sagas' && segments.length === 2) {
        const saga = await operations.sagas.get(segments[1] ?? '');
        if (saga === undefined) return send(response, 404, errorPage(context, 404, 'No such saga.'));
        return send(response, 200, sagaPage(context, saga));
      }
      if (path === '/alerts') {
        const refresh = await operations.refreshAlerts();
        return send(response, 200, alertsPage(context, { refresh, now: now() }));
      }
      if (path === '/dead-letters') return send(response, 200, deadLettersPage(context, await operations.deadLetterCounts()));
      if (segments[0] === 'dead-letters' && segments.length === 2) {
        const queue = segments[1] ?? '';
        if (!operations.queues.some((q) => q.key === queue)) return send(response, 404, errorPage(context, 404, 'No such queue.'));
        return send(response, 200, queueDeadLettersPage(context, queue, await operations.listDeadLetters(queue, 100)));
      }
      if (path === '/audit') return send(response, 200, auditPage(context, {}));
      return send(response, 404, errorPage(context, 404, 'No such page.'));
    }

    if (path === '/logout') {
      sessions.delete(current.id);
      return redirect(response, '/login', { 'set-cookie': cookie('', 0) });
    }
    if (path === '/audit') {
      const sql = form.get('sql') ?? '';
      const system = form.get('system') ?? '';
      const to = form.get('to') === '' || form.get('to') === null ? now() : new Date(form.get('to') ?? '');
      const from = form.get('from') === '' || form.get('from') === null ? new Date(to.getTime() - 86_400_000) : new Date(form.get('from') ?? '');
      const query = { sql, from: form.get('from') ?? '', to: form.get('to') ?? '', system };
      if (sql.trim() === '') return send(response, 400, auditPage(context, { query, error: 'Write a query, e.g. SELECT * FROM audit LIMIT 20.' }));
      if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from > to) return send(response, 400, auditPage(context, { query, error: 'From and to must be ISO 8601 times, from before to.' }));
      if (system !== '' && system !== 'spi' && system !== 'dict') return send(response, 400, auditPage(context, { query, error: 'System is spi, dict or both.' }));
      try {
        const result = await operations.queryAudit({ sql, from, to, ...(system === '' ? {} : { systems: [system] }) });
        return send(response, 200, auditPage(context, { query, result }));
      } catch (error) {
        if ((error as { code?: string }).code === 'AUDIT_SQL_INVALID') return send(response, 400, auditPage(context, { query, error: `The SQL was refused: ${(error as Error).message}` }));
        throw error;
      }
    }
    if (segments[0] === 'dead-letters' && segments[2] === 'replay' && segments.length === 3) {
      const queue = segments[1] ?? '';
      if (!operations.queues.some((q) => q.key === queue)) return send(response, 404, errorPage(context, 404, 'No such queue.'));
      const max = Number(form.get('max') ?? '10');
      if (!Number.isInteger(max) || max < 1 || max > 1000) return send(response, 400, errorPage(context, 400, 'Replay 1 to 1000 messages.'));
      const result = await operations.replayDeadLetters(queue, max);
      options.logger?.info({ event: 'console.replay', operator: session.operator, queue, replayed: result.replayed, failed: result.failed.length }, 'console replayed dead letters');
      return done(`Replayed ${result.replayed} message(s) to ${queue}${result.failed.length > 0 ? `; ${result.failed.length} left in the DLQ after a failure` : ''}.`, `/dead-letters/${encodeURIComponent(queue)}`);
    }
    if (segments[0] === 'alerts' && segments[2] === 'ack' && segments.length === 3) {
      const note = (form.get('note') ?? '').trim();
      if (note === '' || note.length > 500) return done('Say why (1 to 500 characters) when you acknowledge an alert.', '/alerts');
      try {
        const alert = await operations.acknowledge(segments[1] ?? '', session.operator, note);
        return done(`Acknowledged ${alert.kind} ${alert.alertId}.`, '/alerts');
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code?.startsWith('ALERT_') === true) return done(`${code}: ${(error as Error).message}`, '/alerts');
        throw error;
      }
    }
    if (segments[0] === 'sagas' && segments.length === 3 && options.actions !== undefined) {
      const sagaId = segments[1] ?? '';
      const back = `/sagas/${encodeURIComponent(sagaId)}`;
      const actions = options.actions;
      let result: ResolutionResult | undefined;
      try {
        if (segments[2] === 'resolve') {
          const outcome = form.get('outcome');
          const evidence = (form.get('evidence') ?? '').trim();
          const reasonCode = (form.get('reasonCode') ?? '').trim();
          if (outcome !== 'settled' && outcome !== 'rejected') return done('Choose settled or rejected.', back);
          result = await actions.resolve({ sagaId, outcome, evidence, operator: session.operator, ...(reasonCode === '' ? {} : { reasonCode }) });
        } else if (segments[2] === 'approve') {
          result = await actions.approve({ sagaId, operator: session.operator });
        } else if (segments[2] === 'retry-compensation') {
          const evidence = (form.get('evidence') ?? '').trim();
          result = await actions.retryCompensation({ sagaId, operator: session.operator, ...(evidence === '' ? {} : { evidence }) });
        }
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== undefined && /^[A-Z][A-Z_]+$/.test(code)) return done(`${code}: ${(error as Error).message}`, back);
        throw error;
      }
      if (result !== undefined) {
        options.logger?.info({ event: 'console.resolution', operator: session.operator, sagaId, action: segments[2], status: result.status }, 'console resolution');
        // The alert its saga raised goes now, not at the next read.
        await operations.refreshAlerts();
        return done(actions.describe(result).trim(), back);
      }
    }
    return send(response, 404, errorPage(context, 404, 'No such action.'));
  };

  const server: Server = createServer((request, response) => {
    const started = Date.now();
    handle(request, response)
      .catch((error: unknown) => {
        const refused = error instanceof ConsoleRequestError;
        const status = refused ? error.status : 500;
        if (!refused) options.logger?.error({ event: 'console.error', err: error, path: request.url }, 'console request failed');
        if (response.headersSent) {
          response.destroy();
          return;
        }
        const text = refused ? `${error.code}: ${error.message}\n` : 'CONSOLE_INTERNAL: the request failed; the console\'s log says why\n';
        response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
        response.end(text);
      })
      .finally(() => options.logger?.debug({ event: 'console.request', method: request.method, status: response.statusCode, ms: Date.now() - started }, 'console request'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  if (origin === '') origin = url;
  allowedHosts = new Set([`${host}:${port}`, `localhost:${port}`, new URL(origin).host]);
  let closing: Promise<void> | undefined;
  return {
    url,
    token,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        sessions.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
