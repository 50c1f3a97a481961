import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedAllocationError, UpstreamError } from '../../lib/errors.ts';
import {
  deriveAllocation,
  MAX_SPACE_TYPES,
  normalizeAllocation,
  parseKooDriveBody,
  spaceTypeName,
} from '../../lib/koodrive/allocation.ts';
import type { NormalizedSpaces } from '../../lib/types.ts';

const PREFIX = 'KooDrive answered in an unexpected shape: ';

function errorOf(run: () => unknown): MalformedAllocationError {
  try {
    run();
  } catch (error) {
    if (error instanceof MalformedAllocationError) return error;
    throw error;
  }
  throw new Error('expected a MalformedAllocationError, but nothing was thrown');
}

/** The contract's ratio: none without a total, nor when it would not be a finite number. */
function expectedRatio(allocated: number, total: number): number | null {
  const ratio = allocated / total;
  return total === 0 || !Number.isFinite(ratio) ? null : ratio;
}

describe('spaceTypeName', () => {
  it.each([
    [0, 'department'],
    [1, 'personal'],
    [2, 'group'],
    [3, 'unknown'],
    [99, 'unknown'],
    [-1, 'unknown'],
  ] as const)('%i → %s', (type, name) => {
    expect(spaceTypeName(type)).toBe(name);
  });
});

