/**
 * Faults dynalite cannot produce (throttling), on the real client with aws-sdk-client-mock. Everything
 * else about the store is tested against dynalite in test/integration/snapshots-store.test.ts.
 */
import {
  BatchGetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { takeSnapshots } from '../../lib/snapshots/job.ts';
import type { Snapshot } from '../../lib/snapshots/store.ts';
import { mockedDynamoStore } from '../support/mocked-dynamo.ts';

const { dynamo, store } = mockedDynamoStore('snapshots');

const throttled = () =>
  new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded.',
    $metadata: { httpStatusCode: 400 },
  });

const { spaces, totals } = normalizeAllocation({
  code: 0,
  data: { type: 0, allocateCapacity: 1, totalCapacity: 2 },
});
const snapshot: Snapshot = {
  tenantId: 'acme',
  observedAt: '2026-11-28T04:00:00.000Z',
  fetchedAt: '2026-11-28T04:00:01.000Z',
  spaces,
  totals,
  source: 'schedule',
  traceId: 't'.repeat(58),
};

afterEach(() => {
  dynamo.reset();
});

describe('the DynamoDB store under throttling', () => {
  it('lets a throttled put fail instead of calling it a duplicate, as STORE_UNAVAILABLE naming the table', async () => {
    dynamo.on(PutItemCommand).rejects(throttled());
    await expect(store.put(snapshot)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      cause: expect.any(ProvisionedThroughputExceededException),
      message: expect.stringMatching(
        /^The snapshot table '.+' could not be written: DynamoDB throttled the writes, also through the SDK's retries \(ProvisionedThroughputExceededException\)\. Retrying is safe/,
      ),
    });
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(1);
    expect(dynamo.commandCalls(PutItemCommand)[0]?.args[0].input.ConditionExpression).toBe(
      'attribute_not_exists(#o)',
    );
  });

  it('lets a throttled query fail, for history (as STORE_UNAVAILABLE) and for the already-stored check', async () => {
    dynamo.on(QueryCommand).rejects(new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }));
    await expect(
      store.query({ tenantId: 'acme', from: new Date(0), to: new Date(1), limit: 5 }),
    ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', cause: expect.any(ThrottlingException) });
    await expect(store.has('acme', snapshot.observedAt)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      cause: expect.any(ThrottlingException),
    });
  });

  it('names the action a role lacks, and still reads a failed condition as a duplicate', async () => {
    const denied = Object.assign(new Error('User is not authorized to perform: dynamodb:PutItem'), {
      name: 'AccessDeniedException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
    });
    dynamo
      .on(PutItemCommand)
      .rejectsOnce(denied)
      .rejectsOnce(
        Object.assign(new Error('The conditional request failed'), {
          name: 'ConditionalCheckFailedException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          // ReturnValuesOnConditionCheckFailure ALL_OLD: another delivery's item (its own KooDrive call).
          Item: { traceId: { S: 'o'.repeat(58) }, fetchedAt: { S: snapshot.fetchedAt } },
        }),
      );
    await expect(store.put(snapshot)).rejects.toMatchObject({
      code: 'CONFIGURATION_ERROR',
      message: expect.stringContaining('grant dynamodb:PutItem on table'),
    });
    expect(await store.put(snapshot)).toBe('duplicate');
    expect(dynamo.commandCalls(PutItemCommand)[1]?.args[0].input.ReturnValuesOnConditionCheckFailure).toBe(
      'ALL_OLD',
    );
  });

  it("reads a failed condition on this very write (the SDK's retry of a put whose answer was lost) as stored, with no extra read", async () => {
    dynamo.on(PutItemCommand).rejects(
      Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        Item: { traceId: { S: snapshot.traceId }, fetchedAt: { S: snapshot.fetchedAt } },
      }),
    );
    expect(await store.put(snapshot)).toBe('stored');
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
  });

  it('names dynamodb:BatchGetItem, as a read, when the already-stored check of a batch is denied', async () => {
    dynamo.on(BatchGetItemCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: dynamodb:BatchGetItem'), {
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const failure = store.storedAmong(['acme', 'beta'], snapshot.observedAt);
    await expect(failure).rejects.toMatchObject({
      code: 'CONFIGURATION_ERROR',
      message: expect.stringContaining(
        "could not be read: the function's role may not use it so: grant dynamodb:BatchGetItem on table",
      ),
    });
    await expect(failure).rejects.not.toMatchObject({ message: expect.stringContaining('UpdateItem') });
  });

  it('turns a throttled write into a failed tenant of the job, the others stored', async () => {
    dynamo.on(QueryCommand).resolves({ Count: 0, Items: [] });
    dynamo.on(PutItemCommand).callsFake(async (input: PutItemCommandInput) => {
      if (input.Item?.tenantId?.S === 'beta') throw throttled();
      return {};
    });
    const results = await takeSnapshots({
      tenants: ['acme', 'beta', 'gamma'].map((tenantId) => ({ tenantId, secretId: `koodrive/${tenantId}` })),
      observedAt: snapshot.observedAt,
      source: 'schedule',
      deps: {
        store,
        fetch: async (tenant) => ({
          allocation: { tenantId: tenant.tenantId, observedAt: snapshot.fetchedAt, spaces, totals },
          traceId: snapshot.traceId,
          attempts: 1,
        }),
      },
      concurrency: 2,
    });
    expect(results.map((r) => `${r.tenantId}:${r.status}:${r.errorCode ?? ''}`)).toEqual([
      'acme:stored:',
      'beta:failed:STORE_UNAVAILABLE',
      'gamma:stored:',
    ]);
  });
});
