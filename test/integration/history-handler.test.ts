/** The history route end to end: API Gateway events in, problem+json or pages out, snapshots in dynalite. */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHistoryHandler, HISTORY_ROUTE } from '../../handlers/history.ts';
import { loadConfig } from '../../lib/config.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { createLogger } from '../../lib/logger.ts';
import { decodeCursor, encodeCursor } from '../../lib/snapshots/cursor.ts';
import {
  createDynamoSnapshotStore,
  lazySnapshotStore,
  type SnapshotStore,
} from '../../lib/snapshots/store.ts';
import { captureOutput, httpEvent, lambdaContext } from '../support/lambda.ts';
import { startSilentServer } from '../support/silent-server.ts';
import {
  type Dynalite,
  localDynamoClient,
  startDynalite,
  TEST_CREDENTIALS,
  TEST_REGION,
} from './snapshots-support.ts';

const CURSOR_KEY = 'history-test-cursor-key';
const DAY = 86_400_000;
const NOW = new Date('2026-11-28T04:00:00.000Z');
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();

let dynamo: Dynalite;
let tableNumber = 0;
let env: Record<string, string>;
let store: SnapshotStore;
const savedEnv = { ...process.env };

function coldHandler(overrides: Record<string, string> = {}) {
  return createHistoryHandler({
    logger: createLogger('history-test'),
    getConfig: () => loadConfig({ ...env, ...overrides }),
    getStore: lazySnapshotStore({ client: dynamo.client, now: () => NOW.getTime() }),
    now: () => NOW,
  });
}

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  json: Record<string, unknown>;
  requestId: string;
}

async function get(
  tenantId: string,
  query: Record<string, string | readonly string[]> | string = {},
  options: {
    handler?: ReturnType<typeof coldHandler>;
    path?: string;
    method?: string;
    context?: Context;
  } = {},
): Promise<Answer> {
  const handler = options.handler ?? coldHandler();
  const path = options.path ?? `/tenants/${encodeURIComponent(tenantId)}/allocation/history`;
  const event = httpEvent(path, {
    routeKey: HISTORY_ROUTE,
    pathParameters: { tenantId },
    query,
    ...(options.method === undefined ? {} : { method: options.method }),
  });
  const context = options.context ?? lambdaContext('history');
  const response = await handler(event, context);
  const json: unknown = JSON.parse(String(response.body));
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error('the body is not an object');
  return {
    statusCode: response.statusCode,
    headers: response.headers,
    json: { ...json },
    requestId: context.awsRequestId,
  };
}

function expectProblem(answer: Answer, status: number, code: string, detail: string | RegExp): void {
  expect(answer.statusCode).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.headers['x-trace-id']).toBe(answer.requestId);
  expect(answer.json).toMatchObject({ status, code, traceId: answer.requestId });
  if (typeof detail === 'string') expect(answer.json.detail).toContain(detail);
  else expect(String(answer.json.detail)).toMatch(detail);
  expect(JSON.stringify(answer.json)).not.toMatch(/\bat .*\.ts:\d+/);
}

async function put(tenantId: string, observedAt: string, allocated: number): Promise<void> {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: [{ type: 0, allocateCapacity: allocated, totalCapacity: 1000 }],
  });
  const fetchedAt = new Date(Date.parse(observedAt) + 900).toISOString();
  const snapshot = {
    tenantId,
    observedAt,
    fetchedAt,
    spaces,
    totals,
    source: 'schedule' as const,
    traceId: 'x'.repeat(58),
  };
  expect(await store.put(snapshot)).toBe('stored');
}

beforeAll(async () => {
  dynamo = await startDynalite();
});

afterAll(async () => {
  process.env = savedEnv;
  await dynamo?.close();
});

beforeEach(async () => {
  tableNumber += 1;
  const tableName = `history-${tableNumber}`;
  await dynamo.createSnapshotTable(tableName);
  env = {
    KOODRIVE_TENANTS: 'acme=koodrive/acme,beta=koodrive/beta',
    SNAPSHOT_TABLE: tableName,
    HISTORY_CURSOR_KEY: CURSOR_KEY,
  };
  store = createDynamoSnapshotStore({
    client: dynamo.client,
    tableName,
    retentionDays: 400,
    cursorKey: CURSOR_KEY,
  });
});