describe('normalizeAllocation: accepted answers', () => {
  it("normalizes the vendor's own example (object data, string numbers, numeric code)", () => {
    const body = {
      data: { type: '0', allocateCapacity: '1000', totalCapacity: '2000' },
      code: 0,
      msg: 'Operation successful.',
    };
    expect(normalizeAllocation(body)).toEqual({
      spaces: [
        {
          type: 0,
          typeName: 'department',
          allocatedGB: 1000,
          totalGB: 2000,
          unallocatedGB: 1000,
          allocatedRatio: 0.5,
          overAllocated: false,
        },
      ],
      totals: {
        allocatedGB: 1000,
        totalGB: 2000,
        unallocatedGB: 1000,
        allocatedRatio: 0.5,
        overAllocated: false,
      },
    } satisfies NormalizedSpaces);
  });

  it('sorts the documented array shape by type and names unknown types', () => {
    const result = normalizeAllocation({
      code: '0',
      msg: 'ok',
      data: [
        { type: 7, allocateCapacity: 1, totalCapacity: 4 },
        { type: 2, allocateCapacity: 30, totalCapacity: 20 },
        { type: 0, allocateCapacity: 0, totalCapacity: 0 },
        { type: 1, allocateCapacity: 10, totalCapacity: 40 },
      ],
    });
    expect(result.spaces.map((space) => [space.type, space.typeName])).toEqual([
      [0, 'department'],
      [1, 'personal'],
      [2, 'group'],
      [7, 'unknown'],
    ]);
    expect(result.spaces[0]).toMatchObject({ unallocatedGB: 0, allocatedRatio: null, overAllocated: false });
    expect(result.spaces[2]).toMatchObject({ unallocatedGB: -10, allocatedRatio: 1.5, overAllocated: true });
    expect(result.totals).toEqual({
      allocatedGB: 41,
      totalGB: 64,
      unallocatedGB: 23,
      allocatedRatio: 41 / 64,
      overAllocated: false,
    });
  });

  it('keeps a negative type as unknown with its number, as any other undocumented type', () => {
    const result = normalizeAllocation({
      code: 0,
      data: [
        { type: -1, allocateCapacity: 1, totalCapacity: 2 },
        { type: '-7', allocateCapacity: '1', totalCapacity: '4' },
      ],
    });
    expect(result.spaces).toEqual([
      {
        type: -7,
        typeName: 'unknown',
        allocatedGB: 1,
        totalGB: 4,
        unallocatedGB: 3,
        allocatedRatio: 0.25,
        overAllocated: false,
      },
      {
        type: -1,
        typeName: 'unknown',
        allocatedGB: 1,
        totalGB: 2,
        unallocatedGB: 1,
        allocatedRatio: 0.5,
        overAllocated: false,
      },
    ]);
    expect(result.totals).toMatchObject({ allocatedGB: 2, totalGB: 6 });
    const zero = normalizeAllocation({
      code: 0,
      data: { type: '-0', allocateCapacity: 1, totalCapacity: 2 },
    });
    expect(Object.is(zero.spaces[0]?.type, 0)).toBe(true);
    expect(zero.spaces[0]?.typeName).toBe('department');
  });

  it('gives no ratio for a vanishing total whose ratio would be Infinity (not a number JSON or EMF can carry)', () => {
    const result = normalizeAllocation({
      code: 0,
      data: [{ type: 0, allocateCapacity: '1', totalCapacity: '5e-324' }],
    });
    expect(result.spaces[0]).toMatchObject({ allocatedRatio: null, overAllocated: true });
    expect(result.totals.allocatedRatio).toBeNull();
  });

  it('accepts mixed encodings: numbers, integer and decimal strings, exponents, a string code', () => {
    const result = normalizeAllocation({
      code: '0',
      data: [
        { type: '1', allocateCapacity: '12.5', totalCapacity: 50 },
        { type: 0, allocateCapacity: 0.25, totalCapacity: '1e3' },
        { type: '2.0', allocateCapacity: '-0', totalCapacity: '0' },
      ],
    });
    expect(result.spaces.map((space) => [space.type, space.allocatedGB, space.totalGB])).toEqual([
      [0, 0.25, 1000],
      [1, 12.5, 50],
      [2, 0, 0],
    ]);
    expect(Object.is(result.spaces[2]?.allocatedGB, 0)).toBe(true);
    expect(result.spaces[1]?.allocatedRatio).toBe(0.25);
    expect(result.totals.totalGB).toBe(1050);
  });

  it('sums and subtracts sizes without floating point residue, so a threshold reached exactly is reached', () => {
    const result = normalizeAllocation({
      code: 0,
      data: [
        { type: 0, allocateCapacity: '0.7', totalCapacity: '0.9' },
        { type: 1, allocateCapacity: 0.1, totalCapacity: 0.1 },
      ],
    });
    // In plain doubles: 0.7999999999999999 and 0.20000000000000007.
    expect(result.totals).toEqual({
      allocatedGB: 0.8,
      totalGB: 1,
      unallocatedGB: 0.2,
      allocatedRatio: 0.8,
      overAllocated: false,
    });
    expect(result.spaces[0]?.unallocatedGB).toBe(0.2);
    // One space: no sum was made, so the totals are its numbers exactly.
    const one = normalizeAllocation({
      code: 0,
      data: { type: 0, allocateCapacity: 1 / 3, totalCapacity: 1 },
    });
    expect(one.totals.allocatedGB).toBe(1 / 3);
    expect(one.totals.allocatedRatio).toBe(one.spaces[0]?.allocatedRatio);
  });

  it('accepts the largest size any storage holds, exactly 1e15 GB', () => {
    const result = normalizeAllocation({
      code: 0,
      data: [{ type: 0, allocateCapacity: 1e15, totalCapacity: '1e15' }],
    });
    expect(result.spaces[0]).toMatchObject({ allocatedGB: 1e15, totalGB: 1e15, allocatedRatio: 1 });
  });

  it('accepts an answer without code (the client checked it) and ignores extra fields', () => {
    const result = normalizeAllocation({
      data: { type: 1, allocateCapacity: 5, totalCapacity: 10, extra: 'x' },
    });
    expect(result.spaces).toHaveLength(1);
    expect(result.spaces[0]).not.toHaveProperty('extra');
  });

  it('refuses an empty array: an allocation without space types has no ratio to compare', () => {
    const error = errorOf(() => normalizeAllocation({ code: 0, msg: 'ok', data: [] }));
    expect(error).toBeInstanceOf(MalformedAllocationError);
    expect(error.message).toBe(`${PREFIX}data is an empty array: KooDrive listed no space types`);
  });

  it('marks allocated space on a zero total as over-allocated with no ratio', () => {
    const result = normalizeAllocation({ data: { type: 0, allocateCapacity: 3, totalCapacity: 0 } });
    expect(result.totals).toEqual({
      allocatedGB: 3,
      totalGB: 0,
      unallocatedGB: -3,
      allocatedRatio: null,
      overAllocated: true,
    });
  });
});

