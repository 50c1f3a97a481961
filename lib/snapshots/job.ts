/**
 * The snapshot job: for each tenant, fetch the allocation and store it under the event's time. Every
 * tenant is tried whatever happens to the others, a few at a time, and each outcome is reported.
 */
import type { FetchedAllocation } from '../allocation.ts';
import { AWS_REQUEST_HANDLER, DYNAMODB_MAX_ATTEMPTS } from '../aws/request-handler.ts';
import { AppError } from '../errors.ts';
import type { PublishOptions, PublishOutcome } from '../events.ts';
import type { Tenant } from '../tenants.ts';
import { findThresholdCrossings, type ThresholdCrossing } from '../thresholds.ts';
import type { Allocation } from '../types.ts';
import type { Snapshot, SnapshotSource, SnapshotStore, StoredSnapshotState, ThresholdHead } from './store.ts';

type SnapshotStatus = 'stored' | 'duplicate' | 'failed';

export interface SnapshotResult {
  tenantId: string;
  observedAt: string;
  status: SnapshotStatus;
  /** False when the snapshot was found already stored and KooDrive was not asked. */
  fetched: boolean;
  /** The X-Traceid of the KooDrive call, when one was made and answered. */
  traceId?: string;
  attempts?: number;
  /**
   * The snapshot this run stored: for status 'stored', and for 'failed' when the failure came after
   * the snapshot was written (moving the threshold head or publishing its events; they wait for the
   * event's redelivery). It is in the table either way, so it counts for metrics and alarms.
   */
  snapshot?: Snapshot;
  /**
   * Threshold events published by this run: this snapshot's (also ones left pending by an earlier run),
   * and those earlier snapshots still owed (see {@link ThresholdHead.owed}).
   */
  published?: ThresholdCrossing[];
  /**
   * Earlier snapshots whose owed events this run could not publish (they stay owed; every later run
   * tries again). They do not fail this snapshot.
   */
  owedFailures?: OwedFailure[];
  /**
   * The snapshot lies behind the tenant's threshold head (at this time), so by design it published no
   * threshold event: the head's own move announced the change. For the logs: "why no alert?".
   */
  behindThresholdHead?: string;
  /** For status 'failed': the error, and its code (an AppError code, else the error's name). */
  error?: unknown;
  errorCode?: string;
}

/** An earlier snapshot whose owed threshold events a run could not publish. */
interface OwedFailure {
  observedAt: string;
  error: unknown;
  errorCode: string;
}

/** What the store must offer for threshold events (all of it, or there are none). */
type ThresholdStoreMethod =
  | 'latest'
  | 'claimPendingEvents'
  | 'settlePendingEvents'
  | 'replacePendingEvents'
  | 'thresholdHead'
  | 'advanceThresholdHead'
  | 'forgetOwed'
  | 'snapshotState'
  | 'headMovedOnFrom';
type ThresholdStore = Pick<SnapshotStore, ThresholdStoreMethod>;

/** Threshold events: which ratios matter and how to publish a crossing. */
interface ThresholdWatch {
  thresholds: readonly number[];
  /** Publishes what it can; what was not accepted (or not tried) comes back in `failed` (it never rejects). */
  publish: (crossings: readonly ThresholdCrossing[], options?: PublishOptions) => Promise<PublishOutcome>;
}

export interface SnapshotJobDeps {
  store: Pick<SnapshotStore, 'put' | 'has'> &
    Partial<Pick<SnapshotStore, 'storedAmong' | ThresholdStoreMethod>>;
  /** When given (with a store that has the optional methods), crossings are published exactly once per snapshot. */
  thresholds?: ThresholdWatch;
  /** The tenant's allocation, live from KooDrive. At most `concurrency` of these run at once. */
  fetch: (tenant: Tenant) => Promise<FetchedAllocation>;
  /**
   * Work before the KooDrive call that needs no KooDrive slot (reading the tenant's secret), done
   * before taking one, so that slots wait only on KooDrive.
   */
  prepare?: (tenant: Tenant) => Promise<void>;
  /** The clock for publishing leases (epoch ms); default Date.now. */
  now?: () => number;
  /**
   * The invocation's remaining time in ms (Lambda's getRemainingTimeInMillis): a PutEvents call starts
   * only with {@link PUBLISH_RECORD_BUDGET_MS} of it left. Undefined: no limit (tools, tests).
   */
  timeLeft?: () => number;
  /** Called once per target as soon as its outcome is known (for logs). */
  onResult?: (result: SnapshotResult) => void;
  /**
   * Called when the bulk read of what is stored already failed (each tenant then asks for itself): the
   * run goes on, but a lasting failure (a role without dynamodb:BatchGetItem) is worth a log line.
   */
  onBulkReadFailure?: (error: unknown) => void;
}

