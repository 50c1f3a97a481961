import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../lib/errors.ts';
import {
  compareExactInstants,
  isCanonicalInstant,
  MAX_INSTANT_MS,
  MIN_INSTANT_MS,
  parseExactInstant,
  parseInstant,
  toKeyInstant,
} from '../../lib/snapshots/instants.ts';

function parseError(value: string): InvalidRequestError {
  try {
    parseInstant(value, 'from');
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error(`expected '${value}' to be refused`);
}

describe('parseInstant', () => {
  it.each([
    ['2026-11-28T04:00:00Z', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T04:00Z', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T04:00:00.5Z', '2026-11-28T04:00:00.500Z'],
    ['2026-11-28T04:00:00.123Z', '2026-11-28T04:00:00.123Z'],
    ['2026-11-28t04:00:00z', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T05:00:00+01:00', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T05:00:00+0100', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T05:00:00+01', '2026-11-28T04:00:00.000Z'],
    ['2026-11-27T23:30:00-04:30', '2026-11-28T04:00:00.000Z'],
    ['2026-11-28T04:00:00,250Z', '2026-11-28T04:00:00.250Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    // A '+' that reached us as a space (an unencoded query string).
    ['2026-11-28T05:00:00 01:00', '2026-11-28T04:00:00.000Z'],
  ])('reads %s as %s', (text, expected) => {
    expect(parseInstant(text, 'to').toISOString()).toBe(expected);
  });

  // ISO 8601's basic format (no '-' or ':'), as KooDrive's own X-Date writes instants: as valid an
  // ISO 8601 instant as the extended one, so not to be refused as "not an ISO 8601 instant".
  it.each([
    ['20261128T040000Z', '2026-11-28T04:00:00.000Z'],
    ['20261128T0400Z', '2026-11-28T04:00:00.000Z'],
    ['20261128T040000.25Z', '2026-11-28T04:00:00.250Z'],
    ['20261128T040000,25Z', '2026-11-28T04:00:00.250Z'],
    ['20261128T050000+0100', '2026-11-28T04:00:00.000Z'],
    ['20261128T050000+01', '2026-11-28T04:00:00.000Z'],
    ['20261128T050000 0100', '2026-11-28T04:00:00.000Z'],
    ['20261128t040000z', '2026-11-28T04:00:00.000Z'],
  ])('reads the basic format %s as %s', (text, expected) => {
    expect(parseInstant(text, 'to').toISOString()).toBe(expected);
  });

  it('refuses a basic-format date or time that does not exist, and says a zone is missing', () => {
    expect(parseError('20260229T000000Z').message).toContain('does not exist');
    expect(parseError('20261128T040000').message).toContain('it has no time zone');
  });

  it('rounds digits beyond milliseconds down, or up for an inclusive lower bound', () => {
    expect(parseInstant('2026-11-28T04:00:00.1234Z', 'to').toISOString()).toBe('2026-11-28T04:00:00.123Z');
    expect(parseInstant('2026-11-28T04:00:00.1234Z', 'from', 'ceil').toISOString()).toBe(
      '2026-11-28T04:00:00.124Z',
    );
    expect(parseInstant('2026-11-28T04:00:00.123000Z', 'from', 'ceil').toISOString()).toBe(
      '2026-11-28T04:00:00.123Z',
    );
  });

  it('explains a value without a time zone, and a date alone', () => {
    expect(parseError('2026-11-28T04:00:00').message).toContain('it has no time zone');
    expect(parseError('2026-11-28').message).toContain('a date alone is not an instant');
  });

  it('says what is wrong with a zoned value that only looks unzoned: a space for the T, a six-digit year', () => {
    // Each has its zone: "not an instant with a time zone" alone would send the caller after the wrong part.
    expect(parseError('2026-11-28 04:00:00Z').message).toContain(
      '(separate the date and the time with T, not a space)',
    );
    expect(parseError('2026-11-28 04:00:00.5+01:00').message).toContain('with T, not a space');
    expect(parseError('+275760-09-13T00:00:00Z').message).toContain(
      '(write the year as four digits without a sign, 1970 to 9999)',
    );
    expect(parseError('-000001-01-01T00:00:00Z').message).toContain(
      'write the year as four digits without a sign',
    );
  });

  it.each([
    'yesterday',
    '1795838400000',
    '2026-11-28 04:00:00Z',
    '2026-11-28T04:00:00.Z',
    '2026-11-28T4:00:00Z',
    '+2026-11-28T04:00:00Z',
    'Sat, 28 Nov 2026 04:00:00 GMT',
    '2026-11-28T04:00:00ZZ',
    // Basic and extended mixed is neither.
    '20261128T04:00:00Z',
    '2026-11-28T040000Z',
  ])('refuses %s, naming the parameter and showing an example', (text) => {
    const error = parseError(text);
    expect(error.code).toBe('INVALID_REQUEST');
    expect(error.message).toMatch(/^from is '/);
    expect(error.message).toContain('2026-11-28T04:00:00Z');
  });

  it.each([
    '2026-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-11-28T24:00:01Z',
    '2026-11-28T24:01Z',
    '2026-11-28T24:00:00.001Z',
    '2026-11-28T24:00:60Z',
    '2026-11-28T23:60:00Z',
    '2026-11-28T23:59:61Z',
  ])('refuses %s, a time that does not exist', (text) => {
    expect(parseError(text).message).toContain('does not exist');
  });

  it("reads ISO 8601's end of day, 24:00, as the next day's 00:00 (as Date.parse does)", () => {
    expect(parseInstant('2026-11-30T24:00:00Z', 'to').toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(parseInstant('2026-12-31T24:00Z', 'to').toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(parseInstant('2026-11-30T24:00:00.000+01:00', 'to').toISOString()).toBe(
      '2026-11-30T23:00:00.000Z',
    );
    expect(parseInstant('20261130T240000Z', 'to').toISOString()).toBe('2026-12-01T00:00:00.000Z');
  });

  it('reads a leap second as POSIX time does: the next minute, at :00', () => {
    expect(parseInstant('2016-12-31T23:59:60Z', 'to').toISOString()).toBe('2017-01-01T00:00:00.000Z');
    expect(parseInstant('2016-12-31T23:59:60.5Z', 'to').toISOString()).toBe('2017-01-01T00:00:00.500Z');
    expect(parseInstant('2017-01-01T08:59:60+09:00', 'to').toISOString()).toBe('2017-01-01T00:00:00.000Z');
    expect(parseInstant('2016-12-31T23:59:60.9999Z', 'from', 'ceil').toISOString()).toBe(
      '2017-01-01T00:00:01.000Z',
    );
  });

  it('refuses offsets that are not offsets, and instants outside 1970–9999', () => {
    expect(parseError('2026-11-28T04:00:00+24:00').message).toContain('not a valid time zone offset');
    expect(parseError('1969-12-31T23:59:59Z').message).toContain(
      'between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z',
    );
    expect(parseError('9999-12-31T23:00:00-05:00').message).toContain('between');
    expect(parseInstant('1970-01-01T00:00:00Z', 'from').getTime()).toBe(0);
  });

  it('shows at most 80 characters of what it was given', () => {
    const message = parseError(`2026-${'9'.repeat(500)}`).message;
    expect(message.length).toBeLessThan(400);
  });

  it('reads a fraction of any number of digits, rounding past the millisecond', () => {
    expect(parseInstant('2026-11-28T03:00:00.123456789012Z', 'to').toISOString()).toBe(
      '2026-11-28T03:00:00.123Z',
    );
    expect(parseInstant('2026-11-28T03:00:00.123456789012Z', 'from', 'ceil').toISOString()).toBe(
      '2026-11-28T03:00:00.124Z',
    );
    // 40 characters, the most read: nineteen fraction digits.
    const nineteen = `2026-11-28T03:00:00.${'0'.repeat(18)}1Z`;
    expect(nineteen).toHaveLength(40);
    expect(parseInstant(nineteen, 'to').toISOString()).toBe('2026-11-28T03:00:00.000Z');
    expect(parseInstant(nineteen, 'from', 'ceil').toISOString()).toBe('2026-11-28T03:00:00.001Z');
    expect(parseInstant('2026-11-28T04:00:00.1234567890123+01:00', 'to').toISOString()).toBe(
      '2026-11-28T03:00:00.123Z',
    );
  });

  it('refuses an over-long value as too long, with its length, before any pattern runs on it', () => {
    const longest = '2026-11-28T04:00:00.123456789+01:00';
    expect(parseInstant(longest, 'from').toISOString()).toBe('2026-11-28T03:00:00.123Z');
    const message = parseError(`2026-11-28T04:00:00.${'1'.repeat(40)}Z`).message;
    expect(message).toMatch(
      /^from is '2026-11-28T04:00:00\.1+Z' \(61 characters\), too long: an instant may have at most 40 characters \(leave out fraction digits past the millisecond\)/,
    );
    expect(message).not.toContain('not an ISO 8601 instant');
    expect(message).toContain('2026-11-28T04:00:00Z');
  });

  it('refuses hostile input by its length, before the pattern that once backtracked on it runs', () => {
    // Inputs that made the decoded-'+' pattern backtrack quadratically (139 ms for 20,000 characters):
    // many T/t, no or one space. They are refused for their length now, so no pattern sees them.
    const hostile = [
      'T'.repeat(20_000),
      't'.repeat(20_000),
      `${'tT'.repeat(10_000)} 01`,
      `2026-11-28${'T'.repeat(20_000)} x`,
    ];
    for (const value of hostile) {
      expect(parseError(value).message).toContain(
        `(${value.length} characters), too long: an instant may have at most 40 characters`,
      );
    }
  });
});

describe('key instants', () => {
  it('accepts only the toISOString() form', () => {
    expect(isCanonicalInstant('2026-11-28T04:00:00.000Z')).toBe(true);
    expect(isCanonicalInstant('2026-11-28T04:00:00Z')).toBe(false);
    expect(isCanonicalInstant('2026-02-30T04:00:00.000Z')).toBe(false);
    expect(isCanonicalInstant('2026-11-28T04:00:00.000+00:00')).toBe(false);
  });

  it('refuses instants whose ISO string would not sort', () => {
    expect(toKeyInstant(new Date('2026-11-28T04:00:00Z'))).toBe('2026-11-28T04:00:00.000Z');
    expect(() => toKeyInstant(new Date(Date.UTC(10000, 0, 1)))).toThrow(RangeError);
    expect(() => toKeyInstant(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('parseInstant, edges', () => {
  it('knows which years are leap years: every fourth, but not centuries unless divisible by 400', () => {
    expect(parseInstant('2000-02-29T00:00:00Z', 'to').toISOString()).toBe('2000-02-29T00:00:00.000Z');
    expect(parseError('2100-02-29T00:00:00Z').message).toContain('does not exist');
    expect(parseError('2023-02-29T00:00:00Z').message).toContain('does not exist');
  });

  it.each(['2026-11-00T00:00:00Z', '2026-11-28T25:00:00Z', '20261100T000000Z'])(
    'refuses %s, a day or hour that does not exist',
    (text) => {
      expect(parseError(text).message).toContain('does not exist');
    },
  );

  it('accepts offsets up to ±23:59 and refuses minutes past 59', () => {
    expect(parseInstant('2026-11-28T23:59:00+23:59', 'to').toISOString()).toBe('2026-11-28T00:00:00.000Z');
    expect(parseInstant('2026-11-28T00:00:00-23:00', 'to').toISOString()).toBe('2026-11-28T23:00:00.000Z');
    expect(parseError('2026-11-28T04:00:00+01:60').message).toContain('not a valid time zone offset');
  });

  it("reads a '+' that arrived as a space before an hours-only offset", () => {
    expect(parseInstant('2026-11-28T05:00:00 01', 'to').toISOString()).toBe('2026-11-28T04:00:00.000Z');
  });

  it('refuses a basic-format instant with anything before or after it', () => {
    for (const text of ['x20261128T040000Z', '20261128T040000Zx', '20261128T050000+01000']) {
      expect(parseError(text).message).toContain('not an ISO 8601 instant with a time zone');
    }
  });

  it('accepts the last millisecond of 9999', () => {
    expect(parseInstant('9999-12-31T23:59:59.999Z', 'to').getTime()).toBe(MAX_INSTANT_MS);
    expect(parseInstant('9999-12-31T23:59:59.9991Z', 'to').getTime()).toBe(MAX_INSTANT_MS);
    expect(() => parseInstant('9999-12-31T23:59:59.9991Z', 'from', 'ceil')).toThrow(/between/);
    expect(parseError('10000-01-01T00:00:00Z').message).toContain('not an ISO 8601 instant');
  });

  it('gives no hint for a value the hints do not describe, only the sentence and the example', () => {
    for (const text of [
      'x2026-11-28',
      'x2026-11-28T04:00',
      '2026-11-28T04:00:00Zx',
      'x2026-11-28 04:00:00Z',
      'x+10000-01-01T00:00:00Z',
      'garbage',
    ]) {
      expect(parseError(text).message).toBe(
        `from is '${text}', not an ISO 8601 instant with a time zone; write it like 2026-11-28T04:00:00Z or 2026-11-28T05:00:00+01:00 (with '+' encoded as %2B).`,
      );
    }
  });

  it('shows a too-long value whole up to 80 characters, and cut with an ellipsis past that', () => {
    const eighty = `2026-11-28T04:00:00.${'1'.repeat(59)}Z`;
    expect(eighty).toHaveLength(80);
    expect(parseError(eighty).message).toMatch(
      /^from is '2026-11-28T04:00:00\.1{59}Z' \(80 characters\), too long/,
    );
    const longer = `${eighty}12345`;
    expect(parseError(longer).message).toMatch(
      /^from is '2026-11-28T04:00:00\.1{59}Z…' \(85 characters\), too long/,
    );
  });
});

describe('parseExactInstant and compareExactInstants', () => {
  it('keeps the digits past the millisecond, dropping only trailing zeros', () => {
    const exact = parseExactInstant('2026-11-28T04:00:00.1231000400Z', 'from');
    expect(exact).toEqual({
      name: 'from',
      value: '2026-11-28T04:00:00.1231000400Z',
      floorMs: Date.parse('2026-11-28T04:00:00.123Z'),
      beyondMs: '10004',
    });
    expect(parseExactInstant('2026-11-28T04:00:00.123Z', 'from').beyondMs).toBe('');
  });

  it('orders instants as written: by millisecond, then by the digits past it', () => {
    const at = (text: string) => parseExactInstant(text, 'from');
    expect(compareExactInstants(at('2026-11-28T04:00:00.123Z'), at('2026-11-28T04:00:00.124Z'))).toBe(-1);
    expect(compareExactInstants(at('2026-11-28T04:00:00.124Z'), at('2026-11-28T04:00:00.1239Z'))).toBe(1);
    expect(compareExactInstants(at('2026-11-28T04:00:00.1231Z'), at('2026-11-28T04:00:00.1232Z'))).toBe(-1);
    expect(compareExactInstants(at('2026-11-28T04:00:00.1232Z'), at('2026-11-28T04:00:00.1231Z'))).toBe(1);
    expect(compareExactInstants(at('2026-11-28T04:00:00.12310Z'), at('2026-11-28T05:00:00.1231+01:00'))).toBe(
      0,
    );
    expect(compareExactInstants(at('2026-11-28T04:00:00.123Z'), at('2026-11-28T04:00:00.1230001Z'))).toBe(-1);
  });
});

describe('key instants, edges', () => {
  it('refuses an extended-year ISO string as a key', () => {
    expect(isCanonicalInstant('+010000-01-01T00:00:00.000Z')).toBe(false);
    expect(isCanonicalInstant('-000001-01-01T00:00:00.000Z')).toBe(false);
  });

  it('takes 1970-01-01 to the last millisecond of 9999, and names that range when refusing', () => {
    expect(toKeyInstant(new Date(MIN_INSTANT_MS))).toBe('1970-01-01T00:00:00.000Z');
    expect(toKeyInstant(new Date(MAX_INSTANT_MS))).toBe('9999-12-31T23:59:59.999Z');
    for (const ms of [MIN_INSTANT_MS - 1, MAX_INSTANT_MS + 1]) {
      expect(() => toKeyInstant(new Date(ms))).toThrow(
        new RangeError(`The instant ${String(new Date(ms))} is outside 1970-01-01 to 9999-12-31 (UTC).`),
      );
    }
  });
});
