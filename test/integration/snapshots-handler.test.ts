/**
 * The snapshot function end to end on real local servers: the KooDrive simulator over HTTP, the local
 * Secrets Manager endpoint and dynalite, each reached by the real clients through AWS_ENDPOINT_URL_*.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSnapshotHandler, SNAPSHOT_MARGIN_MS, SnapshotRunError } from '../../handlers/snapshot.ts';
import { InvalidRequestError, UnknownTenantError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { lazyRuntime } from '../../lib/runtime.ts';
import { createDynamoSnapshotStore, lazySnapshotStore } from '../../lib/snapshots/store.ts';
import { demoSecretString } from '../../local/demo.ts';
import {
  type KooDriveSimulator,
  type SimulatorApp,
  startKooDriveSimulator,
} from '../../local/koodrive-simulator.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';
import scheduledFixture from '../fixtures/events/eventbridge-scheduled.json' with { type: 'json' };
import requestedFixture from '../fixtures/events/eventbridge-snapshot-requested.json' with { type: 'json' };
import sqsFixture from '../fixtures/events/sqs-batch.json' with { type: 'json' };
import { captureOutput, lambdaContext } from '../support/lambda.ts';
import { type Dynalite, startDynalite, TEST_CREDENTIALS, TEST_REGION } from './snapshots-support.ts';

const APPS = {
  acme: {
    appId: 'acme-app-0001',
    appSecret: 'acme-app-secret-5f1e9d',
    userId: '1505084218764547200',
    data: [
      { type: '0', allocateCapacity: '1500', totalCapacity: '2000' },
      { type: '1', allocateCapacity: '300', totalCapacity: '1000' },
    ],
  },
  beta: { appId: 'beta-app-0002', appSecret: 'beta-app-secret-0c4b2a', userId: '42' },
  gamma: {
    appId: 'gamma-app-0003',
    appSecret: 'gamma-app-secret-77aa31',
    userId: '43',
    data: { type: 2, allocateCapacity: 10, totalCapacity: 0 },
  },
} satisfies Record<string, SimulatorApp>;
const TENANT_IDS = Object.keys(APPS);
const SCHEDULED_AT = '2026-11-28T04:00:00.000Z';
// A Snapshot Requested event must be dated within the last day (KooDrive tells only the present): the
// fixture's event, re-dated ten minutes before the run, to the second as EventBridge writes it.
const REQUESTED_AT = new Date(Math.floor((Date.now() - 600_000) / 1000) * 1000).toISOString();
const SECRETS = Object.values(APPS).map((app) => app.appSecret);

let koodrive: KooDriveSimulator;
let secrets: LocalSecretsManager;
let dynamo: Dynalite;
let tableNumber = 0;
let tableName: string;
const savedEnv = { ...process.env };

const scheduled = () => structuredClone(scheduledFixture);
const requested = () => ({ ...structuredClone(requestedFixture), time: REQUESTED_AT.replace('.000Z', 'Z') });

/** An SQS batch built from the fixture's first record: one message per [messageId, body, SentTimestamp]. */
function sqsBatch(messages: [string, string, number][]) {
  const [template] = structuredClone(sqsFixture).Records;
  if (template === undefined) throw new Error('the SQS fixture has no record');
  return {
    Records: messages.map(([messageId, body, sentAt]) => ({
      ...structuredClone(template),
      messageId,
      body,
      attributes: { ...template.attributes, SentTimestamp: String(sentAt) },
    })),
  };
}

/** A fresh container of the snapshot function, built like the module's own `handler`. */
function coldHandler() {
  const logger = createLogger('snapshot-test');
  return createSnapshotHandler({
    logger,
    getRuntime: lazyRuntime({ logger }),
    getStore: lazySnapshotStore(),
  });
}