export interface SnapshotTarget {
  tenant: Tenant;
  /** The triggering event's time, canonical ISO (`toISOString()`). */
  observedAt: string;
}

/** A short, secret-free name for an error: the product's code, else the error's class name. */
export function errorCodeOf(error: unknown): string {
  if (error instanceof AppError) return error.code;
  if (error instanceof Error) return error.name;
  return 'UNKNOWN_ERROR';
}

/** Runs `worker` over `items` with at most `concurrency` at a time; results keep the items' order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  // One iterator shared by every lane: each item is taken exactly once.
  const queue = items.entries();
  const lane = async () => {
    for (const [index, item] of queue) results[index] = await worker(item, index);
  };
  const lanes = Math.max(1, Math.min(Math.floor(concurrency), items.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}

/**
 * Tenants in progress per KooDrive slot: while some tenants wait for KooDrive, others read their
 * secret or write their snapshot, so store and Secrets Manager latency do not hold a slot idle.
 */
const TENANTS_PER_SLOT = 2;

/** At most `limit` of the functions given to `run` are running at any time; the others wait in order. */
export function createLimiter(limit: number): <R>(task: () => Promise<R>) => Promise<R> {
  const max = Math.max(1, Math.floor(limit));
  let running = 0;
  const waiting: (() => void)[] = [];
  // A freed slot passes straight to the oldest waiting task (`running` unchanged): were it counted free
  // until that task resumes, a caller arriving in between would take it too, one over the limit.
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next();
  };
  return async (task) => {
    if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else running += 1;
    try {
      return await task();
    } finally {
      release();
    }
  };
}

/**
 * How long an invocation holds a snapshot's threshold events while it publishes them: longer than the
 * EventBridge client can spend on a snapshot's few calls (5 s per request, one try each), shorter
 * than any redelivery (SQS visibility timeout, Lambda's asynchronous retries) comes back.
 */
export const PUBLISH_LEASE_MS = 60_000;

/**
 * A publishing lease from `now`: PUBLISH_LEASE_MS, and a random part of a second that makes it its
 * claimer's own, so that the store tells the SDK's retry of its own claim or replacement (the answer
 * lost) from another invocation's (see SnapshotStore.claimPendingEvents).
 */
export function leaseFrom(now: number): number {
  return now + PUBLISH_LEASE_MS + Math.random() * 1_000;
}

/** The longest one try of an AWS call may take (connection and request time limits). */
const AWS_TRY_MS = AWS_REQUEST_HANDLER.connectionTimeout + AWS_REQUEST_HANDLER.requestTimeout;

/**
 * The lease time a PutEvents call needs left before it starts: the call (one try), then the write that
 * settles its events (the DynamoDB client's three tries and their backoff), and a margin for clocks of
 * different hosts. A holder that stalled (a slow DynamoDB) stops publishing rather than overlap whoever
 * takes the events over once the lease has run out: that is what keeps one crossing from being
 * published by two holders.
 */
export const PUBLISH_CALL_BUDGET_MS = AWS_TRY_MS + (DYNAMODB_MAX_ATTEMPTS * AWS_TRY_MS + 1_000) + 3_000;

/**
 * The invocation time a PutEvents call needs left before it starts: the call (one try) and the write
 * that records what it published (the DynamoDB client's tries and their backoff). Lambda ending the
 * invocation between the two would leave accepted events pending, and whoever takes them over once the
 * lease has run out would publish them again; events not started stay pending and go out once.
 */
export const PUBLISH_RECORD_BUDGET_MS = AWS_TRY_MS + (DYNAMODB_MAX_ATTEMPTS * AWS_TRY_MS + 1_000);

/**
 * Publishing a snapshot's threshold events stopped short; `published` is what EventBridge accepted before
 * that (counted and logged like any others).
 */
abstract class PublishingStoppedError extends Error {
  readonly published: ThresholdCrossing[];
  constructor(message: string, published: ThresholdCrossing[]) {
    super(message);
    this.published = published;
  }
}

