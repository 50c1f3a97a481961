/**
 * `npm start`: the whole product on this machine. With nothing configured it runs the KooDrive simulator, a local
 * Secrets Manager seeded with the demo tenants, dynalite on disk with the tables of `serverless.yml`, and
 * `serverless offline` (stage `local`) serving the HTTP API and the Lambda Invoke endpoint; it fires the snapshot
 * function's schedule once at start and then every minute.
 *
 * Real services: `KOODRIVE_TENANTS` set in the shell uses real Secrets Manager (the shell's AWS credentials) instead
 * of the local one; `KOODRIVE_BASE_URL` set uses that KooDrive instead of the simulator. Ports: `LOCAL_API_PORT`,
 * `LOCAL_LAMBDA_PORT`, `LOCAL_KOODRIVE_PORT`, `LOCAL_SECRETS_MANAGER_PORT`, `LOCAL_DYNAMODB_PORT`,
 * `LOCAL_EVENTBRIDGE_PORT` (local/ports.ts); data directory: `LOCAL_DATA_DIR` (default `.local-data`, one stack
 * at a time). With `--build` (as `npm start` runs it), the bundles are built once
 * the ports are known to be free.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { configProblems, DEFAULTS } from '../lib/config.ts';
import { buildAll } from '../scripts/build.ts';
import { DEMO_APP, DEMO_TENANTS, DEMO_TENANTS_SETTING, demoDataAt, demoSecretString } from './demo.ts';
import { startLocalDynamoDb } from './dynamodb.ts';
import { startLocalEventBridge } from './eventbridge.ts';
import { describeResult, invokeFunction, invokeUrl, LOCAL_STAGE, SERVICE, scheduledEvent } from './invoke.ts';
import { startKooDriveSimulator } from './koodrive-simulator.ts';
import { type LocalStackPorts, localPorts } from './ports.ts';
import { startLocalSecretsManager } from './secrets-manager.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Preloaded into serverless offline: it stops offline's group when this process ends without stopping it. */
const OFFLINE_GUARD = pathToFileURL(path.join(ROOT, 'local', 'offline-guard.ts')).href;
const HOST = '127.0.0.1';
/** The local table's name (the deployed one is named by CloudFormation). */
const LOCAL_TABLE_NAME = `${SERVICE}-${LOCAL_STAGE}-snapshots`;
const STARTUP_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;
const MINUTE_MS = 60_000;
/** How often the stack checks that the process that started it is still there. */
const PARENT_CHECK_MS = 1_000;

type Env = Record<string, string | undefined>;

/** Stage parameters that a shell variable of the functions' own name overrides (real-services mode). */
const PARAMS_FROM_ENV = {
  KOODRIVE_SECRET_ID_TEMPLATE: 'secretIdTemplate',
  KOODRIVE_TIMEOUT_MS: 'timeoutMs',
  KOODRIVE_MAX_ATTEMPTS: 'maxAttempts',
  SECRET_CACHE_SECONDS: 'secretCacheSeconds',
  SNAPSHOT_RETENTION_DAYS: 'snapshotRetentionDays',
  SNAPSHOT_CONCURRENCY: 'snapshotConcurrency',
  HISTORY_CURSOR_KEY: 'historyCursorKey',
  ALLOCATION_THRESHOLDS: 'allocationThresholds',
  ALLOCATION_METRICS: 'allocationMetrics',
  EVENT_BUS_NAME: 'publishEventBus',
} as const;

/**
 * The functions' settings the shell gives (those above, and KOODRIVE_TENANTS and KOODRIVE_BASE_URL), each
 * mistake named: refused before anything starts, as packaging refuses them, instead of failing every call.
 */
export function settingProblems(env: Env): string[] {
  const given = ['KOODRIVE_TENANTS', 'KOODRIVE_BASE_URL', ...Object.keys(PARAMS_FROM_ENV)];
  return configProblems(
    Object.fromEntries(given.filter((name) => isSet(env, name)).map((name) => [name, env[name]?.trim()])),
  );
}

