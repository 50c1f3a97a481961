import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import {
  fullestFirst,
  type InlineChart,
  type NewestSnapshot,
  PAGE_POLICY,
  renderDashboard,
} from '../lib/chart/dashboard.ts';
import { renderAllocationChart } from '../lib/chart/svg.ts';
import { type Config, lazyConfig, withoutTrailingSlashes } from '../lib/config.ts';
import { AppError, InvalidRequestError, NotFoundError, toAppError } from '../lib/errors.ts';
import { createHttpHandler } from '../lib/http/handler.ts';
import { type HttpResponse, textResponse } from '../lib/http/responses.ts';
import { createLogger, describeError } from '../lib/logger.ts';
import { resolveHistoryQuery, timesGiven } from '../lib/snapshots/history-query.ts';
import { mapWithConcurrency } from '../lib/snapshots/job.ts';
import {
  type HistoryPage,
  lazySnapshotStore,
  MalformedSnapshotItemError,
  type SnapshotStore,
} from '../lib/snapshots/store.ts';
import { routeTenantId } from '../lib/tenants.ts';
import { computeTrend } from '../lib/trend.ts';
import type { Allocation } from '../lib/types.ts';

/**
 * The most snapshots one chart reads: a 400-day retention of 15-minute snapshots is 38,400. A range
 * holding more is read evenly across its length up to this many, and the chart says so.
 */
export const MAX_CHART_SNAPSHOTS = 40_000;
/**
 * The most points one chart draws; more are thinned. About two per pixel of the default 800-px chart's
 * plot, and still one per pixel and a half at the widest (width=2400).
 */
export const MAX_CHART_POINTS = 1_500;
/** The range is read as this many time slices at once, so that a long range reads quickly. */
const SLICES = 8;
const PAGE_SIZE = 2_000;
/** The dashboard's range: the contract's default history range. */
const DASHBOARD_RANGE_MS = 7 * 86_400_000;
/** Tenants whose charts are drawn at once for an inline dashboard (each reads its range as SLICES). */
const INLINE_CONCURRENCY = 4;
/** Tenants whose newest snapshot is read at once for the dashboard's "Fullest first" table (one small query each). */
const NEWEST_CONCURRENCY = 8;
/**
 * Inline charts stop before the page passes this many bytes: Lambda answers at most 6 MB, and a week of
 * 15-minute snapshots draws a chart of about 70 KB. Tenants past it keep their link.
 */
const INLINE_PAGE_BUDGET = 5_000_000;

// Charts may be a minute old, in the caller's own cache only: they are behind the authorizer, and a
// shared cache (a CDN, a proxy) would hand one tenant's chart to whoever asks next.
const CHART_CACHE = 'private, max-age=60';
// Nothing in either document runs or loads from elsewhere; no frame-ancestors, so the page embeds.
const SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'";

/**
 * What a dashboard warning logs of a read or a chart that failed: what any request's failure line logs
 * (the code the route would answer, INTERNAL_ERROR for an error not our own, as on a 'request failed'
 * line; then describeError: name, message, a malformed item's key; the stack of an unforeseen error,
 * which the page sends its reader to the log for). A malformed item is data to fix, not a bug: no stack.
 */
function failureFields(error: unknown): Record<string, unknown> {
  return {
    errorCode: toAppError(error).code,
    ...describeError(error, { stack: !(error instanceof MalformedSnapshotItemError) }),
  };
}

export interface ChartHandlerDeps {
  logger: Logger;
  getConfig: () => Config;
  getStore: (config: Config) => SnapshotStore;
  /** Default: the clock. */
  now?: () => Date;
  /** Bytes of inline charts one dashboard page holds at most; default {@link INLINE_PAGE_BUDGET}. */
  inlinePageBudget?: number;
}

/** What {@link readHistory} read of a range. */
export interface ReadHistory {
  /** Oldest first. */
  items: Allocation[];
  /** Some slice held more than its share of the cap. */
  truncated: boolean;
  /** The stretches of time (epoch ms, inclusive) a truncated slice left unread: not gaps in the data. */
  unread: { from: number; to: number }[];
}

