import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchItemFailure, SQSBatchResponse } from 'aws-lambda';
import { fetchAllocation } from '../lib/allocation.ts';
import type { Config } from '../lib/config.ts';
import { invocationDeadline, invocationTimeLeft, SNAPSHOT_MARGIN_MS } from '../lib/deadline.ts';
import { InvalidRequestError } from '../lib/errors.ts';
import { createEventPublisher, type EventPublisher } from '../lib/events.ts';
import { createLogger, describeError } from '../lib/logger.ts';
import {
  createMetrics,
  METRIC_NAMES,
  recordAllocation,
  recordAttempt,
  recordSnapshotOutcome,
  recordTenantFailure,
} from '../lib/metrics.ts';
import { lazyRuntime, type Runtime } from '../lib/runtime.ts';
import { parseSnapshotEvent, type SnapshotRequest, type SnapshotTrigger } from '../lib/snapshots/events.ts';
import {
  errorCodeOf,
  type SnapshotJobDeps,
  type SnapshotResult,
  type SnapshotTarget,
  snapshotTargets,
  takeSnapshots,
} from '../lib/snapshots/job.ts';
import { lazySnapshotStore, type SnapshotSource, type SnapshotStore } from '../lib/snapshots/store.ts';
import type { Tenant } from '../lib/tenants.ts';

export interface SnapshotHandlerDeps {
  logger: Logger;
  getRuntime: () => Runtime;
  /** The store for this configuration, built once per container. */
  getStore: (config: Config) => SnapshotStore;
  /** Where threshold events go; none: no events. */
  getPublisher?: (config: Config) => EventPublisher | undefined;
  metrics?: Metrics;
  /** The clock that judges a requested event's time and times publishing leases; default Date.now. */
  now?: () => number;
}

/**
 * How far in the future a Snapshot Requested event's `time` may be: EventBridge lets the sender set it,
 * and a snapshot is stored (and keyed, and expired) under it. A few minutes allow for clock skew.
 */
const MAX_REQUESTED_FUTURE_MS = 5 * 60_000;

/**
 * How old a Snapshot Requested event's `time` may be. KooDrive tells only the present, so an old time
 * would file today's numbers as the allocation of long ago (and let any sender rewrite history). A day
 * covers every legitimate delay: EventBridge retries for an hour, Lambda keeps an event for six.
 */
const MAX_REQUESTED_AGE_MS = 24 * 3_600_000;

/** A Snapshot Requested event's time must be about now: a snapshot is stored (keyed, expired) under it. */
function checkRequestedTime(observedAt: string, now: number): void {
  const at = Date.parse(observedAt);
  const fix = 'send the event without Time (EventBridge sets it) or with the current time.';
  if (at > now + MAX_REQUESTED_FUTURE_MS) {
    throw new InvalidRequestError(
      `The Snapshot Requested event's time ${observedAt} is in the future (now ${new Date(now).toISOString()}); ` +
        `a snapshot is stored under its event's time: ${fix}`,
    );
  }
  if (at < now - MAX_REQUESTED_AGE_MS) {
    throw new InvalidRequestError(
      `The Snapshot Requested event's time ${observedAt} is more than a day old (now ${new Date(now).toISOString()}); ` +
        `KooDrive reports only the present, which cannot be stored as the allocation of that time: ${fix}`,
    );
  }
}

/** What a scheduled or custom-event invocation answers when every tenant succeeded. */
export interface SnapshotRunSummary {
  observedAt: string;
  source: SnapshotSource;
  stored: string[];
  duplicate: string[];
}