function isSet(env: Env, name: string): boolean {
  return (env[name] ?? '').trim() !== '';
}

/**
 * The region the stack's functions run in (where they read real secrets), and where it came from, for the banner:
 * `AWS_REGION`, else the AWS CLI's `AWS_DEFAULT_REGION`, else us-east-1.
 */
export function localRegion(env: Env): { region: string; from: string } {
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION']) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return { region: value, from: name };
  }
  return { region: 'us-east-1', from: 'the default: set AWS_REGION' };
}

/**
 * The banner's snapshot commands, for the first tenant of the tenants setting (`id=secret` or a bare id);
 * empty entries are skipped, as parseTenants skips them.
 */
export function snapshotCommandsHint(tenantsSetting: string): string {
  const first =
    tenantsSetting
      .split(',')
      .map((pair) => pair.split('=')[0]?.trim() ?? '')
      .find((id) => id !== '') ?? 'demo';
  return `npm run snapshot:local -- --sqs ${first} | --event ${first} | --schedule`;
}

/** `serverless offline start` arguments: stage, ports, and the stage parameters that differ locally. */
export function offlineArgs(ports: LocalStackPorts, params: Record<string, string>): string[] {
  const args = ['offline', 'start', '--stage', LOCAL_STAGE, '--host', HOST];
  args.push('--httpPort', String(ports.api), '--lambdaPort', String(ports.lambda), '--noAuth');
  for (const [name, value] of Object.entries(params)) {
    // osls rejects `--param name=` with an empty value; an empty setting keeps the stage's default.
    if (value !== '') args.push('--param', `${name}=${value}`);
  }
  return args;
}

/** The running stack. */
export interface LocalStack {
  readonly apiUrl: string;
  readonly lambdaUrl: string;
  /** Every port the stack listens on. */
  readonly ports: readonly number[];
  /** What runs where, for people. */
  readonly banner: string;
  /** Resolves with the exit code when `serverless offline` ends, whatever ended it. */
  readonly offlineExited: Promise<number | null>;
  /** Stops the schedule, `serverless offline` (its whole process group) and every local server; idempotent. */
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  env?: Env;
  log?: (line: string) => void;
  /**
   * Builds the bundles once the ports are known to be free (`npm start` passes the build; tests use
   * the bundles `npm test` built), so a busy port stops the start before dist/ is rewritten under a
   * stack that may be running.
   */
  build?: () => Promise<void>;
  /** Aborted (a Ctrl-C during start-up): the start stops what it had started and rejects with the signal's reason. */
  signal?: AbortSignal;
}

function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // Negative pid: the whole group, osls and anything it spawned.
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = waitForExit(child);
  signalGroup(child, 'SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    signalGroup(child, 'SIGKILL');
    await exited;
  }
}

/** Whether a TCP connection to the port is accepted (within 2 s). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Waits until serverless offline listens on the port (checked free before it started, so whoever
 * listens is serverless offline). A connection, not a request: a request would run a function and
 * log a "request refused" warning at every start.
 */
async function waitUntilListening(
  port: number,
  exited: Promise<unknown>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (gone) throw new Error('serverless offline exited before it was ready (see its output above).');
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`serverless offline did not listen on ${HOST}:${port} within ${timeoutMs / 1000} s.`);
}

/** Whether the port can be bound, i.e. nothing listens on it. */
function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** Fails unless the port can be bound: a busy port would otherwise look like a ready serverless offline. */
async function assertPortFree(port: number, variable: string): Promise<void> {
  if (port === 0) {
    if (variable === 'LOCAL_API_PORT' || variable === 'LOCAL_LAMBDA_PORT') {
      throw new Error(`${variable} is 0: serverless offline needs a fixed port.`);
    }
    return; // any free port, chosen when the server starts
  }
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new Error(`Port ${port} is in use (${String(error)}); free it or set ${variable}.`)),
    );
    server.listen(port, HOST, () => server.close(() => resolve()));
  });
}

