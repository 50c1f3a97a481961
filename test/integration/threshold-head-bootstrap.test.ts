/**
 * A tenant with snapshots but no threshold head (stored while no event bus was set, before the head
 * existed, or its first run stopped before creating it): the job on the real DynamoDB store
 * (dynalite), with gates that decide the interleaving and a recording publisher. Each crossing is
 * announced once: the first run gives the tenant a head at its newest snapshot before comparing.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { FetchedAllocation } from '../../lib/allocation.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { type SnapshotJobDeps, type SnapshotResult, snapshotTargets } from '../../lib/snapshots/job.ts';
import { createDynamoSnapshotStore, type Snapshot, type SnapshotStore } from '../../lib/snapshots/store.ts';
import { findThresholdCrossings, type ThresholdCrossing } from '../../lib/thresholds.ts';
import { type Dynalite, startDynalite } from './snapshots-support.ts';

let dynamo: Dynalite;
let n = 0;
let store: SnapshotStore;
const TENANT = { tenantId: 'acme', secretId: 'koodrive/acme' };

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo?.close();
});
beforeEach(async () => {
  n += 1;
  await dynamo.createSnapshotTable(`head-bootstrap-${n}`);
  store = createDynamoSnapshotStore({
    client: dynamo.client,
    tableName: `head-bootstrap-${n}`,
    retentionDays: 400,
    cursorKey: 'k',
  });
});

function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

function allocationOf(percent: number, observedAt: string) {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: [{ type: 0, allocateCapacity: String(percent), totalCapacity: '100' }],
  });
  return { tenantId: TENANT.tenantId, observedAt, spaces, totals };
}

function fetched(percent: number): FetchedAllocation {
  return {
    allocation: allocationOf(percent, new Date().toISOString()),
    traceId: `trace-${Math.random()}`,
    attempts: 1,
  };
}

const published: ThresholdCrossing[] = [];
const publisher = {
  thresholds: [0.8, 0.9, 1],
  publish: async (crossings: readonly ThresholdCrossing[]) => {
    published.push(...crossings);
    return { published: [...crossings], failed: [] };
  },
};

/** One run of the job for `observedAt`, with hooks on the store. */
function run(
  observedAt: string,
  fetch: () => Promise<FetchedAllocation>,
  storeOverrides: Partial<SnapshotStore> = {},
): Promise<SnapshotResult[]> {
  const deps: SnapshotJobDeps = {
    store: { ...store, ...storeOverrides },
    thresholds: publisher,
    fetch,
  };
  return snapshotTargets({ targets: [{ tenant: TENANT, observedAt }], source: 'sqs', deps, concurrency: 1 });
}

function seedSnapshot(percent: number, observedAt: string): Snapshot {
  return {
    ...allocationOf(percent, observedAt),
    fetchedAt: observedAt,
    source: 'schedule',
    traceId: 'seed',
  };
}

const T = (m: number) => new Date(Date.parse('2026-11-28T00:00:00.000Z') + m * 60_000).toISOString();
const summary = () =>
  published.map((c) => `${c.spaceType}:${c.observedAt}:${c.threshold}:${c.direction}:${c.previousRatio}`);

/** Holds a run's own head move (not the head it may create first) until `go` opens. */
function heldAtOwnMove(observedAt: string) {
  const atMove = gate();
  const go = gate();
  const override: Partial<SnapshotStore> = {
    advanceThresholdHead: async (tenantId, from, to, owes) => {
      if (to.observedAt === observedAt) {
        atMove.open();
        await go.opened;
      }
      return store.advanceThresholdHead(tenantId, from, to, owes);
    },
  };
  return { atMove, go, override };
}

it('announces a crossing once when three runs of a tenant without a head overlap', async () => {
  published.length = 0;
  await store.put(seedSnapshot(50, T(0)));
  expect(await store.thresholdHead('acme')).toBeUndefined();

  // Y (t=30) reads its baseline first; its KooDrive call is slow.
  const yFetch = gate();
  const yRun = run(T(30), async () => {
    await yFetch.opened;
    return fetched(85);
  });
  // S (t=10, 85 %) and X (t=20, 86 %) store their snapshots and are held before moving the head.
  const s = heldAtOwnMove(T(10));
  const sRun = run(T(10), async () => fetched(85), s.override);
  await s.atMove.opened;
  const x = heldAtOwnMove(T(20));
  const xRun = run(T(20), async () => fetched(86), x.override);
  await x.atMove.opened;
  // The tenant has a head now, at its newest snapshot before these runs.
  expect((await store.thresholdHead('acme'))?.observedAt).toBe(T(0));

  // Y moves the head T0 → Y and announces 50 % → 85 %; X and S, behind it, announce nothing.
  yFetch.open();
  const [y] = await yRun;
  x.go.open();
  s.go.open();
  const [xr] = await xRun;
  const [sr] = await sRun;
  expect([y?.status, xr?.status, sr?.status]).toEqual(['stored', 'stored', 'stored']);
  expect(summary().sort()).toEqual([`department:${T(30)}:0.8:up:0.5`, `totals:${T(30)}:0.8:up:0.5`]);
});

it('announces the pending crossing of a newest snapshot stored before the tenant had a head, once', async () => {
  published.length = 0;
  await store.put(seedSnapshot(50, T(0)));
  // S (t=10, 85 %) was compared with T0 and its run gave up before any head existed: its 0.8 up is
  // pending on it, unclaimed.
  const s = seedSnapshot(85, T(10));
  const crossings = findThresholdCrossings(allocationOf(50, T(0)), s, publisher.thresholds);
  expect(crossings.map((c) => `${c.spaceType}:${c.threshold}:${c.direction}`).sort()).toEqual([
    'department:0.8:up',
    'totals:0.8:up',
  ]);
  await store.put({ ...s, pendingEvents: crossings, pendingLeaseUntil: 0, comparedWith: T(0) });
  expect(await store.thresholdHead('acme')).toBeUndefined();

  // The next runs: 86 %, 87 % (no crossing between them and S).
  await run(T(20), async () => fetched(86));
  await run(T(30), async () => fetched(87));
  expect(summary().sort()).toEqual([`department:${T(10)}:0.8:up:0.5`, `totals:${T(10)}:0.8:up:0.5`]);
  // Published, then off the owed list.
  expect((await store.thresholdHead('acme'))?.owed).toEqual([]);
  expect((await store.snapshotState('acme', T(10)))?.pendingEvents).toEqual([]);
});