/** Another invocation is publishing (or took over) this snapshot's threshold events; retrying later is safe. */
export class EventsInProgressError extends PublishingStoppedError {
  /**
   * `leaseUntil`: when the other invocation's hold ends, when this one read it. `published`: what this
   * invocation published before it found the events taken over.
   */
  constructor(
    tenantId: string,
    observedAt: string,
    leaseUntil?: number,
    published: ThresholdCrossing[] = [],
  ) {
    super(
      `The threshold events of tenant '${tenantId}' at ${observedAt} are being published by another invocation ` +
        `(a delivery of the same event, or a later snapshot's run${leaseUntil === undefined ? '' : `; held until ${new Date(leaseUntil).toISOString()}`}); ` +
        `a retry${leaseUntil === undefined ? '' : ' after that'} finishes them if it did not.`,
      published,
    );
    this.name = 'EventsInProgressError';
  }
}

/** Some threshold events were not accepted by EventBridge; they stay pending on the snapshot. */
class EventsNotPublishedError extends PublishingStoppedError {
  constructor(
    tenantId: string,
    observedAt: string,
    failed: number,
    total: number,
    reason: string | undefined,
    published: ThresholdCrossing[] = [],
  ) {
    super(
      `${failed} of ${total} threshold events of tenant '${tenantId}' at ${observedAt} were not published` +
        `${reason === undefined ? '' : ` (${reason})`}; they stay pending on the snapshot and go out, alone, ` +
        "when the event is delivered again or with the tenant's next snapshot.",
      published,
    );
    this.name = 'EventsNotPublishedError';
  }
}

/** The events a failed publication got out all the same (counted and logged like any others). */
function publishedBefore(error: unknown): ThresholdCrossing[] {
  return error instanceof PublishingStoppedError ? error.published : [];
}

/** The threshold side of the job, when threshold events are wanted and the store can keep them. */
interface Thresholds {
  watch: ThresholdWatch;
  store: ThresholdStore;
  now: () => number;
  timeLeft: (() => number) | undefined;
}

function thresholdsOf(deps: SnapshotJobDeps): Thresholds | undefined {
  const { store, thresholds } = deps;
  if (
    thresholds === undefined ||
    store.latest === undefined ||
    store.claimPendingEvents === undefined ||
    store.settlePendingEvents === undefined ||
    store.replacePendingEvents === undefined ||
    store.thresholdHead === undefined ||
    store.advanceThresholdHead === undefined ||
    store.forgetOwed === undefined ||
    store.snapshotState === undefined ||
    store.headMovedOnFrom === undefined
  ) {
    return undefined;
  }
  return {
    watch: thresholds,
    store: store as ThresholdStore,
    now: deps.now ?? Date.now,
    timeLeft: deps.timeLeft,
  };
}

/**
 * Publishes events this invocation holds under `leaseUntil` (each call only with
 * {@link PUBLISH_CALL_BUDGET_MS} of the lease and {@link PUBLISH_RECORD_BUDGET_MS} of the invocation
 * left), then keeps pending exactly those EventBridge did not
 * accept (so a redelivery never repeats an accepted one), and takes the snapshot off the head's owed
 * list once nothing is pending. Rejects when some were not accepted.
 */
async function publishHeld(
  t: Thresholds,
  held: { tenantId: string; observedAt: string; events: ThresholdCrossing[]; leaseUntil: number },
): Promise<ThresholdCrossing[]> {
  if (held.events.length === 0) return [];
  const outcome = await t.watch.publish(held.events, {
    mayCall: () =>
      t.now() + PUBLISH_CALL_BUDGET_MS <= held.leaseUntil &&
      (t.timeLeft === undefined || t.timeLeft() >= PUBLISH_RECORD_BUDGET_MS),
  });
  const settled = await t.store.settlePendingEvents(
    held.tenantId,
    held.observedAt,
    outcome.failed,
    held.leaseUntil,
  );
  if (settled && outcome.failed.length === 0) {
    // A failure here leaves a stale entry, which costs the next run one claim that finds nothing.
    await t.store.forgetOwed(held.tenantId, held.observedAt).catch(() => undefined);
  }
  // The lease ran out before the settle (this invocation was held up): another delivery may have taken
  // the events over, and what this one did not publish is that one's to publish.
  // (This invocation's own lease is over, and the other's is not known here.)
  if (!settled) throw new EventsInProgressError(held.tenantId, held.observedAt, undefined, outcome.published);
  if (outcome.failed.length > 0) {
    throw new EventsNotPublishedError(
      held.tenantId,
      held.observedAt,
      outcome.failed.length,
      held.events.length,
      outcome.reason,
      outcome.published,
    );
  }
  return outcome.published;
}

