import { describe, expect, it } from 'vitest';
import type { FetchedAllocation } from '../../lib/allocation.ts';
import { StoreUnavailableError, UpstreamTimeoutError } from '../../lib/errors.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import {
  createLimiter,
  EventsInProgressError,
  errorCodeOf,
  leaseFrom,
  mapWithConcurrency,
  PUBLISH_LEASE_MS,
  type SnapshotJobDeps,
  type SnapshotResult,
  snapshotTargets,
  takeSnapshots,
} from '../../lib/snapshots/job.ts';
import type { PutOutcome, Snapshot } from '../../lib/snapshots/store.ts';
import type { Tenant } from '../../lib/tenants.ts';

const OBSERVED_AT = '2026-11-28T04:00:00.000Z';
const FETCHED_AT = '2026-11-28T04:00:02.345Z';

const tenant = (tenantId: string): Tenant => ({ tenantId, secretId: `koodrive/${tenantId}` });

function fetched(tenantId: string): FetchedAllocation {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: { type: 0, allocateCapacity: 10, totalCapacity: 20 },
  });
  return {
    allocation: { tenantId, observedAt: FETCHED_AT, spaces, totals },
    traceId: `trace-${tenantId}`,
    attempts: 1,
  };
}

/** An in-memory store with the conditional-put semantics of the real one. */
function memoryStore(existing: string[] = []) {
  const items = new Map<string, Snapshot>();
  const keys = new Set(existing);
  return {
    items,
    async has(tenantId: string, observedAt: string) {
      return keys.has(`${tenantId}@${observedAt}`);
    },
    async put(snapshot: Snapshot): Promise<PutOutcome> {
      const key = `${snapshot.tenantId}@${snapshot.observedAt}`;
      if (keys.has(key)) return 'duplicate';
      keys.add(key);
      items.set(key, snapshot);
      return 'stored';
    },
  };
}

describe('takeSnapshots', () => {
  it('stores each tenant under the event time with the KooDrive time as fetchedAt', async () => {
    const store = memoryStore();
    const results = await takeSnapshots({
      tenants: [tenant('acme'), tenant('beta')],
      observedAt: OBSERVED_AT,
      source: 'schedule',
      deps: { store, fetch: async (t) => fetched(t.tenantId) },
      concurrency: 4,
    });
    expect(results.map((r) => [r.tenantId, r.status, r.fetched])).toEqual([
      ['acme', 'stored', true],
      ['beta', 'stored', true],
    ]);
    expect(store.items.get(`acme@${OBSERVED_AT}`)).toEqual({
      tenantId: 'acme',
      observedAt: OBSERVED_AT,
      fetchedAt: FETCHED_AT,
      spaces: fetched('acme').allocation.spaces,
      totals: fetched('acme').allocation.totals,
      source: 'schedule',
      traceId: 'trace-acme',
    });
    expect(results[0]?.snapshot?.observedAt).toBe(OBSERVED_AT);
  });

  it('tries every tenant although some fail, and reports each failure with its code', async () => {
    const store = memoryStore();
    const asked: string[] = [];
    const seen: SnapshotResult[] = [];
    const results = await takeSnapshots({
      tenants: ['a', 'b', 'c', 'd', 'e'].map(tenant),
      observedAt: OBSERVED_AT,
      source: 'event',
      deps: {
        store,
        fetch: async (t) => {
          asked.push(t.tenantId);
          if (t.tenantId === 'b') throw new UpstreamTimeoutError('KooDrive did not answer');
          if (t.tenantId === 'd') throw new TypeError('boom');
          return fetched(t.tenantId);
        },
        onResult: (result) => seen.push(result),
      },
      concurrency: 2,
    });
    expect(asked.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(results.map((r) => `${r.tenantId}:${r.status}:${r.errorCode ?? ''}`)).toEqual([
      'a:stored:',
      'b:failed:UPSTREAM_TIMEOUT',
      'c:stored:',
      'd:failed:TypeError',
      'e:stored:',
    ]);
    expect(results[1]?.error).toBeInstanceOf(UpstreamTimeoutError);
    expect(seen).toHaveLength(5);
    expect(store.items.size).toBe(3);
  });

  it('finishes every tenant when the result observer throws, then rejects with what it threw', async () => {
    const store = memoryStore();
    const asked: string[] = [];
    const broken = new Error('metrics: cannot serialize');
    const run = takeSnapshots({
      tenants: ['a', 'b', 'c', 'd', 'e'].map(tenant),
      observedAt: OBSERVED_AT,
      source: 'schedule',
      deps: {
        store,
        fetch: async (t) => {
          asked.push(t.tenantId);
          return fetched(t.tenantId);
        },
        onResult: (result) => {
          if (result.tenantId === 'a') throw broken;
        },
      },
      concurrency: 1,
    });
    await expect(run).rejects.toBe(broken);
    // No lane was left running past the rejection: every tenant was fetched and stored before it.
    expect(asked.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(store.items.size).toBe(5);
  });

  it('skips KooDrive for a tenant already stored at that time, and still reports a racing duplicate', async () => {
    const store = memoryStore([`acme@${OBSERVED_AT}`]);
    const asked: string[] = [];
    const deps: SnapshotJobDeps = {
      // A concurrent writer stores beta between the check and the put.
      store: {
        has: store.has,
        async put(snapshot) {
          if (snapshot.tenantId === 'beta') await store.put({ ...snapshot, traceId: 'other' });
          return store.put(snapshot);
        },
      },
      fetch: async (t) => {
        asked.push(t.tenantId);
        return fetched(t.tenantId);
      },
    };
    const results = await takeSnapshots({
      tenants: [tenant('acme'), tenant('beta')],
      observedAt: OBSERVED_AT,
      source: 'sqs',
      deps,
      concurrency: 1,
    });
    expect(asked).toEqual(['beta']);
    expect(results.map((r) => [r.tenantId, r.status, r.fetched])).toEqual([
      ['acme', 'duplicate', false],
      ['beta', 'duplicate', true],
    ]);
    expect(results[1]?.snapshot).toBeUndefined();
  });

  it('reports a store failure after the fetch as failed, with the trace id of the call', async () => {
    const failing = Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
      name: 'ProvisionedThroughputExceededException',
    });
    const [result] = await takeSnapshots({
      tenants: [tenant('acme')],
      observedAt: OBSERVED_AT,
      source: 'schedule',
      deps: {
        store: { has: async () => false, put: async () => Promise.reject(failing) },
        fetch: async (t) => fetched(t.tenantId),
      },
      concurrency: 1,
    });
    expect(result).toMatchObject({
      status: 'failed',
      fetched: true,
      traceId: 'trace-acme',
      errorCode: 'ProvisionedThroughputExceededException',
    });
  });
});

