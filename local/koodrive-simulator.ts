/**
 * A local KooDrive for tests, the local stack and benchmarks. It answers GetSpaceAllocation like the
 * vendor (shared/koodrive/API.md) and refuses requests the way Huawei's API gateway does: the app-based
 * signature is recomputed with lib/koodrive/sign.ts and X-Date must be within 15 minutes of the
 * simulator's clock and not later than it. Faults, latency and a clock offset can be injected.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { withoutTrailingSlashes } from '../lib/config.ts';
import { ALLOCATION_PATH, TRACE_ID_LENGTH } from '../lib/koodrive/client.ts';
import {
  buildCanonicalRequest,
  buildStringToSign,
  computeSignature,
  parseAuthorization,
  parseSigningDate,
} from '../lib/koodrive/sign.ts';
import { listen } from './listen.ts';

/** One app the simulator knows; `data` is the `data` member of its answers. */
export interface SimulatorApp {
  appId: string;
  appSecret: string;
  userId: string;
  /** Default: the vendor's object-shaped example with string numbers ({@link DEFAULT_ALLOCATION_DATA}). */
  data?: unknown;
}

/**
 * An injected failure. `status`/`body`/`headers` replace the answer of a signed and valid request;
 * `reset` and `delayMs` apply before anything is checked or answered. A fault with only `delayMs`
 * still answers `status` (500) after the delay: for a slow success use `setLatencyMs`.
 */
export interface SimulatedFault {
  /** Default 500. */
  status?: number;
  /** JSON-serialised unless a string; default `{"code":13000201,"msg":"inner server invoke failure"}`. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait before answering (for timeouts); close() cancels the wait. */
  delayMs?: number;
  /** Destroy the socket without answering (a network error for the client). */
  reset?: boolean;
  /** Only for requests of this app (the AppId the Authorization header claims). */
  appId?: string;
}

/** What the simulator saw of one request; the Authorization value is never kept. */
interface RecordedRequest {
  appId: string | undefined;
  method: string;
  path: string;
  traceId: string | undefined;
  xDate: string | undefined;
  /** 0 when no answer was sent (reset, or the client went away). */
  status: number;
  outcome: 'ok' | 'rejected' | 'fault' | 'invalid';
}

export interface SimulatorOptions {
  port?: number;
  host?: string;
  apps?: SimulatorApp[];
  latencyMs?: number;
  clockOffsetMs?: number;
  /**
   * A path prefix before the API's paths, as a reverse proxy in front of KooDrive would add
   * (`/prefix` serves `/prefix/koodrive/ose/…`); the signature is checked over the whole path.
   */
  basePath?: string;
}

/** Handle on a running simulator. */
export interface KooDriveSimulator {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests received and not yet answered (or dropped): lets tests wait until a request has arrived. */
  readonly inFlight: number;
  /** TCP connections accepted since start or reset(): shows whether clients reuse keep-alive connections. */
  readonly connections: number;
  /** Adds the app, or replaces it by appId (a rotated secret takes effect at once); keeps its data when `data` is absent. */
  setApp(app: SimulatorApp): void;
  removeApp(appId: string): void;
  setData(appId: string, data: unknown): void;
  /** FIFO: each fault is used by the next matching request. */
  enqueueFault(fault: SimulatedFault): void;
  /** Latency added to the answer of every request that arrives from now on. */
  setLatencyMs(ms: number): void;
  /** The simulator's clock is Date.now() + offset. */
  setClockOffsetMs(ms: number): void;
  /** Clears faults and recorded requests. */
  reset(): void;
  /** Stops listening, drops every connection (keep-alive ones too) and cancels pending waits. */
  close(): Promise<void>;
}

// The vendor's path, from the one place the project states it.
export { ALLOCATION_PATH };
/** The vendor's own example: one object, every number a string. */
export const DEFAULT_ALLOCATION_DATA = Object.freeze({
  type: '0',
  allocateCapacity: '1000',
  totalCapacity: '2000',
});
const MAX_SIGNING_AGE_MS = 15 * 60 * 1000;

const REQUIRED_SIGNED_HEADERS = ['host', 'x-date', 'x-user-id'] as const;
const DEFAULT_FAULT_BODY = { code: 13000201, msg: 'inner server invoke failure' };
const JSON_CONTENT_TYPE = 'application/json;charset=UTF-8';
const MAX_BODY_BYTES = 1024 * 1024;
const AUTH_PREFIX = 'Incorrect app authentication information';

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  outcome: RecordedRequest['outcome'];
}

