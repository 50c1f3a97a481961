import { createHash } from 'node:crypto';
import type { Allocation } from './types.ts';

/** The detail of an `Allocation Threshold Crossed` event (see the contract's "Events it publishes"). */
export interface ThresholdCrossing {
  tenantId: string;
  /** `totals`, or the space's typeName (`unknown:<type>` when the name is `unknown`). */
  spaceType: string;
  threshold: number;
  direction: 'up' | 'down';
  previousRatio: number;
  ratio: number;
  observedAt: string;
  /** Same for every delivery of the same crossing, so consumers can drop duplicates. */
  crossingId: string;
}

function ratiosOf(allocation: Allocation): Map<string, number | null> {
  const ratios = new Map<string, number | null>();
  ratios.set('totals', allocation.totals.allocatedRatio);
  for (const space of allocation.spaces) {
    const key = space.typeName === 'unknown' ? `unknown:${space.type}` : space.typeName;
    ratios.set(key, space.allocatedRatio);
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
  for (const [spaceType, ratio] of ratiosOf(current)) {
    const previousRatio = before.get(spaceType);
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
        .update(`${current.tenantId}\n${current.observedAt}\n${spaceType}\n${threshold}\n${direction}`)
        .digest('hex')
        .slice(0, 32);
      crossings.push({
        tenantId: current.tenantId,
        spaceType,
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
