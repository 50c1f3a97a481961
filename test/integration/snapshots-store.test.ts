import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, InvalidRequestError } from '../../lib/errors.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { decodeCursor, encodeCursor } from '../../lib/snapshots/cursor.ts';
import { type SnapshotJobDeps, takeSnapshots } from '../../lib/snapshots/job.ts';
import {
  createDynamoSnapshotStore,
  MalformedSnapshotItemError,
  type Snapshot,
  type SnapshotStore,
} from '../../lib/snapshots/store.ts';
import type { ThresholdCrossing } from '../../lib/thresholds.ts';
import {
  type Dynalite,
  localDynamoClient,
  startDynalite,
  TEST_CREDENTIALS,
  TEST_REGION,
} from './snapshots-support.ts';

const CURSOR_KEY = 'test-cursor-key';
const RETENTION_DAYS = 400;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const MINUTE = 60_000;

let dynamo: Dynalite;
let tableNumber = 0;
let tableName: string;
let store: SnapshotStore;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function snapshot(
  tenantId: string,
  observedAt: string,
  allocated = 1000,
  overrides: Partial<Snapshot> = {},
): Snapshot {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: [
      { type: '1', allocateCapacity: String(allocated), totalCapacity: '4000' },
      { type: '0', allocateCapacity: '300', totalCapacity: '0' },
    ],
  });
  return {
    tenantId,
    observedAt,
    fetchedAt: iso(Date.parse(observedAt) + 1234),
    spaces,
    totals,
    source: 'schedule',
    traceId: 'a'.repeat(58),
    ...overrides,
  };
}

type SnapshotClient = Parameters<typeof createDynamoSnapshotStore>[0]['client'];

/** The store on this test's table, at `now`, through `client` (a faulty one, say). */
function makeStore(now: () => number = () => T0, client: SnapshotClient = dynamo.client): SnapshotStore {
  return createDynamoSnapshotStore({
    client,
    tableName,
    retentionDays: RETENTION_DAYS,
    cursorKey: CURSOR_KEY,
    now,
  });
}

/** Puts `count` snapshots one minute apart from T0 and returns their observedAt values. */
async function seed(tenantId: string, count: number, target: SnapshotStore = store): Promise<string[]> {
  const times = Array.from({ length: count }, (_, i) => iso(T0 + i * MINUTE));
  for (const [i, time] of times.entries())
    expect(await target.put(snapshot(tenantId, time, 100 + i))).toBe('stored');
  return times;
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected the promise to reject');
}

beforeAll(async () => {
  dynamo = await startDynalite();
});

afterAll(async () => {
  await dynamo?.close();
});

beforeEach(async () => {
  // A fresh table per test: no test sees another's items.
  tableNumber += 1;
  tableName = `snapshots-${tableNumber}`;
  await dynamo.createSnapshotTable(tableName);
  store = makeStore();
});

