/**
 * A local osls plugin: `${httpApiCors:<param>}` turns the comma-separated origins in that stage parameter
 * into `provider.httpApi.cors`, so that a browser page on those origins (an internal dashboard calling the
 * API with a JWT, or SigV4 in the browser) may read the answers. Empty: no CORS at all, API Gateway's default.
 * Resolved offline, at package and print time; a malformed origin fails packaging with what to write.
 */
import { stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';

export interface HttpApiCors {
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  exposedResponseHeaders: string[];
  maxAge: number;
}

/** What a browser may send: the JWT, and what SigV4 signing in the browser adds. */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
];

/**
 * The CORS configuration for `origins` (`https://a.example.com,https://b.example.com`), or `false` for
 * none. Origins are scheme, host and port only, as browsers send them; `*` allows any origin.
 */
export function httpApiCors(origins: string): HttpApiCors | false {
  const list = origins
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  if (list.length === 0) return false;
  for (const origin of list) {
    if (origin === '*') continue;
    const url = URL.canParse(origin) ? new URL(origin) : undefined;
    const loopback = url !== undefined && /^(?:localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(url.hostname);
    const scheme = url?.protocol === 'https:' || (url?.protocol === 'http:' && loopback);
    if (url === undefined || !scheme || url.origin !== origin) {
      throw new Error(
        `corsAllowedOrigins has '${origin}': give origins as a browser sends them, scheme, host and optional port, ` +
          'with no path or trailing slash (e.g. https://dashboard.example.com); https only, except http:// for a loopback host (localhost, 127.x, [::1]); or * for any.',
      );
    }
  }
  if (list.includes('*') && list.length > 1) {
    throw new Error(
      `corsAllowedOrigins mixes * with origins ('${origins}'): give * alone, or the origins alone.`,
    );
  }
  return {
    allowedOrigins: [...new Set(list)],
    allowedMethods: ['GET'],
    allowedHeaders: ALLOWED_HEADERS,
    // The trace id is the first thing to quote when an answer is wrong.
    exposedResponseHeaders: ['x-trace-id'],
    maxAge: 600,
  };
}

/**
 * The route that lets browsers' preflights through when CORS is on: `OPTIONS /{proxy+}` without an
 * authorizer, to the function that serves `$default`. API Gateway answers preflights itself only when no
 * route catches them, and the `$default` route (authorized) would catch them: a preflight carries no
 * credentials, so it would get 403 (IAM) or 401 (JWT) and the browser would block the call.
 */
export const PREFLIGHT_ROUTE = { httpApi: { method: 'OPTIONS', path: '/{proxy+}' } } as const;

interface ServerlessLike {
  service: {
    provider: { httpApi?: { cors?: unknown } };
    functions: Record<string, { events?: unknown[] } | undefined>;
  };
}

/** The plugin osls loads from `plugins:`: the variable source, and the preflight route when CORS is on. */
export default class CorsPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    this.hooks = {
      'before:package:compileEvents': () => {
        const cors = serverless.service.provider.httpApi?.cors;
        const fn = serverless.service.functions.allocation;
        if (cors === undefined || cors === false || cors === null || fn === undefined) return;
        const events = fn.events ?? [];
        if (!events.some((event) => JSON.stringify(event) === JSON.stringify(PREFLIGHT_ROUTE))) {
          fn.events = [...events, PREFLIGHT_ROUTE];
        }
      },
    };
  }

  readonly configurationVariablesSources = {
    httpApiCors: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const name = stageParamName('httpApiCors', context, 'corsAllowedOrigins');
        const value = await context.resolveVariable(`param:${name}`);
        return { value: httpApiCors(typeof value === 'string' ? value : '') };
      }),
    },
  };
}