describe('normalizeAllocation: rejected answers', () => {
  const good = { type: 0, allocateCapacity: 1, totalCapacity: 2 };
  it.each([
    ['a non-object body', 'oops', 'the body is a string, not an object with code, msg and data'],
    ['an array body', [good], 'the body is an array, not an object with code, msg and data'],
    ['a null body', null, 'the body is null, not an object with code, msg and data'],
    ['a failure code', { code: 13000201, msg: 'inner', data: good }, 'code is 13000201, not 0 (success)'],
    ['a string failure code', { code: 'APIGW.0303', data: good }, 'code is "APIGW.0303", not 0 (success)'],
    ['a null code', { code: null, data: good }, 'code is null, not 0 (success)'],
    ['missing data', { code: 0, msg: 'ok' }, 'data is missing'],
    ['null data', { code: 0, data: null }, 'data is null, not an object or an array'],
    ['string data', { code: 0, data: '1000' }, 'data is "1000" (a string), not an object or an array'],
    ['a null entry', { data: [good, null] }, 'data[1] is null, not an object with type and capacities'],
    ['a number entry', { data: [5] }, 'data[0] is a number, not an object with type and capacities'],
    [
      'a nested array entry',
      { data: [[good]] },
      'data[0] is an array, not an object with type and capacities',
    ],
    [
      'a missing allocateCapacity (object)',
      { data: { type: 0, totalCapacity: 2 } },
      'data.allocateCapacity is missing',
    ],
    [
      'a missing type (array)',
      { data: [good, { allocateCapacity: 1, totalCapacity: 2 }] },
      'data[1].type is missing',
    ],
    [
      'a non-numeric string',
      { data: [good, { ...good, type: 1, totalCapacity: 'abc' }] },
      'data[1].totalCapacity is "abc", not a number',
    ],
    ['an empty string', { data: { ...good, totalCapacity: '' } }, 'data.totalCapacity is "", not a number'],
    [
      'a blank string',
      { data: { ...good, totalCapacity: '  ' } },
      'data.totalCapacity is "  ", not a number',
    ],
    [
      'a padded number',
      { data: { ...good, totalCapacity: ' 12' } },
      'data.totalCapacity is " 12", not a number',
    ],
    [
      'a hex string',
      { data: { ...good, totalCapacity: '0x10' } },
      'data.totalCapacity is "0x10", not a number',
    ],
    [
      '"Infinity"',
      { data: { ...good, totalCapacity: 'Infinity' } },
      'data.totalCapacity is "Infinity", not a number',
    ],
    ['"NaN"', { data: { ...good, totalCapacity: 'NaN' } }, 'data.totalCapacity is "NaN", not a number'],
    [
      'an overflowing exponent',
      { data: { ...good, totalCapacity: '1e999' } },
      'data.totalCapacity is "1e999", not a finite number',
    ],
    [
      'NaN',
      { data: { ...good, allocateCapacity: Number.NaN } },
      'data.allocateCapacity is NaN, not a finite number',
    ],
    [
      'Infinity',
      { data: { ...good, allocateCapacity: Infinity } },
      'data.allocateCapacity is Infinity, not a finite number',
    ],
    [
      'a negative number',
      { data: [{ ...good, totalCapacity: -5 }] },
      'data[0].totalCapacity is -5, a negative size',
    ],
    [
      'a negative string',
      { data: { ...good, allocateCapacity: '-1.5' } },
      'data.allocateCapacity is "-1.5", a negative size',
    ],
    [
      'a size past any storage, whose sum would be Infinity',
      { data: [{ ...good, totalCapacity: 1e308 }] },
      'data[0].totalCapacity is 1e+308 GB, more than any storage holds (at most 1000000000000000 GB)',
    ],
    [
      'a size just past the largest',
      { data: { ...good, allocateCapacity: '1.0000001e15' } },
      'data.allocateCapacity is "1.0000001e15" GB, more than any storage holds (at most 1000000000000000 GB)',
    ],
    [
      'a boolean',
      { data: { ...good, allocateCapacity: true } },
      'data.allocateCapacity is true (a boolean), not a number',
    ],
    ['null', { data: { ...good, totalCapacity: null } }, 'data.totalCapacity is null, not a number'],
    [
      'an object',
      { data: { ...good, totalCapacity: { value: 1 } } },
      'data.totalCapacity is {"value":1} (an object), not a number',
    ],
    [
      'a fractional type',
      { data: { ...good, type: '1.5' } },
      'data.type is "1.5", not a whole number: a space type is a whole number',
    ],
    [
      'a fractional negative type',
      { data: [{ ...good, type: -0.5 }] },
      'data[0].type is -0.5, not a whole number: a space type is a whole number',
    ],
    [
      'a type that is not a number',
      { data: { ...good, type: 'personal' } },
      'data.type is "personal", not a number: a space type is a whole number',
    ],
    [
      'a type that is an object',
      { data: { ...good, type: { id: 1 } } },
      'data.type is {"id":1} (an object), not a number: a space type is a whole number',
    ],
    [
      'a type that is null',
      { data: { ...good, type: null } },
      'data.type is null, not a number: a space type is a whole number',
    ],
    [
      'a huge type',
      { data: { ...good, type: 1e20 } },
      'data.type is 100000000000000000000, too large for a space type',
    ],
    [
      'a hugely negative type',
      { data: { ...good, type: '-1e20' } },
      'data.type is "-1e20", too far below 0 for a space type',
    ],
    [
      'a duplicate type',
      { data: [good, { ...good, type: 1 }, { ...good, type: '0' }] },
      'data[2].type is 0, the same type as data[0]',
    ],
  ])('rejects %s', (_label, body, message) => {
    const error = errorOf(() => normalizeAllocation(body));
    expect(error.message).toBe(`${PREFIX}${message}`);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.code).toBe('UPSTREAM_ERROR');
    expect(error.status).toBe(502);
  });

  it('truncates a long value instead of echoing it', () => {
    const long = `${'9'.repeat(30)}x${'y'.repeat(5000)}`;
    const error = errorOf(() =>
      normalizeAllocation({ data: { type: 0, allocateCapacity: 1, totalCapacity: long } }),
    );
    expect(error.message).toBe(
      `${PREFIX}data.totalCapacity is "${'9'.repeat(30)}x${'y'.repeat(8)}…, not a number`,
    );
  });

  it('redacts an echo of our signature before cutting a value short, so no part of it shows', () => {
    const signature = 'a3f1'.repeat(16);
    const error = errorOf(() =>
      normalizeAllocation({ code: 0, data: { type: signature, allocateCapacity: 1, totalCapacity: 2 } }),
    );
    expect(error.message).toBe(
      `${PREFIX}data.type is "[redacted]", not a number: a space type is a whole number`,
    );
    expect(error.message).not.toContain('a3f1a3f1');
    const body = `Authorization: SDK-HMAC-SHA256 Access=app, SignedHeaders=host, Signature=${signature}`;
    const notJson = errorOf(() => parseKooDriveBody(body));
    expect(notJson.message).not.toContain('a3f1');
    expect(notJson.message).toContain('[redacted]');
  });
});

