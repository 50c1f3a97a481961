/**
 * The snapshot function's SQS trigger under random batches: a model-based property test (fast-check)
 * of the real handler on the KooDrive simulator, the local Secrets Manager and dynalite, each reached
 * by the real clients through AWS_ENDPOINT_URL_* and KOODRIVE_BASE_URL.
 *
 * Four configured tenants, each with its own app in the simulator and its own secret; the secret of
 * the last one (`delta`) is, batch by batch, fine, missing, not JSON or lacking a field. Each case is a
 * run of SQS batches (1 to 10 records) against one table, mixing:
 *   - `{"tenantId": known}` and `{}` (every tenant), written in several JSON layouts;
 *   - unknown tenant ids that follow the id rule (`Acme`, `constructor`, 64 characters, ...);
 *   - malformed bodies: not JSON, JSON of another shape (an array, a string, another or an extra
 *     field), a tenantId that is not a string or breaks the contract's id rule, random strings and
 *     random JSON; and a few records whose SentTimestamp is missing or not epoch milliseconds;
 *   - SentTimestamps drawn from a few instants, so that messages and batches repeat them;
 *   - redeliveries of an earlier batch, whole or only its failed messages (same messageIds, bodies and
 *     SentTimestamps), alone or with new messages;
 * and per tenant per batch a script of KooDrive faults, each taken by the next call of that app:
 * HTTP 5xx and timeouts (retried: KOODRIVE_MAX_ATTEMPTS is 2) and `code` ≠ 0 refusals (never retried).
 *
 * The model, written from the contract and the README (not from lib/): a message is a request for
 * (tenant, SentTimestamp) — one target, or one per configured tenant for `{}`. A malformed message or
 * an unknown tenant fails that message alone. A target already stored succeeds without a KooDrive call
 * ("already stored" is success; the function does not call KooDrive for it); identical targets of a
 * batch are one snapshot; one tenant's new targets are taken one after the other, oldest first (README),
 * each taking the next answers of the tenant's fault script; `delta` with a broken secret fails every
 * new target of its own and asks KooDrive nothing. A message fails when any of its targets failed — so
 * `{}` fails when one tenant could not be stored, while the others' snapshots stay stored (they are
 * then "already stored" on redelivery).
 *
 * Checked after every batch:
 *   1. `batchItemFailures` names exactly the messages the model fails, each once;
 *   2. the table holds exactly one item per (tenant, time) some target stored — failed targets have
 *      none — with KooDrive's numbers of the batch that stored it, source `sqs` and a TTL of
 *      SNAPSHOT_RETENTION_DAYS after that time; KooDrive was called exactly as often as the model says
 *      (per app: no call for a stored snapshot, one snapshot per identical target, retries as the
 *      faults dictate);
 *   3. a redelivery of a batch that fully succeeded fails nothing, writes nothing and calls no one —
 *      also delivered at once again while KooDrive refuses every call and `delta`'s secret is gone.
 *
 * A second, smaller property races one batch in two containers (SQS hands a message to a second
 * function when its visibility timeout ran out): the first delivery fetches and stops before its first
 * write, the second runs whole on newer numbers, then the first goes on. Neither fails for it, and
 * each (tenant, time) is stored once, as the second delivery wrote it: the conditional put, which the
 * sequential property cannot tell from an unconditional one (a stored snapshot is never fetched again).
 *
 * When written, neither property found the product disagreeing with the contract (five more seeds of
 * 150 cases each); the coverage counts at the end keep the cases from passing vacuously.
 */
import { createHash } from 'node:crypto';
import { type AttributeValue, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSnapshotHandler } from '../../handlers/snapshot.ts';
import { createLogger } from '../../lib/logger.ts';
import { lazyRuntime } from '../../lib/runtime.ts';
import { createDynamoClient, lazySnapshotStore, type SnapshotStore } from '../../lib/snapshots/store.ts';
import { demoSecretString } from '../../local/demo.ts';
import {
  type KooDriveSimulator,
  type SimulatedFault,
  type SimulatorApp,
  startKooDriveSimulator,
} from '../../local/koodrive-simulator.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';
import sqsFixture from '../fixtures/events/sqs-batch.json' with { type: 'json' };
import { lambdaContext } from '../support/lambda.ts';
import { type Dynalite, startDynalite, TEST_CREDENTIALS, TEST_REGION } from './snapshots-support.ts';

