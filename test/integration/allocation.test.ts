import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAllocationHandler } from '../../handlers/allocation.ts';
import { createLogger } from '../../lib/logger.ts';
import { lazyRuntime } from '../../lib/runtime.ts';
import { type KooDriveSimulator, startKooDriveSimulator } from '../../local/koodrive-simulator.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';
import { captureOutput, httpEvent, lambdaContext } from '../support/lambda.ts';
import { startSilentServer } from '../support/silent-server.ts';

const ACME = { appId: 'acme-app', appSecret: 'acme-secret-value-9f8e7d', userId: '1505084218764547200' };
const BETA = { appId: 'beta-app', appSecret: 'beta-secret-value-1a2b3c', userId: '42' };
const ACME_DATA = [
  { type: '1', allocateCapacity: '300', totalCapacity: '1000' },
  { type: 0, allocateCapacity: 1500, totalCapacity: '1000' },
];

let koodrive: KooDriveSimulator;
let koodriveCn: KooDriveSimulator;
let secrets: LocalSecretsManager;
const savedEnv = { ...process.env };

function secretJson(app: { appId: string; appSecret: string; userId: string }, baseUrl?: string) {
  return JSON.stringify({ ...app, ...(baseUrl === undefined ? {} : { baseUrl }) });
}

/** A fresh container: a new handler with its own caches, configured like the deployed function. */
function coldHandler(env: Record<string, string> = {}) {
  const logger = createLogger('allocation-test');
  return createAllocationHandler({
    logger,
    getRuntime: lazyRuntime({
      logger,
      env: {
        KOODRIVE_TENANTS:
          'acme=koodrive/acme,beta=koodrive/beta,broken=koodrive/broken,partial=koodrive/partial,ghost=koodrive/ghost',
        KOODRIVE_BASE_URL: koodrive.url,
        KOODRIVE_TIMEOUT_MS: '5000',
        KOODRIVE_MAX_ATTEMPTS: '3',
        SECRET_CACHE_SECONDS: '300',
        ...env,
      },
    }),
  });
}

async function call(
  handler: ReturnType<typeof coldHandler>,
  path: string,
  tenantId?: string,
  remainingMs?: number,
) {
  const event = httpEvent(path, {
    routeKey: tenantId === undefined ? 'GET /allocation' : 'GET /tenants/{tenantId}/allocation',
    ...(tenantId === undefined ? {} : { pathParameters: { tenantId } }),
  });
  const context = lambdaContext();
  if (remainingMs !== undefined) {
    const end = Date.now() + remainingMs;
    context.getRemainingTimeInMillis = () => end - Date.now();
  }
  const response = await handler(event, context);
  return { ...response, json: JSON.parse(String(response.body)) as Record<string, unknown> };
}

beforeAll(async () => {
  koodrive = await startKooDriveSimulator({ apps: [{ ...ACME, data: ACME_DATA }] });
  koodriveCn = await startKooDriveSimulator({ apps: [BETA] });
  secrets = await startLocalSecretsManager({
    secrets: {
      'koodrive/acme': secretJson(ACME),
      'koodrive/beta': secretJson(BETA, koodriveCn.url),
      'koodrive/broken': 'this is {not json',
      'koodrive/partial': JSON.stringify({ appId: 'x', appSecret: 'partial-secret-value-77' }),
    },
  });
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.url;
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([koodrive?.close(), koodriveCn?.close(), secrets?.close()]);
});

beforeEach(() => {
  koodrive.reset();
  koodriveCn.reset();
  secrets.reset();
  koodrive.setApp({ ...ACME, data: ACME_DATA });
  secrets.setSecret('koodrive/acme', secretJson(ACME));
  koodrive.setClockOffsetMs(0);
});

describe('GET /allocation, live from the simulator', () => {
  it("answers the default tenant's normalized allocation with the trace id sent to KooDrive", async () => {
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(response.json).toMatchObject({
      tenantId: 'acme',
      spaces: [
        {
          type: 0,
          typeName: 'department',
          allocatedGB: 1500,
          totalGB: 1000,
          unallocatedGB: -500,
          allocatedRatio: 1.5,
          overAllocated: true,
        },
        {
          type: 1,
          typeName: 'personal',
          allocatedGB: 300,
          totalGB: 1000,
          unallocatedGB: 700,
          allocatedRatio: 0.3,
          overAllocated: false,
        },
      ],
      totals: {
        allocatedGB: 1800,
        totalGB: 2000,
        unallocatedGB: 200,
        allocatedRatio: 0.9,
        overAllocated: false,
      },
    });
    expect(Date.parse(String(response.json.observedAt))).toBeGreaterThan(Date.now() - 60_000);
    const traceId = response.headers?.['x-trace-id'];
    expect(traceId).toHaveLength(58);
    expect(koodrive.requests).toHaveLength(1);
    expect(koodrive.requests[0]).toMatchObject({ appId: 'acme-app', traceId, outcome: 'ok' });
  });

  it("uses each tenant's own appId and baseUrl", async () => {
    const handler = coldHandler();
    const beta = await call(handler, '/tenants/beta/allocation', 'beta');
    expect(beta.statusCode).toBe(200);
    expect(beta.json).toMatchObject({ tenantId: 'beta', totals: { allocatedGB: 1000, totalGB: 2000 } });
    expect(koodriveCn.requests.map((r) => r.appId)).toEqual(['beta-app']);
    expect(koodrive.requests).toHaveLength(0);
    const acme = await call(handler, '/tenants/acme/allocation', 'acme');
    expect(acme.json.tenantId).toBe('acme');
    expect(koodrive.requests.map((r) => r.appId)).toEqual(['acme-app']);
  });
});