describe('put', () => {
  it('stores the compact item with a TTL counted from observedAt, and nothing else', async () => {
    const observedAt = '2026-11-28T04:00:00.000Z';
    expect(await store.put(snapshot('acme', observedAt))).toBe('stored');
    const { Item } = await dynamo.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { tenantId: { S: 'acme' }, observedAt: { S: observedAt } },
      }),
    );
    expect(Item).toEqual({
      tenantId: { S: 'acme' },
      observedAt: { S: observedAt },
      fetchedAt: { S: '2026-11-28T04:00:01.234Z' },
      expiresAt: { N: String(Date.parse(observedAt) / 1000 + RETENTION_DAYS * 86_400) },
      spaces: {
        L: [
          { M: { type: { N: '0' }, allocatedGB: { N: '300' }, totalGB: { N: '0' } } },
          { M: { type: { N: '1' }, allocatedGB: { N: '1000' }, totalGB: { N: '4000' } } },
        ],
      },
      source: { S: 'schedule' },
      traceId: { S: 'a'.repeat(58) },
    });
    // 2026-11-28T04:00:00Z + 400 days = 2028-01-02T04:00:00Z.
    expect(Number(Item?.expiresAt?.N)).toBe(Date.parse('2028-01-02T04:00:00Z') / 1000);
  });

  it("answers 'duplicate' for the same tenant and observedAt and keeps the first item", async () => {
    const observedAt = '2026-11-28T04:00:00.000Z';
    expect(await store.put(snapshot('acme', observedAt, 1000))).toBe('stored');
    // Another delivery: its own KooDrive call, so its own trace id and fetch time.
    expect(
      await store.put(
        snapshot('acme', observedAt, 2000, {
          source: 'sqs',
          traceId: 'b'.repeat(58),
          fetchedAt: '2026-11-28T04:00:09.000Z',
        }),
      ),
    ).toBe('duplicate');
    const page = await store.query({
      tenantId: 'acme',
      from: new Date(T0),
      to: new Date(observedAt),
      limit: 10,
    });
    expect(page.items).toHaveLength(1);
    expect(page.items[0]?.spaces[1]?.allocatedGB).toBe(1000);
    // Another tenant at the same time is another snapshot.
    expect(await store.put(snapshot('beta', observedAt))).toBe('stored');
  });

  it("answers 'stored' when its own write went through but the answer was lost and the SDK's retry found it", async () => {
    // DynamoDB applied the PutItem, the answer never arrived (a socket reset, the SDK's requestTimeout),
    // and the SDK sent the same PutItem again: its condition now fails on this very write.
    const replaying = {
      send: async (command: unknown, options?: unknown) => {
        if (command instanceof PutItemCommand) await dynamo.client.send(command, options as never);
        return dynamo.client.send(command as never, options as never);
      },
    };
    const retried = makeStore(undefined, replaying as never);
    const observedAt = '2026-11-28T04:00:00.000Z';
    expect(await retried.put(snapshot('acme', observedAt))).toBe('stored');
    // Another delivery's write (its own KooDrive call, so its own trace id) is still a duplicate.
    expect(await store.put(snapshot('acme', observedAt, 2000, { traceId: 'b'.repeat(58) }))).toBe(
      'duplicate',
    );
  });

  it('lets the job store and announce a snapshot whose put the SDK retried after a lost answer', async () => {
    let replay = false;
    const client = {
      send: async (command: unknown, options?: unknown) => {
        if (replay && command instanceof PutItemCommand) await dynamo.client.send(command, options as never);
        return dynamo.client.send(command as never, options as never);
      },
    };
    const retried = makeStore(undefined, client as never);
    const published: ThresholdCrossing[] = [];
    let allocated = 10;
    let call = 0;
    const deps: SnapshotJobDeps = {
      store: retried,
      thresholds: {
        thresholds: [0.8],
        publish: async (crossings) => {
          published.push(...crossings);
          return { published: [...crossings], failed: [] };
        },
      },
      fetch: async (tenant) => {
        const { spaces, totals } = normalizeAllocation({
          code: 0,
          data: { type: 0, allocateCapacity: allocated, totalCapacity: 20 },
        });
        call += 1;
        return {
          allocation: { tenantId: tenant.tenantId, observedAt: iso(T0 + call), spaces, totals },
          traceId: `trace-${call}`,
          attempts: 1,
        };
      },
    };
    const tenants = [{ tenantId: 'acme', secretId: 'koodrive/acme' }];
    const run = (observedAt: string) =>
      takeSnapshots({ tenants, observedAt, source: 'schedule', deps, concurrency: 1 });
    expect((await run(iso(T0))).map((r) => r.status)).toEqual(['stored']);
    allocated = 18;
    replay = true;
    const [result] = await run(iso(T0 + 60 * MINUTE));
    // Not 'failed' with EventsInProgressError (its own lease read as another invocation's), nothing published.
    expect(result).toMatchObject({ status: 'stored' });
    expect(result?.error).toBeUndefined();
    expect(published.map((c) => `${c.spaceType}:${c.direction}`).sort()).toEqual([
      'department:up',
      'totals:up',
    ]);
    expect((await retried.thresholdHead('acme'))?.observedAt).toBe(iso(T0 + 60 * MINUTE));
  });

  it('refuses an observedAt that would not sort as a key', async () => {
    const error = await errorOf(store.put(snapshot('acme', '2026-11-28T04:00:00Z')));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain('2026-11-28T04:00:00.000Z');
  });

  it('has() tells whether a snapshot exists at exactly that time', async () => {
    const observedAt = '2026-11-28T04:00:00.000Z';
    expect(await store.has('acme', observedAt)).toBe(false);
    await store.put(snapshot('acme', observedAt));
    expect(await store.has('acme', observedAt)).toBe(true);
    expect(await store.has('acme', '2026-11-28T04:00:00.001Z')).toBe(false);
    expect(await store.has('beta', observedAt)).toBe(false);
  });

  it('storedAmong() finds the stored tenants of a time among more than one batch of 100', async () => {
    const observedAt = '2026-11-28T04:15:00.000Z';
    const tenants = Array.from({ length: 230 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    const storedIds = tenants.filter((_, i) => i % 7 === 0 || i === 229);
    for (const id of storedIds) await store.put(snapshot(id, observedAt));
    await store.put(snapshot('t001', '2026-11-28T04:30:00.000Z'));
    const found = await store.storedAmong([...tenants, 't000'], observedAt);
    expect([...found].sort()).toEqual(storedIds);
    expect(await store.storedAmong([], observedAt)).toEqual(new Set());
  });
});

