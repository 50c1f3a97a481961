/**
 * The cost note: what one tenant costs per month at the default 15-minute schedule, from measured
 * figures (duration, bytes per snapshot, calls per snapshot) and us-east-1 list prices.
 */

/** us-east-1 list prices (no free tier), as published on the AWS pricing pages; see `asOf`. */
const PRICES = {
  asOf: 'as published on the AWS pricing pages in 2025, not re-checked here (no network): verify before quoting',
  region: 'us-east-1',
  lambdaRequestPerMillion: 0.2,
  /** serverless.yml deploys arm64 (Graviton); x86_64 is 0.0000166667. */
  lambdaArmGbSecond: 0.0000133334,
  /** DynamoDB on-demand, Standard table class, since the 2024-11-01 price cut. */
  dynamoWriteRequestPerMillion: 0.625,
  dynamoReadRequestPerMillion: 0.125,
  dynamoStorageGbMonth: 0.25,
  secretPerMonth: 0.4,
  secretsApiCallsPer10k: 0.05,
  logsIngestionPerGb: 0.5,
  /** Custom metrics, the first 10,000 of an account (each namespace, name and dimension values). */
  cloudWatchMetricPerMonth: 0.3,
  /** Standard-resolution alarms, per metric an alarm evaluates (a Metrics Insights alarm: every series it matches). */
  cloudWatchAlarmMetricPerMonth: 0.1,
  /** Dashboards past an account's first three. */
  cloudWatchDashboardPerMonth: 3,
} as const;

/** AWS's month for pricing: 730 hours. */
const HOURS_PER_MONTH = 730;

export interface CostInputs {
  scheduleMinutes: number;
  retentionDays: number;
  memoryMb: number;
  /** DynamoDB item size of one snapshot (names + values), without the 100-byte storage overhead. */
  itemBytes: number;
  storageOverheadBytes: number;
  /** Duration of one run for a single-tenant deployment, ms (billed rounded up to whole ms). */
  singleTenantDurationMs: number;
  /** A tenant's share of one run's duration when many tenants share it, ms. */
  sharedDurationMsPerTenant: number;
  sharedTenants: number;
  /** Per snapshot, measured on the fan-out: DynamoDB writes and reads, Secrets Manager reads, log bytes. */
  writesPerSnapshot: number;
  readsPerSnapshot: number;
  secretReadsPerSnapshot: number;
  logBytesPerSnapshot: number;
  /** Custom metrics one tenant's snapshots create (its gauges), measured from the EMF documents. */
  metricsPerTenant: number;
  /** Series of one tenant that each threshold alarm evaluates (its totals' ratio, or every space type's too). */
  alarmSeriesPerTenant: number;
  /** Metrics Insights alarms over the tenants' series: the allocated-ratio thresholds. */
  tenantQueryAlarms: number;
  /** The deployment's own custom metrics (counters, latency, each function's cold starts). */
  deploymentMetrics: number;
  /** The deployment's other alarms, one metric each (functions, queues, API, stale snapshots). */
  deploymentAlarms: number;
  dashboards: number;
}

interface CostLine {
  item: string;
  quantity: string;
  usd: number;
}

export interface CostNote {
  prices: typeof PRICES;
  inputs: CostInputs;
  runsPerMonth: number;
  storedItems: number;
  /** A deployment with one tenant: that tenant pays every invocation. */
  singleTenant: { lines: CostLine[]; totalUsd: number };
  /** One tenant's share when `sharedTenants` tenants share each scheduled invocation. */
  shared: { lines: CostLine[]; totalUsd: number };
}

const GIB = 1024 ** 3;