const TENANT_IDS = ['acme', 'beta', 'gamma', 'delta'] as const;
type TenantId = (typeof TENANT_IDS)[number];
/** The tenant whose secret the cases break (batch by batch). */
const FRAGILE: TenantId = 'delta';
const APPS: Record<TenantId, SimulatorApp> = {
  acme: { appId: 'trigger-acme-app', appSecret: 'trigger-acme-secret-31415', userId: '201' },
  beta: { appId: 'trigger-beta-app', appSecret: 'trigger-beta-secret-27182', userId: '202' },
  gamma: { appId: 'trigger-gamma-app', appSecret: 'trigger-gamma-secret-16180', userId: '203' },
  delta: { appId: 'trigger-delta-app', appSecret: 'trigger-delta-secret-14142', userId: '204' },
};
const secretIdOf = (tenantId: TenantId) => `koodrive/${tenantId}`;

/** The contract's tenant id rule, as CONTRACT.md writes it (not imported from lib/). */
const CONTRACT_TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const MAX_ATTEMPTS = 2;
const RETENTION_DAYS = 30;
/** KOODRIVE_TIMEOUT_MS: a timeout fault costs this much; a local answer takes a few milliseconds. */
const TIMEOUT_MS = Number(process.env.SNAPSHOT_TRIGGERS_TIMEOUT_MS ?? 1_000);
/** A timeout fault would answer after this long (the client gives up first; closing cancels the wait). */
const SLOW_ANSWER_MS = 10_000;
/** SentTimestamps: a few instants (in the past, so no clock judges them), so that messages repeat them. */
const FIRST_SENT = Date.parse('2026-11-20T06:00:00.000Z');
const SLOTS = 5;
const sentAtSlot = (slot: number) => FIRST_SENT + slot * 60_000 + slot * 7;
/**
 * Fast-check's runs; a fixed seed keeps CI deterministic (set SNAPSHOT_TRIGGERS_SEED and
 * SNAPSHOT_TRIGGERS_RUNS to explore; SNAPSHOT_TRIGGERS_STATS=1 prints how often the cases met each situation).
 */
const NUM_RUNS = Number(process.env.SNAPSHOT_TRIGGERS_RUNS ?? 40);
const SEED = Number(process.env.SNAPSHOT_TRIGGERS_SEED ?? 20261129);
/** About 0.25 s a case on a 2-core machine; generous, so that only a hang fails on time. */
const TIME_LIMIT_MS = Math.max(60_000, NUM_RUNS * 2_000);

// ---------------------------------------------------------------------------------------------------
// The cases: batches of messages, KooDrive's numbers and faults, the fragile tenant's secret

type Fault = 'http-5xx' | 'refusal' | 'timeout';
type SecretState = 'ok' | 'missing' | 'not-json' | 'lacks-field';
interface Numbers {
  allocated: number;
  total: number;
}

/** One new message: its body, and its SentTimestamp (a slot, or a raw value that is not epoch ms). */
interface MessageSpec {
  body: string;
  sent: { slot: number } | { raw: string | undefined };
}

interface BatchSpec {
  /**
   * An earlier batch delivered again (index modulo the batches so far): whole, or its failed messages;
   * or (`succeeded`) one of the earlier batches that succeeded whole, whole.
   */
  redeliver: { of: number; which: 'all' | 'failed' | 'succeeded' } | null;
  fresh: MessageSpec[];
  /** Fresh messages first instead of the redelivered ones. */
  freshFirst: boolean;
  /** A new container (cold start) instead of the warm one. */
  cold: boolean;
  /**
   * When the batch succeeds whole, SQS delivers it again at once (a delete that did not happen), while
   * KooDrive refuses every call and the fragile tenant's secret is gone: nothing may be asked of them.
   */
  again: boolean;
  secret: SecretState;
  data: Record<TenantId, Numbers>;
  faults: Record<TenantId, Fault[]>;
}

const tenantIdArb = fc.constantFrom(...TENANT_IDS);

/** The same request in the JSON layouts a sender may use. */
const layoutArb = fc.constantFrom(
  (value: object) => JSON.stringify(value),
  (value: object) => JSON.stringify(value, null, 2),
  (value: object) => ` ${JSON.stringify(value).replaceAll(':', ' : ')}\n`,
);

