/**
 * A local osls plugin: the snapshot function's reserved concurrency from the `snapshotReservedConcurrency`
 * stage parameter (`custom.snapshotConcurrency.reserved`). osls's own `reservedConcurrency` takes no empty
 * value, and the default is none: reserving takes from the account's unreserved pool, which must keep
 * 100, so a new account (a limit of 10) could not deploy. Checked at package time against the queue's
 * maximum concurrency, which the reservation must leave room for (and one more run for the schedule).
 *
 * It also warns (without refusing) when one snapshot run could not reach every configured tenant while
 * KooDrive answers no call in time (see {@link snapshotRunCapacity}).
 */
import { MAX_SNAPSHOT_CONCURRENCY } from '../lib/config.ts';
import { SNAPSHOT_MARGIN_MS } from '../lib/deadline.ts';
import { worstCaseBackoffMs } from '../lib/koodrive/client.ts';
import { parseSecretIdTemplate, parseTenants } from '../lib/tenants.ts';
import { asUserError } from './plugin-support.ts';

/** What decides how many tenants one snapshot run reaches. */
export interface RunSettings {
  /** Tenants of a run of the schedule (every configured tenant). */
  tenants: number;
  /** SNAPSHOT_CONCURRENCY: KooDrive calls at once. */
  concurrency: number;
  /** KOODRIVE_TIMEOUT_MS and KOODRIVE_MAX_ATTEMPTS. */
  timeoutMs: number;
  maxAttempts: number;
  /** The snapshot function's timeout, in seconds. */
  functionTimeoutSeconds: number;
}

export interface RunCapacity {
  /** What a run may spend on KooDrive: the function's timeout less SNAPSHOT_MARGIN_MS. */
  budgetMs: number;
  /** The longest one tenant takes: every attempt's full time limit, and the waits between them. */
  perTenantMs: number;
  /** Tenants one lane finishes in the budget, and all lanes together. */
  perLane: number;
  tenants: number;
}

/**
 * How many tenants one run reaches when every KooDrive attempt takes its full timeoutMs: each of the
 * `concurrency` lanes takes one tenant after another, each up to timeoutMs × maxAttempts and the waits
 * between attempts, within the function's timeout less SNAPSHOT_MARGIN_MS. With the defaults (300 s,
 * 5 s × 3, 8 at a time): 8 × ⌊280 s ÷ 15.3 s⌋ = 144. (Reading secrets and writing snapshots run beside
 * the KooDrive calls, so they are left out.) The tenants past it are not reached in that run: they
 * fail with UPSTREAM_TIMEOUT, left to the run's retries.
 */