describe('GET /tenants/{tenantId}/allocation/history', () => {
  it('answers the last 7 days up to now by default, oldest first, with the request id as x-trace-id', async () => {
    await put('acme', at(-8 * DAY), 1);
    await put('acme', at(-7 * DAY), 2);
    await put('acme', at(-DAY), 3);
    await put('acme', at(0), 4);
    await put('acme', at(1), 5);
    await put('beta', at(-DAY), 6);
    const answer = await get('acme');
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers['x-trace-id']).toBe(answer.requestId);
    const slope = 7 / (258 / 9);
    const expectedTrend = {
      slopeGBPerDay: expect.closeTo(slope, 9),
      daysUntilFull: expect.closeTo(996 / slope, 6),
      points: 3,
    };
    expect(answer.json).toEqual({
      tenantId: 'acme',
      from: '2026-11-21T04:00:00.000Z',
      to: '2026-11-28T04:00:00.000Z',
      items: [2, 3, 4].map((allocated, i) => ({
        tenantId: 'acme',
        observedAt: [at(-7 * DAY), at(-DAY), at(0)][i],
        fetchedAt: new Date(Date.parse([at(-7 * DAY), at(-DAY), at(0)][i] ?? '') + 900).toISOString(),
        spaces: [
          {
            type: 0,
            typeName: 'department',
            allocatedGB: allocated,
            totalGB: 1000,
            unallocatedGB: 1000 - allocated,
            allocatedRatio: allocated / 1000,
            overAllocated: false,
          },
        ],
        totals: {
          allocatedGB: allocated,
          totalGB: 1000,
          unallocatedGB: 1000 - allocated,
          allocatedRatio: allocated / 1000,
          overAllocated: false,
        },
      })),
      nextCursor: null,
      // Least squares over (-7, 2), (-1, 3), (0, 4) in days: slope 7 / (258/9) GB per day.
      trend: { department: expectedTrend, totals: expectedTrend },
    });
  });

  it('includes both bounds of an explicit range, written with offsets', async () => {
    for (let hour = 0; hour < 6; hour += 1) await put('acme', at(-hour * 3_600_000), hour);
    const answer = await get('acme', { from: '2026-11-28T01:00:00+01:00', to: '2026-11-28T02:00:00.000Z' });
    expect(answer.statusCode).toBe(200);
    expect(answer.json.from).toBe('2026-11-28T00:00:00.000Z');
    expect(answer.json.to).toBe('2026-11-28T02:00:00.000Z');
    const items = Array.isArray(answer.json.items) ? answer.json.items : [];
    expect(items.map((item: { observedAt?: unknown }) => item.observedAt)).toEqual([
      '2026-11-28T00:00:00.000Z',
      '2026-11-28T01:00:00.000Z',
      '2026-11-28T02:00:00.000Z',
    ]);
  });

  it('pages with nextCursor alone, without gaps or duplicates, and ends with nextCursor null', async () => {
    const times = Array.from({ length: 11 }, (_, i) => at(-i * 3_600_000)).reverse();
    for (const [i, time] of times.entries()) await put('acme', time, i);
    const handler = coldHandler();
    const seen: unknown[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const answer = await get('acme', cursor === undefined ? { limit: '4' } : { limit: '4', cursor }, {
        handler,
      });
      expect(answer.statusCode).toBe(200);
      expect(answer.json.from).toBe('2026-11-21T04:00:00.000Z');
      const items = Array.isArray(answer.json.items) ? answer.json.items : [];
      seen.push(...items.map((item: { observedAt?: unknown }) => item.observedAt));
      cursor = typeof answer.json.nextCursor === 'string' ? answer.json.nextCursor : undefined;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(times);
  });

  it('carries the trend of the returned range: 20 GB/day, last at 600 of 1000, is 20 days from full', async () => {
    for (let day = 0; day < 4; day++) await put('acme', at(-(4 - day) * DAY), 540 + 20 * day);
    const answer = await get('acme');
    expect(answer.statusCode).toBe(200);
    const trend = answer.json.trend as Record<
      string,
      { slopeGBPerDay: number; daysUntilFull: number; points: number }
    >;
    expect(trend.department?.slopeGBPerDay).toBeCloseTo(20, 9);
    expect(trend.department?.daysUntilFull).toBeCloseTo(20, 9);
    expect(trend.totals).toEqual(trend.department);
    expect(trend.department?.points).toBe(4);
  });

  it("gives each page the trend from the range's start through it, the last page the whole range's", async () => {
    // Two space types, growing unevenly: 25 snapshots, the personal space only in the later ones.
    for (let i = 0; i < 25; i++) {
      const observedAt = at(-(25 - i) * 3_600_000);
      const { spaces, totals } = normalizeAllocation({
        code: 0,
        data: [
          { type: 0, allocateCapacity: 500 + 7 * i + (i % 3) * 11, totalCapacity: 2000 },
          ...(i >= 10 ? [{ type: 1, allocateCapacity: 100 + i * i, totalCapacity: 900 }] : []),
        ],
      });
      const fetchedAt = new Date(Date.parse(observedAt) + 900).toISOString();
      await store.put({
        tenantId: 'acme',
        observedAt,
        fetchedAt,
        spaces,
        totals,
        source: 'schedule',
        traceId: 'x'.repeat(58),
      });
    }
    type Entry = { slopeGBPerDay: number | null; daysUntilFull: number | null; points: number };
    const whole = (await get('acme', { limit: '1000' })).json.trend as Record<string, Entry>;
    expect(Object.keys(whole)).toEqual(['department', 'personal', 'totals']);
    expect(whole.department?.points).toBe(25);
    expect(whole.personal?.points).toBe(15);
    const handler = coldHandler();
    for (const limit of [1, 2, 7, 24, 25]) {
      let cursor: string | undefined;
      let seen = 0;
      let trend: Record<string, Entry> = {};
      do {
        const answer = await get(
          'acme',
          { limit: String(limit), ...(cursor === undefined ? {} : { cursor }) },
          { handler },
        );
        expect(answer.statusCode).toBe(200);
        seen += (answer.json.items as unknown[]).length;
        trend = answer.json.trend as Record<string, Entry>;
        // Cumulative: the totals were fitted on every item so far.
        expect(trend.totals?.points, `limit ${limit}`).toBe(seen);
        cursor = typeof answer.json.nextCursor === 'string' ? answer.json.nextCursor : undefined;
      } while (cursor !== undefined);
      for (const key of ['department', 'personal', 'totals']) {
        const [paged, single] = [trend[key], whole[key]];
        expect(paged?.points, `${key}, limit ${limit}`).toBe(single?.points);
        expect(paged?.slopeGBPerDay, `${key}, limit ${limit}`).toBeCloseTo(
          single?.slopeGBPerDay ?? Number.NaN,
          9,
        );
        expect(paged?.daysUntilFull, `${key}, limit ${limit}`).toBeCloseTo(
          single?.daysUntilFull ?? Number.NaN,
          6,
        );
      }
    }
  });

  it('400 for a tenant path with dot segments, which an IAM policy on another tenant matches', async () => {
    const answer = await get('acme', {}, { path: '/tenants/quiet/./../acme/allocation/history' });
    expect(answer.statusCode).toBe(400);
    expect(answer.json.code).toBe('INVALID_REQUEST');
    expect(String(answer.json.detail)).toContain("The path has '.' or '..' segments");
  });

  it('400 for a validly signed cursor whose carried trend is not one this service writes', async () => {
    for (let i = 0; i < 3; i++) await put('acme', at(-(3 - i) * 3_600_000), 500 + i);
    const first = await get('acme', { limit: '1' });
    const state = decodeCursor(CURSOR_KEY, String(first.json.nextCursor));
    const forged = encodeCursor(CURSOR_KEY, { ...state, carry: { spaces: 'many', totals: null } });
    expectProblem(
      await get('acme', { limit: '1', cursor: forged }),
      400,
      'INVALID_REQUEST',
      'start again without a cursor',
    );
  });

  it('answers an empty page for a range without snapshots', async () => {
    await put('acme', at(-DAY), 1);
    const answer = await get('acme', { from: '2020-01-01T00:00:00Z', to: '2020-12-31T00:00:00Z' });
    expect(answer.statusCode).toBe(200);
    expect(answer.json).toMatchObject({ items: [], nextCursor: null });
  });

  it('answers a range inside one millisecond (from = to past the millisecond) with an empty page', async () => {
    // Snapshots on both sides of 03:00:00.0005: neither lies in the range.
    await put('acme', '2026-11-28T03:00:00.000Z', 1);
    await put('acme', '2026-11-28T03:00:00.001Z', 2);
    for (const [from, to] of [
      ['2026-11-28T03:00:00.0005Z', '2026-11-28T03:00:00.0005Z'],
      ['2026-11-28T03:00:00.0005Z', '2026-11-28T03:00:00.0009Z'],
      ['2026-11-28T03:00:00.000500Z', '2026-11-28T04:00:00.0005+01:00'],
    ] as const) {
      const answer = await get('acme', { from, to });
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['content-type']).toBe('application/json');
      expect(answer.json).toEqual({
        tenantId: 'acme',
        from: '2026-11-28T03:00:00.001Z',
        to: '2026-11-28T03:00:00.000Z',
        items: [],
        nextCursor: null,
        trend: { totals: { slopeGBPerDay: null, daysUntilFull: null, points: 0 } },
      });
    }
    // Only the instants as written decide the order; the message quotes them.
    expectProblem(
      await get('acme', { from: '2026-11-28T03:00:00.0009Z', to: '2026-11-28T03:00:00.0005Z' }),
      400,
      'INVALID_REQUEST',
      'from (2026-11-28T03:00:00.0009Z) is later than to (2026-11-28T03:00:00.0005Z): from must not be after to.',
    );
    // Such a range never has a next page, so a cursor with it is one of another range.
    const cursor = encodeCursor(CURSOR_KEY, {
      tenantId: 'acme',
      from: '2026-11-28T02:00:00.000Z',
      to: '2026-11-28T03:00:00.000Z',
      lastKey: { tenantId: 'acme', observedAt: '2026-11-28T02:30:00.000Z' },
    });
    expectProblem(
      await get('acme', { from: '2026-11-28T03:00:00.0005Z', to: '2026-11-28T03:00:00.0005Z', cursor }),
      400,
      'INVALID_REQUEST',
      'pass the same from and to with it, or leave them out',
    );
  });

  it('reads a fraction of any length and a leap second', async () => {
    await put('acme', '2026-11-28T03:00:00.123Z', 1);
    await put('acme', '2026-11-28T03:00:00.000Z', 2);
    const long = await get('acme', { to: '2026-11-28T03:00:00.123456789012Z' });
    expect(long.statusCode).toBe(200);
    expect(long.json.to).toBe('2026-11-28T03:00:00.123Z');
    expect(long.json.items).toHaveLength(2);
    const leap = await get('acme', { from: '2026-11-28T02:59:60Z', to: '2026-11-28T03:00:00Z' });
    expect(leap.statusCode).toBe(200);
    expect(leap.json).toMatchObject({ from: '2026-11-28T03:00:00.000Z', to: '2026-11-28T03:00:00.000Z' });
    expect(leap.json.items).toHaveLength(1);
  });

  it("works as the module's own handler, with DynamoDB's endpoint from AWS_ENDPOINT_URL_DYNAMODB", async () => {
    Object.assign(process.env, env, {
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
      AWS_REGION: TEST_REGION,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    });
    await put('beta', new Date(Date.now() - 60_000).toISOString(), 7);
    const { handler } = await import('../../handlers/history.ts');
    const answer = await get('beta', {}, { handler });
    expect(answer.statusCode).toBe(200);
    expect(answer.json.items).toHaveLength(1);
  });
});

