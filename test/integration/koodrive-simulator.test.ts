import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signRequest } from '../../lib/koodrive/sign.ts';
import { DEMO_APP } from '../../local/demo.ts';
import {
  ALLOCATION_PATH,
  DEFAULT_ALLOCATION_DATA,
  type KooDriveSimulator,
  type SimulatorApp,
  startKooDriveSimulator,
} from '../../local/koodrive-simulator.ts';

const APP: SimulatorApp = {
  appId: 'app-one',
  appSecret: 'secret-one-for-tests',
  userId: '1505084218764547200',
};
const OTHER: SimulatorApp = {
  appId: 'app-two',
  appSecret: 'secret-two-for-tests',
  userId: '42',
  data: [{ type: 1, allocateCapacity: 5, totalCapacity: 10 }],
};
const TRACE_ID = 'a'.repeat(58);
const MINUTE = 60_000;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  agent?: Agent;
  base?: string;
}

let sim: KooDriveSimulator;

function send(options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${options.base ?? sim.url}${options.path ?? ALLOCATION_PATH}`,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Headers of a request signed for `app`; `at` is the signing time in epoch ms (default: now). */
function signedHeaders(app: SimulatorApp, at = Date.now(), base = sim.url): Record<string, string> {
  return {
    ...signRequest({
      method: 'GET',
      url: `${base}${ALLOCATION_PATH}`,
      appId: app.appId,
      appSecret: app.appSecret,
      userId: app.userId,
      signingDate: new Date(at),
    }).headers,
  };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function failureOf(promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  sim = await startKooDriveSimulator({ port: 0, apps: [APP, OTHER] });
});

afterAll(async () => {
  await sim.close();
});

beforeEach(() => {
  sim.reset();
  sim.setClockOffsetMs(0);
  sim.setLatencyMs(0);
  sim.setApp(APP);
});

describe('KooDrive simulator: answers', () => {
  it('answers a request signed with signRequest with the app data', async () => {
    const reply = await send({ headers: signedHeaders(APP) });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(reply.json).toEqual({ data: DEFAULT_ALLOCATION_DATA, code: 0, msg: 'Operation successful.' });
    expect(sim.requests).toHaveLength(1);
    expect(sim.requests[0]).toMatchObject({
      appId: 'app-one',
      method: 'GET',
      path: ALLOCATION_PATH,
      status: 200,
      outcome: 'ok',
    });
    expect(JSON.stringify(sim.requests)).not.toContain('Signature=');
  });

  it('answers each app with its own data, and setData changes it', async () => {
    const other = await send({ headers: signedHeaders(OTHER) });
    expect(other.json).toMatchObject({ data: OTHER.data, code: 0 });
    sim.setData(APP.appId, { type: '2', allocateCapacity: '7', totalCapacity: '9' });
    const changed = await send({ headers: signedHeaders(APP) });
    expect(changed.json).toMatchObject({ data: { type: '2', allocateCapacity: '7', totalCapacity: '9' } });
    sim.setApp({ ...APP, appSecret: 'rotated' });
    const kept = await send({ headers: signedHeaders({ ...APP, appSecret: 'rotated' }) });
    expect(kept.json).toMatchObject({ data: { type: '2' } });
  });

  it('serves the demo tenant its array of three spaces', async () => {
    sim.setApp(DEMO_APP);
    const reply = await send({ headers: signedHeaders(DEMO_APP) });
    sim.removeApp(DEMO_APP.appId);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ code: 0, data: [{ type: '0' }, { type: '1' }, { type: '2' }] });
  });

  it('accepts the worked example of API.md (independent of the signer)', async () => {
    const exampleApp = {
      appId: 'worked-example',
      appSecret: 'dummy-secret-NOT-FROM-DOCS',
      userId: '1505084218764547200',
    };
    sim.setApp(exampleApp);
    sim.setClockOffsetMs(Date.parse('2024-09-09T03:35:00Z') - Date.now());
    const reply = await send({
      headers: {
        Host: '10.32.45.165',
        'X-Date': '20240909T033325Z',
        'X-User-Id': '1505084218764547200',
        Authorization:
          'HMAC-SHA256 AppId=worked-example,SignedHeaders=host;x-date;x-user-id,Signature=248eaef85b86e7fdbdac027d9ac3fd367b07a0f27f9881e7e53dfbce35794fed',
      },
    });
    sim.removeApp(exampleApp.appId);
    expect(reply.status).toBe(200);
  });

  it('answers other paths and methods with 404 bad request', async () => {
    const path = await send({ path: '/koodrive/ose/v1/space/usage/overview', headers: signedHeaders(APP) });
    expect(path.status).toBe(404);
    expect(path.json).toEqual({ code: 13000101, msg: 'bad request' });
    const method = await send({ method: 'POST', headers: signedHeaders(APP) });
    expect(method.status).toBe(404);
    expect(sim.requests.map((r) => r.outcome)).toEqual(['invalid', 'invalid']);
  });

  it('checks the X-Traceid length after authentication', async () => {
    const bad = await send({ headers: { ...signedHeaders(APP), 'X-Traceid': 'short' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ code: '13000102', msg: 'parameter verification failed' });
    const good = await send({ headers: { ...signedHeaders(APP), 'X-Traceid': TRACE_ID } });
    expect(good.status).toBe(200);
    expect(sim.requests[1]?.traceId).toBe(TRACE_ID);
  });

  it('sends a Date header from its own clock', async () => {
    sim.setClockOffsetMs(-2 * 60 * MINUTE);
    const reply = await send({ headers: signedHeaders(APP) });
    const date = Date.parse(String(reply.headers.date));
    expect(Math.abs(date - (Date.now() - 2 * 60 * MINUTE))).toBeLessThan(MINUTE);
  });
});

describe('KooDrive simulator: authentication', () => {
  function expectRefusal(reply: Reply): void {
    expect(reply.status).toBe(401);
    expect(reply.json).toMatchObject({
      error_code: 'APIGW.0303',
      error_msg: expect.stringMatching(/^Incorrect app authentication information: /),
    });
  }

  it('refuses a wrong secret without revealing the expected signature', async () => {
    const reply = await send({ headers: signedHeaders({ ...APP, appSecret: 'not-the-secret' }) });
    expectRefusal(reply);
    const expected = signedHeaders(APP).Authorization?.split('Signature=')[1] ?? 'missing';
    expect(reply.text).not.toContain(expected.slice(0, 16));
    expect(sim.requests[0]).toMatchObject({ appId: 'app-one', status: 401, outcome: 'rejected' });
  });

  it('refuses a missing or unparseable Authorization, an unknown app, and a foreign user id', async () => {
    const { Authorization, ...unsigned } = signedHeaders(APP);
    expectRefusal(await send({ headers: unsigned }));
    expectRefusal(await send({ headers: { ...unsigned, Authorization: `Bearer ${'x'.repeat(20)}` } }));
    expectRefusal(await send({ headers: signedHeaders({ ...APP, appId: 'nobody' }) }));
    expectRefusal(await send({ headers: signedHeaders({ ...APP, userId: '999' }) }));
    expect(Authorization).toMatch(/^HMAC-SHA256 /);
  });

  it('refuses a signature that leaves out a required header', async () => {
    const headers = signedHeaders(APP);
    const narrowed = (headers.Authorization ?? '').replace(
      'SignedHeaders=host;x-date;x-user-id',
      'SignedHeaders=host;x-date',
    );
    expectRefusal(await send({ headers: { ...headers, Authorization: narrowed } }));
  });

  it('refuses a request whose Host differs from the signed one', async () => {
    const headers = signedHeaders(APP, Date.now(), 'http://koodrive.example');
    const { Host: _signedHost, ...rest } = headers;
    expectRefusal(await send({ headers: rest }));
    const ok = await send({ headers });
    expect(ok.status).toBe(200);
  });

  it('uses a rotated secret at once', async () => {
    sim.setApp({ ...APP, appSecret: 'rotated-secret' });
    expectRefusal(await send({ headers: signedHeaders(APP) }));
    const reply = await send({ headers: signedHeaders({ ...APP, appSecret: 'rotated-secret' }) });
    expect(reply.status).toBe(200);
  });

  it('refuses an X-Date later than its clock, even by a second', async () => {
    sim.setClockOffsetMs(-10 * MINUTE);
    const simulatorNow = Date.now() - 10 * MINUTE;
    const nextSecond = Math.floor(simulatorNow / 1000) * 1000 + 2000;
    const reply = await send({ headers: signedHeaders(APP, nextSecond) });
    expectRefusal(reply);
    expect(reply.text).toContain('time out of range');
    const now = await send({ headers: signedHeaders(APP) });
    expectRefusal(now);
    const inStep = await send({ headers: signedHeaders(APP, simulatorNow) });
    expect(inStep.status).toBe(200);
  });

  it('refuses an X-Date 16 minutes old and accepts one 14 minutes old', async () => {
    const old = await send({ headers: signedHeaders(APP, Date.now() - 16 * MINUTE) });
    expectRefusal(old);
    expect(old.text).toContain('time out of range');
    const recent = await send({ headers: signedHeaders(APP, Date.now() - 14 * MINUTE) });
    expect(recent.status).toBe(200);
  });

  it('refuses a malformed X-Date as out of range', async () => {
    const headers = signedHeaders(APP);
    const reply = await send({ headers: { ...headers, 'X-Date': '2024-09-09T03:33:25Z' } });
    expectRefusal(reply);
    expect(reply.text).toContain('time out of range');
  });
});

describe('KooDrive simulator: faults', () => {
  it('answers the default fault with 500 and the vendor error body, once', async () => {
    sim.enqueueFault({});
    const faulted = await send({ headers: signedHeaders(APP) });
    expect(faulted.status).toBe(500);
    expect(faulted.json).toEqual({ code: 13000201, msg: 'inner server invoke failure' });
    expect(faulted.headers.date).toBeDefined();
    const next = await send({ headers: signedHeaders(APP) });
    expect(next.status).toBe(200);
    expect(sim.requests.map((r) => r.outcome)).toEqual(['fault', 'ok']);
  });

  it('answers a custom status, body and headers in FIFO order', async () => {
    sim.enqueueFault({ status: 429, body: 'slow down', headers: { 'Retry-After': '1' } });
    sim.enqueueFault({ status: 400, body: { code: 13000301, msg: 'space not found or abnormal' } });
    const first = await send({ headers: signedHeaders(APP) });
    expect(first.status).toBe(429);
    expect(first.text).toBe('slow down');
    expect(first.headers['retry-after']).toBe('1');
    const second = await send({ headers: signedHeaders(APP) });
    expect(second.status).toBe(400);
    expect(second.json).toEqual({ code: 13000301, msg: 'space not found or abnormal' });
  });

  it('applies answer faults only after the signature is verified', async () => {
    sim.enqueueFault({ status: 503 });
    const refused = await send({ headers: signedHeaders({ ...APP, appSecret: 'wrong' }) });
    expect(refused.status).toBe(401);
    const faulted = await send({ headers: signedHeaders(APP) });
    expect(faulted.status).toBe(503);
  });

  it('applies a fault with appId only to that app', async () => {
    sim.enqueueFault({ status: 502, appId: OTHER.appId });
    const mine = await send({ headers: signedHeaders(APP) });
    expect(mine.status).toBe(200);
    const theirs = await send({ headers: signedHeaders(OTHER) });
    expect(theirs.status).toBe(502);
  });

  it('drops the connection for a reset fault', async () => {
    sim.enqueueFault({ reset: true });
    const error = await failureOf(
      send({ headers: signedHeaders(APP), agent: new Agent({ keepAlive: false }) }),
    );
    expect(error.code).toMatch(/^(ECONNRESET|EPIPE)$/);
    expect(sim.requests[0]).toMatchObject({ status: 0, outcome: 'fault' });
    const next = await send({ headers: signedHeaders(APP) });
    expect(next.status).toBe(200);
  });

  it('delays the answer of a delayMs fault, then answers its status', async () => {
    sim.enqueueFault({ delayMs: 50, status: 504 });
    const reply = await send({ headers: signedHeaders(APP) });
    expect(reply.status).toBe(504);
  });

  it('adds latency to the answers of requests that arrive while it is set', async () => {
    sim.setLatencyMs(1000);
    const slow = send({ headers: signedHeaders(APP), agent: new Agent({ keepAlive: false }) }).then(
      () => 'slow',
    );
    await waitUntil(() => sim.inFlight === 1);
    sim.setLatencyMs(0);
    const fast = send({ headers: signedHeaders(APP), agent: new Agent({ keepAlive: false }) }).then(
      () => 'fast',
    );
    const order: string[] = [];
    await Promise.all([slow, fast].map((p) => p.then((name) => order.push(name))));
    expect(order).toEqual(['fast', 'slow']);
    expect(sim.requests.map((r) => r.status)).toEqual([200, 200]);
  });
});

describe('KooDrive simulator: close', () => {
  it('closes promptly with an idle keep-alive connection and a request waiting on a long delay', async () => {
    const own = await startKooDriveSimulator({ apps: [APP] });
    const agent = new Agent({ keepAlive: true });
    const first = await send({ base: own.url, headers: signedHeaders(APP, Date.now(), own.url), agent });
    expect(first.status).toBe(200);
    own.enqueueFault({ delayMs: 10 * MINUTE });
    const waiting = failureOf(
      send({ base: own.url, headers: signedHeaders(APP, Date.now(), own.url), agent }),
    );
    await waitUntil(() => own.inFlight === 1);
    await own.close();
    const error = await waiting;
    expect(error.code).toMatch(/^(ECONNRESET|EPIPE)$/);
    agent.destroy();
  });
});
