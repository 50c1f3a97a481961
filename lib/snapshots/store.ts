/**
 * Where snapshots live: a small interface, and its DynamoDB adapter on the low-level client with
 * hand-written marshalling (the items are small and flat; no extra package in the bundles).
 *
 * Item: `tenantId` (HASH), `observedAt` (RANGE, the triggering event's time), `fetchedAt`, `expiresAt`
 * (TTL, epoch seconds), `spaces` as `[{type, allocatedGB, totalGB}]`, `source`, `traceId`. Derived
 * numbers (ratios, sums, type names) are not stored: they are recomputed on read by the same code
 * that normalizes KooDrive's answers, so a history item is exactly the contract's Allocation.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { AWS_REQUEST_HANDLER, DYNAMODB_MAX_ATTEMPTS } from '../aws/request-handler.ts';
import type { Config } from '../config.ts';
import { deriveAllocation } from '../koodrive/allocation.ts';
import type { ThresholdCrossing } from '../thresholds.ts';
import type { Allocation } from '../types.ts';
import { encodeCursor, verifyCursor } from './cursor.ts';
import { isCanonicalInstant, toKeyInstant } from './instants.ts';
import { beginTableRead, type TableUse, tableError } from './table-read.ts';

const SNAPSHOT_SOURCES = ['schedule', 'sqs', 'event'] as const;
/** What triggered a snapshot: the EventBridge schedule, an SQS message, or a Snapshot Requested event. */
export type SnapshotSource = (typeof SNAPSHOT_SOURCES)[number];

/** A snapshot to store: the allocation under the event's time, with when KooDrive was asked and by which call. */
export interface Snapshot extends Allocation {
  fetchedAt: string;
  source: SnapshotSource;
  /** The X-Traceid sent to KooDrive, to find the call in the vendor's logs. */
  traceId: string;
  /**
   * Threshold events owed for this snapshot, written with it and removed once published, so that a
   * crash or a failed publish is finished by the event's redelivery instead of being lost.
   */
  pendingEvents?: ThresholdCrossing[];
  /**
   * With pendingEvents: until when (epoch ms) the writer holds them for publishing. Another delivery
   * of the same event finds them held and backs off instead of publishing them a second time.
   */
  pendingLeaseUntil?: number;
  /**
   * With pendingEvents: the observedAt of the threshold head the events were computed against (none:
   * the tenant had no head). A redelivery that finds the head moved since computes them again.
   */
  pendingAgainst?: string;
  /**
   * The observedAt of the state this snapshot was compared with (the threshold head; in items written
   * before the head was created first, the newest snapshot that stood in for it); absent when there was none. Kept after its events
   * are published: a later snapshot that records this snapshot here shows that the head moved on from
   * it, so its own events, if still pending, are owed (see {@link SnapshotStore.headMovedOnFrom}).
   */
  comparedWith?: string;
}

/** A stored snapshot as the threshold side reads it back. */
export interface StoredSnapshotState {
  allocation: Allocation;
  /** Unpublished threshold events (none: published, or none owed). */
  pendingEvents: ThresholdCrossing[];
  comparedWith: string | undefined;
}

/**
 * The sort key of a tenant's threshold head item. It sorts after every ISO instant, so no time range
 * (history, charts) ever reaches it.
 */
export const THRESHOLD_HEAD_KEY = '~threshold-head';

/**
 * A tenant's threshold head: its newest snapshot in time order, which the next snapshot is compared
 * with. It moves only by a conditional write from the value it was read at, so two invocations cannot
 * both announce a crossing from the same state.
 */
export interface ThresholdHead {
  observedAt: string;
  allocation: Allocation;
  /**
   * The snapshots (observedAt, oldest first) whose threshold events were pending when the head moved to
   * them and are not yet known to be published. Every run that reads the head finishes them (see
   * {@link SnapshotStore.forgetOwed}), so events a snapshot's own deliveries could not publish (an
   * EventBridge outage longer than its retries) go out with a later snapshot instead of never.
   */
  owed: string[];
}

/** Who may publish a stored snapshot's pending threshold events (see {@link SnapshotStore.claimPendingEvents}). */
type PendingClaim =
  | {
      state: 'claimed';
      events: ThresholdCrossing[];
      leaseUntil: number;
      /** The head the events were computed against (see {@link Snapshot.pendingAgainst}). */
      against: string | undefined;
      /** What the snapshot records it was compared with (see {@link Snapshot.comparedWith}). */
      comparedWith: string | undefined;
      /** The snapshot that owes them. */
      snapshot: Allocation;
    }
  /** Nothing pending (published already, or nothing was owed); or no such snapshot. */
  | { state: 'none' }
  /**
   * Another invocation holds them (until `leaseUntil`, when one was read): it is publishing them now.
   */
  | { state: 'held'; leaseUntil?: number };