/**
 * Reads a tenant's snapshots in the range, oldest first, as {@link SLICES} time slices read at once,
 * each page by page up to its share of `cap` (the share a slice holding less leaves goes to the slices
 * holding more, so at most `cap` are read in all); `truncated` when the range held more than `cap`,
 * with the stretch it left unread. The newest slice is read from its end, so the chart's latest
 * snapshot is the range's latest. With a `deadline` (epoch ms), every read still running then is
 * aborted (STORE_UNAVAILABLE).
 */
export async function readHistory(
  store: SnapshotStore,
  query: { tenantId: string; from: Date; to: Date; deadline?: number },
  cap = MAX_CHART_SNAPSHOTS,
): Promise<ReadHistory> {
  const fromMs = query.from.getTime();
  const toMs = query.to.getTime();
  // A range inside one millisecond (from=…00.0005Z&to=…00.0009Z) rounds to from > to: no snapshot key
  // lies in it, but the slicing below would make a slice of the millisecond before `from` of it.
  if (fromMs > toMs) return { items: [], truncated: false, unread: [] };
  const span = toMs - fromMs;
  // Slices meet without overlap: each ends a millisecond before the next begins (both ends inclusive).
  const slices: { from: Date; to: Date }[] = [];
  for (let i = 0; i < SLICES; i++) {
    const start = fromMs + Math.floor((span * i) / SLICES);
    const end = i === SLICES - 1 ? toMs : fromMs + Math.floor((span * (i + 1)) / SLICES) - 1;
    if (end >= start) slices.push({ from: new Date(start), to: new Date(end) });
  }
  // Each slice first reads up to its share of the cap; what the slices that hold less left over goes,
  // round by round, to the slices that still have more (snapshots bunched in part of a long range).
  const parts = slices.map((slice, index) => ({
    slice,
    newestFirst: index === slices.length - 1,
    items: [] as Allocation[],
    cursor: null as string | null,
    done: false,
    /** Read at least once: a slice the budget never reached (a cap below the slices) is all unread. */
    started: false,
  }));
  let budget = cap;
  let active = parts;
  while (active.length > 0 && budget > 0) {
    // The budget split exactly (never more than the cap in all); a remainder goes to the newest slices.
    const base = Math.floor(budget / active.length);
    const extra = budget % active.length;
    await Promise.all(
      active.map(async (part, index) => {
        const share = base + (index >= active.length - extra ? 1 : 0);
        if (share === 0) return;
        const wanted = part.items.length + share;
        part.started = true;
        do {
          const page: HistoryPage = await store.query({
            tenantId: query.tenantId,
            ...part.slice,
            ...(query.deadline === undefined ? {} : { deadline: query.deadline }),
            limit: Math.max(1, Math.min(PAGE_SIZE, wanted - part.items.length)),
            ...(part.cursor === null ? {} : { cursor: part.cursor }),
            ...(part.newestFirst ? { newestFirst: true } : {}),
          });
          part.items.push(...page.items);
          part.cursor = page.nextCursor;
        } while (part.cursor !== null && part.items.length < wanted);
        part.done = part.cursor === null;
      }),
    );
    budget = cap - parts.reduce((sum, part) => sum + part.items.length, 0);
    active = active.filter((part) => !part.done);
  }
  const read = parts.map(({ slice, newestFirst, items, cursor, started }) => {
    if (newestFirst) items.reverse();
    if (!started) {
      return { items, truncated: true, unread: { from: slice.from.getTime(), to: slice.to.getTime() } };
    }
    const truncated = cursor !== null;
    const first = items[0];
    const last = items.at(-1);
    // What stays unread: the slice's end after the last item read, or (read from its end) its start.
    const unread =
      !truncated || first === undefined || last === undefined
        ? undefined
        : newestFirst
          ? { from: slice.from.getTime(), to: Date.parse(first.observedAt) - 1 }
          : { from: Date.parse(last.observedAt) + 1, to: slice.to.getTime() };
    return { items, truncated, unread };
  });
  return {
    items: read.flatMap((part) => part.items),
    truncated: read.some((part) => part.truncated),
    unread: read.flatMap((part) => (part.unread === undefined ? [] : [part.unread])),
  };
}

