/**
 * The forecast shown with history: a least-squares line of allocated GB against time, per space type
 * and for the totals, and how many days are left until allocated reaches total on that line.
 */
import type { Allocation } from './types.ts';

/** Fewer points than this give no trend: two points always fit a line exactly, which says little. */
export const MIN_TREND_POINTS = 3;

/**
 * Slopes at or below this (GB per day, about 1 KB) count as flat: nothing fills up at that pace, and
 * it absorbs the rounding left in the slope of a series that is flat on paper.
 */
export const FLAT_SLOPE_GB_PER_DAY = 1e-6;

/** The key of the totals in a {@link Trend}. */
export const TOTALS_KEY = 'totals';

const MS_PER_DAY = 86_400_000;

/** One series' forecast. */
export interface TrendEntry {
  /** Least-squares slope of allocated GB per day; null with too few points or all at one time. */
  slopeGBPerDay: number | null;
  /** Days from the last item until allocated reaches total on that slope; 0 when already full, null when flat or shrinking. */
  daysUntilFull: number | null;
  /** How many items the series was fitted on. */
  points: number;
}

/** Keyed by each space's `typeName` (`unknown:<type>` when several types are unknown) and `totals`. */
export type Trend = Record<string, TrendEntry>;

/** A point of a series: time in epoch ms, allocated and total GB. */
export interface SeriesPoint {
  at: number;
  allocatedGB: number;
  totalGB: number;
}

/**
 * The key of each space type seen in `items`: its typeName, except that several unknown types are
 * told apart as `unknown:<type>` (one unknown type alone stays `unknown`).
 */
export function spaceSeriesKeys(items: readonly Allocation[]): Map<number, string> {
  const names = new Map<number, string>();
  for (const item of items) for (const space of item.spaces) names.set(space.type, space.typeName);
  const unknownTypes = [...names].filter(([, name]) => name === 'unknown').length;
  const keys = new Map<number, string>();
  for (const [type, name] of [...names].sort(([a], [b]) => a - b)) {
    keys.set(type, name === 'unknown' && unknownTypes > 1 ? `unknown:${type}` : name);
  }
  return keys;
}

/**
 * The series of `items` (oldest first, items without a readable time left out): one per space key,
 * and `totals`, which comes last.
 */
export function allocationSeries(items: readonly Allocation[]): Map<string, SeriesPoint[]> {
  const times = new Float64Array(items.length);
  let sorted = true;
  let dated = 0;
  let previous = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < items.length; index++) {
    const at = Date.parse((items[index] as Allocation).observedAt);
    times[index] = at;
    if (!Number.isFinite(at)) continue;
    dated += 1;
    if (at < previous) sorted = false;
    previous = at;
  }
  // History comes oldest first: sort only when it is not (stable: equal times keep their order).
  let order: number[] | undefined;
  if (!sorted || dated < items.length) {
    order = [];
    for (let index = 0; index < items.length; index++) if (Number.isFinite(times[index])) order.push(index);
    if (!sorted) order.sort((a, b) => (times[a] as number) - (times[b] as number) || a - b);
  }
  const keys = spaceSeriesKeys(items);
  const series = new Map<string, SeriesPoint[]>();
  for (const key of keys.values()) series.set(key, []);
  const totals: SeriesPoint[] = [];
  const count = order === undefined ? items.length : order.length;
  for (let position = 0; position < count; position++) {
    const index = order === undefined ? position : (order[position] as number);
    const item = items[index] as Allocation;
    const at = times[index] as number;
    for (const space of item.spaces) {
      const key = keys.get(space.type);
      if (key === undefined) continue;
      series.get(key)?.push({ at, allocatedGB: space.allocatedGB, totalGB: space.totalGB });
    }
    totals.push({ at, allocatedGB: item.totals.allocatedGB, totalGB: item.totals.totalGB });
  }
  series.set(TOTALS_KEY, totals);
  return series;
}

/** Least-squares slope (GB per day) of allocated against time; null when every point has one time. */
export function leastSquaresSlope(points: readonly SeriesPoint[]): number | null {
  const n = points.length;
  if (n === 0) return null;
  // Centering (on the first point, then on the mean) keeps epoch milliseconds and large sizes from
  // swamping the sums: the raw normal equations lose most digits to cancellation. Shifting the sizes
  // by the first one also makes a flat series' slope exactly 0.
  const first = points[0];
  const originT = first?.at ?? 0;
  const originY = first?.allocatedGB ?? 0;
  let meanT = 0;
  let meanY = 0;
  for (const p of points) {
    meanT += (p.at - originT) / MS_PER_DAY;
    meanY += p.allocatedGB - originY;
  }
  meanT /= n;
  meanY /= n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    const dt = (p.at - originT) / MS_PER_DAY - meanT;
    sxy += dt * (p.allocatedGB - originY - meanY);
    sxx += dt * dt;
  }
  if (!(sxx > 0)) return null;
  return sxy / sxx;
}

/** The forecast of one series (oldest first). */
export function trendOf(points: readonly SeriesPoint[]): TrendEntry {
  const count = points.length;
  const last = points.at(-1);
  if (count < MIN_TREND_POINTS || last === undefined) {
    return { slopeGBPerDay: null, daysUntilFull: null, points: count };
  }
  const slope = leastSquaresSlope(points);
  if (slope === null) return { slopeGBPerDay: null, daysUntilFull: null, points: count };
  const room = last.totalGB - last.allocatedGB;
  let daysUntilFull: number | null;
  // The contract: null when flat or shrinking, even for a space that is already full.
  if (slope <= FLAT_SLOPE_GB_PER_DAY) daysUntilFull = null;
  else if (room <= 0) daysUntilFull = 0;
  else daysUntilFull = room / slope;
  return { slopeGBPerDay: slope, daysUntilFull, points: count };
}

/**
 * The trend of a history: per space key and `totals`, the least-squares slope of allocated GB per day
 * and the days from the last item until allocated reaches total (see {@link TrendEntry}).
 */
export function computeTrend(items: readonly Allocation[]): Trend {
  const trend: Trend = {};
  for (const [key, points] of allocationSeries(items)) trend[key] = trendOf(points);
  return trend;
}