export type PutOutcome = 'stored' | 'duplicate';

interface HistoryQuery {
  tenantId: string;
  /** Both inclusive. */
  from: Date;
  to: Date;
  limit: number;
  /** A `nextCursor` from an earlier page of the same query. */
  cursor?: string;
  /** Newest first instead (pages and their items); the cursor then continues backwards. */
  newestFirst?: boolean;
  /**
   * Folds this page's items into what the earlier pages carried (undefined on the first page) and gives
   * what the next page gets, carried in the signed `nextCursor` (plain JSON). Called once per page.
   */
  carry?: (carried: unknown, items: readonly Allocation[]) => unknown;
  /**
   * When the read must be over (epoch ms, Date.now's clock), e.g. the invocation's end less the time
   * to answer: DynamoDB calls still running then are aborted and the query fails with STORE_UNAVAILABLE.
   */
  deadline?: number;
}

export interface HistoryPage {
  /** Oldest first. */
  items: Allocation[];
  /** Present only when more items follow. */
  nextCursor: string | null;
}

export interface SnapshotStore {
  /** Stores the snapshot unless one exists under the same tenant and observedAt (then 'duplicate'). */
  put(snapshot: Snapshot): Promise<PutOutcome>;
  /** Whether a snapshot exists under this tenant and observedAt (a strongly consistent read). */
  has(tenantId: string, observedAt: string): Promise<boolean>;
  /** Which of these tenants already have a snapshot at observedAt (strongly consistent, in batches). */
  storedAmong(tenantIds: readonly string[], observedAt: string): Promise<Set<string>>;
  /** The stored snapshot's unpublished threshold events (strongly consistent); undefined when there is no snapshot. */
  pendingEvents(tenantId: string, observedAt: string): Promise<ThresholdCrossing[] | undefined>;
  /**
   * Takes the snapshot's pending threshold events for publishing until `leaseUntil` (epoch ms), unless
   * another invocation holds them and its lease has not run out at `now` (a conditional update). A lease
   * must be its claimer's own (the job adds a random fraction of a second): finding the events held under
   * this very lease, the claim is the SDK's retry of one whose answer was lost, and it is claimed.
   */
  claimPendingEvents(
    tenantId: string,
    observedAt: string,
    leaseUntil: number,
    now: number,
  ): Promise<PendingClaim>;
  /**
   * After publishing under the lease `leaseUntil`: keeps pending exactly the events in `remaining`
   * (none: all published) and gives the lease up. False when the lease was lost meanwhile (another
   * invocation took the events over): nothing is changed then. True also when the item already is as
   * asked and free (the write went through but its answer was lost, and the SDK's retry found the lease
   * gone).
   */
  settlePendingEvents(
    tenantId: string,
    observedAt: string,
    remaining: readonly ThresholdCrossing[],
    leaseUntil: number,
  ): Promise<boolean>;
  /**
   * Replaces the pending events (none: removes them and the lease), computed again against the head at
   * `against`, holding them until `leaseUntil`, if the snapshot still records `comparedWith` as what it
   * was compared with (the state the caller read). False when another invocation holds the events, or
   * compared the snapshot again first (and so owes, or has published, what this caller computed). True
   * also when the SDK's retry of this replacement, whose answer was lost, finds it made.
   */
  replacePendingEvents(
    tenantId: string,
    observedAt: string,
    events: readonly ThresholdCrossing[],
    against: string | undefined,
    leaseUntil: number,
    comparedWith: string | undefined,
  ): Promise<boolean>;
  /** The stored snapshot, its pending events and what it was compared with (strongly consistent). */
  snapshotState(tenantId: string, observedAt: string): Promise<StoredSnapshotState | undefined>;
  /**
   * Whether the tenant's head moved on from the snapshot at `observedAt`: a later snapshot, up to
   * `until`, records it as the state it was compared with (strongly consistent).
   */
  headMovedOnFrom(tenantId: string, observedAt: string, until: string): Promise<boolean>;
  /** The tenant's threshold head (strongly consistent); undefined when it has none yet. */
  thresholdHead(tenantId: string): Promise<ThresholdHead | undefined>;
  /**
   * Moves the tenant's threshold head to `to`, if it is still at `from` (undefined: if there is none),
   * adding `to` to the head's {@link ThresholdHead.owed} when `owes` (its events are pending). False
   * when another invocation moved it first.
   */
  advanceThresholdHead(
    tenantId: string,
    from: string | undefined,
    to: Allocation,
    owes?: boolean,
  ): Promise<boolean>;
  /** Takes the snapshot out of the head's {@link ThresholdHead.owed} (its events are published). */
  forgetOwed(tenantId: string, observedAt: string): Promise<void>;
  /**
   * One page of a tenant's snapshots in [from, to], oldest first; a bad cursor is an InvalidRequestError,
   * an unreadable table a StoreUnavailableError (503) or a ConfigurationError (no table, no permission).
   */
  query(query: HistoryQuery): Promise<HistoryPage>;
  /**
   * The tenant's newest snapshot, expired or not (strongly consistent); undefined when there is none. Not
   * the head. With a `deadline` (epoch ms), a call still running then is aborted: STORE_UNAVAILABLE.
   */
  latest(tenantId: string, options?: { deadline?: number }): Promise<Allocation | undefined>;
}

