/** The route wrapper: what reaches it that is not an API Gateway HTTP API event. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpHandler, notAnHttpApiEvent } from '../../lib/http/handler.ts';
import { jsonResponse } from '../../lib/http/responses.ts';
import { createLogger } from '../../lib/logger.ts';
import { captureOutput, httpEvent, lambdaContext } from '../support/lambda.ts';

const savedLevel = process.env.POWERTOOLS_LOG_LEVEL;
let capture: ReturnType<typeof captureOutput> | undefined;

afterEach(() => {
  capture?.stop();
  capture = undefined;
  process.env.POWERTOOLS_LOG_LEVEL = savedLevel;
});

function wrapper(calls: { count: number }) {
  return createHttpHandler({
    logger: createLogger('http-handler-test'),
    traceId: (event) => `trace-of-${event.routeKey}`,
    async handle({ traceId }) {
      calls.count += 1;
      return jsonResponse(200, { ok: true }, traceId);
    },
  });
}

const { requestContext: _omitted, ...withoutContext } = httpEvent('/tenants/acme/allocation/history');
const payloadV1 = {
  resource: '/tenants/{tenantId}/allocation/history',
  path: '/tenants/acme/allocation/history',
  httpMethod: 'GET',
  requestContext: { httpMethod: 'GET', requestId: 'r', stage: 'prod' },
};

describe('events that are not API Gateway HTTP API (payload 2.0) events', () => {
  it.each([
    ['null (a direct invoke without payload)', null, 'it is null'],
    ['a string', 'hello', 'it is a string'],
    ['an empty object (the console test event)', {}, 'it has no requestContext'],
    ['an HTTP event without requestContext', withoutContext, 'it has no requestContext'],
    ['a REST API / payload 1.0 event', payloadV1, 'no http.method'],
    ['an event without rawPath', { requestContext: { http: { method: 'GET' } } }, 'it has no rawPath'],
  ])('answers %s with 400 INVALID_REQUEST problem+json, logged as one request', async (_name, event, why) => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    const calls = { count: 0 };
    const handler = wrapper(calls);
    const context = lambdaContext('http-handler-test');
    capture = captureOutput();
    const response = await handler(event as unknown as APIGatewayProxyEventV2, context);
    capture.stop();
    expect(calls.count).toBe(0);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers['x-trace-id']).toBe(context.awsRequestId);
    const problem = JSON.parse(String(response.body)) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 400, code: 'INVALID_REQUEST', traceId: context.awsRequestId });
    expect(problem.detail).toMatch(
      /^The event is not an API Gateway HTTP API \(payload format 2\.0\) event: /,
    );
    expect(problem.detail).toContain(why);
    const lines = capture
      .text()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.message)).toEqual(['request refused', 'request completed']);
    expect(lines[1]).toMatchObject({ status: 400, traceId: context.awsRequestId });
  });

  it('lets a real HTTP API event through', async () => {
    const calls = { count: 0 };
    const event = httpEvent('/allocation');
    expect(notAnHttpApiEvent(event)).toBeUndefined();
    const response = await wrapper(calls)(event, lambdaContext('http-handler-test'));
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-trace-id']).toBe('trace-of-GET /allocation');
    expect(calls.count).toBe(1);
  });
});

describe('the incoming event in logs', () => {
  it("is never logged, even with POWERTOOLS_LOGGER_LOG_EVENT=true: it carries the caller's Authorization", async () => {
    const saved = process.env.POWERTOOLS_LOGGER_LOG_EVENT;
    process.env.POWERTOOLS_LOGGER_LOG_EVENT = 'true';
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    try {
      const handler = wrapper({ count: 0 });
      const event = httpEvent('/allocation');
      event.headers = { ...event.headers, authorization: 'Bearer caller-token-that-must-not-leak' };
      capture = captureOutput();
      const response = await handler(event, lambdaContext('http-handler-test'));
      capture.stop();
      expect(response.statusCode).toBe(200);
      expect(capture.text()).toContain('request completed');
      expect(capture.text()).not.toContain('caller-token-that-must-not-leak');
      expect(capture.text()).not.toContain('Lambda invocation event');
    } finally {
      if (saved === undefined) delete process.env.POWERTOOLS_LOGGER_LOG_EVENT;
      else process.env.POWERTOOLS_LOGGER_LOG_EVENT = saved;
    }
  });
});

describe('an unforeseen failure', () => {
  it("answers INTERNAL_ERROR without details, and its 'request failed' line names that code, with the stack", async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    const handler = createHttpHandler({
      logger: createLogger('http-handler-test'),
      traceId: () => 'trace-of-a-bug',
      async handle({ appendKeys }) {
        appendKeys({ tenantId: 'acme' });
        throw new TypeError("Cannot read properties of undefined (reading 'spaces')");
      },
    });
    capture = captureOutput();
    const response = await handler(httpEvent('/allocation'), lambdaContext('http-handler-test'));
    capture.stop();
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(String(response.body))).toMatchObject({
      code: 'INTERNAL_ERROR',
      detail: 'An unexpected error occurred; see the function logs.',
    });
    const lines = capture
      .text()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const failed = lines.find((line) => line.message === 'request failed');
    // The api-5xx runbook row: the request failed lines name the code and the tenant, for every 5xx.
    expect(failed).toMatchObject({
      level: 'ERROR',
      errorCode: 'INTERNAL_ERROR',
      errorName: 'TypeError',
      tenantId: 'acme',
      traceId: 'trace-of-a-bug',
    });
    expect(String(failed?.stack)).toContain('test/unit/http-handler.test.ts');
  });
});
