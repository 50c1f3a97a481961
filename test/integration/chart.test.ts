import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChartHandler, MAX_CHART_SNAPSHOTS, readHistory } from '../../handlers/chart.ts';
import { renderAllocationChart } from '../../lib/chart/svg.ts';
import { loadConfig } from '../../lib/config.ts';
import { StoreUnavailableError } from '../../lib/errors.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { createLogger } from '../../lib/logger.ts';
import {
  createDynamoSnapshotStore,
  itemToAllocation,
  lazySnapshotStore,
  type Snapshot,
  type SnapshotStore,
} from '../../lib/snapshots/store.ts';
import { computeTrend } from '../../lib/trend.ts';
import { captureOutput, httpEvent, lambdaContext } from '../support/lambda.ts';
import { startSilentServer } from '../support/silent-server.ts';
import { type Dynalite, localDynamoClient, startDynalite } from './snapshots-support.ts';

const TABLE = 'chart-snapshots';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2026-11-28T04:30:00.000Z');
/** Snapshots on the hour, the last one at 04:00. */
const LAST = Date.parse('2026-11-28T04:00:00.000Z');

let dynamo: Dynalite;
let store: SnapshotStore;

function snapshot(tenantId: string, at: number, departmentGB: number): Snapshot {
  const observedAt = new Date(at).toISOString();
  return {
    tenantId,
    observedAt,
    fetchedAt: observedAt,
    source: 'schedule',
    traceId: 'trace-chart-test',
    ...normalizeAllocation({
      code: 0,
      data: [
        { type: 0, allocateCapacity: departmentGB, totalCapacity: 1000 },
        { type: 1, allocateCapacity: 250, totalCapacity: 500 },
      ],
    }),
  };
}

async function putAll(snapshots: Snapshot[]): Promise<void> {
  // A few at a time: dynalite is one process, and the order of writes does not matter.
  for (let i = 0; i < snapshots.length; i += 25) {
    const outcomes = await Promise.all(snapshots.slice(i, i + 25).map((s) => store.put(s)));
    expect(outcomes.every((o) => o === 'stored')).toBe(true);
  }
}

function handler(at: Date = NOW) {
  return createChartHandler({
    logger: createLogger('chart-test'),
    getConfig: () =>
      loadConfig({
        KOODRIVE_TENANTS: 'acme=koodrive/acme,beta=koodrive/beta,big=koodrive/big,quiet=koodrive/quiet',
        SNAPSHOT_TABLE: TABLE,
        ALLOCATION_THRESHOLDS: '0.8,0.9,1.0',
      }),
    getStore: () => store,
    now: () => at,
  });
}

async function getSvg(tenantId: string, query: Record<string, string | readonly string[]> | string = {}) {
  const context = lambdaContext('koodrive-allocation-test-chart');
  const response = await handler()(
    httpEvent(`/tenants/${tenantId}/allocation/history.svg`, {
      routeKey: 'GET /tenants/{tenantId}/allocation/history.svg',
      pathParameters: { tenantId },
      query,
    }),
    context,
  );
  return { ...response, body: String(response.body), requestId: context.awsRequestId };
}

function problem(response: { body: string }): Record<string, unknown> {
  const parsed: unknown = JSON.parse(response.body);
  return typeof parsed === 'object' && parsed !== null ? { ...parsed } : {};
}

function descOf(svg: string): string {
  return /<desc[^>]*>([^<]*)<\/desc>/.exec(svg)?.[1] ?? '';
}

/** Runs `run` with WARN lines written and captured (the suite is otherwise SILENT): the lines with `message`. */
async function warningsOf<T>(
  message: string,
  run: () => Promise<T>,
): Promise<{ value: T; warnings: Record<string, unknown>[] }> {
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
  const output = captureOutput();
  try {
    const value = await run();
    const warnings = output
      .text()
      .split('\n')
      .filter((line) => line.includes(`"message":"${message}"`))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { value, warnings };
  } finally {
    output.stop();
    process.env.POWERTOOLS_LOG_LEVEL = level;
  }
}

