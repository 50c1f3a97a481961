/** The functions' logger: the service its lines carry. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, describeError } from '../../lib/logger.ts';
import { itemToAllocation, MalformedSnapshotItemError } from '../../lib/snapshots/store.ts';
import { captureOutput } from '../support/lambda.ts';

const saved = { service: process.env.POWERTOOLS_SERVICE_NAME, level: process.env.POWERTOOLS_LOG_LEVEL };

beforeEach(() => {
  // The suite runs silent; these tests read a line.
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

afterEach(() => {
  for (const [name, value] of [
    ['POWERTOOLS_SERVICE_NAME', saved.service],
    ['POWERTOOLS_LOG_LEVEL', saved.level],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

function serviceOfALine(serviceName?: string): unknown {
  const output = captureOutput();
  try {
    (serviceName === undefined ? createLogger() : createLogger(serviceName)).info('hello');
  } finally {
    output.stop();
  }
  return JSON.parse(output.text().trim()).service;
}

describe('createLogger', () => {
  it("names the stage's service, as the metrics do, so log and metric filters agree", () => {
    process.env.POWERTOOLS_SERVICE_NAME = 'koodrive-allocation-prod';
    expect(serviceOfALine()).toBe('koodrive-allocation-prod');
  });

  it('falls back to the project name without the variable, and takes a name a test gives', () => {
    delete process.env.POWERTOOLS_SERVICE_NAME;
    expect(serviceOfALine()).toBe('koodrive-allocation');
    process.env.POWERTOOLS_SERVICE_NAME = '  ';
    expect(serviceOfALine()).toBe('koodrive-allocation');
    expect(serviceOfALine('history-test')).toBe('history-test');
  });
});

describe('describeError', () => {
  it("gives an unexpected error's stack, unless asked not to", () => {
    const error = new TypeError('unexpected');
    expect(describeError(error)).toMatchObject({
      errorName: 'TypeError',
      stack: expect.stringContaining('TypeError: unexpected'),
    });
    expect(describeError(error, { stack: false })).toEqual({
      errorName: 'TypeError',
      errorMessage: 'unexpected',
    });
  });

  it("names a malformed snapshot item's key, to find it in the table", () => {
    let error: unknown;
    try {
      // Its key's sort attribute is not a string: the key says what could be read of it.
      itemToAllocation({ tenantId: { S: 'acme' }, observedAt: { N: '1' }, spaces: { L: [] } });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(MalformedSnapshotItemError);
    expect(describeError(error, { stack: false })).toEqual({
      errorName: 'MalformedSnapshotItemError',
      errorMessage: "A stored snapshot item is malformed: 'observedAt' is not a string.",
      itemKey: { tenantId: 'acme' },
    });
  });
});