describe('history: refusals', () => {
  it.each([
    [{ from: 'last tuesday' }, /^from is 'last tuesday', not an ISO 8601 instant/],
    [{ to: '2026-11-28T04:00:00' }, /^to is .*it has no time zone/],
    [{ from: '2026-11-28' }, /a date alone is not an instant/],
    [{ from: '2026-02-30T00:00:00Z' }, /does not exist/],
    [
      { from: '2026-11-28T00:00:00Z', to: '2026-11-27T00:00:00Z' },
      /^from \(2026-11-28T00:00:00Z\) is later than to \(2026-11-27T00:00:00Z\)/,
    ],
    [{ from: '2026-12-01T00:00:00Z' }, /\(to defaults to now\)/],
    [{ limit: '0' }, /^limit is '0': it must be a whole number from 1 to 1000/],
    [{ limit: '1001' }, /^limit is '1001'/],
    [{ limit: 'ten' }, /^limit is 'ten'/],
    [{ cursor: 'garbage' }, /^cursor is malformed/],
    [
      { cursor: 'eyJ2IjoxfQ.c2lnbmF0dXJlLW9mLTMyLWJ5dGVzLWxvbmctZm9yZ2VkIQ' },
      /^cursor was not issued by this service/,
    ],
  ])('400 INVALID_REQUEST for %j', async (query, detail) => {
    expectProblem(await get('acme', query), 400, 'INVALID_REQUEST', detail);
  });

  it('400 for a parameter given twice, counted in rawQueryString as API Gateway sends it', async () => {
    expectProblem(
      await get('acme', { limit: ['5', '6'] }),
      400,
      'INVALID_REQUEST',
      "limit was given 2 times ('5,6'): give it once.",
    );
    expectProblem(
      await get('acme', 'from=2026-11-27T00:00:00Z&%66rom=2026-11-26T00:00:00Z'),
      400,
      'INVALID_REQUEST',
      "from was given 2 times ('2026-11-27T00:00:00Z,2026-11-26T00:00:00Z'): give it once.",
    );
    // One value with a comma of its own is judged as that value.
    expectProblem(
      await get('acme', 'limit=1,000'),
      400,
      'INVALID_REQUEST',
      "limit is '1,000': it must be a whole number from 1 to 1000 (default 500).",
    );
    const decimalComma = await get('acme', 'to=2026-11-28T00:00:00,1234-05:00');
    expect(decimalComma.statusCode).toBe(200);
    expect(decimalComma.json.to).toBe('2026-11-28T05:00:00.123Z');
  });

  it("400 for a cursor of another tenant's history, or of another range", async () => {
    for (let i = 0; i < 3; i += 1) await put('beta', at(-i * 60_000), i);
    const first = await get('beta', { limit: '1' });
    const cursor = String(first.json.nextCursor);
    expect(cursor).toMatch(/\./);
    expectProblem(await get('acme', { cursor }), 400, 'INVALID_REQUEST', "another tenant's history");
    expectProblem(
      await get('beta', { cursor, to: '2026-11-28T05:00:00Z' }),
      400,
      'INVALID_REQUEST',
      'pass the same from and to with it, or leave them out',
    );
    const forged = encodeCursor('not-the-key', {
      tenantId: 'beta',
      from: String(first.json.from),
      to: String(first.json.to),
      lastKey: { tenantId: 'beta', observedAt: at(-60_000) },
    });
    expectProblem(
      await get('beta', { cursor: forged }),
      400,
      'INVALID_REQUEST',
      'not issued by this service',
    );
  });

  it('400, not a DynamoDB refusal, for a validly signed cursor whose position is outside its range', async () => {
    await put('acme', at(-DAY), 1);
    const range = { from: at(-7 * DAY), to: at(0) };
    for (const observedAt of [at(-8 * DAY), at(1)]) {
      const cursor = encodeCursor(CURSOR_KEY, {
        tenantId: 'acme',
        ...range,
        lastKey: { tenantId: 'acme', observedAt },
      });
      expectProblem(
        await get('acme', { cursor }),
        400,
        'INVALID_REQUEST',
        `cursor's position (${observedAt}) lies outside its range from=${range.from} to=${range.to}`,
      );
    }
  });

  it('400 for a bad tenant id, 404 UNKNOWN_TENANT for a tenant that is not configured', async () => {
    expectProblem(await get('no such tenant'), 400, 'INVALID_REQUEST', 'Invalid tenant id');
    expectProblem(await get('zeta'), 404, 'UNKNOWN_TENANT', "Tenant 'zeta' is not configured");
  });

  it('404 NOT_FOUND for another path or method', async () => {
    expectProblem(
      await get('acme', {}, { path: '/tenants/acme/allocation/history.svg' }),
      404,
      'NOT_FOUND',
      'No route',
    );
    expectProblem(
      await get('acme', {}, { method: 'DELETE' }),
      404,
      'NOT_FOUND',
      'GET /tenants/{tenantId}/allocation/history',
    );
  });

  it('500 CONFIGURATION_ERROR for a bad setting, naming it', async () => {
    const handler = coldHandler({ KOODRIVE_TENANTS: 'acme=koodrive/acme,acme=koodrive/other' });
    expectProblem(await get('acme', {}, { handler }), 500, 'CONFIGURATION_ERROR', 'KOODRIVE_TENANTS');
  });

  it('answers while a setting of KooDrive calls is wrong, since it reads stored data only', async () => {
    await put('acme', at(-DAY), 1);
    const handler = coldHandler({
      KOODRIVE_BASE_URL: 'http://koodrive.example.com',
      KOODRIVE_MAX_ATTEMPTS: '0',
    });
    const answer = await get('acme', {}, { handler });
    expect(answer.statusCode).toBe(200);
    expect(answer.json.items).toHaveLength(1);
  });

  it('500 CONFIGURATION_ERROR naming the table and what to check when it does not exist', async () => {
    const handler = coldHandler({ SNAPSHOT_TABLE: 'no-such-table' });
    const answer = await get('acme', {}, { handler });
    expectProblem(
      answer,
      500,
      'CONFIGURATION_ERROR',
      "The snapshot table 'no-such-table' (SNAPSHOT_TABLE) could not be read: no table 'no-such-table' exists in this account and region: check SNAPSHOT_TABLE",
    );
    expect(answer.json.detail).toContain('(ResourceNotFoundException)');
  });

  it('500 INTERNAL_ERROR without details for a failure nobody planned for (a malformed stored item)', async () => {
    await dynamo.client.send(
      new PutItemCommand({
        TableName: env.SNAPSHOT_TABLE,
        Item: { tenantId: { S: 'acme' }, observedAt: { S: at(-DAY) }, spaces: { S: 'not a list' } },
      }),
    );
    const answer = await get('acme');
    expectProblem(answer, 500, 'INTERNAL_ERROR', 'An unexpected error occurred; see the function logs.');
    expect(JSON.stringify(answer.json)).not.toContain('spaces');
  });
});

