import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CredentialsUnavailableError,
  ERROR_CODES,
  StoreUnavailableError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../../lib/errors.ts';
import { jsonResponse, problemResponse, toProblem } from '../../lib/http/responses.ts';

describe('problem+json', () => {
  it('maps each error of the family to its contract status and code', () => {
    const cases = [
      [new ConfigurationError('x'), 500, 'CONFIGURATION_ERROR'],
      [new CredentialsUnavailableError('x'), 503, 'CREDENTIALS_UNAVAILABLE'],
      [new StoreUnavailableError('x'), 503, 'STORE_UNAVAILABLE'],
      [new UpstreamRejectedError('x'), 502, 'UPSTREAM_REJECTED'],
      [new UpstreamError('x'), 502, 'UPSTREAM_ERROR'],
      [new UpstreamTimeoutError('x'), 504, 'UPSTREAM_TIMEOUT'],
    ] as const;
    for (const [error, status, code] of cases) {
      const problem = toProblem(error, 't');
      expect(problem).toMatchObject({ status, code, detail: 'x', traceId: 't' });
      expect(ERROR_CODES[code]).toBe(status);
    }
  });

  it('carries the upstream code and message when KooDrive gave them', () => {
    const problem = toProblem(
      new UpstreamError('bad', { upstreamCode: '13000201', upstreamMessage: 'inner' }),
      't',
    );
    expect(problem.upstreamCode).toBe('13000201');
    expect(problem.upstreamMessage).toBe('inner');
  });

  it('hides the message and stack of unexpected errors', () => {
    const response = problemResponse(
      new TypeError('secret-looking internals at /var/task/x.js:1'),
      'trace-1',
    );
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers['x-trace-id']).toBe('trace-1');
    expect(response.body).not.toContain('internals');
    expect(JSON.parse(String(response.body))).toMatchObject({
      code: 'INTERNAL_ERROR',
      status: 500,
      traceId: 'trace-1',
    });
  });

  it('answers JSON with the trace id header', () => {
    const response = jsonResponse(200, { a: 1 }, 'trace-2');
    expect(response.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace-id': 'trace-2' });
    expect(JSON.parse(String(response.body))).toEqual({ a: 1 });
  });
});
