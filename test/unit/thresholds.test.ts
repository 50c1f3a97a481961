import { describe, expect, it } from 'vitest';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { findThresholdCrossings } from '../../lib/thresholds.ts';
import type { Allocation } from '../../lib/types.ts';

function snapshot(observedAt: string, department: number, personal: number): Allocation {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: [
      { type: 0, allocateCapacity: department, totalCapacity: 100 },
      { type: 1, allocateCapacity: personal, totalCapacity: 100 },
    ],
  });
  return { tenantId: 'acme', observedAt, spaces, totals };
}

const THRESHOLDS = [0.8, 0.9, 1];

describe('findThresholdCrossings', () => {
  it('finds nothing without a previous snapshot', () => {
    expect(
      findThresholdCrossings(undefined, snapshot('2026-11-28T04:00:00.000Z', 95, 10), THRESHOLDS),
    ).toEqual([]);
  });

  it('reports each threshold crossed upward, per space type and for the totals', () => {
    const crossings = findThresholdCrossings(
      snapshot('2026-11-28T04:00:00.000Z', 79, 50),
      snapshot('2026-11-28T04:15:00.000Z', 91, 50),
      THRESHOLDS,
    );
    expect(crossings.map((c) => [c.spaceType, c.threshold, c.direction])).toEqual([
      ['department', 0.8, 'up'],
      ['department', 0.9, 'up'],
    ]);
    expect(crossings[0]).toMatchObject({
      tenantId: 'acme',
      previousRatio: 0.79,
      ratio: 0.91,
      observedAt: '2026-11-28T04:15:00.000Z',
    });
  });

  it('counts reaching a threshold exactly as crossing it, and dropping below as crossing down', () => {
    const up = findThresholdCrossings(snapshot('t1', 90, 90), snapshot('t2', 100, 100), THRESHOLDS);
    expect(up.map((c) => `${c.spaceType}:${c.threshold}:${c.direction}`).sort()).toEqual([
      'department:1:up',
      'personal:1:up',
      'totals:1:up',
    ]);
    const down = findThresholdCrossings(snapshot('t2', 100, 100), snapshot('t3', 89, 100), THRESHOLDS);
    expect(down.map((c) => `${c.spaceType}:${c.threshold}:${c.direction}`).sort()).toEqual([
      'department:0.9:down',
      'department:1:down',
      'totals:1:down',
    ]);
  });

  it('finds nothing when the ratio stays on one side', () => {
    expect(findThresholdCrossings(snapshot('t1', 81, 10), snapshot('t2', 89, 12), THRESHOLDS)).toEqual([]);
  });

  it('gives the same crossing id for the same crossing and a different one otherwise', () => {
    const a = findThresholdCrossings(snapshot('t1', 79, 0), snapshot('t2', 81, 0), THRESHOLDS);
    const b = findThresholdCrossings(snapshot('t1', 70, 0), snapshot('t2', 85, 0), THRESHOLDS);
    const c = findThresholdCrossings(snapshot('t1', 79, 0), snapshot('t3', 81, 0), THRESHOLDS);
    expect(a[0]?.crossingId).toBe(b[0]?.crossingId);
    expect(a[0]?.crossingId).not.toBe(c[0]?.crossingId);
  });

  it('names unknown space types as the contract does, and tells two of them apart by their number', () => {
    const withUnknown = (observedAt: string, five: number, seven: number): Allocation => {
      const { spaces, totals } = normalizeAllocation({
        code: 0,
        data: [
          { type: 5, allocateCapacity: five, totalCapacity: 100 },
          { type: 7, allocateCapacity: seven, totalCapacity: 100 },
        ],
      });
      return { tenantId: 'acme', observedAt, spaces, totals };
    };
    const crossings = findThresholdCrossings(withUnknown('t1', 50, 85), withUnknown('t2', 85, 50), [0.8]);
    expect(crossings.map((c) => [c.spaceType, c.type, c.direction])).toEqual([
      ['unknown', 5, 'up'],
      ['unknown', 7, 'down'],
    ]);
    expect(crossings[0]?.crossingId).not.toBe(crossings[1]?.crossingId);
    const totals = findThresholdCrossings(withUnknown('t1', 70, 70), withUnknown('t2', 90, 90), [0.8]);
    const summed = totals.find((c) => c.spaceType === 'totals');
    expect(summed).toBeDefined();
    expect(summed && 'type' in summed).toBe(false);
  });
});

describe('findThresholdCrossings with spaces missing or without a ratio', () => {
  const allocationOf = (
    observedAt: string,
    data: { type: number; allocated: number; total: number }[],
  ): Allocation => {
    const { spaces, totals } = normalizeAllocation({
      code: 0,
      data: data.map(({ type, allocated, total }) => ({
        type,
        allocateCapacity: allocated,
        totalCapacity: total,
      })),
    });
    return { tenantId: 'acme', observedAt, spaces, totals };
  };

  it('crosses nothing for a space missing from the previous snapshot', () => {
    const previous = allocationOf('t1', [{ type: 0, allocated: 50, total: 100 }]);
    const current = allocationOf('t2', [
      { type: 0, allocated: 50, total: 100 },
      { type: 1, allocated: 95, total: 100 },
    ]);
    expect(findThresholdCrossings(previous, current, [0.8, 0.9])).toEqual([]);
  });

  it('crosses nothing for a space missing from the new snapshot', () => {
    const previous = allocationOf('t1', [
      { type: 0, allocated: 50, total: 100 },
      { type: 1, allocated: 95, total: 100 },
    ]);
    const current = allocationOf('t2', [{ type: 0, allocated: 50, total: 100 }]);
    expect(findThresholdCrossings(previous, current, [0.8, 0.9])).toEqual([]);
  });

  it('crosses nothing from a space whose previous total was 0 (no ratio)', () => {
    const previous = allocationOf('t1', [
      { type: 0, allocated: 0, total: 0 },
      { type: 1, allocated: 0, total: 0 },
    ]);
    expect(previous.totals.allocatedRatio).toBeNull();
    const current = allocationOf('t2', [
      { type: 0, allocated: 95, total: 100 },
      { type: 1, allocated: 95, total: 100 },
    ]);
    expect(findThresholdCrossings(previous, current, [0.8])).toEqual([]);
  });

  it('crosses nothing to a space whose new total is 0 (no ratio)', () => {
    const previous = allocationOf('t1', [
      { type: 0, allocated: 95, total: 100 },
      { type: 1, allocated: 95, total: 100 },
    ]);
    const current = allocationOf('t2', [
      { type: 0, allocated: 0, total: 0 },
      { type: 1, allocated: 0, total: 0 },
    ]);
    expect(current.totals.allocatedRatio).toBeNull();
    expect(findThresholdCrossings(previous, current, [0.8])).toEqual([]);
  });
});
