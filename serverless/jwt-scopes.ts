/**
 * A local osls plugin: the `jwtScopes` stage parameter (`custom.jwtScopes`) as the authorization scopes of
 * every route behind the JWT authorizer. Without scopes, any token of the issuer for the audience reads
 * every tenant; with them, API Gateway also wants one of the route's scopes in the token's `scope` (or
 * `scp`) claim (e.g. a Cognito resource server's `koodrive-allocation/read`). Empty: no scopes, as before.
 * Checked at package time: scope syntax (RFC 6749), and only with `authorizer: jwt` (IAM has no scopes).
 */
import { asUserError } from './plugin-support.ts';

/** RFC 6749 §3.3: a scope token is one or more of %x21 / %x23-5B / %x5D-7E (no space, `"` or `\`). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The scopes for a parameter value (comma- or space-separated), or [] for none; throws what to write instead. */
export function jwtScopes(value: unknown, authorizer: unknown): string[] {
  const scopes = [
    ...new Set(
      String(value ?? '')
        .split(/[\s,]+/)
        .filter((scope) => scope !== ''),
    ),
  ];
  if (scopes.length === 0) return [];
  const bad = scopes.find((scope) => !SCOPE_TOKEN.test(scope));
  if (bad !== undefined) {
    throw new Error(
      `jwtScopes has '${bad}': give OAuth scopes (letters, digits and punctuation other than " and \\), separated by commas, e.g. koodrive-allocation/read.`,
    );
  }
  if (String(authorizer ?? '').trim() !== 'jwt') {
    throw new Error(
      `jwtScopes is set, but the routes use the '${String(authorizer)}' authorizer, which has no scopes: set authorizer=jwt (with jwtIssuerUrl and jwtAudience), or leave jwtScopes empty.`,
    );
  }
  return scopes;
}

interface HttpApiEvent {
  httpApi?: { authorizer?: { name?: unknown; scopes?: unknown } | unknown };
}

interface ServerlessLike {
  service: {
    custom?: Record<string, unknown>;
    functions: Record<string, { events?: unknown[] } | undefined>;
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The plugin osls loads from `plugins:`. */
export default class JwtScopesPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    this.hooks = {
      // Before the HTTP API's routes are compiled from the functions' events.
      'before:package:compileEvents': () => {
        const settings = serverless.service.custom?.jwtScopes;
        const { scopes: value, authorizer } = isRecord(settings) ? settings : {};
        let scopes: string[];
        try {
          scopes = jwtScopes(value, authorizer);
        } catch (error) {
          throw asUserError(error);
        }
        if (scopes.length === 0) return;
        for (const fn of Object.values(serverless.service.functions)) {
          for (const event of fn?.events ?? []) {
            const route = isRecord(event) ? (event as HttpApiEvent).httpApi : undefined;
            // The routes behind the JWT authorizer; the preflight route has no authorizer.
            if (isRecord(route) && isRecord(route.authorizer) && route.authorizer.name === 'jwt') {
              route.authorizer = { ...route.authorizer, scopes };
            }
          }
        }
      },
    };
  }
}
