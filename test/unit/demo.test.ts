import { describe, expect, it } from 'vitest';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { findThresholdCrossings } from '../../lib/thresholds.ts';
import { demoDataAt } from '../../local/demo.ts';

const HOUR_START = Date.parse('2026-11-28T04:00:00.000Z');

function allocationAt(minute: number) {
  const at = new Date(HOUR_START + minute * 60_000);
  const { spaces, totals } = normalizeAllocation({ code: 0, data: demoDataAt(at) });
  return { tenantId: 'demo', observedAt: at.toISOString(), spaces, totals };
}

describe('the local demo tenant', () => {
  it('answers valid KooDrive data whose department space grows every minute', () => {
    const first = allocationAt(0);
    const later = allocationAt(10);
    expect(later.spaces[0]?.allocatedGB).toBe((first.spaces[0]?.allocatedGB ?? 0) + 20);
  });

  it('swings the personal space across the 80 % and 90 % thresholds, both ways, within an hour', () => {
    const crossings = [];
    for (let minute = 1; minute <= 60; minute++) {
      crossings.push(
        ...findThresholdCrossings(allocationAt(minute - 1), allocationAt(minute), [0.8, 0.9, 1]),
      );
    }
    const personal = crossings
      .filter((c) => c.spaceType === 'personal')
      .map((c) => `${c.threshold}:${c.direction}`);
    expect(personal.sort()).toEqual(['0.8:down', '0.8:up', '0.9:down', '0.9:up']);
    for (let minute = 0; minute < 60; minute++) {
      const ratio = allocationAt(minute).spaces[1]?.allocatedRatio ?? 0;
      expect(ratio).toBeGreaterThanOrEqual(0.75 - 1e-9);
      expect(ratio).toBeLessThanOrEqual(0.95 + 1e-9);
    }
  });
});
