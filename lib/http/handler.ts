import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { writeColdStartMetric } from '../cold-start-metric.ts';
import { invocationDeadline } from '../deadline.ts';
import { InvalidRequestError, toAppError } from '../errors.ts';
import { createRequestLogs, describeError } from '../logger.ts';
import { type HttpResponse, problemResponse } from './responses.ts';

interface HttpRequest {
  event: APIGatewayProxyEventV2;
  context: Context;
  traceId: string;
  logger: Logger;
  /** Adds keys (tenantId, …) to this request's log lines, its 'request completed' line included. */
  appendKeys: (keys: Record<string, string>) => void;
  /**
   * When work for this request must end (epoch ms): the invocation's end less {@link ANSWER_MARGIN_MS},
   * so that a slow upstream still gets the contract's problem+json rather than a Lambda timeout.
   */
  deadline: number | undefined;
  /** Extra fields for this request's one 'request completed' line (cheaper than appendKeys). */
  completion: Record<string, unknown>;
}

export interface HttpHandlerOptions {
  logger: Logger;
  /** The answer's `x-trace-id`: KooDrive's X-Traceid for live calls, the request id otherwise. */
  traceId: (event: APIGatewayProxyEventV2, context: Context) => string;
  handle: (request: HttpRequest) => Promise<HttpResponse>;
}

/** Time kept back from the invocation's end to log and return the answer. */
const ANSWER_MARGIN_MS = 1_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Why `event` is not an API Gateway HTTP API (payload 2.0) event, or undefined when it is one. Direct
 * invokes (console tests, `aws lambda invoke`, a REST API or payload 1.0 integration) send other shapes.
 */
export function notAnHttpApiEvent(event: unknown): string | undefined {
  if (!isRecord(event)) return `it is ${event === null ? 'null' : `a ${typeof event}`}`;
  const requestContext = event.requestContext;
  if (!isRecord(requestContext)) return 'it has no requestContext';
  if (!isRecord(requestContext.http) || typeof requestContext.http.method !== 'string') {
    return 'its requestContext has no http.method (a REST API or payload format 1.0 event?)';
  }
  if (typeof event.rawPath !== 'string') return 'it has no rawPath';
  return undefined;
}

/** The request id Lambda gave this invocation, or a fresh one when the caller passed no context. */
export function requestIdOf(context: Context | undefined): string {
  return typeof context?.awsRequestId === 'string' ? context.awsRequestId : randomUUID();
}

/**
 * Wraps a route function: structured logs with the request id, one log line per request, and every
 * failure turned into the contract's problem+json (nothing thrown reaches API Gateway).
 */
export function createHttpHandler(options: HttpHandlerOptions) {
  const { logger } = options;
  const requestLogs = createRequestLogs(logger);
  const run = async (event: APIGatewayProxyEventV2, context: Context): Promise<HttpResponse> => {
    const started = performance.now();
    // Checked before anything reads the event: a direct invoke gets a 400, not a TypeError.
    const notHttp = notAnHttpApiEvent(event);
    // No route ran, so no KooDrive call: the request's own id traces a refused event.
    const traceId = notHttp === undefined ? options.traceId(event, context) : requestIdOf(context);
    const requestLog = requestLogs.begin(context);
    // Powertools' logMetrics middleware prints it first thing too (the snapshot function's). A setting
    // it cannot read costs the metric, not the request.
    if (requestLog.coldStart) {
      try {
        writeColdStartMetric(context?.functionName);
      } catch (error) {
        logger.warn('ColdStart metric not printed', describeError(error, { stack: false }));
      }
    }
    requestLog.appendKeys(notHttp === undefined ? { traceId, route: event.routeKey } : { traceId });
    let response: HttpResponse;
    const completion: Record<string, unknown> = {};
    try {
      if (notHttp !== undefined) {
        throw new InvalidRequestError(
          `The event is not an API Gateway HTTP API (payload format 2.0) event: ${notHttp}. Call this function through its HTTP API routes, or invoke it with a payload format 2.0 event.`,
        );
      }
      response = await options.handle({
        event,
        context,
        traceId,
        logger,
        appendKeys: requestLog.appendKeys,
        completion,
        deadline: invocationDeadline(context, ANSWER_MARGIN_MS),
      });
    } catch (error) {
      const appError = toAppError(error);
      // The answer's code on every line, INTERNAL_ERROR included (describeError gives a code only to
      // our own errors): the api-5xx alarm's runbook finds failures by it.
      const details = { errorCode: appError.code, ...describeError(error) };
      if (appError.status >= 500) logger.error('request failed', details);
      else logger.warn('request refused', details);
      response = problemResponse(appError, traceId);
    }
    requestLog.info('request completed', {
      ...completion,
      status: response.statusCode,
      durationMs: Math.round(performance.now() - started),
    });
    return response;
  };
  // middy's own early timeout is off: it would throw a bare error; the deadline above answers properly.
  return middy<APIGatewayProxyEventV2, HttpResponse>(run, { timeoutEarlyInMillis: 0 }).use(
    // logEvent off whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the caller's Authorization
    // header (with the JWT authorizer, a reusable bearer token).
    injectLambdaContext(logger, { resetKeys: true, logEvent: false }),
  );
}
