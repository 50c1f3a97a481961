/**
 * serverless-offline's router strips a trailing slash before a function sees the path, so the chart
 * function's own answer to `/dashboard/` (a 308 back to `/dashboard`: the page's links are relative to
 * it, and from `/dashboard/` they would miss) never runs locally, and the page shows broken charts.
 * Preloaded into offline (local/offline-guard.ts), this answers that path as the deployed function does.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { answerRequestsFirst } from './host-check.ts';

/** Where a request for `url` (path and query, as a server receives it) is sent back to, if anywhere. */
export function dashboardRedirect(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  // The API's root: the local stage has no prefix (a deployed one's is kept by the relative answer).
  const slashes = /^\/dashboard(\/+)$/.exec(path)?.[1]?.length;
  if (slashes === undefined) return undefined;
  // Relative, as the function answers: one `../` per slash leads back to `…/dashboard`.
  return `${'../'.repeat(slashes)}dashboard${queryAt === -1 ? '' : url.slice(queryAt)}`;
}

/** Every HTTP server of this process answers `GET /dashboard/` with that 308 itself, as the function does. */
export function redirectDashboardSlash(prototype: Server): void {
  answerRequestsFirst(prototype, (request, response) => {
    const location = request.method === 'GET' ? dashboardRedirect(request.url) : undefined;
    if (location === undefined) return false;
    try {
      // Every answer carries x-trace-id: the function's would be its request id.
      response.writeHead(308, {
        location,
        'content-length': 0,
        'cache-control': 'no-store',
        'x-trace-id': randomUUID(),
      });
      response.end();
      return true;
    } catch {
      // A query no header may carry: left to the router, which answers it as offline does.
      return false;
    }
  });
}