/** The error a stored item with a size that is not a number gives, as the store reads it. */
function malformedItemError(tenantId: string, observedAt: string): unknown {
  try {
    itemToAllocation({
      tenantId: { S: tenantId },
      observedAt: { S: observedAt },
      spaces: { L: [{ M: { type: { N: '0' }, allocatedGB: { S: 'lots' }, totalGB: { N: '10' } } }] },
    });
  } catch (error) {
    return error;
  }
  throw new Error('the item was read');
}

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createSnapshotTable(TABLE);
  store = createDynamoSnapshotStore({
    client: dynamo.client,
    tableName: TABLE,
    retentionDays: 400,
    cursorKey: 'chart-test-cursor-key',
    now: () => NOW.getTime(),
  });
  // acme: 10 days of hourly snapshots, department growing 24 GB a day (1 GB an hour).
  const acme = Array.from({ length: 10 * 24 + 1 }, (_, h) => snapshot('acme', LAST - h * HOUR, 700 - h));
  // beta: three snapshots, flat.
  const beta = [0, 1, 2].map((d) => snapshot('beta', LAST - d * DAY, 100));
  // big: more than a page (1,000) in one day, every minute.
  const big = Array.from({ length: 1_100 }, (_, m) => snapshot('big', LAST - m * 60_000, 300 + m / 1000));
  await putAll([...acme, ...beta, ...big]);
});

afterAll(async () => {
  await dynamo?.close();
});