const bodyArb: fc.Arbitrary<string> = fc.oneof(
  // A known tenant.
  {
    weight: 10,
    arbitrary: fc.tuple(tenantIdArb, layoutArb).map(([tenantId, layout]) => layout({ tenantId })),
  },
  // Every tenant.
  { weight: 4, arbitrary: fc.constantFrom('{}', ' { } ', '{\n}\n', '\t{}') },
  // An id that follows the rule but names no configured tenant.
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom('zeta', 'Acme', 'ACME', 'acme2', 'acme-', 'beta_', '0', 'a'.repeat(64)),
        fc.constantFrom('constructor', 'toString', 'hasOwnProperty', 'valueOf'),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,12}$/),
      )
      .map((tenantId) => JSON.stringify({ tenantId })),
  },
  // A tenantId that breaks the id rule.
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '',
        ' acme',
        'acme ',
        'ac me',
        '-acme',
        '_acme',
        'acme\n',
        'ácme',
        'acme/beta',
        'acme.beta',
        'acme,beta',
        '__proto__',
        'a'.repeat(65),
      )
      .map((tenantId) => JSON.stringify({ tenantId })),
  },
  // A tenantId that is not a string.
  {
    weight: 2,
    arbitrary: fc
      .constantFrom<unknown>(null, 42, 0, true, ['acme'], { tenantId: 'acme' })
      .map((tenantId) => JSON.stringify({ tenantId })),
  },
  // JSON of another shape.
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'null',
      '[]',
      '["acme"]',
      '[{"tenantId":"acme"}]',
      '"acme"',
      '42',
      'true',
      '{"tenant":"acme"}',
      '{"TenantId":"acme"}',
      '{"tenantId":"acme","force":true}',
      '{"tenantIds":["acme","beta"]}',
      '{"__proto__":{"tenantId":"acme"}}',
    ),
  },
  // Not JSON.
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      '{"tenantId":',
      'acme',
      "{'tenantId':'acme'}",
      '{tenantId: "acme"}',
      '{"tenantId":"acme"}}',
      'undefined',
      'tenantId=acme',
    ),
  },
  // Anything: random text, random JSON, a random tenantId (the model classifies them).
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
      fc.string({ maxLength: 70 }).map((tenantId) => JSON.stringify({ tenantId })),
    ),
  },
);

const messageArb: fc.Arbitrary<MessageSpec> = fc.record({
  body: bodyArb,
  sent: fc.oneof(
    { weight: 15, arbitrary: fc.record({ slot: fc.nat({ max: SLOTS - 1 }) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        raw: fc.constantFrom(
          undefined,
          '',
          'abc',
          '-1',
          '1795838400123.5',
          ' 1795838400123',
          '1.7e12',
          '9999999999999999',
        ),
      }),
    },
  ),
});

/** A message that the contract accepts: a known tenant or every tenant, at one of the instants. */
const acceptedMessageArb: fc.Arbitrary<MessageSpec> = fc.record({
  body: fc.oneof(
    { weight: 4, arbitrary: tenantIdArb.map((tenantId) => JSON.stringify({ tenantId })) },
    { weight: 1, arbitrary: fc.constant('{}') },
  ),
  sent: fc.record({ slot: fc.nat({ max: SLOTS - 1 }) }),
});

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Fault>('http-5xx') },
  { weight: 8, arbitrary: fc.constant<Fault>('refusal') },
  // Each costs KOODRIVE_TIMEOUT_MS, kept well above a local answer's time even on a loaded CI machine.
  { weight: 1, arbitrary: fc.constant<Fault>('timeout') },
);
const faultsArb: fc.Arbitrary<Fault[]> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Fault[]>([]) },
  { weight: 2, arbitrary: fc.array(faultArb, { minLength: 1, maxLength: 3 }) },
);
const numbersArb: fc.Arbitrary<Numbers> = fc.record({
  allocated: fc.nat({ max: 9_999 }),
  total: fc.nat({ max: 9_999 }),
});
const perTenant = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<Record<TenantId, T>> =>
  fc.record({ acme: arb, beta: arb, gamma: arb, delta: arb });

/** New messages only: any mix, or one with nothing malformed (that may succeed whole, to be delivered again). */
const freshBatchArb = fc.record({
  redeliver: fc.constant(null),
  fresh: fc.oneof(
    { weight: 3, arbitrary: fc.array(messageArb, { minLength: 1, maxLength: 10 }) },
    { weight: 2, arbitrary: fc.array(acceptedMessageArb, { minLength: 1, maxLength: 5 }) },
  ),
});

/** An earlier batch (or its failed messages) again, mostly alone, sometimes with new messages. */
const redeliveryBatchArb = fc.record({
  redeliver: fc.record({
    of: fc.nat({ max: 5 }),
    which: fc.constantFrom('all' as const, 'failed' as const, 'succeeded' as const),
  }),
  fresh: fc.oneof(
    { weight: 2, arbitrary: fc.constant<MessageSpec[]>([]) },
    { weight: 1, arbitrary: fc.array(messageArb, { minLength: 1, maxLength: 4 }) },
  ),
});