export interface DynamoSnapshotStoreOptions {
  /** Default: a client whose endpoint comes from the SDK's settings (AWS_ENDPOINT_URL_DYNAMODB locally). */
  client?: Pick<DynamoDBClient, 'send'>;
  tableName: string;
  /** SNAPSHOT_RETENTION_DAYS; a function: read when a snapshot is written (reads never need it). */
  retentionDays: number | (() => number);
  /** Signs history cursors (HISTORY_CURSOR_KEY). */
  cursorKey: string;
  /** For TTL filtering on read; default Date.now. */
  now?: () => number;
}

const SECONDS_PER_DAY = 86_400;
/** BatchGetItem takes at most 100 keys per call. */
const BATCH_GET_LIMIT = 100;
const BATCH_GET_ROUNDS = 5;
const NAMES = { '#t': 'tenantId', '#o': 'observedAt', '#e': 'expiresAt' } as const;
/**
 * What a history or chart read needs of an item (what itemToAllocation reads): not the trace id, the source,
 * the expiry or events still to publish, which DynamoDB then neither sends nor the SDK parses.
 */
const ALLOCATION_NAMES = { '#t': 'tenantId', '#o': 'observedAt', '#f': 'fetchedAt', '#s': 'spaces' } as const;
const ALLOCATION_PROJECTION = Object.keys(ALLOCATION_NAMES).join(', ');

/** The stored representation of one space: only what KooDrive reported. */
interface StoredSpace {
  type: number;
  allocatedGB: number;
  totalGB: number;
}

/** A DynamoDB item that is not a snapshot of this shape: data that needs an operator, not a retry. */
export class MalformedSnapshotItemError extends Error {
  /** The item's table key, as far as it could be read: what an operator looks up (or fixes) in the table. */
  itemKey: { tenantId?: string; observedAt?: string } | undefined;
  constructor(message: string) {
    super(`A stored snapshot item is malformed: ${message}.`);
    this.name = 'MalformedSnapshotItemError';
  }
}

/** The key attributes of an item (string ones only), for a {@link MalformedSnapshotItemError}. */
function itemKeyOf(item: Record<string, AttributeValue>): { tenantId?: string; observedAt?: string } {
  const tenantId = item.tenantId?.S;
  const observedAt = item.observedAt?.S;
  return {
    ...(tenantId === undefined ? {} : { tenantId }),
    ...(observedAt === undefined ? {} : { observedAt }),
  };
}

/**
 * The TTL of a snapshot in epoch seconds. It counts from observedAt, not from the write: the same event
 * then always produces the same item, and retention means "this long after the moment it describes",
 * also for a snapshot written late by a retry.
 */
function expiresAtFor(observedAt: string, retentionDays: number): number {
  return Math.floor(Date.parse(observedAt) / 1000) + retentionDays * SECONDS_PER_DAY;
}

/**
 * DynamoDB holds numbers of magnitude 1e-130 to about 1e126, and 0: a nonzero one closer to 0 is refused
 * ("Number underflow"), and with it the whole write, so every snapshot of a tenant whose answer has
 * one (a size of "1e-200" GB) would fail. A size that small is 0 for any purpose, so it is stored as 0.
 */
const SMALLEST_DYNAMODB_NUMBER = 1e-130;

/** The claim of a snapshot item whose pending events are held under `leaseUntil`. */
function claimOf(claimed: Record<string, AttributeValue>, leaseUntil: number): PendingClaim {
  const events = readPendingEvents(claimed);
  return events.length === 0
    ? { state: 'none' }
    : {
        state: 'claimed',
        events,
        leaseUntil,
        against: claimed.pendingAgainst?.S,
        comparedWith: claimed.comparedWith?.S,
        snapshot: itemToAllocation(claimed),
      };
}

function toNumberAttribute(value: number): AttributeValue {
  return { N: String(Math.abs(value) < SMALLEST_DYNAMODB_NUMBER ? 0 : value) };
}

function readString(item: Record<string, AttributeValue>, name: string): string {
  const value = item[name]?.S;
  if (value === undefined) throw new MalformedSnapshotItemError(`'${name}' is not a string`);
  return value;
}

function readNumber(attributes: Record<string, AttributeValue>, name: string, path: () => string): number {
  const text = attributes[name]?.N;
  const value = text === undefined ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new MalformedSnapshotItemError(`${path()}.${name} is not a non-negative number`);
  }
  return value;
}

