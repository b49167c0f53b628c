import type { Command, CommandIo } from './command.ts';

const USAGE = `usage: selo worker <name>
Runs one worker until SIGTERM or SIGINT (what an ECS Fargate task runs). Workers: sign, transmit.
Configuration comes from the environment (see README); \`selo up\` prints the local values.`;

/** The workers `selo worker` can run, loaded only when asked for. */
const WORKERS: Readonly<Record<string, () => Promise<{ close(): Promise<void> }>>> = {
  sign: async () => (await import('../../workers/sign/index.ts')).startSignWorker(),
  transmit: async () => (await import('../../workers/transmit/index.ts')).startTransmitWorker(),
};

async function run(args: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = args;
  const start = name === undefined ? undefined : WORKERS[name];
  if (start === undefined || rest.length > 0) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const [{ ConfigError }, { handleShutdownSignals }, { createLogger }] = await Promise.all([
    import('../../shared/config/index.ts'),
    import('../../shared/runtime/index.ts'),
    import('../../shared/logging/index.ts'),
  ]);
  let worker;
  try {
    worker = await start();
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`selo worker ${name ?? ''}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const stopped = new Promise<number>((resolve) => {
    handleShutdownSignals(worker, { logger: createLogger({ name: `selo.${name ?? 'worker'}` }), exit: resolve });
  });
  return stopped;
}

/** `selo worker <name>`: one worker as a long-lived process. */
export const workerCommand: Command = { name: 'worker', summary: 'run one worker (sign, transmit) until SIGTERM', run };
