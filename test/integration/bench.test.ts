/**
 * Proves `npm run bench` still works: a `--quick` run (few iterations, everything local) into a temp
 * dir must produce every figure with numeric values. No timing is asserted: this machine's speed is
 * not the project's behaviour.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedRuntimeEnv, readDeployedRuntimeEnv } from '../../bench/lib/deployed-env.ts';
import { itemSize, numberSize } from '../../bench/lib/item-size.ts';
import type { BenchResults } from '../../bench/lib/report.ts';
import { pairedRatios, summarize } from '../../bench/lib/stats.ts';
import { runBenchmark } from '../../bench/run.ts';
import { DEMO_APP } from '../../local/demo.ts';
import { listHandlers } from '../../scripts/build.ts';

const RUN_TS = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Figures that do not depend on which handlers exist. */
const FIXED_FIGURES = [
  'size.peer.raw',
  'size.peer.gzip',
  'cold.project.wall',
  'cold.peer.wall',
  'cold.baseline.wall',
  'cold.project.inside',
  'cold.peer.inside',
  'cold.ratio.projectPeer',
  'cold.ratio.projectPeerAboveBaseline',
  'init.peer',
  'warm.project.p50',
  'warm.project.p99',
  'warm.project.cpu',
  'warm.peer.p50',
  'warm.peer.p99',
  'warm.bare.p50',
  'warm.bare.p99',
  'warm.ratio.projectBare.p50',
  'warm.ratio.peerBare.p50',
  'warm.ratio.projectPeer.p50',
  'warm.bareHttp.p50',
  'warm.ratio.projectBareHttp.p50',
  'memory.project.growth',
  'memory.project.anonGrowth',
  'memory.project.fileGrowth',
  'memory.project.steadyGrowth',
  'memory.project.heapGrowth',
  'memory.project.peak',
  'memory.peer.growth',
  'memory.peer.peak',
  'memory.bare.growth',
  'memory.bare.peak',
  'memory.bareHttp.growth',
  'memory.bareHttp.anonGrowth',
  'memory.bareHttp.fileGrowth',
  'memory.projectAboveBareHttp.growth',
  'secrets.project.readsPerTenant',
  'secrets.peer.readsPerTenant',
  'snapshot.wall',
  'snapshot.peakRss',
  'snapshot.ideal',
  'snapshot.floor',
  'snapshot.ratio',
  'snapshot.ratio.projectFloor',
  'snapshot.callsFloor',
  'snapshot.ratio.callsFloorIdeal',
  'snapshot.ratio.projectCallsFloor',
  'history.route',
  'history.raw',
  'history.rawProjected',
  'history.ratio',
  'history.ratioProjected',
  'history.bytesPerSnapshot',
];

/** Figures that carry a target from the benchmark's brief. */
const TARGETED = [
  'size.allocation.raw',
  'cold.ratio.projectPeer',
  'warm.ratio.projectBare.p50',
  'memory.project.growth',
  'memory.project.peak',
  'secrets.project.readsPerTenant',
  'snapshot.ratio',
  'history.ratio',
];

let outDir = '';
let results: BenchResults;
let functions: string[] = [];

beforeAll(async () => {
  outDir = await mkdtemp(path.join(os.tmpdir(), 'bench-test-'));
  functions = await listHandlers();
  results = await runBenchmark(['--quick', '--build', '--quiet', '--out', outDir]);
});

afterAll(async () => {
  if (outDir !== '') await rm(outDir, { recursive: true, force: true });
});

