import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CredentialsProvider } from '../../lib/credentials.ts';
import {
  ConfigurationError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../../lib/errors.ts';
import {
  type AttemptReport,
  createKooDriveClient,
  type KooDriveClientOptions,
  unreachableHint,
} from '../../lib/koodrive/client.ts';
import { parseSigningDate } from '../../lib/koodrive/sign.ts';
import { createTransport } from '../../lib/koodrive/transport.ts';
import { type KooDriveSimulator, startKooDriveSimulator } from '../../local/koodrive-simulator.ts';

const APP = { appId: 'client-app', appSecret: 'client-secret-value', userId: '7' };
const TENANT = { tenantId: 'acme', secretId: 'koodrive/acme' };

let simulator: KooDriveSimulator;

/** Hands out `values` one read after another (the last one again), a refetch after a refusal counting as a read. */
function credentialsFrom(
  ...values: Array<typeof APP>
): CredentialsProvider & { reads: Array<{ refetch: boolean }>; refetchAllowed: boolean } {
  const reads: Array<{ refetch: boolean }> = [];
  const next = () => {
    const value = values[Math.min(reads.length - 1, values.length - 1)];
    if (value === undefined) throw new Error('no credentials');
    return value;
  };
  return {
    reads,
    refetchAllowed: true,
    async get() {
      reads.push({ refetch: false });
      return next();
    },
    async refetchAfterRefusal() {
      if (!this.refetchAllowed) return undefined;
      reads.push({ refetch: true });
      return next();
    },
    clear() {},
  };
}

function client(overrides: Partial<KooDriveClientOptions> = {}) {
  const delays: number[] = [];
  const instance = createKooDriveClient({
    credentials: credentialsFrom(APP),
    defaultBaseUrl: simulator.url,
    timeoutMs: 1_000,
    maxAttempts: 4,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...overrides,
  });
  return { instance, delays };
}

beforeAll(async () => {
  simulator = await startKooDriveSimulator({ apps: [APP] });
});
afterAll(async () => {
  await simulator.close();
});
beforeEach(() => {
  simulator.reset();
  simulator.setClockOffsetMs(0);
});

describe('KooDrive client', () => {
  it('backs off exponentially with full jitter between retries', async () => {
    for (let i = 0; i < 3; i++) simulator.enqueueFault({ status: 500 });
    const { instance, delays } = client({ baseDelayMs: 100, maxDelayMs: 300 });
    const response = await instance.getSpaceAllocation(TENANT);
    expect(response.attempts).toBe(4);
    // random() = 0.5 of the ceilings 100, 200, min(300, 400).
    expect(delays).toEqual([50, 100, 150]);
  });

  it('retries a 429 or 5xx whose error page is over the size limit, and refetches on such a 401, by status', async () => {
    const page = `<html>${'x'.repeat(1_100_000)}</html>`;
    for (const status of [503, 429, 502, 401]) {
      simulator.enqueueFault({ status, body: page });
      const { instance } = client();
      const response = await instance.getSpaceAllocation(TENANT);
      expect(response.attempts, String(status)).toBe(2);
    }
    // A large 200 is still refused whole, saying how large and what status.
    simulator.enqueueFault({ status: 200, body: page });
    const refused = await client()
      .instance.getSpaceAllocation(TENANT)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamError);
    expect((refused as Error).message).toMatch(/more than the 1048576-byte limit\. \(HTTP 200\)$/);
  });

  it('waits at least what Retry-After asks on 429, capped by maxDelayMs', async () => {
    simulator.enqueueFault({ status: 429, headers: { 'Retry-After': '1' } });
    const { instance, delays } = client({ maxDelayMs: 2_000 });
    await instance.getSpaceAllocation(TENANT);
    expect(delays).toEqual([1_000]);
  });

  it("honours a Retry-After given as an HTTP date, counted from the answer's Date, capped by maxDelayMs", async () => {
    const date = Date.UTC(2026, 10, 28, 4, 0, 0);
    const at = (ms: number) => new Date(date + ms).toUTCString();
    simulator.enqueueFault({ status: 503, headers: { Date: at(0), 'Retry-After': at(1_000) } });
    simulator.enqueueFault({ status: 429, headers: { Date: at(0), 'Retry-After': at(60_000) } });
    const { instance, delays } = client({ maxDelayMs: 2_000 });
    await instance.getSpaceAllocation(TENANT);
    expect(delays).toEqual([1_000, 2_000]);
  });

  it("counts a Retry-After date from the server's clock as learned, when the answer carries no Date", async () => {
    // KooDrive's clock runs 10 minutes behind: a refusal's Date teaches it; then a 503 without a Date
    // asks to be retried a second and a half later on that clock, then the answer.
    const behind = -10 * 60_000;
    const answers = [
      (res: ServerResponse) => {
        res.setHeader('Date', new Date(Date.now() + behind).toUTCString());
        res.writeHead(401, { 'content-type': 'application/json' }).end('{}');
      },
      (res: ServerResponse) =>
        res.writeHead(503, { 'retry-after': new Date(Date.now() + behind + 1_500).toUTCString() }).end(''),
      (res: ServerResponse) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"code":0,"data":[{"type":0,"allocateCapacity":"1","totalCapacity":"2"}]}'),
    ];
    const server = createServer((_req, res) => {
      res.sendDate = false;
      (answers.shift() ?? answers[0])?.(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const { instance, delays } = client({ defaultBaseUrl: `http://127.0.0.1:${port}`, maxDelayMs: 2_000 });
      await instance.getSpaceAllocation(TENANT);
      // Both Dates have whole seconds (the one the offset was learned from, and Retry-After's): 0.5 to
      // 2.5 s on KooDrive's clock, capped at maxDelayMs; on ours the date would be long past (no wait
      // beyond the ~50 ms jitter).
      expect(delays.at(-1)).toBeGreaterThanOrEqual(400);
      expect(delays.at(-1)).toBeLessThanOrEqual(2_000);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('signs with a fresh X-Date stamped a few seconds in the past and sends the trace id given', async () => {
    const fixed = Date.UTC(2026, 10, 28, 4, 0, 10);
    simulator.setClockOffsetMs(fixed - Date.now());
    const { instance } = client({ now: () => fixed });
    const traceId = 'x'.repeat(58);
    const response = await instance.getSpaceAllocation(TENANT, { traceId });
    expect(response.traceId).toBe(traceId);
    expect(simulator.requests[0]).toMatchObject({ xDate: '20261128T040005Z', traceId });
  });

  it('dates the answer by when KooDrive was asked for it: the start of the attempt that succeeded', async () => {
    const clock = { now: Date.UTC(2026, 10, 28, 4, 0, 10) };
    simulator.setClockOffsetMs(clock.now - Date.now());
    simulator.enqueueFault({ status: 503 });
    const real = createTransport();
    const startedAt: number[] = [];
    const { instance } = client({
      now: () => clock.now,
      // Each exchange takes 700 ms of the client's clock; each backoff 1 s (below).
      transport: async (request) => {
        startedAt.push(clock.now);
        const response = await real(request);
        clock.now += 700;
        return response;
      },
      sleep: async () => {
        clock.now += 1_000;
      },
    });
    const response = await instance.getSpaceAllocation(TENANT);
    expect(response.attempts).toBe(2);
    expect(startedAt).toEqual([Date.UTC(2026, 10, 28, 4, 0, 10), Date.UTC(2026, 10, 28, 4, 0, 11, 700)]);
    expect(response.fetchedAt.toISOString()).toBe('2026-11-28T04:00:11.700Z');
  });

  it('keeps the path of the base URL (a proxy prefix) in the request and in the signature', async () => {
    const proxied = await startKooDriveSimulator({ apps: [APP], basePath: '/prefix/kd' });
    try {
      const { instance } = client({ defaultBaseUrl: `${proxied.url}/prefix/kd` });
      const response = await instance.getSpaceAllocation(TENANT);
      expect(response.attempts).toBe(1);
      // The simulator verifies the signature over the path it received: the prefix was signed too.
      expect(proxied.requests).toMatchObject([
        { path: '/prefix/kd/koodrive/ose/v1/space/allocation/get', outcome: 'ok' },
      ]);
      // A trailing slash on the base URL makes no double slash.
      const slashed = client({ defaultBaseUrl: `${proxied.url}/prefix/kd/` }).instance;
      await slashed.getSpaceAllocation(TENANT);
      expect(proxied.requests[1]).toMatchObject({ path: '/prefix/kd/koodrive/ose/v1/space/allocation/get' });
    } finally {
      await proxied.close();
    }
  });

  describe("a refusal's Date header", () => {
    const refusal = (date: string) => ({
      status: 401,
      body: { error_code: 'APIGW.0303', error_msg: 'Incorrect app authentication information' },
      headers: { Date: date },
    });
    /** X-Date as epoch ms. */
    const xDateOf = (request: { xDate?: string | undefined } | undefined) =>
      parseSigningDate(request?.xDate ?? '')?.getTime() ?? Number.NaN;

    it.each([
      ['a year past 9999', 'Mon, 01 Jan 10001 00:00:00 GMT'],
      ['a bare number', '0'],
      ['garbage with a year', 'garbage 2000'],
      ['a real date decades away', 'Sat, 01 Jan 2000 00:00:00 GMT'],
      ['a date two hours ahead', () => new Date(Date.now() + 2 * 3_600_000).toUTCString()],
      ['an impossible date', 'Mon, 30 Feb 2026 00:00:00 GMT'],
      ['the obsolete RFC 850 form', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ])('is ignored when it is %s: the retry and later calls stamp our own clock', async (_name, date) => {
      simulator.enqueueFault(refusal(typeof date === 'string' ? date : date()));
      const { instance } = client();
      const first = await instance.getSpaceAllocation(TENANT);
      expect(first.attempts).toBe(2);
      const second = await instance.getSpaceAllocation(TENANT);
      expect(second.attempts).toBe(1);
      expect(simulator.requests.map((r) => r.outcome)).toEqual(['fault', 'ok', 'ok']);
      for (const request of simulator.requests) {
        expect(Math.abs(xDateOf(request) - (Date.now() - 5_000))).toBeLessThan(60_000);
      }
    });

    it('is learned when it is an HTTP date within an hour, and forgotten after a refusal without one', async () => {
      // The simulator's clock runs 10 minutes behind ours: an honest Date header, within the bound.
      simulator.setClockOffsetMs(-10 * 60_000);
      const { instance } = client();
      await instance.getSpaceAllocation(TENANT);
      expect(simulator.requests.map((r) => r.outcome)).toEqual(['rejected', 'ok']);
      const learned = xDateOf(simulator.requests[1]);
      expect(Math.abs(learned - (Date.now() - 10 * 60_000 - 5_000))).toBeLessThan(5_000);
      // A refusal whose Date cannot be read (the X-Date 10 minutes behind still passes the simulator,
      // now on our clock, so that the fault answers): the offset is dropped, the retry uses our clock.
      simulator.reset();
      simulator.setClockOffsetMs(0);
      simulator.enqueueFault(refusal('yesterday'));
      await instance.getSpaceAllocation(TENANT);
      expect(simulator.requests.map((r) => r.outcome)).toEqual(['fault', 'ok']);
      expect(Math.abs(xDateOf(simulator.requests[1]) - (Date.now() - 5_000))).toBeLessThan(5_000);
    });
  });

  describe('a request that cannot be signed', () => {
    it('is an UPSTREAM_ERROR, not a RangeError, when the clock is past year 9999; nothing is sent', async () => {
      const { instance } = client({ now: () => Date.UTC(10_000, 0, 2) });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error).not.toBeInstanceOf(RangeError);
      expect(String((error as Error).message)).toMatch(/could not be signed/);
      expect(simulator.requests).toHaveLength(0);
    });

    it('is a CONFIGURATION_ERROR naming the secret when its appId cannot go in a header, never the value', async () => {
      const credentials = credentialsFrom({ ...APP, appId: 'app,with comma' });
      const { instance } = client({ credentials });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(String((error as Error).message)).toContain("'koodrive/acme'");
      expect(String((error as Error).message)).toContain('AppId');
      expect(String((error as Error).message)).not.toContain('app,with comma');
      expect(simulator.requests).toHaveLength(0);
    });

    it('names no KooDrive call in its error, since nothing was sent', async () => {
      const credentials = credentialsFrom({ ...APP, appId: 'app,with comma' });
      const { instance } = client({ credentials });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(simulator.requests).toHaveLength(0);
      expect((error as ConfigurationError).koodriveTraceId).toBeUndefined();
    });

    it.each([
      ['appId', 'acme-app\u200b', 'AppId'],
      ['appId', 'acme-appé', 'AppId'],
      ['userId', '1505084218764547200\u200b', 'user id'],
      ['userId', '✓1505', 'user id'],
    ])(
      'is a CONFIGURATION_ERROR at once, not a network failure retried, when %s holds %j',
      async (field, value, named) => {
        const credentials = credentialsFrom({ ...APP, [field]: value });
        const { instance } = client({ credentials });
        const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigurationError);
        const message = String((error as Error).message);
        expect(message).toContain("'koodrive/acme'");
        expect(message).toContain(named);
        expect(message).toContain('zero-width space');
        expect(message).not.toContain(value);
        expect(simulator.requests).toHaveLength(0);
      },
    );
  });

  it.each([
    [200, '[1,2]'],
    [204, ''],
  ])(
    'names the status it got (%i) when a success answer is not a JSON object, and the endpoint to check',
    async (status, body) => {
      simulator.enqueueFault({ status, body });
      const { instance } = client();
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as Error).message).toBe(
        `KooDrive answered HTTP ${status} with a body that is not a JSON object: most likely something other than KooDrive's API answered at ${new URL(simulator.url).host} (a proxy, a captive portal, a wrong endpoint); check that KOODRIVE_BASE_URL names KooDrive's API, and the network path to it.`,
      );
      expect(simulator.requests).toHaveLength(1);
    },
  );

  it('reads an answer that starts with a UTF-8 byte order mark (RFC 8259 lets a parser ignore it)', async () => {
    simulator.enqueueFault({
      status: 200,
      body: '\uFEFF{"code":0,"msg":"ok","data":{"type":"0","allocateCapacity":"1","totalCapacity":"2"}}',
    });
    const response = await client().instance.getSpaceAllocation(TENANT);
    expect(response.body).toMatchObject({ code: 0, data: { totalCapacity: '2' } });
  });

  it('names where a redirect points (its origin only) and does not follow it with the signed request', async () => {
    const elsewhere = createServer((_req, res) => res.end('{"code":0}'));
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    let followed = 0;
    elsewhere.on('request', () => {
      followed += 1;
    });
    try {
      const target = `http://localhost:${(elsewhere.address() as AddressInfo).port}`;
      simulator.enqueueFault({
        status: 301,
        body: '',
        headers: { Location: `${target}/koodrive/ose/v1/space/allocation/get?token=abc123` },
      });
      const error = await client()
        .instance.getSpaceAllocation(TENANT)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      const message = (error as Error).message;
      expect(message).toMatch(/^KooDrive answered HTTP 301, a redirect to http:\/\/localhost:\d+ /);
      expect(message).toContain('KOODRIVE_BASE_URL');
      expect(message).not.toContain('abc123');
      expect(message).not.toContain('/koodrive/ose');
      expect(followed).toBe(0);
    } finally {
      elsewhere.close();
    }
  });

  it("names the secret's baseUrl as the endpoint to check when the secret holds one", async () => {
    simulator.enqueueFault({ status: 200, body: '<html>Sign in to the network</html>' });
    const { instance } = client({
      credentials: credentialsFrom({ ...APP, baseUrl: simulator.url } as typeof APP),
      defaultBaseUrl: 'https://koodrive.invalid',
    });
    const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /not a JSON object: .* check that the baseUrl of secret 'koodrive\/acme' names KooDrive's API/,
    );
  });

  it('refuses an answer larger than the body limit without buffering it', async () => {
    simulator.enqueueFault({ status: 200, body: { code: 0, msg: 'x'.repeat(5_000), data: [] } });
    const { instance } = client({ maxBodyBytes: 1_000 });
    await expect(instance.getSpaceAllocation(TENANT)).rejects.toThrow(/1000-byte limit/);
    expect(simulator.requests).toHaveLength(1);
  });

  it('stops reading a streamed answer of unknown length once it passes the limit', async () => {
    let written = 0;
    const streaming = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => {
        written += 1_000;
        if (!res.write('x'.repeat(1_000)) || written > 1_000_000) {
          clearInterval(timer);
          res.end();
        }
      }, 1);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => streaming.listen(0, '127.0.0.1', resolve));
    const { port } = streaming.address() as AddressInfo;
    try {
      const { instance } = client({ defaultBaseUrl: `http://127.0.0.1:${port}`, maxBodyBytes: 5_000 });
      await expect(instance.getSpaceAllocation(TENANT)).rejects.toThrow(/more than the 5000-byte limit/);
      expect(written).toBeLessThan(1_000_000);
    } finally {
      streaming.closeAllConnections();
      await new Promise((resolve) => streaming.close(resolve));
    }
  });

  it('names the KooDrive call a failure came from (its X-Traceid), and no call when none was made', async () => {
    simulator.enqueueFault({ status: 503 });
    simulator.enqueueFault({ status: 503 });
    const { instance } = client({ maxAttempts: 2 });
    const failed = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(UpstreamError);
    const sent = simulator.requests.map((request) => request.traceId);
    expect(sent).toHaveLength(2);
    expect(new Set(sent).size).toBe(1);
    expect((failed as UpstreamError).koodriveTraceId).toBe(sent[0]);
    // The secret could not be read: nothing was sent, so no call is named.
    const unreadable = createKooDriveClient({
      credentials: {
        async get() {
          throw new UpstreamError('no secret for this test');
        },
        async refetchAfterRefusal() {
          return undefined;
        },
        clear() {},
      },
      defaultBaseUrl: simulator.url,
      timeoutMs: 1_000,
      maxAttempts: 2,
    });
    const early = await unreadable.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect((early as UpstreamError).koodriveTraceId).toBeUndefined();
  });

  it('points at the clock, not the credentials, when the refusal is about the request time', async () => {
    const tooLate = {
      error_code: 'APIGW.0303',
      error_msg: 'time out of range: X-Date is later than the server time',
    };
    simulator.enqueueFault({ status: 401, body: tooLate });
    simulator.enqueueFault({ status: 401, body: tooLate });
    const { instance } = client();
    const refused = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamRejectedError);
    expect((refused as Error).message).toMatch(
      /about the request's time: .*check this machine's clock \(NTP\)\.$/,
    );
    expect((refused as Error).message).not.toContain('appSecret');
    simulator.enqueueFault({
      status: 401,
      body: { error_code: 'APIGW.0303', error_msg: 'Incorrect app authentication information' },
    });
    simulator.enqueueFault({
      status: 401,
      body: { error_code: 'APIGW.0303', error_msg: 'Incorrect app authentication information' },
    });
    const wrong = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/check appId, appSecret and userId/);
  });

  it('points at the clock whatever the case of the words about time', async () => {
    const expired = { error_code: 'APIGW.0303', error_msg: 'Request Time Expired' };
    simulator.enqueueFault({ status: 401, body: expired });
    simulator.enqueueFault({ status: 401, body: expired });
    const refused = await client()
      .instance.getSpaceAllocation(TENANT)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamRejectedError);
    expect((refused as Error).message).toMatch(/check this machine's clock \(NTP\)\.$/);
    expect((refused as Error).message).not.toContain('check appId, appSecret and userId');
  });

  it('refetches credentials once on a refused signature and reports the second refusal', async () => {
    const credentials = credentialsFrom({ ...APP, appSecret: 'old' }, { ...APP, appSecret: 'older' });
    const { instance } = client({ credentials });
    const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect(credentials.reads).toEqual([{ refetch: false }, { refetch: true }]);
  });

  it.each([
    ['a zero-width space', `${APP.appSecret}\u200b`],
    ['an inner space', 'client-secret value'],
    ['a letter outside ASCII', 'client-secrét-value'],
  ])(
    'names an appSecret holding %s (a copy-paste slip) in the refusal, never its value',
    async (_what, appSecret) => {
      const { instance } = client({ credentials: credentialsFrom({ ...APP, appSecret }) });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamRejectedError);
      const message = (error as Error).message;
      expect(message).toContain('check appId, appSecret and userId');
      expect(message).toMatch(/the appSecret in it holds a character other than visible ASCII/);
      expect(message).not.toContain(appSecret);
    },
  );

  it('does not blame the appSecret of a refusal when it is visible ASCII', async () => {
    const { instance } = client({ credentials: credentialsFrom({ ...APP, appSecret: 'wrong-but-plain' }) });
    const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect((error as Error).message).not.toContain('visible ASCII');
  });

  describe('what KooDrive says back is redacted before it reaches a detail, an upstreamMessage or a log', () => {
    /** A gateway that echoes the request's Authorization header (and worse) in its error message. */
    async function echoing(status: number, envelope: (authorization: string) => Record<string, unknown>) {
      const server = createServer((req, res) => {
        const text = JSON.stringify(envelope(String(req.headers.authorization)));
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return {
        url: `http://127.0.0.1:${port}`,
        async close() {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    }

    const leaks = (error: unknown) => {
      const { message, upstreamCode, upstreamMessage } = error as UpstreamError;
      return JSON.stringify({ message, upstreamCode, upstreamMessage });
    };

    it.each([
      [
        'a refusal (401) that quotes the Authorization header',
        401,
        (authorization: string) => ({
          error_code: 'APIGW.0303',
          error_msg: `Incorrect app authentication information: got ${authorization} for app secret ${APP.appSecret}`,
        }),
        UpstreamRejectedError,
      ],
      [
        'a KooDrive error (code ≠ 0) whose message lists the signature parameter and a bare hex signature',
        200,
        (authorization: string) => {
          const signature = authorization.split('Signature=')[1] ?? '';
          return {
            code: 13000101,
            msg: `bad request: {"Signature":"${signature}"} signature=${signature}; expected ${signature.toUpperCase()}`,
          };
        },
        UpstreamError,
      ],
      [
        'a 5xx whose error code is the signature itself',
        503,
        (authorization: string) => ({ error_code: authorization.split('Signature=')[1], error_msg: 'x' }),
        UpstreamError,
      ],
    ])('%s', async (_name, status, envelope, errorClass) => {
      const gateway = await echoing(status, envelope);
      try {
        const { instance } = client({ defaultBaseUrl: gateway.url, maxAttempts: 2 });
        const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(errorClass);
        const shown = leaks(error);
        expect(shown).not.toMatch(/HMAC-SHA256|Signature"?\s*[=:]|[0-9a-f]{64}/i);
        expect(shown).not.toContain(APP.appSecret);
        expect(shown).toContain('[redacted]');
      } finally {
        await gateway.close();
      }
    });

    it('redacts a secret with characters JSON escapes, also inside a code shown as JSON', async () => {
      const appSecret = 'se"cret\\with\tescapes-271828';
      const gateway = await echoing(200, () => ({ code: { echo: appSecret }, msg: `for ${appSecret}` }));
      try {
        const { instance } = client({
          defaultBaseUrl: gateway.url,
          credentials: credentialsFrom({ ...APP, appSecret }),
        });
        const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UpstreamError);
        const shown = leaks(error);
        expect(shown).not.toContain('cret');
        expect((error as UpstreamError).message).toContain('{"echo":"[redacted]"} (an object)');
      } finally {
        await gateway.close();
      }
    });

    it('redacts a secret in its URL-encoded form too (a message echoing a query or form body)', async () => {
      const appSecret = 'k/7+Xq=9&z@secret-314159';
      const encoded = encodeURIComponent(appSecret);
      const gateway = await echoing(401, () => ({
        error_code: 'APIGW.0303',
        error_msg: `Incorrect app authentication information: app_secret=${encoded}`,
      }));
      try {
        const { instance } = client({
          defaultBaseUrl: gateway.url,
          credentials: credentialsFrom({ ...APP, appSecret }),
        });
        const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UpstreamRejectedError);
        const shown = leaks(error);
        expect(shown).not.toContain('secret-314159');
        expect((error as UpstreamRejectedError).upstreamMessage).toContain('app_secret=[redacted]');
      } finally {
        await gateway.close();
      }
    });

    it('caps a long message after redacting it', async () => {
      const gateway = await echoing(200, (authorization) => ({
        code: 13000101,
        msg: `${'x'.repeat(280)} ${authorization}" ${'y'.repeat(1_000)}`,
      }));
      try {
        const { instance } = client({ defaultBaseUrl: gateway.url });
        const error = (await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e)) as UpstreamError;
        expect(error.upstreamMessage).toBe(`${'x'.repeat(280)} [redacted]" ${'y'.repeat(7)}…`);
        expect(leaks(error)).not.toMatch(/[0-9a-f]{20}/);
      } finally {
        await gateway.close();
      }
    });
  });

  describe('the attempt budget (KOODRIVE_MAX_ATTEMPTS) counts the retry after a refusal', () => {
    const refused = { status: 401, body: { error_code: 'APIGW.0303', error_msg: 'refused' } };
    const statuses = () => simulator.requests.map((r) => r.status);

    it.each([
      // [budget, faults, statuses of the requests KooDrive saw, attempts of a success or undefined]
      [3, [401, 503, 503, 503], [401, 503, 503], undefined],
      [3, [401, 503], [401, 503, 200], 3],
      [2, [401, 503, 503], [401, 503], undefined],
      // The one retry after a refusal is made even with no budget left…
      [1, [401], [401, 200], 2],
      [1, [401, 503], [401, 503], undefined],
      // …also when the refusal came on the last attempt of the budget.
      [3, [503, 503, 401], [503, 503, 401, 200], 4],
    ])('budget %i, faults %j: KooDrive sees %j', async (maxAttempts, faults, expected, attempts) => {
      for (const status of faults) simulator.enqueueFault(status === 401 ? refused : { status });
      const credentials = credentialsFrom(APP);
      const { instance } = client({ maxAttempts, credentials });
      const outcome = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(statuses()).toEqual(expected);
      if (attempts === undefined) expect(outcome).toBeInstanceOf(UpstreamError);
      else expect(outcome).toMatchObject({ attempts });
      expect(credentials.reads.filter((read) => read.refetch)).toHaveLength(1);
    });
  });

  describe('a refusal when the secret was read again less than 30 s ago', () => {
    it('answers UPSTREAM_REJECTED at once, without a read or a second request', async () => {
      const credentials = credentialsFrom({ ...APP, appSecret: 'wrong' });
      credentials.refetchAllowed = false;
      const { instance } = client({ credentials });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamRejectedError);
      expect(error).toMatchObject({ upstreamCode: 'APIGW.0303' });
      expect(String((error as Error).message)).toContain('read again less than 30 s ago');
      expect(credentials.reads).toEqual([{ refetch: false }]);
      expect(simulator.requests).toHaveLength(1);
    });

    it('points at the clock there too when the refusal is about the request time', async () => {
      simulator.enqueueFault({
        status: 401,
        body: {
          error_code: 'APIGW.0303',
          error_msg: 'time out of range: X-Date is later than the server time',
        },
      });
      const credentials = credentialsFrom(APP);
      credentials.refetchAllowed = false;
      const { instance } = client({ credentials });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamRejectedError);
      expect((error as Error).message).toMatch(
        /read again less than 30 s ago and is not read again before that: KooDrive's message is about the request's time: .*check this machine's clock \(NTP\)\.$/,
      );
      expect(simulator.requests).toHaveLength(1);
    });

    it('still retries with the same secret when the refusal corrected the clock', async () => {
      simulator.setClockOffsetMs(-90_000);
      const credentials = credentialsFrom(APP);
      credentials.refetchAllowed = false;
      const { instance } = client({ credentials });
      const response = await instance.getSpaceAllocation(TENANT);
      expect(response.attempts).toBe(2);
      expect(simulator.requests.map((r) => r.outcome)).toEqual(['rejected', 'ok']);
      expect(credentials.reads).toEqual([{ refetch: false }]);
    });
  });

  it('reports a connection that cannot be made as an upstream error after the attempts', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const { instance, delays } = client({ defaultBaseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(String((error as Error).message)).toMatch(
      /could not be reached at 127\.0\.0\.1:\d+: ECONNREFUSED; nothing accepts connections there: check the host and port of KOODRIVE_BASE_URL or the secret's baseUrl\. All 2 attempts failed\.$/,
    );
    expect(delays).toHaveLength(1);
  });

  it('says KooDrive was reached when its answer is cut off mid-body, and retries it', async () => {
    const cutting = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
      res.write('{"code":0,"data":[', () => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => cutting.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = cutting.address() as AddressInfo;
      const { instance, delays } = client({ defaultBaseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(String((error as Error).message)).toMatch(
        /^KooDrive at 127\.0\.0\.1:\d+ began to answer \(HTTP 200\) but the connection closed before the answer ended: ECONNRESET; KooDrive was reached, so check a proxy or load balancer on the path .* All 2 attempts failed\.$/,
      );
      expect(String((error as Error).message)).not.toContain('could not be reached');
      expect(delays).toHaveLength(1);
    } finally {
      cutting.closeAllConnections();
      await new Promise((resolve) => cutting.close(resolve));
    }
  });

  it('says KooDrive began to answer when its body stalls past the time limit, with the status it gave', async () => {
    const stalling = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 20);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = stalling.address() as AddressInfo;
      const reports: AttemptReport[] = [];
      const { instance } = client({
        defaultBaseUrl: `http://127.0.0.1:${port}`,
        maxAttempts: 1,
        timeoutMs: 300,
        onAttempt: (r) => reports.push(r),
      });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamTimeoutError);
      expect((error as Error).message).toMatch(
        /^KooDrive began to answer \(HTTP 200\) but its answer did not end within 300 ms \(KOODRIVE_TIMEOUT_MS\) at 127\.0\.0\.1:\d+\. KooDrive was reached: /,
      );
      expect(reports).toEqual([
        expect.objectContaining({
          attempt: 1,
          reason: 'UPSTREAM_TIMEOUT',
          networkError: 'timeout',
          httpStatus: 200,
        }),
      ]);
      // Cut short by the invocation's end instead: the time was short, and the body is not blamed.
      const cut = await client({
        defaultBaseUrl: `http://127.0.0.1:${port}`,
        maxAttempts: 1,
        timeoutMs: 5_000,
      })
        .instance.getSpaceAllocation(TENANT, { deadline: Date.now() + 300 })
        .catch((e: unknown) => e);
      expect((cut as Error).message).toMatch(
        /^KooDrive began to answer \(HTTP 200\) but its answer did not end within the \d+ ms left in this invocation at /,
      );
      expect((cut as Error).message).not.toContain('a body that trickles');
    } finally {
      stalling.closeAllConnections();
      await new Promise((resolve) => stalling.close(resolve));
    }
  });

  it('says an answer whose body breaks HTTP framing was malformed, not that the connection closed', async () => {
    // Status and headers, then a chunk size that is not hexadecimal: node stops reading (HPE_INVALID_CHUNK_SIZE).
    const broken = createNetServer((socket) => {
      socket.once('data', () => {
        socket.end(
          'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        );
      });
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = broken.address() as AddressInfo;
      const { instance } = client({ defaultBaseUrl: `http://127.0.0.1:${port}`, maxAttempts: 1 });
      const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      const message = String((error as Error).message);
      expect(message).toMatch(
        /^KooDrive at 127\.0\.0\.1:\d+ began to answer \(HTTP 200\) but the rest of its answer was not valid HTTP: HPE_INVALID_CHUNK_SIZE; KooDrive was reached, so check a proxy or load balancer on the path/,
      );
      expect(message).not.toContain('connection closed');
    } finally {
      await new Promise((resolve) => broken.close(resolve));
    }
  });

  it.each([
    ['ENOTFOUND', /does not resolve: check the host/],
    ['EAI_AGAIN', /does not resolve/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /TLS certificate was not accepted/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /TLS certificate was not accepted/],
    ['ECONNRESET', /network path from the function/],
  ])('says what to check when KooDrive cannot be reached (%s)', (code, hint) => {
    expect(unreachableHint(code)).toMatch(hint);
  });

  it('says what to do once KooDrive failed or throttled through every attempt', async () => {
    for (let i = 0; i < 3; i++) simulator.enqueueFault({ status: 500 });
    const failed = await client({ maxAttempts: 3 })
      .instance.getSpaceAllocation(TENANT)
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(UpstreamError);
    expect((failed as Error).message).toBe(
      "KooDrive answered HTTP 500. All 3 attempts failed. KooDrive is failing on its side: check the vendor's status; retrying later is safe (the call only reads).",
    );
    // The vendor's code still travels beside the detail.
    expect(failed).toMatchObject({
      upstreamCode: '13000201',
      upstreamMessage: 'inner server invoke failure',
    });
    for (let i = 0; i < 2; i++) simulator.enqueueFault({ status: 429 });
    const throttled = await client({ maxAttempts: 2 })
      .instance.getSpaceAllocation(TENANT)
      .catch((e: unknown) => e);
    expect((throttled as Error).message).toMatch(
      /^KooDrive answered HTTP 429\. All 2 attempts failed\. KooDrive is limiting this app's requests: retrying later is safe/,
    );
  });

  it('reports the answer of a single attempt without counting attempts (KOODRIVE_MAX_ATTEMPTS 1)', async () => {
    simulator.enqueueFault({ status: 503 });
    const { instance, delays } = client({ maxAttempts: 1 });
    const error = await instance.getSpaceAllocation(TENANT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toBe(
      "KooDrive answered HTTP 503. KooDrive is failing on its side: check the vendor's status; retrying later is safe (the call only reads).",
    );
    expect(delays).toEqual([]);
    expect(simulator.requests).toHaveLength(1);
  });

  it('reports each attempt without headers or secrets, with why it failed and the trace id KooDrive logged', async () => {
    simulator.enqueueFault({ status: 503 });
    const reports: AttemptReport[] = [];
    const { instance } = client({ onAttempt: (r) => reports.push(r) });
    const response = await instance.getSpaceAllocation(TENANT);
    // When KooDrive flaps but the call succeeds, these reports (the warning lines) are the only record.
    expect(reports).toEqual([
      {
        tenantId: 'acme',
        attempt: 1,
        outcome: 'retryable',
        reason: 'UPSTREAM_ERROR',
        httpStatus: 503,
        upstreamCode: '13000201',
        koodriveTraceId: response.traceId,
        durationMs: expect.any(Number),
      },
      {
        tenantId: 'acme',
        attempt: 2,
        outcome: 'ok',
        httpStatus: 200,
        koodriveTraceId: response.traceId,
        durationMs: expect.any(Number),
      },
    ]);
    expect(simulator.requests.map((r) => r.traceId)).toEqual([response.traceId, response.traceId]);
    expect(JSON.stringify(reports)).not.toContain(APP.appSecret);
  });

  it('reports the network error of an attempt that got no answer: its code, or timeout', async () => {
    simulator.enqueueFault({ reset: true });
    simulator.enqueueFault({ delayMs: 1_000 });
    const reports: AttemptReport[] = [];
    const { instance } = client({ timeoutMs: 200, onAttempt: (r) => reports.push(r) });
    const response = await instance.getSpaceAllocation(TENANT);
    expect(reports).toEqual([
      expect.objectContaining({ attempt: 1, reason: 'UPSTREAM_ERROR', networkError: 'ECONNRESET' }),
      expect.objectContaining({ attempt: 2, reason: 'UPSTREAM_TIMEOUT', networkError: 'timeout' }),
      expect.objectContaining({ attempt: 3, outcome: 'ok', httpStatus: 200 }),
    ]);
    for (const report of reports) {
      expect(report.koodriveTraceId).toBe(response.traceId);
      // No answer began: no status to report, nor a KooDrive code.
      if (report.outcome !== 'ok') expect(report).not.toHaveProperty('httpStatus');
      expect(report).not.toHaveProperty('upstreamCode');
    }
  });

  describe("the caller's deadline", () => {
    it('cuts an attempt to the time left and says that the invocation ran out', async () => {
      simulator.enqueueFault({ delayMs: 5_000 });
      const { instance } = client({ timeoutMs: 5_000 });
      const error = await instance
        .getSpaceAllocation(TENANT, { deadline: Date.now() + 300 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamTimeoutError);
      expect(String((error as Error).message)).toMatch(/ms left in this invocation/);
      expect(String((error as Error).message)).toContain('KOODRIVE_TIMEOUT_MS × KOODRIVE_MAX_ATTEMPTS');
      // The simulator records the abandoned request once it sees the connection go.
      await vi.waitFor(() => expect(simulator.requests).toHaveLength(1));
    });

    it('does not back off past it: the last answer is reported at once', async () => {
      for (let i = 0; i < 3; i++) simulator.enqueueFault({ status: 503 });
      // The first back-off (50 ms here) plus the 100 ms an attempt needs do not fit in 120 ms. On a clock
      // that stands still: on the wall clock, 20 ms lost anywhere before the first attempt (a loaded
      // machine) would leave no time for it, and the test would see another error.
      const { clock } = frozenClock();
      const { instance, delays } = client({ now: () => clock.now, baseDelayMs: 100, minAttemptMs: 100 });
      const error = await instance
        .getSpaceAllocation(TENANT, { deadline: clock.now + 120 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(String((error as Error).message)).toContain('HTTP 503');
      expect(delays).toEqual([]);
      expect(simulator.requests).toHaveLength(1);
    });

    it('starts no attempt when no time is left', async () => {
      const { instance } = client();
      const error = await instance
        .getSpaceAllocation(TENANT, { deadline: Date.now() - 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamTimeoutError);
      expect(String((error as Error).message)).toMatch(/No time was left in this invocation/);
      expect(simulator.requests).toHaveLength(0);
    });

    /** A clock that stands still unless the credentials move it, and a deadline 1 s ahead of it. */
    const frozenClock = () => {
      const clock = { now: Date.now() };
      return { clock, deadline: clock.now + 1_000 };
    };

    it('sends nothing when a slow secret read leaves less than an attempt needs', async () => {
      const { clock, deadline } = frozenClock();
      const credentials = credentialsFrom(APP);
      const read = credentials.get.bind(credentials);
      credentials.get = async (tenant, options) => {
        // Secrets Manager took all but 50 ms of the invocation.
        clock.now = deadline - 50;
        return read(tenant, options);
      };
      const { instance } = client({ credentials, now: () => clock.now, minAttemptMs: 100 });
      const error = await instance.getSpaceAllocation(TENANT, { deadline }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamTimeoutError);
      expect((error as Error).message).toBe(
        "No time was left in this invocation to call KooDrive (50 ms): the live routes' 29 s cannot grow: lower KOODRIVE_TIMEOUT_MS × KOODRIVE_MAX_ATTEMPTS; in snapshot runs, raise the snapshot function's timeout or SNAPSHOT_CONCURRENCY.",
      );
      expect(credentials.reads).toHaveLength(1);
      expect(simulator.requests).toHaveLength(0);
      // Nothing was sent, so no KooDrive call is named.
      expect((error as UpstreamTimeoutError).koodriveTraceId).toBeUndefined();
    });

    it('answers UPSTREAM_TIMEOUT, sending nothing more, when the refetch of the secret leaves less than an attempt needs', async () => {
      const { clock, deadline } = frozenClock();
      const credentials = credentialsFrom({ ...APP, appSecret: 'rotated-away' }, APP);
      const refetch = credentials.refetchAfterRefusal.bind(credentials);
      credentials.refetchAfterRefusal = async (tenant, refused, options) => {
        clock.now = deadline - 50;
        return refetch(tenant, refused, options);
      };
      const { instance } = client({ credentials, now: () => clock.now, minAttemptMs: 100 });
      const error = await instance.getSpaceAllocation(TENANT, { deadline }).catch((e: unknown) => e);
      // Not a refusal of the credentials: the newer value was read but never tried (the contract's
      // UPSTREAM_REJECTED is a refusal also after the refetch), so no "check appId…" advice either.
      expect(error).toBeInstanceOf(UpstreamTimeoutError);
      expect((error as Error).message).toMatch(
        /^KooDrive refused the credentials and the secret was read again, but no time was left in this invocation to try it \(50 ms\)/,
      );
      expect(credentials.reads).toEqual([{ refetch: false }, { refetch: true }]);
      // Only the refused request reached KooDrive.
      expect(simulator.requests.map((r) => r.outcome)).toEqual(['rejected']);
    });

    it('says the invocation had no time left for another attempt when a later back-off would pass it', async () => {
      for (let i = 0; i < 3; i++) simulator.enqueueFault({ status: 503 });
      const { clock } = frozenClock();
      // Back-offs of 50 ms then 100 ms (random() = 0.5); each attempt needs 100 ms. The first wait fits
      // in the 240 ms (50 + 100 ≤ 240), the second does not (50 + 100 + 100 > 240).
      const deadline = clock.now + 240;
      const delays: number[] = [];
      const { instance } = client({
        now: () => clock.now,
        sleep: async (ms) => {
          delays.push(ms);
          clock.now += ms;
        },
        baseDelayMs: 100,
        minAttemptMs: 100,
      });
      const error = await instance.getSpaceAllocation(TENANT, { deadline }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as Error).message).toBe(
        "KooDrive answered HTTP 503. All 2 attempts failed, with no time left in this invocation for another. KooDrive is failing on its side: check the vendor's status; retrying later is safe (the call only reads).",
      );
      expect(delays).toEqual([50]);
      expect(simulator.requests).toHaveLength(2);
    });

    it('leaves a call with time to spare alone', async () => {
      simulator.enqueueFault({ status: 503 });
      const { instance, delays } = client();
      const response = await instance.getSpaceAllocation(TENANT, { deadline: Date.now() + 60_000 });
      expect(response.attempts).toBe(2);
      expect(delays).toHaveLength(1);
    });
  });
});
