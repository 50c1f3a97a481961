/** What one KooDrive attempt adds to the snapshot function's metrics. */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { AttemptReport } from '../../lib/koodrive/client.ts';
import { METRIC_NAMES, recordAttempt } from '../../lib/metrics.ts';

/** An attempt of one call: its trace id is the same on every attempt. */
const CALL = { tenantId: 'acme', koodriveTraceId: 'f'.repeat(58) } as const;

function recorded(report: AttemptReport): Array<[string, number]> {
  const added: Array<[string, number]> = [];
  const metrics = { addMetric: (name: string, _unit: string, value: number) => added.push([name, value]) };
  recordAttempt(metrics as unknown as Metrics, report);
  return added;
}

describe('recordAttempt', () => {
  it('times the answered attempts only, and counts every retry', () => {
    expect(recorded({ ...CALL, attempt: 1, outcome: 'ok', durationMs: 120 })).toEqual([
      [METRIC_NAMES.upstreamLatency, 120],
    ]);
    expect(recorded({ ...CALL, attempt: 2, outcome: 'ok', durationMs: 95 })).toEqual([
      [METRIC_NAMES.upstreamLatency, 95],
      [METRIC_NAMES.upstreamRetries, 1],
    ]);
    // A refused connection fails in a millisecond: timing it would make KooDrive look fast in an outage.
    expect(
      recorded({
        ...CALL,
        attempt: 1,
        outcome: 'retryable',
        reason: 'UPSTREAM_ERROR',
        networkError: 'ECONNREFUSED',
        durationMs: 1,
      }),
    ).toEqual([]);
    expect(
      recorded({
        ...CALL,
        attempt: 3,
        outcome: 'error',
        reason: 'UPSTREAM_TIMEOUT',
        networkError: 'timeout',
        durationMs: 5000,
      }),
    ).toEqual([[METRIC_NAMES.upstreamRetries, 1]]);
  });
});