export function snapshotRunCapacity(settings: RunSettings): RunCapacity {
  const budgetMs = settings.functionTimeoutSeconds * 1000 - SNAPSHOT_MARGIN_MS;
  const perTenantMs = settings.timeoutMs * settings.maxAttempts + worstCaseBackoffMs(settings.maxAttempts);
  const perLane = Math.max(0, Math.floor(budgetMs / perTenantMs));
  return { budgetMs, perTenantMs, perLane, tenants: perLane * settings.concurrency };
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** The packaging warning when the configured tenants do not fit one run's capacity; undefined when they do. */
export function capacityWarning(settings: RunSettings): string | undefined {
  const capacity = snapshotRunCapacity(settings);
  if (settings.tenants <= capacity.tenants) return undefined;
  const levers =
    "raise the snapshot function's timeout (serverless.yml, at most 900 s), or lower timeoutMs or maxAttempts";
  const lanes = capacity.perLane > 0 ? Math.ceil(settings.tenants / capacity.perLane) : undefined;
  const fix =
    lanes === undefined
      ? `Not even one tenant's attempts fit in a run: ${levers}.`
      : lanes <= MAX_SNAPSHOT_CONCURRENCY
        ? `To fit them, raise snapshotConcurrency to at least ${lanes}, or ${levers}.`
        : `To fit them, ${levers} (snapshotConcurrency would need ${lanes}, over its ${MAX_SNAPSHOT_CONCURRENCY}).`;
  return (
    `A snapshot run may not reach all ${settings.tenants} tenants while KooDrive is slow: ` +
    `each tenant may take ${seconds(capacity.perTenantMs)} (timeoutMs ${settings.timeoutMs} × maxAttempts ${settings.maxAttempts}, and ${seconds(capacity.perTenantMs - settings.timeoutMs * settings.maxAttempts)} between attempts), ` +
    `${settings.concurrency} at a time (snapshotConcurrency), in the ${seconds(capacity.budgetMs)} a run has (the snapshot function's timeout of ${settings.functionTimeoutSeconds} s less ${seconds(SNAPSHOT_MARGIN_MS)} kept for its last writes): ` +
    `${capacity.tenants} tenants fit when every KooDrive attempt takes its full timeoutMs; the others are not reached in that run (UPSTREAM_TIMEOUT, left to its retries). ` +
    `${fix} (README, "Known limits": one snapshot run's capacity.)`
  );
}

/** A whole number of at least 1 from a setting (YAML gives numbers, --param strings); undefined otherwise. */
function count(value: unknown): number | undefined {
  const text = String(value ?? '').trim();
  const number = Number(text);
  return /^\d+$/.test(text) && Number.isSafeInteger(number) && number >= 1 ? number : undefined;
}

/**
 * The settings of a snapshot run from the snapshot function's environment (the provider's, and its own
 * over it) and timeout; undefined when one of them is missing or malformed (the functions refuse those
 * settings themselves, naming them: this is a warning's business only).
 */
export function runSettingsOf(
  environment: Record<string, unknown>,
  functionTimeoutSeconds: unknown,
): RunSettings | undefined {
  let tenants: number;
  try {
    const template = environment.KOODRIVE_SECRET_ID_TEMPLATE;
    tenants = parseTenants(
      String(environment.KOODRIVE_TENANTS ?? ''),
      'tenants',
      typeof template === 'string' ? parseSecretIdTemplate(template) : '',
    ).all.length;
  } catch {
    return undefined;
  }
  const concurrency = count(environment.SNAPSHOT_CONCURRENCY);
  const timeoutMs = count(environment.KOODRIVE_TIMEOUT_MS);
  const maxAttempts = count(environment.KOODRIVE_MAX_ATTEMPTS);
  const timeout = count(functionTimeoutSeconds);
  if (
    concurrency === undefined ||
    timeoutMs === undefined ||
    maxAttempts === undefined ||
    timeout === undefined
  ) {
    return undefined;
  }
  return { tenants, concurrency, timeoutMs, maxAttempts, functionTimeoutSeconds: timeout };
}

/** The reserved concurrency for a parameter value, or undefined for none; throws what to write instead. */
export function reservedConcurrency(value: unknown, queueConcurrency: unknown): number | undefined {
  const text = String(value ?? '').trim();
  if (text === '') return undefined;
  const reserved = Number(text);
  const queue = Number(queueConcurrency);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(reserved) || reserved < 1) {
    throw new Error(
      `snapshotReservedConcurrency is '${text}': give a whole number of concurrent snapshot runs (e.g. 5), or leave it empty for none.`,
    );
  }
  if (Number.isSafeInteger(queue) && reserved < queue + 1) {
    throw new Error(
      `snapshotReservedConcurrency ${reserved} leaves no room for the queue's ${queue} concurrent runs (snapshotQueueConcurrency) and the schedule's one: give at least ${queue + 1}.`,
    );
  }
  return reserved;
}

interface ServerlessLike {
  service: {
    custom?: Record<string, unknown>;
    provider?: { environment?: Record<string, unknown>; timeout?: unknown };
    functions: Record<
      string,
      { reservedConcurrency?: number; timeout?: unknown; environment?: Record<string, unknown> } | undefined
    >;
  };
}

/** What osls gives a plugin besides the service: its log, whose warnings it prints as such. */
interface PluginUtils {
  log?: { warning: (message: string) => void };
}

/** The plugin osls loads from `plugins:`. */
export default class ConcurrencyPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike, _options?: unknown, utils: PluginUtils = {}) {
    const warn = (message: string) => {
      if (utils.log === undefined) console.warn(`Warning: ${message}`);
      else utils.log.warning(message);
    };
    this.hooks = {
      'before:package:compileFunctions': () => {
        const fn = serverless.service.functions.snapshot;
        if (fn === undefined) return;
        const run = runSettingsOf(
          { ...serverless.service.provider?.environment, ...fn.environment },
          fn.timeout ?? serverless.service.provider?.timeout,
        );
        const warning = run === undefined ? undefined : capacityWarning(run);
        if (warning !== undefined) warn(warning);

        const settings = serverless.service.custom?.snapshotConcurrency as
          | { reserved?: unknown; queue?: unknown }
          | undefined;
        if (settings === undefined) return;
        let reserved: number | undefined;
        try {
          reserved = reservedConcurrency(settings.reserved, settings.queue);
        } catch (error) {
          throw asUserError(error);
        }
        if (reserved !== undefined) fn.reservedConcurrency = reserved;
      },
    };
  }
}