const authFailure = (reason: string): Answer => ({
  status: 401,
  body: { error_code: 'APIGW.0303', error_msg: `${AUTH_PREFIX}: ${reason}` },
  outcome: 'rejected',
});

const timeFailure = (reason: string): Answer =>
  authFailure(
    `time out of range: ${reason}; X-Date must be UTC YYYYMMDDTHHMMSSZ, at most 15 minutes before the server time and not later than it`,
  );

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function headerRecord(req: IncomingMessage): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) record[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return record;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!ended) reject(new Error('The client went away before sending the whole request.'));
    });
  });
}

function signaturesEqual(expected: string, given: string): boolean {
  const expectedBytes = Buffer.from(expected, 'utf8');
  const givenBytes = Buffer.from(given, 'utf8');
  return expectedBytes.length === givenBytes.length && timingSafeEqual(expectedBytes, givenBytes);
}

const isTransportFault = (fault: SimulatedFault): boolean =>
  fault.reset === true || fault.delayMs !== undefined;

/** Starts a simulator on 127.0.0.1 (port 0 = any free port) and resolves once it listens. */
export async function startKooDriveSimulator(options: SimulatorOptions = {}): Promise<KooDriveSimulator> {
  const apps = new Map<string, { app: SimulatorApp; data: unknown }>();
  const faults: SimulatedFault[] = [];
  const requests: RecordedRequest[] = [];
  const closing = new AbortController();
  const allocationPath = `${withoutTrailingSlashes(options.basePath ?? '')}${ALLOCATION_PATH}`;
  let latencyMs = options.latencyMs ?? 0;
  let clockOffsetMs = options.clockOffsetMs ?? 0;
  let inFlight = 0;
  let connections = 0;

  const now = (): number => Date.now() + clockOffsetMs;

  function setApp(app: SimulatorApp): void {
    const previous = apps.get(app.appId);
    const data = app.data !== undefined ? app.data : (previous?.data ?? DEFAULT_ALLOCATION_DATA);
    apps.set(app.appId, { app: { ...app }, data });
  }
  for (const app of options.apps ?? []) setApp(app);

  /** The first queued fault for this app, taken only if `accept` agrees, so that the queue stays FIFO. */
  function takeFault(
    appId: string | undefined,
    accept: (fault: SimulatedFault) => boolean,
  ): SimulatedFault | undefined {
    const index = faults.findIndex((fault) => fault.appId === undefined || fault.appId === appId);
    const fault = faults[index];
    if (fault === undefined || !accept(fault)) return undefined;
    faults.splice(index, 1);
    return fault;
  }

  function authenticate(req: IncomingMessage, path: string, query: string, body: Buffer): Answer | undefined {
    const authorization = headerValue(req, 'authorization');
    if (authorization === undefined || authorization === '')
      return authFailure('the Authorization header is missing');
    const parsed = parseAuthorization(authorization);
    if (parsed === undefined) {
      return authFailure(
        'the Authorization header is not HMAC-SHA256 AppId=...,SignedHeaders=...,Signature=...',
      );
    }
    const known = apps.get(parsed.appId);
    if (known === undefined) return authFailure('app not found');
    const signedNames = parsed.signedHeaders.map((name) => name.toLowerCase());
    if (!REQUIRED_SIGNED_HEADERS.every((name) => signedNames.includes(name))) {
      return authFailure('SignedHeaders must include host, x-date and x-user-id');
    }
    const headers = headerRecord(req);
    const missing = signedNames.find((name) => headers[name] === undefined);
    if (missing !== undefined) return authFailure(`the signed header ${missing} is missing from the request`);
    if (headers['x-user-id']?.trim() !== known.app.userId)
      return authFailure('X-User-Id does not belong to the app');

    const xDate = headers['x-date']?.trim() ?? '';
    const signedAt = parseSigningDate(xDate);
    if (signedAt === undefined) return timeFailure('X-Date is missing or malformed');
    const serverTime = now();
    if (signedAt.getTime() > serverTime) return timeFailure('X-Date is later than the server time');
    if (serverTime - signedAt.getTime() > MAX_SIGNING_AGE_MS)
      return timeFailure('X-Date is more than 15 minutes old');

    // The received Host (a signed header) goes into the canonical request, so a request signed for
    // another host fails here.
    const expected = computeSignature(
      known.app.appSecret,
      buildStringToSign(
        buildCanonicalRequest({
          method: req.method ?? 'GET',
          path,
          query,
          headers,
          body,
          signedHeaderNames: signedNames,
        }),
      ),
    );
    if (!signaturesEqual(expected, parsed.signature)) return authFailure('verify signature fail');
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const latency = latencyMs;
    const requestGone = new AbortController();
    res.on('close', () => requestGone.abort());
    const signal = AbortSignal.any([closing.signal, requestGone.signal]);

    const rawUrl = req.url ?? '/';
    const queryStart = rawUrl.indexOf('?');
    const rawPath = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
    const rawQuery = queryStart === -1 ? '' : rawUrl.slice(queryStart + 1);
    const pathname = new URL(rawUrl, 'http://simulator.invalid').pathname;
    const claimedAppId = parseAuthorization(headerValue(req, 'authorization') ?? '')?.appId;
    const traceId = headerValue(req, 'x-traceid');
    const record: RecordedRequest = {
      appId: claimedAppId,
      method: req.method ?? '',
      path: pathname,
      traceId,
      xDate: headerValue(req, 'x-date'),
      status: 0,
      outcome: 'fault',
    };

    let answer: Answer | undefined;
    try {
      const body = await readBody(req);
      const transportFault = takeFault(claimedAppId, isTransportFault);
      if (transportFault?.delayMs !== undefined) await sleep(transportFault.delayMs, undefined, { signal });
      if (transportFault?.reset === true) {
        requests.push(record);
        req.socket.destroy();
        return;
      }

      if (req.method !== 'GET' || pathname !== allocationPath) {
        answer = { status: 404, body: { code: 13000101, msg: 'bad request' }, outcome: 'invalid' };
      } else {
        answer = authenticate(req, rawPath, rawQuery, body);
      }
      if (answer === undefined && traceId !== undefined && traceId.length !== TRACE_ID_LENGTH) {
        answer = {
          status: 400,
          body: { code: '13000102', msg: 'parameter verification failed' },
          outcome: 'invalid',
        };
      }
      const fault =
        transportFault ?? (answer === undefined ? takeFault(claimedAppId, () => true) : undefined);
      if (answer === undefined && fault !== undefined) {
        answer = {
          status: fault.status ?? 500,
          body: fault.body === undefined ? DEFAULT_FAULT_BODY : fault.body,
          ...(fault.headers === undefined ? {} : { headers: fault.headers }),
          outcome: 'fault',
        };
      }
      if (answer === undefined) {
        const data = claimedAppId === undefined ? undefined : apps.get(claimedAppId)?.data;
        answer = { status: 200, body: { data, code: 0, msg: 'Operation successful.' }, outcome: 'ok' };
      }
      if (latency > 0) await sleep(latency, undefined, { signal });
    } catch {
      // Closed, or the client went away while waiting: there is nobody to answer.
      record.outcome = answer?.outcome ?? 'fault';
      requests.push(record);
      req.socket.destroy();
      return;
    }

    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    res.statusCode = answer.status;
    res.setHeader('Content-Type', JSON_CONTENT_TYPE);
    res.setHeader('Date', new Date(now()).toUTCString());
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
    res.setHeader('Content-Length', Buffer.byteLength(text));
    record.status = answer.status;
    record.outcome = answer.outcome;
    requests.push(record);
    res.end(text);
  }

  const server = createServer((req, res) => {
    inFlight += 1;
    handle(req, res)
      .catch(() => {
        if (!res.headersSent) req.socket.destroy();
      })
      .finally(() => {
        inFlight -= 1;
      });
  });

  server.on('connection', () => {
    connections += 1;
  });

  // Any Host: a signature covers the Host its client signed (the worked example's is 10.32.45.165).
  const url = await listen(server, options.port, options.host, { anyHost: true });

  return {
    url,
    requests,
    get inFlight() {
      return inFlight;
    },
    get connections() {
      return connections;
    },
    setApp,
    removeApp(appId) {
      apps.delete(appId);
    },
    setData(appId, data) {
      const known = apps.get(appId);
      if (known === undefined)
        throw new Error(`The simulator has no app ${appId}; add it with setApp first.`);
      known.data = data;
    },
    enqueueFault(fault) {
      faults.push({ ...fault });
    },
    setLatencyMs(ms) {
      latencyMs = ms;
    },
    setClockOffsetMs(ms) {
      clockOffsetMs = ms;
    },
    reset() {
      faults.length = 0;
      requests.length = 0;
      connections = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
    },
  };
}