/** The stored sizes; where an item is malformed, the error names it (built only then: this runs per item). */
function readSpaces(item: Record<string, AttributeValue>, where: () => string): StoredSpace[] {
  const list = item.spaces?.L;
  if (list === undefined) throw new MalformedSnapshotItemError(`${where()}: 'spaces' is not a list`);
  const spaces: StoredSpace[] = new Array(list.length);
  for (let index = 0; index < list.length; index++) {
    const path = () => `${where()}: spaces[${index}]`;
    const map = list[index]?.M;
    if (map === undefined) throw new MalformedSnapshotItemError(`${path()} is not a map`);
    // Any whole number, negative too: KooDrive's undocumented types are kept as `unknown` (allocation.ts).
    const type = Number(map.type?.N ?? Number.NaN);
    if (!Number.isSafeInteger(type))
      throw new MalformedSnapshotItemError(`${path()}.type is not a whole number`);
    spaces[index] = {
      type,
      allocatedGB: readNumber(map, 'allocatedGB', path),
      totalGB: readNumber(map, 'totalGB', path),
    };
  }
  return spaces;
}

/** Reads an item back into the contract's Allocation (with fetchedAt); derived fields are recomputed. */
export function itemToAllocation(item: Record<string, AttributeValue>): Allocation {
  try {
    const tenantId = readString(item, 'tenantId');
    const observedAt = readString(item, 'observedAt');
    const where = () => `tenant '${tenantId}' at ${observedAt}`;
    const fetchedAt = item.fetchedAt?.S;
    const stored = readSpaces(item, where);
    // The same arithmetic as KooDrive's answers get (one implementation of the contract's derived fields).
    const { spaces, totals } = deriveAllocation(stored);
    return { tenantId, observedAt, ...(fetchedAt === undefined ? {} : { fetchedAt }), spaces, totals };
  } catch (error) {
    // Which item: the key is what an operator looks up in the table.
    if (error instanceof MalformedSnapshotItemError) error.itemKey ??= itemKeyOf(item);
    throw error;
  }
}

/** What is stored of an allocation's spaces: only what KooDrive reported. */
function spacesAttribute(allocation: Pick<Allocation, 'spaces'>): AttributeValue {
  return {
    L: allocation.spaces.map((space) => ({
      M: {
        type: toNumberAttribute(space.type),
        allocatedGB: toNumberAttribute(space.allocatedGB),
        totalGB: toNumberAttribute(space.totalGB),
      },
    })),
  };
}

/** The item written for a snapshot. Nothing secret: ids, times, numbers and the trace id. */
export function snapshotToItem(snapshot: Snapshot, retentionDays: number): Record<string, AttributeValue> {
  for (const [name, value] of [
    ['observedAt', snapshot.observedAt],
    ['fetchedAt', snapshot.fetchedAt],
  ] as const) {
    // Keys must sort in time order; only toISOString()'s form does.
    if (!isCanonicalInstant(value)) {
      throw new RangeError(`Snapshot ${name} '${value}' is not in the form 2026-11-28T04:00:00.000Z.`);
    }
  }
  return {
    tenantId: { S: snapshot.tenantId },
    observedAt: { S: snapshot.observedAt },
    fetchedAt: { S: snapshot.fetchedAt },
    expiresAt: toNumberAttribute(expiresAtFor(snapshot.observedAt, retentionDays)),
    spaces: spacesAttribute(snapshot),
    source: { S: snapshot.source },
    traceId: { S: snapshot.traceId },
    ...(snapshot.comparedWith === undefined ? {} : { comparedWith: { S: snapshot.comparedWith } }),
    ...(snapshot.pendingEvents === undefined || snapshot.pendingEvents.length === 0
      ? {}
      : {
          pendingEvents: { S: JSON.stringify(snapshot.pendingEvents) },
          ...(snapshot.pendingAgainst === undefined
            ? {}
            : { pendingAgainst: { S: snapshot.pendingAgainst } }),
          ...(snapshot.pendingLeaseUntil === undefined
            ? {}
            : { pendingLease: toNumberAttribute(snapshot.pendingLeaseUntil) }),
        }),
  };
}

function readPendingEvents(item: Record<string, AttributeValue>): ThresholdCrossing[] {
  const text = item.pendingEvents?.S;
  if (text === undefined) return [];
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) {
    const error = new MalformedSnapshotItemError(`'pendingEvents' is not a list`);
    error.itemKey = itemKeyOf(item);
    throw error;
  }
  return parsed as ThresholdCrossing[];
}

/** The production client: endpoint and region from the SDK's own settings, bounded connection times. */
export function createDynamoClient(): DynamoDBClient {
  return new DynamoDBClient({ requestHandler: AWS_REQUEST_HANDLER, maxAttempts: DYNAMODB_MAX_ATTEMPTS });
}

