/**
 * A stand-in for API Gateway in browser tests: a local HTTP server (127.0.0.1, port 0) that turns each
 * request into an HTTP API payload 2.0 event for the chart function and writes its answer back.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { HttpResponse } from '../../lib/http/responses.ts';
import { httpEvent, lambdaContext } from '../support/lambda.ts';

export type LambdaHttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HttpResponse>;

export interface LocalApi {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  close(): Promise<void>;
}

const CHART_PATH = /^\/tenants\/([^/]+)\/allocation\/history\.svg$/;

/** The routes `serverless.yml` gives the chart function, matched as API Gateway would. */
function route(path: string): { routeKey: string; pathParameters?: Record<string, string> } {
  const chart = CHART_PATH.exec(path);
  if (chart?.[1] !== undefined) {
    return {
      routeKey: 'GET /tenants/{tenantId}/allocation/history.svg',
      pathParameters: { tenantId: decodeURIComponent(chart[1]) },
    };
  }
  return { routeKey: path === '/dashboard' ? 'GET /dashboard' : '$default' };
}

/** Serves `handler` over HTTP until `close()`. */
export async function startLocalApi(handler: LambdaHttpHandler): Promise<LocalApi> {
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    // The query string as the browser sent it: httpEvent decodes it as API Gateway does.
    const query = url.search.slice(1);
    const event = httpEvent(url.pathname, { method: request.method ?? 'GET', query, ...route(url.pathname) });
    handler(event, lambdaContext('koodrive-allocation-test-chart'))
      .then((answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        response.end(answer.body ?? '');
      })
      .catch((error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(error instanceof Error ? error.name : 'error');
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address: AddressInfo | string | null = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('the local API is not listening on TCP');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
