import { parseArgs } from 'node:util';
import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';
import { operationsEnvironment } from './ops.ts';
import { portOption } from './options.ts';
import { approvalsOf, formatResolution, resolutionDeps } from './saga-resolve.ts';
import { untilSignal } from './signals.ts';

const CONSOLE_HELP: CommandHelp = {
  usage: ['selo console [--port 4580] [--public-origin <https://…>] [--secure-cookie]'],
  description: `Serves the operations console on 127.0.0.1: the sagas that need attention (IN_DOUBT, OUTCOME_CONFLICT,
COMPENSATION_FAILED), one saga's history with its resolve, approve and retry-compensation actions, open
alerts (the operations queue, as "selo ops watch" reads it) and their acknowledgement, dead letters with
list and replay (as "selo dlq"), and audit queries (as "selo audit query"). It prints a login token; the
browser exchanges it, with the operator's name, for an HttpOnly, SameSite=Strict session cookie. State-
changing requests must come from the console's own pages (Origin, Sec-Fetch-Site, a CSRF token).
Ctrl-C (SIGINT) or SIGTERM stops it.`,
  options: [
    { flag: '--port <port>', description: 'the port on 127.0.0.1 (default 4580; 0: any free port)' },
    { flag: '--public-origin <origin>', description: 'the origin browsers use when a proxy or load balancer is in front (default http://127.0.0.1:<port>)' },
    { flag: '--secure-cookie', description: 'mark the session cookie Secure (behind TLS)' },
  ],
  environment: 'selo\'s configuration (SELO_ENV, endpoints, …); SELO_RESOLVE_APPROVALS (1, or 2 for four eyes)',
  exitCodes: '0 stopped by a signal, 2 bad usage or configuration',
};

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  let port;
  try {
    ({ values } = parseArgs({ args: [...args], options: { port: { type: 'string' }, 'public-origin': { type: 'string' }, 'secure-cookie': { type: 'boolean', default: false } }, strict: true }));
    port = portOption(values.port, 'port', 4580);
    if (values['public-origin'] !== undefined && !/^https?:\/\/[^/]+$/.test(values['public-origin'])) throw new RangeError(`--public-origin must be an origin such as https://ops.example.com, got ${JSON.stringify(values['public-origin'])}`);
  } catch (error) {
    io.stderr.write(`selo console: ${(error as Error).message}\n${formatUsage(consoleCommand)}`);
    return 2;
  }
  const approvals = approvalsOf(io.env);
  if (approvals === undefined) {
    io.stderr.write(`selo console: SELO_RESOLVE_APPROVALS must be 1 or 2, got ${JSON.stringify(io.env['SELO_RESOLVE_APPROVALS'])}\n`);
    return 2;
  }
  const env = await operationsEnvironment(io, 'selo console');
  if (env === undefined) return 2;
  const [{ startConsole }, saga, { createLogger }] = await Promise.all([
    import('../../infra/console/index.ts'),
    import('../../shared/saga/index.ts'),
    import('../../shared/logging/index.ts'),
  ]);
  const { clients, topology, operations, config } = env;
  // The same functions and dependencies as "selo saga resolve | approve | retry-compensation".
  const { deps, audit } = await resolutionDeps(clients, topology, operations.sagas, approvals);
  const signal = untilSignal();
  const server = await startConsole({
    operations,
    actions: {
      resolve: (input) => saga.resolveSaga(deps, input),
      approve: (input) => saga.approveResolution(deps, input),
      retryCompensation: (input) => saga.retryCompensation(deps, input),
      describe: formatResolution,
    },
    port,
    secureCookie: values['secure-cookie'],
    ...(values['public-origin'] === undefined ? {} : { publicOrigin: values['public-origin'] }),
    logger: createLogger({ name: 'selo.console', level: config.logLevel, destination: io.stderr }),
  });
  io.stdout.write(`selo console: open ${server.url}/login and log in with the token ${server.token}\n`);
  io.stdout.write(`selo: ready ${JSON.stringify({ url: server.url, token: server.token })}\n`);
  const received = await signal;
  io.stderr.write(`selo console: ${received} received, stopping\n`);
  await server.close();
  await audit.close().catch(() => undefined);
  clients.destroy();
  return 0;
}

/** `selo console`: the operations console on 127.0.0.1. */
export const consoleCommand: Command = { name: 'console', summary: 'the operations console: a web page on 127.0.0.1 for sagas, alerts, dead letters, audit, resolutions', help: CONSOLE_HELP, run };