describe('GET /tenants/{tenantId}/allocation/history.svg', () => {
  it('answers the last 7 days as an SVG chart, cacheable for a minute, with the trace id', async () => {
    const response = await getSvg('acme');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(response.headers['cache-control']).toBe('private, max-age=60');
    expect(response.headers['x-trace-id']).toBe(response.requestId);
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.body).toMatch(/^<svg /);
    for (const series of ['department', 'personal', 'totals']) {
      expect(response.body).toContain(`data-series="${series}-allocated"`);
      expect(response.body).toContain(`data-series="${series}-total"`);
    }
    const desc = descOf(response.body);
    // 7 days back from now (04:30) reaches 21 Nov 04:30: hourly snapshots 05:00 … 28 Nov 04:00.
    expect(desc).toContain('2026-11-21 04:30 UTC to 2026-11-28 04:30 UTC, 168 snapshots');
    // 300 GB left at 24 GB a day: 12.5 days, said as about 13.
    expect(desc).toContain(
      'department: 700 of 1,000 GB allocated (70 %), growing by 24 GB a day, full in about 13 days',
    );
    expect(desc).toContain('personal: 250 of 500 GB allocated (50 %), not growing');
  });

  it('honours from and to (inclusive), also with an offset', async () => {
    const response = await getSvg('acme', { from: '2026-11-27T05:00:00+01:00', to: '2026-11-28T04:00:00Z' });
    expect(response.statusCode).toBe(200);
    // 27 Nov 04:00Z to 28 Nov 04:00Z, both ends included: 25 hourly snapshots.
    expect(descOf(response.body)).toContain('25 snapshots');
  });

  it('draws a range that runs into the future up to now, not as missing snapshots', async () => {
    const response = await getSvg('acme', { from: '2026-11-27T04:00:00Z', to: '2026-12-01T00:00:00Z' });
    expect(response.statusCode).toBe(200);
    const desc = descOf(response.body);
    expect(desc).toContain('2026-11-27 04:00 UTC to 2026-11-28 04:30 UTC, 25 snapshots');
    expect(desc).not.toContain('No snapshots since');
    expect(response.body).not.toContain('data-stale');
    // Wholly in the future: drawn as asked, with nothing in it.
    const later = await getSvg('acme', { from: '2026-12-01T00:00:00Z', to: '2026-12-02T00:00:00Z' });
    expect(later.body).toContain('No snapshots in this range');
  });

  it('reads every page of a range larger than one page', async () => {
    const response = await getSvg('big', { from: '2026-11-27T00:00:00Z', to: '2026-11-28T04:00:00Z' });
    expect(response.statusCode).toBe(200);
    expect(descOf(response.body)).toContain('1,100 snapshots');
    expect(response.body).not.toContain('Only the first');
  });

  it('reads a range as time slices that meet without gaps or overlaps', async () => {
    const query = { tenantId: 'big', from: new Date(LAST - DAY), to: new Date(LAST) };
    const whole = await readHistory(store, query);
    expect(whole.truncated).toBe(false);
    // Every minute once, oldest first, across the eight slice boundaries (each on a whole minute here).
    expect(whole.items.map((i) => i.observedAt)).toEqual(
      Array.from({ length: 1_100 }, (_, k) => new Date(LAST - (1_099 - k) * 60_000).toISOString()),
    );
    expect(MAX_CHART_SNAPSHOTS).toBeGreaterThanOrEqual(38_400);
  });

  it('reads at most the cap, spread over the whole range, and says the range was truncated', async () => {
    const query = { tenantId: 'big', from: new Date(LAST - DAY), to: new Date(LAST) };
    const capped = await readHistory(store, query, 240);
    expect(capped.truncated).toBe(true);
    expect(capped.items.length).toBeLessThanOrEqual(240);
    const times = capped.items.map((i) => Date.parse(i.observedAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
    // Not only the oldest: the last eighth of the range is read too, from its end, so the newest
    // snapshot read is the range's newest.
    expect(times.at(-1)).toBe(LAST);
    // Each slice with more than its share (the six that 'big' fills) left a stretch unread, and says
    // which; nothing read lies in one.
    expect(capped.unread).toHaveLength(6);
    for (const stretch of capped.unread) {
      expect(stretch.from).toBeLessThanOrEqual(stretch.to);
      expect(times.filter((t) => t >= stretch.from && t <= stretch.to)).toEqual([]);
    }
  });

  it('gives the share of the slices that hold less to the slices that hold more', async () => {
    // All 1,100 snapshots lie in the last of eight day-long slices: a cap of 2,000 reads them all,
    // though that slice's first share is only 250.
    const query = { tenantId: 'big', from: new Date(LAST - 8 * DAY), to: new Date(LAST) };
    const whole = await readHistory(store, query, 2_000);
    expect(whole.truncated).toBe(false);
    expect(whole.unread).toEqual([]);
    expect(whole.items).toHaveLength(1_100);
    // Bunched into the last four of eight six-hour slices (19, 360, 360 and 361 snapshots): a cap of
    // 1,000 reads exactly 1,000, the newest included, and says what it left.
    const day = { tenantId: 'big', from: new Date(LAST - 2 * DAY), to: new Date(LAST) };
    const capped = await readHistory(store, day, 1_000);
    expect(capped.truncated).toBe(true);
    expect(capped.items).toHaveLength(1_000);
    const times = capped.items.map((i) => Date.parse(i.observedAt));
    expect(new Set(times).size).toBe(1_000);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times.at(-1)).toBe(LAST);
    expect(times.filter((t) => t < LAST - 18 * HOUR)).toHaveLength(19);
    expect(capped.unread).toHaveLength(3);
    for (const stretch of capped.unread) {
      expect(times.filter((t) => t >= stretch.from && t <= stretch.to)).toEqual([]);
    }
    // A cap below the eight slices: the newest four read one each, and the four the budget never
    // reached are reported unread whole, not taken for empty.
    const tiny = await readHistory(
      store,
      { tenantId: 'big', from: new Date(LAST - DAY), to: new Date(LAST) },
      4,
    );
    expect([tiny.items.length, tiny.truncated, tiny.unread.length]).toEqual([4, true, 8]);
    const dayStart = LAST - DAY;
    expect(tiny.unread.filter((stretch) => stretch.from === dayStart)).toHaveLength(1);
  });

  it('draws a capped range as one line across what it left unread, its latest snapshot the newest, not stale', async () => {
    const query = { tenantId: 'big', from: new Date(LAST - DAY), to: new Date(LAST) };
    const capped = await readHistory(store, query, 240);
    const chart = (unread: typeof capped.unread | undefined) =>
      renderAllocationChart({
        ...query,
        items: capped.items,
        trend: computeTrend(capped.items),
        thresholds: [0.8],
        truncated: true,
        ...(unread === undefined ? {} : { unread }),
      });
    const moves = (svg: string) =>
      (/data-series="totals-allocated" d="([^"]*)"/.exec(svg)?.[1] ?? '').split('M').length - 1;
    const svg = chart(capped.unread);
    expect(moves(svg)).toBe(1);
    expect(svg).not.toContain('data-stale');
    expect(descOf(svg)).toContain('the latest at 2026-11-28 04:00 UTC');
    // Without the unread stretches the same points would be drawn in pieces: outages that never were.
    expect(moves(chart(undefined))).toBe(6);
  });

  it('refuses a tenant path with dot segments, which an IAM policy on another tenant matches', async () => {
    const response = await handler()(
      httpEvent('/tenants/quiet/../acme/allocation/history.svg', {
        routeKey: 'GET /tenants/{tenantId}/allocation/history.svg',
        pathParameters: { tenantId: 'acme' },
      }),
      lambdaContext('koodrive-allocation-test-chart'),
    );
    expect(response.statusCode).toBe(400);
    expect(problem({ body: String(response.body) }).detail).toContain("The path has '.' or '..' segments");
  });

  it('answers an empty range with a chart that says so', async () => {
    const response = await getSvg('quiet');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(response.body).toContain('No snapshots in this range');
  });

  it('answers a range inside one millisecond (from = to past the millisecond) with an empty chart', async () => {
    // acme has a snapshot at 04:00:00.000, just before the range.
    for (const to of ['2026-11-28T04:00:00.0005Z', '2026-11-28T04:00:00.0009Z']) {
      const response = await getSvg('acme', { from: '2026-11-28T04:00:00.0005Z', to });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
      expect(response.body).toContain('No snapshots in this range');
    }
    const reversed = await getSvg('acme', {
      from: '2026-11-28T04:00:00.0009Z',
      to: '2026-11-28T04:00:00.0005Z',
    });
    expect(reversed.statusCode).toBe(400);
    expect(problem(reversed).detail).toBe(
      'from (2026-11-28T04:00:00.0009Z) is later than to (2026-11-28T04:00:00.0005Z): from must not be after to.',
    );
    const query = { tenantId: 'acme', from: new Date(LAST + 1), to: new Date(LAST) };
    expect(await readHistory(store, query)).toEqual({ items: [], truncated: false, unread: [] });
  });

  it('takes a value with a comma of its own as one value, and refuses a parameter given twice', async () => {
    // 2026-11-28T00:00:00,0001-04:00 is 04:00:00.000Z: acme's last snapshot.
    const decimalComma = await getSvg(
      'acme',
      'from=2026-11-28T00:00:00-04:00&to=2026-11-28T00:00:00,0001-04:00',
    );
    expect(decimalComma.statusCode).toBe(200);
    expect(descOf(decimalComma.body)).toContain('1 snapshot;');
    const twice = await getSvg('acme', { to: ['2026-11-28T00:00:00Z', '2026-11-27T00:00:00Z'] });
    expect(twice.statusCode).toBe(400);
    expect(problem(twice).detail).toBe(
      "to was given 2 times ('2026-11-28T00:00:00Z,2026-11-27T00:00:00Z'): give it once.",
    );
  });

  it('draws at the width and height asked for (a dashboard panel or wiki column), within their limits', async () => {
    const sized = await getSvg('acme', { width: '1200', height: '300' });
    expect(sized.statusCode).toBe(200);
    expect(sized.body).toMatch(/^<svg [^>]*width="1200" height="300" viewBox="0 0 1200 300"/);
    const fallback = await getSvg('acme', { width: '', height: '' });
    expect(fallback.body).toMatch(/^<svg [^>]*width="800" height="400"/);

    for (const [query, detail] of [
      [{ width: '100' }, "width is '100': give a whole number of pixels from 480 to 2400 (default 800)."],
      [{ height: '4e2' }, "height is '4e2': give a whole number of pixels from 240 to 1200 (default 400)."],
      [{ width: '800.5' }, "width is '800.5': give a whole number of pixels from 480 to 2400 (default 800)."],
      [
        { height: ['300', '400'] },
        "height was given 2 times ('300,400'): give it once, a whole number of pixels from 240 to 1200 (default 400).",
      ],
    ] as const) {
      const refused = await getSvg('acme', query);
      expect(refused.statusCode, JSON.stringify(query)).toBe(400);
      expect(problem(refused)).toMatchObject({ code: 'INVALID_REQUEST', detail });
    }
  });

  it("shows only the tenant's own snapshots", async () => {
    const response = await getSvg('beta');
    expect(descOf(response.body)).toContain('3 snapshots');
    expect(descOf(response.body)).toContain('department: 100 of 1,000 GB allocated (10 %), not growing');
  });

  it.each([
    [{ from: 'yesterday' }, "from is 'yesterday', not an ISO 8601 instant"],
    [{ to: '2026-11-28' }, 'a date alone is not an instant'],
    [{ from: '2026-11-28T00:00:00' }, 'it has no time zone'],
    [{ from: '2026-11-28T00:00:00Z', to: '2026-11-27T00:00:00Z' }, 'from must not be after to'],
  ])('refuses %o with 400 and a clear detail', async (query, detail) => {
    const response = await getSvg('acme', query);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(problem(response)).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect(String(problem(response).detail)).toContain(detail);
  });

  it('refuses a malformed tenant id with 400 and an unknown one with 404', async () => {
    const bad = await getSvg('no%20such');
    expect(bad.statusCode).toBe(400);
    expect(problem(bad)).toMatchObject({ code: 'INVALID_REQUEST' });
    const unknown = await getSvg('ghost');
    expect(unknown.statusCode).toBe(404);
    expect(problem(unknown)).toMatchObject({ code: 'UNKNOWN_TENANT' });
    expect(String(problem(unknown).detail)).toContain("Tenant 'ghost' is not configured");
  });
});