describe('query', () => {
  it('reads items back as the contract Allocation with fetchedAt, derived fields recomputed', async () => {
    const written = snapshot('acme', iso(T0));
    await store.put(written);
    const page = await store.query({ tenantId: 'acme', from: new Date(T0), to: new Date(T0), limit: 10 });
    expect(page).toEqual({
      items: [
        {
          tenantId: 'acme',
          observedAt: written.observedAt,
          fetchedAt: written.fetchedAt,
          spaces: written.spaces,
          totals: written.totals,
        },
      ],
      nextCursor: null,
    });
    expect(page.items[0]?.spaces[0]).toEqual({
      type: 0,
      typeName: 'department',
      allocatedGB: 300,
      totalGB: 0,
      unallocatedGB: -300,
      allocatedRatio: null,
      overAllocated: true,
    });
    expect(JSON.stringify(page)).not.toContain('traceId');
  });

  it('reads back a space type KooDrive does not document, a negative one too', async () => {
    const { spaces, totals } = normalizeAllocation({
      code: 0,
      data: [
        { type: -1, allocateCapacity: 1, totalCapacity: 2 },
        { type: 0, allocateCapacity: 3, totalCapacity: 4 },
      ],
    });
    const written = { ...snapshot('acme', iso(T0)), spaces, totals };
    expect(await store.put(written)).toBe('stored');
    const page = await store.query({ tenantId: 'acme', from: new Date(T0), to: new Date(T0), limit: 10 });
    expect(page.items[0]?.spaces).toEqual(spaces);
    expect(page.items[0]?.spaces[0]).toMatchObject({ type: -1, typeName: 'unknown' });
    expect((await store.latest('acme'))?.spaces).toEqual(spaces);
  });

  it('stores a size closer to 0 than DynamoDB can hold (1e-130) as 0, instead of failing the write', async () => {
    const { spaces, totals } = normalizeAllocation({
      code: 0,
      data: [
        { type: 0, allocateCapacity: '1e-200', totalCapacity: '2' },
        { type: 1, allocateCapacity: '1e-130', totalCapacity: '5e-324' },
        { type: 2, allocateCapacity: '9.99e-131', totalCapacity: '1e15' },
      ],
    });
    expect(spaces[0]?.allocatedGB).toBe(1e-200);
    expect(await store.put({ ...snapshot('acme', iso(T0)), spaces, totals })).toBe('stored');
    const page = await store.query({ tenantId: 'acme', from: new Date(T0), to: new Date(T0), limit: 10 });
    expect(page.items[0]?.spaces.map((space) => [space.allocatedGB, space.totalGB])).toEqual([
      [0, 2],
      [1e-130, 0],
      [0, 1e15],
    ]);
  });

  it('reads only what an Allocation needs: DynamoDB sends no trace id, source, expiry or pending events', async () => {
    await store.put(
      snapshot('acme', iso(T0), 1000, {
        pendingEvents: [
          {
            tenantId: 'acme',
            spaceType: 'totals',
            threshold: 0.8,
            direction: 'up',
            previousRatio: 0.7,
            ratio: 0.85,
            observedAt: iso(T0),
            crossingId: 'x'.repeat(64),
          },
        ],
        pendingAgainst: iso(T0 - MINUTE),
        pendingLeaseUntil: T0 + MINUTE,
      }),
    );
    const sent: string[][] = [];
    dynamo.client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const items = (result.output as { Items?: Record<string, unknown>[] }).Items ?? [];
        for (const item of items) sent.push(Object.keys(item).sort());
        return result;
      },
      { step: 'initialize', name: 'captureItems' },
    );
    try {
      await store.query({ tenantId: 'acme', from: new Date(T0), to: new Date(T0), limit: 10 });
      await store.latest('acme');
    } finally {
      dynamo.client.middlewareStack.remove('captureItems');
    }
    // Stored with all of them, though.
    const stored = await dynamo.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { tenantId: { S: 'acme' }, observedAt: { S: iso(T0) } },
      }),
    );
    expect(Object.keys(stored.Item ?? {})).toEqual(
      expect.arrayContaining([
        'traceId',
        'source',
        'expiresAt',
        'pendingEvents',
        'pendingAgainst',
        'pendingLease',
      ]),
    );
    expect(sent).toEqual([
      ['fetchedAt', 'observedAt', 'spaces', 'tenantId'],
      ['fetchedAt', 'observedAt', 'spaces', 'tenantId'],
    ]);
  });

  it('includes both boundaries and nothing outside them, oldest first, only the tenant asked for', async () => {
    const times = await seed('acme', 5);
    await seed('beta', 5);
    const page = await store.query({
      tenantId: 'acme',
      from: new Date(times[1] ?? ''),
      to: new Date(times[3] ?? ''),
      limit: 100,
    });
    expect(page.items.map((item) => item.observedAt)).toEqual([times[1], times[2], times[3]]);
    expect(page.items.every((item) => item.tenantId === 'acme')).toBe(true);
    expect(page.nextCursor).toBeNull();
    const justInside = await store.query({
      tenantId: 'acme',
      from: new Date(T0 + MINUTE - 1),
      to: new Date(T0 + 3 * MINUTE - 1),
      limit: 100,
    });
    expect(justInside.items.map((item) => item.observedAt)).toEqual([times[1], times[2]]);
  });

  it('pages through more than one page without gaps or duplicates, with no empty last page', async () => {
    const times = await seed('acme', 23);
    for (const limit of [1, 5, 7, 23, 24]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.query({
          tenantId: 'acme',
          from: new Date(T0),
          to: new Date(T0 + 60 * MINUTE),
          limit,
          ...(cursor === undefined ? {} : { cursor }),
        });
        pages += 1;
        expect(page.items.length).toBeGreaterThan(0);
        expect(page.items.length).toBeLessThanOrEqual(limit);
        seen.push(...page.items.map((item) => item.observedAt));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      expect(seen).toEqual(times);
      expect(pages).toBe(Math.ceil(23 / limit));
    }
  });

  it('pages newest first when asked, the cursor going on backwards', async () => {
    const times = await seed('acme', 9);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.query({
        tenantId: 'acme',
        from: new Date(T0),
        to: new Date(T0 + 60 * MINUTE),
        limit: 4,
        newestFirst: true,
        ...(cursor === undefined ? {} : { cursor }),
      });
      seen.push(...page.items.map((item) => item.observedAt));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    expect(seen).toEqual([...times].reverse());
  });

  it('answers an empty page for an empty range', async () => {
    await seed('acme', 3);
    const page = await store.query({
      tenantId: 'acme',
      from: new Date(T0 + 10 * MINUTE),
      to: new Date(T0 + 20 * MINUTE),
      limit: 5,
    });
    expect(page).toEqual({ items: [], nextCursor: null });
  });

  it('reads the retention only to write: a wrong SNAPSHOT_RETENTION_DAYS leaves reads working', async () => {
    await seed('acme', 2);
    const wrong = () => {
      throw new ConfigurationError(
        "SNAPSHOT_RETENTION_DAYS is 'abc': it must be a whole number from 1 to 36500.",
      );
    };
    const misconfigured = createDynamoSnapshotStore({
      client: dynamo.client,
      tableName,
      retentionDays: wrong,
      cursorKey: CURSOR_KEY,
      now: () => T0,
    });
    const page = await misconfigured.query({
      tenantId: 'acme',
      from: new Date(T0),
      to: new Date(T0 + MINUTE),
      limit: 5,
    });
    expect(page.items).toHaveLength(2);
    expect((await misconfigured.latest('acme'))?.observedAt).toBe(iso(T0 + MINUTE));
    // The write fails as the configuration error it is, not as a DynamoDB failure.
    await expect(misconfigured.put(snapshot('acme', iso(T0 + 2 * MINUTE), 1))).rejects.toThrow(
      ConfigurationError,
    );
  });

  it('leaves out snapshots past their TTL that DynamoDB has not deleted yet, and still fills pages', async () => {
    await seed('acme', 10);
    // Half a minute before the 4th snapshot expires, as seen 400 days later: the first 3 are expired.
    const later = makeStore(() => T0 + RETENTION_DAYS * 86_400_000 + 3 * MINUTE - 30_000);
    const first = await later.query({
      tenantId: 'acme',
      from: new Date(T0),
      to: new Date(T0 + 9 * MINUTE),
      limit: 4,
    });
    expect(first.items.map((item) => item.observedAt)).toEqual([3, 4, 5, 6].map((i) => iso(T0 + i * MINUTE)));
    expect(first.nextCursor).not.toBeNull();
    const second = await later.query({
      tenantId: 'acme',
      from: new Date(T0),
      to: new Date(T0 + 9 * MINUTE),
      limit: 4,
      cursor: first.nextCursor ?? '',
    });
    expect(second.items.map((item) => item.observedAt)).toEqual([7, 8, 9].map((i) => iso(T0 + i * MINUTE)));
    expect(second.nextCursor).toBeNull();
  });

  describe('cursors', () => {
    async function firstPage() {
      await seed('acme', 6);
      await seed('beta', 6);
      const range = { from: new Date(T0), to: new Date(T0 + 10 * MINUTE) };
      const page = await store.query({ tenantId: 'acme', ...range, limit: 2 });
      const cursor = page.nextCursor;
      if (cursor === null) throw new Error('expected a next page');
      return { range, cursor };
    }

    it('binds the cursor to the tenant', async () => {
      const { range, cursor } = await firstPage();
      const error = await errorOf(store.query({ tenantId: 'beta', ...range, limit: 2, cursor }));
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect(error.message).toContain("another tenant's history");
    });

    it('binds the cursor to the range', async () => {
      const { range, cursor } = await firstPage();
      const error = await errorOf(
        store.query({ tenantId: 'acme', from: range.from, to: new Date(T0 + 11 * MINUTE), limit: 2, cursor }),
      );
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect(error.message).toContain(
        'was issued for from=2026-11-01T00:00:00.000Z and to=2026-11-01T00:10:00.000Z',
      );
    });

    it('refuses a forged cursor: a payload edited to skip ahead, or signed with another key', async () => {
      const { range, cursor } = await firstPage();
      const state = decodeCursor(CURSOR_KEY, cursor);
      const [, signature] = cursor.split('.');
      const edited = encodeCursor('another-key', {
        ...state,
        lastKey: { tenantId: 'acme', observedAt: iso(T0 + 4 * MINUTE) },
      });
      const spliced = `${edited.split('.')[0]}.${signature}`;
      for (const forged of [edited, spliced]) {
        const error = await errorOf(store.query({ tenantId: 'acme', ...range, limit: 2, cursor: forged }));
        expect(error).toBeInstanceOf(InvalidRequestError);
        expect(error.message).toContain('was not issued by this service');
      }
    });

    it('refuses malformed cursors', async () => {
      const { range } = await firstPage();
      for (const cursor of ['', 'abc', 'not a cursor', '..', `${'a'.repeat(2000)}.b`]) {
        const error = await errorOf(store.query({ tenantId: 'acme', ...range, limit: 2, cursor }));
        expect(error).toBeInstanceOf(InvalidRequestError);
        expect(error.message).toMatch(/^cursor /);
      }
    });
  });
});