describe('normalizeAllocation: how many space types', () => {
  const spaces = (count: number) =>
    Array.from({ length: count }, (_, type) => ({ type, allocateCapacity: 1, totalCapacity: 2 }));

  it('refuses an answer listing more space types than any tenant has, before reading them', () => {
    // A 1 MB answer holds ~20,000 entries: each would be stored in every snapshot (400 days), sent in
    // every history item (1,000 items of 20,000 spaces pass Lambda's 6 MB), drawn as a chart series and
    // published as three metrics of its own (CloudWatch bills every one).
    const error = errorOf(() => normalizeAllocation({ code: 0, data: spaces(20_000) }));
    expect(error.message).toBe(
      `${PREFIX}data lists 20000 space types, more than the ${MAX_SPACE_TYPES} accepted (KooDrive documents 3): a broken answer, not a tenant's spaces`,
    );
    expect(() => normalizeAllocation({ code: 0, data: spaces(MAX_SPACE_TYPES + 1) })).toThrow(
      MalformedAllocationError,
    );
  });

  it('accepts as many space types as the limit, the unknown ones with their numbers', () => {
    const normalized = normalizeAllocation({ code: 0, data: spaces(MAX_SPACE_TYPES) });
    expect(normalized.spaces).toHaveLength(MAX_SPACE_TYPES);
    expect(normalized.spaces.at(-1)).toMatchObject({ type: MAX_SPACE_TYPES - 1, typeName: 'unknown' });
  });
});

describe('parseKooDriveBody', () => {
  it('parses JSON', () => {
    expect(parseKooDriveBody('{"code":0,"data":[]}')).toEqual({ code: 0, data: [] });
  });

  it.each([
    ['', 'the body is empty, not JSON'],
    ['  \n', 'the body is empty, not JSON'],
    ['<html>Bad gateway</html>', 'the body is not JSON (24 characters, starting "<html>Bad gateway</html>")'],
  ])('rejects %j', (text, message) => {
    expect(errorOf(() => parseKooDriveBody(text)).message).toBe(`${PREFIX}${message}`);
  });

  it('shows at most the start of a long body', () => {
    const body = `<html>${'secretish-page-content '.repeat(500)}</html>`;
    const error = errorOf(() => parseKooDriveBody(body));
    expect(error.message.length).toBeLessThan(160);
    expect(error.message).toContain(`${body.length} characters`);
    expect(error.cause).toBeUndefined();
  });
});