/** The state a new snapshot is compared with: the head, or (no head yet) the newest snapshot. */
interface Baseline extends ThresholdHead {
  /** True for the stored head, which {@link baselineFor} always gives (it creates one when missing). */
  isHead: boolean;
}

/**
 * Read while KooDrive is asked: the tenant's head. A tenant with snapshots but no head (stored while no
 * event bus was set, or before the head existed, or whose first run stopped before creating it) gets
 * one first, at its newest snapshot, that snapshot owing its pending events if it has any: every
 * comparison is then with a head, whose conditional moves keep each crossing to one announcement. (A
 * newest snapshot merely standing in let two runs each count a crossing from it, or, its own run
 * giving up, none announce it.) Undefined: the tenant has no snapshot yet.
 */
async function baselineFor(t: Thresholds, tenantId: string): Promise<Baseline | undefined> {
  const head = await t.store.thresholdHead(tenantId);
  if (head !== undefined) return { ...head, isHead: true };
  const newest = await t.store.latest(tenantId);
  if (newest === undefined) return undefined;
  const state = await t.store.snapshotState(tenantId, newest.observedAt);
  const owes = (state?.pendingEvents.length ?? 0) > 0;
  // Conditional on no head: of two runs doing this at once, one writes it; both read what was written.
  await t.store.advanceThresholdHead(tenantId, undefined, newest, owes);
  const created = await t.store.thresholdHead(tenantId);
  if (created === undefined) {
    throw new Error(`The threshold head of tenant '${tenantId}' was not there after it was created.`);
  }
  return { ...created, isHead: true };
}

/** What publishing the head's owed list came to. */
interface OwedOutcome {
  published: ThresholdCrossing[];
  /** Snapshots whose owed events could not be published now; every later run tries them again. */
  failures: OwedFailure[];
}

/**
 * Publishes the events of the snapshots on the head's owed list (other than `self`, which its own
 * run handles), oldest first: events whose own snapshot's deliveries gave up (retries spent during an
 * EventBridge outage) go out with a later snapshot. Each is claimed under a lease like a redelivery
 * would; one held by another invocation is left to it. Never rejects: a failure is reported, and does
 * not fail the snapshot whose run found it (every later run tries again).
 */
async function publishOwed(
  t: Thresholds | undefined,
  tenantId: string,
  owed: readonly string[],
  self: string,
): Promise<OwedOutcome> {
  const outcome: OwedOutcome = { published: [], failures: [] };
  if (t === undefined) return outcome;
  for (const observedAt of owed) {
    if (observedAt === self) continue;
    try {
      const now = t.now();
      const claim = await t.store.claimPendingEvents(tenantId, observedAt, leaseFrom(now), now);
      // Published already (the entry outlived its events): a failure to forget it costs one more claim.
      if (claim.state === 'none') await t.store.forgetOwed(tenantId, observedAt).catch(() => undefined);
      if (claim.state !== 'claimed') continue;
      const { events, leaseUntil } = claim;
      outcome.published.push(...(await publishHeld(t, { tenantId, observedAt, events, leaseUntil })));
    } catch (error) {
      outcome.published.push(...publishedBefore(error));
      outcome.failures.push({ observedAt, error, errorCode: errorCodeOf(error) });
    }
  }
  return outcome;
}

/** What a snapshot's threshold events came to: those published, or why there are none. */
interface Announced {
  published: ThresholdCrossing[];
  /** The head the snapshot turned out to lie behind: it owes nothing. */
  behindHead?: string;
}

/** How many times a snapshot takes the head again after another invocation moved it first. */
const HEAD_ROUNDS = 5;

/**
 * Moves the tenant's threshold head to `current` and publishes the events that move owes, exactly once
 * along the head's history: each move is a conditional write from the head it was computed against, so
 * of two invocations comparing with the same head, one moves it and the other compares again with the
 * new head (or, now behind it, owes nothing). `start.head` is the head as last seen (undefined: none),
 * `start.against` the one `start.events` were computed against, held under `leaseUntil` when any, and
 * `start.comparedWith` what the stored snapshot records it was compared with, as read.
 */
