/**
 * The history range as a caller writes it (`from`, `to`, `limit`, `cursor`, all optional strings)
 * turned into a validated query, with the contract's defaults and a clear error for each mistake.
 */
import { InvalidRequestError } from '../errors.ts';
import { decodeCursor } from './cursor.ts';
import {
  compareExactInstants,
  type ExactInstant,
  MIN_INSTANT_MS,
  parseExactInstant,
  roundInstant,
} from './instants.ts';

const DEFAULT_HISTORY_DAYS = 7;
const DEFAULT_HISTORY_LIMIT = 500;
const MAX_HISTORY_LIMIT = 1000;
const DAY_MS = 86_400_000;

export interface HistoryParams {
  from?: string | undefined;
  to?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
}

export interface ResolvedHistoryQuery {
  from: Date;
  to: Date;
  limit: number;
  cursor?: string;
}

// `?from=&to=` (the contract's own spelling of the route) means "not given".
const given = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value;

/**
 * How many times each parameter name occurs in a raw query string, names decoded as API Gateway and
 * URLSearchParams decode them (`+` is a space, `%XY` a byte of UTF-8).
 */
function countNames(rawQueryString: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [name] of new URLSearchParams(rawQueryString)) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

/**
 * How many times a parameter was given, counted in the event's raw query string (API Gateway joins the
 * values of a repeated one with commas); 1 for an event without it (built by hand).
 */
export function timesGiven(rawQueryString: string | undefined, name: string): number {
  return rawQueryString === undefined ? 1 : (countNames(rawQueryString).get(name) ?? 1);
}

/**
 * API Gateway (payload 2.0) joins a parameter given more than once with commas (`?limit=5&limit=6`
 * arrives as `5,6`). Said plainly, rather than as "not a number" or "longer than any instant". The
 * event's `rawQueryString` says how many times the name was given, so a single value that holds a comma
 * of its own (`…:00,5Z`, a decimal comma; `limit=1,000`) is judged as the one value it is. Only for an
 * event without it (built by hand) is the comma-joined value guessed at: two or more parts that each
 * look like a value (for instants, that each start like a date).
 */
function refuseRepeated(
  name: string,
  text: string,
  looksLikeOne: (part: string) => boolean,
  counts: Map<string, number> | undefined,
): void {
  const parts = text.split(',');
  const times =
    counts !== undefined
      ? (counts.get(name) ?? 1)
      : parts.length > 1 && parts.filter(looksLikeOne).length > 1
        ? parts.length
        : 1;
  if (times > 1) {
    throw new InvalidRequestError(
      `${name} was given ${times} times ('${text.slice(0, 100)}'): give it once.`,
    );
  }
}
const looksLikeInstant = (part: string) => /^\s*\d{4}-/.test(part);
const looksLikeLimit = (part: string) => /^\s*\d+\s*$/.test(part);
const looksLikeCursor = (part: string) => part.length > 0;

function parseLimit(text: string | undefined, counts: Map<string, number> | undefined): number {
  if (text === undefined) return DEFAULT_HISTORY_LIMIT;
  refuseRepeated('limit', text, looksLikeLimit, counts);
  // Leading zeros are harmless (`0010` is 10); at most four significant digits keep Number() exact.
  const value = /^0*\d{1,4}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 1 && value <= MAX_HISTORY_LIMIT)) {
    throw new InvalidRequestError(
      `limit is '${text.slice(0, 40)}': it must be a whole number from 1 to ${MAX_HISTORY_LIMIT} (default ${DEFAULT_HISTORY_LIMIT}).`,
    );
  }
  return value;
}

/**
 * Applies the contract: `to` defaults to now, `from` to `to` minus 7 days, `limit` to 500 (1–1000).
 * With a cursor, a missing `from`/`to` is the cursor's own, so "pass nextCursor back" works alone.
 * The cursor is checked again (signature, tenant, range) by the store.
 */
export function resolveHistoryQuery(
  params: HistoryParams,
  options: {
    now: Date;
    cursorKey: string;
    /** The event's `rawQueryString`, to count repeated parameters by; absent in hand-made events. */
    rawQueryString?: string | undefined;
  },
): ResolvedHistoryQuery {
  const cursor = given(params.cursor);
  const fromText = given(params.from);
  const toText = given(params.to);
  const counts = options.rawQueryString === undefined ? undefined : countNames(options.rawQueryString);
  if (fromText !== undefined) refuseRepeated('from', fromText, looksLikeInstant, counts);
  if (toText !== undefined) refuseRepeated('to', toText, looksLikeInstant, counts);
  // A cursor is base64url: it never holds a comma of its own.
  if (cursor !== undefined) refuseRepeated('cursor', cursor, looksLikeCursor, counts);
  const limit = parseLimit(given(params.limit), counts);
  const cursorRange = cursor === undefined ? undefined : decodeCursor(options.cursorKey, cursor);

  // Parsed to every digit given: the order check below compares the instants as written, not as
  // rounded to milliseconds (from 00.0005 to 00.0005 is a range, though no millisecond lies in it).
  const toExact = toText === undefined ? undefined : parseExactInstant(toText, 'to');
  const to =
    toExact !== undefined
      ? roundInstant(toExact, 'floor')
      : cursorRange !== undefined
        ? new Date(cursorRange.to)
        : new Date(Math.floor(options.now.getTime()));
  const fromExact = fromText === undefined ? undefined : parseExactInstant(fromText, 'from');
  const from =
    fromExact !== undefined
      ? roundInstant(fromExact, 'ceil')
      : cursorRange !== undefined
        ? new Date(cursorRange.from)
        : new Date(
            Math.max(
              MIN_INSTANT_MS,
              // to minus 7 days, as written: its digits past the millisecond round the lower bound up.
              to.getTime() -
                DEFAULT_HISTORY_DAYS * DAY_MS +
                (toExact !== undefined && toExact.beyondMs !== '' ? 1 : 0),
            ),
          );
  const asWritten = (exact: ExactInstant | undefined, rounded: Date) =>
    exact ?? { floorMs: rounded.getTime(), beyondMs: '' };
  if (compareExactInstants(asWritten(fromExact, from), asWritten(toExact, to)) > 0) {
    // A bound the caller left out is now's or the cursor's: say which, since the caller never wrote it.
    // With a cursor, the range it was issued for is the one to pass (the store refuses any other).
    const toOrigin =
      toText !== undefined
        ? ''
        : cursorRange === undefined
          ? ' (to defaults to now)'
          : " (to is the cursor's)";
    const fromOrigin = fromText === undefined && cursorRange !== undefined ? " (from is the cursor's)" : '';
    const cursorAdvice =
      cursorRange === undefined
        ? ''
        : ' A cursor keeps the range it was issued for: pass the same from and to with it, or leave them out.';
    throw new InvalidRequestError(
      `from (${fromText ?? from.toISOString()})${fromOrigin} is later than to (${toText ?? to.toISOString()})${toOrigin}: from must not be after to.${cursorAdvice}`,
    );
  }
  return { from, to, limit, ...(cursor === undefined ? {} : { cursor }) };
}
