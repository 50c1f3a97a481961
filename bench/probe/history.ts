/**
 * History read: `history.mjs <bundle> <tenantId> <from> <to> <limit> <rounds> <table>`. Each round pages
 * through the range three times: through the history route (handler calls only are timed; parsing the
 * answer to find nextCursor is the caller's work), with a raw SDK Query of the same key range, and with
 * that Query asking only for the attributes the route serves; each goes first in turn. A first untimed
 * round warms all three.
 */

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { httpEvent, lambdaContext } from '../../test/support/lambda.ts';
import { arg, finish, importHandler, intArg, isRecord, runProbe, statusOf } from './common.ts';

/** A full collection between runs (with --expose-gc), so each run's timing holds only its own garbage. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

runProbe(async () => {
  const handler = await importHandler(arg(0));
  const tenantId = arg(1);
  const from = arg(2);
  const to = arg(3);
  const limit = intArg(4);
  const rounds = intArg(5);
  const table = arg(6);
  const client = new DynamoDBClient({});

  const viaRoute = async () => {
    let cursor: string | undefined;
    let items = 0;
    let pages = 0;
    let ns = 0n;
    do {
      const query: Record<string, string> = { from, to, limit: String(limit), ...(cursor ? { cursor } : {}) };
      const event = httpEvent(`/tenants/${tenantId}/allocation/history`, {
        routeKey: 'GET /tenants/{tenantId}/allocation/history',
        pathParameters: { tenantId },
        query,
      });
      const start = process.hrtime.bigint();
      const response = await handler(event, lambdaContext('koodrive-allocation-bench-history'));
      ns += process.hrtime.bigint() - start;
      if (statusOf(response) !== 200 || !isRecord(response) || typeof response.body !== 'string') {
        throw new Error(`history route answered ${statusOf(response)}`);
      }
      const body: unknown = JSON.parse(response.body);
      if (!isRecord(body) || !Array.isArray(body.items)) throw new Error('history answer has no items');
      items += body.items.length;
      pages += 1;
      cursor = typeof body.nextCursor === 'string' ? body.nextCursor : undefined;
    } while (cursor !== undefined);
    return { ms: Number(ns) / 1e6, items, pages };
  };

  const viaQuery = async (projected: boolean) => {
    let startKey: Record<string, AttributeValue> | undefined;
    let items = 0;
    let pages = 0;
    const start = process.hrtime.bigint();
    do {
      const out = await client.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: projected
            ? '#t = :t AND #o BETWEEN :from AND :to'
            : 'tenantId = :t AND observedAt BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':t': { S: tenantId }, ':from': { S: from }, ':to': { S: to } },
          Limit: limit,
          // The attributes the route serves (what it asks DynamoDB for), when projected.
          ...(projected
            ? {
                ProjectionExpression: '#t, #o, #f, #s',
                // `spaces` is a reserved word.
                ExpressionAttributeNames: {
                  '#t': 'tenantId',
                  '#o': 'observedAt',
                  '#f': 'fetchedAt',
                  '#s': 'spaces',
                },
              }
            : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      items += out.Items?.length ?? 0;
      pages += 1;
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, items, pages };
  };

  await viaRoute();
  await viaQuery(false);
  await viaQuery(true);
  const results: {
    routeMs: number;
    rawMs: number;
    projectedMs: number;
    routeItems: number;
    rawItems: number;
    projectedItems: number;
    routePages: number;
    rawPages: number;
  }[] = [];
  const runs = [viaRoute, () => viaQuery(false), () => viaQuery(true)] as const;
  for (let round = 0; round < rounds; round++) {
    // Each of the three goes first, second and third in turn.
    const outcomes: { ms: number; items: number; pages: number }[] = [];
    for (let i = 0; i < runs.length; i++) {
      const index = (round + i) % runs.length;
      collectGarbage();
      outcomes[index] = await (runs[index] as () => Promise<{ ms: number; items: number; pages: number }>)();
    }
    const [route, raw, projected] = outcomes;
    if (!route || !raw || !projected) throw new Error('history: a run did not report');
    results.push({
      routeMs: route.ms,
      rawMs: raw.ms,
      projectedMs: projected.ms,
      routeItems: route.items,
      rawItems: raw.items,
      projectedItems: projected.items,
      routePages: route.pages,
      rawPages: raw.pages,
    });
  }
  client.destroy();
  await finish({ rounds: results });
});
