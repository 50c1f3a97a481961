import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveAllocation, normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import {
  allocationSeries,
  computeTrend,
  FLAT_SLOPE_GB_PER_DAY,
  leastSquaresSlope,
  MAX_STATE_SPACES,
  MIN_TREND_POINTS,
  spaceSeriesKeys,
  TOTALS_KEY,
  TrendAccumulator,
} from '../../lib/trend.ts';
import type { Allocation } from '../../lib/types.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-21T04:00:00.000Z');

/** A history item built by the same normalizer the store uses, so derived fields are the real ones. */
function item(at: number, spaces: { type: number; allocated: number; total: number }[]): Allocation {
  const normalized = normalizeAllocation({
    code: 0,
    data: spaces.map((s) => ({ type: s.type, allocateCapacity: s.allocated, totalCapacity: s.total })),
  });
  return { tenantId: 'acme', observedAt: new Date(at).toISOString(), ...normalized };
}

/** One department space: allocated[i] at T0 + i days, of `total`. */
function daily(allocated: number[], total = 1000): Allocation[] {
  return allocated.map((a, i) => item(T0 + i * DAY, [{ type: 0, allocated: a, total }]));
}

describe('computeTrend', () => {
  it('finds the slope of linear growth and the days until full from the last item', () => {
    // 10 GB a day from 500 of 1000: the last item has 540, so 460 GB at 10 a day is 46 days.
    const trend = computeTrend(daily([500, 510, 520, 530, 540]));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(10, 10);
    expect(trend.department?.daysUntilFull).toBeCloseTo(46, 10);
    expect(trend.department?.points).toBe(5);
    // One space: the totals are the same series.
    expect(trend.totals?.slopeGBPerDay).toBeCloseTo(10, 10);
    expect(trend.totals?.daysUntilFull).toBeCloseTo(46, 10);
  });

  it('gives a space the last item no longer lists its slope but no day of filling up', () => {
    // Department on days 0–5; personal (50, 55, 60 of 100) on days 0–2 only: deleted by day 3. Its
    // 5 GB a day stays; a day of filling up counted from its own last point (8) would not be "from the
    // last item", and for a deleted space there is none (the chart draws no forecast for it either).
    const items = [0, 1, 2, 3, 4, 5].map((d) =>
      item(T0 + d * DAY, [
        { type: 0, allocated: 100 + 10 * d, total: 1000 },
        ...(d <= 2 ? [{ type: 1, allocated: 50 + 5 * d, total: 100 }] : []),
      ]),
    );
    const trend = computeTrend(items);
    expect(trend.personal?.slopeGBPerDay).toBeCloseTo(5, 10);
    expect(trend.personal?.points).toBe(3);
    expect(trend.personal?.daysUntilFull).toBeNull();
    // Listed by the last item again: counted as before.
    const back = [
      ...items,
      item(T0 + 6 * DAY, [
        { type: 0, allocated: 160, total: 1000 },
        { type: 1, allocated: 80, total: 100 },
      ]),
    ];
    expect(computeTrend(back).personal?.daysUntilFull).not.toBeNull();
    // Department, listed throughout: 850 GB of room at 10 a day.
    expect(trend.department?.daysUntilFull).toBeCloseTo(85, 10);
  });

  it('measures time in days whatever the spacing of the snapshots', () => {
    // Hourly snapshots growing 10 GB a day, from 500: after 72 hours, 530; 470 GB left is 47 days.
    const items = Array.from({ length: 73 }, (_, h) =>
      item(T0 + (h * DAY) / 24, [{ type: 0, allocated: 500 + (10 * h) / 24, total: 1000 }]),
    );
    const trend = computeTrend(items);
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(10, 9);
    expect(trend.department?.daysUntilFull).toBeCloseTo(47, 8);
  });

  it('gives the least-squares answer for a noisy series with symmetric residuals', () => {
    // Residuals +1, -2, 0, +2, -1 around 500 + 10·d: they sum to 0 and are orthogonal to the centered
    // times (-2·1 + -1·-2 + 0 + 1·2 + 2·-1 = 0), so the fitted slope is exactly 10. The last item is
    // 539 (not 540), so 461 GB at 10 a day is 46.1 days.
    const trend = computeTrend(daily([501, 508, 520, 532, 539]));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(10, 10);
    expect(trend.department?.daysUntilFull).toBeCloseTo(46.1, 10);
  });

  it('gives a known non-trivial slope: y = 0, 0, 3 over days 0, 1, 2 fits 1.5 GB a day', () => {
    // Centered times -1, 0, 1; centered sizes -1, -1, 2: Sxy = 1 + 0 + 2 = 3, Sxx = 2.
    const trend = computeTrend(daily([0, 0, 3], 10));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(1.5, 12);
    expect(trend.department?.daysUntilFull).toBeCloseTo(7 / 1.5, 12);
  });

  it('reports a flat series as slope 0 with no day of filling up', () => {
    const trend = computeTrend(daily([700, 700, 700, 700]));
    expect(trend.department).toEqual({ slopeGBPerDay: 0, daysUntilFull: null, points: 4 });
  });

  it('treats growth below the flat threshold as flat', () => {
    const tiny = FLAT_SLOPE_GB_PER_DAY / 2;
    const trend = computeTrend(daily([100, 100 + tiny, 100 + 2 * tiny]));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(tiny, 12);
    expect(trend.department?.daysUntilFull).toBeNull();
  });

  it('reports a shrinking series with its negative slope and no day of filling up', () => {
    const trend = computeTrend(daily([900, 880, 860, 840]));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(-20, 10);
    expect(trend.department?.daysUntilFull).toBeNull();
  });

  it(`gives no trend with fewer than ${MIN_TREND_POINTS} points`, () => {
    expect(computeTrend(daily([500, 600]))).toEqual({
      department: { slopeGBPerDay: null, daysUntilFull: null, points: 2 },
      totals: { slopeGBPerDay: null, daysUntilFull: null, points: 2 },
    });
    expect(computeTrend(daily([500])).totals).toEqual({
      slopeGBPerDay: null,
      daysUntilFull: null,
      points: 1,
    });
  });

  it('gives no trend when every point has the same time', () => {
    const items = [400, 500, 600].map((a) => item(T0, [{ type: 0, allocated: a, total: 1000 }]));
    expect(computeTrend(items).department).toEqual({ slopeGBPerDay: null, daysUntilFull: null, points: 3 });
  });

  it('says 0 days when the last item is already full or over-allocated and still growing', () => {
    expect(computeTrend(daily([980, 990, 1000])).department?.daysUntilFull).toBe(0);
    const over = computeTrend(daily([1050, 1100, 1150]));
    expect(over.department?.slopeGBPerDay).toBeCloseTo(50, 10);
    expect(over.department?.daysUntilFull).toBe(0);
    // Over-allocated but shrinking: the contract says null for a shrinking series.
    expect(computeTrend(daily([1300, 1200, 1100])).department?.daysUntilFull).toBeNull();
  });

  it('uses the last item by time, whatever the order of the input', () => {
    const items = daily([500, 510, 520, 530, 540]);
    const shuffled = [items[3], items[0], items[4], items[1], items[2]].filter((i) => i !== undefined);
    expect(computeTrend(shuffled)).toEqual(computeTrend(items));
  });

  it('leaves out items without a readable time, in order or not', () => {
    const items = daily([500, 510, 520, 530]);
    const [a, b, c, d] = items;
    if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('no items');
    const undated = { ...b, observedAt: 'not a time', totals: { ...b.totals, allocatedGB: 99_999 } };
    expect(computeTrend([a, undated, b, c, d])).toEqual(computeTrend(items));
    expect(computeTrend([d, undated, a, c, b])).toEqual(computeTrend(items));
  });

  it('keys each space type and the totals, each on its own points', () => {
    const items = [0, 1, 2, 3].map((d) =>
      item(T0 + d * DAY, [
        { type: 0, allocated: 100 + 10 * d, total: 1000 },
        { type: 1, allocated: 50, total: 100 },
        // The group space appears only in the last two snapshots.
        ...(d >= 2 ? [{ type: 2, allocated: 5 * d, total: 50 }] : []),
      ]),
    );
    const trend = computeTrend(items);
    expect(Object.keys(trend)).toEqual(['department', 'personal', 'group', 'totals']);
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(10, 10);
    expect(trend.personal).toEqual({ slopeGBPerDay: 0, daysUntilFull: null, points: 4 });
    expect(trend.group).toEqual({ slopeGBPerDay: null, daysUntilFull: null, points: 2 });
    expect(trend.totals?.points).toBe(4);
  });

  it('keys several unknown types as unknown:<type>, and a single one as unknown', () => {
    const two = [0, 1, 2].map((d) =>
      item(T0 + d * DAY, [
        { type: 7, allocated: 10 + d, total: 100 },
        { type: 5, allocated: 20, total: 100 },
      ]),
    );
    expect(Object.keys(computeTrend(two))).toEqual(['unknown:5', 'unknown:7', 'totals']);
    expect(computeTrend(two)['unknown:7']?.slopeGBPerDay).toBeCloseTo(1, 10);
    const one = [0, 1, 2].map((d) => item(T0 + d * DAY, [{ type: 9, allocated: d, total: 10 }]));
    expect(Object.keys(computeTrend(one))).toEqual(['unknown', 'totals']);
    expect([...spaceSeriesKeys(two)]).toEqual([
      [5, 'unknown:5'],
      [7, 'unknown:7'],
    ]);
  });

  it('gives only the totals, with no points, for an empty history', () => {
    expect(computeTrend([])).toEqual({ totals: { slopeGBPerDay: null, daysUntilFull: null, points: 0 } });
  });

  it('stays exact with large sizes at epoch times (centering)', () => {
    // 1e9 GB growing 0.5 GB a day: the raw normal equations would lose this slope to cancellation.
    const trend = computeTrend(daily([1e9, 1e9 + 0.5, 1e9 + 1, 1e9 + 1.5], 2e9));
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(0.5, 9);
    expect(trend.department?.daysUntilFull).toBeCloseTo((1e9 - 1.5) / 0.5, 0);
  });

  it('recovers the slope of any exact line (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1000, max: 1000, noNaN: true }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.uniqueArray(fc.integer({ min: 0, max: 400 * 24 }), { minLength: 3, maxLength: 40 }),
        (slope, intercept, hours) => {
          const points = hours.map((h) => ({
            at: T0 + h * 3_600_000,
            allocatedGB: intercept + (slope * h) / 24,
            totalGB: 0,
          }));
          const fitted = leastSquaresSlope(points);
          expect(fitted).not.toBeNull();
          expect(Math.abs((fitted ?? 0) - slope)).toBeLessThan(
            1e-6 * (1 + Math.abs(slope) + intercept / 100),
          );
        },
      ),
    );
  });
});