/**
 * Fails when two servers are given one port (0, any free port, excepted): each would pass the check alone, and the
 * second would then fail with a bare EADDRINUSE, or be reported as a port someone else took, after the build.
 */
function assertDistinctPorts(wanted: readonly (readonly [number, string])[]): void {
  for (const [index, [port, variable]] of wanted.entries()) {
    if (port === 0) continue;
    const other = wanted.slice(index + 1).find(([p]) => p === port);
    if (other !== undefined) {
      throw new Error(
        `${variable} and ${other[1]} are both ${port}: each server needs a port of its own; set one of them to another port.`,
      );
    }
  }
}

/** Whether a process with this id runs (one of another user's counts: signalling it is refused). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

/**
 * Takes the data folder for this stack (a file holding its process id): two stacks on one folder would share
 * dynalite's database, which only one process can open; the second would fail deep inside dynalite with
 * "Database is closed". A file left by a stack that no longer runs is taken over. Resolves to its release.
 */
export async function claimDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const lock = path.join(dataDir, 'local-stack.pid');
  const own = String(process.pid);
  for (let round = 0; ; round++) {
    try {
      await writeFile(lock, own, { flag: 'wx' });
      break;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST') || round > 0) throw error;
    }
    const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
      throw new Error(
        `The data folder ${shownPath(dataDir)} is in use by another local stack (process ${holder}): stop that one, ` +
          `or give this one a folder of its own with LOCAL_DATA_DIR (and its own ports). If no stack runs, delete ${shownPath(lock)}.`,
      );
    }
    await unlink(lock).catch(() => undefined);
  }
  return async () => {
    if ((await readFile(lock, 'utf8').catch(() => '')) === own) await unlink(lock).catch(() => undefined);
  };
}