async function advanceAndPublish(
  t: Thresholds,
  current: Allocation,
  start: {
    head: Baseline | undefined;
    against: string | undefined;
    events: ThresholdCrossing[];
    comparedWith: string | undefined;
  },
  leaseUntil: number,
): Promise<Announced> {
  const { tenantId, observedAt } = current;
  let { head, against, events, comparedWith } = start;
  for (let round = 0; round < HEAD_ROUNDS; round++) {
    if (head?.isHead) {
      // An earlier delivery of this snapshot moved the head here and stopped before publishing.
      if (head.observedAt === observedAt) {
        return { published: await publishHeld(t, { tenantId, observedAt, events, leaseUntil }) };
      }
      if (head.observedAt > observedAt) {
        // The head was here once and moved on (a later snapshot was compared with this one): this
        // snapshot's events, from its own move, are still owed. An outage of EventBridge longer than a
        // schedule period leaves exactly this for the redelivery.
        // The head lists it as owed (it moved here with the events pending), or a later snapshot
        // records it as what it was compared with; the head that follows snapshots stored without an
        // event bus (followHead) records no comparison, so the owed list is asked first.
        if (
          events.length > 0 &&
          (head.owed.includes(observedAt) ||
            (await t.store.headMovedOnFrom(tenantId, observedAt, head.observedAt)))
        ) {
          return { published: await publishHeld(t, { tenantId, observedAt, events, leaseUntil }) };
        }
        // Behind the head, never the head: the head's own moves reported the change. Nothing is owed.
        if (events.length > 0) await t.store.settlePendingEvents(tenantId, observedAt, [], leaseUntil);
        return { published: [], behindHead: head.observedAt };
      }
      if (head.observedAt !== against) {
        // The head moved since the events were computed (another snapshot in between): compare again.
        events = findThresholdCrossings(head.allocation, current, t.watch.thresholds);
        against = head.observedAt;
        const replaced = await t.store.replacePendingEvents(
          tenantId,
          observedAt,
          events,
          against,
          leaseUntil,
          comparedWith,
        );
        // Another invocation holds the events, or compared this snapshot again first (its retry sees how).
        if (!replaced) throw new EventsInProgressError(tenantId, observedAt);
        comparedWith = against;
      }
    }
    const from = head?.isHead ? head.observedAt : undefined;
    // With events to publish, the move also puts this snapshot on the head's owed list: if its own
    // deliveries cannot publish them, a later snapshot's run does.
    if (await t.store.advanceThresholdHead(tenantId, from, current, events.length > 0)) {
      return { published: await publishHeld(t, { tenantId, observedAt, events, leaseUntil }) };
    }
    const seen = await t.store.thresholdHead(tenantId);
    head = seen === undefined ? undefined : { ...seen, isHead: true };
  }
  throw new Error(
    `The threshold head of tenant '${tenantId}' kept moving under snapshot ${observedAt} (${HEAD_ROUNDS} tries); ` +
      "its events stay pending and the event's redelivery finishes them.",
  );
}

/**
 * Finishes what an earlier delivery of the same event stored but did not finish: its pending events
 * (published once, under a lease), or the head's move to it when that delivery stopped in between.
 */
async function finishPending(
  t: Thresholds | undefined,
  tenantId: string,
  observedAt: string,
): Promise<Announced> {
  if (t === undefined) return { published: [] };
  const stored = await t.store.snapshotState(tenantId, observedAt);
  if (stored === undefined) return { published: [] };
  if (stored.pendingEvents.length === 0) return finishHeadMove(t, stored);
  const now = t.now();
  const claim = await t.store.claimPendingEvents(tenantId, observedAt, leaseFrom(now), now);
  if (claim.state === 'none') return { published: [] };
  if (claim.state === 'held') throw new EventsInProgressError(tenantId, observedAt, claim.leaseUntil);
  const seen = await t.store.thresholdHead(tenantId);
  return advanceAndPublish(
    t,
    claim.snapshot,
    {
      head: seen === undefined ? undefined : { ...seen, isHead: true },
      against: claim.against,
      events: claim.events,
      comparedWith: claim.comparedWith,
    },
    claim.leaseUntil,
  );
}