/** Some tenants of a scheduled or custom-event run failed; thrown after all were tried, so Lambda retries. */
export class SnapshotRunError extends Error {
  readonly observedAt: string;
  readonly failures: { tenantId: string; errorCode: string }[];
  constructor(observedAt: string, results: readonly SnapshotResult[]) {
    const failures = results
      .filter((result) => result.status === 'failed')
      .map((result) => ({ tenantId: result.tenantId, errorCode: result.errorCode ?? 'UNKNOWN_ERROR' }));
    const shown = failures.slice(0, 20).map((failure) => `${failure.tenantId} (${failure.errorCode})`);
    const more = failures.length > shown.length ? ` and ${failures.length - shown.length} more` : '';
    const duplicates = results.filter((result) => result.status === 'duplicate').length;
    // A failure after the snapshot was written (its threshold step) is counted as stored too, and said so.
    const eventsOwed = results.filter(
      (result) => result.status === 'failed' && result.snapshot !== undefined,
    ).length;
    const owed =
      eventsOwed === 0 ? '' : ` (${eventsOwed} of them failed only to publish their threshold events)`;
    // With many tenants failing, how they failed (an outage's one code, or a few misconfigured secrets)
    // says more than the first twenty names.
    const counts = new Map<string, number>();
    for (const { errorCode } of failures) counts.set(errorCode, (counts.get(errorCode) ?? 0) + 1);
    const byError =
      failures.length < 2
        ? ''
        : ` By error: ${[...counts]
            .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
            .map(([code, count]) => `${code} ${count}`)
            .join(', ')}.`;
    super(
      `Snapshot at ${observedAt} failed for ${failures.length} of ${results.length} tenant(s): ${shown.join(', ')}${more}.${byError} ` +
        `${storedCount(results)} stored${owed}, ${duplicates} already stored; a retry of this event fetches only the missing ones.`,
    );
    this.name = 'SnapshotRunError';
    this.observedAt = observedAt;
    this.failures = failures;
  }
}

/** Snapshots this run wrote: status 'stored', and 'failed' ones that failed after their write. */
function storedCount(results: readonly SnapshotResult[]): number {
  return results.filter((result) => result.snapshot !== undefined).length;
}

function logResult(logger: Logger, source: SnapshotSource, result: SnapshotResult): void {
  const keys = {
    tenantId: result.tenantId,
    observedAt: result.observedAt,
    source,
    fetched: result.fetched,
    ...(result.traceId === undefined ? {} : { koodriveTraceId: result.traceId }),
    ...(result.attempts === undefined ? {} : { attempts: result.attempts }),
    // Why a stored snapshot raised no threshold event although its numbers crossed one.
    ...(result.behindThresholdHead === undefined ? {} : { behindThresholdHead: result.behindThresholdHead }),
  };
  if (result.status === 'stored') logger.info('snapshot stored', keys);
  else if (result.status === 'duplicate') logger.info('snapshot already stored', keys);
  else {
    const stored = result.snapshot !== undefined;
    logger.error('snapshot failed', {
      ...keys,
      ...(stored ? { snapshotStored: true } : {}),
      // Every failure has a code: the contract's for ours, else the error's name (EventsNotPublishedError…).
      errorCode: result.errorCode,
      // Stored, then its threshold step failed (EventBridge refused, or another delivery holds the events):
      // an expected state that the redelivery finishes, not a bug, so its stack would only be noise.
      ...describeError(result.error, { stack: !stored }),
    });
  }
}

function tenantsOf(config: Config, request: SnapshotRequest): readonly Tenant[] {
  return request.tenantId === undefined ? config.tenants.all : [config.tenants.get(request.tenantId)];
}

/** Reads the settings a snapshot run uses, so that a wrong one throws its ConfigurationError here. */
function readSnapshotSettings(config: Config): void {
  void config.snapshotRetentionDays;
  void config.snapshotConcurrency;
  void config.thresholds;
  void config.allocationMetrics;
}