const batchArb: fc.Arbitrary<BatchSpec> = fc
  .tuple(
    fc.oneof(
      { weight: 3, arbitrary: freshBatchArb as fc.Arbitrary<Pick<BatchSpec, 'redeliver' | 'fresh'>> },
      { weight: 2, arbitrary: redeliveryBatchArb },
    ),
    fc.record({
      freshFirst: fc.boolean(),
      cold: fc.boolean(),
      again: fc.boolean(),
      secret: fc.oneof(
        { weight: 3, arbitrary: fc.constant<SecretState>('ok') },
        { weight: 1, arbitrary: fc.constantFrom<SecretState>('missing', 'not-json', 'lacks-field') },
      ),
      data: perTenant(numbersArb),
      faults: perTenant(faultsArb),
    }),
  )
  .map(([messages, circumstances]) => ({ ...messages, ...circumstances }));

const casesArb = fc.array(batchArb, { minLength: 2, maxLength: 6 });

// ---------------------------------------------------------------------------------------------------
// The model, from the contract and the README

/** What a message asks for: its targets' tenants and time, or why it is refused. */
type Ask = { refused: string } | { tenants: TenantId[]; sentAt: number };

const isKnown = (id: string): id is TenantId => (TENANT_IDS as readonly string[]).includes(id);

