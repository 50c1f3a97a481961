/**
 * Instants as snapshots use them. Keys are `Date#toISOString()` strings (UTC, milliseconds, four-digit
 * year), which sort as strings in time order: that is what makes DynamoDB's range queries correct.
 */
import { InvalidRequestError } from '../errors.ts';

const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
// Extended ISO 8601 with a time and a zone designator; the fraction may have any number of digits
// (ISO 8601 sets no limit; MAX_INSTANT_LENGTH bounds the whole value).
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)$/;
// The same in ISO 8601's basic format (`20261128T040000Z`, as KooDrive's X-Date writes it): no '-' or
// ':', the offset `+0100` or `+01`. The two formats are not mixed within one value.
const BASIC_INSTANT =
  /^(\d{4})(\d{2})(\d{2})[Tt](\d{2})(\d{2})(?:(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?:\d{2})?)$/;
// A '+' sent unencoded in a query string arrives as a space: `…T05:00:00 01:00`. `[^ T]*T` (with the
// `i` flag, also not `t`) can match in one way only, so the match is linear in the input's length.
const DECODED_PLUS = /^([^ T]*T[^ ]*) (\d{2}(?::?\d{2})?)$/i;
/**
 * The longest value read as an instant: room for nanoseconds and an offset
 * (`2026-11-28T04:00:00.123456789+01:00` has 35 characters) and a few digits more. Fraction digits past
 * the millisecond only round it, so nothing useful is longer; longer input is refused, as too long,
 * before any pattern runs on it.
 */
const MAX_INSTANT_LENGTH = 40;

/** The earliest and latest instants whose ISO strings keep a four-digit year and sort correctly. */
export const MIN_INSTANT_MS = Date.UTC(1970, 0, 1);
export const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const EXAMPLE = '2026-11-28T04:00:00Z or 2026-11-28T05:00:00+01:00';

/** True for the one string form snapshot keys use (`2026-11-28T04:00:00.000Z`). */
export function isCanonicalInstant(value: string): boolean {
  if (!CANONICAL.test(value)) return false;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && new Date(ms).toISOString() === value;
}

/** The key form of an instant; throws RangeError outside 1970–9999, where string order would break. */
export function toKeyInstant(date: Date): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms) || ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
    throw new RangeError(`The instant ${String(date)} is outside 1970-01-01 to 9999-12-31 (UTC).`);
  }
  return date.toISOString();
}