describe('errors: every row of the contract table', () => {
  it('400 INVALID_REQUEST for a bad tenant id', async () => {
    const response = await call(coldHandler(), '/tenants/-nope!/allocation', '-nope!');
    expect(response.statusCode).toBe(400);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(response.json).toMatchObject({ status: 400, code: 'INVALID_REQUEST', title: 'Invalid request' });
    expect(String(response.json.detail)).toContain('must match');
    expect(response.json.traceId).toBe(response.headers?.['x-trace-id']);
    // The allocation routes' format (the contract's 58 characters) also before any KooDrive call.
    expect(response.headers?.['x-trace-id']).toHaveLength(58);
  });

  it('400 INVALID_REQUEST for a tenant path with dot segments, which an IAM policy on another tenant matches', async () => {
    const before = koodrive.requests.length;
    const event = httpEvent('/tenants/zeta/../acme/allocation', {
      routeKey: 'GET /tenants/{tenantId}/allocation',
      pathParameters: { tenantId: 'acme' },
    });
    const response = await coldHandler()(event, lambdaContext());
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(String(response.body)).detail).toBe(
      "The path has '.' or '..' segments: write it as /tenants/acme/… (an IAM policy names a tenant by the path as sent).",
    );
    expect(koodrive.requests).toHaveLength(before);
  });

  it('404 UNKNOWN_TENANT for a tenant that is not configured', async () => {
    const response = await call(coldHandler(), '/tenants/zeta/allocation', 'zeta');
    expect(response.statusCode).toBe(404);
    expect(response.json).toMatchObject({ code: 'UNKNOWN_TENANT' });
    expect(String(response.json.detail)).toContain('KOODRIVE_TENANTS');
    expect(response.headers?.['x-trace-id']).toHaveLength(58);
  });

  it('404 NOT_FOUND for another path or method', async () => {
    const handler = coldHandler();
    const context = lambdaContext();
    const post = await handler(httpEvent('/allocation', { method: 'POST', routeKey: '$default' }), context);
    expect(post.statusCode).toBe(404);
    expect(JSON.parse(String(post.body)).code).toBe('NOT_FOUND');
    // No KooDrive call to name: the request's own id, as for history.
    expect(post.headers?.['x-trace-id']).toBe(context.awsRequestId);
    const other = await handler(httpEvent('/quota', { routeKey: '$default' }), lambdaContext());
    expect(other.statusCode).toBe(404);
    // serverless-offline hands HEAD to the GET route's function under the GET route key.
    const head = await handler(
      httpEvent('/allocation', { method: 'HEAD', routeKey: 'GET /allocation' }),
      lambdaContext(),
    );
    expect(head.statusCode).toBe(404);
    expect(koodrive.requests).toHaveLength(0);
  });

  it('204 to a CORS preflight (the unauthorized OPTIONS route), 404 to any other OPTIONS', async () => {
    const handler = coldHandler();
    const preflight = httpEvent('/tenants/acme/allocation/history', {
      method: 'OPTIONS',
      routeKey: 'OPTIONS /{proxy+}',
    });
    preflight.headers = {
      origin: 'https://dash.example.com',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization',
    };
    const preflightContext = lambdaContext();
    const answer = await handler(preflight, preflightContext);
    expect(answer.statusCode).toBe(204);
    expect(answer.body).toBe('');
    expect(answer.headers?.['x-trace-id']).toBe(preflightContext.awsRequestId);
    const plain = await handler(
      httpEvent('/allocation', { method: 'OPTIONS', routeKey: 'OPTIONS /{proxy+}' }),
      lambdaContext(),
    );
    expect(plain.statusCode).toBe(404);
    expect(koodrive.requests).toHaveLength(0);
  });

  it('500 CONFIGURATION_ERROR for a secret that is not JSON, naming the secret and not its value', async () => {
    const response = await call(coldHandler(), '/tenants/broken/allocation', 'broken');
    expect(response.statusCode).toBe(500);
    expect(response.json.code).toBe('CONFIGURATION_ERROR');
    expect(String(response.json.detail)).toContain("'koodrive/broken' is not valid JSON");
    expect(response.body).not.toContain('not json');
  });

  it('500 CONFIGURATION_ERROR for a secret that lacks a field, naming the field', async () => {
    const response = await call(coldHandler(), '/tenants/partial/allocation', 'partial');
    expect(response.statusCode).toBe(500);
    expect(response.json.detail).toBe("Secret 'koodrive/partial' lacks the required field 'userId'.");
    expect(response.body).not.toContain('partial-secret-value-77');
  });

  it('500 CONFIGURATION_ERROR for a bad setting, naming the variable', async () => {
    const response = await call(coldHandler({ KOODRIVE_MAX_ATTEMPTS: 'many' }), '/allocation');
    expect(response.statusCode).toBe(500);
    expect(response.json).toMatchObject({ code: 'CONFIGURATION_ERROR' });
    expect(String(response.json.detail)).toContain('KOODRIVE_MAX_ATTEMPTS');
    // The allocation routes' 58 characters, the same id as the answer's traceId.
    expect(response.headers?.['x-trace-id']).toHaveLength(58);
    expect(response.json.traceId).toBe(response.headers?.['x-trace-id']);
    const tenants = await call(coldHandler({ KOODRIVE_TENANTS: 'acme=' }), '/allocation');
    expect(tenants.json.code).toBe('CONFIGURATION_ERROR');
    expect(tenants.headers?.['x-trace-id']).toHaveLength(58);
  });

  it('503 CREDENTIALS_UNAVAILABLE when the secret does not exist', async () => {
    const response = await call(coldHandler(), '/tenants/ghost/allocation', 'ghost');
    expect(response.statusCode).toBe(503);
    expect(response.json.code).toBe('CREDENTIALS_UNAVAILABLE');
    expect(String(response.json.detail)).toContain('ResourceNotFoundException');
    expect(String(response.json.detail)).toContain('koodrive/ghost');
  });

  it('503 CREDENTIALS_UNAVAILABLE when access is denied', async () => {
    secrets.enqueueFault({ type: 'AccessDeniedException', secretId: 'koodrive/acme', times: 5 });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(503);
    expect(String(response.json.detail)).toContain('AccessDeniedException');
    expect(koodrive.requests).toHaveLength(0);
  });

  it('503 CREDENTIALS_UNAVAILABLE pointing at the KMS key, not GetSecretValue, when the role may not decrypt the secret', async () => {
    // What Secrets Manager answers when the role lacks kms:Decrypt on a customer managed key.
    secrets.enqueueFault({
      type: 'AccessDeniedException',
      secretId: 'koodrive/acme',
      message: 'Access to KMS is not allowed',
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(503);
    expect(response.json.detail).toBe(
      "Secrets Manager could not be read for tenant 'acme' (secret 'koodrive/acme'): AccessDeniedException (Access to KMS is not allowed); the secret's KMS key may not be used by the function's role: name the key in the stage parameter secretKmsKeyArns (kms:Decrypt through Secrets Manager), and let the key's policy allow the account.",
    );
    expect(koodrive.requests).toHaveLength(0);
  });

  it('503 CREDENTIALS_UNAVAILABLE when Secrets Manager throttles or drops the connection through its retries', async () => {
    secrets.enqueueFault({ type: 'ThrottlingException', secretId: 'koodrive/acme', times: 10 });
    const throttled = await call(coldHandler(), '/allocation');
    expect(throttled.statusCode).toBe(503);
    expect(String(throttled.json.detail)).toContain('ThrottlingException');
    secrets.reset();
    secrets.enqueueFault({ type: 'reset', secretId: 'koodrive/acme', times: 10 });
    const unreachable = await call(coldHandler(), '/allocation');
    expect(unreachable.statusCode).toBe(503);
    expect(unreachable.json.code).toBe('CREDENTIALS_UNAVAILABLE');
    // The SDK calls a reset connection TimeoutError; the detail says what it was.
    expect(String(unreachable.json.detail)).toMatch(
      /: TimeoutError \(ECONNRESET: the connection failed, not a slow answer\); Secrets Manager could not be reached/,
    );
    expect(koodrive.requests).toHaveLength(0);
  });

  it('502 UPSTREAM_REJECTED when KooDrive refuses the signature, after exactly one refetch', async () => {
    secrets.setSecret('koodrive/acme', secretJson({ ...ACME, appSecret: 'stale-secret-value' }));
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json).toMatchObject({ code: 'UPSTREAM_REJECTED', upstreamCode: 'APIGW.0303' });
    // GET /allocation names no tenant: the detail says which tenant and which secret to check.
    expect(response.json.detail).toBe(
      "KooDrive refused the credentials of tenant 'acme' (secret 'koodrive/acme', HTTP 401), also on a second try with the secret's latest value: check appId, appSecret and userId in that secret, and the app's permissions.",
    );
    expect(koodrive.requests.map((r) => r.outcome)).toEqual(['rejected', 'rejected']);
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
  });

  it('502 UPSTREAM_REJECTED also for HTTP 400 without a KooDrive error code', async () => {
    koodrive.enqueueFault({ status: 400, body: 'Bad Request' });
    koodrive.enqueueFault({ status: 400, body: { error_code: 'APIGW.0101', error_msg: 'bad' } });
    const response = await call(coldHandler(), '/allocation');
    expect(response.json.code).toBe('UPSTREAM_REJECTED');
    expect(koodrive.requests).toHaveLength(2);
  });

  it('502 UPSTREAM_ERROR for code ≠ 0, without retrying, with the upstream code and message', async () => {
    koodrive.enqueueFault({ status: 200, body: { code: '13000301', msg: 'space not found or abnormal' } });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json).toMatchObject({
      code: 'UPSTREAM_ERROR',
      upstreamCode: '13000301',
      upstreamMessage: 'space not found or abnormal',
    });
    expect(koodrive.requests).toHaveLength(1);
  });

  it('says what to do about a KooDrive error code: fix it on the KooDrive side', async () => {
    koodrive.enqueueFault({ status: 200, body: { code: 13000410, msg: 'no permission' } });
    const response = await call(coldHandler(), '/allocation');
    expect(response.json).toMatchObject({
      code: 'UPSTREAM_ERROR',
      upstreamCode: '13000410',
      upstreamMessage: 'no permission',
      detail:
        "KooDrive answered error code 13000410: no permission. KooDrive refused the request itself, so it was not retried: fix it on the KooDrive side (the app's permissions, the tenant's or the space's state), as KooDrive's upstreamMessage says.",
    });
    // A message that ends a sentence itself gets no second full stop.
    koodrive.enqueueFault({ status: 200, body: { code: 13000410, msg: 'No permission.' } });
    const ended = await call(coldHandler(), '/allocation');
    expect(ended.json.detail).toMatch(
      /^KooDrive answered error code 13000410: No permission\. KooDrive refused/,
    );
  });

  it('502 UPSTREAM_ERROR for a 4xx with a KooDrive code, without retrying', async () => {
    koodrive.enqueueFault({
      status: 400,
      body: { code: 13000410, msg: 'user has no permission on the space' },
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.json).toMatchObject({
      code: 'UPSTREAM_ERROR',
      upstreamCode: '13000410',
      upstreamMessage: 'user has no permission on the space',
    });
    // What broke, and what to do (the 3 a.m. table's row): KooDrive's verdict is fixed on its side.
    expect(response.json.detail).toBe(
      "KooDrive answered HTTP 400. KooDrive refused the request itself, so it was not retried: fix it on the KooDrive side (the app's permissions, the tenant's or the space's state), as KooDrive's upstreamMessage says.",
    );
    expect(koodrive.requests).toHaveLength(1);
  });

  it('502 UPSTREAM_ERROR for a 404, naming the URL path to check rather than blaming KooDrive', async () => {
    // A proxy prefix missing from (or added to) KOODRIVE_BASE_URL: the API path is not found there.
    const response = await call(
      coldHandler({ KOODRIVE_BASE_URL: `${koodrive.url}/wrong-prefix` }),
      '/allocation',
    );
    expect(response.statusCode).toBe(502);
    expect(response.json).toMatchObject({ code: 'UPSTREAM_ERROR', upstreamCode: '13000101' });
    expect(response.json.detail).toBe(
      "KooDrive answered HTTP 404 for /wrong-prefix/koodrive/ose/v1/space/allocation/get, a status its API does not document: most likely no such API is served at that path; check the path of KOODRIVE_BASE_URL or the secret's baseUrl (a proxy's prefix is kept before the API's path).",
    );
    expect(koodrive.requests).toHaveLength(1);
  });

  it('502 UPSTREAM_ERROR for a body that is not the documented shape', async () => {
    koodrive.setData('acme-app', [{ type: 0, allocateCapacity: 'lots', totalCapacity: 10 }]);
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(String(response.json.detail)).toContain('allocateCapacity');
  });

  it('keeps a space type KooDrive does not document, a negative one too, as unknown with its number', async () => {
    koodrive.setData('acme-app', [
      { type: 0, allocateCapacity: 3, totalCapacity: 4 },
      { type: -1, allocateCapacity: 1, totalCapacity: 2 },
    ]);
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(200);
    expect(response.json.spaces).toEqual([
      expect.objectContaining({ type: -1, typeName: 'unknown', allocatedGB: 1, totalGB: 2 }),
      expect.objectContaining({ type: 0, typeName: 'department', allocatedGB: 3, totalGB: 4 }),
    ]);
    koodrive.setData('acme-app', [{ type: 'group', allocateCapacity: 1, totalCapacity: 2 }]);
    const refused = await call(coldHandler(), '/allocation');
    expect(refused.statusCode).toBe(502);
    expect(String(refused.json.detail)).toContain(
      'data[0].type is "group", not a number: a space type is a whole number',
    );
  });

  it('502 UPSTREAM_ERROR when KooDrive lists no space types (data: [])', async () => {
    koodrive.setData('acme-app', []);
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(String(response.json.detail)).toContain('KooDrive listed no space types');
    expect(koodrive.requests).toHaveLength(1);
  });

  it('502 UPSTREAM_ERROR without the AppSecret for a success that carries it where a number belongs', async () => {
    // An echoing proxy or a broken gateway: the secret never travels in a request, but an answer could
    // still hold it; the detail built from the malformed value must not show it.
    koodrive.enqueueFault({
      status: 200,
      body: { code: 0, data: { type: 0, allocateCapacity: `${ACME.appSecret}`, totalCapacity: 2 } },
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(String(response.json.detail)).toContain('data.allocateCapacity is "[redacted]", not a number');
    expect(JSON.stringify(response.json)).not.toContain(ACME.appSecret.slice(0, 12));
  });

  it('502 UPSTREAM_ERROR for an HTTP 200 without a code field, with no upstream code or message', async () => {
    koodrive.enqueueFault({
      status: 200,
      body: { msg: 'ok', data: { type: 0, allocateCapacity: 1, totalCapacity: 2 } },
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(String(response.json.detail)).toContain('the answer has no `code` field');
    expect(response.json).not.toHaveProperty('upstreamCode');
    expect(response.json).not.toHaveProperty('upstreamMessage');
    expect(koodrive.requests).toHaveLength(1);
  });

  it('502 UPSTREAM_ERROR for a code that is not a string or number, which is not reported as upstreamCode', async () => {
    koodrive.enqueueFault({
      status: 200,
      body: { code: { id: 13000201 }, msg: 'inner server invoke failure' },
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json).toMatchObject({
      code: 'UPSTREAM_ERROR',
      detail:
        'KooDrive answered an error whose `code` is {"id":13000201} (an object), not a string or a finite number: inner server invoke failure',
      upstreamMessage: 'inner server invoke failure',
    });
    expect(response.json).not.toHaveProperty('upstreamCode');
    expect(JSON.stringify(response.json)).not.toContain('[object Object]');

    koodrive.enqueueFault({ status: 404, body: { code: [13000301], msg: 'space not found or abnormal' } });
    const http = await call(coldHandler(), '/allocation');
    expect(http.json).toMatchObject({
      code: 'UPSTREAM_ERROR',
      detail:
        "KooDrive answered HTTP 404 for /koodrive/ose/v1/space/allocation/get (its `code` is [13000301] (an array), not a string or a finite number), a status its API does not document: most likely no such API is served at that path; check the path of KOODRIVE_BASE_URL or the secret's baseUrl (a proxy's prefix is kept before the API's path).",
    });
    expect(http.json).not.toHaveProperty('upstreamCode');
    koodrive.enqueueFault({ status: 200, body: '{"code":1e999,"msg":"overflow"}' });
    const infinite = await call(coldHandler(), '/allocation');
    expect(infinite.json.detail).toBe(
      'KooDrive answered an error whose `code` is Infinity (a number), not a string or a finite number: overflow',
    );
    expect(infinite.json).not.toHaveProperty('upstreamCode');
    // A number is a code: reported as text.
    koodrive.enqueueFault({ status: 200, body: { code: 13000201, msg: 'inner server invoke failure' } });
    expect((await call(coldHandler(), '/allocation')).json).toMatchObject({ upstreamCode: '13000201' });
  });

  it('502 UPSTREAM_ERROR for an HTTP 200 whose code is null, saying so rather than that it is missing', async () => {
    koodrive.enqueueFault({
      status: 200,
      body: { code: null, msg: 'ok', data: { type: 0, allocateCapacity: 1, totalCapacity: 2 } },
    });
    const response = await call(coldHandler(), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(response.json.detail).toBe(
      "KooDrive answered in an unexpected shape: the answer's `code` is null, neither 0 (success) nor an error code",
    );
    expect(response.json).not.toHaveProperty('upstreamCode');
  });

  it('502 UPSTREAM_ERROR for a body that is not JSON, pointing at the endpoint', async () => {
    koodrive.enqueueFault({ status: 200, body: '<html>maintenance</html>' });
    const response = await call(coldHandler(), '/allocation');
    expect(response.json.code).toBe('UPSTREAM_ERROR');
    expect(response.json.detail).toMatch(
      /^KooDrive answered HTTP 200 with a body that is not a JSON object: most likely something other than KooDrive's API answered .* check that KOODRIVE_BASE_URL names KooDrive's API/,
    );
  });

  it('502 UPSTREAM_ERROR after the attempts when KooDrive keeps answering 5xx, saying what to do', async () => {
    for (let i = 0; i < 3; i++) koodrive.enqueueFault({ status: 503 });
    const response = await call(coldHandler(), '/allocation');
    expect(response.json).toMatchObject({ code: 'UPSTREAM_ERROR', upstreamCode: '13000201' });
    expect(response.json.detail).toBe(
      "KooDrive answered HTTP 503. All 3 attempts failed. KooDrive is failing on its side: check the vendor's status; retrying later is safe (the call only reads).",
    );
    expect(koodrive.requests).toHaveLength(3);
  });

  it('504 UPSTREAM_TIMEOUT when no attempt is answered in KOODRIVE_TIMEOUT_MS', async () => {
    for (let i = 0; i < 3; i++) koodrive.enqueueFault({ delayMs: 2_000 });
    const response = await call(coldHandler({ KOODRIVE_TIMEOUT_MS: '150' }), '/allocation');
    expect(response.statusCode).toBe(504);
    expect(response.json.code).toBe('UPSTREAM_TIMEOUT');
    expect(String(response.json.detail)).toContain('150 ms');
    // The simulator records an abandoned request when the client drops it; wait for the last one.
    await vi.waitFor(() => expect(koodrive.requests).toHaveLength(3));
    expect(koodrive.requests.every((r) => r.status === 0)).toBe(true);
  });
});

describe("the invocation's time limit", () => {
  it('504 UPSTREAM_TIMEOUT problem+json before Lambda would time out, retries cut short', async () => {
    for (let i = 0; i < 3; i++) koodrive.enqueueFault({ delayMs: 10_000 });
    // 1.4 s left, 1 s of it kept for answering: the 5 s attempt is cut to ~400 ms and not retried.
    const response = await call(
      coldHandler({ KOODRIVE_TIMEOUT_MS: '5000' }),
      '/allocation',
      undefined,
      1_400,
    );
    expect(response.statusCode).toBe(504);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(response.json.code).toBe('UPSTREAM_TIMEOUT');
    expect(String(response.json.detail)).toMatch(/ms left in this invocation/);
    await vi.waitFor(() => expect(koodrive.requests).toHaveLength(1));
  });

  it('503 CREDENTIALS_UNAVAILABLE in time when Secrets Manager accepts the connection and never answers', async () => {
    const silent = await startSilentServer();
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = silent.url;
    try {
      // 2.5 s left, 1 s of it kept for answering; the SDK alone would wait 3 × 5 s (and the test time out).
      const response = await call(coldHandler(), '/tenants/acme/allocation', 'acme', 2_500);
      expect(response.statusCode).toBe(503);
      expect(response.headers?.['content-type']).toBe('application/problem+json');
      expect(response.json.code).toBe('CREDENTIALS_UNAVAILABLE');
      expect(String(response.json.detail)).toMatch(
        /^Secrets Manager did not answer for tenant 'acme' \(secret 'koodrive\/acme'\) within the \d+ ms/,
      );
      // No wall-clock bound on the answer (a loaded machine could miss one): the read was limited to
      // what was left less the second kept for answering.
      const budgetMs = Number(/within the (\d+) ms/.exec(String(response.json.detail))?.[1]);
      expect(budgetMs).toBeGreaterThan(0);
      expect(budgetMs).toBeLessThanOrEqual(1_500);
      expect(silent.connections()).toBeGreaterThan(0);
      expect(koodrive.requests).toHaveLength(0);
    } finally {
      process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.url;
      await silent.close();
    }
  });
});

describe('retries, rotation, clock and caching', () => {
  it('retries 5xx, 429 and dropped connections, then succeeds within KOODRIVE_MAX_ATTEMPTS', async () => {
    koodrive.enqueueFault({ status: 500 });
    koodrive.enqueueFault({ status: 429, body: { code: 'throttled', msg: 'slow down' } });
    koodrive.enqueueFault({ reset: true });
    const response = await call(coldHandler({ KOODRIVE_MAX_ATTEMPTS: '4' }), '/allocation');
    expect(response.statusCode).toBe(200);
    expect(koodrive.requests.map((r) => r.status)).toEqual([500, 429, 0, 200]);
  });

  it('stops at KOODRIVE_MAX_ATTEMPTS', async () => {
    for (let i = 0; i < 5; i++) koodrive.enqueueFault({ status: 502 });
    const response = await call(coldHandler({ KOODRIVE_MAX_ATTEMPTS: '2' }), '/allocation');
    expect(response.statusCode).toBe(502);
    expect(koodrive.requests).toHaveLength(2);
  });

  it('picks up a secret rotated while warm: one refetch, then success', async () => {
    const handler = coldHandler();
    expect((await call(handler, '/allocation')).statusCode).toBe(200);
    const rotated = { ...ACME, appSecret: 'rotated-secret-value-5d4c' };
    koodrive.setApp(rotated);
    secrets.setSecret('koodrive/acme', secretJson(rotated));
    const response = await call(handler, '/allocation');
    expect(response.statusCode).toBe(200);
    expect(koodrive.requests.map((r) => r.outcome)).toEqual(['ok', 'rejected', 'ok']);
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
    expect((await call(handler, '/allocation')).statusCode).toBe(200);
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
  });

  it('reads a refused secret again at most once per 30 s: 20 refused calls, 2 reads', async () => {
    secrets.setSecret('koodrive/acme', secretJson({ ...ACME, appSecret: 'stale-secret-value' }));
    const handler = coldHandler();
    for (let i = 0; i < 20; i++) {
      const response = await call(handler, '/allocation');
      expect(response.statusCode).toBe(502);
      expect(response.json).toMatchObject({ code: 'UPSTREAM_REJECTED', upstreamCode: 'APIGW.0303' });
      expect(String(response.json.detail)).toMatch(
        i === 0
          ? /^KooDrive refused the credentials of tenant 'acme' \(secret 'koodrive\/acme', HTTP 401\), also on a second try/
          : /^KooDrive refused the credentials of tenant 'acme' \(secret 'koodrive\/acme', HTTP 401\); the secret was read again less than 30 s ago/,
      );
    }
    // The first call: read, refused, read again, refused. The others: refused once, not read again.
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
    expect(koodrive.requests).toHaveLength(21);
  });

  it('shares one read of a refused secret among concurrent calls', async () => {
    secrets.setSecret('koodrive/acme', secretJson({ ...ACME, appSecret: 'stale-secret-value' }));
    const handler = coldHandler();
    const responses = await Promise.all(Array.from({ length: 10 }, () => call(handler, '/allocation')));
    expect(responses.map((r) => r.json.code)).toEqual(Array(10).fill('UPSTREAM_REJECTED'));
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
  });

  it('picks up a rotation while warm after refused calls without reading the secret again for each', async () => {
    const handler = coldHandler();
    expect((await call(handler, '/allocation')).statusCode).toBe(200);
    const rotated = { ...ACME, appSecret: 'rotated-secret-value-5d4c' };
    koodrive.setApp(rotated);
    secrets.setSecret('koodrive/acme', secretJson(rotated));
    // Ten concurrent calls signed with the cached, now old, secret: one read serves them all.
    const responses = await Promise.all(Array.from({ length: 10 }, () => call(handler, '/allocation')));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(200));
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
  });

  it("learns KooDrive's clock from a refusal when the local clock runs fast", async () => {
    koodrive.setClockOffsetMs(-90_000);
    const handler = coldHandler();
    const first = await call(handler, '/allocation');
    expect(first.statusCode).toBe(200);
    expect(koodrive.requests.map((r) => r.outcome)).toEqual(['rejected', 'ok']);
    koodrive.reset();
    expect((await call(handler, '/allocation')).statusCode).toBe(200);
    expect(koodrive.requests.map((r) => r.outcome)).toEqual(['ok']);
  });

  it('reuses one keep-alive connection to KooDrive across warm invocations', async () => {
    const handler = coldHandler();
    for (let i = 0; i < 20; i++) expect((await call(handler, '/allocation')).statusCode).toBe(200);
    expect(koodrive.requests).toHaveLength(20);
    // undici may open a spare connection at first; what matters is that calls do not each open one.
    expect(koodrive.connections).toBeLessThanOrEqual(2);
  });

  it('reads Secrets Manager once for many warm calls', async () => {
    const handler = coldHandler();
    for (let i = 0; i < 20; i++) expect((await call(handler, '/allocation')).statusCode).toBe(200);
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(1);
    expect(koodrive.requests).toHaveLength(20);
  });

  it('shares one Secrets Manager read among concurrent cold calls', async () => {
    const handler = coldHandler();
    const responses = await Promise.all(Array.from({ length: 10 }, () => call(handler, '/allocation')));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(200));
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(1);
    expect(new Set(responses.map((r) => r.headers?.['x-trace-id'])).size).toBe(10);
  });

  it('reads the secret again once SECRET_CACHE_SECONDS is 0', async () => {
    const handler = coldHandler({ SECRET_CACHE_SECONDS: '0' });
    await call(handler, '/allocation');
    await call(handler, '/allocation');
    expect(secrets.getSecretValueCalls('koodrive/acme')).toBe(2);
  });
});

describe('nothing secret leaves the function', () => {
  const output = { current: undefined as ReturnType<typeof captureOutput> | undefined };
  afterEach(() => {
    output.current?.stop();
    process.env.POWERTOOLS_LOG_LEVEL = savedEnv.POWERTOOLS_LOG_LEVEL;
  });

  it('writes one structured line per served request, with its tenant, trace id, status and attempts', async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    const handler = coldHandler();
    const capture = captureOutput();
    output.current = capture;
    const response = await call(handler, '/allocation');
    capture.stop();
    const lines = capture.records();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'INFO',
      message: 'request completed',
      tenantId: 'acme',
      traceId: response.headers?.['x-trace-id'],
      status: 200,
      attempts: 1,
      route: 'GET /allocation',
    });
    expect(lines[0]?.function_request_id).toEqual(expect.any(String));
  });

  it('names the tenant on the failure lines of a request whose tenant is known, whatever failed next', async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    /** The tenantId of each line of one request (its failure line, then 'request completed'). */
    const tenantsLogged = async (
      handler: ReturnType<typeof coldHandler>,
      path: string,
      tenantId?: string,
    ) => {
      const capture = captureOutput();
      output.current = capture;
      const response = await call(handler, path, tenantId);
      capture.stop();
      const lines = capture.records();
      return { status: response.statusCode, lines: lines.map((line) => [line.message, line.tenantId]) };
    };
    // A bad setting of KooDrive calls: the default tenant is still known from KOODRIVE_TENANTS.
    const badSetting = coldHandler({ KOODRIVE_TIMEOUT_MS: 'abc' });
    expect(await tenantsLogged(badSetting, '/allocation')).toEqual({
      status: 500,
      lines: [
        ['request failed', 'acme'],
        ['request completed', 'acme'],
      ],
    });
    expect(await tenantsLogged(badSetting, '/tenants/beta/allocation', 'beta')).toEqual({
      status: 500,
      lines: [
        ['request failed', 'beta'],
        ['request completed', 'beta'],
      ],
    });
    // The tenant the route names, also when KOODRIVE_TENANTS cannot be read, or does not list it.
    const badTenants = coldHandler({ KOODRIVE_TENANTS: 'not a tenant list' });
    expect(await tenantsLogged(badTenants, '/tenants/beta/allocation', 'beta')).toMatchObject({
      status: 500,
      lines: [
        ['request failed', 'beta'],
        ['request completed', 'beta'],
      ],
    });
    expect(await tenantsLogged(coldHandler(), '/tenants/zeta/allocation', 'zeta')).toEqual({
      status: 404,
      lines: [
        ['request refused', 'zeta'],
        ['request completed', 'zeta'],
      ],
    });
  });

  it("warns of each retried attempt with why it failed: the status, KooDrive's code and the trace id", async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
    // The reset first: on a fresh connection (a reused one that is reset is re-sent within the attempt).
    koodrive.enqueueFault({ reset: true });
    koodrive.enqueueFault({ status: 503 });
    const capture = captureOutput();
    output.current = capture;
    const response = await call(coldHandler(), '/tenants/acme/allocation', 'acme');
    capture.stop();
    expect(response.statusCode).toBe(200);
    const traceId = response.headers?.['x-trace-id'];
    const warnings = capture.records().filter((line) => line.message === 'KooDrive attempt failed');
    // A flap that ends in success leaves these lines as its only record.
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 'WARN',
        tenantId: 'acme',
        attempt: 1,
        outcome: 'retryable',
        reason: 'UPSTREAM_ERROR',
        networkError: 'ECONNRESET',
        koodriveTraceId: traceId,
      }),
      expect.objectContaining({
        attempt: 2,
        reason: 'UPSTREAM_ERROR',
        httpStatus: 503,
        upstreamCode: '13000201',
        koodriveTraceId: traceId,
      }),
    ]);
    expect(warnings[0]).not.toHaveProperty('httpStatus');
  });

  it('redacts a signature or the secret that KooDrive echoes in its message, in the answer and the ERROR log', async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    const signature = 'c0ffee'.repeat(10).concat('beef');
    koodrive.enqueueFault({
      status: 200,
      body: {
        code: 13000101,
        msg: `bad request HMAC-SHA256 AppId=acme-app,SignedHeaders=host;x-date;x-user-id,Signature=${signature} (key ${ACME.appSecret})`,
      },
    });
    const capture = captureOutput();
    output.current = capture;
    const response = await call(coldHandler(), '/allocation');
    capture.stop();
    expect(response.statusCode).toBe(502);
    expect(response.json).toMatchObject({ code: 'UPSTREAM_ERROR', upstreamCode: '13000101' });
    expect(String(response.json.upstreamMessage)).toMatch(/^bad request \[redacted\]/);
    const logs = capture.text();
    expect(logs).toContain('"level":"ERROR"');
    for (const text of [logs, String(response.body)]) {
      expect(text).not.toContain(signature);
      expect(text).not.toContain(ACME.appSecret);
      expect(text).not.toMatch(/HMAC-SHA256|Signature=/);
    }
  });

  it('never writes a secret, a signature or a vendor header to logs or answers', async () => {
    // Every level is written here, so that a secret at any level would be caught.
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    const capture = captureOutput();
    output.current = capture;
    const bodies: string[] = [];
    const handler = coldHandler();
    bodies.push(String((await call(handler, '/allocation')).body));
    koodrive.enqueueFault({ status: 500 });
    bodies.push(String((await call(handler, '/allocation')).body));
    secrets.setSecret('koodrive/acme', secretJson({ ...ACME, appSecret: 'wrong-secret-value-0000' }));
    const rejected = await call(coldHandler(), '/allocation');
    bodies.push(String(rejected.body));
    bodies.push(String((await call(handler, '/tenants/partial/allocation', 'partial')).body));
    bodies.push(String((await call(handler, '/tenants/beta/allocation', 'beta')).body));
    capture.stop();

    const logs = capture.text();
    const everything = `${logs}\n${bodies.join('\n')}`;
    expect(logs).toContain('request completed');
    // DEBUG adds each KooDrive attempt, the successful ones too.
    expect(logs).toContain('KooDrive attempt succeeded');
    expect(logs).toContain('"tenantId":"acme"');
    for (const secret of [
      ACME.appSecret,
      BETA.appSecret,
      'wrong-secret-value-0000',
      'partial-secret-value-77',
    ]) {
      expect(everything).not.toContain(secret);
    }
    expect(everything).not.toMatch(/HMAC-SHA256 AppId|Signature=|[0-9a-f]{64}/i);
    expect(everything.toLowerCase()).not.toContain('x-user-id');
    expect(everything.toLowerCase()).not.toContain('authorization');
  });
});
