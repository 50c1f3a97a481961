/**
 * `npm run bench`: the project's functions measured side by side with a peer (bench/peer/allocation.ts,
 * what a user writes without this project) and bare baselines, everything local. Each figure is the
 * median over interleaved rounds with min and max; each comparison is a ratio taken within a round.
 * Writes `<out>/latest.json` and `<out>/latest.md` (default bench/results; `--quick` defaults to a temp dir);
 * with `--only`, `partial.json` and `partial.md` instead, so the full run stays what latest holds.
 *
 *   node bench/run.ts [--quick] [--out DIR] [--dist DIR | --build] [--keep-work] [--profile DIR] [--quiet]
 *                     [--only size,cold,init,warm,memory,secrets,snapshot,history]
 *
 * `--profile DIR` writes V8 CPU profiles of the project's and the peer's cold and warm processes, and of
 * the snapshot and history runs
 * (sampling slows them: do not compare those timings); `node bench/lib/cpu-profile.ts FILE` sums one up.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { type AttributeValue, BatchWriteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { signRequest } from '../lib/koodrive/sign.ts';
import { snapshotToItem } from '../lib/snapshots/store.ts';
import { DEMO_APP, demoSecretString, LAB_APP } from '../local/demo.ts';
import { startLocalDynamoDb } from '../local/dynamodb.ts';
import { startLocalEventBridge } from '../local/eventbridge.ts';
import type { SimulatorApp } from '../local/koodrive-simulator.ts';
import { startLocalSecretsManager } from '../local/secrets-manager.ts';
import { buildAll, copyExecWrapper } from '../scripts/build.ts';
import { readAlarmCensus } from './lib/alarms.ts';
import { buildPeer, buildProbes, buildProject } from './lib/build.ts';
import { computeCost } from './lib/cost.ts';
import { startCountingProxy } from './lib/counting-proxy.ts';
import { readDeployedRuntimeEnv } from './lib/deployed-env.ts';
import { MetricCensus } from './lib/emf.ts';
import { itemSize, STORAGE_OVERHEAD_BYTES_PER_ITEM } from './lib/item-size.ts';
import { describeMachine, lambdaNodeArgs, nodeBinary, ROOT } from './lib/machine.ts';
import { type ProbeOutcome, runNode, startSimulatorProcess } from './lib/processes.ts';
import { type BenchResults, type Figure, figure, formatMarkdown, formatTable } from './lib/report.ts';
import { pairedRatios, summarize } from './lib/stats.ts';
import { isRecord } from './probe/common.ts';

const GROUPS = ['size', 'cold', 'init', 'warm', 'memory', 'secrets', 'snapshot', 'history'] as const;
type Group = (typeof GROUPS)[number];

/** Sizes and counts of one benchmark run. */
interface BenchParams {
  coldRounds: number;
  initRounds: number;
  warmRounds: number;
  warmup: number;
  timed: number;
  memoryRounds: number;
  memoryWarmup: number;
  memorySteadyAt: number;
  memoryTotal: number;
  secretInvocationsPerTenant: number;
  snapshotTenants: number;
  snapshotLatencyMs: number;
  snapshotConcurrency: number;
  snapshotRounds: number;
  historyHours: number;
  historyLimit: number;
  historyRounds: number;
}

const FULL_PARAMS: BenchParams = {
  coldRounds: 15,
  initRounds: 10,
  warmRounds: 5,
  warmup: 100,
  timed: 5000,
  memoryRounds: 3,
  memoryWarmup: 100,
  memorySteadyAt: 2000,
  memoryTotal: 10_000,
  secretInvocationsPerTenant: 1000,
  snapshotTenants: 500,
  snapshotLatencyMs: 100,
  snapshotConcurrency: 8,
  snapshotRounds: 5,
  historyHours: 8760,
  historyLimit: 1000,
  historyRounds: 11,
};

/** Enough of everything to prove the benchmark works, in a few seconds per group. */
const QUICK_PARAMS: BenchParams = {
  coldRounds: 2,
  initRounds: 2,
  warmRounds: 2,
  warmup: 20,
  timed: 200,
  memoryRounds: 1,
  memoryWarmup: 20,
  memorySteadyAt: 100,
  memoryTotal: 300,
  secretInvocationsPerTenant: 100,
  snapshotTenants: 24,
  snapshotLatencyMs: 20,
  snapshotConcurrency: 8,
  snapshotRounds: 1,
  historyHours: 300,
  historyLimit: 100,
  historyRounds: 1,
};

interface Options {
  quick: boolean;
  outDir: string | undefined;
  /** The bundles to measure; undefined: `npm run build` into dist/ first, then those. */
  distDir: string | undefined;
  build: boolean;
  only: Set<Group>;
  keepWork: boolean;
  /** Write V8 CPU profiles of the measured project and peer processes (cold and warm) here. */
  profileDir: string | undefined;
  /** No progress lines and no table (the results files are still written). */
  quiet: boolean;
}

const REGION = 'us-east-1';
const TABLE = 'koodrive-allocation-bench-snapshots';
const HISTORY_TENANT = 'hist';
const MEMORY_MB = 256;
/** The memory target: peak RSS must fit a function of this size, so the memory group runs with its flags. */
const SMALL_MEMORY_MB = 128;
const SCHEDULE_MINUTES = 15;
const RETENTION_DAYS = 400;
const MB = 1024 * 1024;
/** Every measured process runs with the flags Lambda gives a function of MEMORY_MB. */
const LAMBDA_ARGS = lambdaNodeArgs(MEMORY_MB);

const USAGE = `npm run bench -- [options]   (node bench/run.ts [options])
  --quick             a short run (results to a temp dir unless --out)
  --only GROUPS       some groups only, comma-separated: ${GROUPS.join(',')} (writes partial.*)
  --out DIR           where latest.* (or partial.*) go; default bench/results
  --dist DIR          the bundles to measure, as they are; default: build dist/ first, then those
  --build             build the bundles into the run's own folder instead
  --profile DIR       write V8 CPU profiles of the measured processes (do not compare those timings)
  --keep-work         keep the run's temp folder
  --quiet             no progress lines, no table
  --help              this text
Environment: BENCH_NODE=PATH runs the probes on another node binary (default: node_modules/node), e.g. a
  script running an arm64 node under qemu-user, for the heap figures of the functions' arm64 V8.`;

/** A mistake on the command line: said with the usage, without a stack. */
class UsageError extends Error {}

function isGroup(value: string): value is Group {
  return GROUPS.some((group) => group === value);
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    quick: false,
    outDir: undefined,
    distDir: undefined,
    build: false,
    only: new Set(GROUPS),
    keepWork: false,
    profileDir: undefined,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    if (flag === '--quick') options.quick = true;
    else if (flag === '--out') options.outDir = path.resolve(value());
    else if (flag === '--dist') options.distDir = path.resolve(value());
    else if (flag === '--build') options.build = true;
    else if (flag === '--keep-work') options.keepWork = true;
    else if (flag === '--quiet') options.quiet = true;
    else if (flag === '--profile') options.profileDir = path.resolve(value());
    else if (flag === '--only') {
      const groups = value().split(',');
      const unknown = groups.filter((g) => !isGroup(g));
      if (unknown.length > 0)
        throw new UsageError(`--only: unknown group(s) ${unknown.join(', ')}; use ${GROUPS.join(',')}`);
      options.only = new Set(groups.filter(isGroup));
    } else throw new UsageError(`unknown option ${flag}`);
  }
  return options;
}

