/**
 * History reads when DynamoDB fails in ways dynalite cannot produce (throttling, 5xx, permissions), on
 * the real client with aws-sdk-client-mock. Unreachable and silent endpoints are tested over real
 * sockets in test/integration/history-handler.test.ts.
 */
import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  QueryCommand,
  ResourceNotFoundException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError, ConfigurationError, StoreUnavailableError, toAppError } from '../../lib/errors.ts';
import { problemResponse } from '../../lib/http/responses.ts';
import { beginTableRead, tableReadError } from '../../lib/snapshots/table-read.ts';
import { mockedDynamoStore } from '../support/mocked-dynamo.ts';

const { dynamo, store } = mockedDynamoStore('snapshots-prod');
const query = { tenantId: 'acme', from: new Date(0), to: new Date(1), limit: 5 };

function accessDenied(): Error {
  return Object.assign(new Error('User: arn:aws:sts::1:assumed-role/x is not authorized'), {
    name: 'AccessDeniedException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  });
}

async function failureOf(run: () => Promise<unknown>): Promise<AppError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

afterEach(() => {
  dynamo.reset();
});

describe('history reads of an unavailable snapshot table', () => {
  it.each([
    [
      'throttling that outlasted the SDK retries',
      () => new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } }),
      "DynamoDB throttled the reads, also through the SDK's retries (ThrottlingException)",
    ],
    [
      'exceeded provisioned throughput',
      () =>
        new ProvisionedThroughputExceededException({
          message: 'The level of configured provisioned throughput for the table was exceeded.',
          $metadata: { httpStatusCode: 400 },
        }),
      '(ProvisionedThroughputExceededException)',
    ],
    [
      'an internal server error',
      () => new InternalServerError({ message: 'Internal server error', $metadata: { httpStatusCode: 500 } }),
      'DynamoDB failed or did not answer in time (InternalServerError)',
    ],
    [
      'ServiceUnavailable',
      () =>
        Object.assign(new Error('Service unavailable'), {
          name: 'ServiceUnavailable',
          $metadata: { httpStatusCode: 503 },
        }),
      '(ServiceUnavailable)',
    ],
    [
      'an HTTP 502 from something in between',
      () => Object.assign(new Error('Bad Gateway'), { name: 'Unknown', $metadata: { httpStatusCode: 502 } }),
      'DynamoDB answered HTTP 502 (Unknown)',
    ],
    [
      'a reset connection',
      () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      'DynamoDB could not be reached (ECONNRESET)',
    ],
    [
      "the SDK's own request timeout",
      () => Object.assign(new Error('Request timed out'), { name: 'TimeoutError' }),
      '(TimeoutError)',
    ],
  ])('is a 503 STORE_UNAVAILABLE, safe to retry, for %s', async (_name, fault, reason) => {
    dynamo.on(QueryCommand).rejects(fault());
    const error = await failureOf(() => store.query(query));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.status).toBe(503);
    expect(error.message).toContain("The snapshot table 'snapshots-prod' could not be read: ");
    expect(error.message).toContain(reason);
    expect(error.message).toMatch(/Nothing was changed; retrying later is safe\.$/);
    const body = String(problemResponse(error, 't').body);
    expect(body).not.toMatch(/\bat .*\.(ts|js):\d+/);
    expect(JSON.parse(body)).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
  });

  it('is a 500 CONFIGURATION_ERROR naming the table and what to check for no table or no permission', async () => {
    dynamo
      .on(QueryCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: {} }))
      .rejectsOnce(accessDenied());
    const missing = await failureOf(() => store.query(query));
    expect(missing).toBeInstanceOf(ConfigurationError);
    expect(missing.message).toBe(
      "The snapshot table 'snapshots-prod' (SNAPSHOT_TABLE) could not be read: no table 'snapshots-prod' exists in this account and region: check SNAPSHOT_TABLE and that the stack's SnapshotsTable is deployed in the function's region (ResourceNotFoundException).",
    );
    const denied = await failureOf(() => store.query(query));
    expect(denied).toBeInstanceOf(ConfigurationError);
    expect(denied.message).toContain("grant dynamodb:Query on table 'snapshots-prod' to the role");
    // The SDK's message (with the role's ARN) stays in the logs, as the cause.
    expect(denied.message).not.toContain('arn:aws');
  });

  it('leaves anything else as it is: an INTERNAL_ERROR whose details stay in the logs', async () => {
    const validation = Object.assign(new Error('One or more parameter values were invalid'), {
      name: 'ValidationException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
    });
    dynamo.on(QueryCommand).rejects(validation);
    await expect(store.query(query)).rejects.toMatchObject({ name: 'ValidationException' });
    expect(toAppError(tableReadError(validation, 't')).code).toBe('INTERNAL_ERROR');
    const ours = new StoreUnavailableError('x');
    expect(tableReadError(ours, 't')).toBe(ours);
  });

  it('does not call DynamoDB when the deadline has passed already', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [] });
    const error = await failureOf(() => store.query({ ...query, deadline: Date.now() - 1 }));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toContain('did not answer within the 0 ms left in this invocation');
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
  });

  it('hands each call a signal that aborts at the deadline, and stops its timer once the read is over', async () => {
    const read = beginTableRead('t', Date.now() + 30);
    const signal = read.sendOptions.abortSignal;
    expect(signal?.aborted).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(signal?.aborted).toBe(true);
    const late = read.failure(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    expect(late).toBeInstanceOf(StoreUnavailableError);
    read.end();

    const finished = beginTableRead('t', Date.now() + 30);
    finished.end();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(finished.sendOptions.abortSignal?.aborted).toBe(false);
    expect(beginTableRead('t', undefined).sendOptions).toEqual({});
  });
});