it('ends a tenant whose threshold baseline could not be read only after its KooDrive call, and names that call', async () => {
  const unused = async (): Promise<never> => {
    throw new Error('not used by this test');
  };
  const store = {
    ...memoryStore(),
    thresholdHead: async () => Promise.reject(new StoreUnavailableError('DynamoDB is down.')),
    latest: unused,
    claimPendingEvents: unused,
    settlePendingEvents: unused,
    replacePendingEvents: unused,
    advanceThresholdHead: unused,
    forgetOwed: unused,
    snapshotState: unused,
    headMovedOnFrom: unused,
  };
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let ended = false;
  const running = takeSnapshots({
    tenants: [tenant('acme')],
    observedAt: OBSERVED_AT,
    source: 'schedule',
    deps: {
      store,
      thresholds: { thresholds: [0.8], publish: async () => ({ published: [], failed: [] }) },
      fetch: async (t) => {
        await gate;
        return fetched(t.tenantId);
      },
    },
    concurrency: 1,
  }).finally(() => {
    ended = true;
  });
  // The baseline read fails at once; KooDrive has not answered yet.
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  // A run that ended here would leave the call running past the invocation (into the next one, on a
  // warm container), and its log would name no KooDrive call.
  expect(ended).toBe(false);
  release();
  const [result] = await running;
  expect(result).toMatchObject({
    status: 'failed',
    errorCode: 'STORE_UNAVAILABLE',
    fetched: true,
    traceId: 'trace-acme',
  });
});

describe('snapshotTargets', () => {
  it('does identical targets once and gives each its result, in order', async () => {
    const store = memoryStore();
    let fetches = 0;
    const other = '2026-11-28T04:01:00.000Z';
    const results = await snapshotTargets({
      targets: [
        { tenant: tenant('acme'), observedAt: OBSERVED_AT },
        { tenant: tenant('beta'), observedAt: OBSERVED_AT },
        { tenant: tenant('acme'), observedAt: OBSERVED_AT },
        { tenant: tenant('acme'), observedAt: other },
      ],
      source: 'sqs',
      deps: {
        store,
        fetch: async (t) => {
          fetches += 1;
          return fetched(t.tenantId);
        },
      },
      concurrency: 8,
    });
    expect(fetches).toBe(3);
    expect(results.map((r) => `${r.tenantId}@${r.observedAt}:${r.status}`)).toEqual([
      `acme@${OBSERVED_AT}:stored`,
      `beta@${OBSERVED_AT}:stored`,
      `acme@${OBSERVED_AT}:stored`,
      `acme@${other}:stored`,
    ]);
    expect(results[0]).toBe(results[2]);
  });
});