const started = performance.now();
let quiet = false;
function log(message: string): void {
  if (quiet) return;
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`,
  );
}

/** Rotates `variants` by `round`, so no variant always runs first. */
function interleaved<T>(variants: readonly T[], round: number): T[] {
  return variants
    .map((_, i) => variants[(i + round) % variants.length])
    .filter((v): v is T => v !== undefined);
}

function num(result: Record<string, unknown>, key: string): number {
  const value = result[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`probe result has no number '${key}': ${JSON.stringify(result).slice(0, 300)}`);
  }
  return value;
}

/** The functions in a dist folder: each `<name>/index.mjs`. */
async function listBundles(distDir: string): Promise<string[]> {
  const entries = await readdir(distDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && existsSync(path.join(distDir, e.name, 'index.mjs')))
    .map((e) => e.name)
    .sort();
}

/** Bytes of a bundle by package (or by project folder), largest first, from an esbuild metafile. */
async function bundleComposition(metaFile: string, top: number): Promise<[string, number][]> {
  const meta: unknown = JSON.parse(await readFile(metaFile, 'utf8'));
  const byOwner = new Map<string, number>();
  const outputs = isRecord(meta) && isRecord(meta.outputs) ? meta.outputs : {};
  for (const [file, output] of Object.entries(outputs)) {
    if (!file.endsWith('.mjs') || !isRecord(output) || !isRecord(output.inputs)) continue;
    for (const [input, info] of Object.entries(output.inputs)) {
      const parts = input.split('/');
      const at = parts.lastIndexOf('node_modules');
      const owner =
        at === -1
          ? parts.slice(0, -1).join('/') || input
          : parts.slice(at + 1, parts[at + 1]?.startsWith('@') ? at + 3 : at + 2).join('/');
      const bytes = isRecord(info) ? info.bytesInOutput : undefined;
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + (typeof bytes === 'number' ? bytes : 0));
    }
  }
  return [...byOwner.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
}

interface Context {
  options: Options;
  params: BenchParams;
  work: string;
  distDir: string;
  functions: string[];
  peerBundle: string;
  probes: Awaited<ReturnType<typeof buildProbes>>;
  figures: Figure[];
  missing: string[];
  notes: string[];
  env: (extra?: Record<string, string>) => Record<string, string>;
  /**
   * serverless.yml's NODE_OPTIONS, GLIBC_TUNABLES, AWS_LAMBDA_EXEC_WRAPPER and V8_FLAGS: every process running
   * a project bundle gets them, and starts through the wrapper.
   */
  runtimeEnv: Record<string, string>;
  measured: Partial<{
    projectNodeArgs: string[];
    warmProjectP50: number;
    fanoutWallMs: number;
    itemBytes: number;
    writesPerSnapshot: number;
    readsPerSnapshot: number;
    secretReadsPerSnapshot: number;
    logBytesPerSnapshot: number;
    /** The custom metrics a fan-out run's EMF documents create. */
    metricCensus: MetricCensus;
  }>;
}

/** Lambda's flags, plus CPU profiling into `<profileDir>/<name>` when asked for. */
function measuredArgs(ctx: Context, name: string): string[] {
  const dir = ctx.options.profileDir;
  return dir === undefined
    ? LAMBDA_ARGS
    : [...LAMBDA_ARGS, '--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`];
}

function bundleOf(ctx: Context, name: string): string {
  return path.join(ctx.distDir, name, 'index.mjs');
}

async function measureSizes(ctx: Context): Promise<void> {
  const sizes = [
    ...ctx.functions.map((name) => ({ name, file: bundleOf(ctx, name) })),
    { name: 'peer allocation', file: ctx.peerBundle },
  ];
  for (const { name, file } of sizes) {
    const code = await readFile(file);
    const id = name === 'peer allocation' ? 'peer' : name;
    ctx.figures.push(
      figure({
        id: `size.${id}.raw`,
        group: 'bundle size',
        label: `${name} raw`,
        unit: 'KiB',
        stat: summarize([code.byteLength / 1024]),
        ...(name === 'allocation' ? { target: { op: '<=', limit: 350 } } : {}),
        note: `${code.byteLength} bytes`,
      }),
      figure({
        id: `size.${id}.gzip`,
        group: 'bundle size',
        label: `${name} gzip`,
        unit: 'KiB',
        stat: summarize([gzipSync(code).byteLength / 1024]),
      }),
    );
  }
  const metaFile = path.join(ctx.distDir, 'allocation', 'meta.json');
  if (existsSync(metaFile)) {
    const top = await bundleComposition(metaFile, 8);
    ctx.notes.push(
      `The allocation bundle's largest parts (bytes in output): ${top.map(([owner, bytes]) => `${owner} ${bytes}`).join(', ')}.`,
    );
  }
}

async function measureColdStart(ctx: Context, allocEnv: Record<string, string>): Promise<void> {
  const variants = [
    {
      key: 'project',
      run: () =>
        runNode(ctx.probes.cold, ['serve', bundleOf(ctx, 'allocation')], {
          env: { ...allocEnv, ...ctx.runtimeEnv },
          nodeArgs: measuredArgs(ctx, 'cold-project'),
        }),
    },
    {
      key: 'peer',
      run: () =>
        runNode(ctx.probes.cold, ['serve', ctx.peerBundle], {
          env: allocEnv,
          nodeArgs: measuredArgs(ctx, 'cold-peer'),
        }),
    },
    {
      key: 'baseline',
      run: () => runNode(undefined, [], { env: allocEnv, nodeArgs: [...LAMBDA_ARGS, '-e', '0'] }),
    },
  ] as const;
  const samples = new Map<string, ProbeOutcome[]>(variants.map((v) => [v.key, []]));
  // One untimed round first: the file cache, not the code, would otherwise decide round 1.
  for (const variant of variants) await variant.run();
  for (let round = 0; round < ctx.params.coldRounds; round++) {
    for (const variant of interleaved(variants, round)) samples.get(variant.key)?.push(await variant.run());
  }
  const wall = (key: string) => (samples.get(key) ?? []).map((s) => s.wallMs);
  const inside = (key: string) =>
    (samples.get(key) ?? []).map((s) => num(s.result, 'importMs') + num(s.result, 'firstRequestMs'));
  const reported = samples.get('project')?.[0]?.result.execArgv;
  if (Array.isArray(reported)) ctx.measured.projectNodeArgs = reported.map(String);
  const project = wall('project');
  const peer = wall('peer');
  const baseline = wall('baseline');
  const group = 'cold start';
  ctx.figures.push(
    figure({
      id: 'cold.project.wall',
      group,
      label: 'project: spawn → first answer → exit',
      unit: 'ms',
      stat: summarize(project),
    }),
    figure({
      id: 'cold.peer.wall',
      group,
      label: 'peer: spawn → first answer → exit',
      unit: 'ms',
      stat: summarize(peer),
    }),
    figure({
      id: 'cold.baseline.wall',
      group,
      label: 'baseline: node -e 0',
      unit: 'ms',
      stat: summarize(baseline),
    }),
    figure({
      id: 'cold.project.inside',
      group,
      label: 'project: import + first request (in process)',
      unit: 'ms',
      stat: summarize(inside('project')),
    }),
    figure({
      id: 'cold.peer.inside',
      group,
      label: 'peer: import + first request (in process)',
      unit: 'ms',
      stat: summarize(inside('peer')),
    }),
    figure({
      id: 'cold.project.import',
      group,
      label: 'project: import only (of the above)',
      unit: 'ms',
      stat: summarize((samples.get('project') ?? []).map((s) => num(s.result, 'importMs'))),
    }),
    figure({
      id: 'cold.peer.import',
      group,
      label: 'peer: import only (of the above)',
      unit: 'ms',
      stat: summarize((samples.get('peer') ?? []).map((s) => num(s.result, 'importMs'))),
    }),
    figure({
      id: 'cold.ratio.projectPeer',
      group,
      label: 'project / peer (wall)',
      unit: 'ratio',
      stat: summarize(pairedRatios(project, peer)),
      target: { op: '<=', limit: 1.0 },
    }),
    figure({
      id: 'cold.ratio.projectPeerAboveBaseline',
      group,
      label: 'project / peer (wall above node -e 0)',
      unit: 'ratio',
      stat: summarize(
        project.map((p, i) => (p - (baseline[i] ?? 0)) / ((peer[i] ?? 0) - (baseline[i] ?? 0))),
      ),
    }),
  );
}