describe('history.svg when the snapshot table is slow', () => {
  it('answers 503 STORE_UNAVAILABLE problem+json before the invocation ends when DynamoDB never answers', async () => {
    // The production client (5 s per attempt, 3 attempts, 8 slices read at once) on an endpoint that
    // accepts connections and stays silent; the invocation has 1.8 s left, so 0.8 s to the deadline.
    const silent = await startSilentServer();
    const saved = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = silent.url;
    try {
      const slow = createChartHandler({
        logger: createLogger('chart-test'),
        getConfig: () => loadConfig({ KOODRIVE_TENANTS: 'acme=koodrive/acme', SNAPSHOT_TABLE: 'chart-slow' }),
        getStore: lazySnapshotStore({ now: () => NOW.getTime() }),
        now: () => NOW,
      });
      const ends = Date.now() + 1_800;
      const context = { ...lambdaContext(), getRemainingTimeInMillis: () => ends - Date.now() };
      const response = await slow(
        httpEvent('/tenants/acme/allocation/history.svg', {
          routeKey: 'GET /tenants/{tenantId}/allocation/history.svg',
          pathParameters: { tenantId: 'acme' },
        }),
        context,
      );
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toBe('application/problem+json');
      expect(response.headers['x-trace-id']).toBe(context.awsRequestId);
      expect(problem({ body: String(response.body) })).toMatchObject({
        status: 503,
        code: 'STORE_UNAVAILABLE',
        detail: expect.stringContaining("The snapshot table 'chart-slow' could not be read"),
      });
      // Cut at the deadline, before the invocation's end (1.8 s away), not left to the client's 5 s limit,
      // which would time out and retry each slice on a new connection. No wall-clock bound: a loaded
      // machine may take longer to run the test, never to open more connections.
      expect(silent.connections()).toBe(8);
      const budgetMs = Number(
        /within the (\d+) ms left/.exec(String(problem({ body: String(response.body) }).detail))?.[1],
      );
      expect(budgetMs).toBeGreaterThan(0);
      // A second of the 1.8 s is kept for answering: the reads had at most 0.8 s.
      expect(budgetMs).toBeLessThanOrEqual(800);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = saved;
      await silent.close();
    }
  });
});

