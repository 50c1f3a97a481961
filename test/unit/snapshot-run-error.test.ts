/** What a failed scheduled or custom run says: the tenants that failed, how many per error, what was stored. */
import { describe, expect, it } from 'vitest';
import { SnapshotRunError } from '../../handlers/snapshot.ts';
import type { SnapshotResult } from '../../lib/snapshots/job.ts';

const AT = '2026-11-28T04:00:00.000Z';

function result(tenantId: string, status: SnapshotResult['status'], errorCode?: string): SnapshotResult {
  return {
    tenantId,
    observedAt: AT,
    status,
    fetched: status !== 'duplicate',
    ...(errorCode ? { errorCode } : {}),
  };
}

describe('SnapshotRunError', () => {
  it('names the first twenty failed tenants and counts the failures per error code, most first', () => {
    const results = [
      ...Array.from({ length: 30 }, (_, i) => result(`t${i}`, 'failed', 'UPSTREAM_TIMEOUT')),
      result('cfg1', 'failed', 'CONFIGURATION_ERROR'),
      result('cfg2', 'failed', 'CONFIGURATION_ERROR'),
      result('sm', 'failed', 'CREDENTIALS_UNAVAILABLE'),
      result('ok', 'duplicate'),
    ];
    const error = new SnapshotRunError(AT, results);
    expect(error.message).toMatch(
      /^Snapshot at 2026-11-28T04:00:00\.000Z failed for 33 of 34 tenant\(s\): t0 \(UPSTREAM_TIMEOUT\), .*t19 \(UPSTREAM_TIMEOUT\) and 13 more\. By error: UPSTREAM_TIMEOUT 30, CONFIGURATION_ERROR 2, CREDENTIALS_UNAVAILABLE 1\. 0 stored, 1 already stored; /,
    );
    expect(error.failures).toHaveLength(33);
  });

  it('adds no count for a single failure, whose code stands beside its tenant', () => {
    const error = new SnapshotRunError(AT, [
      result('acme', 'failed', 'UPSTREAM_ERROR'),
      result('beta', 'duplicate'),
    ]);
    expect(error.message).toBe(
      'Snapshot at 2026-11-28T04:00:00.000Z failed for 1 of 2 tenant(s): acme (UPSTREAM_ERROR). 0 stored, 1 already stored; a retry of this event fetches only the missing ones.',
    );
  });
});
