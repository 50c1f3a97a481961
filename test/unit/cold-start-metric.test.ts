/** The HTTP functions' ColdStart metric: the document Powertools Metrics prints, without Metrics. */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { coldStartMetricDocument } from '../../lib/cold-start-metric.ts';
import { createHttpHandler } from '../../lib/http/handler.ts';
import { jsonResponse } from '../../lib/http/responses.ts';
import { createLogger } from '../../lib/logger.ts';
import { captureOutput, httpEvent, lambdaContext } from '../support/lambda.ts';

type Document = Record<string, unknown> & { _aws?: { Timestamp?: unknown } };

function documents(text: string): Document[] {
  return text
    .split('\n')
    .filter((line) => line.includes('"ColdStart"'))
    .map((line) => JSON.parse(line) as Document);
}

/** What Powertools Metrics' captureColdStartMetric prints for a function of this name, as it would in Lambda. */
function powertoolsDocuments(functionName: string): Document[] {
  const capture = captureOutput();
  try {
    new Metrics().captureColdStartMetric(functionName);
  } finally {
    capture.stop();
  }
  return documents(capture.text());
}

function withoutTimestamp(document: Document | undefined): Document {
  const { _aws, ...rest } = document ?? {};
  const { Timestamp: _timestamp, ...aws } = _aws ?? {};
  return { _aws: aws, ...rest };
}

beforeEach(() => {
  vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'KooDriveAllocation');
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'koodrive-allocation-prod');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the ColdStart document', () => {
  it.each([
    ['namespace, service and the function’s name', {}],
    [
      'POWERTOOLS_METRICS_FUNCTION_NAME before the context’s name',
      { POWERTOOLS_METRICS_FUNCTION_NAME: 'api' },
    ],
    ['no service name (Powertools’ service_undefined)', { POWERTOOLS_SERVICE_NAME: '' }],
    ['POWERTOOLS_METRICS_DISABLED=false', { POWERTOOLS_METRICS_DISABLED: 'false' }],
  ])('is the one Powertools Metrics prints: %s', (_name, env: Record<string, string>) => {
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
    const functionName = 'koodrive-allocation-prod-allocation';
    const theirs = powertoolsDocuments(functionName);
    const ours = coldStartMetricDocument(functionName);
    expect(theirs).toHaveLength(1);
    expect(ours).toBeDefined();
    // Same keys in the same order, same values; the timestamps are each one's own now.
    expect(JSON.stringify(withoutTimestamp(ours))).toBe(JSON.stringify(withoutTimestamp(theirs[0])));
    expect(ours?._aws).toMatchObject({ Timestamp: expect.any(Number) });
  });

  it.each([
    ['POWERTOOLS_METRICS_DISABLED=true', { POWERTOOLS_METRICS_DISABLED: 'true' }],
    ['POWERTOOLS_DEV=true', { POWERTOOLS_DEV: 'true' }],
  ])('is not printed, as by Powertools, with %s', (_name, env: Record<string, string>) => {
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
    expect(powertoolsDocuments('fn')).toEqual([]);
    expect(coldStartMetricDocument('fn')).toBeUndefined();
  });

  it('is not printed without a namespace, rather than under Powertools’ default_namespace', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', '');
    expect(coldStartMetricDocument('fn')).toBeUndefined();
  });
});

describe('an HTTP function', () => {
  function handlerAndRun() {
    const handler = createHttpHandler({
      logger: createLogger('cold-start-test'),
      traceId: (_event, context) => context.awsRequestId,
      async handle({ traceId }) {
        return jsonResponse(200, { ok: true }, traceId);
      },
    });
    return async () => {
      const capture = captureOutput();
      try {
        const response = await handler(httpEvent('/allocation'), lambdaContext('kd-prod-allocation'));
        expect(response.statusCode).toBe(200);
      } finally {
        capture.stop();
      }
      return documents(capture.text());
    };
  }

  it('prints the ColdStart metric on its first invocation only', async () => {
    const run = handlerAndRun();
    const first = await run();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      service: 'koodrive-allocation-prod',
      function_name: 'kd-prod-allocation',
    });
    expect(first[0]?.ColdStart).toBe(1);
    expect(await run()).toEqual([]);
    expect(await run()).toEqual([]);
  });

  it('still answers when POWERTOOLS_METRICS_DISABLED is not a boolean, and logs which setting to fix', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'maybe');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'WARN');
    const capture = captureOutput();
    let response: { statusCode: number } | undefined;
    try {
      const handler = createHttpHandler({
        logger: createLogger('cold-start-test'),
        traceId: (_event, context) => context.awsRequestId,
        async handle({ traceId }) {
          return jsonResponse(200, { ok: true }, traceId);
        },
      });
      response = await handler(httpEvent('/allocation'), lambdaContext('kd-prod-allocation'));
    } finally {
      capture.stop();
    }
    expect(response?.statusCode).toBe(200);
    expect(documents(capture.text())).toEqual([]);
    const warning = capture
      .text()
      .split('\n')
      .find((line) => line.includes('"level":"WARN"'));
    expect(warning).toContain("POWERTOOLS_METRICS_DISABLED is 'maybe'");
  });

  it('prints none in an environment made for provisioned concurrency (not a cold start to Powertools)', async () => {
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'provisioned-concurrency');
    expect(await handlerAndRun()()).toEqual([]);
  });
});