describe('TrendAccumulator', () => {
  const items = [0, 1, 2, 3, 4, 5].map((d) =>
    item(T0 + d * DAY, [
      { type: 0, allocated: 100 + 10 * d + (d % 2), total: 1000 },
      ...(d >= 2 ? [{ type: 7, allocated: 5 * d, total: 50 }] : []),
      ...(d >= 3 ? [{ type: 9, allocated: 1, total: 5 }] : []),
    ]),
  );

  it('resumed from its JSON state between any two chunks, ends with the trend of all items at once', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: items.length - 1 }), { maxLength: 4 }), (cuts) => {
        const bounds = [0, ...cuts.sort((a, b) => a - b), items.length];
        let state: unknown;
        let trend = {};
        for (let i = 0; i + 1 < bounds.length; i++) {
          const accumulator = TrendAccumulator.resume(JSON.parse(JSON.stringify(state ?? null)) ?? undefined);
          if (accumulator === undefined) throw new Error('the state did not resume');
          trend = accumulator.add(items.slice(bounds[i], bounds[i + 1])).trend();
          state = accumulator.state();
        }
        const whole = computeTrend(items);
        expect(Object.keys(trend)).toEqual(Object.keys(whole));
        for (const [key, entry] of Object.entries(whole)) {
          const resumed = (trend as Record<string, typeof entry>)[key];
          expect(resumed?.points).toBe(entry.points);
          if (entry.slopeGBPerDay === null) expect(resumed?.slopeGBPerDay).toBeNull();
          else expect(resumed?.slopeGBPerDay).toBeCloseTo(entry.slopeGBPerDay, 9);
        }
      }),
    );
  });

  it('names several unknown types apart even when they first appear on different pages', () => {
    const first = new TrendAccumulator().add(items.slice(0, 3));
    expect(Object.keys(first.trend())).toEqual(['department', 'unknown', 'totals']);
    const resumed = TrendAccumulator.resume(first.state())?.add(items.slice(3));
    expect(Object.keys(resumed?.trend() ?? {})).toEqual(['department', 'unknown:7', 'unknown:9', 'totals']);
  });

  it('refuses a state it did not write', () => {
    const good = new TrendAccumulator().add(items).state();
    expect(TrendAccumulator.resume(good)).toBeInstanceOf(TrendAccumulator);
    for (const bad of [
      null,
      'state',
      { spaces: 'many', totals: null },
      { ...good, totals: [1, 2] },
      { ...good, spaces: [[0, 'department', 1, 2]] },
      { ...good, spaces: [[0, 'attic', ...(good.totals ?? [])]] },
      { ...good, spaces: [[0.5, 'department', ...(good.totals ?? [])]] },
      { ...good, spaces: [[0, 'department', ...(good.totals ?? []).map(() => Number.NaN)]] },
      { ...good, spaces: [...good.spaces, ...good.spaces] },
      // A fit of no points: no state ever holds one.
      { ...good, totals: [0, ...(good.totals ?? []).slice(1)] },
      { ...good, spaces: [[0, 'department', 0, ...(good.totals ?? []).slice(1)]] },
      { ...good, spaces: Array.from({ length: 16 }, (_, i) => [i, 'unknown', ...(good.totals ?? [])]) },
    ]) {
      expect(TrendAccumulator.resume(bad), JSON.stringify(bad).slice(0, 80)).toBeUndefined();
    }
  });

  it('carries at most 15 space types, so that a cursor fits in a request', () => {
    // KooDrive answers list at most 15 space types now; snapshots stored before that limit may hold more.
    const many = [0, 1, 2, 3].map((d) => ({
      tenantId: 'acme',
      observedAt: new Date(T0 + d * DAY).toISOString(),
      ...deriveAllocation(
        Array.from({ length: 20 }, (_, type) => ({ type, allocatedGB: type + d, totalGB: 100 })),
      ),
    }));
    const state = new TrendAccumulator().add(many).state();
    expect(state.spaces.map(([type]) => type)).toEqual(Array.from({ length: MAX_STATE_SPACES }, (_, i) => i));
    expect(JSON.stringify(state).length).toBeLessThan(4000);
    expect(TrendAccumulator.resume(state)?.trend().totals?.points).toBe(4);
  });
});