describe('latest', () => {
  it('answers the newest snapshot of that tenant only, or nothing', async () => {
    expect(await store.latest('acme')).toBeUndefined();
    const times = await seed('acme', 4);
    await store.put(snapshot('acme', iso(T0 - MINUTE), 999));
    await store.put(snapshot('beta', iso(T0 + 99 * MINUTE)));
    const newest = await store.latest('acme');
    expect(newest?.observedAt).toBe(times[3]);
    expect(newest?.spaces[1]?.allocatedGB).toBe(103);
  });
});

describe('threshold head', () => {
  it('moves only from the value it was read at, and stays out of every time range', async () => {
    const [first, second, third] = [
      snapshot('acme', iso(T0), 100),
      snapshot('acme', iso(T0 + MINUTE), 3000),
      snapshot('acme', iso(T0 + 2 * MINUTE), 200),
    ];
    if (first === undefined || second === undefined || third === undefined) throw new Error('unreachable');
    for (const s of [first, second, third]) await store.put(s);
    expect(await store.thresholdHead('acme')).toBeUndefined();
    expect(await store.advanceThresholdHead('acme', undefined, first)).toBe(true);
    // Two invocations that both saw no head, or both saw `first`: only one moves it.
    expect(await store.advanceThresholdHead('acme', undefined, second)).toBe(false);
    expect(await store.advanceThresholdHead('acme', first.observedAt, second)).toBe(true);
    expect(await store.advanceThresholdHead('acme', first.observedAt, third)).toBe(false);
    const head = await store.thresholdHead('acme');
    expect(head?.observedAt).toBe(second.observedAt);
    expect(head?.allocation.totals).toEqual(second.totals);
    expect(head?.allocation.spaces).toEqual(second.spaces);
    // The head is not a snapshot: not the newest, not in any history page, not another tenant's.
    expect((await store.latest('acme'))?.observedAt).toBe(third.observedAt);
    const page = await store.query({
      tenantId: 'acme',
      from: new Date(0),
      to: new Date('9999-12-31T23:59:59.999Z'),
      limit: 10,
    });
    expect(page.items.map((item) => item.observedAt)).toEqual(
      [first, second, third].map((s) => s.observedAt),
    );
    expect(await store.thresholdHead('beta')).toBeUndefined();
  });
});