/**
 * At most `maxPoints` of the items (sorted oldest first) to draw: the range cut into `maxPoints`
 * stretches of time, each drawn as its fullest snapshot (the most allocated in all), so that peaks
 * stay visible; the latest snapshot is always kept.
 */
export function thinForChart(
  items: readonly Allocation[],
  range: { from: Date; to: Date },
  maxPoints = MAX_CHART_POINTS,
): Allocation[] {
  if (items.length <= maxPoints) return [...items];
  const fromMs = range.from.getTime();
  const width = Math.max(1, (range.to.getTime() - fromMs) / maxPoints);
  const picked = new Map<number, Allocation>();
  for (const item of items) {
    const bucket = Math.min(
      maxPoints - 1,
      Math.max(0, Math.floor((Date.parse(item.observedAt) - fromMs) / width)),
    );
    const current = picked.get(bucket);
    if (current === undefined || item.totals.allocatedGB >= current.totals.allocatedGB)
      picked.set(bucket, item);
  }
  const thinned = [...picked.entries()].sort(([a], [b]) => a - b).map(([, item]) => item);
  const latest = items.at(-1);
  if (latest !== undefined && thinned.at(-1) !== latest) thinned.push(latest);
  return thinned;
}

/**
 * The chart's size in px (`width`, `height` of history.svg): a dashboard panel's or a wiki column's own
 * size, so that its text is laid out at its size instead of the 800 × 400 chart scaled to fit.
 */
const CHART_SIZES = {
  width: { min: 480, max: 2400, default: 800 },
  height: { min: 240, max: 1200, default: 400 },
} as const;

/** `width` or `height` of history.svg: absent or empty, the default; else whole pixels within its range. */
function parseChartSize(
  name: keyof typeof CHART_SIZES,
  value: string | undefined,
  rawQueryString: string | undefined,
): number {
  const { min, max, default: fallback } = CHART_SIZES[name];
  if (value === undefined || value === '') return fallback;
  const range = `a whole number of pixels from ${min} to ${max} (default ${fallback})`;
  // Given twice, API Gateway joins the values with a comma: said plainly, as for the other parameters.
  const times = timesGiven(rawQueryString, name);
  if (times > 1) {
    throw new InvalidRequestError(
      `${name} was given ${times} times ('${value.slice(0, 40)}'): give it once, ${range}.`,
    );
  }
  const pixels = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(pixels >= min && pixels <= max)) {
    throw new InvalidRequestError(`${name} is '${value.slice(0, 40)}': give ${range}.`);
  }
  return pixels;
}

/** A tenant's chart of a range: its snapshots read, thinned and drawn, with what was read. */
async function drawChart(
  config: Config,
  store: SnapshotStore,
  query: {
    tenantId: string;
    from: Date;
    to: Date;
    deadline: number | undefined;
    size?: { width: number; height: number };
  },
): Promise<{ svg: string; snapshots: number; points: number; truncated: boolean }> {
  const range = { from: query.from, to: query.to };
  const { items, truncated, unread } = await readHistory(store, {
    tenantId: query.tenantId,
    ...range,
    ...(query.deadline === undefined ? {} : { deadline: query.deadline }),
  });
  const drawn = thinForChart(items, range);
  const svg = renderAllocationChart({
    tenantId: query.tenantId,
    ...range,
    items: drawn,
    snapshotCount: items.length,
    // The forecast comes from every snapshot read, not only the drawn ones.
    trend: computeTrend(items),
    thresholds: config.thresholds,
    truncated,
    unread,
    ...query.size,
  });
  return { svg, snapshots: items.length, points: drawn.length, truncated };
}

/**
 * `inline` of the dashboard: absent, `0` or `false` for charts as links; `1` or `true` for charts in the page.
 * Given more than once, API Gateway joins the values with commas (`1,1`): said plainly, counted in the
 * event's `rawQueryString` as the history's parameters are.
 */
