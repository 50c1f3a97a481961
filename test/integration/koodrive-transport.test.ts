import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_SNAPSHOT_CONCURRENCY } from '../../lib/config.ts';
import {
  AnswerCutOffError,
  BodyTooLargeError,
  createTransport,
  MAX_IDLE_MS,
  TransportTimeoutError,
} from '../../lib/koodrive/transport.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, requestOnSocket: number) => void;

const servers: Server[] = [];

/** A server that counts TCP connections (TLS ones too) and tells the handler which request on its socket this is. */
async function serve(handler: Handler, server: Server = createHttpServer()) {
  const perSocket = new WeakMap<Socket, number>();
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const count = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, count);
    handler(req, res, count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return {
    port,
    get connections() {
      return connections;
    },
  };
}

function json(res: ServerResponse, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const request = (url: string, extra: { timeoutMs?: number; maxBodyBytes?: number } = {}) => ({
  url: new URL(url),
  headers: { Accept: 'application/json', 'X-Date': '20261129T010000Z' },
  timeoutMs: extra.timeoutMs ?? 1_000,
  maxBodyBytes: extra.maxBodyBytes ?? 10_000,
});

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('KooDrive transport (node:http with keep-alive agents)', () => {
  it('sends the headers it is given, Host from the URL, and reuses one connection while warm', async () => {
    const seen: IncomingMessage['headers'][] = [];
    const server = await serve((req, res) => {
      seen.push(req.headers);
      json(res, { code: 0, path: req.url });
    });
    const transport = createTransport();
    for (let i = 0; i < 5; i++) {
      const response = await transport(request(`http://127.0.0.1:${server.port}/a/b?x=1`));
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ code: 0, path: '/a/b?x=1' });
      expect(response.headers['content-type']).toBe('application/json');
    }
    expect(server.connections).toBe(1);
    expect(seen[0]).toMatchObject({ host: `127.0.0.1:${server.port}`, 'x-date': '20261129T010000Z' });
  });

  it('opens a connection for each of as many calls at once as a snapshot run may make: none waits for a socket', async () => {
    // The server answers no call before it holds all of them at once: a call queued for a socket would
    // never reach it, and every call would time out. (No race between an answer's delay and a time
    // limit, which a loaded machine could lose.)
    const calls = 100;
    const waiting: ServerResponse[] = [];
    const server = await serve((_req, res) => {
      waiting.push(res);
      if (waiting.length === calls) for (const held of waiting) json(held, { code: 0 });
    });
    const transport = createTransport();
    const outcomes = await Promise.allSettled(
      Array.from({ length: calls }, () =>
        transport(request(`http://127.0.0.1:${server.port}/x`, { timeoutMs: 5_000 })),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(server.connections).toBe(calls);
    expect(MAX_SNAPSHOT_CONCURRENCY).toBeGreaterThanOrEqual(calls);
  });

  it('retries once on a fresh connection when a pooled one turns out closed by the server', async () => {
    // The second request on any connection finds it dead, as after a Lambda freeze longer than the
    // server's idle timeout.
    const server = await serve((req, res, nth) => {
      if (nth > 1) {
        req.socket.destroy();
        return;
      }
      json(res, { code: 0 });
    });
    const transport = createTransport();
    const first = await transport(request(`http://127.0.0.1:${server.port}/`));
    const second = await transport(request(`http://127.0.0.1:${server.port}/`));
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(server.connections).toBe(2);
  });

  it('gives the retry on a fresh connection only what is left of the timeout, not a timeout of its own', async () => {
    const timeoutMs = 1_200;
    let requests = 0;
    const server = await serve((req, res) => {
      requests += 1;
      // 1: answered, the connection pooled. 2: on the pooled connection, which the server drops only
      // after most of the timeout, as a reset that follows a long silence. 3: on the fresh connection,
      // never answered.
      if (requests === 1) json(res, { code: 0 });
      else if (requests === 2) setTimeout(() => req.socket.destroy(), timeoutMs * 0.7);
    });
    const transport = createTransport();
    const url = `http://127.0.0.1:${server.port}/`;
    await transport(request(url, { timeoutMs }));
    // The time limits the transport sets (the server's own 0.7 × timeoutMs wait left out): what each
    // exchange was allowed, read without a wall-clock bound that a loaded machine could miss.
    const timers = vi.spyOn(globalThis, 'setTimeout');
    let limits: unknown[];
    try {
      const error = await transport(request(url, { timeoutMs })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportTimeoutError);
      limits = timers.mock.calls.map(([, ms]) => ms).filter((ms) => ms !== timeoutMs * 0.7);
    } finally {
      timers.mockRestore();
    }
    expect(requests).toBe(3);
    expect(server.connections).toBe(2);
    // The pooled attempt had the whole timeout; the retry only what was left after the server's reset,
    // which came at least 0.7 × timeoutMs later. A retry with a fresh timeout would have timeoutMs again.
    expect(limits).toHaveLength(2);
    expect(limits[0]).toBeGreaterThan(timeoutMs - 100);
    expect(limits[0]).toBeLessThanOrEqual(timeoutMs);
    expect(limits[1]).toBeLessThanOrEqual(timeoutMs * 0.3 + 5);
  });

  it('does not reuse a connection idle longer than the limit, and reuses one idle less', async () => {
    const server = await serve((_req, res) => json(res, { code: 0 }));
    let clock = 1_000_000;
    const transport = createTransport({ maxIdleMs: 50_000, now: () => clock });
    const url = `http://127.0.0.1:${server.port}/`;
    await transport(request(url));
    clock += 49_000;
    await transport(request(url));
    expect(server.connections).toBe(1);
    // Idle past the limit (as after a long Lambda freeze): closed and replaced, not tried.
    clock += 51_000;
    const response = await transport(request(url));
    expect(response.status).toBe(200);
    expect(server.connections).toBe(2);
    expect(MAX_IDLE_MS).toBeLessThan(60_000);
  });

  it('does not retry a connection reset on a fresh connection (the client decides on retries)', async () => {
    const server = await serve((req) => req.socket.destroy());
    const transport = createTransport();
    const error = await transport(request(`http://127.0.0.1:${server.port}/`)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ECONNRESET' });
    expect(server.connections).toBe(1);
  });

  it('tells an answer cut off mid-body from a connection that failed before any answer', async () => {
    const server = await serve((_req, res) => {
      // Status, headers and part of the declared body; then the connection goes.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
      res.write('{"code":0,"data":[', () => res.socket?.destroy());
    });
    const transport = createTransport();
    const error = await transport(request(`http://127.0.0.1:${server.port}/`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnswerCutOffError);
    expect(error).toMatchObject({
      status: 200,
      message: expect.stringMatching(/^KooDrive's answer \(HTTP 200\) was cut off: /),
    });
    // Not re-sent on a fresh connection: the client decides on retries.
    expect(server.connections).toBe(1);
  });

  it('limits the whole exchange, including a body that trickles in', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 20);
      res.on('close', () => clearInterval(timer));
    });
    const transport = createTransport();
    const error = await transport(request(`http://127.0.0.1:${server.port}/`, { timeoutMs: 150 })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransportTimeoutError);
    // Its headers had come: the status says KooDrive was reached.
    expect(error).toMatchObject({ status: 200, message: 'the answer (HTTP 200) did not end within 150 ms' });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 50_000 });
      res.write('x'.repeat(1_000));
    });
    const transport = createTransport();
    const error = await transport(request(`http://127.0.0.1:${server.port}/`, { maxBodyBytes: 2_000 })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({ limit: 2_000, declared: 50_000 });
  });

  it('asks for an uncompressed answer, and decodes a gzip or deflate one sent anyway', async () => {
    const text = '{"code":0,"msg":"ok"}';
    const encodings: Record<string, Buffer> = {
      gzip: gzipSync(text),
      'x-gzip': gzipSync(text),
      deflate: deflateSync(text),
      // The raw DEFLATE some servers send as "deflate".
      ' Deflate ': deflateRawSync(text),
    };
    const asked: unknown[] = [];
    const server = await serve((req, res) => {
      asked.push(req.headers['accept-encoding']);
      const coding = String(req.url).slice(1);
      const body = encodings[decodeURIComponent(coding)] as Buffer;
      res.writeHead(200, { 'content-encoding': decodeURIComponent(coding), 'content-length': body.length });
      res.end(body);
    });
    const transport = createTransport();
    for (const coding of Object.keys(encodings)) {
      const response = await transport(
        request(`http://127.0.0.1:${server.port}/${encodeURIComponent(coding)}`),
      );
      expect(response.body, coding).toBe(text);
    }
    expect(new Set(asked)).toEqual(new Set(['identity']));
  });

  it('refuses a compressed answer that decodes to more than the limit', async () => {
    const body = gzipSync(`{"x":"${'a'.repeat(50_000)}"}`);
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': body.length });
      res.end(body);
    });
    const transport = createTransport();
    const error = await transport(request(`http://127.0.0.1:${server.port}/`, { maxBodyBytes: 2_000 })).catch(
      (e: unknown) => e,
    );
    expect(body.length).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({ limit: 2_000, status: 200 });
  });

  it('speaks TLS through the HTTPS agent, verifying the server certificate', async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const server = await serve(
      (_req, res) => json(res, { code: 0, secure: true }),
      createHttpsServer({ key: pems.private, cert: pems.cert }),
    );
    const url = `https://127.0.0.1:${server.port}/koodrive`;
    const trusted = createTransport({ tls: { ca: pems.cert } });
    for (let i = 0; i < 3; i++) {
      expect(JSON.parse((await trusted(request(url))).body)).toEqual({ code: 0, secure: true });
    }
    expect(server.connections).toBe(1);
    // Without the private CA the same server is refused: certificates are verified.
    const untrusted = createTransport();
    const error = await untrusted(request(url)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });
});
