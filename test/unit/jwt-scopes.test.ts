import { describe, expect, it } from 'vitest';
import JwtScopesPlugin, { jwtScopes } from '../../serverless/jwt-scopes.ts';

describe('jwtScopes', () => {
  it('reads comma- or space-separated OAuth scopes, once each, and nothing from an empty value', () => {
    expect(jwtScopes('', 'jwt')).toEqual([]);
    expect(jwtScopes('  ', 'iam')).toEqual([]);
    expect(jwtScopes('koodrive-allocation/read, ops/admin ops/admin', 'jwt')).toEqual([
      'koodrive-allocation/read',
      'ops/admin',
    ]);
  });

  it('refuses a scope OAuth would not send, and scopes without the JWT authorizer', () => {
    expect(() => jwtScopes('read,"all"', 'jwt')).toThrow(/jwtScopes has '"all"': give OAuth scopes/);
    expect(() => jwtScopes('koodrive/read', 'iam')).toThrow(
      /jwtScopes is set, but the routes use the 'iam' authorizer, which has no scopes: set authorizer=jwt/,
    );
  });
});

describe('the plugin', () => {
  const service = (scopes: string, authorizer: string) => ({
    service: {
      custom: { jwtScopes: { scopes, authorizer } },
      functions: {
        allocation: {
          events: [
            { httpApi: { method: 'GET', path: '/allocation', authorizer: { name: 'jwt' } } },
            // The preflight route: no authorizer, so no scopes.
            { httpApi: { method: 'OPTIONS', path: '/{proxy+}' } },
          ],
        },
        history: { events: [{ httpApi: { method: 'GET', path: '/h', authorizer: { type: 'aws_iam' } } }] },
        snapshot: { events: [{ sqs: { arn: 'arn' } }] },
      },
    },
  });

  it('gives every route behind the JWT authorizer the scopes, and no other route', () => {
    const serverless = service('koodrive-allocation/read', 'jwt');
    new JwtScopesPlugin(serverless).hooks['before:package:compileEvents']?.();
    const { allocation, history } = serverless.service.functions;
    expect(allocation.events[0]).toEqual({
      httpApi: {
        method: 'GET',
        path: '/allocation',
        authorizer: { name: 'jwt', scopes: ['koodrive-allocation/read'] },
      },
    });
    expect(allocation.events[1]).toEqual({ httpApi: { method: 'OPTIONS', path: '/{proxy+}' } });
    expect(history.events[0]).toEqual({
      httpApi: { method: 'GET', path: '/h', authorizer: { type: 'aws_iam' } },
    });
  });

  it('changes nothing without scopes, and fails packaging as a user error with bad ones', () => {
    const plain = service('', 'jwt');
    const before = structuredClone(plain);
    new JwtScopesPlugin(plain).hooks['before:package:compileEvents']?.();
    expect(plain).toEqual(before);
    const bad = new JwtScopesPlugin(service('read', 'iam'));
    expect(() => bad.hooks['before:package:compileEvents']?.()).toThrow(
      expect.objectContaining({ name: 'ServerlessError' }),
    );
  });
});