describe("the threshold head's owed list", () => {
  it('grows by a move that owes events, keeps its entries through later moves, and loses them when forgotten', async () => {
    const [first, second, third] = [
      snapshot('acme', iso(T0), 100),
      snapshot('acme', iso(T0 + MINUTE), 3000),
      snapshot('acme', iso(T0 + 2 * MINUTE), 200),
    ];
    if (first === undefined || second === undefined || third === undefined) throw new Error('unreachable');
    expect(await store.advanceThresholdHead('acme', undefined, first, true)).toBe(true);
    expect(await store.advanceThresholdHead('acme', first.observedAt, second)).toBe(true);
    // A move that failed its condition adds nothing.
    expect(await store.advanceThresholdHead('acme', first.observedAt, third, true)).toBe(false);
    expect(await store.advanceThresholdHead('acme', second.observedAt, third, true)).toBe(true);
    const head = await store.thresholdHead('acme');
    expect(head?.observedAt).toBe(third.observedAt);
    expect(head?.allocation.totals).toEqual(third.totals);
    expect(head?.owed).toEqual([first.observedAt, third.observedAt]);
    await store.forgetOwed('acme', third.observedAt);
    await store.forgetOwed('acme', first.observedAt);
    expect((await store.thresholdHead('acme'))?.owed).toEqual([]);
    // Forgetting again, or for a tenant with no head, changes nothing and creates no head.
    await store.forgetOwed('acme', first.observedAt);
    await store.forgetOwed('beta', first.observedAt);
    expect((await store.thresholdHead('acme'))?.observedAt).toBe(third.observedAt);
    expect(await store.thresholdHead('beta')).toBeUndefined();
  });
});

