import { ConfigurationError } from './errors.ts';
import { parseSecretIdTemplate, parseTenants, type TenantRegistry } from './tenants.ts';

/** Everything the functions read from the environment, typed and validated once. */
export interface Config {
  tenants: TenantRegistry;
  baseUrl: string;
  timeoutMs: number;
  maxAttempts: number;
  secretCacheSeconds: number;
  snapshotTable: string;
  snapshotRetentionDays: number;
  snapshotConcurrency: number;
  /** Key that makes history cursors tamper-evident. */
  cursorKey: string;
  /** Allocated-ratio thresholds that raise events when crossed. */
  thresholds: number[];
  /** Which allocation gauges each snapshot emits: every space type's and the totals', or the totals' only. */
  allocationMetrics: AllocationMetricsScope;
  /** EventBridge bus for the events the product publishes; empty: publish nothing. */
  eventBusName: string;
}

/** `ALLOCATION_METRICS`: each is a CloudWatch custom metric per tenant (priced per metric and month). */
const ALLOCATION_METRICS_SCOPES = ['every-space', 'totals'] as const;
export type AllocationMetricsScope = (typeof ALLOCATION_METRICS_SCOPES)[number];

/** The most KooDrive calls a snapshot run may make at once (`SNAPSHOT_CONCURRENCY`). */
export const MAX_SNAPSHOT_CONCURRENCY = 256;

export const DEFAULTS = {
  KOODRIVE_TENANTS: 'demo=koodrive/demo',
  KOODRIVE_SECRET_ID_TEMPLATE: 'koodrive/{tenantId}',
  KOODRIVE_BASE_URL: 'https://intl.myhuaweicloud-koodrive.com',
  KOODRIVE_TIMEOUT_MS: '5000',
  KOODRIVE_MAX_ATTEMPTS: '3',
  SECRET_CACHE_SECONDS: '300',
  SNAPSHOT_TABLE: 'koodrive-allocation-snapshots',
  SNAPSHOT_RETENTION_DAYS: '400',
  SNAPSHOT_CONCURRENCY: '8',
  HISTORY_CURSOR_KEY: 'koodrive-allocation-history-cursor',
  ALLOCATION_THRESHOLDS: '0.8,0.9,1.0',
  ALLOCATION_METRICS: 'every-space',
  EVENT_BUS_NAME: '',
} as const;

type Env = Record<string, string | undefined>;

function getString(env: Env, name: keyof typeof DEFAULTS): string {
  const value = env[name];
  return value === undefined || value.trim() === '' ? DEFAULTS[name] : value.trim();
}

/** The whole-number settings and their ranges. */
const INTEGER_RANGES = {
  KOODRIVE_TIMEOUT_MS: [1, 900_000],
  KOODRIVE_MAX_ATTEMPTS: [1, 10],
  SECRET_CACHE_SECONDS: [0, 86_400],
  SNAPSHOT_RETENTION_DAYS: [1, 36_500],
  SNAPSHOT_CONCURRENCY: [1, MAX_SNAPSHOT_CONCURRENCY],
} as const satisfies Partial<Record<keyof typeof DEFAULTS, readonly [number, number]>>;

function getInteger(env: Env, name: keyof typeof INTEGER_RANGES): number {
  const [min, max] = INTEGER_RANGES[name];
  const text = getString(env, name);
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigurationError(`${name} is '${text}': it must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

function getBaseUrl(env: Env): string {
  const text = getString(env, 'KOODRIVE_BASE_URL');
  return parseBaseUrl(text, 'KOODRIVE_BASE_URL');
}

// 127.0.0.0/8 as the URL parser normalizes it (127.1 and 0x7f.0.0.1 become 127.0.0.1), IPv6 ::1, localhost.
const LOOPBACK_HOSTNAME = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/** `text` without its trailing slashes; a loop, since /\/+$/ backtracks quadratically on a run of slashes. */
export function withoutTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end -= 1;
  return text.slice(0, end);
}

/** Whether a parsed URL's host is this machine's loopback interface. */
function isLoopbackHost(url: URL): boolean {
  return LOOPBACK_HOSTNAME.test(url.hostname);
}

/**
 * Checks an endpoint URL (from a setting or a secret) and returns it without a trailing slash; a path
 * (a proxy's prefix) is kept. KooDrive is HTTPS only, and every request carries an Authorization
 * header that can be replayed for 15 minutes, so plain http is refused except on loopback (the local
 * stack and tests). Errors name `where`, never the URL, which may come from a secret.
 */
export function parseBaseUrl(text: string, where: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigurationError(`${where} is not a URL: write it as https://host[:port][/path].`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigurationError(`${where} must be an http(s) URL, not ${url.protocol}.`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url)) {
    throw new ConfigurationError(
      `${where} must use https: with http:// the signed Authorization header would cross the network in cleartext (http:// is accepted only for loopback hosts: 127.0.0.0/8, [::1], localhost).`,
    );
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigurationError(
      `${where} must be a plain endpoint (scheme, host, port, path) with no query or credentials.`,
    );
  }
  return withoutTrailingSlashes(url.href);
}

