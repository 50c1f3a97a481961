import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';
import {
  Agent as HttpsAgent,
  type AgentOptions as HttpsAgentOptions,
  request as httpsRequest,
} from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { MAX_SNAPSHOT_CONCURRENCY } from '../config.ts';

/**
 * One HTTP exchange with KooDrive on node:http / node:https and keep-alive agents that live as long as
 * the container. Native `fetch` (undici) costs about twice the CPU per call and, on a cold start, some
 * 40 ms to load its internals, which the AWS SDK does not need; the SDK already loads node:http.
 */
export interface TransportRequest {
  url: URL;
  headers: Record<string, string>;
  /** The whole exchange, connection to the last byte of the body, must end within this time. */
  timeoutMs: number;
  /** Answers larger than this are refused rather than read into memory. */
  maxBodyBytes: number;
}

export interface TransportResponse {
  status: number;
  /** Response headers as Node parsed them: names in lower case; `date` and `retry-after` are strings. */
  headers: IncomingHttpHeaders;
  body: string;
}

export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

/** The exchange took longer than `timeoutMs`. */
export class TransportTimeoutError extends Error {
  override name = 'TransportTimeoutError';
  /** The answer's HTTP status when its headers had come before the time ran out (its body had not ended). */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/**
 * The connection failed after KooDrive's answer had begun (its status and headers came, its body did
 * not end): KooDrive was reached, and something on the path, or KooDrive, closed it mid-answer, or the
 * rest of the answer was not valid HTTP (a parser error, code HPE_…, after which node closes it).
 */
export class AnswerCutOffError extends Error {
  override name = 'AnswerCutOffError';
  /** The status of the answer that was cut off. */
  readonly status: number;
  constructor(status: number, cause: Error) {
    super(`KooDrive's answer (HTTP ${status}) was cut off: ${cause.message}`, { cause });
    this.status = status;
  }
}

/** The answer is larger than `maxBodyBytes`; `declared` when its Content-Length said so up front. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  readonly limit: number;
  readonly declared: number | undefined;
  /** The answer's status and headers, which were read: a retryable status stays retryable. */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  constructor(limit: number, status: number, headers: IncomingHttpHeaders, declared?: number) {
    super(
      declared === undefined
        ? `KooDrive's answer is more than the ${limit}-byte limit.`
        : `KooDrive's answer is ${declared} bytes, more than the ${limit}-byte limit.`,
    );
    this.limit = limit;
    this.declared = declared;
    this.status = status;
    this.headers = headers;
  }
}

export interface TransportOptions {
  /** Extra TLS options for the HTTPS agent (tests pass a private CA); production uses Node's trust store. */
  tls?: Pick<HttpsAgentOptions, 'ca'>;
  /** Sockets per host (default {@link MAX_SNAPSHOT_CONCURRENCY}, the most calls a snapshot run makes at once). */
  maxSockets?: number;
  /** A pooled connection idle longer than this is closed instead of reused (default {@link MAX_IDLE_MS}). */
  maxIdleMs?: number;
  /** The clock for idle times (tests). */
  now?: () => number;
}

/**
 * Connections idle longer than this are not reused. A frozen Lambda cannot notice that the server or a
 * NAT on the way dropped a connection; most drop after 60 s idle, and one that drops silently (no RST)
 * would cost a whole KOODRIVE_TIMEOUT_MS. A new connection costs a handshake instead.
 */
export const MAX_IDLE_MS = 50_000;

/**
 * The answer's bytes with its Content-Encoding undone. The request asks for `identity`, but a gateway or
 * CDN may compress anyway (without Accept-Encoding any coding is acceptable, RFC 9110 §12.5.3): read
 * as UTF-8 it would be refused as "not JSON" and blamed on the endpoint. At most `limit` bytes are
 * decoded (a RangeError, ERR_BUFFER_TOO_LARGE, past it); a coding not known, or bytes that do not
 * decode, are left as they came.
 */
