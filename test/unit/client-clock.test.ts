import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../lib/koodrive/client.ts';

describe('parseHttpDate: IMF-fixdate only', () => {
  it('reads the form servers send', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Sat, 28 Nov 2026 04:00:00 GMT')).toBe(Date.UTC(2026, 10, 28, 4));
  });

  it.each([
    undefined,
    '',
    '0',
    'garbage 2000',
    '2026-11-28T04:00:00Z',
    'Mon, 01 Jan 10001 00:00:00 GMT',
    'Sunday, 06-Nov-94 08:49:37 GMT',
    'Sun Nov  6 08:49:37 1994',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'sun, 06 nov 1994 08:49:37 gmt',
    ' Sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Mon, 06 Nov 1994 08:49:37 GMT',
    'Mon, 30 Feb 2026 00:00:00 GMT',
    'Sat, 28 Nov 2026 24:00:00 GMT',
    'Sat, 28 Nov 2026 23:59:60 GMT',
  ])('refuses %j', (value) => {
    expect(parseHttpDate(value)).toBeUndefined();
  });
});