/** Starts everything; on a failure part-way, stops what had started and rethrows. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const ports = localPorts(env);
  const { region, from: regionFrom } = localRegion(env);
  const dataDir = path.resolve(ROOT, env.LOCAL_DATA_DIR ?? '.local-data');
  const realSecrets = isSet(env, 'KOODRIVE_TENANTS');
  const realKooDrive = isSet(env, 'KOODRIVE_BASE_URL');

  const cleanups: (() => Promise<void>)[] = [];
  const listening: number[] = [];
  const listensAt = (url: string) => listening.push(Number(new URL(url).port));
  const stopAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => log(`local stack: stop: ${String(error)}`));
    }
  };

  if (realSecrets && (!isSet(env, 'AWS_ACCESS_KEY_ID') || !isSet(env, 'AWS_SECRET_ACCESS_KEY'))) {
    // The bundles carry only the environment credential provider, as Lambda gives credentials.
    throw new Error(
      'KOODRIVE_TENANTS is set, so the real Secrets Manager is used: export AWS credentials as environment variables ' +
        '(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN for temporary ones), e.g. eval "$(aws configure export-credentials --format env)" (AWS CLI v2).',
    );
  }

  const problems = settingProblems(env);
  if (problems.length > 0) {
    throw new Error(
      `Fix ${problems.length === 1 ? 'this setting' : 'these settings'} in your shell, then run npm start again:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }

  try {
    // The data folder first: a second `npm start` beside a running one is told so, not sent to move a port.
    cleanups.push(await claimDataDir(dataDir));
    // Every port, so that a busy one is named with its variable before anything starts.
    const wanted: [number, string][] = [
      [ports.api, 'LOCAL_API_PORT'],
      [ports.lambda, 'LOCAL_LAMBDA_PORT'],
      [ports.dynamodb, 'LOCAL_DYNAMODB_PORT'],
      [ports.eventBridge, 'LOCAL_EVENTBRIDGE_PORT'],
    ];
    if (!realKooDrive) wanted.push([ports.koodrive, 'LOCAL_KOODRIVE_PORT']);
    if (!realSecrets) wanted.push([ports.secretsManager, 'LOCAL_SECRETS_MANAGER_PORT']);
    assertDistinctPorts(wanted);
    for (const [port, variable] of wanted) await assertPortFree(port, variable);
    // After both checks: a second stack on the same folder would rebuild the first one's bundles.
    await options.build?.();
    options.signal?.throwIfAborted();

    let koodriveUrl = env.KOODRIVE_BASE_URL?.trim() ?? '';
    let moveDemo: (at: Date) => void = () => undefined;
    if (!realKooDrive) {
      const simulator = await startKooDriveSimulator({
        port: ports.koodrive,
        host: HOST,
        apps: DEMO_TENANTS.map((t) => t.app),
      });
      cleanups.push(() => simulator.close());
      listensAt(simulator.url);
      koodriveUrl = simulator.url;
      // The demo tenant's allocation moves with the clock, so history, trend and threshold events show something.
      moveDemo = (at) => simulator.setData(DEMO_APP.appId, demoDataAt(at));
      moveDemo(new Date());
    }

    const childEnv: Env = {
      ...env,
      AWS_REGION: region,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // Lambda sets it; Powertools counts a cold start (log field, ColdStart metric) only when it is on-demand.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    };
    let secretsManagerUrl: string | undefined;
    if (!realSecrets) {
      const secrets = Object.fromEntries(DEMO_TENANTS.map((t) => [t.secretId, demoSecretString(t.app)]));
      const secretsManager = await startLocalSecretsManager({
        port: ports.secretsManager,
        host: HOST,
        region,
        secrets,
      });
      cleanups.push(() => secretsManager.close());
      listensAt(secretsManager.url);
      secretsManagerUrl = secretsManager.url;
      // Dummy credentials: the local servers do not check signatures, and no real account may be reached.
      childEnv.AWS_ENDPOINT_URL_SECRETS_MANAGER = secretsManager.url;
      childEnv.AWS_ACCESS_KEY_ID = 'local';
      childEnv.AWS_SECRET_ACCESS_KEY = 'local';
      delete childEnv.AWS_SESSION_TOKEN;
      delete childEnv.AWS_PROFILE;
    }

    const dynamodb = await startLocalDynamoDb({
      port: ports.dynamodb,
      host: HOST,
      path: path.join(dataDir, 'dynamodb'),
      tables: { SnapshotsTable: LOCAL_TABLE_NAME },
    });
    cleanups.push(() => dynamodb.close());
    listensAt(dynamodb.url);
    childEnv.AWS_ENDPOINT_URL_DYNAMODB = dynamodb.url;

    // Threshold events always go to a local bus: a local run must not publish on a real account's bus.
    const eventBridge = await startLocalEventBridge({ port: ports.eventBridge, host: HOST });
    cleanups.push(() => eventBridge.close());
    listensAt(eventBridge.url);
    childEnv.AWS_ENDPOINT_URL_EVENTBRIDGE = eventBridge.url;
    eventBridge.onEvent((event) => {
      log(
        `local stack: event on bus '${event.busName}': ${event.detailType} ${JSON.stringify(event.detail)}`,
      );
    });

    const params: Record<string, string> = {
      tenants: realSecrets ? (env.KOODRIVE_TENANTS ?? '').trim() : DEMO_TENANTS_SETTING,
      koodriveBaseUrl: koodriveUrl,
      snapshotTable: LOCAL_TABLE_NAME,
    };
    for (const [variable, param] of Object.entries(PARAMS_FROM_ENV)) {
      const value = env[variable]?.trim();
      if (value !== undefined && value !== '') params[param] = value;
    }

    options.signal?.throwIfAborted();
    await assertPortFree(ports.api, 'LOCAL_API_PORT');
    await assertPortFree(ports.lambda, 'LOCAL_LAMBDA_PORT');
    const serverlessBin = createRequire(import.meta.url).resolve('osls/bin/serverless.js');
    // --enable-source-maps reaches the handlers' worker threads: stacks printed by serverless offline itself
    // (a handler that throws) show the sources. Deployed functions map the stacks they log on demand instead
    // (lib/source-map.ts, which leaves stacks Node already mapped as they are).
    const nodeArgs = [
      '--enable-source-maps',
      '--import',
      OFFLINE_GUARD,
      serverlessBin,
      ...offlineArgs(ports, params),
    ];
    // Its own process group, so that stopping reaches everything osls started; the IPC channel is only the
    // guard's: it closes when this process ends, however it ends.
    const child = spawn(process.execPath, nodeArgs, {
      cwd: ROOT,
      env: childEnv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    const offlineExited = waitForExit(child);
    cleanups.push(() => stopChild(child));
    listening.push(ports.api, ports.lambda);

    const apiUrl = `http://${HOST}:${ports.api}`;
    const lambdaUrl = `http://${HOST}:${ports.lambda}`;
    await waitUntilListening(ports.api, offlineExited, STARTUP_TIMEOUT_MS, options.signal);
    await waitUntilListening(ports.lambda, offlineExited, STARTUP_TIMEOUT_MS, options.signal);

    const snapshotUrl = invokeUrl(ports.lambda);
    const schedule = startMinuteSchedule(async (at) => {
      moveDemo(at);
      const result = await invokeFunction(snapshotUrl, scheduledEvent(at, region));
      log(`local stack: scheduled snapshot at ${at.toISOString()}: ${describeResult(result)}`);
    }, log);
    cleanups.push(async () => schedule.stop());

    const banner = [
      'KooDrive allocation: local stack',
      `  HTTP API         ${apiUrl}  (GET /allocation, /tenants/{tenantId}/allocation[/history|/history.svg], /dashboard)`,
      `  Lambda Invoke    ${lambdaUrl}  (${snapshotCommandsHint(params.tenants ?? '')})`,
      `  KooDrive         ${koodriveUrl} (${realKooDrive ? 'KOODRIVE_BASE_URL' : 'simulator'})`,
      // Real secrets, local KooDrive: the simulator knows only the demo apps, and its 401 reads like a bad secret.
      ...(realSecrets && !realKooDrive
        ? [
            `                   The simulator knows only the demo apps: it refuses your tenants (UPSTREAM_REJECTED, "app not found")`,
            `                   unless their secret has a baseUrl. For your tenants' KooDrive, set KOODRIVE_BASE_URL (e.g. ${DEFAULTS.KOODRIVE_BASE_URL}).`,
          ]
        : []),
      `  Secrets Manager  ${secretsManagerUrl ?? `AWS in ${region} (${regionFrom}), with the shell credentials (KOODRIVE_TENANTS is set)`}`,
      `  EventBridge      ${eventBridge.url}  (threshold events are printed here)`,
      `  DynamoDB         ${dynamodb.url}  (dynalite, table ${LOCAL_TABLE_NAME}, data in ${shownPath(path.join(dataDir, 'dynamodb'))})`,
      `  Tenants          ${params.tenants}`,
      '  Schedule         snapshot of every tenant at start and every minute',
      'Ctrl-C stops everything.',
    ].join('\n');

    let stopping: Promise<void> | undefined;
    return {
      apiUrl,
      lambdaUrl,
      ports: listening,
      banner,
      offlineExited,
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (error) {
    await stopAll();
    if (options.signal?.aborted) throw new LocalStackAborted(listening);
    throw error;
  }
}

/** A start-up aborted through {@link LocalStackOptions.signal}, after everything it had started was stopped. */
class LocalStackAborted extends Error {
  /** The ports it had listened on. */
  readonly ports: readonly number[];
  constructor(ports: readonly number[]) {
    super('local stack: start-up aborted');
    this.name = 'LocalStackAborted';
    this.ports = ports;
  }
}