function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** A conditional write's answer, or undefined when its condition did not hold; other errors are thrown. */
async function unlessConditionFails<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionalCheckFailure(error)) return undefined;
    throw error;
  }
}

function keyOf(tenantId: string, sortKey: string): Record<string, AttributeValue> {
  return { tenantId: { S: tenantId }, observedAt: { S: sortKey } };
}

/** How a command uses the table, for the operator's reading of its failure. */
function useOf(command: unknown): TableUse {
  if (command instanceof QueryCommand) return { read: true, action: 'dynamodb:Query' };
  if (command instanceof BatchGetItemCommand) return { read: true, action: 'dynamodb:BatchGetItem' };
  if (command instanceof PutItemCommand) return { read: false, action: 'dynamodb:PutItem' };
  return { read: false, action: 'dynamodb:UpdateItem' };
}

/**
 * `client` whose failures say what they mean for the table (STORE_UNAVAILABLE, or CONFIGURATION_ERROR
 * naming what to fix), so that a snapshot run that cannot store reports a code, not a bare SDK error.
 * A failed condition (a duplicate, a lease held elsewhere) passes unchanged.
 */
function explainingFailures(
  client: Pick<DynamoDBClient, 'send'>,
  table: string,
): Pick<DynamoDBClient, 'send'> {
  const send = async (command: unknown, options?: unknown): Promise<unknown> => {
    try {
      return await client.send(command as never, options as never);
    } catch (error) {
      throw tableError(error, table, useOf(command));
    }
  };
  return { send: send as DynamoDBClient['send'] };
}

/** Tries of a claim whose condition failed while the events were found pending and free. */
const CLAIM_ROUNDS = 3;