async function measureInit(ctx: Context, env: Record<string, string>): Promise<void> {
  const variants = [
    ...ctx.functions.map((name) => ({
      key: name,
      bundle: bundleOf(ctx, name),
      env: { ...env, ...ctx.runtimeEnv },
    })),
    { key: 'peer', bundle: ctx.peerBundle, env },
  ];
  const samples = new Map<string, number[]>(variants.map((v) => [v.key, []]));
  const run = (variant: (typeof variants)[number]) =>
    runNode(ctx.probes.cold, ['import', variant.bundle], { env: variant.env, nodeArgs: LAMBDA_ARGS });
  for (const variant of variants) await run(variant);
  for (let round = 0; round < ctx.params.initRounds; round++) {
    for (const variant of interleaved(variants, round)) {
      const outcome = await run(variant);
      samples.get(variant.key)?.push(num(outcome.result, 'importMs'));
    }
  }
  for (const variant of variants) {
    ctx.figures.push(
      figure({
        id: `init.${variant.key}`,
        group: 'init only',
        label: `${variant.key === 'peer' ? 'peer allocation' : variant.key}: import of the bundle`,
        unit: 'ms',
        stat: summarize(samples.get(variant.key) ?? []),
      }),
    );
  }
}

/**
 * The warm variants (project, peer, bare keep-alive fetch, and the same exchange on bare node:http, the
 * floor of the project's own transport) as probe runs with the given counts.
 */
function warmVariants(
  ctx: Context,
  allocEnv: Record<string, string>,
  simulatorUrl: string,
  counts: { warmup: number; timed: number; total: number; steadyAt?: number },
  memoryMb: number,
  profile: boolean,
) {
  const args = [String(counts.warmup), String(counts.timed), String(counts.total)];
  const env = {
    ...allocEnv,
    ...(counts.steadyAt === undefined ? {} : { BENCH_STEADY_AT: String(counts.steadyAt) }),
  };
  const flags = (name: string) => (profile ? measuredArgs(ctx, name) : lambdaNodeArgs(memoryMb));
  const url = `${simulatorUrl}/koodrive/ose/v1/space/allocation/get`;
  const bareEnv = () => {
    // Signed once per process, 5 s in the past like the project's client: valid for the whole run.
    const signed = signRequest({
      method: 'GET',
      url,
      appId: DEMO_APP.appId,
      appSecret: DEMO_APP.appSecret,
      userId: DEMO_APP.userId,
      signingDate: new Date(Date.now() - 5_000),
    });
    const { Host: _host, ...headers } = signed.headers;
    return { ...env, BENCH_BARE_HEADERS: JSON.stringify({ ...headers, 'X-Traceid': 'b'.repeat(58) }) };
  };
  return [
    {
      key: 'project',
      name: 'project',
      run: () =>
        runNode(ctx.probes.warm, ['handler', bundleOf(ctx, 'allocation'), ...args], {
          env: { ...env, ...ctx.runtimeEnv },
          nodeArgs: flags('warm-project'),
        }),
    },
    {
      key: 'peer',
      name: 'peer',
      run: () =>
        runNode(ctx.probes.warm, ['handler', ctx.peerBundle, ...args], { env, nodeArgs: flags('warm-peer') }),
    },
    {
      key: 'bare',
      name: 'bare keep-alive fetch',
      run: () =>
        runNode(ctx.probes.warm, ['bare', url, ...args], {
          env: bareEnv(),
          nodeArgs: lambdaNodeArgs(memoryMb),
        }),
    },
    {
      key: 'bareHttp',
      name: 'bare keep-alive node:http',
      run: () =>
        runNode(ctx.probes.warm, ['bare-http', url, ...args], {
          env: bareEnv(),
          nodeArgs: lambdaNodeArgs(memoryMb),
        }),
    },
  ] as const;
}