describe('allocationSeries', () => {
  it('gives one series per space key and the totals last, oldest first', () => {
    const items = [0, 1, 2].map((d) =>
      item(T0 + d * DAY, [
        { type: 1, allocated: 50 + d, total: 100 },
        ...(d >= 1 ? [{ type: 0, allocated: 10 * d, total: 1000 }] : []),
      ]),
    );
    const series = allocationSeries(items);
    expect([...series.keys()]).toEqual(['department', 'personal', TOTALS_KEY]);
    expect(series.get('department')).toEqual([
      { at: T0 + DAY, allocatedGB: 10, totalGB: 1000 },
      { at: T0 + 2 * DAY, allocatedGB: 20, totalGB: 1000 },
    ]);
    expect(series.get('personal')?.map((p) => p.allocatedGB)).toEqual([50, 51, 52]);
    expect(series.get(TOTALS_KEY)).toEqual([
      { at: T0, allocatedGB: 50, totalGB: 100 },
      { at: T0 + DAY, allocatedGB: 61, totalGB: 1100 },
      { at: T0 + 2 * DAY, allocatedGB: 72, totalGB: 1100 },
    ]);
  });

  it('sorts items given out of order by time, keeping the input order of equal times', () => {
    const a = item(T0, [{ type: 0, allocated: 1, total: 10 }]);
    const b = item(T0 + DAY, [{ type: 0, allocated: 2, total: 10 }]);
    const c1 = item(T0 + 2 * DAY, [{ type: 0, allocated: 3, total: 10 }]);
    const c2 = item(T0 + 2 * DAY, [{ type: 0, allocated: 4, total: 10 }]);
    const c3 = item(T0 + 2 * DAY, [{ type: 0, allocated: 5, total: 10 }]);
    const allocated = (items: Allocation[]) =>
      allocationSeries(items)
        .get('department')
        ?.map((p) => [p.at - T0, p.allocatedGB]);
    expect(allocated([c1, b, c2, a, c3])).toEqual([
      [0, 1],
      [DAY, 2],
      [2 * DAY, 3],
      [2 * DAY, 4],
      [2 * DAY, 5],
    ]);
    expect(allocated([a, c1, c2, b, c3])).toEqual([
      [0, 1],
      [DAY, 2],
      [2 * DAY, 3],
      [2 * DAY, 4],
      [2 * DAY, 5],
    ]);
    // Already in order, with equal times: kept as given.
    expect(allocated([a, b, c2, c1])?.map(([, gb]) => gb)).toEqual([1, 2, 4, 3]);
  });

  it('leaves out items without a readable time, in order or not', () => {
    const a = item(T0, [{ type: 0, allocated: 1, total: 10 }]);
    const b = item(T0 + DAY, [{ type: 0, allocated: 2, total: 10 }]);
    const undated = { ...item(T0, [{ type: 0, allocated: 9, total: 10 }]), observedAt: 'not a time' };
    for (const items of [
      [a, undated, b],
      [undated, a, b],
      [a, b, undated],
      [b, undated, a],
    ]) {
      const series = allocationSeries(items);
      expect(series.get('department')?.map((p) => p.allocatedGB)).toEqual([1, 2]);
      expect(series.get(TOTALS_KEY)?.map((p) => p.at)).toEqual([T0, T0 + DAY]);
    }
  });

  it('gives only an empty totals series for an empty history', () => {
    expect([...allocationSeries([])]).toEqual([[TOTALS_KEY, []]]);
  });
});

