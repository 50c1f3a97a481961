import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../lib/errors.ts';
import { encodeCursor } from '../../lib/snapshots/cursor.ts';
import { type HistoryParams, resolveHistoryQuery } from '../../lib/snapshots/history-query.ts';

const KEY = 'history-query-test-key';
const NOW = new Date('2026-11-28T04:00:00.250Z');
const options = { now: NOW, cursorKey: KEY };

function resolve(params: HistoryParams) {
  const query = resolveHistoryQuery(params, options);
  return { ...query, from: query.from.toISOString(), to: query.to.toISOString() };
}

function refusal(params: HistoryParams): string {
  try {
    resolveHistoryQuery(params, options);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error.message;
    throw error;
  }
  throw new Error('expected an InvalidRequestError');
}

describe('resolveHistoryQuery', () => {
  it('defaults to the last 7 days up to now, 500 items', () => {
    expect(resolve({})).toEqual({
      from: '2026-11-21T04:00:00.250Z',
      to: '2026-11-28T04:00:00.250Z',
      limit: 500,
    });
  });

  it('treats empty parameters as absent, as the contract writes the route', () => {
    expect(resolve({ from: '', to: '', limit: '', cursor: '' })).toEqual(resolve({}));
  });

  it('counts the default from back from an explicit to', () => {
    // Digits past the millisecond: to minus 7 days is …00.0005Z, so the inclusive from rounds up.
    expect(resolve({ to: '2026-11-28T04:00:00.0005Z' })).toMatchObject({
      from: '2026-11-21T04:00:00.001Z',
      to: '2026-11-28T04:00:00.000Z',
    });
    expect(resolve({ to: '2026-01-08T00:00:00+01:00' })).toMatchObject({
      from: '2025-12-31T23:00:00.000Z',
      to: '2026-01-07T23:00:00.000Z',
    });
  });

  it('keeps explicit bounds, normalized to UTC milliseconds, and accepts from = to', () => {
    expect(resolve({ from: '2026-11-01T00:00:00Z', to: '2026-11-01T00:00:00Z', limit: '1' })).toEqual({
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-11-01T00:00:00.000Z',
      limit: 1,
    });
    expect(resolve({ limit: '1000' }).limit).toBe(1000);
  });

  it('refuses from after to, saying where to came from', () => {
    expect(refusal({ from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' })).toBe(
      'from (2026-11-02T00:00:00Z) is later than to (2026-11-01T00:00:00Z): from must not be after to.',
    );
    expect(refusal({ from: '2026-12-01T00:00:00Z' })).toBe(
      'from (2026-12-01T00:00:00Z) is later than to (2026-11-28T04:00:00.250Z) (to defaults to now): from must not be after to.',
    );
  });

  it('compares from and to as written, every digit, not as rounded to milliseconds', () => {
    // No millisecond lies in these ranges (from rounds up, to down), but they are ranges all the same.
    expect(resolve({ from: '2026-11-28T03:00:00.0005Z', to: '2026-11-28T03:00:00.0005Z' })).toEqual({
      from: '2026-11-28T03:00:00.001Z',
      to: '2026-11-28T03:00:00.000Z',
      limit: 500,
    });
    expect(resolve({ from: '2026-11-28T03:00:00.0005Z', to: '2026-11-28T03:00:00.0009Z' })).toMatchObject({
      from: '2026-11-28T03:00:00.001Z',
      to: '2026-11-28T03:00:00.000Z',
    });
    // Trailing zeros and offsets change nothing; the default to (now) has no digits past the millisecond.
    expect(resolve({ from: '2026-11-28T04:00:00.00050Z', to: '2026-11-28T05:00:00.0005000+01:00' }).to).toBe(
      '2026-11-28T04:00:00.000Z',
    );
    expect(resolve({ from: '2026-11-28T04:00:00.2500Z' }).from).toBe('2026-11-28T04:00:00.250Z');
    // The message quotes the values as the caller wrote them.
    expect(refusal({ from: '2026-11-28T03:00:00.0009Z', to: '2026-11-28T03:00:00.0005Z' })).toBe(
      'from (2026-11-28T03:00:00.0009Z) is later than to (2026-11-28T03:00:00.0005Z): from must not be after to.',
    );
    expect(refusal({ from: '2026-11-28T03:00:00.00051Z', to: '2026-11-28T03:00:00.0005Z' })).toMatch(
      /^from \(2026-11-28T03:00:00.00051Z\) is later than to/,
    );
    expect(refusal({ from: '2026-11-28T04:00:00.2501Z' })).toMatch(
      /^from \(2026-11-28T04:00:00.2501Z\) is later than to \(2026-11-28T04:00:00.250Z\) \(to defaults to now\)/,
    );
  });

  it.each(['0', '1001', '-1', '1.5', 'abc', '10e2', ' 5', '0x10'])('refuses limit=%s', (limit) => {
    expect(refusal({ limit })).toBe(
      `limit is '${limit}': it must be a whole number from 1 to 1000 (default 500).`,
    );
  });

  it('rounds sub-millisecond bounds inward, so an inclusive range admits nothing outside it', () => {
    // Snapshots are keyed to the millisecond: from 00.0001 must not admit one at 00.000, nor to 00.9999 one at 01.000.
    expect(resolve({ from: '2026-11-01T00:00:00.0001Z', to: '2026-11-02T00:00:00.9999Z' })).toMatchObject({
      from: '2026-11-01T00:00:00.001Z',
      to: '2026-11-02T00:00:00.999Z',
    });
    expect(resolve({ from: '2026-11-01T00:00:00.0010Z', to: '2026-11-02T00:00:00.0010Z' })).toMatchObject({
      from: '2026-11-01T00:00:00.001Z',
      to: '2026-11-02T00:00:00.001Z',
    });
  });

  it('reads leading zeros of limit as the number they write', () => {
    expect(resolve({ limit: '0010' }).limit).toBe(10);
    expect(resolve({ limit: '00001' }).limit).toBe(1);
    expect(refusal({ limit: '00000' })).toMatch(/^limit is '00000': it must be a whole number from 1/);
  });

  it('without a rawQueryString, guesses a repeat from the comma-joined value (API Gateway joins repeats with commas)', () => {
    expect(refusal({ from: '2026-11-28T00:00:00Z,2026-11-27T00:00:00Z' })).toBe(
      "from was given 2 times ('2026-11-28T00:00:00Z,2026-11-27T00:00:00Z'): give it once.",
    );
    expect(refusal({ to: '2026-11-28T00:00:00Z,2026-11-27T00:00:00Z,2026-11-26T00:00:00Z' })).toMatch(
      /^to was given 3 times/,
    );
    expect(refusal({ limit: '5,6' })).toBe("limit was given 2 times ('5,6'): give it once.");
    expect(refusal({ cursor: 'abc,def' })).toMatch(/^cursor was given 2 times/);
    // A decimal comma in an instant's fraction is ISO 8601, not a repeat.
    expect(resolve({ from: '2026-11-01T00:00:00,5Z', to: '2026-11-02T00:00:00Z' }).from).toBe(
      '2026-11-01T00:00:00.500Z',
    );
  });

  it("counts repeats in the event's rawQueryString, so a value with a comma of its own is one value", () => {
    const withRaw = (params: HistoryParams, rawQueryString: string) => {
      try {
        const query = resolveHistoryQuery(params, { ...options, rawQueryString });
        return { ...query, from: query.from.toISOString(), to: query.to.toISOString() };
      } catch (error) {
        if (error instanceof InvalidRequestError) return error.message;
        throw error;
      }
    };
    // A decimal comma, then an offset: one value, though its parts look like two instants to the guess.
    expect(
      withRaw({ to: '2026-11-28T00:00:00,1234-05:00' }, 'to=2026-11-28T00:00:00,1234-05:00'),
    ).toMatchObject({
      to: '2026-11-28T05:00:00.123Z',
    });
    expect(withRaw({ limit: '1,000' }, 'limit=1%2C000')).toBe(
      "limit is '1,000': it must be a whole number from 1 to 1000 (default 500).",
    );
    // Given twice: names decoded (percent-encoding, '+' as a space) before they are counted.
    expect(withRaw({ limit: '5,6' }, 'limit=5&limit=6')).toBe(
      "limit was given 2 times ('5,6'): give it once.",
    );
    expect(withRaw({ limit: '5,6' }, 'lim%69t=5&limit=6')).toMatch(/^limit was given 2 times/);
    expect(withRaw({ limit: '6' }, 'limit+=5&limit=6')).toMatchObject({ limit: 6 });
    expect(withRaw({ from: '2026-11-28T00:00:00Z,' }, 'from=2026-11-28T00:00:00Z&from=')).toMatch(
      /^from was given 2 times/,
    );
    expect(withRaw({ cursor: 'abc,def' }, 'cursor=abc&cursor=def&to=')).toMatch(/^cursor was given 2 times/);
    // Without a rawQueryString (an event built by hand), the guess from the comma-joined value stays.
    expect(refusal({ to: '2026-11-28T00:00:00,1234-05:00' })).toMatch(/^to was given 2 times/);
  });

  it('names the parameter that is not an instant', () => {
    expect(refusal({ from: 'last week' })).toMatch(/^from is 'last week', not an ISO 8601 instant/);
    expect(refusal({ to: '2026-11-28T04:00:00' })).toMatch(/^to is .*\(it has no time zone/);
  });

  it('takes a missing from and to from the cursor, so nextCursor alone gives the next page', () => {
    const cursor = encodeCursor(KEY, {
      tenantId: 'acme',
      from: '2026-10-01T00:00:00.000Z',
      to: '2026-10-31T00:00:00.000Z',
      lastKey: { tenantId: 'acme', observedAt: '2026-10-02T00:00:00.000Z' },
    });
    expect(resolve({ cursor })).toEqual({
      from: '2026-10-01T00:00:00.000Z',
      to: '2026-10-31T00:00:00.000Z',
      limit: 500,
      cursor,
    });
    // Explicit values are kept (the store then checks they match the cursor).
    expect(resolve({ cursor, to: '2026-11-01T00:00:00Z' }).to).toBe('2026-11-01T00:00:00.000Z');
  });

  it("says a bound it took from the cursor is the cursor's, when the other one, given, is past it", () => {
    const cursor = encodeCursor(KEY, {
      tenantId: 'acme',
      from: '2026-10-01T00:00:00.000Z',
      to: '2026-10-31T00:00:00.000Z',
      lastKey: { tenantId: 'acme', observedAt: '2026-10-02T00:00:00.000Z' },
    });
    // The caller wrote one bound: the other is the cursor's, which "from must not be after to" hides.
    expect(refusal({ cursor, from: '2026-11-01T00:00:00Z' })).toBe(
      "from (2026-11-01T00:00:00Z) is later than to (2026-10-31T00:00:00.000Z) (to is the cursor's): from must not be after to. A cursor keeps the range it was issued for: pass the same from and to with it, or leave them out.",
    );
    expect(refusal({ cursor, to: '2026-09-01T00:00:00Z' })).toBe(
      "from (2026-10-01T00:00:00.000Z) (from is the cursor's) is later than to (2026-09-01T00:00:00Z): from must not be after to. A cursor keeps the range it was issued for: pass the same from and to with it, or leave them out.",
    );
  });

  it('refuses a forged cursor before anything else uses it', () => {
    expect(refusal({ cursor: 'eyJ2IjoxfQ.AAAA' })).toContain('cursor was not issued by this service');
  });
});
