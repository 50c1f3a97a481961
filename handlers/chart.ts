import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { renderDashboard } from '../lib/chart/dashboard.ts';
import { renderAllocationChart } from '../lib/chart/svg.ts';
import { type Config, lazyConfig } from '../lib/config.ts';
import { NotFoundError } from '../lib/errors.ts';
import { createHttpHandler } from '../lib/http/handler.ts';
import { type HttpResponse, textResponse } from '../lib/http/responses.ts';
import { createLogger } from '../lib/logger.ts';
import { resolveHistoryQuery } from '../lib/snapshots/history-query.ts';
import { type HistoryPage, lazySnapshotStore, type SnapshotStore } from '../lib/snapshots/store.ts';
import { parseTenantId } from '../lib/tenants.ts';
import { computeTrend } from '../lib/trend.ts';
import type { Allocation } from '../lib/types.ts';

export const CHART_ROUTES = ['GET /tenants/{tenantId}/allocation/history.svg', 'GET /dashboard'] as const;

/**
 * The most snapshots one chart reads (five pages of 1,000): about 52 days of 15-minute snapshots. A
 * longer range shows its oldest 5,000 and says so (the store reads oldest first).
 */
export const MAX_CHART_POINTS = 5_000;
const PAGE_SIZE = 1_000;
/** The dashboard's range: the contract's default history range. */
const DASHBOARD_RANGE_MS = 7 * 86_400_000;

// Charts may be a minute old; the page itself is cheap and always fresh.
const CHART_CACHE = 'max-age=60';
// Nothing in either document runs or loads from elsewhere; no frame-ancestors, so the page embeds.
const SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'";
const PAGE_POLICY =
  "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

export interface ChartHandlerDeps {
  logger: Logger;
  getConfig: () => Config;
  getStore: (config: Config) => SnapshotStore;
  /** Default: the clock. */
  now?: () => Date;
}

/** Reads a tenant's snapshots in the range, page by page, up to `cap` items. */
export async function readHistory(
  store: SnapshotStore,
  query: { tenantId: string; from: Date; to: Date },
  cap = MAX_CHART_POINTS,
): Promise<{ items: Allocation[]; truncated: boolean }> {
  const items: Allocation[] = [];
  let cursor: string | null = null;
  do {
    const page: HistoryPage = await store.query({
      ...query,
      limit: Math.max(1, Math.min(PAGE_SIZE, cap - items.length)),
      ...(cursor === null ? {} : { cursor }),
    });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null && items.length < cap);
  return { items, truncated: cursor !== null };
}

function withHeaders(response: HttpResponse, headers: Record<string, string>): HttpResponse {
  return { ...response, headers: { ...response.headers, ...headers } };
}

/**
 * `GET /tenants/{tenantId}/allocation/history.svg?from=&to=` (a tenant's history as an SVG chart) and
 * `GET /dashboard` (an HTML page with every configured tenant's chart of the last 7 days).
 */
export function createChartHandler(deps: ChartHandlerDeps) {
  const now = deps.now ?? (() => new Date());
  return createHttpHandler({
    logger: deps.logger,
    // No KooDrive call here: the request's own id traces it, as for history.
    traceId: (_event: APIGatewayProxyEventV2, context: Context) => context.awsRequestId,
    async handle({ event, traceId, logger }) {
      const method = event.requestContext.http.method;
      const path = event.rawPath.replace(/\/+$/, '');
      const tenantParam = event.pathParameters?.tenantId;
      if (method === 'GET' && tenantParam !== undefined && path.endsWith('/allocation/history.svg')) {
        const config = deps.getConfig();
        const tenant = config.tenants.get(parseTenantId(tenantParam));
        logger.appendKeys({ tenantId: tenant.tenantId });
        const params = event.queryStringParameters ?? {};
        // The JSON history's own rules and messages for from/to; limit and cursor do not apply here.
        const { from, to } = resolveHistoryQuery(
          { from: params.from, to: params.to },
          { now: now(), cursorKey: config.cursorKey },
        );
        const range = { from, to };
        const store = deps.getStore(config);
        const { items, truncated } = await readHistory(store, { tenantId: tenant.tenantId, ...range });
        const svg = renderAllocationChart({
          tenantId: tenant.tenantId,
          ...range,
          items,
          trend: computeTrend(items),
          thresholds: config.thresholds,
          truncated,
        });
        logger.info('chart rendered', { points: items.length, truncated });
        return withHeaders(textResponse(200, svg, 'image/svg+xml; charset=utf-8', traceId), {
          'cache-control': CHART_CACHE,
          'content-security-policy': SVG_POLICY,
        });
      }
      if (method === 'GET' && tenantParam === undefined && path.endsWith('/dashboard')) {
        const config = deps.getConfig();
        const to = now();
        const html = renderDashboard({
          tenantIds: config.tenants.all.map((tenant) => tenant.tenantId),
          from: new Date(to.getTime() - DASHBOARD_RANGE_MS),
          to,
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
