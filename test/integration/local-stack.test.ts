/**
 * `npm start`'s stack, run as a person would: `node local/start.ts` as a child process on free ports, asked over
 * HTTP, then stopped with SIGINT (and again, to be stopped with SIGHUP or killed). Also the local DynamoDB it is
 * built on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeTableCommand, DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TENANT_ID, LAB_TENANT_ID } from '../../local/demo.ts';
import { parseTableSchemas, SERVERLESS_YML, startLocalDynamoDb } from '../../local/dynamodb.ts';
import { invokeFunction, invokeUrl, sqsSnapshotEvent } from '../../local/invoke.ts';
import { localPorts } from '../../local/ports.ts';
import { startLocalSecretsManager } from '../../local/secrets-manager.ts';
import { claimDataDir, offlineArgs, settingProblems, startLocalStack } from '../../local/start.ts';
import { launchChromium } from '../browser/chromium.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STARTUP_MS = 150_000;
const READY_LINE = 'Ctrl-C stops everything.';
/** A start, a snapshot and a stop. */
const STOP_TEST_MS = STARTUP_MS + 30_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Distinct ports that were free a moment ago. */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  await Promise.all(servers.map((server) => listen(server, 0)));
  const ports = servers.map((server) => {
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  });
  await Promise.all(servers.map(close));
  return ports;
}

/** Whether the port can be bound again, i.e. nothing listens on it any more. */
async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    await listen(server, port);
    await close(server);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** `npm run snapshot:local -- <args>` against the Lambda port: its exit code, what it printed, its answer. */
async function runSnapshotLocal(
  args: readonly string[],
  lambdaPort: number | string,
): Promise<{ code: number | null; stdout: string; stderr: string; json: unknown }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'local', 'invoke.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOCAL_LAMBDA_PORT: String(lambdaPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // 'close', not 'exit': once its output is read to the end.
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

/** A GET with the headers given, Host included (fetch will not send another host's name). */
function rawGet(port: number, pathname: string, headers: Record<string, string>) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: pathname, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

/**
 * The environment of a user's shell for the demo stack on these ports and data folder: the simulator and
 * the local Secrets Manager whatever this shell points at, and without what the test runner sets for the
 * handlers it runs itself (AWS_LAMBDA_INITIALIZATION_TYPE).
 */
function demoShellEnv(ports: readonly number[], dataDir: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...portVariables(ports),
    LOCAL_DATA_DIR: dataDir,
  };
  delete env.KOODRIVE_TENANTS;
  delete env.KOODRIVE_BASE_URL;
  delete env.AWS_LAMBDA_INITIALIZATION_TYPE;
  return env;
}

/** `node local/start.ts` as a person runs it, on free ports, with its output collected. */
interface StartedStack {
  child: ChildProcess;
  /** API, Lambda, KooDrive, Secrets Manager, DynamoDB, EventBridge. */
  ports: number[];
  env: Record<string, string | undefined>;
  dataDir: string;
  /** Everything it printed so far (stdout and stderr). */
  output: string;
}

/** Starts the stack and resolves once it prints its ready line; stops it again should it not get there. */
/** The local stack's port variables for six ports, in localPorts' order. */
function portVariables(ports: readonly number[]): Record<string, string> {
  const names = ['API', 'LAMBDA', 'KOODRIVE', 'SECRETS_MANAGER', 'DYNAMODB', 'EVENTBRIDGE'];
  return Object.fromEntries(names.map((name, index) => [`LOCAL_${name}_PORT`, String(ports[index] ?? 0)]));
}