/** A count that may be an average: whole when it is one. */
function round(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function lines(
  inputs: CostInputs,
  runs: number,
  requestsPerTenant: number,
  durationMs: number,
  storedItems: number,
  /** Tenants sharing the deployment's own metrics, alarms and dashboard. */
  sharing: number,
) {
  const gbSeconds = runs * (durationMs / 1000) * (inputs.memoryMb / 1024);
  const writes = runs * inputs.writesPerSnapshot;
  const reads = runs * inputs.readsPerSnapshot;
  const storageGb = (storedItems * (inputs.itemBytes + inputs.storageOverheadBytes)) / GIB;
  const secretCalls = runs * inputs.secretReadsPerSnapshot;
  const logGb = (runs * inputs.logBytesPerSnapshot) / GIB;
  const result: CostLine[] = [
    {
      item: 'Lambda requests',
      quantity: requestsPerTenant.toFixed(requestsPerTenant < 100 ? 2 : 0),
      usd: (requestsPerTenant / 1e6) * PRICES.lambdaRequestPerMillion,
    },
    {
      item: `Lambda duration (${inputs.memoryMb} MB, arm64, ${durationMs.toFixed(1)} ms per run)`,
      quantity: `${gbSeconds.toFixed(2)} GB-s`,
      usd: gbSeconds * PRICES.lambdaArmGbSecond,
    },
    {
      item: 'DynamoDB writes (on-demand)',
      quantity: `${writes.toFixed(0)} WRU`,
      usd: (writes / 1e6) * PRICES.dynamoWriteRequestPerMillion,
    },
    {
      item: 'DynamoDB reads (on-demand, the job’s own)',
      quantity: `${reads.toFixed(0)} RRU`,
      usd: (reads / 1e6) * PRICES.dynamoReadRequestPerMillion,
    },
    {
      item: `DynamoDB storage (${storedItems} items × ${inputs.itemBytes + inputs.storageOverheadBytes} B)`,
      quantity: `${(storageGb * 1024).toFixed(2)} MiB`,
      usd: storageGb * PRICES.dynamoStorageGbMonth,
    },
    {
      item: 'Secrets Manager (1 secret + GetSecretValue calls)',
      quantity: `1 secret, ${secretCalls.toFixed(0)} calls`,
      usd: PRICES.secretPerMonth + (secretCalls / 1e4) * PRICES.secretsApiCallsPer10k,
    },
    {
      item: 'CloudWatch Logs ingestion',
      quantity: `${(logGb * 1024).toFixed(2)} MiB`,
      usd: logGb * PRICES.logsIngestionPerGb,
    },
    {
      item: 'CloudWatch custom metrics (the tenant’s allocation gauges)',
      quantity: `${round(inputs.metricsPerTenant)} metrics`,
      usd: inputs.metricsPerTenant * PRICES.cloudWatchMetricPerMonth,
    },
    {
      item: `CloudWatch threshold alarms (${inputs.tenantQueryAlarms} Metrics Insights alarms × the tenant’s ${round(inputs.alarmSeriesPerTenant)} ratio series)`,
      quantity: `${round(inputs.tenantQueryAlarms * inputs.alarmSeriesPerTenant)} alarm metrics`,
      usd: inputs.tenantQueryAlarms * inputs.alarmSeriesPerTenant * PRICES.cloudWatchAlarmMetricPerMonth,
    },
    {
      item:
        `CloudWatch for the deployment (${inputs.deploymentMetrics} metrics, ${inputs.deploymentAlarms} alarms, ` +
        `${inputs.dashboards} dashboard${inputs.dashboards === 1 ? '' : 's'})${sharing > 1 ? `, shared by ${sharing} tenants` : ''}`,
      quantity: sharing > 1 ? `1/${sharing}` : '1',
      usd:
        (inputs.deploymentMetrics * PRICES.cloudWatchMetricPerMonth +
          inputs.deploymentAlarms * PRICES.cloudWatchAlarmMetricPerMonth +
          inputs.dashboards * PRICES.cloudWatchDashboardPerMonth) /
        sharing,
    },
  ];
  return { lines: result, totalUsd: result.reduce((sum, line) => sum + line.usd, 0) };
}

/** Per tenant per month at the schedule, for a one-tenant deployment and for a tenant among many. */
export function computeCost(inputs: CostInputs): CostNote {
  const runsPerMonth = (HOURS_PER_MONTH * 60) / inputs.scheduleMinutes;
  // Steady state: TTL removes what is older than the retention.
  const storedItems = Math.round((inputs.retentionDays * 24 * 60) / inputs.scheduleMinutes);
  return {
    prices: PRICES,
    inputs,
    runsPerMonth,
    storedItems,
    // Lambda bills whole milliseconds per invocation.
    singleTenant: lines(
      inputs,
      runsPerMonth,
      runsPerMonth,
      Math.ceil(inputs.singleTenantDurationMs),
      storedItems,
      1,
    ),
    shared: lines(
      inputs,
      runsPerMonth,
      runsPerMonth / inputs.sharedTenants,
      inputs.sharedDurationMsPerTenant,
      storedItems,
      inputs.sharedTenants,
    ),
  };
}