/** The contract's body: `{"tenantId": "…"}` for one configured tenant, or `{}` for every tenant. */
function askOf(body: string, sentAt: number | undefined): Ask {
  if (sentAt === undefined) return { refused: 'SentTimestamp is not epoch milliseconds' };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { refused: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { refused: 'not an object' };
  const keys = Object.keys(value);
  if (keys.some((key) => key !== 'tenantId')) return { refused: 'a field other than tenantId' };
  if (keys.length === 0) return { tenants: [...TENANT_IDS], sentAt };
  const tenantId: unknown = (value as { tenantId: unknown }).tenantId;
  if (typeof tenantId !== 'string' || !CONTRACT_TENANT_ID.test(tenantId))
    return { refused: 'invalid tenant id' };
  if (!isKnown(tenantId)) return { refused: 'unknown tenant' };
  return { tenants: [tenantId], sentAt };
}

const keyOf = (tenantId: string, sentAt: number) => `${tenantId} ${new Date(sentAt).toISOString()}`;

/** One tenant's KooDrive call for one snapshot, against its fault script: success, and calls made. */
function fetchAgainst(script: Fault[], cursor: { next: number }): { ok: boolean; calls: number } {
  for (let attempt = 1; ; attempt++) {
    const answer = script[cursor.next] ?? 'ok';
    cursor.next += 1;
    if (answer === 'ok') return { ok: true, calls: attempt };
    // Never retried on code ≠ 0; 5xx and timeouts up to KOODRIVE_MAX_ATTEMPTS attempts in all.
    if (answer === 'refusal' || attempt >= MAX_ATTEMPTS) return { ok: false, calls: attempt };
  }
}

interface Expected {
  failed: string[];
  /** The snapshots this batch adds, key → numbers. */
  added: Map<string, Numbers>;
  calls: Record<TenantId, number>;
  /** For the coverage counts: messages refused, targets failed by KooDrive or the secret, retries that won. */
  refused: number;
  failedByKooDrive: number;
  failedBySecret: number;
  retriedToSuccess: number;
  /** A `{}` message failed while some of its tenants were stored. */
  everyTenantPartly: boolean;
}

/** What the batch must do, given what is stored: from the messages, the faults and the secret. */
function expectBatch(
  stored: ReadonlyMap<string, Numbers>,
  records: readonly SqsRecord[],
  spec: BatchSpec,
): Expected {
  const asks = records.map((record) => askOf(record.body, sentAtOf(record)));
  // One tenant's new targets, oldest first; identical targets once.
  const targets = new Map<TenantId, Set<number>>();
  for (const ask of asks) {
    if ('refused' in ask) continue;
    for (const tenantId of ask.tenants) {
      if (stored.has(keyOf(tenantId, ask.sentAt))) continue;
      const own = targets.get(tenantId) ?? new Set<number>();
      own.add(ask.sentAt);
      targets.set(tenantId, own);
    }
  }
  const succeeded = new Set<string>(stored.keys());
  const added = new Map<string, Numbers>();
  const calls: Record<TenantId, number> = { acme: 0, beta: 0, gamma: 0, delta: 0 };
  let [failedByKooDrive, failedBySecret, retriedToSuccess] = [0, 0, 0];
  for (const [tenantId, times] of targets) {
    const cursor = { next: 0 };
    for (const sentAt of [...times].sort((a, b) => a - b)) {
      // A broken secret fails the tenant before KooDrive is asked.
      if (tenantId === FRAGILE && spec.secret !== 'ok') {
        failedBySecret += 1;
        continue;
      }
      const outcome = fetchAgainst(spec.faults[tenantId], cursor);
      calls[tenantId] += outcome.calls;
      if (!outcome.ok) {
        failedByKooDrive += 1;
        continue;
      }
      if (outcome.calls > 1) retriedToSuccess += 1;
      succeeded.add(keyOf(tenantId, sentAt));
      added.set(keyOf(tenantId, sentAt), spec.data[tenantId]);
    }
  }
  const failed: string[] = [];
  let everyTenantPartly = false;
  records.forEach((record, index) => {
    const ask = asks[index];
    if (ask === undefined || 'refused' in ask) {
      failed.push(record.messageId);
      return;
    }
    const fine = ask.tenants.map((tenantId) => succeeded.has(keyOf(tenantId, ask.sentAt)));
    if (fine.includes(false)) {
      failed.push(record.messageId);
      if (ask.tenants.length > 1 && fine.includes(true)) everyTenantPartly = true;
    }
  });
  return {
    failed: failed.sort(),
    added,
    calls,
    refused: asks.filter((ask) => 'refused' in ask).length,
    failedByKooDrive,
    failedBySecret,
    retriedToSuccess,
    everyTenantPartly,
  };
}

// ---------------------------------------------------------------------------------------------------
// SQS records, the servers, and one world (a table and a container) per case

type FixtureRecord = (typeof sqsFixture.Records)[number];
/** An SQS record as Lambda delivers it (the fixture's shape), whose SentTimestamp a case may leave out. */
type SqsRecord = Omit<FixtureRecord, 'attributes'> & {
  attributes: Omit<FixtureRecord['attributes'], 'SentTimestamp'> & { SentTimestamp?: string };
};

function sentAtOf(record: SqsRecord): number | undefined {
  const sent = record.attributes.SentTimestamp;
  // The model's own reading: the values the cases draw are either a slot's instant or clearly not ms.
  return sent !== undefined && /^\d{1,15}$/.test(sent) ? Number(sent) : undefined;
}

function recordOf(messageId: string, message: MessageSpec): SqsRecord {
  const [template] = structuredClone(sqsFixture).Records;
  if (template === undefined) throw new Error('the SQS fixture has no record');
  const { SentTimestamp: _, ...attributes } = template.attributes;
  const sent = 'slot' in message.sent ? String(sentAtSlot(message.sent.slot)) : message.sent.raw;
  return {
    ...template,
    messageId,
    body: message.body,
    md5OfBody: createHash('md5').update(message.body).digest('hex'),
    attributes: { ...attributes, ...(sent === undefined ? {} : { SentTimestamp: sent }) },
  };
}

/** SQS delivers a message again: same id, body and SentTimestamp; a new receipt and one more receive. */
function redelivered(record: SqsRecord): SqsRecord {
  const again = structuredClone(record);
  again.receiptHandle = `${record.receiptHandle}-again`;
  again.attributes.ApproximateReceiveCount = String(Number(record.attributes.ApproximateReceiveCount) + 1);
  return again;
}

let koodrive: KooDriveSimulator;
let secrets: LocalSecretsManager;
let dynamo: Dynalite;
/** The functions' own DynamoDB client (the production one: endpoint from AWS_ENDPOINT_URL_DYNAMODB). */
let functionDynamo: DynamoDBClient;
const savedEnv = { ...process.env };
let tables = 0;

beforeAll(async () => {
  [koodrive, secrets, dynamo] = await Promise.all([
    startKooDriveSimulator({ apps: Object.values(APPS) }),
    startLocalSecretsManager({ region: TEST_REGION }),
    startDynalite(),
  ]);
  Object.assign(process.env, {
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
    KOODRIVE_TENANTS: TENANT_IDS.map((id) => `${id}=${secretIdOf(id)}`).join(','),
    KOODRIVE_BASE_URL: koodrive.url,
    KOODRIVE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    KOODRIVE_TIMEOUT_MS: String(TIMEOUT_MS),
    // Every fetch reads the secret: the fragile tenant's secret changes from batch to batch.
    SECRET_CACHE_SECONDS: '0',
    SNAPSHOT_RETENTION_DAYS: String(RETENTION_DAYS),
    SNAPSHOT_CONCURRENCY: '2',
    EVENT_BUS_NAME: '',
  });
  functionDynamo = createDynamoClient();
});

afterAll(async () => {
  process.env = savedEnv;
  functionDynamo?.destroy();
  await Promise.all([koodrive?.close(), secrets?.close(), dynamo?.close()]);
});

type Handler = ReturnType<typeof createSnapshotHandler>;

/** A fresh container of the snapshot function, built like the module's own `handler`. */
function coldHandler(getStore = lazySnapshotStore({ client: functionDynamo })): Handler {
  const logger = createLogger('snapshot-triggers-property');
  return createSnapshotHandler({ logger, getRuntime: lazyRuntime({ logger }), getStore });
}

/**
 * A container whose first snapshot write waits until `resume()`; `paused` resolves once it waits. The
 * store is the real one; only the moment of that write is chosen.
 */
function pausedContainer(): { handler: Handler; paused: Promise<void>; resume: () => void } {
  let resume: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    resume = resolve;
  });
  let pause: () => void = () => undefined;
  const paused = new Promise<void>((resolve) => {
    pause = resolve;
  });
  let first = true;
  const inner = lazySnapshotStore({ client: functionDynamo });
  const getStore = (config: Parameters<typeof inner>[0]): SnapshotStore => {
    const store = inner(config);
    return {
      ...store,
      put: async (snapshot) => {
        if (first) {
          first = false;
          pause();
          await gate;
        }
        return store.put(snapshot);
      },
    };
  };
  return { handler: coldHandler(getStore), paused, resume };
}

