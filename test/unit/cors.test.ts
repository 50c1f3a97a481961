/** CORS of the HTTP API from the corsAllowedOrigins stage parameter, as packaging resolves it. */
import { describe, expect, it } from 'vitest';
import CorsPlugin, { httpApiCors, PREFLIGHT_ROUTE } from '../../serverless/cors.ts';

describe('httpApiCors', () => {
  it('is off when no origin is given', () => {
    expect(httpApiCors('')).toBe(false);
    expect(httpApiCors(' , ')).toBe(false);
  });

  it('lets the listed origins read GET answers and the trace id, with the JWT or SigV4 headers', () => {
    expect(
      httpApiCors(' https://dash.example.com,https://ops.example.com:8443,http://localhost:5173 '),
    ).toEqual({
      allowedOrigins: ['https://dash.example.com', 'https://ops.example.com:8443', 'http://localhost:5173'],
      allowedMethods: ['GET'],
      allowedHeaders: [
        'authorization',
        'content-type',
        'x-amz-date',
        'x-amz-security-token',
        'x-amz-content-sha256',
      ],
      exposedResponseHeaders: ['x-trace-id'],
      maxAge: 600,
    });
    expect(httpApiCors('*')).toMatchObject({ allowedOrigins: ['*'] });
  });

  it('refuses what a browser never sends as an origin, saying how to write it', () => {
    for (const origin of [
      'https://dash.example.com/',
      'https://dash.example.com/app',
      'dash.example.com',
      'http://dash.example.com',
      'ftp://dash.example.com',
      'https://DASH.example.com',
    ]) {
      expect(() => httpApiCors(origin), origin).toThrow(
        new RegExp(
          `corsAllowedOrigins has '${origin.replaceAll('.', '\\.').replaceAll('/', '\\/')}': give origins as a browser sends them`,
        ),
      );
    }
    expect(() => httpApiCors('*,https://dash.example.com')).toThrow(/give \* alone, or the origins alone/);
  });

  it('is resolved from the stage parameter the variable names', async () => {
    const source = new CorsPlugin({ service: { provider: {}, functions: {} } }).configurationVariablesSources
      .httpApiCors;
    const resolveVariable = async (variable: string) =>
      variable === 'param:corsAllowedOrigins' ? 'https://dash.example.com' : undefined;
    expect(await source.resolve({ address: 'corsAllowedOrigins', resolveVariable })).toMatchObject({
      value: { allowedOrigins: ['https://dash.example.com'] },
    });
    await expect(source.resolve({ address: 'not a name', resolveVariable })).rejects.toThrow(
      /needs the name of a stage parameter/,
    );
    // osls prints a variable source's error without its stack only when its class is named ServerlessError.
    const refused = await source
      .resolve({ address: 'corsAllowedOrigins', resolveVariable: async () => 'dash.example.com' })
      .catch((error: unknown) => error);
    expect((refused as Error).constructor.name).toBe('ServerlessError');
    expect((refused as Error).message).toMatch(/^corsAllowedOrigins has 'dash\.example\.com'/);
  });

  it('adds an unauthorized OPTIONS route for preflights to the $default function only when CORS is on', () => {
    const packaged = (cors: unknown) => {
      const service = {
        provider: { httpApi: { cors } },
        functions: { allocation: { events: [{ httpApi: { method: 'GET', path: '/allocation' } }] } },
      };
      const hook = new CorsPlugin({ service }).hooks['before:package:compileEvents'];
      hook?.();
      hook?.();
      return service.functions.allocation.events;
    };
    expect(packaged(httpApiCors('https://dash.example.com'))).toEqual([
      { httpApi: { method: 'GET', path: '/allocation' } },
      PREFLIGHT_ROUTE,
    ]);
    expect(PREFLIGHT_ROUTE.httpApi).not.toHaveProperty('authorizer');
    expect(packaged(httpApiCors(''))).toEqual([{ httpApi: { method: 'GET', path: '/allocation' } }]);
  });
});