describe('trend edges', () => {
  it('orders space keys by type number, whatever order the types first appear in', () => {
    const items = [
      item(T0, [{ type: 2, allocated: 1, total: 10 }]),
      item(T0 + DAY, [
        { type: 0, allocated: 1, total: 10 },
        { type: 2, allocated: 1, total: 10 },
      ]),
    ];
    expect([...spaceSeriesKeys(items).keys()]).toEqual([0, 2]);
    expect(Object.keys(computeTrend(items))).toEqual(['department', 'group', 'totals']);
  });

  it('counts days until full from the item added last of those at the latest time', () => {
    const items = daily([100, 200, 300]);
    const later = item(T0 + 2 * DAY, [{ type: 0, allocated: 300, total: 500 }]);
    // Equal latest times: the one added last is where the forecast starts (room 200 at 100 GB a day).
    const trend = computeTrend([...items, later]);
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(100, 9);
    expect(trend.department?.daysUntilFull).toBeCloseTo(2, 9);
  });

  it('counts a slope exactly at the flat threshold as flat', () => {
    const trend = computeTrend(daily([0, FLAT_SLOPE_GB_PER_DAY, 2 * FLAT_SLOPE_GB_PER_DAY]));
    expect(trend.department?.slopeGBPerDay).toBe(FLAT_SLOPE_GB_PER_DAY);
    expect(trend.department?.daysUntilFull).toBeNull();
  });

  it('gives no slope for no points', () => {
    expect(leastSquaresSlope([])).toBeNull();
  });
});

