import type { Command, CommandHelp, CommandIo } from './command.ts';
import { formatUsage } from './help.ts';

const WORKER_HELP: CommandHelp = {
  usage: ['selo worker <name>[,<name>…] | all'],
  description: `Runs workers until SIGTERM or SIGINT (what an ECS Fargate task runs): sign, transmit, receive,
verify, compensate, or several in one process sharing one HSM pool ("all" for every one). Prints
"selo: workers ready {json}" with their health ports once they run.`,
  options: [],
  environment: 'selo\'s configuration (see README); "selo up" prints the local values',
};


/** How long a worker that has shut down may take to end by itself before it is ended. */
const LINGER_MS = 2_000;

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [{ checkWorkerConfig, parseWorkerNames, startWorkerSet }] = await Promise.all([import('../worker-set.ts')]);
  const [text, ...rest] = args;
  const names = text === undefined ? undefined : parseWorkerNames(text);
  if (names === undefined || rest.length > 0) {
    io.stderr.write(formatUsage(workerCommand));
    return 2;
  }
  const [{ ConfigError, loadConfig }, { handleShutdownSignals }, { createLogger }] = await Promise.all([
    import('../../shared/config/index.ts'),
    import('../../shared/runtime/index.ts'),
    import('../../shared/logging/index.ts'),
  ]);
  // Started by a parent over IPC (the demo): when the parent goes, however it went, stop as on
  // SIGTERM rather than run on against stand-ins that went with it. Listened for before the
  // (seconds-long) start; before the shutdown handler exists, SIGTERM simply ends the process.
  if (process.send !== undefined) {
    if (!process.connected) return 1;
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  const label = names.join(',');
  let workers;
  try {
    // Every worker's problems at once, before selo's own configuration is read for the logger.
    await checkWorkerConfig(names, io.env);
    const config = loadConfig(io.env);
    const logger = createLogger({ name: names.length === 1 ? `selo.${label}` : 'selo.workers', level: config.logLevel });
    workers = await startWorkerSet({ names, env: io.env, logger });
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`selo worker ${label}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const started = workers;
  // One line for scripts and supervisors (the demo waits for it): what runs, and where its health is.
  io.stdout.write(`selo: workers ready ${JSON.stringify(started.healthPorts)}\n`);
  return new Promise<number>((resolve) => {
    handleShutdownSignals(started, {
      logger: createLogger({ name: `selo.worker` }),
      exit: (code) => {
        resolve(code);
        if (process.connected) process.disconnect();
        // Closed, or out of time: what a dead dependency still holds (a request in its retries,
        // a socket) must not keep a stopped worker running; its supervisor expects it gone.
        // After a failed or timed-out close (1) nothing is left to wait for but the log lines.
        setTimeout(() => process.exit(code), code === 0 ? LINGER_MS : 200).unref();
      },
    });
  });
}

/** `selo worker <names>`: workers as a long-lived process. */
export const workerCommand: Command = { name: 'worker', summary: 'run workers (sign, transmit, receive, verify, compensate, or all) until SIGTERM', help: WORKER_HELP, run };