/**
 * A stored snapshot with nothing pending whose delivery stopped before the head moved to it: moves the
 * head now (comparing again, and publishing, if the head moved since it was stored), so that the next
 * snapshot is compared with this one. Nothing to do when the head is here or past it.
 */
async function finishHeadMove(t: Thresholds, stored: StoredSnapshotState): Promise<Announced> {
  const { tenantId, observedAt } = stored.allocation;
  const seen = await t.store.thresholdHead(tenantId);
  if (seen !== undefined && seen.observedAt >= observedAt) return { published: [] };
  // No head yet: only the newest snapshot creates it (an older one would put it behind).
  if (seen === undefined && (await t.store.latest(tenantId))?.observedAt !== observedAt)
    return { published: [] };
  return advanceAndPublish(
    t,
    stored.allocation,
    {
      head: seen === undefined ? undefined : { ...seen, isHead: true },
      against: stored.comparedWith,
      events: [],
      comparedWith: stored.comparedWith,
    },
    leaseFrom(t.now()),
  );
}

/**
 * Without threshold events (no event bus), a tenant's head still follows its snapshots: once events are
 * wanted again, the next snapshot is compared with its previous one, not with the head left from before
 * (whose ratios may lie on the other side of a threshold by then). Only a head that exists moves (a
 * tenant without one gets it at its newest snapshot when events come back), and only forward. With
 * `stored`, the snapshot is read back first (a redelivery finishing the move of a run that stopped).
 */
async function followHead(
  store: SnapshotJobDeps['store'],
  tenantId: string,
  observedAt: string,
  stored?: Allocation,
): Promise<void> {
  const { thresholdHead, advanceThresholdHead, snapshotState } = store;
  if (thresholdHead === undefined || advanceThresholdHead === undefined) return;
  let to = stored;
  for (let round = 0; round < HEAD_ROUNDS; round++) {
    const head = await thresholdHead.call(store, tenantId);
    if (head === undefined || head.observedAt >= observedAt) return;
    to ??= (await snapshotState?.call(store, tenantId, observedAt))?.allocation;
    if (to === undefined) return;
    if (await advanceThresholdHead.call(store, tenantId, head.observedAt, to)) return;
  }
}

/** {@link publishOwed} with the head as it is now; nothing without threshold events. */
async function publishOwedOnHead(
  t: Thresholds | undefined,
  tenantId: string,
  self: string,
): Promise<OwedOutcome> {
  if (t === undefined) return { published: [], failures: [] };
  const head = await t.store.thresholdHead(tenantId).catch(() => undefined);
  return publishOwed(t, tenantId, head?.owed ?? [], self);
}

/** The result's fields for what the threshold events came to: this snapshot's, and those owed by earlier ones. */
function reportOf(
  announced: Announced,
  owed: OwedOutcome,
): Pick<SnapshotResult, 'published' | 'behindThresholdHead' | 'owedFailures'> {
  const published = [...announced.published, ...owed.published];
  return {
    ...(published.length > 0 ? { published } : {}),
    ...(announced.behindHead === undefined ? {} : { behindThresholdHead: announced.behindHead }),
    ...(owed.failures.length > 0 ? { owedFailures: owed.failures } : {}),
  };
}

/** What every target of one run shares. */
interface Run {
  source: SnapshotSource;
  deps: SnapshotJobDeps;
  /** Resolved once per run; undefined when no threshold events are wanted. */
  thresholds: Thresholds | undefined;
  kooDriveSlot: <R>(task: () => Promise<R>) => Promise<R>;
}