/** A path relative to the repository when it is inside it. */
function shownPath(file: string): string {
  const relative = path.relative(ROOT, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** Runs `task` now and at every minute boundary after, one run at a time, with the minute as its time. */
export function startMinuteSchedule(
  task: (at: Date) => Promise<void>,
  log: (line: string) => void,
): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopped = false;
  const run = () => {
    if (stopped || running) return;
    running = true;
    const at = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
    task(at)
      .catch((error: unknown) =>
        // Stopping the stack cuts a run short (its function's server goes away): not a failure to report.
        log(
          stopped
            ? `local stack: the scheduled snapshot at ${at.toISOString()} was cut short by the stop`
            : `local stack: scheduled snapshot failed: ${String(error)}`,
        ),
      )
      .finally(() => {
        running = false;
      });
  };
  const next = () => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        run();
        next();
      },
      MINUTE_MS - (Date.now() % MINUTE_MS),
    );
  };
  run();
  next();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Stops the stack, then says so, naming any port still in use. */
async function stopAndReport(stack: LocalStack): Promise<void> {
  await stack.stop();
  await report(stack.ports);
}

/** Says the stack stopped, naming any of its ports still in use. */
async function report(ports: readonly number[]): Promise<void> {
  const busy: number[] = [];
  for (const port of ports) if (!(await canBind(port))) busy.push(port);
  console.log(
    busy.length === 0
      ? 'local stack: stopped; every port is free.'
      : `local stack: stopped, but ${busy.length === 1 ? 'port' : 'ports'} ${busy.join(', ')} still in use.`,
  );
}

