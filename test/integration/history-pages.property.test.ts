/**
 * History pages under random tables and ranges (fast-check, against dynalite): paging through any range
 * with any limit yields exactly the tenant's unexpired snapshots in it, oldest first, each once, in pages
 * of at most `limit` items, none of them empty unless the range holds nothing.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { createDynamoSnapshotStore, type Snapshot } from '../../lib/snapshots/store.ts';
import { type Dynalite, startDynalite } from './snapshots-support.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-28T04:00:00.000Z');
const RETENTION_DAYS = 1;
const SEED = Number(process.env.HISTORY_PROPERTY_SEED ?? 20261129);
const RUNS = Number(process.env.HISTORY_PROPERTY_RUNS ?? 30);

let dynamo: Dynalite;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
});

afterAll(async () => {
  await dynamo?.close();
});

function snapshot(tenantId: string, at: number): Snapshot {
  return {
    tenantId,
    observedAt: new Date(at).toISOString(),
    fetchedAt: new Date(at + 1_000).toISOString(),
    source: 'schedule',
    traceId: 'p'.repeat(58),
    ...normalizeAllocation({
      code: 0,
      data: [{ type: 0, allocateCapacity: at % 1000, totalCapacity: 1000 }],
    }),
  };
}

/** Offsets in ms before NOW: within the last three days, so some are past the one-day retention. */
const offsets = fc.uniqueArray(
  fc.oneof(
    fc.integer({ min: 0, max: 3 * DAY }),
    // Around the retention boundary, to the millisecond.
    fc.integer({ min: RETENTION_DAYS * DAY - 2_000, max: RETENTION_DAYS * DAY + 2_000 }),
  ),
  { maxLength: 30 },
);

describe('history pages (property)', () => {
  it('page through exactly the unexpired snapshots of a range, oldest first, each once', async () => {
    await fc.assert(
      fc.asyncProperty(
        offsets,
        offsets,
        // A range end anywhere, or exactly on one of the tenant's snapshots (the bounds are inclusive).
        fc.oneof(
          fc.integer({ min: 0, max: 3 * DAY }),
          fc.nat().map((n) => -1 - n),
        ),
        fc.oneof(
          fc.integer({ min: 0, max: 3 * DAY }),
          fc.nat().map((n) => -1 - n),
        ),
        fc.integer({ min: 1, max: 8 }),
        async (mine, others, pickA, pickB, limit) => {
          const end = (pick: number) =>
            pick >= 0 || mine.length === 0 ? Math.abs(pick) : (mine[(-1 - pick) % mine.length] ?? 0);
          const [a, b] = [end(pickA), end(pickB)];
          tables += 1;
          const tableName = `history-property-${tables}`;
          await dynamo.createSnapshotTable(tableName);
          const store = createDynamoSnapshotStore({
            client: dynamo.client,
            tableName,
            retentionDays: RETENTION_DAYS,
            cursorKey: 'history-property-key',
            now: () => NOW,
          });
          for (const offset of mine) expect(await store.put(snapshot('acme', NOW - offset))).toBe('stored');
          // Another tenant's snapshots at the same and other times: never in acme's pages.
          for (const offset of others) await store.put(snapshot('beta', NOW - offset));
          const from = NOW - Math.max(a, b);
          const to = NOW - Math.min(a, b);
          // What the contract promises: [from, to] inclusive, past retention left out (TTL lags). Expiry is
          // in whole seconds, as DynamoDB's TTL keeps it: a snapshot expires within the second it reaches.
          const expected = mine
            .map((offset) => NOW - offset)
            .filter(
              (at) =>
                at >= from &&
                at <= to &&
                Math.floor(at / 1000) + RETENTION_DAYS * 86_400 > Math.floor(NOW / 1000),
            )
            .sort((x, y) => x - y)
            .map((at) => new Date(at).toISOString());

          const seen: string[] = [];
          const sizes: number[] = [];
          let cursor: string | undefined;
          do {
            const page = await store.query({
              tenantId: 'acme',
              from: new Date(from),
              to: new Date(to),
              limit,
              ...(cursor === undefined ? {} : { cursor }),
            });
            expect(page.items.every((item) => item.tenantId === 'acme')).toBe(true);
            sizes.push(page.items.length);
            seen.push(...page.items.map((item) => item.observedAt));
            cursor = page.nextCursor ?? undefined;
            expect(sizes.length).toBeLessThanOrEqual(expected.length + 1);
          } while (cursor !== undefined);

          expect(seen).toEqual(expected);
          expect(sizes.every((size) => size <= limit)).toBe(true);
          // Full pages but the last; an empty page only when the range holds nothing.
          expect(sizes.slice(0, -1).every((size) => size === limit)).toBe(true);
          expect(sizes).toHaveLength(Math.max(1, Math.ceil(expected.length / limit)));
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  }, 120_000);
});
