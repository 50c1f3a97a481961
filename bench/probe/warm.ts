/**
 * Warm latency and memory in one process: `warm.mjs <kind> <target> <warmup> <timed> <total>`.
 * kind `handler`: invoke the bundle at <target> (`GET /allocation`, or `GET /tenants/{id}/allocation`
 * cycling through the comma-separated BENCH_TENANTS); kind `bare`: a keep-alive fetch of the URL
 * <target> with the pre-signed headers in BENCH_BARE_HEADERS; kind `bare-http`: the same exchange on
 * node:http with a keep-alive agent (the project's transport, without the project). The first <warmup> invocations are not
 * timed; the next <timed> are (wall and CPU); the rest (up to <total>) only load memory. RSS and heap
 * are read after a full GC at <warmup>, at BENCH_STEADY_AT (if set) and at <total> (needs --expose-gc).
 */
import { readFileSync } from 'node:fs';
import { httpEvent, lambdaContext } from '../../test/support/lambda.ts';
import {
  arg,
  finish,
  importHandler,
  intArg,
  isRecord,
  keepAliveGetter,
  runProbe,
  statusOf,
} from './common.ts';

type Invoke = (index: number) => Promise<boolean>;

function collectGarbage(): void {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc !== 'function') throw new Error('warm probe: run node with --expose-gc');
  // Twice: the first pass can leave finalizable objects for the second.
  gc();
  gc();
}

/**
 * Resident memory by kind, in bytes, from /proc (Linux; NaN elsewhere): anonymous (the process's own
 * heap, stacks and malloc arenas) and file-backed (pages of the node binary and libraries, shared and
 * clean: the kernel can drop and re-read them).
 */
function residentByKind(): { anon: number; file: number } {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return { anon: Number.NaN, file: Number.NaN };
  }
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { anon: kib('RssAnon'), file: kib('RssFile') };
}

function percentile(sorted: Float64Array, p: number): number {
  const rank = (p / 100) * (sorted.length - 1);
  const low = sorted[Math.floor(rank)] ?? Number.NaN;
  const high = sorted[Math.ceil(rank)] ?? Number.NaN;
  return low + (high - low) * (rank - Math.floor(rank));
}

function bareHeaders(): Record<string, string> {
  const parsed: unknown = JSON.parse(process.env.BENCH_BARE_HEADERS ?? '{}');
  const headers: Record<string, string> = {};
  if (!isRecord(parsed)) throw new Error('BENCH_BARE_HEADERS is not a JSON object');
  for (const [name, value] of Object.entries(parsed)) if (typeof value === 'string') headers[name] = value;
  return headers;
}

async function makeInvoke(kind: string, target: string, tenants: string[]): Promise<Invoke> {
  if (kind === 'bare') {
    const headers = bareHeaders();
    return async () => {
      const response = await fetch(target, { headers });
      await response.json();
      return response.status === 200;
    };
  }
  if (kind === 'bare-http') {
    const headers = bareHeaders();
    const url = new URL(target);
    const get = await keepAliveGetter();
    return async () => {
      const { status, body } = await get(url, headers);
      JSON.parse(body);
      return status === 200;
    };
  }
  if (kind !== 'handler') throw new Error(`warm probe: unknown kind ${kind}`);
  const handler = await importHandler(target);
  return async (index) => {
    const tenantId = tenants.length === 0 ? undefined : tenants[index % tenants.length];
    const event =
      tenantId === undefined
        ? httpEvent('/allocation', { routeKey: 'GET /allocation' })
        : httpEvent(`/tenants/${tenantId}/allocation`, {
            routeKey: 'GET /tenants/{tenantId}/allocation',
            pathParameters: { tenantId },
          });
    return statusOf(await handler(event, lambdaContext('koodrive-allocation-bench-allocation'))) === 200;
  };
}

runProbe(async () => {
  const kind = arg(0);
  const target = arg(1);
  const warmup = intArg(2);
  const timed = intArg(3);
  const total = Math.max(intArg(4), warmup + timed);
  const tenants = (process.env.BENCH_TENANTS ?? '').split(',').filter((t) => t !== '');
  const steadyAt = Number(process.env.BENCH_STEADY_AT ?? Number.NaN);
  const invoke = await makeInvoke(kind, target, tenants);
  const samples = new Float64Array(timed);
  let failures = 0;
  const memory = {
    rssAfterWarmup: 0,
    anonAfterWarmup: 0,
    fileAfterWarmup: 0,
    heapAfterWarmup: 0,
    rssAtSteady: Number.NaN,
    rssAtEnd: 0,
    anonAtEnd: 0,
    fileAtEnd: 0,
    heapAtEnd: 0,
  };
  let cpuStart = process.cpuUsage();
  let cpu = process.cpuUsage(cpuStart);
  for (let i = 0; i < total; i++) {
    if (i === warmup) {
      collectGarbage();
      memory.rssAfterWarmup = process.memoryUsage.rss();
      ({ anon: memory.anonAfterWarmup, file: memory.fileAfterWarmup } = residentByKind());
      memory.heapAfterWarmup = process.memoryUsage().heapUsed;
      cpuStart = process.cpuUsage();
    }
    if (i === steadyAt) {
      collectGarbage();
      memory.rssAtSteady = process.memoryUsage.rss();
    }
    const start = process.hrtime.bigint();
    const ok = await invoke(i);
    const end = process.hrtime.bigint();
    if (!ok) failures += 1;
    if (i >= warmup && i < warmup + timed) samples[i - warmup] = Number(end - start) / 1e6;
    if (i === warmup + timed - 1) cpu = process.cpuUsage(cpuStart);
  }
  collectGarbage();
  memory.rssAtEnd = process.memoryUsage.rss();
  ({ anon: memory.anonAtEnd, file: memory.fileAtEnd } = residentByKind());
  memory.heapAtEnd = process.memoryUsage().heapUsed;
  samples.sort();
  await finish({
    invocations: total,
    failures,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    mean: samples.reduce((sum, v) => sum + v, 0) / Math.max(1, samples.length),
    ...memory,
    // Microseconds of CPU (user + system) this process spent per timed invocation.
    cpuPerInvocationUs: timed === 0 ? 0 : (cpu.user + cpu.system) / timed,
    // resourceUsage reports kilobytes.
    peakRss: process.resourceUsage().maxRSS * 1024,
  });
});