describe('GET /dashboard', () => {
  it('answers an HTML page with every configured tenant and its chart', async () => {
    const response = await handler()(
      httpEvent('/dashboard', { routeKey: 'GET /dashboard' }),
      lambdaContext(),
    );
    const html = String(response.body);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-security-policy']).toContain("img-src 'self'");
    expect(response.headers['content-security-policy']).not.toContain('frame-ancestors');
    for (const tenantId of ['acme', 'beta', 'big', 'quiet']) {
      expect(html).toContain(`>${tenantId}</h2>`);
      expect(html).toContain(
        `<img src="tenants/${tenantId}/allocation/history.svg?from=2026-11-21T04%3A30%3A00.000Z&amp;to=2026-11-28T04%3A30%3A00.000Z"`,
      );
    }
  });

  it('gives its charts the same URLs through a minute, so a browser reuses the ones it cached', async () => {
    const at = async (time: string) =>
      String(
        (
          await handler(new Date(time))(
            httpEvent('/dashboard', { routeKey: 'GET /dashboard' }),
            lambdaContext(),
          )
        ).body,
      ).match(/history\.svg\?[^"]+/g);
    const first = await at('2026-11-28T04:30:00.000Z');
    // Each tenant's chart, as an image and as a link.
    expect(first).toHaveLength(8);
    expect(await at('2026-11-28T04:30:59.999Z')).toEqual(first);
    expect(await at('2026-11-28T04:31:00.000Z')).not.toEqual(first);
  });
});

describe('GET /dashboard: the "Fullest first" table', () => {
  /** The table's body rows, each as its cells' text (tags removed). */
  function rows(html: string): string[][] {
    const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
    return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map(([, row = '']) =>
      [...row.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map(([, cell = '']) =>
        cell.replace(/<[^>]+>/g, ''),
      ),
    );
  }

  function sectionOrder(html: string): string[] {
    return [...html.matchAll(/<section id="tenant-([^"]+)"/g)].map(([, tenantId = '']) => tenantId);
  }

  async function dashboard(getStore: () => SnapshotStore, context = lambdaContext()) {
    const chart = createChartHandler({
      logger: createLogger('chart-test'),
      getConfig: () =>
        loadConfig({
          KOODRIVE_TENANTS: 'acme=koodrive/acme,beta=koodrive/beta,big=koodrive/big,quiet=koodrive/quiet',
          SNAPSHOT_TABLE: TABLE,
        }),
      getStore,
      now: () => NOW,
    });
    const response = await chart(httpEvent('/dashboard', { routeKey: 'GET /dashboard' }), context);
    return { ...response, body: String(response.body) };
  }

  it("lists the tenants by their newest snapshot's allocated ratio, highest first, and orders the charts so", async () => {
    const response = await dashboard(() => store);
    expect(response.statusCode).toBe(200);
    // Configured acme, beta, big, quiet; newest totals: acme 950 of 1,500 GB, big 550, beta 350, quiet none.
    expect(rows(response.body)).toEqual([
      ['acme', '950 of 1,500 GB', '63.3 %', '', '2026-11-28 04:00 UTC'],
      ['big', '550 of 1,500 GB', '36.7 %', '', '2026-11-28 04:00 UTC'],
      ['beta', '350 of 1,500 GB', '23.3 %', '', '2026-11-28 04:00 UTC'],
      ['quiet', 'no snapshot yet'],
    ]);
    expect(sectionOrder(response.body)).toEqual(['acme', 'big', 'beta', 'quiet']);
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    // The page carries the same policy, for when it is saved and opened without the header.
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(response.body)?.[1];
    expect(meta).toBe(response.headers['content-security-policy']);
    expect(response.body).toContain('<meta name="referrer" content="no-referrer">');
  });

  it('says "unavailable" for a tenant whose read fails, and still shows every other row and chart', async () => {
    const failing: SnapshotStore = {
      ...store,
      latest: (tenantId) =>
        tenantId === 'big'
          ? Promise.reject(
              new StoreUnavailableError("The snapshot table 'chart-snapshots' could not be read: throttled."),
            )
          : store.latest(tenantId),
    };
    const { value: response, warnings } = await warningsOf('dashboard newest snapshot unavailable', () =>
      dashboard(() => failing),
    );
    expect(response.statusCode).toBe(200);
    expect(rows(response.body)).toEqual([
      ['acme', '950 of 1,500 GB', '63.3 %', '', '2026-11-28 04:00 UTC'],
      ['beta', '350 of 1,500 GB', '23.3 %', '', '2026-11-28 04:00 UTC'],
      ['quiet', 'no snapshot yet'],
      ['big', 'unavailable'],
    ]);
    // The log says why, not only which error: its message too, as a request's failure line does.
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 'WARN',
        tenantId: 'big',
        errorCode: 'STORE_UNAVAILABLE',
        errorName: 'StoreUnavailableError',
        errorMessage: "The snapshot table 'chart-snapshots' could not be read: throttled.",
      }),
    ]);
    expect(sectionOrder(response.body)).toEqual(['acme', 'beta', 'quiet', 'big']);
    // Its chart is still there: it is read on its own.
    expect(response.body).toContain('<img src="tenants/big/allocation/history.svg?from=');
  });

  it("logs a malformed newest item's message and key, to find it in the table", async () => {
    const observedAt = '2026-11-28T04:00:00.000Z';
    const failing: SnapshotStore = {
      ...store,
      latest: (tenantId) =>
        tenantId === 'big' ? Promise.reject(malformedItemError('big', observedAt)) : store.latest(tenantId),
    };
    const { value: response, warnings } = await warningsOf('dashboard newest snapshot unavailable', () =>
      dashboard(() => failing),
    );
    expect(response.statusCode).toBe(200);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      tenantId: 'big',
      // The code the history route answers for it: the README's 3 a.m. row has operators search by it.
      errorCode: 'INTERNAL_ERROR',
      errorName: 'MalformedSnapshotItemError',
      errorMessage: `A stored snapshot item is malformed: tenant 'big' at ${observedAt}: spaces[0].allocatedGB is not a non-negative number.`,
      itemKey: { tenantId: 'big', observedAt },
    });
    // Data to fix, not a bug: no stack.
    expect(warnings[0]).not.toHaveProperty('stack');
  });

  it('answers before the invocation ends when DynamoDB never does, that tenant "unavailable"', async () => {
    // acme's newest snapshot is asked of a DynamoDB that accepts the connection and never answers.
    const silent = await startSilentServer();
    const unanswered = createDynamoSnapshotStore({
      client: localDynamoClient(silent.url),
      tableName: TABLE,
      retentionDays: 400,
      cursorKey: 'chart-test-cursor-key',
    });
    const deadlines: (number | undefined)[] = [];
    const hanging: SnapshotStore = {
      ...store,
      latest: (tenantId, options) => {
        deadlines.push(options?.deadline);
        return (tenantId === 'acme' ? unanswered : store).latest(tenantId, options);
      },
    };
    // 1.5 s left: the deadline is 0.5 s away (the handler keeps a second to answer).
    const ends = Date.now() + 1_500;
    const context = { ...lambdaContext(), getRemainingTimeInMillis: () => ends - Date.now() };
    // Without the deadline the read of acme would never end (the test would time out); no wall-clock
    // bound on the answer, which a loaded machine could miss. What is checked instead: every read was
    // given the invocation's end less the second kept for answering.
    const response = await dashboard(() => hanging, context).finally(() => silent.close());
    expect(deadlines).toHaveLength(4);
    for (const deadline of deadlines) {
      // deadline = now + remaining - 1 s: `ends - 1 s`, less the odd millisecond between two clock reads.
      expect(ends - (deadline ?? Number.POSITIVE_INFINITY)).toBeGreaterThan(900);
      expect(ends - (deadline ?? Number.NEGATIVE_INFINITY)).toBeLessThanOrEqual(1_000);
    }
    expect(silent.connections()).toBe(1);
    expect(response.statusCode).toBe(200);
    expect(rows(response.body).map(([tenantId, state]) => [tenantId, state])).toEqual([
      ['big', '550 of 1,500 GB'],
      ['beta', '350 of 1,500 GB'],
      ['quiet', 'no snapshot yet'],
      ['acme', 'unavailable'],
    ]);
  });
});

