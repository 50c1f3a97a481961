import type { Logger } from '@aws-lambda-powertools/logger';
import { type Config, lazyConfig } from '../lib/config.ts';
import { InvalidRequestError, NotFoundError } from '../lib/errors.ts';
import { createHttpHandler } from '../lib/http/handler.ts';
import { jsonResponse } from '../lib/http/responses.ts';
import { createLogger } from '../lib/logger.ts';
import { resolveHistoryQuery } from '../lib/snapshots/history-query.ts';
import { lazySnapshotStore, type SnapshotStore } from '../lib/snapshots/store.ts';
import { routeTenantId } from '../lib/tenants.ts';
import { type Trend, TrendAccumulator } from '../lib/trend.ts';
import type { Allocation } from '../lib/types.ts';

export const HISTORY_ROUTE = 'GET /tenants/{tenantId}/allocation/history';

export interface HistoryHandlerDeps {
  logger: Logger;
  /** Read on the first request (a bad setting is then a CONFIGURATION_ERROR answer), then reused. */
  getConfig: () => Config;
  getStore: (config: Config) => SnapshotStore;
  now?: () => Date;
}

/** The contract's history answer. */
interface HistoryResponse {
  tenantId: string;
  from: string;
  to: string;
  items: Allocation[];
  nextCursor: string | null;
  /**
   * Least-squares growth and days until full, per space type and for the totals, over the range's items
   * from its start through this page (on the last page, the whole range).
   */
  trend: Trend;
}

/** `GET /tenants/{tenantId}/allocation/history?from=&to=&limit=&cursor=`: stored snapshots, oldest first. */
export function createHistoryHandler(deps: HistoryHandlerDeps) {
  const now = deps.now ?? (() => new Date());
  return createHttpHandler({
    logger: deps.logger,
    // No KooDrive call here: the request's own id identifies it in the logs.
    traceId: (_event, context) => context.awsRequestId,
    async handle({ event, traceId, appendKeys, completion, deadline }) {
      const method = event.requestContext.http.method;
      const tenantParam = event.pathParameters?.tenantId;
      if (method !== 'GET' || tenantParam === undefined || !/\/allocation\/history\/?$/.test(event.rawPath)) {
        throw new NotFoundError(
          `No route for ${method} ${event.rawPath}: use GET /tenants/{tenantId}/allocation/history.`,
        );
      }
      const config = deps.getConfig();
      const tenant = config.tenants.get(routeTenantId(tenantParam, event.rawPath));
      appendKeys({ tenantId: tenant.tenantId });
      const params = event.queryStringParameters ?? {};
      const query = resolveHistoryQuery(
        { from: params.from, to: params.to, limit: params.limit, cursor: params.cursor },
        { now: now(), cursorKey: config.cursorKey, rawQueryString: event.rawQueryString },
      );
      // DynamoDB calls still running at the deadline are aborted: a slow table is a 503 problem+json in
      // time, not a Lambda timeout answered by API Gateway.
      // The trend runs over the range from its start through this page: the pages before it left their
      // fits in the cursor, so the last page's trend is the whole range's, as one page of every item.
      let trend: Trend = {};
      const page = await deps.getStore(config).query({
        tenantId: tenant.tenantId,
        ...query,
        carry: (carried, items) => {
          const accumulator = TrendAccumulator.resume(carried);
          // Signed by this service, so only a cursor of another format gets here.
          if (accumulator === undefined) {
            throw new InvalidRequestError(
              'cursor is from another version of this service: start again without a cursor.',
            );
          }
          trend = accumulator.add(items).trend();
          return accumulator.state();
        },
        ...(deadline === undefined ? {} : { deadline }),
      });
      const body: HistoryResponse = {
        tenantId: tenant.tenantId,
        from: query.from.toISOString(),
        to: query.to.toISOString(),
        items: page.items,
        nextCursor: page.nextCursor,
        trend,
      };
      // On the request's one 'request completed' line.
      completion.items = page.items.length;
      completion.more = page.nextCursor !== null;
      return jsonResponse(200, body, traceId);
    },
  });
}

const logger = createLogger();
export const handler = createHistoryHandler({
  logger,
  getConfig: lazyConfig(),
  getStore: lazySnapshotStore(),
});