/**
 * The thresholds' rule: comma-separated ratios above 0 and at most 10 (0.8 is 80 %), given once each
 * and in ascending order; undefined when `text` breaks it. The functions read ALLOCATION_THRESHOLDS by
 * it, and serverless/monitoring.ts checks the allocationThresholds parameter by it before a deploy.
 */
export function thresholdRatios(text: string): number[] | undefined {
  const values = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(Number);
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v <= 0 || v > 10)) return undefined;
  return [...new Set(values)].sort((a, b) => a - b);
}

function getThresholds(env: Env): number[] {
  const text = getString(env, 'ALLOCATION_THRESHOLDS');
  const values = thresholdRatios(text);
  if (values === undefined) {
    throw new ConfigurationError(
      `ALLOCATION_THRESHOLDS is '${text}': it must be comma-separated ratios above 0 and at most 10 (0.8 is 80 %), e.g. 0.8,0.9,1.0.`,
    );
  }
  return values;
}

function getAllocationMetrics(env: Env): AllocationMetricsScope {
  const text = getString(env, 'ALLOCATION_METRICS');
  const scope = ALLOCATION_METRICS_SCOPES.find((value) => value === text);
  if (scope === undefined) {
    throw new ConfigurationError(
      `ALLOCATION_METRICS is '${text}': it must be every-space (AllocatedGB, TotalGB and AllocatedRatio of each space type and of the totals) or totals (of the totals only: a quarter of the custom metrics with three space types).`,
    );
  }
  return scope;
}

/**
 * Reads and validates the configuration; a bad setting is a ConfigurationError naming the variable.
 * The settings of KooDrive calls and of the snapshots are checked when first read: the functions that
 * only read stored snapshots (history, charts) never read the former, and history and the live route
 * never the latter, so a mistyped KOODRIVE_BASE_URL or SNAPSHOT_RETENTION_DAYS breaks what uses it,
 * not the history an operator turns to while fixing it. {@link configProblems} reads them all.
 */
export function loadConfig(env: Env = process.env): Config {
  const once = <T>(read: () => T): (() => T) => {
    let value: { v: T } | undefined;
    return () => {
      value ??= { v: read() };
      return value.v;
    };
  };
  // The settings of KooDrive calls, read together on first use (the client takes them all).
  const callSettings = once(() => ({
    baseUrl: getBaseUrl(env),
    timeoutMs: getInteger(env, 'KOODRIVE_TIMEOUT_MS'),
    maxAttempts: getInteger(env, 'KOODRIVE_MAX_ATTEMPTS'),
    secretCacheSeconds: getInteger(env, 'SECRET_CACHE_SECONDS'),
  }));
  // The snapshots' settings, each on its own: a mistake in one fails what reads that one only (the
  // thresholds are the charts' too; retention, concurrency and metrics the snapshot function's alone).
  const retentionDays = once(() => getInteger(env, 'SNAPSHOT_RETENTION_DAYS'));
  const concurrency = once(() => getInteger(env, 'SNAPSHOT_CONCURRENCY'));
  const thresholds = once(() => getThresholds(env));
  const allocationMetrics = once(() => getAllocationMetrics(env));
  return {
    tenants: parseTenants(
      getString(env, 'KOODRIVE_TENANTS'),
      'KOODRIVE_TENANTS',
      // Set but empty: no template (every tenant names its secret); unset: the default.
      env.KOODRIVE_SECRET_ID_TEMPLATE === undefined
        ? DEFAULTS.KOODRIVE_SECRET_ID_TEMPLATE
        : parseSecretIdTemplate(env.KOODRIVE_SECRET_ID_TEMPLATE),
    ),
    get baseUrl() {
      return callSettings().baseUrl;
    },
    get timeoutMs() {
      return callSettings().timeoutMs;
    },
    get maxAttempts() {
      return callSettings().maxAttempts;
    },
    get secretCacheSeconds() {
      return callSettings().secretCacheSeconds;
    },
    snapshotTable: getString(env, 'SNAPSHOT_TABLE'),
    get snapshotRetentionDays() {
      return retentionDays();
    },
    get snapshotConcurrency() {
      return concurrency();
    },
    cursorKey: getString(env, 'HISTORY_CURSOR_KEY'),
    get thresholds() {
      return thresholds();
    },
    get allocationMetrics() {
      return allocationMetrics();
    },
    eventBusName: getString(env, 'EVENT_BUS_NAME'),
  };
}

/**
 * Every setting's mistake, each a message naming its variable (empty: all good): what packaging and the
 * local stack check before anything runs, so that no function meets them at run time.
 */
export function configProblems(env: Env): string[] {
  const checks: (() => unknown)[] = [
    () => loadConfig(env),
    () => getBaseUrl(env),
    ...Object.keys(INTEGER_RANGES).map((name) => () => getInteger(env, name as keyof typeof INTEGER_RANGES)),
    () => getThresholds(env),
    () => getAllocationMetrics(env),
  ];
  const problems: string[] = [];
  for (const check of checks) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      problems.push(error.message);
    }
  }
  return problems;
}

/** Configuration read on first use and kept while the container is warm; a bad setting fails that use, not init. */
export function lazyConfig(env: Env = process.env): () => Config {
  let config: Config | undefined;
  return () => {
    config ??= loadConfig(env);
    return config;
  };
}