/** Reads the table through the store: every snapshot of a tenant, oldest first. */
async function stored(tenantId: string) {
  const store = createDynamoSnapshotStore({
    client: dynamo.client,
    tableName,
    retentionDays: 400,
    cursorKey: 'k',
    // Expiry judged at the fixtures' date, so that their snapshots never age out of the suite.
    now: () => Date.parse(SCHEDULED_AT),
  });
  const page = await store.query({
    tenantId,
    from: new Date('2026-01-01T00:00:00Z'),
    // Through tomorrow: Snapshot Requested events are dated at the run.
    to: new Date(Date.now() + 86_400_000),
    limit: 1000,
  });
  return page.items;
}

/** Runs `run` with every log level written and captured (the suite is otherwise SILENT). */
async function withLogs(
  run: () => Promise<unknown>,
): Promise<{ value: unknown; error: unknown; logs: string }> {
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  const output = captureOutput();
  try {
    return { value: await run(), error: undefined, logs: output.text() };
  } catch (error) {
    return { value: undefined, error, logs: output.text() };
  } finally {
    output.stop();
    process.env.POWERTOOLS_LOG_LEVEL = level;
  }
}

const callsOf = (app: SimulatorApp) => koodrive.requests.filter((r) => r.appId === app.appId).length;

beforeAll(async () => {
  [koodrive, secrets, dynamo] = await Promise.all([
    startKooDriveSimulator({ apps: Object.values(APPS) }),
    startLocalSecretsManager({
      region: TEST_REGION,
      secrets: Object.fromEntries(
        Object.entries(APPS).map(([id, app]) => [`koodrive/${id}`, demoSecretString(app)]),
      ),
    }),
    startDynalite(),
  ]);
  Object.assign(process.env, {
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
    KOODRIVE_TENANTS: TENANT_IDS.map((id) => `${id}=koodrive/${id}`).join(','),
    KOODRIVE_BASE_URL: koodrive.url,
    KOODRIVE_MAX_ATTEMPTS: '1',
    KOODRIVE_TIMEOUT_MS: '2000',
    SECRET_CACHE_SECONDS: '300',
    SNAPSHOT_RETENTION_DAYS: '30',
    SNAPSHOT_CONCURRENCY: '2',
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([koodrive?.close(), secrets?.close(), dynamo?.close()]);
});

beforeEach(async () => {
  tableNumber += 1;
  tableName = `snapshots-handler-${tableNumber}`;
  await dynamo.createSnapshotTable(tableName);
  process.env.SNAPSHOT_TABLE = tableName;
  koodrive.reset();
  secrets.reset();
  for (const [tenantId, app] of Object.entries(APPS))
    secrets.setSecret(`koodrive/${tenantId}`, demoSecretString(app));
});

afterEach(() => {
  koodrive.reset();
});

describe('EventBridge scheduled event', () => {
  it('says when the bulk read of stored snapshots fails, and stores every tenant all the same', async () => {
    const stores = lazySnapshotStore();
    // Made inside the run: withLogs sets the log level the logger reads when it is made.
    const run = () => {
      const logger = createLogger('snapshot-test');
      return createSnapshotHandler({
        logger,
        getRuntime: lazyRuntime({ logger }),
        // A role without dynamodb:BatchGetItem: each tenant then checks for itself (with Query).
        getStore: (config) => ({
          ...stores(config),
          storedAmong: async () =>
            Promise.reject(
              Object.assign(new Error('not authorized to perform: dynamodb:BatchGetItem'), {
                name: 'AccessDeniedException',
              }),
            ),
        }),
      })({ ...scheduled(), time: '2026-11-28T05:45:00Z' }, lambdaContext('snapshot'));
    };
    const { value: result, logs } = await withLogs(run);
    expect(result).toMatchObject({ observedAt: '2026-11-28T05:45:00.000Z', stored: TENANT_IDS });
    const warnings = logs
      .split('\n')
      .filter((line) => line.includes('stored snapshots not read in bulk'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toEqual([
      expect.objectContaining({ level: 'WARN', errorCode: 'AccessDeniedException' }),
    ]);
  });

  it('stores every tenant under the event time, with the KooDrive time as fetchedAt', async () => {
    const { value: result, logs } = await withLogs(() =>
      coldHandler()(scheduled(), lambdaContext('snapshot')),
    );
    expect(result).toEqual({
      observedAt: SCHEDULED_AT,
      source: 'schedule',
      stored: TENANT_IDS,
      duplicate: [],
    });
    const [acme] = await stored('acme');
    expect(acme).toMatchObject({
      tenantId: 'acme',
      observedAt: SCHEDULED_AT,
      spaces: [
        { type: 0, typeName: 'department', allocatedGB: 1500, totalGB: 2000, allocatedRatio: 0.75 },
        { type: 1, typeName: 'personal', allocatedGB: 300, totalGB: 1000 },
      ],
      totals: {
        allocatedGB: 1800,
        totalGB: 3000,
        unallocatedGB: 1200,
        allocatedRatio: 0.6,
        overAllocated: false,
      },
    });
    expect(Math.abs(Date.parse(acme?.fetchedAt ?? '') - Date.now())).toBeLessThan(60_000);
    expect((await stored('gamma'))[0]?.totals).toEqual({
      allocatedGB: 10,
      totalGB: 0,
      unallocatedGB: -10,
      allocatedRatio: null,
      overAllocated: true,
    });
    expect([APPS.acme, APPS.beta, APPS.gamma].map(callsOf)).toEqual([1, 1, 1]);
    // The TTL is SNAPSHOT_RETENTION_DAYS (30 here, not the default 400) counted from the event time.
    for (const tenantId of TENANT_IDS) {
      const { Item } = await dynamo.client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { tenantId: { S: tenantId }, observedAt: { S: SCHEDULED_AT } },
        }),
      );
      expect(Item?.expiresAt, tenantId).toEqual({ N: String(Date.parse(SCHEDULED_AT) / 1000 + 30 * 86_400) });
    }

    for (const tenantId of TENANT_IDS) {
      expect(logs).toMatch(new RegExp(`"message":"snapshot stored"[^\\n]*"tenantId":"${tenantId}"`));
    }
    for (const secret of SECRETS) expect(logs).not.toContain(secret);
  });

  it('stores one snapshot per tenant when the same event is delivered again, without asking KooDrive', async () => {
    const first = coldHandler();
    await first(scheduled(), lambdaContext('snapshot'));
    const again = await first(scheduled(), lambdaContext('snapshot'));
    const elsewhere = await coldHandler()(scheduled(), lambdaContext('snapshot'));
    for (const result of [again, elsewhere]) {
      expect(result).toEqual({
        observedAt: SCHEDULED_AT,
        source: 'schedule',
        stored: [],
        duplicate: TENANT_IDS,
      });
    }
    for (const tenantId of TENANT_IDS) expect(await stored(tenantId)).toHaveLength(1);
    expect(koodrive.requests).toHaveLength(3);
  });

  it('fails after trying every tenant when one fails, and the retry stores only the missing one', async () => {
    koodrive.enqueueFault({
      appId: APPS.beta.appId,
      status: 200,
      body: { code: 13000301, msg: 'space not found or abnormal' },
    });
    // Built while logs are captured: its logger writes every level.
    let handler: ReturnType<typeof coldHandler> | undefined;
    const { error: failure, logs } = await withLogs(() => {
      handler = coldHandler();
      return handler(scheduled(), lambdaContext('snapshot'));
    });
    if (handler === undefined) throw new Error('no handler was built');
    expect(failure).toBeInstanceOf(SnapshotRunError);
    expect(failure instanceof Error && failure.message).toBe(
      `Snapshot at ${SCHEDULED_AT} failed for 1 of 3 tenant(s): beta (UPSTREAM_ERROR). 2 stored, 0 already stored; a retry of this event fetches only the missing ones.`,
    );
    expect(await stored('acme')).toHaveLength(1);
    expect(await stored('beta')).toHaveLength(0);
    expect(await stored('gamma')).toHaveLength(1);
    expect(logs).toMatch(
      /"message":"snapshot failed"[^\n]*"tenantId":"beta"[^\n]*"errorCode":"UPSTREAM_ERROR"/,
    );
    // The vendor's words and the id KooDrive logged the call under, for the operator to quote.
    const failedLine = JSON.parse(
      logs.split('\n').find((line) => line.includes('"snapshot failed"')) ?? '{}',
    ) as Record<string, unknown>;
    expect(failedLine.upstreamMessage).toBe('space not found or abnormal');
    expect(failedLine.koodriveTraceId).toBe(
      koodrive.requests.find((request) => request.appId === APPS.beta.appId)?.traceId,
    );
    expect(String(failedLine.koodriveTraceId)).toHaveLength(58);

    // Lambda's retry: the same event again.
    koodrive.reset();
    const warm = handler;
    const { value: retried, logs: retryLogs } = await withLogs(() =>
      warm(scheduled(), lambdaContext('snapshot')),
    );
    expect(retryLogs).toMatch(/"message":"snapshot already stored"[^\n]*"tenantId":"acme","fetched":false/);
    expect(retried).toEqual({
      observedAt: SCHEDULED_AT,
      source: 'schedule',
      stored: ['beta'],
      duplicate: ['acme', 'gamma'],
    });
    expect(koodrive.requests.map((r) => r.appId)).toEqual([APPS.beta.appId]);
    for (const tenantId of TENANT_IDS) {
      expect((await stored(tenantId)).map((item) => item.observedAt)).toEqual([SCHEDULED_AT]);
    }
  });

  it('names the KooDrive call in the log of a tenant whose answer was malformed', async () => {
    // KooDrive answered code 0, but with a capacity that is not a number: a call was made and answered.
    koodrive.enqueueFault({
      appId: APPS.beta.appId,
      status: 200,
      body: { code: 0, msg: 'ok', data: { type: '0', allocateCapacity: 'lots', totalCapacity: '2000' } },
    });
    const { error: failure, logs } = await withLogs(() =>
      coldHandler()(scheduled(), lambdaContext('snapshot')),
    );
    expect(failure).toBeInstanceOf(SnapshotRunError);
    const failedLine = JSON.parse(
      logs.split('\n').find((line) => line.includes('"snapshot failed"')) ?? '{}',
    ) as Record<string, unknown>;
    expect(failedLine.tenantId).toBe('beta');
    expect(failedLine.errorCode).toBe('UPSTREAM_ERROR');
    expect(failedLine.koodriveTraceId).toBe(
      koodrive.requests.find((request) => request.appId === APPS.beta.appId)?.traceId,
    );
  });

  it("warns of a retried KooDrive attempt with its status, KooDrive's code and the call's trace id", async () => {
    koodrive.enqueueFault({ appId: APPS.beta.appId, status: 503 });
    // A retry this time (the suite makes one attempt per call), so that the run succeeds in the end.
    process.env.KOODRIVE_MAX_ATTEMPTS = '2';
    const { error: failure, logs } = await withLogs(() =>
      coldHandler()(scheduled(), lambdaContext('snapshot')),
    ).finally(() => {
      process.env.KOODRIVE_MAX_ATTEMPTS = '1';
    });
    expect(failure).toBeUndefined();
    const warning = JSON.parse(
      logs.split('\n').find((line) => line.includes('"KooDrive attempt failed"')) ?? '{}',
    ) as Record<string, unknown>;
    // A run that succeeded in the end: this line is the only record of the flap, and the trace id the
    // only way to find the failed request in KooDrive's logs (a snapshot has no answer header).
    expect(warning).toMatchObject({
      level: 'WARN',
      tenantId: 'beta',
      attempt: 1,
      reason: 'UPSTREAM_ERROR',
      httpStatus: 503,
      upstreamCode: '13000201',
    });
    const betaCalls = koodrive.requests.filter((request) => request.appId === APPS.beta.appId);
    expect(betaCalls).toHaveLength(2);
    expect(warning.koodriveTraceId).toBe(betaCalls[0]?.traceId);
  });

  it("reports a tenant it cannot reach before the invocation's end instead of timing out", async () => {
    koodrive.enqueueFault({ appId: APPS.beta.appId, delayMs: 10_000 });
    // Beta's attempt may take 8 s, far past the invocation's end: only the deadline can cut it.
    process.env.KOODRIVE_TIMEOUT_MS = '8000';
    try {
      const context = lambdaContext('snapshot');
      // 2 s left after the margin kept for the last writes: beta's slow answer is cut, not waited for.
      // Enough for acme's and gamma's cold calls (secrets, KooDrive, DynamoDB) on a loaded machine.
      const end = Date.now() + SNAPSHOT_MARGIN_MS + 2_000;
      context.getRemainingTimeInMillis = () => end - Date.now();
      const { error: failure, logs } = await withLogs(() => coldHandler()(scheduled(), context));
      expect(failure).toBeInstanceOf(SnapshotRunError);
      expect(failure instanceof Error && failure.message).toContain(
        'failed for 1 of 3 tenant(s): beta (UPSTREAM_TIMEOUT)',
      );
      // Cut by the invocation's deadline (at most the 2 s left), not by KOODRIVE_TIMEOUT_MS.
      const failedLine = JSON.parse(
        logs.split('\n').find((line) => line.includes('"snapshot failed"')) ?? '{}',
      ) as Record<string, unknown>;
      expect(failedLine.tenantId).toBe('beta');
      const leftMs = Number(
        /within the (\d+) ms left in this invocation/.exec(String(failedLine.errorMessage))?.[1],
      );
      expect(leftMs).toBeGreaterThan(0);
      expect(leftMs).toBeLessThanOrEqual(2_000);
      expect(await stored('acme')).toHaveLength(1);
      expect(await stored('beta')).toHaveLength(0);
      expect(await stored('gamma')).toHaveLength(1);
    } finally {
      process.env.KOODRIVE_TIMEOUT_MS = '2000';
    }
  });

  it('fails every tenant as UPSTREAM_TIMEOUT, reading no secret, when the run starts with no time left', async () => {
    const context = lambdaContext('snapshot');
    // Less than the margin left: no KooDrive call may start, so nothing is read for one either.
    const end = Date.now() + SNAPSHOT_MARGIN_MS - 100;
    context.getRemainingTimeInMillis = () => end - Date.now();
    secrets.reset();
    koodrive.reset();
    const failure = await coldHandler()(scheduled(), context).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(failure instanceof Error && failure.message).toContain(
      'failed for 3 of 3 tenant(s): acme (UPSTREAM_TIMEOUT), beta (UPSTREAM_TIMEOUT), gamma (UPSTREAM_TIMEOUT)',
    );
    expect(secrets.getSecretValueCalls()).toBe(0);
    expect(koodrive.requests).toHaveLength(0);
  });

  it('fails the invocation for a misconfigured tenant, naming it, without its secret', async () => {
    secrets.setSecret('koodrive/gamma', JSON.stringify({ appId: 'x', appSecret: 'leaky-secret-value-99' }));
    const error = await coldHandler()(scheduled(), lambdaContext('snapshot')).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error instanceof Error && error.message).toContain('gamma (CONFIGURATION_ERROR)');
    expect(error instanceof Error && error.message).not.toContain('leaky-secret-value-99');
    expect(await stored('acme')).toHaveLength(1);
  });
});