interface Delivered {
  records: SqsRecord[];
  failed: string[];
}

interface World {
  table: string;
  container: Handler | undefined;
  /** The model's table: key → numbers of the batch that stored it. */
  stored: Map<string, Numbers>;
  batches: Delivered[];
  messages: number;
}

async function newWorld(): Promise<World> {
  tables += 1;
  const table = `snapshot-triggers-${tables}`;
  await dynamo.createSnapshotTable(table);
  process.env.SNAPSHOT_TABLE = table;
  koodrive.reset();
  for (const tenantId of TENANT_IDS)
    secrets.setSecret(secretIdOf(tenantId), demoSecretString(APPS[tenantId]));
  return { table, container: undefined, stored: new Map(), batches: [], messages: 0 };
}

function setFragileSecret(state: SecretState): void {
  const secretId = secretIdOf(FRAGILE);
  const app = APPS[FRAGILE];
  if (state === 'missing') secrets.deleteSecret(secretId);
  else if (state === 'not-json') secrets.setSecret(secretId, `appId=${app.appId}`);
  else if (state === 'lacks-field')
    secrets.setSecret(secretId, JSON.stringify({ appId: app.appId, userId: app.userId }));
  else secrets.setSecret(secretId, demoSecretString(app));
}

function faultOf(appId: string, fault: Fault): SimulatedFault {
  if (fault === 'http-5xx') return { appId, status: 503 };
  if (fault === 'timeout') return { appId, delayMs: SLOW_ANSWER_MS };
  return { appId, status: 200, body: { code: 13000301, msg: 'space not found or abnormal' } };
}

/** One row per stored snapshot: what the table holds, in one comparable line. */
const rowOf = (key: string, numbers: Numbers) => {
  const at = Date.parse(key.slice(key.indexOf(' ') + 1));
  const expiresAt = Math.floor(at / 1000) + RETENTION_DAYS * 86_400;
  return `${key} type 0: ${numbers.allocated}/${numbers.total} GB, source sqs, expiresAt ${expiresAt}`;
};