describe('what a snapshot was compared with', () => {
  it('is read back with the snapshot and its pending events, and kept once they are published', async () => {
    const at = iso(T0 + MINUTE);
    const crossing = {
      tenantId: 'acme',
      spaceType: 'totals',
      threshold: 0.8,
      direction: 'up' as const,
      previousRatio: 0.7,
      ratio: 0.85,
      observedAt: at,
      crossingId: 'c'.repeat(64),
    };
    await store.put(
      snapshot('acme', at, 100, {
        comparedWith: iso(T0),
        pendingEvents: [crossing],
        pendingAgainst: iso(T0),
        pendingLeaseUntil: T0 + MINUTE,
      }),
    );
    const state = await store.snapshotState('acme', at);
    expect(state?.comparedWith).toBe(iso(T0));
    expect(state?.pendingEvents).toEqual([crossing]);
    expect(state?.allocation.observedAt).toBe(at);
    expect(await store.settlePendingEvents('acme', at, [], T0 + MINUTE)).toBe(true);
    expect(await store.snapshotState('acme', at)).toMatchObject({ pendingEvents: [], comparedWith: iso(T0) });
    // Compared again with a newer head: that is what it compares with now. Only from the state read:
    // a caller that read another comparedWith (someone compared it again meanwhile) changes nothing.
    expect(
      await store.replacePendingEvents('acme', at, [crossing], iso(T0 + 30_000), T0 + MINUTE, iso(T0 - 1)),
    ).toBe(false);
    expect(await store.replacePendingEvents('acme', at, [], iso(T0 + 30_000), T0 + MINUTE, iso(T0))).toBe(
      true,
    );
    expect((await store.snapshotState('acme', at))?.comparedWith).toBe(iso(T0 + 30_000));
    expect(
      await store.replacePendingEvents('acme', at, [crossing], iso(T0 + 40_000), T0 + MINUTE, iso(T0)),
    ).toBe(false);
    expect(await store.snapshotState('acme', at)).toMatchObject({
      pendingEvents: [],
      comparedWith: iso(T0 + 30_000),
    });
    expect(await store.snapshotState('acme', iso(T0 + 5 * MINUTE))).toBeUndefined();
  });

  it('tells whether the head moved on from a snapshot: a later one, up to a time, was compared with it', async () => {
    const times = [0, 1, 2, 3].map((i) => iso(T0 + i * MINUTE));
    const [t0 = '', t1 = '', t2 = '', t3 = ''] = times;
    await store.put(snapshot('acme', t0));
    await store.put(snapshot('acme', t1, 100, { comparedWith: t0 }));
    await store.put(snapshot('acme', t3, 100, { comparedWith: t1 }));
    await store.put(snapshot('beta', t2, 100, { comparedWith: t0 }));
    expect(await store.headMovedOnFrom('acme', t0, t3)).toBe(true);
    expect(await store.headMovedOnFrom('acme', t1, t3)).toBe(true);
    expect(await store.headMovedOnFrom('acme', t1, t2)).toBe(false);
    expect(await store.headMovedOnFrom('acme', t3, t3)).toBe(false);
    expect(await store.headMovedOnFrom('beta', t1, t3)).toBe(false);
  });
});