describe('EventBridge Snapshot Requested event', () => {
  it('stores the named tenant only, under the event time', async () => {
    const result = await coldHandler()(requested(), lambdaContext('snapshot'));
    expect(result).toEqual({ observedAt: REQUESTED_AT, source: 'event', stored: ['acme'], duplicate: [] });
    expect((await stored('acme')).map((item) => item.observedAt)).toEqual([REQUESTED_AT]);
    expect(await stored('beta')).toHaveLength(0);
    expect(koodrive.requests.map((r) => r.appId)).toEqual([APPS.acme.appId]);
  });

  it('stores every tenant when no tenant is named', async () => {
    const event = { ...requested(), detail: {} };
    const result = await coldHandler()(event, lambdaContext('snapshot'));
    expect(result).toMatchObject({ stored: TENANT_IDS });
  });

  it('fails after trying every tenant when one fails, and the redelivery stores only the missing one', async () => {
    koodrive.enqueueFault({
      appId: APPS.beta.appId,
      status: 200,
      body: { code: 13000301, msg: 'space not found or abnormal' },
    });
    const event = { ...requested(), detail: {} };
    const handler = coldHandler();
    const failure = await handler(structuredClone(event), lambdaContext('snapshot')).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    // The invocation fails, so that Lambda's retries and failure destination see it.
    expect(failure).toBeInstanceOf(SnapshotRunError);
    expect(failure instanceof Error && failure.message).toContain(
      `Snapshot at ${REQUESTED_AT} failed for 1 of 3 tenant(s): beta (UPSTREAM_ERROR). 2 stored`,
    );
    expect([APPS.acme, APPS.beta, APPS.gamma].map(callsOf)).toEqual([1, 1, 1]);
    expect(await stored('beta')).toHaveLength(0);

    koodrive.reset();
    expect(await handler(structuredClone(event), lambdaContext('snapshot'))).toEqual({
      observedAt: REQUESTED_AT,
      source: 'event',
      stored: ['beta'],
      duplicate: ['acme', 'gamma'],
    });
    expect(koodrive.requests.map((r) => r.appId)).toEqual([APPS.beta.appId]);
    for (const tenantId of TENANT_IDS) {
      expect((await stored(tenantId)).map((item) => item.observedAt)).toEqual([REQUESTED_AT]);
    }
  });

  it('refuses an event dated in the future, storing nothing', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const error = await coldHandler()({ ...requested(), time: future }, lambdaContext('snapshot')).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error instanceof Error && error.message).toContain(`time ${future} is in the future`);
    expect(koodrive.requests).toHaveLength(0);
    expect(await stored('acme')).toHaveLength(0);
    // A sender's clock a little ahead is still fine.
    const soon = new Date(Date.now() + 60_000).toISOString();
    await expect(
      coldHandler()({ ...requested(), time: soon }, lambdaContext('snapshot')),
    ).resolves.toMatchObject({
      stored: ['acme'],
    });
  });

  it('refuses an event dated more than a day ago: it would file today’s numbers in the past', async () => {
    const old = new Date(Date.now() - 25 * 3_600_000).toISOString();
    const error = await coldHandler()({ ...requested(), time: old }, lambdaContext('snapshot')).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error instanceof Error && error.message).toContain(`time ${old} is more than a day old`);
    expect(koodrive.requests).toHaveLength(0);
    expect(await stored('acme')).toHaveLength(0);
    // A retry hours later (EventBridge's hour, Lambda's six) is still taken.
    const late = new Date(Date.now() - 7 * 3_600_000).toISOString();
    await expect(
      coldHandler()({ ...requested(), time: late }, lambdaContext('snapshot')),
    ).resolves.toMatchObject({
      stored: ['acme'],
    });
  });

  it('fails for a tenant that is not configured, storing nothing', async () => {
    const event = { ...requested(), detail: { tenantId: 'zeta' } };
    await expect(coldHandler()(event, lambdaContext('snapshot'))).rejects.toBeInstanceOf(UnknownTenantError);
    expect(koodrive.requests).toHaveLength(0);
  });
});

