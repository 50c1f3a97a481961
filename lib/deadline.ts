import type { Context } from 'aws-lambda';

/** The invocation's end less `marginMs` (epoch ms); undefined when the context cannot tell (tests, tools). */
export function invocationDeadline(context: Context, marginMs: number): number | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  const remaining = context.getRemainingTimeInMillis();
  return Number.isFinite(remaining) ? Date.now() + remaining - marginMs : undefined;
}

/** The invocation's remaining time, as Lambda tells it; undefined when the context cannot tell. */
export function invocationTimeLeft(context: Context): (() => number) | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  return () => context.getRemainingTimeInMillis();
}

/**
 * Time the snapshot function keeps back from the invocation's end for the last tenants' DynamoDB writes
 * and logs: no KooDrive call or secret read runs into it. (Threshold events need more, 29 s: see
 * PUBLISH_RECORD_BUDGET_MS in lib/snapshots/job.ts. A tenant fetched in the last 9 s before this
 * margin keeps its events pending and fails the run, and Lambda's retry publishes them.) It outlasts one AWS call that gets no
 * answer (three tries of 5 s, lib/aws/request-handler.ts, plus the SDK's back-off), so that a DynamoDB or
 * EventBridge that stops answering still ends the run with its error and summary, not Lambda's timeout.
 * Here, free of the handler's dependencies, so that packaging can tell how many tenants a run reaches.
 */
export const SNAPSHOT_MARGIN_MS = 20_000;

/**
 * What to do when an invocation has no time left for a call: the HTTP functions' timeout (29 s) cannot
 * grow past API Gateway's 30 s; the snapshot function's can, and more lanes finish sooner.
 */
export const NO_TIME_ADVICE =
  "the live routes' 29 s cannot grow: lower KOODRIVE_TIMEOUT_MS × KOODRIVE_MAX_ATTEMPTS; in snapshot runs, raise the snapshot function's timeout or SNAPSHOT_CONCURRENCY";
