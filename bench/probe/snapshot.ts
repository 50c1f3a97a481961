/**
 * Snapshot fan-out: `snapshot.mjs <bundle> <eventTime>` sends the snapshot function one EventBridge
 * scheduled event (every configured tenant) and reports the invocation's wall time.
 */
import { randomUUID } from 'node:crypto';
import { lambdaContext } from '../../test/support/lambda.ts';
import { arg, finish, importHandler, isRecord, runProbe } from './common.ts';

runProbe(async () => {
  const handler = await importHandler(arg(0));
  const time = arg(1);
  const event = {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time,
    region: process.env.AWS_REGION ?? 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:rule/koodrive-allocation-bench-snapshot-schedule'],
    detail: {},
  };
  const start = process.hrtime.bigint();
  let summary: unknown;
  let error: string | undefined;
  try {
    summary = await handler(event, lambdaContext('koodrive-allocation-bench-snapshot'));
  } catch (thrown) {
    error = thrown instanceof Error ? thrown.message.slice(0, 500) : String(thrown);
  }
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const count = (key: string) => {
    const list = isRecord(summary) ? summary[key] : undefined;
    return Array.isArray(list) ? list.length : 0;
  };
  await finish({
    wallMs,
    stored: count('stored'),
    duplicate: count('duplicate'),
    ...(error ? { error } : {}),
  });
});