describe('SQS batch', () => {
  const T = Date.parse('2026-11-28T04:00:00.000Z');

  it('names exactly the failed messages and stores the others', async () => {
    koodrive.enqueueFault({ appId: APPS.beta.appId, status: 503 });
    koodrive.enqueueFault({ appId: APPS.beta.appId, status: 503 });
    const batch = sqsBatch([
      ['m1-acme', '{"tenantId":"acme"}', T + 1],
      ['m2-not-json', '{"tenantId":', T + 2],
      ['m3-unknown', '{"tenantId":"zeta"}', T + 3],
      ['m4-bad-id', '{"tenantId":"no spaces allowed"}', T + 4],
      ['m5-beta', '{"tenantId":"beta"}', T + 5],
      ['m6-all', '{}', T + 6],
      ['m7-gamma', '{"tenantId":"gamma"}', T + 7],
    ]);
    const { value: result, logs } = await withLogs(() => coldHandler()(batch, lambdaContext('snapshot')));
    expect(result).toEqual({
      batchItemFailures: [
        { itemIdentifier: 'm2-not-json' },
        { itemIdentifier: 'm3-unknown' },
        { itemIdentifier: 'm4-bad-id' },
        { itemIdentifier: 'm5-beta' },
        { itemIdentifier: 'm6-all' },
      ],
    });
    const at = (offset: number) => new Date(T + offset).toISOString();
    expect((await stored('acme')).map((item) => item.observedAt)).toEqual([at(1), at(6)]);
    expect((await stored('gamma')).map((item) => item.observedAt)).toEqual([at(6), at(7)]);
    expect(await stored('beta')).toHaveLength(0);
    expect(logs).toMatch(
      /"message":"SQS message rejected"[^\n]*"messageId":"m3-unknown"[^\n]*Tenant 'zeta' is not configured/,
    );
    // A message whose snapshot failed names the tenants whose 'snapshot failed' lines say why.
    expect(logs).toMatch(
      /"message":"SQS message failed"[^\n]*"messageId":"m5-beta","failedTenants":\["beta"\]/,
    );
    expect(logs).toMatch(
      /"message":"SQS message failed"[^\n]*"messageId":"m6-all","failedTenants":\["beta"\]/,
    );

    // SQS redelivers the failed messages; those that can now succeed do, without duplicates.
    koodrive.reset();
    const redelivered = sqsBatch([
      ['m5-beta', '{"tenantId":"beta"}', T + 5],
      ['m6-all', '{}', T + 6],
    ]);
    expect(await coldHandler()(redelivered, lambdaContext('snapshot'))).toEqual({ batchItemFailures: [] });
    expect((await stored('beta')).map((item) => item.observedAt)).toEqual([at(5), at(6)]);
    expect((await stored('acme')).map((item) => item.observedAt)).toEqual([at(1), at(6)]);
    expect(koodrive.requests.map((r) => r.appId)).toEqual([APPS.beta.appId, APPS.beta.appId]);
  });

  it('stores one snapshot for a message delivered twice in one batch, and for the same message again', async () => {
    const batch = sqsBatch([
      ['dup-1', '{"tenantId":"acme"}', T],
      ['dup-1', '{"tenantId":"acme"}', T],
    ]);
    const handler = coldHandler();
    expect(await handler(batch, lambdaContext('snapshot'))).toEqual({ batchItemFailures: [] });
    expect(await handler(structuredClone(batch), lambdaContext('snapshot'))).toEqual({
      batchItemFailures: [],
    });
    expect(await stored('acme')).toHaveLength(1);
    expect(callsOf(APPS.acme)).toBe(1);
  });

  it('uses the SentTimestamp of the fixture messages as observedAt', async () => {
    expect(await coldHandler()(structuredClone(sqsFixture), lambdaContext('snapshot'))).toEqual({
      batchItemFailures: [],
    });
    expect((await stored('acme')).map((item) => item.observedAt)).toEqual([
      '2026-11-28T04:00:00.123Z',
      '2026-11-28T04:01:00.456Z',
    ]);
    expect((await stored('beta')).map((item) => item.observedAt)).toEqual(['2026-11-28T04:01:00.456Z']);
  });
});

describe('anything else', () => {
  it('refuses an event of no known shape with a clear error', async () => {
    const event = { version: '2.0', routeKey: 'GET /allocation' };
    const error = await coldHandler()(event, lambdaContext('snapshot')).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error instanceof Error && error.message).toMatch(
      /^Unsupported event \(an object with keys \[version, routeKey\]\)/,
    );
  });

  it("works as the module's own handler, configured from the environment alone", async () => {
    const { handler } = await import('../../handlers/snapshot.ts');
    const result = await handler(scheduled(), lambdaContext('snapshot'));
    expect(result).toMatchObject({ stored: TENANT_IDS });
    expect(await stored('beta')).toHaveLength(1);
  });
});
