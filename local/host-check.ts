/**
 * What the local stack's HTTP ports answer only: requests addressed to this machine by name, and not
 * sent by a web page of another origin. serverless-offline serves whoever connects to 127.0.0.1; a web
 * page the operator visits could otherwise rebind its own host name to 127.0.0.1 (DNS rebinding) and
 * read the API's answers (with `KOODRIVE_TENANTS` set, a real tenant's allocation), or make the browser
 * POST snapshot requests to the Lambda port. Browsers always send the page's host as `Host`, and an
 * `Origin` on cross-origin requests; curl, scripts and `npm run snapshot:local` send 127.0.0.1 or none.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';

const LOCAL_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether a lower-cased host name is this machine's; `localhost.` (fully qualified, RFC 6761's) too. */
function isLocalName(name: string): boolean {
  return LOCAL_NAMES.has(name.endsWith('.') ? name.slice(0, -1) : name);
}

/** The host name of a `Host` value (`name[:port]`, IPv6 in brackets), lower-cased; undefined if malformed. */
function hostName(host: string): string | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host.trim());
  return match?.[1]?.toLowerCase();
}

/**
 * Why the request must not be served, or undefined when it may. A request without `Host` (HTTP/1.0)
 * passes: browsers always send one.
 */
export function refusedRequest(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host;
  if (host !== undefined) {
    const name = hostName(host);
    if (name === undefined || !isLocalName(name)) {
      return `This local stack answers only requests addressed to 127.0.0.1 or localhost; this one came for host '${host.slice(0, 100)}', the way a web page reaches it by DNS rebinding. Call it as http://127.0.0.1:<port>/….`;
    }
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    let name: string | undefined;
    try {
      const url = new URL(origin);
      name = url.protocol === 'http:' || url.protocol === 'https:' ? url.hostname.toLowerCase() : undefined;
    } catch {
      name = undefined;
    }
    if (name === undefined || !isLocalName(name)) {
      return `This local stack answers no request a web page of another origin sends (this one came from '${origin.slice(0, 100)}'). Call it from curl, a script or a page served from 127.0.0.1.`;
    }
  }
  return undefined;
}

/**
 * Answers a refused request: 403 problem+json saying why, in the contract's shape (a `code`, and a
 * `traceId` that is also the `x-trace-id` header); nothing else sees it.
 */
function refuse(response: ServerResponse, why: string): void {
  const traceId = randomUUID();
  const body = JSON.stringify({
    type: 'about:blank',
    title: 'Forbidden',
    status: 403,
    detail: why,
    code: 'LOCAL_STACK_ONLY',
    traceId,
  });
  response.writeHead(403, {
    'content-type': 'application/problem+json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    'x-trace-id': traceId,
  });
  response.end(body);
}

/**
 * Lets `answer` see every request `target` (a server, or every server's prototype) receives before its
 * listeners do: when it answers one (returns true), nothing else sees it.
 */
export function answerRequestsFirst(
  target: Pick<Server, 'emit'>,
  answer: (request: IncomingMessage, response: ServerResponse) => boolean,
): void {
  const emit = target.emit;
  target.emit = function answering(this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      if (answer(request, response)) return true;
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as Server['emit'];
}

/** Answers a request {@link refusedRequest} refuses. */
function refuseIfNotLocal(request: IncomingMessage, response: ServerResponse): boolean {
  const why = refusedRequest(request.headers);
  if (why === undefined) return false;
  refuse(response, why);
  return true;
}

/** Keeps one server's requests to {@link refusedRequest}'s: whatever listens to them never sees the others. */
function guardServer(server: Server): void {
  answerRequestsFirst(server, refuseIfNotLocal);
}

/** Guards a server about to listen on `host` when that is a loopback address (`::1` as bound, unbracketed). */
export function guardOnLoopback(server: Server, host: string): void {
  if (isLocalName(host.includes(':') ? `[${host}]` : host.toLowerCase())) guardServer(server);
}

/** The same for every HTTP server this process makes or has made (serverless offline's, from its preload). */
export function guardEveryServer(prototype: Server): void {
  answerRequestsFirst(prototype, refuseIfNotLocal);
}