async function snapshotOne(
  target: SnapshotTarget,
  run: Run,
  knownStored: boolean | undefined,
): Promise<SnapshotResult> {
  const { source, deps, kooDriveSlot, thresholds: t } = run;
  const { tenant, observedAt } = target;
  const base = { tenantId: tenant.tenantId, observedAt };
  let fetched: FetchedAllocation | undefined;
  let written: Snapshot | undefined;
  try {
    // A redelivered event or a retried run finds most snapshots stored: a consistent read is far
    // cheaper than a KooDrive call. The conditional put below stays the guarantee.
    if (knownStored ?? (await deps.store.has(tenant.tenantId, observedAt))) {
      if (t === undefined) await followHead(deps.store, tenant.tenantId, observedAt);
      const announced = await finishPending(t, tenant.tenantId, observedAt);
      const owed = await publishOwedOnHead(t, tenant.tenantId, observedAt);
      return { ...base, status: 'duplicate', fetched: false, ...reportOf(announced, owed) };
    }
    // Both settle before either failure is reported: a baseline read that fails at once must not end
    // the tenant (and, with the last tenant, the invocation) while its KooDrive call still runs, to
    // finish in a later invocation of a warm container, unnamed in this one's log.
    const [fetchOutcome, baselineOutcome] = await Promise.allSettled([
      (async () => {
        await deps.prepare?.(tenant);
        return kooDriveSlot(() => deps.fetch(tenant));
      })(),
      t === undefined ? undefined : baselineFor(t, tenant.tenantId),
    ]);
    if (fetchOutcome.status === 'rejected') throw fetchOutcome.reason;
    fetched = fetchOutcome.value;
    if (baselineOutcome.status === 'rejected') throw baselineOutcome.reason;
    const answer = fetchOutcome.value;
    const baseline = baselineOutcome.value;
    const { allocation } = answer;
    const snapshot: Snapshot = {
      tenantId: tenant.tenantId,
      observedAt,
      // The normalized allocation's observedAt is when KooDrive answered.
      fetchedAt: allocation.observedAt,
      spaces: allocation.spaces,
      totals: allocation.totals,
      source,
      traceId: fetched.traceId,
    };
    // A snapshot behind the baseline (a late retry, a redriven or back-dated event) is kept for history
    // but owes no event: the baseline's own move already reported the change.
    const behind = baseline !== undefined && baseline.observedAt >= observedAt;
    const crossings =
      t === undefined || behind
        ? []
        : findThresholdCrossings(baseline?.allocation, snapshot, t.watch.thresholds);
    // Crossings are stored with the snapshot, held by this invocation, before they are published:
    // whoever stored it owes them, and a crash or a refusal leaves them for the event's redelivery.
    // Only threshold events use it (held pending events, and the head's move).
    const leaseUntil = t === undefined ? 0 : leaseFrom(t.now());
    if (t !== undefined && !behind && baseline !== undefined) snapshot.comparedWith = baseline.observedAt;
    if (crossings.length > 0) {
      snapshot.pendingEvents = crossings;
      snapshot.pendingLeaseUntil = leaseUntil;
      if (baseline?.isHead) snapshot.pendingAgainst = baseline.observedAt;
    }
    const status = await deps.store.put(snapshot);
    if (status === 'stored') written = snapshot;
    let announced: Announced = {
      published: [],
      ...(status === 'stored' && behind && baseline !== undefined ? { behindHead: baseline.observedAt } : {}),
    };
    // Every snapshot that is not behind moves the head: the next one is compared with it, so each event
    // names the tenant's previous snapshot, and a late snapshot is behind the newest one stored.
    if (status === 'stored' && t !== undefined && !behind) {
      announced = await advanceAndPublish(
        t,
        snapshot,
        {
          head: baseline,
          against: baseline?.isHead ? baseline.observedAt : undefined,
          events: crossings,
          comparedWith: snapshot.comparedWith,
        },
        leaseUntil,
      );
    } else if (status === 'stored' && t === undefined) {
      await followHead(deps.store, tenant.tenantId, observedAt, snapshot);
    } else if (status === 'duplicate') {
      // Another delivery stored it first: finish its events if it could not.
      announced = await finishPending(t, tenant.tenantId, observedAt);
    }
    // What earlier snapshots still owe; a stored snapshot takes the list from the head read as its
    // baseline (no extra read).
    const owed =
      status === 'stored'
        ? await publishOwed(t, tenant.tenantId, baseline?.owed ?? [], observedAt)
        : await publishOwedOnHead(t, tenant.tenantId, observedAt);
    return {
      ...base,
      status,
      fetched: true,
      traceId: fetched.traceId,
      attempts: fetched.attempts,
      ...(status === 'stored' ? { snapshot } : {}),
      ...reportOf(announced, owed),
    };
  } catch (error) {
    const published = publishedBefore(error);
    return {
      ...base,
      status: 'failed',
      ...(published.length > 0 ? { published } : {}),
      fetched: fetched !== undefined,
      ...(fetched === undefined ? {} : { traceId: fetched.traceId, attempts: fetched.attempts }),
      ...(written === undefined ? {} : { snapshot: written }),
      error,
      errorCode: errorCodeOf(error),
    };
  }
}