function daysInMonth(year: number, month: number): number {
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return days[month - 1] ?? 0;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * An instant as written, to full precision: the millisecond it falls in, and the fraction digits past
 * the millisecond (trailing zeros dropped, so equal instants have equal digits).
 */
export interface ExactInstant {
  /** The parameter it was given as, and its text, for messages. */
  name: string;
  value: string;
  /** Epoch milliseconds, rounded down; not range-checked (see {@link roundInstant}). */
  floorMs: number;
  /** The digits past the millisecond, '' when there are none. */
  beyondMs: string;
}

/**
 * Parses an ISO 8601 instant that names its time zone (`Z` or an offset), keeping every digit.
 * A mistake is an InvalidRequestError naming `name` and saying what a valid value looks like.
 */
export function parseExactInstant(value: string, name: string): ExactInstant {
  const shown = `'${value.slice(0, 80)}'`;
  if (value.length > MAX_INSTANT_LENGTH) {
    throw new InvalidRequestError(
      `${name} is ${value.length > 80 ? `${shown.slice(0, -1)}…'` : shown} (${value.length} characters), too long: an instant may have at most ${MAX_INSTANT_LENGTH} characters (leave out fraction digits past the millisecond); write it like ${EXAMPLE}.`,
    );
  }
  const text = value.replace(DECODED_PLUS, '$1+$2');
  const match = INSTANT.exec(text) ?? BASIC_INSTANT.exec(text);
  if (match === null) {
    const hint = /^\d{4}-\d{2}-\d{2}$/.test(value)
      ? ' (a date alone is not an instant: add a time and a zone, e.g. T00:00:00Z)'
      : /^(?:\d{4}-\d{2}-\d{2}[Tt][\d:.,]+|\d{8}[Tt][\d.,]+)$/.test(value)
        ? ' (it has no time zone: add Z or an offset such as +01:00)'
        : // RFC 3339 lets a space stand for the T, and ISO 8601 writes years past 9999 with a sign: both
          // have their zone, which the sentence alone would send the caller looking for.
          /^\d{4}-\d{2}-\d{2} \d{2}:/.test(value)
          ? ' (separate the date and the time with T, not a space)'
          : /^[+-]\d{4,6}-\d{2}-\d{2}[Tt]/.test(value)
            ? ' (write the year as four digits without a sign, 1970 to 9999)'
            : '';
    throw new InvalidRequestError(
      `${name} is ${shown}, not an ISO 8601 instant with a time zone${hint}; write it like ${EXAMPLE} (with '+' encoded as %2B).`,
    );
  }
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s ?? '0');
  const digits = fraction ?? '';
  // 24:00 (with zero seconds and fraction) is ISO 8601's end of a day: the next day's 00:00, as
  // setUTCHours below and Date.parse read it. Any later time past 23:59 does not exist.
  const endOfDay = hour === 24 && minute === 0 && second === 0 && /^0*$/.test(digits);
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    (hour > 23 && !endOfDay) ||
    minute > 59 ||
    // 60 is a leap second (RFC 3339 allows it); read as POSIX time reads it, the next minute's :00.
    second > 60
  ) {
    throw new InvalidRequestError(
      `${name} is ${shown}: that date or time of day does not exist; write it like ${EXAMPLE}.`,
    );
  }
  let offsetMinutes = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMins = Number(digits.slice(2) || '0');
    if (offsetHours > 23 || offsetMins > 59) {
      throw new InvalidRequestError(
        `${name} is ${shown}: the offset ${zone} is not a valid time zone offset.`,
      );
    }
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999. Second 60 rolls over into the
  // next minute, as in Date.UTC.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Number(digits.slice(0, 3).padEnd(3, '0')));
  return {
    name,
    value,
    floorMs: date.getTime() - offsetMinutes * 60_000,
    beyondMs: digits.slice(3).replace(/0+$/, ''),
  };
}

/**
 * The millisecond of an exact instant: digits past it round down, or up with `rounding: 'ceil'` (an
 * inclusive lower bound must not admit an earlier item). Outside 1970–9999 (after rounding) is an
 * InvalidRequestError naming the parameter.
 */
export function roundInstant(exact: ExactInstant, rounding: 'floor' | 'ceil'): Date {
  const ms = exact.floorMs + (rounding === 'ceil' && exact.beyondMs !== '' ? 1 : 0);
  if (ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
    throw new InvalidRequestError(
      `${exact.name} is '${exact.value}': it must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z.`,
    );
  }
  return new Date(ms);
}

/** Orders two exact instants as written (negative: `a` is earlier), with no rounding. */
export function compareExactInstants(
  a: Pick<ExactInstant, 'floorMs' | 'beyondMs'>,
  b: Pick<ExactInstant, 'floorMs' | 'beyondMs'>,
): number {
  if (a.floorMs !== b.floorMs) return a.floorMs < b.floorMs ? -1 : 1;
  // Decimal digits of the same place value, trailing zeros dropped: string order is numeric order.
  return a.beyondMs === b.beyondMs ? 0 : a.beyondMs < b.beyondMs ? -1 : 1;
}

/**
 * Parses an ISO 8601 instant that names its time zone (`Z` or an offset). Digits beyond milliseconds
 * round down, or up with `rounding: 'ceil'` (an inclusive lower bound must not admit an earlier item).
 * A mistake is an InvalidRequestError naming `name` and saying what a valid value looks like.
 */
export function parseInstant(value: string, name: string, rounding: 'floor' | 'ceil' = 'floor'): Date {
  return roundInstant(parseExactInstant(value, name), rounding);
}
