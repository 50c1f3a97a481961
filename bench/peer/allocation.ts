/**
 * The benchmark's peer: what a competent user writes without this project, in one file. Same job as
 * handlers/allocation.ts (GET a tenant's allocation from KooDrive, answer JSON), none of the care: no
 * retries, no timeout, no secret validation, no structured logs, no problem+json.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

const PATH = '/koodrive/ose/v1/space/allocation/get';
const CACHE_MS = 300_000;
const TYPE_NAMES = ['department', 'personal', 'group'];

const secrets = new SecretsManagerClient({});
const tenants = new Map<string, string>();
for (const pair of (process.env.KOODRIVE_TENANTS ?? '').split(',')) {
  const [tenantId = '', secretId = ''] = pair.split('=');
  tenants.set(tenantId.trim(), secretId.trim());
}
const defaultTenant = [...tenants.keys()][0] ?? '';
const cache = new Map<string, { value: Record<string, string>; until: number }>();

async function credentialsOf(secretId: string): Promise<Record<string, string>> {
  const hit = cache.get(secretId);
  if (hit !== undefined && hit.until > Date.now()) return hit.value;
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
  const value: Record<string, string> = JSON.parse(out.SecretString ?? '{}');
  cache.set(secretId, { value, until: Date.now() + CACHE_MS });
  return value;
}

interface Space {
  type: string;
  allocateCapacity: string;
  totalCapacity: string;
}
interface KooDriveAnswer {
  code: number | string;
  data: Space | Space[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function allocation(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const tenantId = event.pathParameters?.tenantId ?? defaultTenant;
  const secretId = tenants.get(tenantId);
  if (secretId === undefined) return { statusCode: 404, body: JSON.stringify({ message: 'unknown tenant' }) };
  const { appId = '', appSecret = '', userId = '', baseUrl } = await credentialsOf(secretId);
  const url = new URL(PATH, baseUrl ?? process.env.KOODRIVE_BASE_URL);
  // X-Date may not be later than KooDrive's clock; whole seconds round it down.
  const xDate = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const canonical = [
    'GET',
    `${PATH}/`,
    '',
    `host:${url.host}\nx-date:${xDate}\nx-user-id:${userId}\n`,
    'host;x-date;x-user-id',
    sha256(''),
  ].join('\n');
  const signature = createHmac('sha256', appSecret)
    .update(`HMAC-SHA256\n${sha256(canonical)}`)
    .digest('hex');
  const res = await fetch(url, {
    headers: {
      Authorization: `HMAC-SHA256 AppId=${appId},SignedHeaders=host;x-date;x-user-id,Signature=${signature}`,
      'X-Date': xDate,
      'X-User-Id': userId,
      'X-Traceid': randomBytes(29).toString('hex'),
    },
  });
  const body: KooDriveAnswer = JSON.parse(await res.text());
  if (!res.ok || String(body.code) !== '0') return { statusCode: 502, body: JSON.stringify(body) };
  const spaces = [body.data].flat().map((s) => ({
    type: Number(s.type),
    typeName: TYPE_NAMES[Number(s.type)] ?? 'unknown',
    allocatedGB: Number(s.allocateCapacity),
    totalGB: Number(s.totalCapacity),
  }));
  const allocatedGB = spaces.reduce((sum, s) => sum + s.allocatedGB, 0);
  const totalGB = spaces.reduce((sum, s) => sum + s.totalGB, 0);
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      tenantId,
      observedAt: new Date().toISOString(),
      spaces,
      totals: { allocatedGB, totalGB, allocatedRatio: totalGB === 0 ? null : allocatedGB / totalGB },
    }),
  };
}

export const handler = middy(allocation);
