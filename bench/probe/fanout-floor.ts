/**
 * The fan-out floor: `fanout-floor.mjs <concurrency> <eventTime> [calls]` does, for every tenant in
 * KOODRIVE_TENANTS and at most <concurrency> at a time, only the calls a snapshot cannot do without:
 * read the secret, one signed KooDrive call, one unconditional PutItem into SNAPSHOT_TABLE. Against the
 * same local services as the snapshot function, it shows how much of the fan-out's time those take.
 * With `calls`, the secrets are read before the clock starts and only the signed calls are timed (over
 * node:http with a keep-alive agent): what the simulator's latency itself takes on this machine.
 */

import { createHash, createHmac } from 'node:crypto';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { arg, finish, intArg, isRecord, keepAliveGetter, runProbe } from './common.ts';

const PATH = '/koodrive/ose/v1/space/allocation/get';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

runProbe(async () => {
  const concurrency = intArg(0);
  const observedAt = new Date(arg(1)).toISOString();
  const table = process.env.SNAPSHOT_TABLE ?? '';
  const tenants = (process.env.KOODRIVE_TENANTS ?? '').split(',').map((pair) => pair.split('='));
  const callsOnly = process.argv[4] === 'calls';
  const secrets = new SecretsManagerClient({});
  const dynamo = new DynamoDBClient({});
  const readSecret = async (secretId: string) => {
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    const secret: unknown = JSON.parse(out.SecretString ?? '{}');
    if (!isRecord(secret)) throw new Error('secret is not an object');
    return secret;
  };
  const known = new Map<string, Record<string, unknown>>();
  if (callsOnly) {
    for (const [, secretId = ''] of tenants) known.set(secretId, await readSecret(secretId));
  }
  const get = await keepAliveGetter();
  const one = async ([tenantId = '', secretId = '']: string[]) => {
    const secret = known.get(secretId) ?? (await readSecret(secretId));
    const url = new URL(PATH, process.env.KOODRIVE_BASE_URL);
    const xDate = new Date(Date.now() - 5_000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const canonical = `GET\n${PATH}/\n\nhost:${url.host}\nx-date:${xDate}\nx-user-id:${String(secret.userId)}\n\nhost;x-date;x-user-id\n${sha256('')}`;
    const signature = createHmac('sha256', String(secret.appSecret))
      .update(`HMAC-SHA256\n${sha256(canonical)}`)
      .digest('hex');
    const headers = {
      Authorization: `HMAC-SHA256 AppId=${String(secret.appId)},SignedHeaders=host;x-date;x-user-id,Signature=${signature}`,
      'X-Date': xDate,
      'X-User-Id': String(secret.userId),
    };
    if (callsOnly) {
      const { status } = await get(url, headers);
      if (status !== 200) throw new Error(`KooDrive answered ${status}`);
      return;
    }
    const response = await fetch(url, { headers });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`KooDrive answered ${response.status}`);
    await dynamo.send(
      new PutItemCommand({
        TableName: table,
        Item: { tenantId: { S: `floor-${tenantId}` }, observedAt: { S: observedAt }, body: { S: body } },
      }),
    );
  };
  const queue = tenants.values();
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (const tenant of queue) await one(tenant);
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  secrets.destroy();
  dynamo.destroy();
  await finish({ wallMs, tenants: tenants.length });
});
