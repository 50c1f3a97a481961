import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { toAppError } from '../errors.ts';
import { describeError } from '../logger.ts';
import { type HttpResponse, problemResponse } from './responses.ts';

export interface HttpRequest {
  event: APIGatewayProxyEventV2;
  context: Context;
  traceId: string;
  logger: Logger;
}

export interface HttpHandlerOptions {
  logger: Logger;
  /** The answer's `x-trace-id`: KooDrive's X-Traceid for live calls, the request id otherwise. */
  traceId: (event: APIGatewayProxyEventV2, context: Context) => string;
  handle: (request: HttpRequest) => Promise<HttpResponse>;
}

/**
 * Wraps a route function: structured logs with the request id, one log line per request, and every
 * failure turned into the contract's problem+json (nothing thrown reaches API Gateway).
 */
export function createHttpHandler(options: HttpHandlerOptions) {
  const { logger } = options;
  const run = async (event: APIGatewayProxyEventV2, context: Context): Promise<HttpResponse> => {
    const started = performance.now();
    const traceId = options.traceId(event, context);
    logger.appendKeys({ traceId, route: event.routeKey });
    let response: HttpResponse;
    try {
      response = await options.handle({ event, context, traceId, logger });
    } catch (error) {
      const appError = toAppError(error);
      const details = describeError(error);
      if (appError.status >= 500) logger.error('request failed', details);
      else logger.warn('request refused', details);
      response = problemResponse(appError, traceId);
    }
    logger.info('request completed', {
      status: response.statusCode,
      durationMs: Math.round(performance.now() - started),
    });
    return response;
  };
  return middy<APIGatewayProxyEventV2, HttpResponse>(run).use(
    injectLambdaContext(logger, { resetKeys: true }),
  );
}