/** Runs interleaved rounds of the warm variants; every invocation must answer 200. */
async function warmRounds(
  variants: ReturnType<typeof warmVariants>,
  rounds: number,
  simulator: { call: (op: string) => Promise<unknown> },
  label: string,
): Promise<Map<string, Record<string, unknown>[]>> {
  const results = new Map<string, Record<string, unknown>[]>(variants.map((v) => [v.key, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of interleaved(variants, round)) {
      await simulator.call('reset');
      const outcome = await variant.run();
      const failures = num(outcome.result, 'failures');
      if (failures !== 0)
        throw new Error(`${label} ${variant.key}: ${failures} invocation(s) did not answer 200`);
      results.get(variant.key)?.push(outcome.result);
      log(`${label} ${variant.key} round ${round + 1}/${rounds} done`);
    }
  }
  return results;
}

async function measureWarm(
  ctx: Context,
  allocEnv: Record<string, string>,
  simulator: { url: string; call: (op: string) => Promise<unknown> },
): Promise<void> {
  const p = ctx.params;
  const counts = { warmup: p.warmup, timed: p.timed, total: p.warmup + p.timed };
  const variants = warmVariants(ctx, allocEnv, simulator.url, counts, MEMORY_MB, true);
  const results = await warmRounds(variants, p.warmRounds, simulator, 'warm');
  const series = (key: string, field: string) => (results.get(key) ?? []).map((r) => num(r, field));
  const group = 'warm latency';
  for (const { key, name } of variants) {
    ctx.figures.push(
      figure({
        id: `warm.${key}.p50`,
        group,
        label: `${name} p50`,
        unit: 'ms',
        stat: summarize(series(key, 'p50')),
      }),
      figure({
        id: `warm.${key}.p99`,
        group,
        label: `${name} p99`,
        unit: 'ms',
        stat: summarize(series(key, 'p99')),
      }),
      figure({
        id: `warm.${key}.cpu`,
        group,
        label: `${name} CPU per invocation (user + system)`,
        unit: 'µs',
        stat: summarize(series(key, 'cpuPerInvocationUs')),
      }),
    );
  }
  const ratio = (id: string, label: string, a: string, b: string, field: string, limit?: number) =>
    figure({
      id,
      group,
      label,
      unit: 'ratio',
      stat: summarize(pairedRatios(series(a, field), series(b, field))),
      ...(limit === undefined ? {} : { target: { op: '<=', limit } }),
    });
  ctx.figures.push(
    ratio('warm.ratio.projectBare.p50', 'project / bare fetch p50', 'project', 'bare', 'p50', 1.3),
    ratio('warm.ratio.peerBare.p50', 'peer / bare fetch p50', 'peer', 'bare', 'p50'),
    ratio('warm.ratio.projectPeer.p50', 'project / peer p50', 'project', 'peer', 'p50'),
    ratio('warm.ratio.projectBareHttp.p50', 'project / bare node:http p50', 'project', 'bareHttp', 'p50'),
    ratio('warm.ratio.projectBare.p99', 'project / bare fetch p99', 'project', 'bare', 'p99'),
    ratio(
      'warm.ratio.projectPeer.cpu',
      'project / peer CPU per invocation',
      'project',
      'peer',
      'cpuPerInvocationUs',
    ),
  );
  ctx.measured.warmProjectP50 = summarize(series('project', 'p50')).median;
}

async function measureMemory(
  ctx: Context,
  allocEnv: Record<string, string>,
  simulator: { url: string; call: (op: string) => Promise<unknown> },
): Promise<void> {
  const p = ctx.params;
  const counts = { warmup: p.memoryWarmup, timed: 0, total: p.memoryTotal, steadyAt: p.memorySteadyAt };
  const variants = warmVariants(ctx, allocEnv, simulator.url, counts, SMALL_MEMORY_MB, false);
  const results = await warmRounds(variants, p.memoryRounds, simulator, 'memory');
  const group = `memory (${SMALL_MEMORY_MB} MB Lambda flags)`;
  for (const { key, name } of variants) {
    const rows = results.get(key) ?? [];
    const mib = (f: (r: Record<string, unknown>) => number) => summarize(rows.map((r) => f(r) / MB));
    const isProject = key === 'project';
    ctx.figures.push(
      figure({
        id: `memory.${key}.growth`,
        group,
        label: `${name}: RSS after ${p.memoryTotal} − after ${p.memoryWarmup} invocations`,
        unit: 'MiB',
        stat: mib((r) => num(r, 'rssAtEnd') - num(r, 'rssAfterWarmup')),
        ...(isProject ? { target: { op: '<', limit: 10 } } : {}),
      }),
      // Where the growth is: the process's own memory, or pages of the node binary that the kernel can drop.
      ...(key === 'project' || key === 'bareHttp'
        ? [
            figure({
              id: `memory.${key}.anonGrowth`,
              group,
              label: `${name}: of which anonymous (heap, malloc, stacks)`,
              unit: 'MiB',
              stat: mib((r) => num(r, 'anonAtEnd') - num(r, 'anonAfterWarmup')),
            }),
            figure({
              id: `memory.${key}.fileGrowth`,
              group,
              label: `${name}: of which file-backed (node binary pages)`,
              unit: 'MiB',
              stat: mib((r) => num(r, 'fileAtEnd') - num(r, 'fileAfterWarmup')),
            }),
          ]
        : []),
      figure({
        id: `memory.${key}.steadyGrowth`,
        group,
        label: `${name}: RSS after ${p.memoryTotal} − after ${p.memorySteadyAt} invocations`,
        unit: 'MiB',
        stat: mib((r) => num(r, 'rssAtEnd') - num(r, 'rssAtSteady')),
      }),
      figure({
        id: `memory.${key}.heapGrowth`,
        group,
        label: `${name}: V8 heap used after GC, ${p.memoryTotal} − ${p.memoryWarmup}`,
        unit: 'MiB',
        stat: mib((r) => num(r, 'heapAtEnd') - num(r, 'heapAfterWarmup')),
      }),
      figure({
        id: `memory.${key}.peak`,
        group,
        label: `${name}: peak RSS`,
        unit: 'MiB',
        stat: mib((r) => num(r, 'peakRss')),
        ...(isProject ? { target: { op: '<=', limit: SMALL_MEMORY_MB } } : {}),
      }),
    );
  }
  const growth = (key: string) =>
    summarize((results.get(key) ?? []).map((r) => (num(r, 'rssAtEnd') - num(r, 'rssAfterWarmup')) / MB))
      .median;
  const heap = (key: string) =>
    summarize((results.get(key) ?? []).map((r) => (num(r, 'heapAtEnd') - num(r, 'heapAfterWarmup')) / MB))
      .median;
  // The project's own share: its growth less that of the same exchange on bare node:http, per round.
  const rssGrowth = (key: string) =>
    (results.get(key) ?? []).map((r) => (num(r, 'rssAtEnd') - num(r, 'rssAfterWarmup')) / MB);
  const above = rssGrowth('project').map((value, i) => value - (rssGrowth('bareHttp')[i] ?? Number.NaN));
  ctx.figures.push(
    figure({
      id: 'memory.projectAboveBareHttp.growth',
      group,
      label: `project: RSS growth above bare node:http's, ${p.memoryTotal} − ${p.memoryWarmup}`,
      unit: 'MiB',
      stat: summarize(above),
    }),
  );
  ctx.notes.push(
    `Memory: RSS after ${p.memoryTotal} − after ${p.memoryWarmup} invocations is ${growth('project').toFixed(1)} MiB for the project, ` +
      `${growth('peer').toFixed(1)} MiB for the peer, ${growth('bare').toFixed(1)} MiB for a bare fetch loop and ${growth('bareHttp').toFixed(1)} MiB for a bare node:http loop, while the V8 heap ` +
      `used after GC changes by ${heap('project').toFixed(2)} / ${heap('peer').toFixed(2)} / ${heap('bare').toFixed(2)} / ${heap('bareHttp').toFixed(2)} MiB: ` +
      (Math.abs(heap('project')) < 1
        ? 'that growth is the runtime settling (young generation grown, JIT code; in processes without the project’s V8 flags also node binary pages touched as the optimizing compiler starts and compiler memory that malloc keeps for the compiler threads), not retained data; the project’s own share is its growth above the bare node:http loop’s.'
        : 'the project’s heap grew by a MiB or more: look for retained data.'),
  );
}

async function measureSecretReads(
  ctx: Context,
  allocEnv: Record<string, string>,
  secrets: { reset(): void; getSecretValueCalls(id?: string): number },
): Promise<void> {
  const n = ctx.params.secretInvocationsPerTenant;
  const tenants = ['demo', 'lab'];
  for (const [key, bundle, runtimeEnv] of [
    ['project', bundleOf(ctx, 'allocation'), ctx.runtimeEnv],
    ['peer', ctx.peerBundle, {}],
  ] as const) {
    secrets.reset();
    const outcome = await runNode(
      ctx.probes.warm,
      ['handler', bundle, '0', '0', String(n * tenants.length)],
      {
        env: { ...allocEnv, ...runtimeEnv, BENCH_TENANTS: tenants.join(',') },
        nodeArgs: LAMBDA_ARGS,
      },
    );
    // Reads per answered invocation: failed ones (no secret, no answer) would pass the target with 0 reads.
    const failures = num(outcome.result, 'failures');
    if (failures !== 0) throw new Error(`secret reads ${key}: ${failures} invocation(s) did not answer 200`);
    const reads = [secrets.getSecretValueCalls('koodrive/demo'), secrets.getSecretValueCalls('koodrive/lab')];
    ctx.figures.push(
      figure({
        id: `secrets.${key}.readsPerTenant`,
        group: 'secret reads',
        label: `${key}: GetSecretValue per tenant per ${n} invocations (2 tenants)`,
        unit: 'calls',
        stat: summarize(reads),
        ...(key === 'project' ? { target: { op: '<=', limit: 1 } } : {}),
      }),
    );
  }
}

function tenantApp(index: number): { tenantId: string; secretId: string; app: SimulatorApp } {
  const id = String(index).padStart(4, '0');
  return {
    tenantId: `t${id}`,
    secretId: `koodrive/bench/t${id}`,
    app: {
      appId: `bench${id}app`,
      appSecret: `bench-secret-${id}-not-for-production`,
      userId: `15050842187645${id}`,
      data: DEMO_APP.data,
    },
  };
}

async function measureSnapshotFanOut(
  ctx: Context,
  deps: {
    simulator: { call: (op: string, payload?: Record<string, unknown>) => Promise<unknown>; url: string };
    secrets: {
      setSecret(name: string, value: string): unknown;
      reset(): void;
      getSecretValueCalls(id?: string): number;
    };
    dynamo: { url: string; counts(): Record<string, number>; reset(): void };
  },
): Promise<void> {
  const p = ctx.params;
  const tenants = Array.from({ length: p.snapshotTenants }, (_, i) => tenantApp(i + 1));
  for (const t of tenants) deps.secrets.setSecret(t.secretId, demoSecretString(t.app));
  await deps.simulator.call('addApps', { apps: tenants.map((t) => t.app) });
  await deps.simulator.call('setLatency', { latencyMs: p.snapshotLatencyMs });
  // Threshold events on, as deployed (EVENT_BUS_NAME is the stack's bus): each tenant's threshold head
  // is read while KooDrive answers, and the first run writes it.
  const bus = await startLocalEventBridge();
  const env = ctx.env({
    EVENT_BUS_NAME: 'default',
    AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url,
    KOODRIVE_TENANTS: tenants.map((t) => `${t.tenantId}=${t.secretId}`).join(','),
    KOODRIVE_BASE_URL: deps.simulator.url,
    SNAPSHOT_TABLE: TABLE,
    SNAPSHOT_CONCURRENCY: String(p.snapshotConcurrency),
    AWS_ENDPOINT_URL_DYNAMODB: deps.dynamo.url,
    AWS_LAMBDA_FUNCTION_NAME: 'koodrive-allocation-bench-snapshot',
    // As deployed: the metrics in their namespace, counted for the cost note.
    POWERTOOLS_METRICS_NAMESPACE: 'KooDriveAllocation',
    POWERTOOLS_SERVICE_NAME: 'koodrive-allocation-bench',
  });
  const census = new MetricCensus();
  const quarter = 15 * 60_000;
  const base = Math.floor(Date.now() / quarter) * quarter - p.snapshotRounds * quarter;
  const walls: number[] = [];
  const floors: number[] = [];
  const callFloors: number[] = [];
  const calls = { put: 0, query: 0, other: 0, secrets: 0, logBytes: 0, stored: 0 };
  /** Peak RSS of each project run, MiB. */
  const peaks: number[] = [];
  /** `counted`: the run's calls feed the cost note's per-snapshot inputs. */
  const runProject = async (time: string, counted: boolean) => {
    deps.secrets.reset();
    deps.dynamo.reset();
    // A fresh process per run: 15 minutes apart, a warm container's secrets (300 s) have expired anyway.
    const outcome = await runNode(ctx.probes.snapshot, [bundleOf(ctx, 'snapshot'), time], {
      env: { ...env, ...ctx.runtimeEnv },
      nodeArgs: measuredArgs(ctx, 'snapshot'),
      countStdout: true,
      ...(counted ? { onStdoutLine: (line: string) => census.addLine(line) } : {}),
    });
    const error = outcome.result.error;
    if (typeof error === 'string') throw new Error(`snapshot run failed: ${error}`);
    const stored = num(outcome.result, 'stored');
    if (stored !== tenants.length)
      throw new Error(`snapshot run stored ${stored} of ${tenants.length} tenants`);
    walls.push(num(outcome.result, 'wallMs'));
    peaks.push(num(outcome.result, 'maxRssBytes') / MB);
    if (!counted) return;
    const counts = deps.dynamo.counts();
    // Writes: the snapshot (PutItem) and the threshold head's move (UpdateItem).
    calls.put += (counts.PutItem ?? 0) + (counts.BatchWriteItem ?? 0) + (counts.UpdateItem ?? 0);
    // A BatchGetItem reads one consistent read unit per key: the run asks it about every tenant once.
    calls.query +=
      (counts.Query ?? 0) + (counts.GetItem ?? 0) + ((counts.BatchGetItem ?? 0) > 0 ? tenants.length : 0);
    calls.other += Object.entries(counts)
      .filter(
        ([op]) =>
          !['PutItem', 'BatchWriteItem', 'UpdateItem', 'Query', 'GetItem', 'BatchGetItem'].includes(op),
      )
      .reduce((sum, [, n]) => sum + n, 0);
    calls.secrets += deps.secrets.getSecretValueCalls();
    calls.logBytes += outcome.stdoutBytes;
    calls.stored += stored;
  };
  const runFloor = async (time: string) => {
    const outcome = await runNode(ctx.probes.fanoutFloor, [String(p.snapshotConcurrency), time], {
      env,
      nodeArgs: LAMBDA_ARGS,
    });
    floors.push(num(outcome.result, 'wallMs'));
    const callsOnly = await runNode(ctx.probes.fanoutFloor, [String(p.snapshotConcurrency), time, 'calls'], {
      env,
      nodeArgs: LAMBDA_ARGS,
    });
    callFloors.push(num(callsOnly.result, 'wallMs'));
  };
  try {
    for (let round = 0; round < p.snapshotRounds; round++) {
      await deps.simulator.call('reset');
      const time = new Date(base + round * quarter).toISOString().replace(/\.\d{3}Z$/, 'Z');
      // The table's first run also looks for each tenant's threshold head, which it then writes (one more
      // Query per tenant, once per tenant ever): the cost note counts the runs after it, every later run.
      const counted = round > 0 || p.snapshotRounds === 1;
      if (round % 2 === 0) {
        await runProject(time, counted);
        await runFloor(time);
      } else {
        await runFloor(time);
        await runProject(time, counted);
      }
      log(
        `snapshot round ${round + 1}/${p.snapshotRounds}: ${tenants.length} tenants in ${walls.at(-1)?.toFixed(0)} ms ` +
          `(floor ${floors.at(-1)?.toFixed(0)} ms, calls only ${callFloors.at(-1)?.toFixed(0)} ms)`,
      );
    }
  } finally {
    await deps.simulator.call('setLatency', { latencyMs: 0 });
    await bus.close();
  }
  const ideal = (p.snapshotTenants / p.snapshotConcurrency) * p.snapshotLatencyMs;
  const group = 'snapshot fan-out';
  const setting = `${p.snapshotTenants} tenants, ${p.snapshotLatencyMs} ms, concurrency ${p.snapshotConcurrency}`;
  ctx.figures.push(
    figure({
      id: 'snapshot.wall',
      group,
      label: `scheduled run wall time (${setting})`,
      unit: 'ms',
      stat: summarize(walls),
    }),
    figure({
      id: 'snapshot.peakRss',
      group,
      label: `scheduled run peak RSS (${p.snapshotTenants} tenants; ${MEMORY_MB} MB Lambda flags)`,
      unit: 'MiB',
      stat: summarize(peaks),
      target: { op: '<=', limit: MEMORY_MB },
    }),
    figure({
      id: 'snapshot.ideal',
      group,
      label: 'ideal: tenants ÷ concurrency × latency',
      unit: 'ms',
      stat: summarize([ideal]),
    }),
    figure({
      id: 'snapshot.floor',
      group,
      label: 'floor: secret + signed call + PutItem per tenant, same services and concurrency',
      unit: 'ms',
      stat: summarize(floors),
    }),
    figure({
      id: 'snapshot.ratio.projectFloor',
      group,
      label: 'wall / floor',
      unit: 'ratio',
      stat: summarize(pairedRatios(walls, floors)),
    }),
    figure({
      id: 'snapshot.ratio.floorIdeal',
      group,
      label: 'floor / ideal (what the local services cost)',
      unit: 'ratio',
      stat: summarize(floors.map((w) => w / ideal)),
    }),
    figure({
      id: 'snapshot.callsFloor',
      group,
      label: 'calls only: the same signed calls at the same concurrency, nothing else',
      unit: 'ms',
      stat: summarize(callFloors),
    }),
    figure({
      id: 'snapshot.ratio.callsFloorIdeal',
      group,
      label: 'calls only / ideal (the simulated latency as this machine delivers it)',
      unit: 'ratio',
      stat: summarize(callFloors.map((w) => w / ideal)),
    }),
    figure({
      id: 'snapshot.ratio.projectCallsFloor',
      group,
      label: 'wall / calls only',
      unit: 'ratio',
      stat: summarize(pairedRatios(walls, callFloors)),
    }),
    figure({
      id: 'snapshot.ratio',
      group,
      label: 'wall / ideal',
      unit: 'ratio',
      stat: summarize(walls.map((w) => w / ideal)),
      target: { op: '<=', limit: 1.2 },
    }),
  );
  const perSnapshot = (n: number) => n / Math.max(1, calls.stored);
  ctx.measured.fanoutWallMs = summarize(walls).median;
  ctx.measured.writesPerSnapshot = perSnapshot(calls.put);
  ctx.measured.readsPerSnapshot = perSnapshot(calls.query);
  ctx.measured.secretReadsPerSnapshot = perSnapshot(calls.secrets);
  ctx.measured.logBytesPerSnapshot = perSnapshot(calls.logBytes);
  ctx.measured.metricCensus = census;
  ctx.notes.push(
    `Snapshot fan-out, per stored snapshot: ${perSnapshot(calls.put).toFixed(2)} DynamoDB write(s), ` +
      `${perSnapshot(calls.query).toFixed(2)} consistent read unit(s), ${perSnapshot(calls.other).toFixed(2)} other call(s), ` +
      `${perSnapshot(calls.secrets).toFixed(2)} GetSecretValue, ${perSnapshot(calls.logBytes).toFixed(0)} bytes of logs.`,
  );
}

/**
 * The cost note's CloudWatch inputs: the metrics a fan-out run created (per tenant, and the deployment's
 * own, every function's cold starts among them), and the alarms serverless.yml's defaults deploy.
 */
function cloudWatchInputs(census: MetricCensus, alarms: Awaited<ReturnType<typeof readAlarmCensus>>) {
  const ratio = (id: string) => id.includes('|AllocatedRatio|');
  const coldStart = (id: string) => id.includes('|ColdStart|');
  return {
    metricsPerTenant: census.perTenant(),
    alarmSeriesPerTenant: census.perTenant(
      alarms.scope === 'totals' ? (id) => ratio(id) && id.includes('SpaceType=totals') : ratio,
    ),
    tenantQueryAlarms: alarms.tenantQueryAlarms,
    // The run measured is the snapshot function's: each function prints one ColdStart series of its own.
    deploymentMetrics: census.shared((id) => !coldStart(id)) + alarms.functions,
    deploymentAlarms: alarms.deploymentAlarms,
    dashboards: alarms.dashboards,
  };
}

/** A year (or `hours`) of hourly snapshots of one tenant, ending at the last full hour, as the store writes them. */
function historyItems(hours: number): Record<string, AttributeValue>[] {
  const hour = 3_600_000;
  const end = Math.floor(Date.now() / hour) * hour;
  const spaces = [
    { type: 0, allocatedGB: 12288, totalGB: 20480 },
    { type: 1, allocatedGB: 35840, totalGB: 40960 },
    { type: 2, allocatedGB: 7680, totalGB: 10240 },
  ];
  return Array.from({ length: hours }, (_, i) => {
    const at = end - (hours - 1 - i) * hour;
    const grown = spaces.map((s) => ({
      ...s,
      typeName:
        s.type === 0 ? ('department' as const) : s.type === 1 ? ('personal' as const) : ('group' as const),
      allocatedGB: s.allocatedGB + (i % 97),
      unallocatedGB: s.totalGB - s.allocatedGB - (i % 97),
      allocatedRatio: (s.allocatedGB + (i % 97)) / s.totalGB,
      overAllocated: false,
    }));
    const allocatedGB = grown.reduce((sum, s) => sum + s.allocatedGB, 0);
    const totalGB = grown.reduce((sum, s) => sum + s.totalGB, 0);
    return snapshotToItem(
      {
        tenantId: HISTORY_TENANT,
        observedAt: new Date(at).toISOString(),
        fetchedAt: new Date(at + 1_234).toISOString(),
        spaces: grown,
        totals: {
          allocatedGB,
          totalGB,
          unallocatedGB: totalGB - allocatedGB,
          allocatedRatio: allocatedGB / totalGB,
          overAllocated: false,
        },
        source: 'schedule',
        traceId: 'a'.repeat(58),
        // As the snapshot job stores it: the previous snapshot it was compared with.
        ...(i === 0 ? {} : { comparedWith: new Date(at - hour).toISOString() }),
      },
      RETENTION_DAYS,
    );
  });
}

async function seedHistory(dynamoUrl: string, items: Record<string, AttributeValue>[]): Promise<void> {
  const client = new DynamoDBClient({
    endpoint: dynamoUrl,
    region: REGION,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  try {
    const batches: Record<string, AttributeValue>[][] = [];
    for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
    const lanes = Array.from({ length: 4 }, async () => {
      for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) {
        let requests = batch.map((Item) => ({ PutRequest: { Item } }));
        for (let attempt = 0; requests.length > 0; attempt++) {
          if (attempt > 10) throw new Error('BatchWriteItem kept leaving items unprocessed');
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: requests } }));
          requests = (out.UnprocessedItems?.[TABLE] ?? []).flatMap((r) =>
            r.PutRequest?.Item === undefined ? [] : [{ PutRequest: { Item: r.PutRequest.Item } }],
          );
        }
      }
    });
    await Promise.all(lanes);
  } finally {
    client.destroy();
  }
}