describe('finding stored snapshots in bulk', () => {
  it('asks the store once per event time instead of once per tenant, and skips KooDrive for the stored ones', async () => {
    const store = memoryStore([`beta@${OBSERVED_AT}`]);
    const bulk: Array<[string[], string]> = [];
    let single = 0;
    const fetchedIds: string[] = [];
    const results = await takeSnapshots({
      tenants: ['acme', 'beta', 'gamma'].map(tenant),
      observedAt: OBSERVED_AT,
      source: 'schedule',
      deps: {
        store: {
          put: store.put,
          has: async (tenantId, observedAt) => {
            single += 1;
            return store.has(tenantId, observedAt);
          },
          storedAmong: async (tenantIds, observedAt) => {
            bulk.push([[...tenantIds], observedAt]);
            const found = await Promise.all(tenantIds.map((id) => store.has(id, observedAt)));
            return new Set(tenantIds.filter((_, i) => found[i]));
          },
        },
        fetch: async (t) => {
          fetchedIds.push(t.tenantId);
          return fetched(t.tenantId);
        },
      },
      concurrency: 2,
    });
    expect(bulk).toEqual([[['acme', 'beta', 'gamma'], OBSERVED_AT]]);
    expect(single).toBe(0);
    expect(fetchedIds.sort()).toEqual(['acme', 'gamma']);
    expect(results.map((r) => r.status)).toEqual(['stored', 'duplicate', 'stored']);
  });

  it('falls back to asking per tenant when the bulk read fails, and says so', async () => {
    const store = memoryStore([`beta@${OBSERVED_AT}`]);
    const reported: unknown[] = [];
    const results = await takeSnapshots({
      tenants: ['acme', 'beta'].map(tenant),
      observedAt: OBSERVED_AT,
      source: 'schedule',
      deps: {
        store: { ...store, storedAmong: async () => Promise.reject(new Error('throttled')) },
        fetch: async (t) => fetched(t.tenantId),
        onBulkReadFailure: (error) => reported.push(error),
      },
      concurrency: 2,
    });
    expect(results.map((r) => [r.tenantId, r.status, r.fetched])).toEqual([
      ['acme', 'stored', true],
      ['beta', 'duplicate', false],
    ]);
    // Said once, for the log: the run itself went on.
    expect(reported.map(String)).toEqual(['Error: throttled']);
  });
});