// Sizes as KooDrive might send them: whole or fractional, small or huge, as numbers.
const sizeArb = fc.oneof(
  fc.nat({ max: 10_000_000 }),
  fc.double({ min: 0, max: 1e15, noNaN: true, noDefaultInfinity: true }),
  fc.constant(0),
);
// The same number in one of the encodings the normalizer accepts.
const encodedArb = (value: number) =>
  fc.constantFrom<unknown>(value, String(value), ...(Number.isInteger(value) ? [value.toFixed(2)] : []));

interface GeneratedBody {
  body: Record<string, unknown>;
  entries: { type: number; allocated: number; total: number }[];
}

const validBodyArb: fc.Arbitrary<GeneratedBody> = fc
  .uniqueArray(fc.record({ type: fc.integer({ min: -50, max: 50 }), allocated: sizeArb, total: sizeArb }), {
    selector: (entry) => entry.type,
    minLength: 1,
    maxLength: 8,
  })
  .chain((entries) =>
    fc
      .record({
        encoded: fc.tuple(
          ...entries.map((entry) =>
            fc.record({
              type: encodedArb(entry.type),
              allocateCapacity: encodedArb(entry.allocated),
              totalCapacity: encodedArb(entry.total),
            }),
          ),
        ),
        asObject: fc.boolean(),
        code: fc.constantFrom<unknown>(undefined, 0, '0'),
      })
      .map(({ encoded, asObject, code }) => {
        const data = asObject && encoded.length === 1 ? encoded[0] : encoded;
        const body: Record<string, unknown> = { msg: 'Operation successful.', data };
        if (code !== undefined) body.code = code;
        return { body, entries };
      }),
  );

/** Equal up to the 15 significant digits a sum of sizes is kept to. */
function expectNear(actual: number, exact: number): void {
  expect(Math.abs(actual - exact)).toBeLessThanOrEqual(Math.abs(exact) * 1e-14 + 1e-300);
}

