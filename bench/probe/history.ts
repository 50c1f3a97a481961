/**
 * History read: `history.mjs <bundle> <tenantId> <from> <to> <limit> <rounds> <table>`. Each round pages
 * through the range twice, once through the history route (handler calls only are timed; parsing the
 * answer to find nextCursor is the caller's work) and once with a raw SDK Query of the same key range;
 * which goes first alternates by round. A first untimed round warms both.
 */

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { httpEvent, lambdaContext } from '../../test/support/lambda.ts';
import { arg, finish, importHandler, intArg, isRecord, runProbe, statusOf } from './common.ts';

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

  const viaQuery = async () => {
    let startKey: Record<string, AttributeValue> | undefined;
    let items = 0;
    let pages = 0;
    const start = process.hrtime.bigint();
    do {
      const out = await client.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'tenantId = :t AND observedAt BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':t': { S: tenantId }, ':from': { S: from }, ':to': { S: to } },
          Limit: limit,
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
  await viaQuery();
  const results: {
    routeMs: number;
    rawMs: number;
    routeItems: number;
    rawItems: number;
    routePages: number;
    rawPages: number;
  }[] = [];
  for (let round = 0; round < rounds; round++) {
    const routeFirst = round % 2 === 0;
    const first = routeFirst ? await viaRoute() : await viaQuery();
    const second = routeFirst ? await viaQuery() : await viaRoute();
    const route = routeFirst ? first : second;
    const raw = routeFirst ? second : first;
    results.push({
      routeMs: route.ms,
      rawMs: raw.ms,
      routeItems: route.items,
      rawItems: raw.items,
      routePages: route.pages,
      rawPages: raw.pages,
    });
  }
  client.destroy();
  await finish({ rounds: results });
});