describe('npm run bench -- --quick', () => {
  it('measures every figure, for every function, with numeric values', () => {
    const perFunction = functions.flatMap((name) => [
      `size.${name}.raw`,
      `size.${name}.gzip`,
      `init.${name}`,
    ]);
    const ids = results.figures.map((f) => f.id);
    expect(ids).toEqual(expect.arrayContaining([...FIXED_FIGURES, ...perFunction]));
    expect(functions).toEqual(expect.arrayContaining(['allocation', 'history', 'snapshot']));
    for (const f of results.figures) {
      for (const value of [f.stat.median, f.stat.min, f.stat.max]) {
        expect(Number.isFinite(value), `${f.id} = ${value}`).toBe(true);
      }
      expect(f.stat.min).toBeLessThanOrEqual(f.stat.max);
      expect(f.stat.n).toBeGreaterThanOrEqual(1);
    }
    expect(results.missing).toEqual([]);
  });

  it('checks the brief’s targets and lists each missed one', () => {
    const byId = new Map(results.figures.map((f) => [f.id, f]));
    for (const id of TARGETED) expect(typeof byId.get(id)?.target?.met, id).toBe('boolean');
    const missed = results.figures.filter((f) => f.target?.met === false).length;
    expect(results.missed).toHaveLength(missed);
  });

  it('runs the project as deployed: through the exec wrapper, with its V8 flags before Lambda’s', async () => {
    const { V8_FLAGS: flags = '' } = await readDeployedRuntimeEnv();
    expect(flags).not.toBe('');
    const args = results.projectNodeArgs ?? [];
    expect(args.slice(0, flags.split(' ').length)).toEqual(flags.split(' '));
    expect(args).toContain('--expose-gc');
    expect(await readFile(path.join(outDir, 'latest.md'), 'utf8')).toContain(
      `- Project processes ran as: \`node ${args.join(' ')}\``,
    );
  });

  it('counts both writes of a snapshot for the cost note: the item and the threshold head’s move', () => {
    expect(results.cost?.inputs.writesPerSnapshot).toBe(2);
  });

  it('prices the CloudWatch metrics the snapshots create and the alarms that judge them', () => {
    const inputs = results.cost?.inputs;
    // The fan-out's tenants answer the demo tenant's data: three space types.
    const spaces = Array.isArray(DEMO_APP.data) ? DEMO_APP.data.length : 1;
    expect(spaces).toBe(3);
    // AllocatedGB, TotalGB and AllocatedRatio of each space type the simulator answers, and of the totals.
    expect(inputs?.metricsPerTenant).toBe(3 * (spaces + 1));
    // The default thresholds' alarms, on each tenant's totals ratio.
    expect(inputs?.tenantQueryAlarms).toBe(3);
    expect(inputs?.alarmSeriesPerTenant).toBe(1);
    expect(inputs?.deploymentMetrics).toBeGreaterThan(functions.length);
    expect(inputs?.dashboards).toBe(1);
    const metrics = results.cost?.shared.lines.find((line) =>
      line.item.startsWith('CloudWatch custom metrics'),
    );
    expect(metrics?.usd).toBeCloseTo(3 * (spaces + 1) * 0.3, 6);
  });

  it('counts one secret read per tenant, as the warm cache promises', () => {
    const reads = results.figures.find((f) => f.id === 'secrets.project.readsPerTenant');
    expect(reads?.stat.max).toBe(1);
  });

  it('writes the same results to latest.json, and latest.md with the machine and the cost note', async () => {
    const json: unknown = JSON.parse(await readFile(path.join(outDir, 'latest.json'), 'utf8'));
    expect(json).toEqual(JSON.parse(JSON.stringify(results)));
    expect(results.mode).toBe('quick');
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toMatch(/^v\d+\./);
    expect(results.cost?.singleTenant.totalUsd).toBeGreaterThan(0);
    expect(results.cost?.shared.totalUsd).toBeGreaterThan(0);
    const md = await readFile(path.join(outDir, 'latest.md'), 'utf8');
    expect(md).toContain(results.machine.cpuModel);
    expect(md).toContain('## Cost per tenant per month');
    expect(md).toContain('| cold start | project / peer (wall) |');
  });
});