describe('normalizeAllocation: properties', () => {
  it('satisfies the contract for any valid answer in either shape and encoding', () => {
    fc.assert(
      fc.property(validBodyArb, ({ body, entries }) => {
        const result = normalizeAllocation(structuredClone(body));
        const expected = [...entries].sort((left, right) => left.type - right.type);
        expect(result.spaces.map((space) => space.type)).toEqual(expected.map((entry) => entry.type));
        let allocatedSum = 0;
        let totalSum = 0;
        result.spaces.forEach((space, index) => {
          const entry = expected[index];
          expect(space.allocatedGB).toBe(entry?.allocated);
          expect(space.totalGB).toBe(entry?.total);
          expect(space.typeName).toBe(spaceTypeName(space.type));
          expectNear(space.unallocatedGB, space.totalGB - space.allocatedGB);
          expect(space.allocatedRatio).toBe(expectedRatio(space.allocatedGB, space.totalGB));
          expect(space.overAllocated).toBe(space.allocatedGB > space.totalGB);
          if (index > 0) expect(space.type).toBeGreaterThan(result.spaces[index - 1]?.type ?? -1);
          allocatedSum += space.allocatedGB;
          totalSum += space.totalGB;
        });
        // Sums without floating point's residue (15 significant digits): within a rounding of the exact ones.
        const { totals } = result;
        expectNear(totals.allocatedGB, allocatedSum);
        expectNear(totals.totalGB, totalSum);
        expectNear(totals.unallocatedGB, totals.totalGB - totals.allocatedGB);
        expect(totals.allocatedRatio).toBe(expectedRatio(totals.allocatedGB, totals.totalGB));
        expect(totals.overAllocated).toBe(totals.allocatedGB > totals.totalGB);
        if (Number.isInteger(allocatedSum)) expect(totals.allocatedGB).toBe(allocatedSum);
      }),
      { numRuns: 300 },
    );
  });

  it('throws nothing but a short MalformedAllocationError for arbitrary junk', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.jsonValue(), fc.record({ code: fc.anything(), data: fc.anything() })),
        (junk) => {
          try {
            normalizeAllocation(junk);
          } catch (error) {
            expect(error).toBeInstanceOf(MalformedAllocationError);
            expect(error instanceof Error ? error.message.length : Number.POSITIVE_INFINITY).toBeLessThan(
              250,
            );
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('names the field when one value of a valid answer is replaced by junk', () => {
    const junkArb = fc.oneof(
      fc.constantFrom<unknown>(
        '',
        '  ',
        'abc',
        '1e999',
        Number.NaN,
        Infinity,
        -1,
        '-2',
        true,
        false,
        null,
        [],
        {},
      ),
      fc.string().filter((text) => !/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)),
    );
    const caseArb = validBodyArb
      .filter(({ entries }) => entries.length > 0)
      .chain((generated) =>
        fc.record({
          generated: fc.constant(generated),
          index: fc.nat({ max: generated.entries.length - 1 }),
          field: fc.constantFrom('type', 'allocateCapacity', 'totalCapacity'),
          junk: junkArb,
        }),
      )
      // A negative whole number is junk as a size but a valid (unknown) space type.
      .filter(({ field, junk }) => !(field === 'type' && (junk === -1 || junk === '-2')));
    fc.assert(
      fc.property(caseArb, ({ generated, index, field, junk }) => {
        const body = structuredClone(generated.body);
        const data = body.data;
        const entry = Array.isArray(data) ? data[index] : data;
        if (typeof entry !== 'object' || entry === null) throw new Error('generator produced no entry');
        Reflect.set(entry, field, junk);
        const path = Array.isArray(data) ? `data[${index}].${field}` : `data.${field}`;
        const error = errorOf(() => normalizeAllocation(body));
        expect(error.message.startsWith(`${PREFIX}${path} is `)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('parses or rejects any text with a MalformedAllocationError only', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        try {
          parseKooDriveBody(text);
        } catch (error) {
          expect(error).toBeInstanceOf(MalformedAllocationError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('normalizeAllocation: more rejected answers', () => {
  const good = { type: 0, allocateCapacity: 1, totalCapacity: 2 };
  it.each([
    ['data given as undefined', { code: 0, data: undefined }, 'data is missing'],
    ['a type given as undefined', { data: [{ ...good, type: undefined }] }, 'data[0].type is missing'],
    [
      'a capacity given as undefined',
      { data: { ...good, totalCapacity: undefined } },
      'data.totalCapacity is missing',
    ],
    [
      'a null type',
      { data: [{ ...good, type: null }] },
      'data[0].type is null, not a number: a space type is a whole number',
    ],
    [
      'a type in an array',
      { data: [{ ...good, type: [1] }] },
      'data[0].type is [1] (an array), not a number: a space type is a whole number',
    ],
    [
      'a bigint type (not JSON, from a direct caller)',
      { data: [{ ...good, type: 1n }] },
      'data[0].type is 1 (a bigint), not a number: a space type is a whole number',
    ],
  ])('refuses %s', (_name, raw, message) => {
    expect(errorOf(() => normalizeAllocation(raw)).message).toBe(`${PREFIX}${message}`);
  });

  it('shows a value of exactly 40 characters whole, and cuts only a longer one', () => {
    const forty = `${'x'.repeat(38)}`;
    expect(JSON.stringify(forty)).toHaveLength(40);
    expect(errorOf(() => normalizeAllocation({ data: { ...good, totalCapacity: forty } })).message).toBe(
      `${PREFIX}data.totalCapacity is "${forty}", not a number`,
    );
    const fortyOne = `${forty}y`;
    expect(errorOf(() => normalizeAllocation({ data: { ...good, totalCapacity: fortyOne } })).message).toBe(
      `${PREFIX}data.totalCapacity is "${forty}y…, not a number`,
    );
  });
});

describe('deriveAllocation', () => {
  it('derives the same spaces and totals as normalizeAllocation from the same sizes', () => {
    const sizes = [
      { type: 0, allocatedGB: 0.7, totalGB: 1 },
      { type: 1, allocatedGB: 0.1, totalGB: 0 },
      { type: 5, allocatedGB: 3, totalGB: 2 },
    ];
    expect(deriveAllocation(sizes)).toEqual(
      normalizeAllocation({
        code: 0,
        data: sizes.map((s) => ({ type: s.type, allocateCapacity: s.allocatedGB, totalCapacity: s.totalGB })),
      }),
    );
    expect(deriveAllocation(sizes).totals).toMatchObject({
      allocatedGB: 3.8,
      totalGB: 3,
      overAllocated: true,
    });
  });
});