function parseInline(value: string | undefined, rawQueryString: string | undefined): boolean {
  if (value === undefined) return false;
  const times = timesGiven(rawQueryString, 'inline');
  if (times > 1) {
    throw new InvalidRequestError(
      `inline was given ${times} times ('${value.slice(0, 40)}'): give it once, inline=1 for a page with every chart inside it.`,
    );
  }
  if (value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new InvalidRequestError(
    `inline is '${value.slice(0, 40)}'; use inline=1 for a page with every chart inside it (to save or open ` +
      'where a browser cannot sign requests), or leave it out for charts loaded as images.',
  );
}

function withHeaders(response: HttpResponse, headers: Record<string, string>): HttpResponse {
  return { ...response, headers: { ...response.headers, ...headers } };
}

/**
 * `GET /tenants/{tenantId}/allocation/history.svg?from=&to=&width=&height=` (a tenant's history as an SVG chart) and
 * `GET /dashboard[?inline=1]` (an HTML page with every configured tenant's chart of the last 7 days, as
 * images, or drawn inside the page, fullest tenant first under a table of their newest snapshots).
 */
export function createChartHandler(deps: ChartHandlerDeps) {
  const now = deps.now ?? (() => new Date());
  return createHttpHandler({
    logger: deps.logger,
    // No KooDrive call here: the request's own id traces it, as for history.
    traceId: (_event: APIGatewayProxyEventV2, context: Context) => context.awsRequestId,
    async handle({ event, traceId, logger, appendKeys, completion, deadline }) {
      const method = event.requestContext.http.method;
      const path = withoutTrailingSlashes(event.rawPath);
      const tenantParam = event.pathParameters?.tenantId;
      if (method === 'GET' && tenantParam !== undefined && path.endsWith('/allocation/history.svg')) {
        const config = deps.getConfig();
        const tenant = config.tenants.get(routeTenantId(tenantParam, event.rawPath));
        appendKeys({ tenantId: tenant.tenantId });
        const params = event.queryStringParameters ?? {};
        // The JSON history's own rules and messages for from/to; limit and cursor do not apply here.
        const at = now();
        const { from, to } = resolveHistoryQuery(
          { from: params.from, to: params.to },
          { now: at, cursorKey: config.cursorKey, rawQueryString: event.rawQueryString },
        );
        const size = {
          width: parseChartSize('width', params.width, event.rawQueryString),
          height: parseChartSize('height', params.height, event.rawQueryString),
        };
        // A range that runs into the future (a link to "this week") is drawn up to now: time that has not
        // come yet is not missing history, and the chart would flag it as "no snapshots since".
        const drawnTo = to.getTime() > at.getTime() && from.getTime() <= at.getTime() ? at : to;
        const { svg, ...read } = await drawChart(config, deps.getStore(config), {
          tenantId: tenant.tenantId,
          from,
          to: drawnTo,
          deadline,
          size,
        });
        // On the request's one 'request completed' line.
        Object.assign(completion, read);
        return withHeaders(textResponse(200, svg, 'image/svg+xml; charset=utf-8', traceId), {
          'cache-control': CHART_CACHE,
          'content-security-policy': SVG_POLICY,
        });
      }
      if (method === 'GET' && tenantParam === undefined && path.endsWith('/dashboard')) {
        const slashes = event.rawPath.length - path.length;
        if (slashes > 0) {
          // The page's links are relative to /dashboard: from /dashboard/ they would miss. Send the
          // browser back to /dashboard, relatively, so a stage path or a domain's base path is kept.
          const query =
            event.rawQueryString === undefined || event.rawQueryString === ''
              ? ''
              : `?${event.rawQueryString}`;
          return withHeaders(textResponse(308, '', 'text/plain; charset=utf-8', traceId), {
            location: `${'../'.repeat(slashes)}dashboard${query}`,
          });
        }
        const inline = parseInline(event.queryStringParameters?.inline, event.rawQueryString);
        const config = deps.getConfig();
        // On the minute: the charts' URLs then stay the same through a minute of reloads, so a browser
        // reuses the chart it cached (each is cacheable for a minute) instead of asking again.
        const to = new Date(Math.floor(now().getTime() / 60_000) * 60_000);
        const from = new Date(to.getTime() - DASHBOARD_RANGE_MS);
        const store = deps.getStore(config);
        // The "Fullest first" table, and the order of the charts: each tenant's newest snapshot. A read
        // that fails or outlasts the request's deadline makes that tenant's row "unavailable" only.
        const configured = config.tenants.all.map((tenant) => tenant.tenantId);
        const newest = new Map(
          await mapWithConcurrency(
            configured,
            NEWEST_CONCURRENCY,
            async (tenantId): Promise<[string, NewestSnapshot]> => {
              try {
                const snapshot = await store.latest(tenantId, deadline === undefined ? {} : { deadline });
                return [tenantId, snapshot === undefined ? { state: 'none' } : { state: 'stored', snapshot }];
              } catch (error) {
                logger.warn('dashboard newest snapshot unavailable', { tenantId, ...failureFields(error) });
                return [tenantId, { state: 'unavailable' }];
              }
            },
          ),
        );
        Object.assign(completion, {
          tenants: configured.length,
          tenantsUnavailable: [...newest.values()].filter((entry) => entry.state === 'unavailable').length,
        });
        // Fullest first here too, so that the inline budget goes to the fullest tenants' charts.
        const tenantIds = fullestFirst(configured, newest);
        let charts: Map<string, InlineChart> | undefined;
        if (inline) {
          // Every chart inside the page: one request, for callers that cannot let a browser sign the
          // chart requests (IAM). A tenant whose chart fails gets the reason, the others still draw.
          const budget = deps.inlinePageBudget ?? INLINE_PAGE_BUDGET;
          // Charts are taken fullest first; once those drawn fill the page, the rest are not drawn at
          // all (8 reads and an SVG each, for nothing), only linked.
          let drawnBytes = 0;
          const drawn = await mapWithConcurrency(tenantIds, INLINE_CONCURRENCY, async (tenantId) => {
            if (drawnBytes > budget) return { overBudget: true as const };
            try {
              const { svg } = await drawChart(config, store, { tenantId, from, to, deadline });
              drawnBytes += svg.length;
              return { svg };
            } catch (error) {
              logger.warn('dashboard chart failed', { tenantId, ...failureFields(error) });
              return {
                error:
                  error instanceof AppError
                    ? error.message
                    : `The chart could not be drawn (an internal error; the function's log has it under trace id ${traceId}).`,
              };
            }
          });
          charts = new Map();
          let bytes = 0;
          for (const [index, tenantId] of tenantIds.entries()) {
            const chart = drawn[index] ?? { error: 'The chart was not drawn.' };
            if ('overBudget' in chart || ('svg' in chart && bytes + chart.svg.length > budget)) {
              charts.set(tenantId, {
                error:
                  'Not drawn inside the page: with it the page would pass the 6 MB a function can answer. Open its chart link.',
              });
              continue;
            }
            if ('svg' in chart) bytes += chart.svg.length;
            charts.set(tenantId, chart);
          }
          Object.assign(completion, {
            charts: [...charts.values()].filter((chart) => 'svg' in chart).length,
            chartsFailed: [...charts.values()].filter((chart) => 'error' in chart).length,
          });
        }
        const html = renderDashboard({
          tenantIds,
          newest,
          from,
          to,
          ...(charts === undefined ? {} : { charts }),
        });
        return withHeaders(textResponse(200, html, 'text/html; charset=utf-8', traceId), {
          'content-security-policy': PAGE_POLICY,
          'referrer-policy': 'no-referrer',
        });
      }
      throw new NotFoundError(
        `No route for ${method} ${event.rawPath}: use GET /tenants/{tenantId}/allocation/history.svg or GET /dashboard.`,
      );
    },
  });
}

/** Configuration read on first use, so a bad setting is a CONFIGURATION_ERROR answer, not an init crash. */
const logger = createLogger();
export const handler = createChartHandler({
  logger,
  getConfig: lazyConfig(),
  getStore: lazySnapshotStore(),
});
