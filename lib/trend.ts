/**
 * The forecast shown with history: a least-squares line of allocated GB against time, per space type
 * and for the totals, and how many days are left until allocated reaches total on that line.
 */
import type { Allocation, SpaceTypeName } from './types.ts';

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
interface TrendEntry {
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
  return seriesKeysOf(names);
}

/** The series key of each space type (by type number, in type order), from the types and their names. */
function seriesKeysOf(names: ReadonlyMap<number, string>): Map<number, string> {
  const unknownTypes = [...names.values()].filter((name) => name === 'unknown').length;
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

/**
 * The running least-squares fit of one series: Welford's online means and co-moments, on times in days
 * and sizes in GB shifted by the series' first point, so that epoch milliseconds and large sizes do not
 * swamp the sums (the raw normal equations lose most digits to cancellation) and a flat series' slope is
 * exactly 0. One pass, in any order, and resumable: a history read in pages carries it in its cursor.
 */
interface SeriesFit {
  points: number;
  /** The first point added: epoch ms and allocated GB. */
  originAt: number;
  originGB: number;
  /** Mean time (days after originAt) and mean size (GB above originGB) of the points. */
  meanDays: number;
  meanGB: number;
  /** Σ(t − mean t)(y − mean y) and Σ(t − mean t)². */
  coMoment: number;
  timeMoment: number;
  /** The latest point (by time; of equal times, the one added last): where the forecast starts. */
  lastAt: number;
  lastAllocatedGB: number;
  lastTotalGB: number;
}

/** Adds a point to a fit (a new fit for the first one); mutates and returns `fit`. */
function addPoint(fit: SeriesFit | undefined, point: SeriesPoint): SeriesFit {
  if (fit === undefined) {
    return {
      points: 1,
      originAt: point.at,
      originGB: point.allocatedGB,
      meanDays: 0,
      meanGB: 0,
      coMoment: 0,
      timeMoment: 0,
      lastAt: point.at,
      lastAllocatedGB: point.allocatedGB,
      lastTotalGB: point.totalGB,
    };
  }
  const t = (point.at - fit.originAt) / MS_PER_DAY;
  const y = point.allocatedGB - fit.originGB;
  fit.points += 1;
  const dt = t - fit.meanDays;
  fit.meanDays += dt / fit.points;
  fit.meanGB += (y - fit.meanGB) / fit.points;
  fit.coMoment += dt * (y - fit.meanGB);
  fit.timeMoment += dt * (t - fit.meanDays);
  if (point.at >= fit.lastAt) {
    fit.lastAt = point.at;
    fit.lastAllocatedGB = point.allocatedGB;
    fit.lastTotalGB = point.totalGB;
  }
  return fit;
}

/** Least-squares slope (GB per day) of allocated against time; null when every point has one time. */
export function leastSquaresSlope(points: readonly SeriesPoint[]): number | null {
  return fitSlope(fitOf(points));
}

function fitOf(points: readonly SeriesPoint[]): SeriesFit | undefined {
  let fit: SeriesFit | undefined;
  for (const point of points) fit = addPoint(fit, point);
  return fit;
}

function fitSlope(fit: SeriesFit | undefined): number | null {
  if (fit === undefined || !(fit.timeMoment > 0)) return null;
  return fit.coMoment / fit.timeMoment;
}

/** The forecast of a fit (see {@link TrendEntry}). */
function fitTrend(fit: SeriesFit | undefined): TrendEntry {
  const count = fit?.points ?? 0;
  const slope = count < MIN_TREND_POINTS ? null : fitSlope(fit);
  if (fit === undefined || slope === null) return { slopeGBPerDay: null, daysUntilFull: null, points: count };
  const room = fit.lastTotalGB - fit.lastAllocatedGB;
  let daysUntilFull: number | null;
  // The contract: null when flat or shrinking, even for a space that is already full.
  if (slope <= FLAT_SLOPE_GB_PER_DAY) daysUntilFull = null;
  else if (room <= 0) daysUntilFull = 0;
  else daysUntilFull = room / slope;
  return { slopeGBPerDay: slope, daysUntilFull, points: count };
}

/** A space type's fit with its name, as a {@link TrendAccumulator} keeps it. */
interface TypeFit {
  type: number;
  typeName: SpaceTypeName;
  fit: SeriesFit;
}

/** The state a {@link TrendAccumulator} resumes from: per space type, then the totals (JSON, for a cursor). */
export type TrendState = {
  spaces: [type: number, typeName: SpaceTypeName, ...fit: number[]][];
  totals: number[] | null;
};

const FIT_FIELDS = [
  'points',
  'originAt',
  'originGB',
  'meanDays',
  'meanGB',
  'coMoment',
  'timeMoment',
  'lastAt',
  'lastAllocatedGB',
  'lastTotalGB',
] as const satisfies readonly (keyof SeriesFit)[];
const TYPE_NAMES: readonly SpaceTypeName[] = ['department', 'personal', 'group', 'unknown'];
/**
 * The most space types a state carries: their fits travel in a cursor, which must fit in a request.
 * KooDrive documents three; a history with more carries the lowest 15 types' fits, and the trend of any
 * further type covers only the pages since the cursor.
 */
export const MAX_STATE_SPACES = 15;

function fitToNumbers(fit: SeriesFit): number[] {
  return FIT_FIELDS.map((field) => fit[field]);
}

function fitFromNumbers(numbers: readonly unknown[]): SeriesFit | undefined {
  if (
    numbers.length !== FIT_FIELDS.length ||
    !numbers.every((n) => typeof n === 'number' && Number.isFinite(n))
  ) {
    return undefined;
  }
  const fit = Object.fromEntries(
    FIT_FIELDS.map((field, index) => [field, numbers[index]]),
  ) as unknown as SeriesFit;
  return Number.isSafeInteger(fit.points) && fit.points >= 1 && fit.timeMoment >= 0 ? fit : undefined;
}

/**
 * The trend of a history read in pages: each page's items are added to the fits of the pages before it
 * (carried in the cursor), so every page's trend covers the range from its start through that page,
 * and the last page's the whole range, exactly as one page holding every item would.
 */
export class TrendAccumulator {
  private readonly spaces = new Map<number, TypeFit>();
  private totals: SeriesFit | undefined;

  /** A state from {@link state}, or undefined for a fresh start; undefined when `state` is not one. */
  static resume(state: unknown): TrendAccumulator | undefined {
    const accumulator = new TrendAccumulator();
    if (state === undefined) return accumulator;
    if (typeof state !== 'object' || state === null) return undefined;
    const { spaces, totals } = state as Record<string, unknown>;
    if (!Array.isArray(spaces) || spaces.length > MAX_STATE_SPACES) return undefined;
    for (const entry of spaces) {
      if (!Array.isArray(entry)) return undefined;
      const [type, typeName, ...numbers] = entry as unknown[];
      const fit = fitFromNumbers(numbers);
      if (
        !Number.isSafeInteger(type) ||
        !TYPE_NAMES.includes(typeName as SpaceTypeName) ||
        fit === undefined ||
        accumulator.spaces.has(type as number)
      ) {
        return undefined;
      }
      accumulator.spaces.set(type as number, {
        type: type as number,
        typeName: typeName as SpaceTypeName,
        fit,
      });
    }
    if (totals !== null) {
      const fit = Array.isArray(totals) ? fitFromNumbers(totals) : undefined;
      if (fit === undefined) return undefined;
      accumulator.totals = fit;
    }
    return accumulator;
  }

  /** Adds items (in any order; those without a readable time are left out). */
  add(items: readonly Allocation[]): this {
    for (const item of items) {
      const at = Date.parse(item.observedAt);
      if (!Number.isFinite(at)) continue;
      for (const space of item.spaces) {
        const point = { at, allocatedGB: space.allocatedGB, totalGB: space.totalGB };
        const known = this.spaces.get(space.type);
        if (known === undefined) {
          this.spaces.set(space.type, {
            type: space.type,
            typeName: space.typeName,
            fit: addPoint(undefined, point),
          });
        } else {
          addPoint(known.fit, point);
        }
      }
      this.totals = addPoint(this.totals, {
        at,
        allocatedGB: item.totals.allocatedGB,
        totalGB: item.totals.totalGB,
      });
    }
    return this;
  }

  /** The trend of everything added: per space key (as {@link spaceSeriesKeys} names them), then `totals`. */
  trend(): Trend {
    const keys = seriesKeysOf(new Map([...this.spaces].map(([type, space]) => [type, space.typeName])));
    const trend: Trend = {};
    const lastItemAt = this.totals?.lastAt;
    for (const [type, key] of keys) {
      const fit = this.spaces.get(type)?.fit;
      const entry = fitTrend(fit);
      // A space type the last item no longer lists (deleted): its slope stays, but no day of filling
      // up, which would be counted from its own last point, not the last item (the chart draws none).
      trend[key] =
        fit !== undefined &&
        lastItemAt !== undefined &&
        fit.lastAt < lastItemAt &&
        entry.daysUntilFull !== null
          ? { ...entry, daysUntilFull: null }
          : entry;
    }
    trend[TOTALS_KEY] = fitTrend(this.totals);
    return trend;
  }

  /** What {@link resume} takes back: plain JSON (at most {@link MAX_STATE_SPACES} space types). */
  state(): TrendState {
    return {
      spaces: [...this.spaces.values()]
        .sort((a, b) => a.type - b.type)
        .slice(0, MAX_STATE_SPACES)
        .map(({ type, typeName, fit }) => [type, typeName, ...fitToNumbers(fit)]),
      totals: this.totals === undefined ? null : fitToNumbers(this.totals),
    };
  }
}

/**
 * The trend of a history: per space key and `totals`, the least-squares slope of allocated GB per day
 * and the days from the last item until allocated reaches total (see {@link TrendEntry}).
 */
export function computeTrend(items: readonly Allocation[]): Trend {
  return new TrendAccumulator().add(items).trend();
}
