import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AllocationMetricsScope } from './config.ts';
import type { AttemptReport } from './koodrive/client.ts';
import type { Allocation } from './types.ts';

/**
 * CloudWatch metrics in Embedded Metric Format. Namespace and service come from Powertools'
 * variables (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME), set from stage parameters.
 */
export function createMetrics(): Metrics {
  return new Metrics({ defaultDimensions: {} });
}

export const METRIC_NAMES = {
  allocatedGB: 'AllocatedGB',
  totalGB: 'TotalGB',
  allocatedRatio: 'AllocatedRatio',
  snapshotsWritten: 'SnapshotsWritten',
  duplicatesSkipped: 'SnapshotDuplicatesSkipped',
  failures: 'SnapshotFailures',
  upstreamRetries: 'UpstreamRetries',
  upstreamLatency: 'UpstreamLatency',
  thresholdEvents: 'ThresholdEventsPublished',
} as const;

/**
 * A tenant's failed snapshot, counted per tenant as well (the service-wide SnapshotFailures only says
 * that some tenant fails): the dashboard then shows which one, also while the others keep storing.
 */
export function recordTenantFailure(tenantId: string): void {
  const document = new Metrics({ defaultDimensions: { Tenant: tenantId } });
  document.addMetric(METRIC_NAMES.failures, MetricUnit.Count, 1);
  document.publishStoredMetrics();
}

/**
 * Per-tenant gauges, one EMF document per tenant and space type, so dashboards can split by both; with
 * `scope` `totals`, the totals' only (each series is a custom metric CloudWatch bills per month).
 */
export function recordAllocation(
  allocation: Allocation,
  scope: AllocationMetricsScope = 'every-space',
): void {
  const rows = [
    { spaceType: 'totals', ...allocation.totals },
    ...(scope === 'totals'
      ? []
      : allocation.spaces.map((s) => ({
          ...s,
          spaceType: s.typeName === 'unknown' ? `unknown:${s.type}` : s.typeName,
        }))),
  ];
  for (const row of rows) {
    // One EMF document per tenant and space type: its own dimensions, all three values together.
    const document = new Metrics({
      defaultDimensions: { Tenant: allocation.tenantId, SpaceType: row.spaceType },
    });
    document.addMetric(METRIC_NAMES.totalGB, MetricUnit.Gigabytes, row.totalGB);
    document.addMetric(METRIC_NAMES.allocatedGB, MetricUnit.Gigabytes, row.allocatedGB);
    if (row.allocatedRatio !== null)
      document.addMetric(METRIC_NAMES.allocatedRatio, MetricUnit.NoUnit, row.allocatedRatio);
    document.publishStoredMetrics();
  }
}

/** Service-level counters, flushed with the invocation's other stored metrics. */
export function recordSnapshotOutcome(metrics: Metrics, status: 'stored' | 'duplicate' | 'failed'): void {
  const name =
    status === 'stored'
      ? METRIC_NAMES.snapshotsWritten
      : status === 'duplicate'
        ? METRIC_NAMES.duplicatesSkipped
        : METRIC_NAMES.failures;
  metrics.addMetric(name, MetricUnit.Count, 1);
}

/**
 * One KooDrive attempt: its latency when it was answered successfully (a refused connection fails in a
 * millisecond, and would make KooDrive look faster during an outage; failures count in UpstreamRetries
 * and SnapshotFailures), and a retry when it was not the first.
 */
export function recordAttempt(metrics: Metrics, report: AttemptReport): void {
  if (report.outcome === 'ok') {
    metrics.addMetric(METRIC_NAMES.upstreamLatency, MetricUnit.Milliseconds, report.durationMs);
  }
  if (report.attempt > 1) metrics.addMetric(METRIC_NAMES.upstreamRetries, MetricUnit.Count, 1);
}