/**
 * Which targets are already stored, asked in batches before the run (a few calls instead of one per
 * tenant, and none on the lanes that wait for KooDrive). Undefined when the store cannot tell in bulk
 * or the bulk read failed: each tenant then asks for itself, and reports its own error.
 */
async function findStored(
  deps: SnapshotJobDeps,
  targets: readonly SnapshotTarget[],
  keyOf: (target: SnapshotTarget) => string,
): Promise<Set<string> | undefined> {
  const { store } = deps;
  if (store.storedAmong === undefined || targets.length === 0) return undefined;
  try {
    const byTime = new Map<string, string[]>();
    for (const target of targets) {
      const ids = byTime.get(target.observedAt) ?? [];
      ids.push(target.tenant.tenantId);
      byTime.set(target.observedAt, ids);
    }
    const stored = new Set<string>();
    for (const [observedAt, tenantIds] of byTime) {
      for (const tenantId of await store.storedAmong(tenantIds, observedAt)) {
        stored.add(keyOf({ tenant: { tenantId, secretId: '' }, observedAt }));
      }
    }
    return stored;
  } catch (error) {
    deps.onBulkReadFailure?.(error);
    return undefined;
  }
}

/**
 * Takes a snapshot for each target (tenant and time): at most `concurrency` KooDrive calls at once,
 * and {@link TENANTS_PER_SLOT} times as many tenants in progress. Never rejects: a failure is a
 * result. Identical targets are done once and share their result.
 */
export async function snapshotTargets(options: {
  targets: readonly SnapshotTarget[];
  source: SnapshotSource;
  deps: SnapshotJobDeps;
  concurrency: number;
}): Promise<SnapshotResult[]> {
  const { source, deps } = options;
  const keyOf = (target: SnapshotTarget) => `${target.tenant.tenantId}\n${target.observedAt}`;
  const unique = new Map<string, SnapshotTarget>();
  for (const target of options.targets) if (!unique.has(keyOf(target))) unique.set(keyOf(target), target);
  const distinct = [...unique.values()];
  const stored = await findStored(deps, distinct, keyOf);
  const run: Run = {
    source,
    deps,
    thresholds: thresholdsOf(deps),
    kooDriveSlot: createLimiter(options.concurrency),
  };
  const inProgress = Math.max(1, Math.floor(options.concurrency)) * TENANTS_PER_SLOT;
  // One tenant's snapshots (several SQS messages of a batch) are taken one after the other, oldest
  // first: each compares with the one before it, so a crossing is reported once, by the first snapshot
  // past it. Different tenants run side by side.
  const byTenant = new Map<string, SnapshotTarget[]>();
  for (const target of distinct) {
    const own = byTenant.get(target.tenant.tenantId);
    if (own === undefined) byTenant.set(target.tenant.tenantId, [target]);
    else own.push(target);
  }
  const byKey = new Map<string, SnapshotResult>();
  // An observer that throws (a log or metrics failure) must not end the run while other lanes still
  // call KooDrive and write, to finish in a later invocation of a warm container: every tenant is done
  // first, then the run rejects with what it threw.
  let observerFailed: { error: unknown } | undefined;
  await mapWithConcurrency([...byTenant.values()], inProgress, async (own) => {
    if (own.length > 1)
      own.sort((a, b) => (a.observedAt < b.observedAt ? -1 : a.observedAt > b.observedAt ? 1 : 0));
    for (const target of own) {
      const result = await snapshotOne(target, run, stored?.has(keyOf(target)));
      byKey.set(keyOf(target), result);
      try {
        deps.onResult?.(result);
      } catch (error) {
        observerFailed ??= { error };
      }
    }
  });
  if (observerFailed !== undefined) throw observerFailed.error;
  return options.targets.map((target) => {
    const result = byKey.get(keyOf(target));
    if (result === undefined) throw new Error('internal: a snapshot target has no result');
    return result;
  });
}

/** Snapshots the given tenants at one event time; one result per tenant, in the tenants' order. */
export function takeSnapshots(options: {
  tenants: readonly Tenant[];
  observedAt: string;
  source: SnapshotSource;
  deps: SnapshotJobDeps;
  concurrency: number;
}): Promise<SnapshotResult[]> {
  const { tenants, observedAt, ...rest } = options;
  return snapshotTargets({ ...rest, targets: tenants.map((tenant) => ({ tenant, observedAt })) });
}