describe('GET /dashboard?inline=1', () => {
  async function dashboard(
    query: Record<string, string | readonly string[]>,
    getStore: () => SnapshotStore = () => store,
    inlinePageBudget?: number,
  ) {
    const chart = createChartHandler({
      logger: createLogger('chart-test'),
      getConfig: () =>
        loadConfig({
          KOODRIVE_TENANTS: 'acme=koodrive/acme,beta=koodrive/beta,quiet=koodrive/quiet',
          SNAPSHOT_TABLE: TABLE,
        }),
      getStore,
      now: () => NOW,
      ...(inlinePageBudget === undefined ? {} : { inlinePageBudget }),
    });
    const response = await chart(
      httpEvent('/dashboard', { routeKey: 'GET /dashboard', query }),
      lambdaContext(),
    );
    return { ...response, body: String(response.body) };
  }

  it('draws every chart inside the page, the same chart the SVG route answers', async () => {
    const response = await dashboard({ inline: '1' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).not.toContain('<img');
    const figures = [...response.body.matchAll(/<figure>(<svg[\s\S]*?<\/svg>)<\/figure>/g)].map((m) => m[1]);
    expect(figures).toHaveLength(3);
    const week = { from: '2026-11-21T04:30:00.000Z', to: '2026-11-28T04:30:00.000Z' };
    expect(figures[0]).toBe((await getSvg('acme', week)).body);
    expect(descOf(figures[1] ?? '')).toContain('tenant beta');
    // The links stay, for whoever opens the page from the API.
    expect(response.body).toContain('href="tenants/acme/allocation/history.svg?from=');
  });

  it('gives a failed chart its reason and still draws the others', async () => {
    const failing: SnapshotStore = {
      ...store,
      query: (query) =>
        query.tenantId === 'beta'
          ? Promise.reject(
              new StoreUnavailableError("The snapshot table 'chart-snapshots' could not be read: throttled."),
            )
          : store.query(query),
    };
    const { value: response, warnings } = await warningsOf('dashboard chart failed', () =>
      dashboard({ inline: 'true' }, () => failing),
    );
    expect(response.statusCode).toBe(200);
    expect([...response.body.matchAll(/<figure><svg/g)]).toHaveLength(2);
    expect(response.body).toContain(
      `<p class="chart-error" role="status">The snapshot table &apos;chart-snapshots&apos; could not be read: throttled.</p>`,
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        tenantId: 'beta',
        errorCode: 'STORE_UNAVAILABLE',
        errorName: 'StoreUnavailableError',
        errorMessage: "The snapshot table 'chart-snapshots' could not be read: throttled.",
      }),
    ]);
  });

  it("logs why a chart failed: a malformed item's message and key, an unforeseen error's stack", async () => {
    const observedAt = '2026-11-27T10:00:00.000Z';
    const failing: SnapshotStore = {
      ...store,
      query: (query) =>
        query.tenantId === 'beta'
          ? Promise.reject(malformedItemError('beta', observedAt))
          : query.tenantId === 'quiet'
            ? Promise.reject(new TypeError('items is not iterable'))
            : store.query(query),
    };
    const { value: response, warnings } = await warningsOf('dashboard chart failed', () =>
      dashboard({ inline: '1' }, () => failing),
    );
    expect(response.statusCode).toBe(200);
    const byTenant = new Map(warnings.map((line) => [line.tenantId, line]));
    expect(byTenant.get('beta')).toMatchObject({
      errorCode: 'INTERNAL_ERROR',
      errorName: 'MalformedSnapshotItemError',
      errorMessage: expect.stringContaining(`tenant 'beta' at ${observedAt}: spaces[0].allocatedGB`),
      itemKey: { tenantId: 'beta', observedAt },
    });
    expect(byTenant.get('beta')).not.toHaveProperty('stack');
    // The page sends its reader to the log for an internal error: the log has what happened, and where.
    expect(byTenant.get('quiet')).toMatchObject({
      errorCode: 'INTERNAL_ERROR',
      errorName: 'TypeError',
      errorMessage: 'items is not iterable',
      stack: expect.stringContaining('TypeError: items is not iterable'),
    });
  });

  it('keeps the page under what a function can answer: charts past the budget keep only their link', async () => {
    const acme =
      (await dashboard({ inline: '1' })).body.match(/<figure>(<svg[\s\S]*?<\/svg>)<\/figure>/)?.[1] ?? '';
    expect(acme.length).toBeGreaterThan(1000);
    const response = await dashboard({ inline: '1' }, () => store, acme.length + 10);
    expect([...response.body.matchAll(/<figure><svg/g)]).toHaveLength(1);
    expect(response.body).toContain('with it the page would pass the 6 MB a function can answer');
  });

  it('does not read or draw the charts that could not fit in the page any more', async () => {
    const tenants = Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    const charted = new Set<string>();
    const counting: SnapshotStore = {
      ...store,
      query: (query) => {
        charted.add(query.tenantId);
        return store.query(query);
      },
    };
    const chart = createChartHandler({
      logger: createLogger('chart-test'),
      getConfig: () =>
        loadConfig({
          KOODRIVE_TENANTS: tenants.map((t) => `${t}=koodrive/${t}`).join(','),
          SNAPSHOT_TABLE: TABLE,
        }),
      getStore: () => counting,
      now: () => NOW,
      inlinePageBudget: 1,
    });
    const response = await chart(
      httpEvent('/dashboard', { routeKey: 'GET /dashboard', query: { inline: '1' } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(200);
    // The first four (drawn at once) fill the page; the other eight are only linked, never read.
    expect(charted.size).toBe(4);
    expect([...String(response.body).matchAll(/would pass the 6 MB a function can answer/g)]).toHaveLength(
      12,
    );
  });

  it('refuses another value of inline with a 400 that says which to use', async () => {
    const response = await dashboard({ inline: 'yes' });
    expect(response.statusCode).toBe(400);
    expect(problem(response)).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(String(problem(response).detail)).toContain("inline is 'yes'; use inline=1");
    expect((await dashboard({ inline: '0' })).body).toContain('<img src="tenants/acme/');
  });

  it('says plainly that inline was given twice (API Gateway joins the values with a comma)', async () => {
    const response = await dashboard({ inline: ['1', '1'] });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(problem(response)).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(String(problem(response).detail)).toMatch(/^inline was given 2 times \('1,1'\): give it once/);
  });
});

describe('other routes', () => {
  it('strips any run of trailing slashes (with a loop: a regex once took two seconds on 80,000)', async () => {
    const response = await handler()(
      httpEvent(`/${'/'.repeat(80_000)}x`, { routeKey: '$default' }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(404);
    // /dashboard/ would break the page's relative links: back to /dashboard, relatively, query kept.
    const dashboard = await handler()(
      httpEvent('/dashboard//', { routeKey: '$default', query: { inline: '1' } }),
      lambdaContext(),
    );
    expect(dashboard.statusCode).toBe(308);
    expect(dashboard.headers.location).toBe('../../dashboard?inline=1');
    expect(new URL(String(dashboard.headers.location), 'https://api.example/prod/dashboard//').pathname).toBe(
      '/prod/dashboard',
    );
  });

  it('answers 404 NOT_FOUND for another path or method', async () => {
    for (const event of [
      httpEvent('/tenants/acme/allocation/history.png', { pathParameters: { tenantId: 'acme' } }),
      httpEvent('/dashboard', { method: 'POST' }),
    ]) {
      const response = await handler()(event, lambdaContext());
      expect(response.statusCode).toBe(404);
      expect(problem({ body: String(response.body) })).toMatchObject({ code: 'NOT_FOUND' });
    }
  });
});