async function measureHistory(ctx: Context, dynamoUrl: string): Promise<void> {
  const p = ctx.params;
  const items = historyItems(p.historyHours);
  const first = items[0];
  const last = items.at(-1);
  if (first === undefined || last === undefined) throw new Error('history: no items to seed');
  const seedStart = performance.now();
  await seedHistory(dynamoUrl, items);
  log(
    `history: seeded ${items.length} snapshots in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
  );
  const from = first.observedAt?.S ?? '';
  const to = last.observedAt?.S ?? '';
  const env = ctx.env({
    KOODRIVE_TENANTS: `${HISTORY_TENANT}=koodrive/${HISTORY_TENANT}`,
    SNAPSHOT_TABLE: TABLE,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
    AWS_LAMBDA_FUNCTION_NAME: 'koodrive-allocation-bench-history',
    // The raw Query runs in the same process, so it shares the deployed runtime's settings.
    ...ctx.runtimeEnv,
  });
  const outcome = await runNode(
    ctx.probes.history,
    [
      bundleOf(ctx, 'history'),
      HISTORY_TENANT,
      from,
      to,
      String(p.historyLimit),
      String(p.historyRounds),
      TABLE,
    ],
    // --expose-gc: the probe collects before each timed run, so no run pays for the garbage of the one before.
    { env, nodeArgs: [...measuredArgs(ctx, 'history'), '--expose-gc'] },
  );
  const rounds = outcome.result.rounds;
  if (!Array.isArray(rounds) || rounds.length === 0) throw new Error('history probe reported no rounds');
  const route: number[] = [];
  const raw: number[] = [];
  const projected: number[] = [];
  for (const round of rounds) {
    const r: Record<string, unknown> = isRecord(round) ? round : {};
    const counts = ['routeItems', 'rawItems', 'projectedItems'].map((name) => num(r, name));
    if (counts.some((count) => count !== items.length)) {
      throw new Error(`history read ${counts.join(', ')} (route, raw, projected) of ${items.length} items`);
    }
    route.push(num(r, 'routeMs'));
    raw.push(num(r, 'rawMs'));
    projected.push(num(r, 'projectedMs'));
  }
  const bytes = items.map(itemSize);
  const group = 'history read';
  const setting = `${items.length} snapshots, limit ${p.historyLimit}`;
  ctx.figures.push(
    figure({
      id: 'history.route',
      group,
      label: `history route, all pages (${setting})`,
      unit: 'ms',
      stat: summarize(route),
    }),
    figure({ id: 'history.raw', group, label: 'raw SDK Query, all pages', unit: 'ms', stat: summarize(raw) }),
    figure({
      id: 'history.rawProjected',
      group,
      label: 'raw SDK Query of the 4 attributes the route serves, all pages',
      unit: 'ms',
      stat: summarize(projected),
    }),
    figure({
      id: 'history.ratio',
      group,
      label: 'route / raw Query',
      unit: 'ratio',
      stat: summarize(pairedRatios(route, raw)),
      target: { op: '<=', limit: 1.3 },
    }),
    figure({
      id: 'history.ratioProjected',
      group,
      label: 'route / raw Query of the same attributes (the route’s own cost)',
      unit: 'ratio',
      stat: summarize(pairedRatios(route, projected)),
    }),
    figure({
      id: 'history.bytesPerSnapshot',
      group,
      label: `stored bytes per snapshot (DynamoDB item size; +${STORAGE_OVERHEAD_BYTES_PER_ITEM} B billed overhead)`,
      unit: 'B',
      stat: summarize(bytes),
    }),
  );
  ctx.measured.itemBytes = summarize(bytes).median;
}

/**
 * The probes' Node version, and with BENCH_NODE, which binary and architecture: an arm64 node run under
 * qemu-user on an x64 machine measures the arm64 V8 (the functions' architecture), but its RSS and
 * times are the emulator's.
 */
function nodeVersion(): string {
  const [version = '', arch = ''] = execFileSync(
    nodeBinary(),
    ['-p', 'process.version + " " + process.arch'],
    {
      encoding: 'utf8',
    },
  )
    .trim()
    .split(' ');
  const chosen = process.env.BENCH_NODE?.trim();
  if ((chosen === undefined || chosen === '') && arch === os.arch()) return version;
  const emulated =
    arch === os.arch()
      ? ''
      : `; not this machine's ${os.arch()}, so emulated: RSS and times include the emulator's, only the V8 heap figures are ${arch}'s`;
  return `${version} on ${arch} (BENCH_NODE=${chosen ?? ''}${emulated})`;
}

/** Runs the benchmark and writes its results; returns them. */
export async function runBenchmark(argv: readonly string[]): Promise<BenchResults> {
  const options = parseOptions(argv);
  quiet = options.quiet;
  const params = options.quick ? QUICK_PARAMS : FULL_PARAMS;
  const work = await mkdtemp(path.join(os.tmpdir(), 'koodrive-bench-'));
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const distDir = path.join(work, 'dist');
    if (options.build) {
      log(`building the functions into ${distDir} with scripts/build.ts`);
      await buildProject(distDir);
    } else {
      // After the options were read, so that --help or a mistake builds nothing.
      if (options.distDir === undefined) await buildAll(log);
      const from = options.distDir ?? path.join(ROOT, 'dist');
      if (!existsSync(path.join(from, 'allocation', 'index.mjs'))) {
        throw new Error(`${from}/allocation/index.mjs is missing: run npm run build first, or pass --build`);
      }
      // A private copy: another `npm run build` in the same checkout must not pull the bundles away mid-run.
      await cp(from, distDir, { recursive: true });
      // A dist/ from before the wrapper existed (or a --dist of bundles only): the repository's wrapper.
      if (!existsSync(path.join(distDir, 'exec-wrapper.sh'))) await copyExecWrapper(distDir);
    }
    log('building the peer and the probes');
    const peerBundle = await buildPeer(path.join(work, 'peer'));
    const probes = await buildProbes(work);
    const functions = await listBundles(distDir);
    if (!functions.includes('allocation')) {
      throw new Error(`${distDir} has no allocation bundle`);
    }
    const noFile = path.join(work, 'none');
    const env = (extra: Record<string, string> = {}): Record<string, string> => ({
      PATH: process.env.PATH ?? '',
      HOME: work,
      TZ: 'UTC',
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_CONFIG_FILE: noFile,
      AWS_SHARED_CREDENTIALS_FILE: noFile,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(MEMORY_MB),
      ...extra,
    });
    const ctx: Context = {
      options,
      params,
      work,
      distDir,
      functions,
      peerBundle,
      probes,
      figures: [],
      missing: [],
      notes: [
        'Peer: bench/peer/allocation.ts, one file with @middy/core, @aws-sdk/client-secrets-manager, native fetch and the signature computed inline; built with the esbuild settings of scripts/build.ts.',
        'Probes run in fresh node processes (the pinned Node 24) with only the benchmark environment; the KooDrive simulator runs in a process of its own (latency 0 unless stated), Secrets Manager and dynalite in the benchmark process.',
        'Processes that run a project bundle get the runtime variables serverless.yml gives the functions (NODE_OPTIONS, GLIBC_TUNABLES, V8_FLAGS) and start through its exec wrapper, as Lambda starts them; the peer and the bare loops run without them.',
        `Every measured process gets the V8 flags Lambda's Node.js bootstrap gives a ${MEMORY_MB} MB function (${LAMBDA_ARGS.join(' ')}); the memory group uses those of a ${SMALL_MEMORY_MB} MB function, the size its target names.`,
        'Warm latency: each round is one process per variant; after an untimed warm-up the timed invocations are sequential. Memory: separate processes, full GC before each RSS and heap reading.',
        'Snapshot fan-out: each run is a fresh process (15 minutes apart, a warm container would have re-read the secrets anyway); the floor runs the same tenants with only a secret read, one signed call and one PutItem each, against the same services, to show what those services cost on this machine.',
        'History read: handler calls only are timed (parsing the answer for nextCursor is the caller’s work); the raw Query pages the same key range with the same limit and converts nothing.',
      ],
      env,
      // The wrapper of the bundles measured (the run's own dist/), not whatever the checkout's dist/ holds.
      runtimeEnv: await readDeployedRuntimeEnv(undefined, work),
      measured: {},
    };

    const secrets = await startLocalSecretsManager({
      secrets: { 'koodrive/demo': demoSecretString(DEMO_APP), 'koodrive/lab': demoSecretString(LAB_APP) },
    });
    closers.push(() => secrets.close());
    const simulator = await startSimulatorProcess(probes.simulator, {
      apps: [DEMO_APP, LAB_APP],
      latencyMs: 0,
      env: env(),
    });
    closers.push(() => simulator.close());
    const allocEnv = env({
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      KOODRIVE_TENANTS: 'demo=koodrive/demo,lab=koodrive/lab',
      KOODRIVE_BASE_URL: simulator.url,
      AWS_LAMBDA_FUNCTION_NAME: 'koodrive-allocation-bench-allocation',
    });
    ctx.env = (extra = {}) => ({ ...allocEnv, ...extra });

    const wants = (group: Group) => options.only.has(group);
    if (wants('size')) {
      log('bundle sizes');
      await measureSizes(ctx);
    }
    if (wants('cold')) {
      log(`cold start: ${params.coldRounds} rounds of project, peer and node -e 0`);
      await measureColdStart(ctx, allocEnv);
    }
    if (wants('init')) {
      log(`init only: ${params.initRounds} rounds of ${functions.join(', ')} and the peer`);
      await measureInit(ctx, allocEnv);
    }
    if (wants('warm')) {
      log(
        `warm latency: ${params.warmRounds} rounds × ${params.warmup + params.timed} invocations × 3 variants`,
      );
      await measureWarm(ctx, allocEnv, simulator);
    }
    if (wants('memory')) {
      log(`memory: ${params.memoryRounds} rounds × ${params.memoryTotal} invocations × 3 variants`);
      await measureMemory(ctx, allocEnv, simulator);
    }
    if (wants('secrets')) {
      log('secret reads');
      await measureSecretReads(ctx, allocEnv, secrets);
    }
    const needsDynamo = wants('snapshot') || wants('history');
    if (needsDynamo) {
      const dynamo = await startLocalDynamoDb({ tables: { SnapshotsTable: TABLE } });
      closers.push(() => dynamo.close());
      const proxy = await startCountingProxy(dynamo.url);
      closers.push(() => proxy.close());
      if (wants('snapshot')) {
        if (functions.includes('snapshot')) {
          log(`snapshot fan-out: ${params.snapshotTenants} tenants, ${params.snapshotLatencyMs} ms latency`);
          await measureSnapshotFanOut(ctx, { simulator, secrets, dynamo: proxy });
        } else
          ctx.missing.push(
            `snapshot fan-out: ${distDir}/snapshot/index.mjs does not exist (handlers/snapshot.ts missing?)`,
          );
      }
      if (wants('history')) {
        if (functions.includes('history')) {
          log(`history read: ${params.historyHours} hourly snapshots`);
          await measureHistory(ctx, dynamo.url);
        } else
          ctx.missing.push(
            `history read: ${distDir}/history/index.mjs does not exist (handlers/history.ts missing?)`,
          );
      }
    }

    const m = ctx.measured;
    const cost =
      m.warmProjectP50 !== undefined &&
      m.fanoutWallMs !== undefined &&
      m.itemBytes !== undefined &&
      m.writesPerSnapshot !== undefined &&
      m.readsPerSnapshot !== undefined &&
      m.secretReadsPerSnapshot !== undefined &&
      m.logBytesPerSnapshot !== undefined &&
      m.metricCensus !== undefined
        ? computeCost({
            scheduleMinutes: SCHEDULE_MINUTES,
            retentionDays: RETENTION_DAYS,
            memoryMb: MEMORY_MB,
            itemBytes: m.itemBytes,
            storageOverheadBytes: STORAGE_OVERHEAD_BYTES_PER_ITEM,
            // One tenant alone: the time one lane of the fan-out spends per tenant (secret, KooDrive, DynamoDB).
            singleTenantDurationMs: (m.fanoutWallMs * params.snapshotConcurrency) / params.snapshotTenants,
            sharedDurationMsPerTenant: m.fanoutWallMs / params.snapshotTenants,
            sharedTenants: params.snapshotTenants,
            writesPerSnapshot: m.writesPerSnapshot,
            readsPerSnapshot: m.readsPerSnapshot,
            secretReadsPerSnapshot: m.secretReadsPerSnapshot,
            logBytesPerSnapshot: m.logBytesPerSnapshot,
            ...cloudWatchInputs(m.metricCensus, await readAlarmCensus()),
          })
        : undefined;
    if (cost === undefined) ctx.missing.push('cost note: needs the warm, snapshot and history groups');

    const results: BenchResults = {
      version: 1,
      date: new Date().toISOString(),
      mode: options.quick ? 'quick' : 'full',
      machine: describeMachine(nodeVersion()),
      params: { ...params },
      ...(ctx.measured.projectNodeArgs === undefined
        ? {}
        : { projectNodeArgs: ctx.measured.projectNodeArgs }),
      figures: ctx.figures,
      missed: ctx.figures
        .filter((f) => f.target !== undefined && !f.target.met)
        .map(
          (f) =>
            `${f.group}: ${f.label} = ${f.stat.median.toFixed(3)} ${f.unit} (target ${f.target?.op} ${f.target?.limit})`,
        ),
      missing: ctx.missing,
      ...(cost === undefined ? {} : { cost }),
      notes: ctx.notes,
    };
    const outDir =
      options.outDir ?? (options.quick ? path.join(work, 'results') : path.join(ROOT, 'bench', 'results'));
    await mkdir(outDir, { recursive: true });
    // A run of some groups only must not replace the full run the README quotes: it goes beside it.
    const partial = options.only.size < GROUPS.length;
    const name = partial ? 'partial' : 'latest';
    await writeFile(path.join(outDir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(path.join(outDir, `${name}.md`), formatMarkdown(results));
    if (!options.quiet) {
      console.log(formatTable(results));
      for (const line of results.missed) console.log(`MISSED ${line}`);
      for (const line of results.missing) console.log(`NOT MEASURED ${line}`);
    }
    log(`results written to ${outDir}/${name}.json and ${name}.md`);
    if (options.quick && options.outDir === undefined) options.keepWork = true;
    return results;
  } finally {
    for (const close of closers.reverse())
      await close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    if (!options.keepWork) await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
  } else {
    try {
      await runBenchmark(argv);
    } catch (error) {
      if (error instanceof UsageError) {
        process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`);
        process.exitCode = 2;
      } else {
        log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        process.exitCode = 1;
      }
    }
  }
}