describe('history: the snapshot table unreachable or slow', () => {
  it('503 STORE_UNAVAILABLE, safe to retry, when DynamoDB cannot be reached', async () => {
    const closed = await startSilentServer();
    const url = closed.url;
    await closed.close();
    const handler = createHistoryHandler({
      logger: createLogger('history-test'),
      getConfig: () => loadConfig(env),
      getStore: lazySnapshotStore({ client: localDynamoClient(url) }),
      now: () => NOW,
    });
    const answer = await get('acme', {}, { handler });
    expectProblem(
      answer,
      503,
      'STORE_UNAVAILABLE',
      `The snapshot table '${env.SNAPSHOT_TABLE}' could not be read: DynamoDB could not be reached (ECONNREFUSED). Nothing was changed; retrying later is safe.`,
    );
    expect(answer.json.title).toBe('Snapshot store unavailable');
  });

  it('answers 503 STORE_UNAVAILABLE before the invocation ends when DynamoDB never answers', async () => {
    // The production client (createDynamoClient: 5 s per attempt, 3 attempts) on an endpoint that
    // accepts connections and stays silent; the invocation has 1.8 s left, so 0.8 s to the deadline.
    const silent = await startSilentServer();
    const level = process.env.POWERTOOLS_LOG_LEVEL;
    Object.assign(process.env, { AWS_ENDPOINT_URL_DYNAMODB: silent.url, POWERTOOLS_LOG_LEVEL: 'INFO' });
    const capture = captureOutput();
    try {
      const handler = createHistoryHandler({
        logger: createLogger('history-test'),
        getConfig: () => loadConfig(env),
        getStore: lazySnapshotStore({ now: () => NOW.getTime() }),
        now: () => NOW,
      });
      const ends = Date.now() + 1_800;
      const context = { ...lambdaContext('history'), getRemainingTimeInMillis: () => ends - Date.now() };
      const answer = await get('acme', {}, { handler, context });
      capture.stop();
      expectProblem(
        answer,
        503,
        'STORE_UNAVAILABLE',
        /did not answer within the \d+ ms left in this invocation/,
      );
      expect(answer.json.detail).toContain('retrying later is safe');
      // Cut at the deadline (invocation end less ANSWER_MARGIN_MS), before Lambda's end, not left to the
      // client's 5 s limit: that would time out and retry, each retry on a new connection. No wall-clock
      // bound here: a loaded machine may take longer to run the test, never to open more connections.
      expect(silent.connections()).toBe(1);
      const budgetMs = Number(/within the (\d+) ms left/.exec(String(answer.json.detail))?.[1]);
      expect(budgetMs).toBeGreaterThan(0);
      // A second of the 1.8 s is kept for answering: the read had at most 0.8 s.
      expect(budgetMs).toBeLessThanOrEqual(800);
      const completed = capture
        .text()
        .split('\n')
        .filter((line) => line.includes('request completed'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(completed).toEqual([expect.objectContaining({ status: 503, traceId: answer.requestId })]);
    } finally {
      capture.stop();
      process.env.AWS_ENDPOINT_URL_DYNAMODB = savedEnv.AWS_ENDPOINT_URL_DYNAMODB;
      if (savedEnv.AWS_ENDPOINT_URL_DYNAMODB === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      process.env.POWERTOOLS_LOG_LEVEL = level;
      await silent.close();
    }
  });
});
