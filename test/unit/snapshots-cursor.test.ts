import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../lib/errors.ts';
import {
  type CursorState,
  decodeCursor,
  encodeCursor,
  MAX_CURSOR_LENGTH,
  verifyCursor,
} from '../../lib/snapshots/cursor.ts';

const KEY = 'cursor-test-key';
const STATE: CursorState = {
  tenantId: 'acme',
  from: '2026-11-21T04:00:00.000Z',
  to: '2026-11-28T04:00:00.000Z',
  lastKey: { tenantId: 'acme', observedAt: '2026-11-22T00:15:00.000Z' },
};

function refusal(run: () => unknown): InvalidRequestError {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error('expected an InvalidRequestError');
}

/** A cursor signed with the real key and domain around any payload: what only a key holder could make. */
function signedRaw(payload: unknown): string {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const mac = createHmac('sha256', KEY)
    .update('koodrive-allocation/history-cursor/v1\n')
    .update(body)
    .digest();
  return `${body}.${mac.toString('base64url')}`;
}

describe('history cursors', () => {
  it('round-trips a state through an opaque, URL-safe string', () => {
    const cursor = encodeCursor(KEY, STATE);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(decodeCursor(KEY, cursor)).toStrictEqual(STATE);
    expect(verifyCursor(KEY, cursor, { tenantId: 'acme', from: STATE.from, to: STATE.to })).toEqual(STATE);
    expect(signedRaw({ v: 2, ...STATE })).toBe(cursor);
  });

  it('refuses a cursor signed with another key', () => {
    const error = refusal(() => decodeCursor(KEY, encodeCursor('other-key', STATE)));
    expect(error.message).toBe(
      'cursor was not issued by this service or was altered: pass back the nextCursor of a previous answer unchanged.',
    );
  });

  it('refuses an edited payload and an edited signature', () => {
    const cursor = encodeCursor(KEY, STATE);
    const [payload = '', signature = ''] = cursor.split('.');
    const edited = encodeCursor(KEY, {
      ...STATE,
      lastKey: { tenantId: 'acme', observedAt: '2026-11-27T00:00:00.000Z' },
    });
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    for (const forged of [
      `${edited.split('.')[0]}.${signature}`,
      `${payload}.${flipped}`,
      `${payload}.${signature}A`,
    ]) {
      expect(refusal(() => decodeCursor(KEY, forged)).message).toContain('was not issued by this service');
    }
  });

  it('refuses the other spellings of the same signature', () => {
    const cursor = encodeCursor(KEY, STATE);
    const last = cursor.at(-1) ?? '';
    // The last base64url character of 32 bytes carries 2 spare bits: a neighbour may decode to the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[(alphabet.indexOf(last) ^ 1) % 64] ?? 'A';
    expect(() => decodeCursor(KEY, `${cursor.slice(0, -1)}${sibling}`)).toThrow(InvalidRequestError);
  });

  it.each([
    ['empty', ''],
    ['no separator', 'abcdef'],
    ['not base64url', 'ab+c/d.ef=='],
    ['three parts', 'a.b.c'],
    ['far too long', `${'a'.repeat(MAX_CURSOR_LENGTH)}.b`],
  ])('refuses a malformed cursor (%s)', (_name, cursor) => {
    expect(refusal(() => decodeCursor(KEY, cursor)).message).toBe(
      'cursor is malformed: pass back the nextCursor of a previous answer unchanged.',
    );
  });

  it('refuses a validly signed cursor of another version or with a wrong shape', () => {
    expect(refusal(() => decodeCursor(KEY, signedRaw({ ...STATE, v: 1 }))).message).toContain(
      'older version',
    );
    for (const payload of [
      { v: 2, ...STATE, from: '2026-11-21' },
      { v: 2, ...STATE, tenantId: '../etc' },
      { v: 2, ...STATE, lastKey: 'x' },
      { v: 2, ...STATE, lastKey: { tenantId: 7, observedAt: STATE.lastKey.observedAt } },
    ]) {
      expect(refusal(() => decodeCursor(KEY, signedRaw(payload))).message).toContain('cursor is malformed');
    }
    const notJson = `${Buffer.from('{nope', 'utf8').toString('base64url')}`;
    const mac = createHmac('sha256', KEY)
      .update('koodrive-allocation/history-cursor/v1\n')
      .update(notJson)
      .digest();
    expect(refusal(() => decodeCursor(KEY, `${notJson}.${mac.toString('base64url')}`)).message).toContain(
      'malformed',
    );
  });

  it('refuses a validly signed cursor whose position is outside its tenant or its range', () => {
    const at = (observedAt: string, tenantId = 'acme') =>
      signedRaw({ v: 2, ...STATE, lastKey: { tenantId, observedAt } });
    expect(refusal(() => decodeCursor(KEY, at(STATE.lastKey.observedAt, 'beta'))).message).toBe(
      "cursor's position is in tenant 'beta' but the cursor is for 'acme': start again without a cursor.",
    );
    expect(refusal(() => decodeCursor(KEY, at('2026-11-21T03:59:59.999Z'))).message).toBe(
      "cursor's position (2026-11-21T03:59:59.999Z) lies outside its range from=2026-11-21T04:00:00.000Z to=2026-11-28T04:00:00.000Z: start again without a cursor.",
    );
    const query = { tenantId: 'acme', from: STATE.from, to: STATE.to };
    expect(refusal(() => verifyCursor(KEY, at('2026-11-28T04:00:00.001Z'), query)).message).toContain(
      'lies outside its range',
    );
    // Both ends are inclusive, as the range is.
    expect(verifyCursor(KEY, at(STATE.from), query).lastKey.observedAt).toBe(STATE.from);
    expect(verifyCursor(KEY, at(STATE.to), query).lastKey.observedAt).toBe(STATE.to);
  });

  it('binds a cursor to its tenant and range', () => {
    const cursor = encodeCursor(KEY, STATE);
    expect(
      refusal(() => verifyCursor(KEY, cursor, { tenantId: 'beta', from: STATE.from, to: STATE.to })).message,
    ).toContain("another tenant's history, not 'beta'");
    const otherRange = refusal(() =>
      verifyCursor(KEY, cursor, { tenantId: 'acme', from: STATE.from, to: '2026-11-29T00:00:00.000Z' }),
    );
    expect(otherRange.message).toBe(
      'cursor was issued for from=2026-11-21T04:00:00.000Z and to=2026-11-28T04:00:00.000Z, not from=2026-11-21T04:00:00.000Z and to=2026-11-29T00:00:00.000Z: pass the same from and to with it, or leave them out.',
    );
  });

  it('carries the running trend through the cursor, signed with the rest', () => {
    const carry = { series: [{ key: 'totals', n: 3, sum: 1.5 }], note: 'ümlaut' };
    const cursor = encodeCursor(KEY, { ...STATE, carry });
    expect(decodeCursor(KEY, cursor)).toStrictEqual({ ...STATE, carry });
    expect(signedRaw({ v: 2, ...STATE, carry })).toBe(cursor);
    const query = { tenantId: 'acme', from: STATE.from, to: STATE.to };
    expect(verifyCursor(KEY, cursor, query).carry).toStrictEqual(carry);
  });

  it('reads a cursor of exactly MAX_CURSOR_LENGTH characters', () => {
    // A payload of 6111 bytes is 8148 base64url characters; with '.' and the 43-character MAC, 8192.
    const base = JSON.stringify({ v: 2, ...STATE, carry: '' }).length;
    const carry = 'x'.repeat(6111 - base);
    const cursor = encodeCursor(KEY, { ...STATE, carry });
    expect(cursor).toHaveLength(MAX_CURSOR_LENGTH);
    expect(decodeCursor(KEY, cursor).carry).toBe(carry);
  });

  it('refuses a validly signed cursor that is null or whose fields have the wrong types', () => {
    expect(refusal(() => decodeCursor(KEY, signedRaw(null))).message).toContain('older version');
    for (const payload of [
      { v: 2, ...STATE, lastKey: null },
      { v: 2, ...STATE, tenantId: ['acme'] },
    ]) {
      expect(refusal(() => decodeCursor(KEY, signedRaw(payload))).message).toBe(
        'cursor is malformed: pass back the nextCursor of a previous answer unchanged.',
      );
    }
  });

  it('shows at most 64 characters of a position tenant that does not match', () => {
    const long = `b${'e'.repeat(500)}`;
    const message = refusal(() =>
      decodeCursor(
        KEY,
        signedRaw({ v: 2, ...STATE, lastKey: { tenantId: long, observedAt: STATE.lastKey.observedAt } }),
      ),
    ).message;
    expect(message).toBe(
      `cursor's position is in tenant '${long.slice(0, 64)}' but the cursor is for 'acme': start again without a cursor.`,
    );
  });

  it('refuses a cursor passed with another from', () => {
    const cursor = encodeCursor(KEY, STATE);
    const error = refusal(() =>
      verifyCursor(KEY, cursor, { tenantId: 'acme', from: '2026-11-20T00:00:00.000Z', to: STATE.to }),
    );
    expect(error.message).toContain('cursor was issued for from=2026-11-21T04:00:00.000Z');
  });
});
