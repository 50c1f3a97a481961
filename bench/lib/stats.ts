/** Summaries of repeated measurements: every figure is a median over rounds with min and max beside it. */

/** Median, min and max over `n` rounds. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Linear-interpolated percentile (0–100) of sorted values; NaN for none. */
function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const a = sorted[low] ?? Number.NaN;
  const b = sorted[high] ?? Number.NaN;
  return a + (b - a) * (rank - low);
}

/** The round summary of a figure; throws on an empty list so a missing measurement cannot pass as 0. */
export function summarize(values: readonly number[]): Stat {
  if (values.length === 0) throw new Error('summarize: no values');
  const sorted = Float64Array.from(values).sort();
  return {
    median: percentileOfSorted(sorted, 50),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    n: sorted.length,
  };
}

/** Per-round ratios a[i] / b[i], so that each comparison is measured within the same round. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new Error(`pairedRatios: ${a.length} vs ${b.length} rounds`);
  return a.map((value, i) => value / (b[i] ?? Number.NaN));
}
