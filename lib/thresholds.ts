import { createHash } from 'node:crypto';
import type { Allocation } from './types.ts';

/** The detail of an `Allocation Threshold Crossed` event (see the contract's "Events it publishes"). */
export interface ThresholdCrossing {
  tenantId: string;
  /** `totals`, or the space's typeName (`department`, `personal`, `group`, else `unknown`). */
  spaceType: string;
  /** The space's numeric type as KooDrive reports it (absent for `totals`): tells unknown types apart. */
  type?: number;
  threshold: number;
  direction: 'up' | 'down';
  previousRatio: number;
  ratio: number;
  observedAt: string;
  /** Same for every delivery of the same crossing, so consumers can drop duplicates. */
  crossingId: string;
}

interface Watched {
  spaceType: string;
  type?: number;
  ratio: number | null;
}

/** The ratios compared, keyed by the totals or the space's numeric type (two unknown types stay apart). */
function ratiosOf(allocation: Allocation): Map<string, Watched> {
  const ratios = new Map<string, Watched>();
  ratios.set('totals', { spaceType: 'totals', ratio: allocation.totals.allocatedRatio });
  for (const space of allocation.spaces) {
    ratios.set(`type:${space.type}`, {
      spaceType: space.typeName,
      type: space.type,
      ratio: space.allocatedRatio,
    });
  }
  return ratios;
}

/**
 * Thresholds crossed between a tenant's previous snapshot and the new one, up (from below to at or
 * above) or down (from at or above to below). Spaces missing on either side, or without a ratio
 * (total 0), cross nothing.
 */
export function findThresholdCrossings(
  previous: Allocation | undefined,
  current: Allocation,
  thresholds: readonly number[],
): ThresholdCrossing[] {
  if (previous === undefined) return [];
  const before = ratiosOf(previous);
  const crossings: ThresholdCrossing[] = [];
  for (const [key, { spaceType, type, ratio }] of ratiosOf(current)) {
    const previousRatio = before.get(key)?.ratio;
    if (ratio === null || previousRatio === null || previousRatio === undefined) continue;
    for (const threshold of thresholds) {
      const direction =
        previousRatio < threshold && ratio >= threshold
          ? 'up'
          : previousRatio >= threshold && ratio < threshold
            ? 'down'
            : undefined;
      if (direction === undefined) continue;
      const crossingId = createHash('sha256')
        .update(`${current.tenantId}\n${current.observedAt}\n${key}\n${threshold}\n${direction}`)
        .digest('hex')
        .slice(0, 32);
      crossings.push({
        tenantId: current.tenantId,
        spaceType,
        ...(type === undefined ? {} : { type }),
        threshold,
        direction,
        previousRatio,
        ratio,
        observedAt: current.observedAt,
        crossingId,
      });
    }
  }
  return crossings;
}