/** The snapshot function: an EventBridge schedule, an SQS batch, or a `Snapshot Requested` event. */
export function createSnapshotHandler(deps: SnapshotHandlerDeps) {
  const { logger } = deps;

  const { metrics } = deps;
  const jobDeps = (runtime: Runtime, source: SnapshotSource, invocation: Invocation): SnapshotJobDeps => {
    const { deadline, timeLeft } = invocation;
    const publisher = deps.getPublisher?.(runtime.config);
    return {
      store: deps.getStore(runtime.config),
      ...(deps.now === undefined ? {} : { now: deps.now }),
      ...(timeLeft === undefined ? {} : { timeLeft }),
      // Tenants not reached before the deadline fail fast and are reported, instead of a Lambda timeout
      // that would leave no record of which tenants were stored.
      fetch: (tenant) =>
        fetchAllocation(runtime.koodrive, tenant, deadline === undefined ? {} : { deadline }),
      // The secret is read (into the cache) before a KooDrive slot is taken, so slots wait only on
      // KooDrive; without a cache that would be a second read, so then the fetch reads it.
      ...(runtime.config.secretCacheSeconds > 0
        ? {
            prepare: async (tenant: Tenant) => {
              // Too late for a KooDrive call: the fetch reports UPSTREAM_TIMEOUT without reading anything.
              if (deadline !== undefined && deadline - Date.now() < PREPARE_MIN_MS) return;
              await runtime.credentials.get(tenant, deadline === undefined ? {} : { deadline });
            },
          }
        : {}),
      ...(publisher === undefined
        ? {}
        : {
            thresholds: {
              thresholds: runtime.config.thresholds,
              publish: (crossings, options) => publisher.publishThresholdCrossings(crossings, options),
            },
          }),
      onBulkReadFailure: (error) => {
        logger.warn('stored snapshots not read in bulk; each tenant checks its own', {
          errorCode: errorCodeOf(error),
          ...describeError(error, { stack: false }),
        });
      },
      onResult: (result) => {
        logResult(logger, source, result);
        if (result.published !== undefined) {
          logger.info('threshold events published', { tenantId: result.tenantId, events: result.published });
        }
        // Events an earlier snapshot still owes (EventBridge still refusing, say): the next run tries again.
        for (const owed of result.owedFailures ?? []) {
          logger.warn('threshold events still owed', {
            tenantId: result.tenantId,
            owedBy: owed.observedAt,
            errorCode: owed.errorCode,
            ...describeError(owed.error, { stack: false }),
          });
        }
        if (metrics === undefined) return;
        recordSnapshotOutcome(metrics, result.status);
        if (result.status === 'failed') recordTenantFailure(result.tenantId);
        // Written before its threshold step failed: in the table all the same, so counted and graphed.
        if (result.status === 'failed' && result.snapshot !== undefined)
          recordSnapshotOutcome(metrics, 'stored');
        if (result.snapshot !== undefined)
          recordAllocation(result.snapshot, runtime.config.allocationMetrics);
        if (result.published !== undefined) {
          metrics.addMetric(METRIC_NAMES.thresholdEvents, MetricUnit.Count, result.published.length);
        }
      },
    };
  };

  const runSqs = async (
    runtime: Runtime,
    trigger: Extract<SnapshotTrigger, { kind: 'sqs' }>,
    invocation: Invocation,
  ): Promise<SQSBatchResponse> => {
    const failures: SQSBatchItemFailure[] = [];
    const planned: { messageId: string; targets: SnapshotTarget[] }[] = [];
    for (const message of trigger.messages) {
      let targets: SnapshotTarget[] | undefined;
      let problem = message.problem;
      if (message.request !== undefined) {
        const { observedAt } = message.request;
        try {
          targets = tenantsOf(runtime.config, message.request).map((tenant) => ({ tenant, observedAt }));
        } catch (error) {
          problem = error instanceof Error ? error.message : 'unknown tenant';
        }
      }
      if (targets === undefined) {
        // Reported as failed: SQS redelivers it and, after maxReceiveCount, moves it to the dead-letter queue.
        logger.warn('SQS message rejected', { messageId: message.messageId, problem });
        failures.push({ itemIdentifier: message.messageId });
        continue;
      }
      planned.push({ messageId: message.messageId, targets });
    }
    // One pool for the whole batch, so SNAPSHOT_CONCURRENCY bounds the KooDrive calls of the invocation.
    const results = await snapshotTargets({
      targets: planned.flatMap((message) => message.targets),
      source: 'sqs',
      deps: jobDeps(runtime, 'sqs', invocation),
      concurrency: runtime.config.snapshotConcurrency,
    });
    let offset = 0;
    for (const message of planned) {
      const own = results.slice(offset, offset + message.targets.length);
      offset += message.targets.length;
      const failed = own.filter((result) => result.status === 'failed');
      if (failed.length > 0) {
        failures.push({ itemIdentifier: message.messageId });
        // Ties the message SQS will redeliver to the 'snapshot failed' lines that say why.
        logger.warn('SQS message failed', {
          messageId: message.messageId,
          failedTenants: failed.map((result) => result.tenantId),
        });
      }
    }
    logger.info('snapshot batch completed', {
      messages: trigger.messages.length,
      failedMessages: failures.length,
      stored: storedCount(results),
    });
    return { batchItemFailures: failures };
  };

  const run = async (event: unknown, context: Context): Promise<SQSBatchResponse | SnapshotRunSummary> => {
    try {
      const invocation: Invocation = {
        deadline: invocationDeadline(context, SNAPSHOT_MARGIN_MS),
        timeLeft: invocationTimeLeft(context),
      };
      const trigger = parseSnapshotEvent(event);
      const runtime = deps.getRuntime();
      // Every snapshot setting read now (each is read on first use): a wrong one fails the invocation
      // before any KooDrive call or write, not each tenant after its snapshot was stored.
      readSnapshotSettings(runtime.config);
      if (trigger.kind === 'sqs') return await runSqs(runtime, trigger, invocation);

      const source: SnapshotSource = trigger.kind;
      const { observedAt } = trigger.request;
      if (trigger.kind === 'event') checkRequestedTime(observedAt, (deps.now ?? Date.now)());
      logger.appendKeys({ source, observedAt, eventId: trigger.eventId });
      const results = await takeSnapshots({
        tenants: tenantsOf(runtime.config, trigger.request),
        observedAt,
        source,
        deps: jobDeps(runtime, source, invocation),
        concurrency: runtime.config.snapshotConcurrency,
      });
      // Every tenant was tried; failing now lets Lambda's retries and failure destination see it.
      if (results.some((result) => result.status === 'failed'))
        throw new SnapshotRunError(observedAt, results);
      const of = (status: SnapshotResult['status']) =>
        results.filter((result) => result.status === status).map((result) => result.tenantId);
      const summary = { observedAt, source, stored: of('stored'), duplicate: of('duplicate') };
      logger.info('snapshot run completed', {
        stored: summary.stored.length,
        duplicate: summary.duplicate.length,
      });
      return summary;
    } catch (error) {
      logger.error('snapshot invocation failed', describeError(error));
      throw error;
    }
  };

  // middy's early timeout is off: the deadline above ends KooDrive calls in time and reports them.
  const handler = middy<unknown, SQSBatchResponse | SnapshotRunSummary>(run, { timeoutEarlyInMillis: 0 }).use(
    // logEvent off whatever POWERTOOLS_LOGGER_LOG_EVENT says: an event is not a log line's business.
    injectLambdaContext(logger, { resetKeys: true, logEvent: false }),
  );
  return metrics === undefined ? handler : handler.use(logMetrics(metrics, { captureColdStartMetric: true }));
}