async function startStack(options: { viaShell?: boolean } = {}): Promise<StartedStack> {
  const missing = ['allocation', 'history', 'chart', 'snapshot'].filter(
    (name) => !existsSync(path.join(ROOT, 'dist', name, 'index.mjs')),
  );
  if (missing.length > 0) throw new Error(`dist/ lacks ${missing.join(', ')}: run \`npm run build\` first.`);

  const ports = await freePorts(6);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
  const env = demoShellEnv(ports, dataDir);

  const start = path.join(ROOT, 'local', 'start.ts');
  // viaShell: under `sh -c` as npm runs scripts (the `; exit` keeps the shell from exec'ing node).
  const child = options.viaShell
    ? spawn('/bin/sh', ['-c', `"${process.execPath}" "${start}"; exit $?`], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, [start], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stack: StartedStack = { child, ports, env, dataDir, output: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    stack.output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stack.output += chunk.toString('utf8');
  });
  const ended = exited(child);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ready line within ${STARTUP_MS} ms:\n${stack.output}`)),
        STARTUP_MS,
      );
      const poll = setInterval(() => {
        if (stack.output.includes(READY_LINE)) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 100);
      void ended.then(({ code }) => {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`local/start.ts exited (code ${code}) before it was ready:\n${stack.output}`));
      });
    });
  } catch (error) {
    await stopStack(stack);
    throw error;
  }
  return stack;
}

/** SIGINT (SIGKILL 20 s later) unless it has ended already; then its data folder goes. */
async function stopStack(stack: StartedStack | undefined): Promise<void> {
  if (stack === undefined) return;
  const { child } = stack;
  if (child.exitCode === null && child.signalCode === null) {
    const ended = exited(child);
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await ended;
    clearTimeout(timer);
  }
  await rm(stack.dataDir, { recursive: true, force: true });
}

/**
 * Resolves once the start-up scheduled snapshot has answered (or after 20 s): serverless offline, stopped during an
 * invocation, waits up to 5 s for it.
 */
async function firstSnapshotTaken(stack: StartedStack): Promise<void> {
  for (let i = 0; i < 200 && !/scheduled snapshot at \S+: /.test(stack.output); i++)
    await new Promise((r) => setTimeout(r, 100));
}

/** The ports still listened on once all are free or `ms` have passed (polled every 200 ms). */
async function portsStillBusyAfter(ports: readonly number[], ms: number): Promise<number[]> {
  let busy = await busyPorts(ports);
  for (let waited = 0; waited < ms && busy.length > 0; waited += 200) {
    await new Promise((r) => setTimeout(r, 200));
    busy = await busyPorts(ports);
  }
  return busy;
}

/** The ports that something still listens on. */
async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const free = await Promise.all(ports.map(isFree));
  return ports.filter((_, i) => !free[i]);
}

/* The browser globals the page functions use (the project's TypeScript has no DOM library). */
declare const document: {
  readonly images: Iterable<{
    readonly complete: boolean;
    readonly naturalWidth: number;
    readonly naturalHeight: number;
    getAttribute(name: string): string | null;
  }>;
  querySelectorAll(selectors: string): Iterable<{ getAttribute(name: string): string | null }>;
};

describe('local stack (npm start)', () => {
  let stack: StartedStack | undefined;
  let apiUrl = '';
  let lambdaPort = 0;
  /** What the stack printed so far. */
  const output = () => stack?.output ?? '';

  beforeAll(async () => {
    stack = await startStack();
    const [api = 0, lambda = 0] = stack.ports;
    apiUrl = `http://127.0.0.1:${api}`;
    lambdaPort = lambda;
  }, STARTUP_MS + 10_000);

  afterAll(() => stopStack(stack), 30_000);

  it('prints where everything runs', () => {
    expect(output()).toContain(`HTTP API         ${apiUrl}`);
    expect(output()).toContain('(simulator)');
    expect(output()).toContain(
      `table koodrive-allocation-local-snapshots, data in ${path.join(stack?.dataDir ?? '', 'dynamodb')}`,
    );
  });

  it('answers GET /allocation with the default tenant’s spaces', async () => {
    const { status, body } = await getJson(`${apiUrl}/allocation`);
    expect(status).toBe(200);
    expect(isRecord(body) && body.tenantId).toBe(DEMO_TENANT_ID);
    const spaces = isRecord(body) ? body.spaces : undefined;
    expect(Array.isArray(spaces) && spaces.length).toBeGreaterThan(0);
  });

  it('answers GET /tenants/{tenantId}/allocation for the second demo tenant', async () => {
    const { status, body } = await getJson(`${apiUrl}/tenants/${LAB_TENANT_ID}/allocation`);
    expect(status).toBe(200);
    expect(isRecord(body) && body.tenantId).toBe(LAB_TENANT_ID);
  });

  it('runs the snapshot function on an SQS batch through the Invoke endpoint and keeps it in history', async () => {
    const at = new Date();
    const result = await invokeFunction(
      invokeUrl(lambdaPort),
      sqsSnapshotEvent(at, 'us-east-1', LAB_TENANT_ID),
    );
    // The stack's own output says why, should the function fail.
    const why = () => `${JSON.stringify(result.payload)}\n${output().slice(-4000)}`;
    expect(result.status, why()).toBe(200);
    expect(result.functionError, why()).toBeUndefined();
    expect(result.payload, why()).toEqual({ batchItemFailures: [] });

    // Exactly the message's time (both bounds are inclusive): the minute schedule may store its own
    // snapshot a moment away.
    const from = at.toISOString();
    const to = at.toISOString();
    const history = await getJson(
      `${apiUrl}/tenants/${LAB_TENANT_ID}/allocation/history?from=${from}&to=${to}`,
    );
    expect(history.status, JSON.stringify(history.body)).toBe(200);
    const items = isRecord(history.body) ? history.body.items : undefined;
    expect(
      Array.isArray(items) ? items.map((item) => isRecord(item) && item.observedAt) : items,
      JSON.stringify(history.body),
    ).toEqual([at.toISOString()]);
  });

  it('serves the dashboard page, and sends /dashboard/ back to it as the deployed function does', async () => {
    const response = await fetch(`${apiUrl}/dashboard`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    await response.body?.cancel();
    const slash = await fetch(`${apiUrl}/dashboard/?inline=1`, { redirect: 'manual' });
    expect([slash.status, slash.headers.get('location')]).toEqual([308, '../dashboard?inline=1']);
    expect(slash.headers.get('x-trace-id')).toMatch(/^[0-9a-f-]{36}$/);
    await slash.body?.cancel();
    // Followed, it lands on the page.
    const followed = await fetch(`${apiUrl}/dashboard/?inline=1`);
    expect([followed.status, new URL(followed.url).pathname]).toEqual([200, '/dashboard']);
    expect(followed.headers.get('content-type')).toMatch(/^text\/html/);
    await followed.body?.cancel();
  });

  it('shows every tenant’s chart on the dashboard, in headless Chromium, with each series drawn', async () => {
    if (stack !== undefined) await firstSnapshotTaken(stack);
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const response = await page.goto(`${apiUrl}/dashboard`);
      expect(response?.status()).toBe(200);
      await page.waitForFunction(() => Array.from(document.images).every((image) => image.complete));
      const images = await page.evaluate(() =>
        Array.from(document.images, (image) => ({
          src: image.getAttribute('src') ?? '',
          width: image.naturalWidth,
          height: image.naturalHeight,
        })),
      );
      expect(images.map((image) => image.src.split('/')[1]).sort()).toEqual(
        [DEMO_TENANT_ID, LAB_TENANT_ID].sort(),
      );
      for (const image of images) expect([image.width, image.height], image.src).toEqual([800, 400]);
      for (const tenantId of [DEMO_TENANT_ID, LAB_TENANT_ID]) {
        await page.goto(`${apiUrl}/tenants/${tenantId}/allocation/history.svg`);
        const series = await page.evaluate(() =>
          Array.from(document.querySelectorAll('path[data-series$="-allocated"]'), (path) => ({
            name: path.getAttribute('data-series') ?? '',
            d: path.getAttribute('d') ?? '',
          })),
        );
        // demo reports the three space types (the documented array), lab one (the vendor's object example).
        const spaces = tenantId === DEMO_TENANT_ID ? ['department', 'personal', 'group'] : ['department'];
        expect(series.map((s) => s.name).sort(), tenantId).toEqual(
          [...spaces, 'totals'].map((name) => `${name}-allocated`).sort(),
        );
        for (const s of series) expect(s.d, `${tenantId} ${s.name}`).toMatch(/^M\d/);
      }
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("answers any other path with the contract's NOT_FOUND problem, not the gateway's own 404", async () => {
    const response = await fetch(`${apiUrl}/quota`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('answers no request for another host name (DNS rebinding) or from another origin’s page, on any port', async () => {
    const [api = 0] = stack?.ports ?? [];
    const rebound = await rawGet(api, '/allocation', { host: `attacker.example:${api}` });
    expect(rebound.status).toBe(403);
    expect(rebound.type).toBe('application/problem+json');
    expect(JSON.parse(rebound.body)).toMatchObject({
      status: 403,
      detail: expect.stringContaining('DNS rebinding'),
      code: 'LOCAL_STACK_ONLY',
      traceId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const invoke = await rawGet(lambdaPort, '/2015-03-31/functions/snapshot/invocations', {
      host: `attacker.example:${lambdaPort}`,
    });
    expect(invoke.status).toBe(403);
    // The stack's own servers too: Secrets Manager, DynamoDB (real tenants' history with KOODRIVE_TENANTS
    // set) and EventBridge. Not the KooDrive simulator: it checks signatures over any signed Host, and
    // knows only the demo apps.
    for (const port of stack?.ports.slice(3) ?? []) {
      const other = await rawGet(port, '/', { host: `attacker.example:${port}` });
      expect(other.status, `port ${port}`).toBe(403);
    }
    const page = await rawGet(api, '/allocation', {
      host: `127.0.0.1:${api}`,
      origin: 'https://attacker.example',
    });
    expect(page.status).toBe(403);
    // Local names and local pages are served as before.
    const local = await rawGet(api, '/allocation', {
      host: `localhost:${api}`,
      origin: `http://127.0.0.1:${api}`,
    });
    expect(local.status).toBe(200);
    expect(JSON.parse(local.body)).toMatchObject({ tenantId: DEMO_TENANT_ID });
  });

  it('took the start-up scheduled snapshot of every tenant', async () => {
    // The first scheduled run starts with the stack; its result line follows once the function answers.
    const line = /scheduled snapshot at (\S+): /;
    for (let i = 0; i < 200 && !line.test(output()); i++) await new Promise((r) => setTimeout(r, 100));
    const observedAt = line.exec(output())?.[1] ?? '';
    expect(observedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/);
    const { body } = await getJson(
      `${apiUrl}/tenants/${DEMO_TENANT_ID}/allocation/history?from=${observedAt}&to=${observedAt}`,
    );
    const items = isRecord(body) ? body.items : undefined;
    expect(Array.isArray(items) ? items.length : items).toBe(1);
  });

  it('counts each execution environment’s first invocation as its cold start, as Lambda does, and only that one', () => {
    /** Each invocation's request id and whether its lines say cold start, in the order they ran. */
    const invocations = (fn: string) => {
      const seen = new Map<string, string | undefined>();
      for (const line of output().split('\n')) {
        if (
          !line.startsWith('{"level"') ||
          !line.includes(`"function_name":"koodrive-allocation-local-${fn}"`)
        )
          continue;
        const id = /"function_request_id":"([^"]+)"/.exec(line)?.[1] ?? '';
        if (!seen.has(id)) seen.set(id, /"cold_start":(true|false)/.exec(line)?.[1]);
      }
      return [...seen.values()];
    };
    const metrics = (fn: string) =>
      output().match(new RegExp(`"function_name":"koodrive-allocation-local-${fn}","ColdStart":1}`, 'g')) ??
      [];
    // The allocation route is called one request at a time here: one environment, one cold start.
    const allocation = invocations('allocation');
    expect(allocation.length).toBeGreaterThan(1);
    expect(allocation.slice(0, 2)).toEqual(['true', 'false']);
    expect(allocation.filter((c) => c === 'true')).toHaveLength(1);
    expect(metrics('allocation')).toHaveLength(1);
    // The snapshot function may run twice at once (the start-up run and a test's SQS batch): as many
    // ColdStart metrics as environments, Powertools' own, each with its invocation's cold_start lines.
    const snapshot = invocations('snapshot');
    expect(snapshot[0]).toBe('true');
    expect(metrics('snapshot')).toHaveLength(snapshot.filter((c) => c === 'true').length);
  });

  it('refuses a second stack on the same data folder before building anything, naming the folder and the way out', async () => {
    const dataDir = stack?.dataDir ?? '';
    let built = false;
    const env = { ...portVariables(await freePorts(6)), LOCAL_DATA_DIR: dataDir };
    await expect(
      startLocalStack({
        env,
        log: () => undefined,
        build: async () => {
          built = true;
        },
      }),
    ).rejects.toThrow(
      new RegExp(
        `data folder .* is in use by another local stack \\(process ${stack?.child.pid}\\).*LOCAL_DATA_DIR`,
      ),
    );
    expect(built).toBe(false);
    // The running stack keeps its folder.
    expect((await readFile(path.join(dataDir, 'local-stack.pid'), 'utf8')).trim()).toBe(
      String(stack?.child.pid),
    );
  });

  it('tells a second `npm start` of the same settings that a stack already runs, not to move a port', async () => {
    // The same ports and folder: a second terminal running `npm start` again.
    await expect(startLocalStack({ env: stack?.env ?? {}, log: () => undefined })).rejects.toThrow(
      `is in use by another local stack (process ${stack?.child.pid})`,
    );
  });

  it('snapshot:local reads LOCAL_LAMBDA_PORT as npm start does: empty is the default, a non-port is refused', async () => {
    const refused = await runSnapshotLocal(['--sqs', DEMO_TENANT_ID], 'abc');
    expect([refused.code, refused.stdout]).toEqual([2, '']);
    expect(refused.stderr).toContain("LOCAL_LAMBDA_PORT is 'abc': it must be a port number from 0 to 65535.");
  });

  it('snapshot:local -- --help says what each option sends and exits 0; a wrong option exits 2', async () => {
    const help = await runSnapshotLocal(['--help'], lambdaPort);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run snapshot:local -- /);
    expect(help.stdout).toContain('--schedule          a scheduled event (the default)');
    const wrong = await runSnapshotLocal(['--bogus'], lambdaPort);
    expect([wrong.code, wrong.stdout]).toEqual([2, '']);
    expect(wrong.stderr).toMatch(
      /^snapshot:local: unknown option '--bogus': use --sqs, --event or --schedule\.\nusage: /,
    );
  });

  it('snapshot:local -- --sqs exits 1 on a failed message, names it and says where the reason is', async () => {
    const unknown = await runSnapshotLocal(['--sqs', 'nope'], lambdaPort);
    const ids =
      isRecord(unknown.json) && Array.isArray(unknown.json.batchItemFailures)
        ? unknown.json.batchItemFailures.map(
            (failure: unknown) => isRecord(failure) && failure.itemIdentifier,
          )
        : [];
    expect(ids, unknown.stdout + unknown.stderr).toHaveLength(1);
    const [id] = ids;
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`failed: SQS message ${id} (body {"tenantId":"nope"})`);
    expect(unknown.stderr).toContain("npm start's output");
    // Where the line points: the stack's output has the reason, under the message's id.
    const rejected = (line: string) =>
      line.includes('SQS message rejected') && line.includes(`"messageId":"${id}"`) && line.includes('nope');
    for (let i = 0; i < 50 && !output().split('\n').some(rejected); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(output().split('\n').filter(rejected), output().slice(-4000)).toHaveLength(1);

    const known = await runSnapshotLocal(['--sqs', LAB_TENANT_ID], lambdaPort);
    expect([known.code, known.json, known.stderr]).toEqual([0, { batchItemFailures: [] }, '']);
  });

  it('stops everything on SIGINT, frees every port and says so', async () => {
    if (stack === undefined) throw new Error('the stack did not start');
    const ended = exited(stack.child);
    stack.child.kill('SIGINT');
    const { code } = await ended;
    expect(code).toBe(0);
    expect(await busyPorts(stack.ports)).toEqual([]);
    expect(output()).toMatch(
      /local stack: SIGINT, stopping…\n(.*\n)*local stack: stopped; every port is free\.\n$/,
    );
  }, 30_000);
});

describe('local stack, ended otherwise than by Ctrl-C', () => {
  let stack: StartedStack | undefined;

  afterEach(async () => {
    await stopStack(stack);
    stack = undefined;
  }, 30_000);

  it(
    'stops everything on SIGHUP, its terminal gone, and frees every port',
    async () => {
      stack = await startStack();
      await firstSnapshotTaken(stack);
      const { child, ports } = stack;
      // A closed terminal: every write to it fails from now on.
      child.stdout?.destroy();
      child.stderr?.destroy();
      const ended = exited(child);
      child.kill('SIGHUP');
      expect(await ended).toEqual({ code: 0, signal: null });
      expect(await busyPorts(ports)).toEqual([]);
    },
    STOP_TEST_MS,
  );

  it(
    'stops everything when the shell npm started it from ends without passing a SIGTERM on',
    async () => {
      stack = await startStack({ viaShell: true });
      await firstSnapshotTaken(stack);
      const { child, ports } = stack;
      const ended = exited(child);
      child.kill('SIGTERM');
      await ended;
      expect(await portsStillBusyAfter(ports, 15_000)).toEqual([]);
      expect(stack.output).toMatch(/local stack: the process that started it \(\d+\) ended, stopping/);
      for (let i = 0; i < 50 && !stack.output.includes('every port is free'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(stack.output).toContain('local stack: stopped; every port is free.');
    },
    STOP_TEST_MS,
  );

  it(
    'stops everything on a Ctrl-C during start-up too, says so, and gives the data folder back',
    async () => {
      const ports = await freePorts(6);
      const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
      const env = demoShellEnv(ports, dataDir);
      const child = spawn(process.execPath, [path.join(ROOT, 'local', 'start.ts')], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      stack = { child, ports, env, dataDir, output: '' };
      const started = stack;
      child.stdout?.on('data', (chunk: Buffer) => {
        started.output += chunk.toString('utf8');
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        started.output += chunk.toString('utf8');
      });
      const ended = exited(child);
      // serverless offline has started and is not ready yet (or, on a fast machine, has just become ready).
      for (let i = 0; i < 600 && !started.output.includes('Starting Offline'); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(started.output).toContain('Starting Offline');
      child.kill('SIGINT');
      expect(await ended, started.output).toEqual({ code: 0, signal: null });
      expect(started.output).toMatch(/local stack: stopped; every port is free\.\n$/);
      expect(await portsStillBusyAfter(ports, 15_000)).toEqual([]);
      expect(existsSync(path.join(dataDir, 'local-stack.pid'))).toBe(false);
    },
    STOP_TEST_MS,
  );

  it(
    'stops serverless offline when start.ts is killed outright',
    async () => {
      stack = await startStack();
      await firstSnapshotTaken(stack);
      const { child, ports } = stack;
      const ended = exited(child);
      child.kill('SIGKILL');
      await ended;
      // Offline, detached in its own group, stops itself once start.ts is gone (local/offline-guard.ts).
      expect(await portsStillBusyAfter(ports, 15_000)).toEqual([]);
    },
    STOP_TEST_MS,
  );
});

describe('local stack against your Secrets Manager (KOODRIVE_TENANTS set), KooDrive left to the simulator', () => {
  it('refuses real tenants without both AWS keys, before starting anything', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
    const env = {
      ...portVariables(await freePorts(6)),
      LOCAL_DATA_DIR: dataDir,
      KOODRIVE_TENANTS: 'acme=koodrive/acme',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_REGION: 'us-east-1',
    };
    await expect(startLocalStack({ env, log: () => undefined })).rejects.toThrow(
      /export AWS credentials as environment variables \(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN for temporary ones\)/,
    );
    // Nothing was started: the data folder was not claimed.
    expect(await readdir(dataDir)).toEqual([]);
  });

  it(
    'says in its banner that the simulator refuses your tenants, and how to reach your KooDrive',
    async () => {
      // "Your account's" Secrets Manager: a local one, reached the way the SDK reaches any endpoint.
      const secrets = await startLocalSecretsManager({
        region: 'us-east-1',
        secrets: {
          'koodrive/acme': JSON.stringify({ appId: 'acme-app', appSecret: 'acme-secret', userId: '42' }),
        },
      });
      const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
      const env = {
        ...portVariables(await freePorts(6)),
        LOCAL_DATA_DIR: dataDir,
        KOODRIVE_TENANTS: 'acme=koodrive/acme',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      };
      const stack = await startLocalStack({ env, log: () => undefined });
      try {
        expect(stack.banner).toMatch(/KooDrive +http:\/\/127\.0\.0\.1:\d+ \(simulator\)/);
        expect(stack.banner).toContain('The simulator knows only the demo apps');
        expect(stack.banner).toContain(
          'set KOODRIVE_BASE_URL (e.g. https://intl.myhuaweicloud-koodrive.com)',
        );
        // What that user would otherwise be left with: a refusal that reads like a bad secret.
        const { status, body } = await getJson(`${stack.apiUrl}/allocation`);
        expect([status, isRecord(body) && body.code, isRecord(body) && body.upstreamMessage]).toEqual([
          502,
          'UPSTREAM_REJECTED',
          'Incorrect app authentication information: app not found',
        ]);
      } finally {
        await stack.stop();
        await secrets.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
    STOP_TEST_MS,
  );
});

describe('local stack settings', () => {
  it('refuses wrong function settings from the shell before starting anything, naming each', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
    const env = {
      ...portVariables(await freePorts(6)),
      LOCAL_DATA_DIR: dataDir,
      KOODRIVE_TIMEOUT_MS: 'abc',
      SNAPSHOT_RETENTION_DAYS: '-5',
      AWS_REGION: 'us-east-1',
    };
    const started = startLocalStack({ env, log: () => undefined });
    await expect(started).rejects.toThrow(
      "Fix these settings in your shell, then run npm start again:\n  - KOODRIVE_TIMEOUT_MS is 'abc': it must be a whole number from 1 to 900000.\n  - SNAPSHOT_RETENTION_DAYS is '-5'",
    );
    // Nothing was started: the data folder was not claimed.
    expect(await readdir(dataDir)).toEqual([]);
    expect(
      settingProblems({ KOODRIVE_TIMEOUT_MS: ' 2000 ', ALLOCATION_METRICS: 'totals', KOODRIVE_TENANTS: '' }),
    ).toEqual([]);
    expect(settingProblems({ ALLOCATION_METRICS: 'none' })).toEqual([
      expect.stringMatching(/^ALLOCATION_METRICS is 'none'/),
    ]);
  });

  it('reads ports from LOCAL_*_PORT and rejects a bad one', () => {
    expect(localPorts({ LOCAL_API_PORT: '4000', LOCAL_DYNAMODB_PORT: ' ' })).toEqual({
      api: 4000,
      lambda: 3002,
      koodrive: 8787,
      secretsManager: 4584,
      dynamodb: 8000,
      eventBridge: 4010,
    });
    expect(() => localPorts({ LOCAL_LAMBDA_PORT: 'x' })).toThrow(/LOCAL_LAMBDA_PORT/);
  });

  it('takes over a data folder whose stack no longer runs, and gives it back on stop', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-claim-'));
    try {
      // The id of a process that has ended: what a stack killed outright leaves behind.
      const gone = spawn(process.execPath, ['-e', '0']);
      await exited(gone);
      const lock = path.join(dataDir, 'local-stack.pid');
      await writeFile(lock, String(gone.pid));
      const release = await claimDataDir(dataDir);
      expect(await readFile(lock, 'utf8')).toBe(String(process.pid));
      await release();
      expect(existsSync(lock)).toBe(false);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('names the variable of a busy port before starting anything', async () => {
    const ports = await freePorts(6);
    const [, , koodrive = 0, secretsManager = 0, dynamodb = 0] = ports;
    const busy = createServer();
    await listen(busy, dynamodb);
    // A folder of its own: the repository's .local-data may be held by an `npm start` running beside the tests.
    const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
    try {
      const env = { ...portVariables(ports), LOCAL_DATA_DIR: dataDir };
      await expect(startLocalStack({ env, log: () => undefined })).rejects.toThrow(
        `Port ${dynamodb} is in use`,
      );
      await expect(startLocalStack({ env, log: () => undefined })).rejects.toThrow(
        /free it or set LOCAL_DYNAMODB_PORT\.$/,
      );
      // Nothing was started before the check: the simulator's and Secrets Manager's ports are still free.
      expect([await isFree(koodrive), await isFree(secretsManager)]).toEqual([true, true]);
    } finally {
      await close(busy);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses two servers on one port, naming both variables, before building or starting anything', async () => {
    const ports = await freePorts(6);
    const [, , koodrive = 0] = ports;
    let built = false;
    const dataDir = await mkdtemp(path.join(tmpdir(), 'koodrive-local-'));
    // The local Secrets Manager moved onto the simulator's port: each would be free when checked alone.
    const env = {
      ...portVariables(ports),
      LOCAL_SECRETS_MANAGER_PORT: String(koodrive),
      LOCAL_DATA_DIR: dataDir,
    };
    await expect(
      startLocalStack({
        env,
        log: () => undefined,
        build: async () => {
          built = true;
        },
      }),
    ).rejects.toThrow(
      `LOCAL_KOODRIVE_PORT and LOCAL_SECRETS_MANAGER_PORT are both ${koodrive}: each server needs a port of its own; set one of them to another port.`,
    );
    expect(built).toBe(false);
    expect(await isFree(koodrive)).toBe(true);
    // The folder was given back.
    expect(existsSync(path.join(dataDir, 'local-stack.pid'))).toBe(false);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs serverless offline on the stage, ports and parameters given, leaving empty ones out', () => {
    const args = offlineArgs(localPorts({}), { tenants: 'a=b', koodriveBaseUrl: '' });
    expect(args.slice(0, 4)).toEqual(['offline', 'start', '--stage', 'local']);
    expect(args).toContain('--noAuth');
    expect(args.join(' ')).toContain('--httpPort 3000 --lambdaPort 3002');
    expect(args.filter((a) => a.includes('='))).toEqual(['tenants=a=b']);
  });
});

describe('local DynamoDB', () => {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const table = 'local-dynamodb-test';

  it('takes the table definitions from serverless.yml, CloudFormation tags and all', async () => {
    const schemas = parseTableSchemas(await readFile(SERVERLESS_YML, 'utf8'));
    expect(schemas.get('SnapshotsTable')).toEqual({
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'tenantId', AttributeType: 'S' },
        { AttributeName: 'observedAt', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'tenantId', KeyType: 'HASH' },
        { AttributeName: 'observedAt', KeyType: 'RANGE' },
      ],
    });
  });

  it('reads indexes and falls back to small capacities given by intrinsics', () => {
    const schemas = parseTableSchemas(`
resources:
  Resources:
    Other: { Type: AWS::SQS::Queue, Properties: { QueueName: !Sub '\${AWS::StackName}-q' } }
    Items:
      Type: AWS::DynamoDB::Table
      Properties:
        AttributeDefinitions: [{ AttributeName: pk, AttributeType: S }, { AttributeName: n, AttributeType: N }]
        KeySchema: [{ AttributeName: pk, KeyType: HASH }]
        ProvisionedThroughput: { ReadCapacityUnits: !Ref Capacity, WriteCapacityUnits: 2 }
        GlobalSecondaryIndexes:
          - IndexName: byN
            KeySchema: [{ AttributeName: n, KeyType: HASH }]
            Projection: { ProjectionType: KEYS_ONLY }
            ProvisionedThroughput: !GetAtt [Somewhere, Capacity]
`);
    expect([...schemas.keys()]).toEqual(['Items']);
    expect(schemas.get('Items')).toMatchObject({
      BillingMode: 'PROVISIONED',
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 2 },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byN',
          KeySchema: [{ AttributeName: 'n', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
          ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
        },
      ],
    });
    expect(() =>
      parseTableSchemas('resources: { Resources: { T: { Type: AWS::DynamoDB::Table, Properties: {} } } }'),
    ).toThrow(/AttributeDefinitions must be a list/);
  });

  it('serves the serverless.yml table in memory', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: { SnapshotsTable: table } });
    const client = new DynamoDBClient({ endpoint: dynamodb.url, region: 'us-east-1', credentials });
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(Table?.KeySchema?.map((k) => k.AttributeName)).toEqual(['tenantId', 'observedAt']);
    } finally {
      client.destroy();
      await dynamodb.close();
    }
    expect(await isFree(dynamodb.port)).toBe(true);
  });

  it('keeps data on disk across restarts and refuses a table whose keys changed', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'koodrive-dynalite-'));
    const item = { tenantId: { S: 'demo' }, observedAt: { S: '2026-11-28T04:00:00.000Z' } };
    try {
      const first = await startLocalDynamoDb({ path: dir, tables: { SnapshotsTable: table } });
      const writer = new DynamoDBClient({ endpoint: first.url, region: 'us-east-1', credentials });
      await writer.send(new PutItemCommand({ TableName: table, Item: item }));
      writer.destroy();
      await first.close();

      const second = await startLocalDynamoDb({ path: dir, tables: { SnapshotsTable: table } });
      const reader = new DynamoDBClient({ endpoint: second.url, region: 'us-east-1', credentials });
      try {
        const { Items } = await reader.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'tenantId = :t',
            ExpressionAttributeValues: { ':t': { S: 'demo' } },
          }),
        );
        expect(Items).toEqual([item]);
      } finally {
        reader.destroy();
        await second.close();
      }

      const changed = path.join(dir, 'serverless.yml');
      await writeFile(
        changed,
        `resources:
  Resources:
    SnapshotsTable:
      Type: AWS::DynamoDB::Table
      Properties:
        BillingMode: PAY_PER_REQUEST
        AttributeDefinitions: [{ AttributeName: id, AttributeType: S }]
        KeySchema: [{ AttributeName: id, KeyType: HASH }]
`,
      );
      await expect(
        startLocalDynamoDb({ path: dir, tables: { SnapshotsTable: table }, serverlessYmlPath: changed }),
      ).rejects.toThrow(
        `another key schema than serverless.yml; delete its data directory (${dir}) to recreate it`,
      );
      await expect(startLocalDynamoDb({ tables: { Missing: 'x-table' } })).rejects.toThrow(/Missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