async function main(): Promise<void> {
  let stack: LocalStack | undefined;
  let signals = 0;
  // A signal during start-up aborts it: startLocalStack then stops what it had started (serverless offline too,
  // and the data folder's pid file) before this process ends.
  const starting = new AbortController();
  const shutdown = (why: string) => {
    signals += 1;
    // A second Ctrl-C changes nothing: stopping already ends in SIGKILL after a grace period.
    if (signals > 1) return;
    console.log(`local stack: ${why}, stopping…`);
    if (stack === undefined) starting.abort(new Error(`${why} during start-up`));
    else void stopAndReport(stack).then(() => process.exit(0));
  };
  // SIGHUP: the terminal closed or the SSH session dropped. Offline, in its own session, gets no SIGHUP of its own.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);
  try {
    // `npm start` passes --build; run directly (as the local-stack test does) it uses the bundles in dist/.
    stack = await startLocalStack({
      ...(process.argv.includes('--build') ? { build: () => buildAll() } : {}),
      signal: starting.signal,
    });
  } catch (error) {
    if (!(error instanceof LocalStackAborted)) throw error;
    await report(error.ports);
    process.exit(0);
  }
  const started = stack;
  // A signal that came after the start's last check: it found no stack to stop, so stop it now.
  if (starting.signal.aborted) {
    await stopAndReport(started);
    process.exit(0);
  }
  console.log(`\n${started.banner}\n`);
  // `npm start` runs this under `sh -c`, which a SIGTERM to npm (a process manager, `timeout`, `kill`) ends
  // without passing the signal on: the parent going away is the same request to stop.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown(`the process that started it (${parent}) ended`);
  }, PARENT_CHECK_MS).unref();
  // serverless offline ending on its own (a crash) ends the stack too.
  void started.offlineExited.then(async (code) => {
    if (signals > 0) return;
    console.error(`local stack: serverless offline exited (code ${code}); stopping`);
    await stopAndReport(started);
    process.exit(code === 0 || code === null ? 1 : code);
  });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await main();
  } catch (error) {
    console.error(`local stack: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