describe('pending threshold events', () => {
  const at = iso(T0);
  const crossing = (threshold: number) => ({
    tenantId: 'acme',
    spaceType: 'totals',
    threshold,
    direction: 'up' as const,
    previousRatio: 0.5,
    ratio: 0.95,
    observedAt: at,
    crossingId: `c-${threshold}`,
  });

  it('lets one invocation hold them at a time, until its lease runs out', async () => {
    const events = [crossing(0.8), crossing(0.9)];
    await store.put(snapshot('acme', at, 100, { pendingEvents: events, pendingLeaseUntil: T0 + 1_000 }));
    // The writer holds them: another delivery is told so, with the lease's end.
    expect(await store.claimPendingEvents('acme', at, T0 + 60_000, T0 + 500)).toEqual({
      state: 'held',
      leaseUntil: T0 + 1_000,
    });
    // The writer died; after its lease anyone may take them over.
    expect(await store.claimPendingEvents('acme', at, T0 + 61_000, T0 + 1_001)).toMatchObject({
      state: 'claimed',
      events,
      leaseUntil: T0 + 61_000,
      against: undefined,
      snapshot: { tenantId: 'acme', observedAt: at, totals: { allocatedGB: 400 } },
    });
    // The first writer comes back too late: its settle changes nothing.
    expect(await store.settlePendingEvents('acme', at, [], T0 + 1_000)).toBe(false);
    expect(await store.pendingEvents('acme', at)).toEqual(events);
    // The new holder keeps only what EventBridge refused, and gives the lease up.
    expect(await store.settlePendingEvents('acme', at, [crossing(0.9)], T0 + 61_000)).toBe(true);
    expect(await store.pendingEvents('acme', at)).toEqual([crossing(0.9)]);
    const claim = await store.claimPendingEvents('acme', at, T0 + 70_000, T0 + 2_000);
    expect(claim).toMatchObject({ state: 'claimed', events: [crossing(0.9)], leaseUntil: T0 + 70_000 });
    expect(await store.settlePendingEvents('acme', at, [], T0 + 70_000)).toBe(true);
    expect(await store.pendingEvents('acme', at)).toEqual([]);
    // The same settle again (its first answer lost, the SDK retrying): the item is as asked, so it is done.
    expect(await store.settlePendingEvents('acme', at, [], T0 + 70_000)).toBe(true);
    expect(await store.claimPendingEvents('acme', at, T0 + 80_000, T0 + 3_000)).toEqual({ state: 'none' });
  });

  it('replaces them when computed again, keeps what they were computed against, and respects a lease', async () => {
    await store.put(
      snapshot('acme', at, 100, { pendingEvents: [crossing(0.8)], pendingLeaseUntil: T0 + 1_000 }),
    );
    // Another holder's lease: refused.
    expect(await store.replacePendingEvents('acme', at, [crossing(0.9)], 'x', T0 + 5_000, undefined)).toBe(
      false,
    );
    expect(
      await store.replacePendingEvents('acme', at, [crossing(0.9)], iso(T0 - MINUTE), T0 + 1_000, undefined),
    ).toBe(true);
    expect(await store.pendingEvents('acme', at)).toEqual([crossing(0.9)]);
    expect(await store.claimPendingEvents('acme', at, T0 + 9_000, T0 + 2_000)).toMatchObject({
      state: 'claimed',
      against: iso(T0 - MINUTE),
    });
    // None left: the events, the lease and what they were computed against go.
    expect(await store.replacePendingEvents('acme', at, [], undefined, T0 + 9_000, iso(T0 - MINUTE))).toBe(
      true,
    );
    expect(await store.pendingEvents('acme', at)).toEqual([]);
    expect(await store.claimPendingEvents('acme', at, T0 + 20_000, T0 + 10_000)).toEqual({ state: 'none' });
  });

  // The SDK retries a write whose answer was lost (a reset, a timeout) with the same request: that
  // retry finds its own write already made, and must read it as made, not as another holder's.
  it('reads the retry of its own claim, whose answer was lost, as claimed; another claimer still waits', async () => {
    const events = [crossing(0.8)];
    await store.put(snapshot('acme', at, 100, { pendingEvents: events }));
    const lease = T0 + 60_000.375;
    const first = await store.claimPendingEvents('acme', at, lease, T0);
    expect(first).toMatchObject({ state: 'claimed', events, leaseUntil: lease });
    expect(await store.claimPendingEvents('acme', at, lease, T0)).toEqual(first);
    expect(await store.claimPendingEvents('acme', at, T0 + 60_000.5, T0 + 1)).toEqual({
      state: 'held',
      leaseUntil: lease,
    });
  });

  it('claims and rewrites through the SDK’s own retry when DynamoDB applied a write but its answer was lost', async () => {
    // The client as the functions have it (the SDK retries a reset connection), on a network that loses
    // the answer to each first UpdateItem after DynamoDB applied it.
    const base = localDynamoClient(dynamo.url);
    const inner = base.config.requestHandler as unknown as {
      handle(request: { headers: Record<string, string> }, options?: unknown): Promise<unknown>;
    };
    let updates = 0;
    const lossy = new DynamoDBClient({
      endpoint: dynamo.url,
      region: TEST_REGION,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 3,
      requestHandler: {
        async handle(request: { headers: Record<string, string> }, options?: unknown) {
          const answer = await inner.handle(request, options);
          if (request.headers['x-amz-target']?.endsWith('.UpdateItem') && ++updates % 2 === 1) {
            throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          }
          return answer;
        },
      } as never,
    });
    try {
      const lossyStore = makeStore(undefined, lossy);
      await store.put(
        snapshot('acme', at, 100, { pendingEvents: [crossing(0.8)], comparedWith: iso(T0 - MINUTE) }),
      );
      const lease = T0 + 60_000.125;
      expect(await lossyStore.claimPendingEvents('acme', at, lease, T0)).toMatchObject({
        state: 'claimed',
        events: [crossing(0.8)],
        leaseUntil: lease,
      });
      expect(updates).toBe(2);
      expect(
        await lossyStore.replacePendingEvents(
          'acme',
          at,
          [crossing(0.9)],
          iso(T0 - 30_000),
          lease,
          iso(T0 - MINUTE),
        ),
      ).toBe(true);
      expect(updates).toBe(4);
      expect(await store.snapshotState('acme', at)).toMatchObject({
        pendingEvents: [crossing(0.9)],
        comparedWith: iso(T0 - 30_000),
      });
    } finally {
      lossy.destroy();
      base.destroy();
    }
  });

  it('reads the retry of its own replacement, whose answer was lost, as written; another writer is refused', async () => {
    await store.put(
      snapshot('acme', at, 100, { pendingEvents: [crossing(0.8)], comparedWith: iso(T0 - 2 * MINUTE) }),
    );
    const lease = T0 + 60_000.625;
    const replace = () =>
      store.replacePendingEvents('acme', at, [crossing(0.9)], iso(T0 - MINUTE), lease, iso(T0 - 2 * MINUTE));
    expect(await replace()).toBe(true);
    expect(await replace()).toBe(true);
    expect(await store.snapshotState('acme', at)).toMatchObject({
      pendingEvents: [crossing(0.9)],
      comparedWith: iso(T0 - MINUTE),
    });
    // Another delivery that read the same state, with its own lease: the events are this one's.
    expect(
      await store.replacePendingEvents(
        'acme',
        at,
        [crossing(0.9)],
        iso(T0 - MINUTE),
        T0 + 60_000.75,
        iso(T0 - 2 * MINUTE),
      ),
    ).toBe(false);
    // None left, against a newer head: the retry finds nothing pending and that head compared with.
    const clear = () => store.replacePendingEvents('acme', at, [], iso(T0 - 30_000), lease, iso(T0 - MINUTE));
    expect(await clear()).toBe(true);
    expect(await clear()).toBe(true);
    expect(await store.snapshotState('acme', at)).toMatchObject({
      pendingEvents: [],
      comparedWith: iso(T0 - 30_000),
    });
  });

  it('has nothing to claim for a snapshot without events, or no snapshot', async () => {
    await store.put(snapshot('acme', at));
    expect(await store.claimPendingEvents('acme', at, T0 + 60_000, T0)).toEqual({ state: 'none' });
    expect(await store.claimPendingEvents('acme', iso(T0 + MINUTE), T0 + 60_000, T0)).toEqual({
      state: 'none',
    });
    // A claim attempt on a missing key must not create an item.
    expect(await store.latest('acme')).toMatchObject({ observedAt: at });
  });
});

describe('items written by something else', () => {
  it('reports a malformed item instead of answering wrong numbers', async () => {
    await dynamo.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: {
          tenantId: { S: 'acme' },
          observedAt: { S: iso(T0) },
          spaces: { L: [{ M: { type: { N: '0' }, allocatedGB: { S: 'lots' }, totalGB: { N: '10' } } }] },
        },
      }),
    );
    const error = await errorOf(
      store.query({ tenantId: 'acme', from: new Date(T0), to: new Date(T0), limit: 1 }),
    );
    expect(error).toBeInstanceOf(MalformedSnapshotItemError);
    expect(error.message).toContain('spaces[0].allocatedGB is not a non-negative number');
  });
});