describe('the KooDrive slots of a run', () => {
  const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('never has more than `concurrency` KooDrive calls at once, and stores and secret reads do not hold a slot', async () => {
    const store = memoryStore();
    let fetching = 0;
    let peakFetching = 0;
    let putting = 0;
    /** Times a slot-holder count of `concurrency` coincided with a write or a secret read in progress. */
    let overlaps = 0;
    let preparing = 0;
    const order: string[] = [];
    const results = await takeSnapshots({
      tenants: Array.from({ length: 10 }, (_, i) => tenant(`t${i}`)),
      observedAt: OBSERVED_AT,
      source: 'schedule',
      concurrency: 2,
      deps: {
        store: {
          has: store.has,
          async put(snapshot) {
            putting += 1;
            if (fetching === 2) overlaps += 1;
            await later(15);
            putting -= 1;
            return store.put(snapshot);
          },
        },
        async prepare(t) {
          preparing += 1;
          order.push(`prepare ${t.tenantId}`);
          if (fetching === 2) overlaps += 1;
          await later(5);
          preparing -= 1;
        },
        async fetch(t) {
          order.push(`fetch ${t.tenantId}`);
          fetching += 1;
          peakFetching = Math.max(peakFetching, fetching);
          await later(15);
          fetching -= 1;
          return fetched(t.tenantId);
        },
      },
    });
    expect(results.map((r) => r.status)).toEqual(Array(10).fill('stored'));
    expect(peakFetching).toBe(2);
    expect(overlaps).toBeGreaterThan(0);
    expect([putting, preparing, fetching]).toEqual([0, 0, 0]);
    // Each tenant's secret is read before its KooDrive call.
    for (let i = 0; i < 10; i++) {
      expect(order.indexOf(`prepare t${i}`)).toBeLessThan(order.indexOf(`fetch t${i}`));
    }
  });

  it('a tenant whose secret cannot be read fails alone, without taking a slot', async () => {
    const store = memoryStore();
    const fetchedFor: string[] = [];
    const results = await takeSnapshots({
      tenants: [tenant('a'), tenant('b')],
      observedAt: OBSERVED_AT,
      source: 'schedule',
      concurrency: 1,
      deps: {
        store,
        async prepare(t) {
          if (t.tenantId === 'a') throw new UpstreamTimeoutError('Secrets Manager too slow');
        },
        async fetch(t) {
          fetchedFor.push(t.tenantId);
          return fetched(t.tenantId);
        },
      },
    });
    expect(results.map((r) => [r.tenantId, r.status, r.errorCode])).toEqual([
      ['a', 'failed', 'UPSTREAM_TIMEOUT'],
      ['b', 'stored', undefined],
    ]);
    expect(fetchedFor).toEqual(['b']);
  });

  it('createLimiter runs at most the limit at once and lets the waiting ones go in order', async () => {
    const limit = createLimiter(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        limit(async () => {
          started.push(i);
          running += 1;
          peak = Math.max(peak, running);
          await later(2);
          running -= 1;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('createLimiter hands a freed slot to the task waiting for it, not to one that arrives meanwhile', async () => {
    // A caller that arrives between a release and the waiting task's resumption (a secret read from the
    // cache finishing in those microtasks) must wait too: at every arrival time, at most one runs.
    const peaks: number[] = [];
    for (let hops = 0; hops < 12; hops++) {
      const limit = createLimiter(1);
      let running = 0;
      let peak = 0;
      const task = (until: Promise<void>) => async () => {
        running += 1;
        peak = Math.max(peak, running);
        await until;
        await Promise.resolve();
        running -= 1;
      };
      let finishFirst = () => {};
      const first = limit(task(new Promise<void>((resolve) => (finishFirst = resolve))));
      const waiting = limit(task(Promise.resolve()));
      await Promise.resolve();
      finishFirst();
      const late = (async () => {
        for (let i = 0; i < hops; i++) await Promise.resolve();
        return limit(task(Promise.resolve()));
      })();
      await Promise.all([first, waiting, late]);
      peaks.push(peak);
    }
    expect(peaks).toEqual(peaks.map(() => 1));
  });

  it('createLimiter frees the slot of a task that throws', async () => {
    const limit = createLimiter(1);
    await expect(limit(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limit(async () => 'next')).toBe('next');
  });
});

describe('mapWithConcurrency', () => {
  it('never runs more than the limit at once, uses the whole limit, and keeps the order', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapWithConcurrency(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (item) => {
        running += 1;
        peak = Math.max(peak, running);
        // Yield a few times so that other lanes get to start.
        for (let i = 0; i < 3; i += 1) await Promise.resolve();
        running -= 1;
        return item * 2;
      },
    );
    expect(peak).toBe(3);
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
  });

  it('answers an empty list without calling the worker', async () => {
    let calls = 0;
    expect(await mapWithConcurrency([], 4, async () => (calls += 1))).toEqual([]);
    expect(calls).toBe(0);
  });
});

describe('errorCodeOf', () => {
  it('names product errors by code, others by class, never by message', () => {
    expect(errorCodeOf(new UpstreamTimeoutError('slow'))).toBe('UPSTREAM_TIMEOUT');
    expect(errorCodeOf(new RangeError('appSecret=hunter2'))).toBe('RangeError');
    expect(errorCodeOf('appSecret=hunter2')).toBe('UNKNOWN_ERROR');
  });
});

describe('EventsInProgressError', () => {
  it('says until when the other invocation holds the events, when that is known, and only then', () => {
    const known = new EventsInProgressError('acme', OBSERVED_AT, Date.parse('2026-11-28T04:01:30.000Z'));
    expect(known.message).toContain("tenant 'acme' at 2026-11-28T04:00:00.000Z");
    expect(known.message).toContain('held until 2026-11-28T04:01:30.000Z); a retry after that finishes');
    const unknown = new EventsInProgressError('acme', OBSERVED_AT);
    expect(unknown.message).not.toContain('held until');
    expect(unknown.message).toContain("a later snapshot's run); a retry finishes them if it did not.");
  });
});

describe('leaseFrom', () => {
  it('gives each claimer its own lease, a minute and a fraction of a second from now', () => {
    const now = Date.parse('2026-11-28T04:00:00.000Z');
    const leases = Array.from({ length: 200 }, () => leaseFrom(now));
    // A double near today's epoch ms has about 4 million values in a second: two of 200 draws share
    // one about once in 200 runs, three almost never; whole milliseconds would share ~18.
    expect(new Set(leases).size).toBeGreaterThanOrEqual(leases.length - 1);
    for (const lease of leases) {
      expect(lease).toBeGreaterThanOrEqual(now + PUBLISH_LEASE_MS);
      expect(lease).toBeLessThan(now + PUBLISH_LEASE_MS + 1_000);
      // As DynamoDB stores it and gives it back: the same number.
      expect(Number(String(lease))).toBe(lease);
    }
  });
});
