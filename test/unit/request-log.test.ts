import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, createRequestLogs } from '../../lib/logger.ts';
import { captureOutput, lambdaContext } from '../support/lambda.ts';

const KEYS = { traceId: 'a'.repeat(58), route: 'GET /tenants/{tenantId}/allocation', tenantId: 'acme' };
const FIELDS = {
  attempts: 2,
  status: 502,
  durationMs: 17,
  note: 'quote " backslash \\ é ✓ \u0001',
  empty: '',
};

type Line = Record<string, unknown>;

function parsedLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Line);
}

/**
 * What Powertools Logger prints for the request's line (its own path: context, keys, info) and what the
 * request log prints, over `invocations` invocations each, with the environment as the test set it.
 */
function bothWays(contexts: Context[]) {
  const run = (direct: boolean) => {
    const logger = createLogger('koodrive-allocation-test');
    const requestLogs = createRequestLogs(logger);
    const info = vi.spyOn(logger, 'info');
    const capture = captureOutput();
    try {
      for (const context of contexts) {
        logger.addContext(context);
        if (direct) {
          const log = requestLogs.begin(context);
          log.appendKeys(KEYS);
          log.info('request completed', FIELDS);
        } else {
          logger.appendKeys(KEYS);
          logger.info('request completed', FIELDS);
        }
        logger.resetKeys();
      }
    } finally {
      capture.stop();
    }
    const lines = parsedLines(capture.text()).filter((line) => line.message === 'request completed');
    return { lines, text: capture.text(), loggerInfoCalls: info.mock.calls.length };
  };
  return { powertools: run(false), requestLog: run(true) };
}

function withoutTimestamp(line: Line | undefined): Line {
  const { timestamp: _timestamp, ...rest } = line ?? {};
  return rest;
}

function expectSameLines(contexts: Context[]) {
  const { powertools, requestLog } = bothWays(contexts);
  expect(requestLog.loggerInfoCalls).toBe(0);
  expect(requestLog.lines).toHaveLength(contexts.length);
  expect(powertools.lines).toHaveLength(contexts.length);
  for (const [i, line] of requestLog.lines.entries()) {
    const theirs = powertools.lines[i];
    expect(Object.keys(line)).toEqual(Object.keys(theirs ?? {}));
    expect(withoutTimestamp(line)).toEqual(withoutTimestamp(theirs));
    expect(line.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  return requestLog.lines;
}

// The suite runs with POWERTOOLS_LOG_LEVEL=SILENT (vitest.config.ts); these tests read the lines.
beforeEach(() => {
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('the request log line', () => {
  it('is the line Powertools Logger prints, field for field and in its order', () => {
    const [line] = expectSameLines([lambdaContext('request-log-test')]);
    expect(line).toMatchObject({ ...KEYS, attempts: 2, status: 502, level: 'INFO' });
    // Powertools drops empty strings; so does the request log.
    expect(line).not.toHaveProperty('empty');
  });

  it('says cold start on the first invocation of an on-demand environment only, as Powertools does', () => {
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    const lines = expectSameLines([lambdaContext('request-log-test'), lambdaContext('request-log-test')]);
    expect(lines.map((line) => line.cold_start)).toEqual([true, false]);
  });

  it('carries the sampling rate Powertools reads, and 0 for one it refuses', () => {
    vi.stubEnv('POWERTOOLS_LOGGER_SAMPLE_RATE', '0.25');
    expect(expectSameLines([lambdaContext('request-log-test')])[0]?.sampling_rate).toBe(0.25);
    vi.stubEnv('POWERTOOLS_LOGGER_SAMPLE_RATE', '7');
    expect(expectSameLines([lambdaContext('request-log-test')])[0]?.sampling_rate).toBe(0);
  });

  it('carries the X-Ray trace id, the Lambda tenant id, and drops an empty memory size', () => {
    vi.stubEnv(
      '_X_AMZN_TRACE_ID',
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
    );
    vi.stubEnv('TZ', 'UTC');
    const context = { ...lambdaContext('request-log-test'), tenantId: 'lambda-tenant', memoryLimitInMB: '' };
    const [line] = expectSameLines([context]);
    expect(line).toMatchObject({
      xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793',
      tenant_id: 'lambda-tenant',
    });
    expect(line).not.toHaveProperty('function_memory_size');
  });

  it('prints nothing when the Logger does not print INFO', () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'WARN');
    const { powertools, requestLog } = bothWays([lambdaContext('request-log-test')]);
    expect(powertools.text).toBe('');
    expect(requestLog.text).toBe('');
  });

  it('leaves the line to the Logger where Powertools formats it otherwise', () => {
    vi.stubEnv('TZ', 'Asia/Kolkata');
    const zoned = bothWays([lambdaContext('request-log-test')]);
    expect(zoned.requestLog.loggerInfoCalls).toBe(1);
    expect(zoned.requestLog.lines[0]?.timestamp).toMatch(/\+05:30$/);
    vi.stubEnv('TZ', undefined);

    vi.stubEnv('POWERTOOLS_DEV', 'true');
    const dev = bothWays([lambdaContext('request-log-test')]);
    // Dev mode prints on the global console (which vitest intercepts), not on stdout.
    expect(dev.requestLog.loggerInfoCalls).toBe(1);
    expect(dev.requestLog.text).toBe('');
  });

  it('leaves the line to a Logger it did not make, and to an invocation without a context', () => {
    const logger = new Logger({ serviceName: 'elsewhere' });
    const info = vi.spyOn(logger, 'info');
    const capture = captureOutput();
    try {
      const log = createRequestLogs(logger).begin(lambdaContext('request-log-test'));
      log.appendKeys({ tenantId: 'acme' });
      log.info('request completed', { status: 200 });
      const own = createLogger('koodrive-allocation-test');
      const ownInfo = vi.spyOn(own, 'info');
      createRequestLogs(own).begin(undefined).info('request completed', { status: 200 });
      expect(ownInfo).toHaveBeenCalledTimes(1);
    } finally {
      capture.stop();
    }
    expect(info).toHaveBeenCalledWith('request completed', { status: 200 });
    expect(parsedLines(capture.text()).map((line) => [line.service, line.message])).toEqual([
      ['elsewhere', 'request completed'],
      ['koodrive-allocation-test', 'request completed'],
    ]);
  });
});