// The time a run keeps back for its last writes; in lib/deadline.ts, where packaging reads it too.
export { SNAPSHOT_MARGIN_MS };

/** Less time than this before the deadline, a tenant's secret is not read ahead of its KooDrive call. */
const PREPARE_MIN_MS = 1_000;

/** What an invocation's context says of its time. */
interface Invocation {
  /** When KooDrive calls and secret reads must end (epoch ms): the end less SNAPSHOT_MARGIN_MS. */
  deadline: number | undefined;
  /** The time left to the invocation's end: threshold events are published only with enough of it. */
  timeLeft: (() => number) | undefined;
}

/** One publisher per container, on the configured bus; no bus configured, no publisher. */
function lazyPublisher(): (config: Config) => EventPublisher | undefined {
  let publisher: EventPublisher | undefined;
  return (config) => {
    if (config.eventBusName === '') return undefined;
    publisher ??= createEventPublisher({ busName: config.eventBusName });
    return publisher;
  };
}

const logger = createLogger();
const metrics = createMetrics();
export const handler = createSnapshotHandler({
  logger,
  metrics,
  getRuntime: lazyRuntime({ logger, onAttempt: (report) => recordAttempt(metrics, report) }),
  getStore: lazySnapshotStore(),
  getPublisher: lazyPublisher(),
});