describe('TrendAccumulator states', () => {
  const items = [0, 1, 2, 3].map((d) =>
    item(T0 + d * DAY, [{ type: 0, allocated: 100 + 10 * d, total: 1000 }]),
  );

  it('writes and resumes the state of an empty accumulator', () => {
    const state = new TrendAccumulator().state();
    expect(state).toEqual({ spaces: [], totals: null });
    const resumed = TrendAccumulator.resume(state);
    expect(resumed).toBeInstanceOf(TrendAccumulator);
    expect(resumed?.add(items).trend()).toEqual(computeTrend(items));
  });

  it('refuses a state with a fit of the wrong length, any non-finite number, or a negative time moment', () => {
    const good = new TrendAccumulator().add(items).state();
    const totals = good.totals ?? [];
    expect(totals).toHaveLength(10);
    const withField = (index: number, value: unknown) => totals.map((n, i) => (i === index ? value : n));
    for (const bad of [
      [...totals, 1],
      withField(4, Number.NaN),
      withField(4, Number.POSITIVE_INFINITY),
      withField(4, '5'),
      // timeMoment, Σ(t − mean t)², is never negative.
      withField(6, -1),
    ]) {
      expect(TrendAccumulator.resume({ ...good, totals: bad }), JSON.stringify(bad)).toBeUndefined();
      const space = [0, 'department', ...bad];
      expect(TrendAccumulator.resume({ ...good, spaces: [space] }), JSON.stringify(bad)).toBeUndefined();
    }
    expect(TrendAccumulator.resume({ ...good, spaces: [{}] })).toBeUndefined();
    expect(TrendAccumulator.resume({ ...good, spaces: ['0department'] })).toBeUndefined();
  });

  it('keeps the lowest space types when there are more than it carries, whatever order they came in', () => {
    const types = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ type: from + i, allocatedGB: 1, totalGB: 10 }));
    const many = [
      { tenantId: 'acme', observedAt: new Date(T0).toISOString(), ...deriveAllocation(types(10, 20)) },
      { tenantId: 'acme', observedAt: new Date(T0 + DAY).toISOString(), ...deriveAllocation(types(0, 20)) },
    ];
    const state = new TrendAccumulator().add(many).state();
    expect(state.spaces.map(([type]) => type)).toEqual(Array.from({ length: MAX_STATE_SPACES }, (_, i) => i));
  });
});