/** Every item of the table (strongly consistent), as rows. */
async function readTable(world: World): Promise<string[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await dynamo.client.send(
      new ScanCommand({
        TableName: world.table,
        ConsistentRead: true,
        ...(start === undefined ? {} : { ExclusiveStartKey: start }),
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return items
    .map((item) => {
      const spaces = (item.spaces?.L ?? []).map(
        (space) => `type ${space.M?.type?.N}: ${space.M?.allocatedGB?.N}/${space.M?.totalGB?.N} GB`,
      );
      return `${item.tenantId?.S} ${item.observedAt?.S} ${spaces.join(', ')}, source ${item.source?.S}, expiresAt ${item.expiresAt?.N}`;
    })
    .sort();
}

/** Waits until the simulator has recorded every request (a timed-out one is recorded when it closes). */
async function settled(): Promise<void> {
  for (let waited = 0; koodrive.inFlight > 0; waited += 10) {
    if (waited > 5_000) throw new Error('the KooDrive simulator still has requests in flight');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How often the cases met what the property is about (checked after the run: no vacuous pass). */
const seen = {
  batches: 0,
  fullySuccessfulBatches: 0,
  refusedMessages: 0,
  targetsFailedByKooDrive: 0,
  targetsFailedBySecret: 0,
  targetsRetriedToSuccess: 0,
  everyTenantMessagesFailedPartly: 0,
  redeliveriesOfSuccessfulBatches: 0,
  redeliveriesOfFailedMessages: 0,
  timeouts: 0,
};

/** Builds the batch, delivers it once, and checks it against the model. */
async function runBatch(world: World, spec: BatchSpec): Promise<void> {
  const batchIndex = world.batches.length;
  const { redeliver } = spec;
  const candidates =
    redeliver?.which === 'succeeded'
      ? world.batches.filter((batch) => batch.failed.length === 0)
      : world.batches;
  const earlier = redeliver === null ? undefined : candidates[redeliver.of % (candidates.length || 1)];
  const again =
    earlier === undefined
      ? []
      : (redeliver?.which === 'failed'
          ? earlier.records.filter((record) => earlier.failed.includes(record.messageId))
          : earlier.records
        ).map(redelivered);
  const fresh = spec.fresh.map((message) => {
    world.messages += 1;
    return recordOf(`b${batchIndex}-m${world.messages}`, message);
  });
  const records = (spec.freshFirst ? [...fresh, ...again] : [...again, ...fresh]).slice(0, 10);
  if (records.length === 0) return;
  const wholeSuccessAgain =
    earlier !== undefined &&
    redeliver?.which !== 'failed' &&
    fresh.length === 0 &&
    earlier.failed.length === 0;

  setFragileSecret(spec.secret);
  for (const tenantId of TENANT_IDS) {
    const { appId } = APPS[tenantId];
    koodrive.setData(appId, [
      {
        type: '0',
        allocateCapacity: String(spec.data[tenantId].allocated),
        totalCapacity: String(spec.data[tenantId].total),
      },
    ]);
    for (const fault of spec.faults[tenantId]) koodrive.enqueueFault(faultOf(appId, fault));
  }
  const expected = expectBatch(world.stored, records, spec);
  const before = await readTable(world);

  if (spec.cold) world.container = undefined;
  world.container ??= coldHandler();
  const answer = await world.container({ Records: records }, lambdaContext('snapshot'));
  await settled();
  const calls = Object.fromEntries(
    TENANT_IDS.map((tenantId) => [
      tenantId,
      koodrive.requests.filter((request) => request.appId === APPS[tenantId].appId).length,
    ]),
  );
  const timeouts = koodrive.requests.filter((request) => request.status === 0).length;
  koodrive.reset();

  const context = `batch ${batchIndex} (fragile secret ${spec.secret}; faults ${JSON.stringify(spec.faults)}): ${JSON.stringify(records.map((r) => [r.messageId, r.body, r.attributes.SentTimestamp ?? null]))}`;
  expect(answer, context).toHaveProperty('batchItemFailures');
  const failed =
    answer !== undefined && 'batchItemFailures' in answer
      ? answer.batchItemFailures.map((failure) => failure.itemIdentifier).sort()
      : [];
  const after = await readTable(world);

  // 3. A fully successful batch delivered again: nothing fails, nothing is written, nobody is called.
  // (Checked first, the contract's words rather than the model's: the model implies the same.)
  if (wholeSuccessAgain) {
    expect(failed, `3: failures when ${context} is delivered again`).toEqual([]);
    expect(after, `3: the table when ${context} is delivered again`).toEqual(before);
    expect(calls, `3: KooDrive calls when ${context} is delivered again`).toEqual({
      acme: 0,
      beta: 0,
      gamma: 0,
      delta: 0,
    });
    seen.redeliveriesOfSuccessfulBatches += 1;
  }

  // 1. Exactly the messages that failed, each once.
  expect(failed, `1: batchItemFailures of ${context}`).toEqual(expected.failed);

  // 2. One item per stored (tenant, time), with the numbers of the batch that stored it; KooDrive
  // asked exactly as often as the model says.
  for (const [key, numbers] of expected.added) world.stored.set(key, numbers);
  expect(after, `2: the table after ${context}`).toEqual(
    [...world.stored].map(([key, numbers]) => rowOf(key, numbers)).sort(),
  );
  expect(calls, `2: KooDrive calls per tenant in ${context}`).toEqual(expected.calls);

  world.batches.push({ records, failed });
  seen.batches += 1;
  if (failed.length === 0) seen.fullySuccessfulBatches += 1;
  seen.timeouts += timeouts;
  seen.refusedMessages += expected.refused;
  seen.targetsFailedByKooDrive += expected.failedByKooDrive;
  seen.targetsFailedBySecret += expected.failedBySecret;
  seen.targetsRetriedToSuccess += expected.retriedToSuccess;
  if (expected.everyTenantPartly) seen.everyTenantMessagesFailedPartly += 1;
  if (redeliver?.which === 'failed' && again.length > 0) seen.redeliveriesOfFailedMessages += 1;

  if (failed.length === 0 && spec.again) {
    await runBatch(world, {
      ...spec,
      redeliver: { of: batchIndex, which: 'all' },
      fresh: [],
      again: false,
      secret: 'missing',
      faults: { acme: ['refusal'], beta: ['refusal'], gamma: ['refusal'], delta: ['refusal'] },
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// The property

describe('SQS trigger under random batches (property)', () => {
  it(
    'fails exactly the messages the contract fails, and stores each requested snapshot once',
    async () => {
      await fc.assert(
        fc.asyncProperty(casesArb, async (batches) => {
          const world = await newWorld();
          for (const batch of batches) await runBatch(world, batch);
        }),
        {
          numRuns: NUM_RUNS,
          seed: SEED,
          plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS, { failOnInterrupt: true })],
        },
      );
      if (process.env.SNAPSHOT_TRIGGERS_STATS === '1') console.log(seen);
      // The cases met what the property is about (a vacuous pass would prove nothing).
      if (NUM_RUNS >= 20) {
        for (const [what, count] of Object.entries(seen))
          expect(count, `cases with ${what}`).toBeGreaterThan(0);
      }
    },
    TIME_LIMIT_MS + 60_000,
  );
});

// ---------------------------------------------------------------------------------------------------
// The same batch in two containers at once: SQS hands a message to a second function when its
// visibility timeout ran out while the first was still working (snapshotQueueConcurrency runs two).

interface Race {
  tenantId: TenantId;
  messages: MessageSpec[];
  /** KooDrive's numbers when the first delivery fetches, and when the second one does. */
  first: Numbers;
  second: Numbers;
}

const raceArb: fc.Arbitrary<Race> = tenantIdArb
  .chain((tenantId) =>
    fc.record({
      tenantId: fc.constant(tenantId),
      messages: fc.array(
        fc.record({
          body: fc.oneof(
            { weight: 3, arbitrary: layoutArb.map((layout) => layout({ tenantId })) },
            { weight: 1, arbitrary: bodyArb.filter((body) => 'refused' in askOf(body, FIRST_SENT)) },
          ),
          sent: fc.record({ slot: fc.nat({ max: SLOTS - 1 }) }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      first: numbersArb,
      second: numbersArb,
    }),
  )
  // Numbers that differ, so that the table tells which delivery wrote.
  .filter((race) => race.first.allocated !== race.second.allocated || race.first.total !== race.second.total);

describe('SQS trigger: one batch delivered to two functions at once (property)', () => {
  it('stores each snapshot once, as the first write left it, and fails neither delivery for it', async () => {
    await fc.assert(
      fc.asyncProperty(raceArb, async (race) => {
        const world = await newWorld();
        setFragileSecret('ok');
        const { appId } = APPS[race.tenantId];
        const records = race.messages.map((message, index) => recordOf(`race-m${index}`, message));
        const asks = records.map((record) => askOf(record.body, sentAtOf(record)));
        const refused = records
          .filter((_, index) => 'refused' in (asks[index] ?? {}))
          .map((r) => r.messageId);
        const times = [...new Set(asks.flatMap((ask) => ('refused' in ask ? [] : [ask.sentAt])))];
        const dataOf = (numbers: Numbers) => [
          { type: '0', allocateCapacity: String(numbers.allocated), totalCapacity: String(numbers.total) },
        ];

        // The first delivery fetches, then stops just before its first write.
        koodrive.setData(appId, dataOf(race.first));
        const slow = pausedContainer();
        const firstDelivery = slow.handler({ Records: records }, lambdaContext('snapshot'));
        if (times.length > 0) {
          await Promise.race([
            slow.paused,
            firstDelivery.then(() => {
              throw new Error('the first delivery finished without writing a snapshot');
            }),
          ]);
        }
        // The second delivery runs whole meanwhile, on newer numbers.
        koodrive.setData(appId, dataOf(race.second));
        const secondAnswer = await coldHandler()(
          { Records: records.map(redelivered) },
          lambdaContext('snapshot'),
        );
        slow.resume();
        const firstAnswer = await firstDelivery;
        await settled();
        const calls = koodrive.requests.filter((request) => request.appId === appId).length;
        const others = koodrive.requests.length - calls;
        koodrive.reset();

        const context = JSON.stringify(records.map((r) => [r.messageId, r.body, r.attributes.SentTimestamp]));
        for (const answer of [firstAnswer, secondAnswer]) {
          const failed =
            answer !== undefined && 'batchItemFailures' in answer
              ? answer.batchItemFailures.map((failure) => failure.itemIdentifier).sort()
              : ['(no batchItemFailures)'];
          expect(failed, `1: batchItemFailures of ${context}`).toEqual(refused.sort());
        }
        // One item per time, as the second delivery wrote it: the first one's later write stores nothing.
        expect(await readTable(world), `2: the table after ${context}`).toEqual(
          times.map((time) => rowOf(keyOf(race.tenantId, time), race.second)).sort(),
        );
        // Each delivery found nothing stored when it began, so each asked KooDrive once per time.
        expect({ calls, others }, `KooDrive calls for ${context}`).toEqual({
          calls: 2 * times.length,
          others: 0,
        });
      }),
      { numRuns: Math.max(1, Math.round(NUM_RUNS / 4)), seed: SEED },
    );
  });
});