/** The snapshot store on a DynamoDB table keyed by tenantId (HASH) and observedAt (RANGE). */
export function createDynamoSnapshotStore(options: DynamoSnapshotStoreOptions): SnapshotStore {
  const client = explainingFailures(options.client ?? createDynamoClient(), options.tableName);
  const { tableName, cursorKey } = options;
  const retention = options.retentionDays;
  const retentionDays = () => (typeof retention === 'number' ? retention : retention());
  const now = options.now ?? Date.now;

  /**
   * The item under a key (strongly consistent), with only `attributes` when given. A Query rather than
   * GetItem: the same permission as the rest of the job, and the same cost.
   */
  const itemAt = async (
    tenantId: string,
    sortKey: string,
    attributes: readonly string[] = [],
  ): Promise<Record<string, AttributeValue> | undefined> => {
    const projected = Object.fromEntries(attributes.map((name, i) => [`#a${i}`, name]));
    const out = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#t = :t AND #o = :o',
        ExpressionAttributeNames: { '#t': NAMES['#t'], '#o': NAMES['#o'], ...projected },
        ExpressionAttributeValues: { ':t': { S: tenantId }, ':o': { S: sortKey } },
        ...(attributes.length === 0
          ? {}
          : { ProjectionExpression: ['#o', ...Object.keys(projected)].join(', ') }),
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    return out.Items?.[0];
  };

  const pendingEvents = async (
    tenantId: string,
    observedAt: string,
  ): Promise<ThresholdCrossing[] | undefined> => {
    const item = await itemAt(tenantId, observedAt, ['pendingEvents']);
    return item === undefined ? undefined : readPendingEvents(item);
  };

  const storedAmong = async (tenantIds: readonly string[], observedAt: string): Promise<Set<string>> => {
    const stored = new Set<string>();
    const ids = [...new Set(tenantIds)];
    for (let start = 0; start < ids.length; start += BATCH_GET_LIMIT) {
      let keys: Record<string, AttributeValue>[] | undefined = ids
        .slice(start, start + BATCH_GET_LIMIT)
        .map((tenantId) => ({ tenantId: { S: tenantId }, observedAt: { S: observedAt } }));
      // DynamoDB may leave keys unprocessed under load; ask again for those, a bounded number of times.
      for (let round = 0; keys !== undefined && keys.length > 0; round++) {
        if (round >= BATCH_GET_ROUNDS) throw new Error('DynamoDB left keys unprocessed after retries.');
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** round));
        const out: BatchGetItemCommandOutput = await client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [tableName]: {
                Keys: keys,
                ConsistentRead: true,
                ProjectionExpression: '#t',
                ExpressionAttributeNames: { '#t': NAMES['#t'] },
              },
            },
          }),
        );
        for (const item of out.Responses?.[tableName] ?? []) {
          const tenantId = item.tenantId?.S;
          if (tenantId !== undefined) stored.add(tenantId);
        }
        keys = out.UnprocessedKeys?.[tableName]?.Keys;
      }
    }
    return stored;
  };

  return {
    pendingEvents,
    storedAmong,

    async put(snapshot) {
      // Outside the write's failure handling: a bad SNAPSHOT_RETENTION_DAYS is a configuration error.
      const item = snapshotToItem(snapshot, retentionDays());
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: item,
            // The same event delivered again finds its snapshot here and stores nothing.
            ConditionExpression: 'attribute_not_exists(#o)',
            ExpressionAttributeNames: { '#o': NAMES['#o'] },
            // What is there, to tell another delivery's snapshot from this very write (below).
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return 'stored';
      } catch (error) {
        if (!isConditionalCheckFailure(error)) throw error;
        // The SDK sends a PutItem again when its answer was lost (a reset socket, its requestTimeout)
        // though DynamoDB applied it; the retry's condition then fails on this write itself. The item
        // is this one's when it records the same KooDrive call (a random trace id per call): another
        // delivery makes its own call. It holds this run's pending events, so it is 'stored', not a
        // duplicate whose events look held by someone else.
        const found =
          (error as { Item?: Record<string, AttributeValue> }).Item ??
          (await itemAt(snapshot.tenantId, snapshot.observedAt, ['traceId', 'fetchedAt']));
        return found?.traceId?.S === snapshot.traceId && found?.fetchedAt?.S === snapshot.fetchedAt
          ? 'stored'
          : 'duplicate';
      }
    },

    async has(tenantId, observedAt) {
      return (await pendingEvents(tenantId, observedAt)) !== undefined;
    },

    async claimPendingEvents(tenantId, observedAt, leaseUntil, nowMs) {
      for (let round = 0; round < CLAIM_ROUNDS; round++) {
        const out = await unlessConditionFails(
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: keyOf(tenantId, observedAt),
              UpdateExpression: 'SET #l = :until',
              ConditionExpression: 'attribute_exists(#p) AND (attribute_not_exists(#l) OR #l < :now)',
              ExpressionAttributeNames: { '#p': 'pendingEvents', '#l': 'pendingLease' },
              ExpressionAttributeValues: {
                ':until': toNumberAttribute(leaseUntil),
                ':now': toNumberAttribute(nowMs),
              },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        );
        if (out !== undefined) return claimOf(out.Attributes ?? {}, leaseUntil);
        // Nothing pending, or held: one consistent read tells which.
        const item = await itemAt(tenantId, observedAt);
        if (item?.pendingEvents === undefined) return { state: 'none' };
        const heldUntil = Number(item.pendingLease?.N);
        // Held by this very lease: the SDK's retry of this claim, whose answer was lost, found it made.
        // Leases are unique to their claimer (the job adds a random fraction of a second to each).
        if (heldUntil === leaseUntil) return claimOf(item, leaseUntil);
        if (Number.isFinite(heldUntil) && heldUntil >= nowMs) return { state: 'held', leaseUntil: heldUntil };
        // Pending and free: the holder settled (keeping refused events) or its lease ran out between the
        // update and the read. Those events are owed: claim again rather than report nothing pending.
      }
      // Free each time it was read, taken each time it was claimed: someone is at it; back off. (Until
      // when is not known: each read found the lease over.)
      return { state: 'held' };
    },

    async settlePendingEvents(tenantId, observedAt, remaining, leaseUntil) {
      const written = await unlessConditionFails(
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: keyOf(tenantId, observedAt),
            UpdateExpression: remaining.length === 0 ? 'REMOVE #p, #l, #a' : 'SET #p = :rest REMOVE #l',
            // Only while this invocation's lease is the one stored: a lease that ran out and was taken
            // over belongs to the invocation that took it.
            ConditionExpression: '#l = :until',
            ExpressionAttributeNames: {
              '#p': 'pendingEvents',
              '#l': 'pendingLease',
              ...(remaining.length === 0 ? { '#a': 'pendingAgainst' } : {}),
            },
            ExpressionAttributeValues: {
              ':until': toNumberAttribute(leaseUntil),
              ...(remaining.length === 0 ? {} : { ':rest': { S: JSON.stringify(remaining) } }),
            },
          }),
        ),
      );
      if (written !== undefined) return true;
      const item = await itemAt(tenantId, observedAt, ['pendingEvents', 'pendingLease']);
      return (
        item !== undefined &&
        item.pendingLease === undefined &&
        (item.pendingEvents?.S ?? '[]') === JSON.stringify(remaining)
      );
    },

    async replacePendingEvents(tenantId, observedAt, events, against, leaseUntil, comparedWith) {
      const none = events.length === 0;
      const written = await unlessConditionFails(
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: keyOf(tenantId, observedAt),
            // What the events were computed against is also what the snapshot now compares with.
            UpdateExpression: none
              ? `${against === undefined ? '' : 'SET #c = :against '}REMOVE #p, #l, #a`
              : `SET #p = :events, #l = :until${against === undefined ? ' REMOVE #a' : ', #a = :against, #c = :against'}`,
            // Only this invocation's events: held by no one, or by this very lease; and only from the state
            // the caller compared from. Without the second part, a delivery that read the snapshot before
            // another one compared it again, published and settled (no lease left) would write the same
            // events pending once more, and publish them a second time.
            ConditionExpression: `attribute_exists(#o) AND (attribute_not_exists(#l) OR #l = :until) AND ${
              comparedWith === undefined ? 'attribute_not_exists(#c)' : '#c = :compared'
            }`,
            ExpressionAttributeNames: {
              '#o': NAMES['#o'],
              '#p': 'pendingEvents',
              '#l': 'pendingLease',
              '#a': 'pendingAgainst',
              '#c': 'comparedWith',
            },
            ExpressionAttributeValues: {
              ':until': toNumberAttribute(leaseUntil),
              ...(none ? {} : { ':events': { S: JSON.stringify(events) } }),
              ...(against === undefined ? {} : { ':against': { S: against } }),
              ...(comparedWith === undefined ? {} : { ':compared': { S: comparedWith } }),
            },
          }),
        ),
      );
      if (written !== undefined) return true;
      // The SDK's retry of this very replacement, whose answer was lost, fails its condition only when the
      // write moved what the snapshot compares with (to `against`); it then finds that write made: `against`
      // compared with, and the events held under this lease (unique to its claimer) or, none left, nothing
      // pending (a state another writer could leave only by doing the same).
      if (against === undefined) return false;
      const item = await itemAt(tenantId, observedAt, [
        'pendingEvents',
        'pendingLease',
        'pendingAgainst',
        'comparedWith',
      ]);
      if (item === undefined || item.comparedWith?.S !== against) return false;
      if (none) return item.pendingEvents === undefined && item.pendingLease === undefined;
      return (
        Number(item.pendingLease?.N) === leaseUntil &&
        item.pendingEvents?.S === JSON.stringify(events) &&
        item.pendingAgainst?.S === against
      );
    },

    async snapshotState(tenantId, observedAt) {
      const item = await itemAt(tenantId, observedAt);
      return item === undefined
        ? undefined
        : {
            allocation: itemToAllocation(item),
            pendingEvents: readPendingEvents(item),
            comparedWith: item.comparedWith?.S,
          };
    },

    async headMovedOnFrom(tenantId, observedAt, until) {
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const out = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: '#t = :t AND #o BETWEEN :from AND :until',
            FilterExpression: '#c = :from',
            ProjectionExpression: '#o',
            ExpressionAttributeNames: { '#t': NAMES['#t'], '#o': NAMES['#o'], '#c': 'comparedWith' },
            ExpressionAttributeValues: {
              ':t': { S: tenantId },
              ':from': { S: observedAt },
              ':until': { S: until },
            },
            ConsistentRead: true,
            ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
          }),
        );
        if ((out.Items ?? []).length > 0) return true;
        startKey = out.LastEvaluatedKey;
      } while (startKey !== undefined);
      return false;
    },

    async thresholdHead(tenantId) {
      const item = await itemAt(tenantId, THRESHOLD_HEAD_KEY);
      if (item === undefined) return undefined;
      const observedAt = readString(item, 'last');
      const { spaces, totals } = deriveAllocation(
        readSpaces(item, () => `threshold head of tenant '${tenantId}'`),
      );
      const owed = [...(item.owed?.SS ?? [])].sort();
      return { observedAt, allocation: { tenantId, observedAt, spaces, totals }, owed };
    },

    async advanceThresholdHead(tenantId, from, to, owes = false) {
      const written = await unlessConditionFails(
        client.send(
          // An update, not a put: the head's `owed` set stays as it is, and only grows by this move.
          new UpdateItemCommand({
            TableName: tableName,
            Key: keyOf(tenantId, THRESHOLD_HEAD_KEY),
            UpdateExpression: `SET #last = :to, #s = :spaces${owes ? ' ADD #owed :owed' : ''}`,
            ConditionExpression: from === undefined ? 'attribute_not_exists(#o)' : '#last = :from',
            ExpressionAttributeNames: {
              '#last': 'last',
              '#s': 'spaces',
              ...(from === undefined ? { '#o': NAMES['#o'] } : {}),
              ...(owes ? { '#owed': 'owed' } : {}),
            },
            ExpressionAttributeValues: {
              ':to': { S: to.observedAt },
              ':spaces': spacesAttribute(to),
              ...(from === undefined ? {} : { ':from': { S: from } }),
              ...(owes ? { ':owed': { SS: [to.observedAt] } } : {}),
            },
          }),
        ),
      );
      return written !== undefined;
    },

    async forgetOwed(tenantId, observedAt) {
      await unlessConditionFails(
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: keyOf(tenantId, THRESHOLD_HEAD_KEY),
            UpdateExpression: 'DELETE #owed :done',
            // Never creates a head: an update of a missing item would write one with no state.
            ConditionExpression: 'attribute_exists(#o)',
            ExpressionAttributeNames: { '#owed': 'owed', '#o': NAMES['#o'] },
            ExpressionAttributeValues: { ':done': { SS: [observedAt] } },
          }),
        ),
      );
    },

    async query({ tenantId, from, to, limit, cursor, carry, deadline, newestFirst = false }) {
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new RangeError(`limit ${limit} is not a positive integer.`);
      const range = { tenantId, from: toKeyInstant(from), to: toKeyInstant(to) };
      let startKey: Record<string, AttributeValue> | undefined;
      let carried: unknown;
      if (cursor !== undefined) {
        const state = verifyCursor(cursorKey, cursor, range);
        startKey = { tenantId: { S: tenantId }, observedAt: { S: state.lastKey.observedAt } };
        carried = state.carry;
      }
      if (from.getTime() > to.getTime()) {
        // A range inside one millisecond (from=…00.0005Z&to=…00.0009Z, rounded outwards to the keys'
        // milliseconds): valid, but no key lies in it, and DynamoDB refuses a BETWEEN with reversed bounds.
        carry?.(carried, []);
        return { items: [], nextCursor: null };
      }
      const nowSeconds = Math.floor(now() / 1000);
      // One item more than the page: if it exists there is a next page, and no caller gets a last empty one.
      const wanted = limit + 1;
      const raw: Record<string, AttributeValue>[] = [];
      // Ends every call at the deadline; names DynamoDB's failures for the operator (table-read.ts).
      const read = beginTableRead(tableName, deadline);
      try {
        do {
          const input: QueryCommandInput = {
            TableName: tableName,
            KeyConditionExpression: '#t = :t AND #o BETWEEN :from AND :to',
            // TTL deletion lags expiry by up to days; expired snapshots are past retention and not shown.
            FilterExpression: 'attribute_not_exists(#e) OR #e > :now',
            ProjectionExpression: ALLOCATION_PROJECTION,
            ExpressionAttributeNames: { ...NAMES, ...ALLOCATION_NAMES },
            ExpressionAttributeValues: {
              ':t': { S: tenantId },
              ':from': { S: range.from },
              ':to': { S: range.to },
              ':now': toNumberAttribute(nowSeconds),
            },
            ScanIndexForward: !newestFirst,
            Limit: wanted - raw.length,
            ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
          };
          const out = await client.send(new QueryCommand(input), read.sendOptions);
          raw.push(...(out.Items ?? []));
          startKey = out.LastEvaluatedKey;
          // A page can stop short (1 MB, or items filtered out): keep reading until the page is full.
        } while (raw.length < wanted && startKey !== undefined);
      } catch (error) {
        throw read.failure(error);
      } finally {
        read.end();
      }

      const items = raw.slice(0, limit).map(itemToAllocation);
      const last = items.at(-1);
      const next = carry?.(carried, items);
      const nextCursor =
        raw.length > limit && last !== undefined
          ? encodeCursor(cursorKey, {
              ...range,
              lastKey: { tenantId, observedAt: last.observedAt },
              ...(next === undefined ? {} : { carry: next }),
            })
          : null;
      return { items, nextCursor };
    },

    async latest(tenantId, options = {}) {
      const read = beginTableRead(tableName, options.deadline);
      let out: QueryCommandOutput;
      try {
        out = await client.send(
          new QueryCommand({
            TableName: tableName,
            // Snapshots only: the threshold head sorts after every instant.
            KeyConditionExpression: '#t = :t AND #o < :head',
            ProjectionExpression: ALLOCATION_PROJECTION,
            ExpressionAttributeNames: { ...ALLOCATION_NAMES },
            ExpressionAttributeValues: { ':t': { S: tenantId }, ':head': { S: THRESHOLD_HEAD_KEY } },
            ScanIndexForward: false,
            ConsistentRead: true,
            Limit: 1,
          }),
          read.sendOptions,
        );
      } catch (error) {
        throw read.failure(error);
      } finally {
        read.end();
      }
      const [item] = out.Items ?? [];
      return item === undefined ? undefined : itemToAllocation(item);
    },
  };
}

/**
 * A store built on first use from the configuration and reused while the container is warm, so the
 * DynamoDB client (and its connections) are created once.
 */
export function lazySnapshotStore(
  options: { client?: Pick<DynamoDBClient, 'send'>; now?: () => number } = {},
): (config: Config) => SnapshotStore {
  let store: SnapshotStore | undefined;
  return (config) => {
    store ??= createDynamoSnapshotStore({
      ...options,
      tableName: config.snapshotTable,
      retentionDays: () => config.snapshotRetentionDays,
      cursorKey: config.cursorKey,
    });
    return store;
  };
}
