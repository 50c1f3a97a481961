/**
 * History cursors: DynamoDB's last evaluated key, bound to the tenant and range it was issued for and
 * signed, so a caller can pass it back but cannot forge, alter or reuse it elsewhere. Format:
 * `base64url(JSON payload) "." base64url(HMAC-SHA256(key, domain + payload))`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidRequestError } from '../errors.ts';
import { TENANT_ID_PATTERN } from '../tenants.ts';
import { isCanonicalInstant } from './instants.ts';

export interface CursorState {
  tenantId: string;
  /** The query's range, as canonical ISO strings (`toISOString()`). */
  from: string;
  to: string;
  /** The key of the last item returned; the next page starts after it (DynamoDB's ExclusiveStartKey). */
  lastKey: { tenantId: string; observedAt: string };
  /**
   * What the pages so far leave to the next one (JSON: the running trend fits), signed with the rest.
   * Absent in cursors issued before it existed.
   */
  carry?: unknown;
}

/** 2: cursors carry the running trend; a version 1 cursor would resume the trend from nothing. */
const VERSION = 2;
// Separates these MACs from anything else the same key might ever sign.
const DOMAIN = 'koodrive-allocation/history-cursor/v1\n';
const MAC_BYTES = 32;
/**
 * Real cursors are about 1,100 characters with the running trend of four series (three space types and
 * the totals), and at most ~5,500 with the most series a trend carries (16): with an IAM-signed request's
 * headers, that stays within API Gateway's 10 KB for a request line and headers. Longer is not ours.
 */
export const MAX_CURSOR_LENGTH = 8192;
const SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const MALFORMED = 'cursor is malformed: pass back the nextCursor of a previous answer unchanged.';

function mac(key: string, payload: string): Buffer {
  return createHmac('sha256', key).update(DOMAIN).update(payload).digest();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Signs a cursor state into the opaque string answered as `nextCursor`. */
export function encodeCursor(key: string, state: CursorState): string {
  const payload = Buffer.from(
    JSON.stringify({
      v: VERSION,
      tenantId: state.tenantId,
      from: state.from,
      to: state.to,
      lastKey: state.lastKey,
      ...(state.carry === undefined ? {} : { carry: state.carry }),
    }),
    'utf8',
  ).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/** Verifies and reads a cursor; anything not issued by this key is an InvalidRequestError (400). */
export function decodeCursor(key: string, cursor: string): CursorState {
  if (cursor.length > MAX_CURSOR_LENGTH || !SHAPE.test(cursor)) throw new InvalidRequestError(MALFORMED);
  const [payload = '', signature = ''] = cursor.split('.');
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(key, payload);
  // The re-encoding check refuses the other spellings base64url's spare bits allow.
  if (
    given.length !== MAC_BYTES ||
    given.toString('base64url') !== signature ||
    !timingSafeEqual(given, expected)
  ) {
    throw new InvalidRequestError(
      'cursor was not issued by this service or was altered: pass back the nextCursor of a previous answer unchanged.',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidRequestError(MALFORMED);
  }
  // Signed by us, so this only fails for a cursor of another format version.
  if (!isRecord(parsed) || parsed.v !== VERSION) {
    throw new InvalidRequestError(
      'cursor is from an older version of this service: start again without a cursor.',
    );
  }
  const { tenantId, from, to, lastKey, carry } = parsed;
  if (
    typeof tenantId !== 'string' ||
    !TENANT_ID_PATTERN.test(tenantId) ||
    typeof from !== 'string' ||
    !isCanonicalInstant(from) ||
    typeof to !== 'string' ||
    !isCanonicalInstant(to) ||
    !isRecord(lastKey) ||
    typeof lastKey.tenantId !== 'string' ||
    typeof lastKey.observedAt !== 'string' ||
    !isCanonicalInstant(lastKey.observedAt)
  ) {
    throw new InvalidRequestError(MALFORMED);
  }
  // DynamoDB refuses a start key outside the query's key condition (a 500 if it got that far): a
  // position in another tenant or outside [from, to] is the caller's cursor not holding together.
  if (lastKey.tenantId !== tenantId) {
    throw new InvalidRequestError(
      `cursor's position is in tenant '${lastKey.tenantId.slice(0, 64)}' but the cursor is for '${tenantId}': start again without a cursor.`,
    );
  }
  // Canonical instants compare as strings in time order.
  if (lastKey.observedAt < from || lastKey.observedAt > to) {
    throw new InvalidRequestError(
      `cursor's position (${lastKey.observedAt}) lies outside its range from=${from} to=${to}: start again without a cursor.`,
    );
  }
  return {
    tenantId,
    from,
    to,
    lastKey: { tenantId, observedAt: lastKey.observedAt },
    ...(carry === undefined ? {} : { carry }),
  };
}

/**
 * Decodes a cursor and checks it belongs to this query: the same tenant and the same range, with its
 * position inside both. Returns the key to continue after.
 */
export function verifyCursor(
  key: string,
  cursor: string,
  query: { tenantId: string; from: string; to: string },
): CursorState {
  const state = decodeCursor(key, cursor);
  if (state.tenantId !== query.tenantId || state.lastKey.tenantId !== query.tenantId) {
    throw new InvalidRequestError(
      `cursor belongs to another tenant's history, not '${query.tenantId}': start again without a cursor.`,
    );
  }
  if (state.from !== query.from || state.to !== query.to) {
    throw new InvalidRequestError(
      `cursor was issued for from=${state.from} and to=${state.to}, not from=${query.from} and to=${query.to}: pass the same from and to with it, or leave them out.`,
    );
  }
  return state;
}