function decodeContent(bytes: Buffer, encoding: string | undefined, limit: number): Buffer {
  const coding = encoding?.trim().toLowerCase();
  if (coding === undefined || coding === '' || coding === 'identity') return bytes;
  const options = { maxOutputLength: Math.max(1, limit) };
  try {
    if (coding === 'gzip' || coding === 'x-gzip') return gunzipSync(bytes, options);
    if (coding === 'br') return brotliDecompressSync(bytes, options);
    if (coding === 'deflate') {
      // RFC 9110's deflate is zlib-wrapped; some servers send raw DEFLATE under that name.
      try {
        return inflateSync(bytes, options);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw error;
        return inflateRawSync(bytes, options);
      }
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw error;
  }
  return bytes;
}

/** Errors of a socket that the server closed while it sat idle in the pool (e.g. while Lambda was frozen). */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export function createTransport(options: TransportOptions = {}): Transport {
  const now = options.now ?? Date.now;
  const maxIdleMs = options.maxIdleMs ?? MAX_IDLE_MS;
  /** When each pooled socket was last put back, to close the stale ones before a request. */
  const idleSince = new WeakMap<object, number>();
  // As many sockets per host as a snapshot run makes calls at once: a request queued for a socket
  // would spend its KOODRIVE_TIMEOUT_MS waiting there and be reported as KooDrive's timeout.
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? MAX_SNAPSHOT_CONCURRENCY,
    scheduling: 'lifo' as const,
  };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent({ ...agentOptions, ...options.tls });
  // 'free' is the agent's own event for a socket whose request ended: the pool keeps it from then on.
  for (const agent of [http, https]) agent.on('free', (socket: object) => idleSince.set(socket, now()));

  /** Closes pooled sockets idle too long; the agent skips destroyed ones, so the request opens a new one. */
  const closeStale = (agent: HttpAgent) => {
    const cutoff = now() - maxIdleMs;
    for (const name in agent.freeSockets) {
      for (const socket of agent.freeSockets[name] ?? []) {
        if ((idleSince.get(socket) ?? Number.POSITIVE_INFINITY) < cutoff) socket.destroy();
      }
    }
  };

  const exchange = (request: TransportRequest, deadline: number, retryOnStale: boolean) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const { url } = request;
      const secure = url.protocol === 'https:';
      closeStale(secure ? https : http);
      const outgoing: OutgoingHttpHeaders = {
        ...request.headers,
        Host: url.host,
        'Accept-Encoding': 'identity',
      };
      let settled = false;
      /** The answer's status, once its headers came. */
      let answered: number | undefined;
      const req = (secure ? httpsRequest : httpRequest)(
        {
          protocol: url.protocol,
          hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          headers: outgoing,
          agent: secure ? https : http,
        },
        (response) => {
          answered = response.statusCode ?? 0;
          const declared = Number(response.headers['content-length'] ?? Number.NaN);
          if (Number.isFinite(declared) && declared > request.maxBodyBytes) {
            fail(
              new BodyTooLargeError(
                request.maxBodyBytes,
                response.statusCode ?? 0,
                response.headers,
                declared,
              ),
            );
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.byteLength;
            if (size > request.maxBodyBytes) {
              fail(new BodyTooLargeError(request.maxBodyBytes, response.statusCode ?? 0, response.headers));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            if (settled) return;
            let bytes: Buffer;
            try {
              bytes = decodeContent(
                chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
                response.headers['content-encoding'],
                request.maxBodyBytes,
              );
            } catch {
              fail(new BodyTooLargeError(request.maxBodyBytes, response.statusCode ?? 0, response.headers));
              return;
            }
            settled = true;
            clearTimeout(timer);
            const text = bytes.toString('utf8');
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              // A UTF-8 byte order mark (some Java and .NET servers write one) is not text: JSON.parse
              // would refuse the answer as "not JSON", which RFC 8259 lets a parser ignore instead.
              body: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text,
            });
          });
          response.on('error', (error) => fail(error));
        },
      );
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // The socket is not reusable once an answer was abandoned half-read.
        req.destroy();
        // A pooled socket the server had already closed fails before any answer: try once on a new one.
        const code = (error as { code?: unknown }).code;
        if (
          retryOnStale &&
          answered === undefined &&
          req.reusedSocket &&
          typeof code === 'string' &&
          STALE_SOCKET_CODES.has(code)
        ) {
          exchange(request, deadline, false).then(resolve, reject);
          return;
        }
        const ours = error instanceof BodyTooLargeError || error instanceof TransportTimeoutError;
        reject(answered !== undefined && !ours ? new AnswerCutOffError(answered, error) : error);
      };
      const timer = setTimeout(
        () =>
          fail(
            answered === undefined
              ? new TransportTimeoutError(`no answer within ${request.timeoutMs} ms`)
              : new TransportTimeoutError(
                  `the answer (HTTP ${answered}) did not end within ${request.timeoutMs} ms`,
                  answered,
                ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      req.on('error', fail);
      req.end();
    });

  return (request) => exchange(request, Date.now() + request.timeoutMs, true);
}