describe('the benchmark’s command line', () => {
  const bench = (...args: string[]) =>
    spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', RUN_TS, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });

  it('prints its usage for --help, groups included, and measures nothing', () => {
    const help = bench('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--only GROUPS');
    expect(help.stdout).toContain('size,cold,init,warm,memory,secrets,snapshot,history');
    expect(help.stderr).toBe('');
  });

  it('refuses a mistake with what was wrong and the usage, exit 2, no stack trace', () => {
    for (const [args, said] of [
      [['--only', 'bogus'], '--only: unknown group(s) bogus'],
      [['--frobnicate'], 'unknown option --frobnicate'],
      [['--out'], '--out needs a value'],
    ] as const) {
      const refused = bench(...args);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain(`bench: ${said}`);
      expect(refused.stderr).toContain('--help');
      expect(refused.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('the benchmark’s arithmetic', () => {
  it('sizes items by DynamoDB’s rules: names, values, 3 bytes per list or map, 1 per element', () => {
    expect(numberSize('12288')).toBe(4);
    expect(numberSize('0.500')).toBe(2);
    expect(numberSize('-1000')).toBe(2);
    // t: 1 + 2; n: 1 + (1 + 1); l: 1 + 3 + (1 + M), M = 3 + (1 + 'k' + 2) = 7.
    expect(itemSize({ t: { S: 'ab' }, n: { N: '7' }, l: { L: [{ M: { k: { N: '5' } } }] } })).toBe(
      3 + 3 + 12,
    );
  });

  it('runs the project with the runtime variables serverless.yml deploys, params resolved', async () => {
    // The repository's own: glibc's defaults and no NODE_OPTIONS; node started through the built wrapper,
    // which adds the default V8 flags.
    expect(await readDeployedRuntimeEnv()).toEqual({
      AWS_LAMBDA_EXEC_WRAPPER: path.join(ROOT, 'dist', 'exec-wrapper.sh'),
      V8_FLAGS: '--no-concurrent-recompilation --max-opt=2',
    });
    // The benchmark's own run folder: the wrapper it built beside the bundles it measures.
    expect((await readDeployedRuntimeEnv(undefined, '/run')).AWS_LAMBDA_EXEC_WRAPPER).toBe(
      '/run/dist/exec-wrapper.sh',
    );
    const wrapped = (flags: string, wrapper = '/var/task/dist/w.sh') =>
      `params:\n  default:\n    flags: "${flags}"\nprovider:\n  environment:\n    AWS_LAMBDA_EXEC_WRAPPER: ${wrapper}\n    V8_FLAGS: \${checkedV8Flags:flags}\n`;
    expect(deployedRuntimeEnv(wrapped(' --a  --b=1'), '/repo')).toEqual({
      AWS_LAMBDA_EXEC_WRAPPER: '/repo/dist/w.sh',
      V8_FLAGS: '--a --b=1',
    });
    expect(deployedRuntimeEnv(wrapped(''), '/repo')).toEqual({ AWS_LAMBDA_EXEC_WRAPPER: '/repo/dist/w.sh' });
    expect(() => deployedRuntimeEnv(wrapped('rm -rf'))).toThrow(/flags holds 'rm', '-rf'/);
    // A wrapper from a layer (/opt) is not in the repository: the benchmark says so rather than skip it.
    expect(() => deployedRuntimeEnv(wrapped('', '/opt/otel-handler'))).toThrow(
      /AWS_LAMBDA_EXEC_WRAPPER \/opt\/otel-handler is outside the function's package/,
    );
    const yml = (glibc: string) =>
      `params:\n  default:\n    glibc: "${glibc}"\nprovider:\n  environment:\n    GLIBC_TUNABLES: \${param:glibc}\n    KOODRIVE_TENANTS: x\n`;
    expect(deployedRuntimeEnv(yml('glibc.malloc.trim_threshold=1'))).toEqual({
      GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1',
    });
    // Empty leaves glibc's defaults: the variable is not set at all.
    expect(deployedRuntimeEnv(yml(''))).toEqual({});
    expect(() =>
      deployedRuntimeEnv(`provider:\n  environment:\n    GLIBC_TUNABLES: \${param:missing}\n`),
    ).toThrow(/params\.default\.missing/);
  });

  it('summarizes rounds by median, min and max, and pairs ratios round by round', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(summarize([1, 2, 3, 4]).median).toBe(2.5);
    expect(pairedRatios([2, 9], [1, 3])).toEqual([2, 3]);
    expect(() => summarize([])).toThrow();
  });
});
