/**
 * What the local stack's HTTP ports answer only: requests addressed to this machine by name, and not
 * sent by a web page of another origin. serverless-offline serves whoever connects to 127.0.0.1; a web
 * page the operator visits could otherwise rebind its own host name to 127.0.0.1 (DNS rebinding) and
 * read the API's answers (with `KOODRIVE_TENANTS` set, a real tenant's allocation), or make the browser
 * POST snapshot requests to the Lambda port. Browsers always send the page's host as `Host`, and an
 * `Origin` on cross-origin requests; curl, scripts and `npm run snapshot:local` send 127.0.0.1 or none.
 */
import type { IncomingHttpHeaders } from 'node:http';

const LOCAL_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

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
    if (name === undefined || !LOCAL_NAMES.has(name)) {
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
    if (name === undefined || !LOCAL_NAMES.has(name)) {
      return `This local stack answers no request a web page of another origin sends (this one came from '${origin.slice(0, 100)}'). Call it from curl, a script or a page served from 127.0.0.1.`;
    }
  }
  return undefined;
}
