import type { Logger } from '@aws-lambda-powertools/logger';
import { fetchAllocation } from '../lib/allocation.ts';
import { NotFoundError } from '../lib/errors.ts';
import { createHttpHandler, requestIdOf } from '../lib/http/handler.ts';
import { emptyResponse, jsonResponse } from '../lib/http/responses.ts';
import { createTraceId } from '../lib/koodrive/client.ts';
import { createLogger } from '../lib/logger.ts';
import { type LazyRuntime, lazyRuntime } from '../lib/runtime.ts';
import { routeTenantId } from '../lib/tenants.ts';

const ALLOCATION_ROUTES = ['GET /allocation', 'GET /tenants/{tenantId}/allocation'] as const;

/** `GET /allocation` and `GET /tenants/{tenantId}/allocation`: a tenant's allocation, live. */
export function createAllocationHandler(deps: { logger: Logger; getRuntime: LazyRuntime }) {
  return createHttpHandler({
    logger: deps.logger,
    // The same id goes to KooDrive as X-Traceid, so one id finds the call in both sides' logs. Every answer
    // of the allocation routes carries one of those 58 characters (the contract's format), also when the
    // request is refused before the call (a bad or unknown tenant, a wrong setting): the function's log
    // lines carry it. A request for another path or method, or a CORS preflight, is traced by its own id.
    traceId: (event, context) =>
      event.requestContext.http.method === 'GET' &&
      (ALLOCATION_ROUTES as readonly string[]).includes(event.routeKey)
        ? createTraceId()
        : requestIdOf(context),
    async handle({ event, traceId, appendKeys, completion, deadline }) {
      // API Gateway names the route it matched; the $default route (anything else) is the contract's NOT_FOUND.
      const method = event.requestContext.http.method;
      // A browser's CORS preflight. With corsAllowedOrigins set, the stack routes OPTIONS /{proxy+} here
      // without an authorizer (the authorized $default route would refuse preflights, which carry no
      // credentials); API Gateway adds its configured CORS headers to this 204.
      if (method === 'OPTIONS' && event.headers?.['access-control-request-method'] !== undefined) {
        return emptyResponse(204, traceId);
      }
      // The method too: a local server (serverless-offline) routes HEAD to a GET route, API Gateway does not.
      const route = event.routeKey;
      const tenantParam = event.pathParameters?.tenantId;
      if (
        method !== 'GET' ||
        (route !== ALLOCATION_ROUTES[0] && !(route === ALLOCATION_ROUTES[1] && tenantParam !== undefined))
      ) {
        throw new NotFoundError(
          `No route for ${method} ${event.rawPath}. The API serves GET /allocation, GET /tenants/{tenantId}/allocation, GET /tenants/{tenantId}/allocation/history, GET /tenants/{tenantId}/allocation/history.svg and GET /dashboard.`,
        );
      }
      // The request's lines name the tenant as soon as it is known, also when what follows fails (an
      // unknown tenant, a bad KooDrive setting): a tenant the route names, once it is a valid id, before
      // any setting is read; the default tenant once the tenants are read. One appendKeys either way.
      const named = route === ALLOCATION_ROUTES[1] ? routeTenantId(tenantParam, event.rawPath) : undefined;
      if (named !== undefined) appendKeys({ tenantId: named });
      const { tenants } = deps.getRuntime.config();
      const tenant = named === undefined ? tenants.defaultTenant : tenants.get(named);
      if (named === undefined) appendKeys({ tenantId: tenant.tenantId });
      const runtime = deps.getRuntime();
      const { allocation, attempts } = await fetchAllocation(runtime.koodrive, tenant, {
        traceId,
        ...(deadline === undefined ? {} : { deadline }),
      });
      // Carried by the one 'request completed' line: one log line per request keeps the warm path cheap.
      completion.attempts = attempts;
      return jsonResponse(200, allocation, traceId);
    },
  });
}

const logger = createLogger();
export const handler = createAllocationHandler({ logger, getRuntime: lazyRuntime({ logger }) });
