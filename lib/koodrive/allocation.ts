/**
 * Turns KooDrive's GetSpaceAllocation answer into the contract's spaces and totals. The vendor's
 * example contradicts its declared types (see shared/koodrive/API.md), so both shapes of `data`
 * (object or array) and both encodings of numbers (number or numeric string) are accepted; anything
 * else is a MalformedAllocationError that names the field, rather than a guess.
 */
import { MalformedAllocationError } from '../errors.ts';
import type { AllocationTotals, NormalizedSpaces, SpaceAllocation, SpaceTypeName } from '../types.ts';
import { redactRequestEchoes } from './redact.ts';

const SPACE_TYPE_NAMES: Readonly<Record<number, SpaceTypeName>> = {
  0: 'department',
  1: 'personal',
  2: 'group',
};
// Decimal digits with an optional fraction and exponent: what a JSON number or Java's Long/BigDecimal
// prints. No spaces, no sign but '-', no hex, no 'Infinity'.
const NUMERIC_STRING = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
const SHOWN_VALUE_LENGTH = 40;
const SUCCESS_CODES: readonly unknown[] = [0, '0'];

/** The contract's name for a KooDrive space type: department (0), personal (1), group (2), else unknown. */
export function spaceTypeName(type: number): SpaceTypeName {
  return SPACE_TYPE_NAMES[type] ?? 'unknown';
}

// A value as the message shows it: short, so an error never carries a whole body, and redacted
// first, so that a field echoing our signature is not shown cut to a length no rule recognizes.
function show(value: unknown): string {
  let text: string;
  try {
    // JSON.stringify would show NaN and Infinity as null.
    text = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  text = redactRequestEchoes(text);
  return text.length > SHOWN_VALUE_LENGTH ? `${text.slice(0, SHOWN_VALUE_LENGTH)}…` : text;
}

function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

// `"abc" (a string)`, `[1,2] (an array)`, or just `null`.
function describeValue(value: unknown): string {
  return value === null || value === undefined ? String(value) : `${show(value)} (${describeKind(value)})`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The largest size believed, in GB (a million exabytes): far past any tenant, yet sums of many stay
 * finite and exact enough, and DynamoDB (numbers up to 1e126) can store them. A larger value is a
 * broken answer, which would otherwise turn totals into Infinity and JSON `null`.
 */
const MAX_CAPACITY_GB = 1e15;

/**
 * The most space types an answer may list. KooDrive documents three; each one listed is stored in every
 * snapshot, returned in every history item, drawn as a chart series and published as metrics of its own,
 * so a broken answer listing thousands (a 1 MB body holds ~20,000) would make every history page of the
 * range pass Lambda's 6 MB, and bill thousands of CloudWatch metrics. As many as a history's trend carries
 * in its cursor (MAX_STATE_SPACES in ../trend.ts).
 */
export const MAX_SPACE_TYPES = 15;

function readNumber(value: unknown, path: string): number {
  let parsed: number;
  if (typeof value === 'number') {
    parsed = value;
  } else if (typeof value === 'string') {
    if (!NUMERIC_STRING.test(value))
      throw new MalformedAllocationError(`${path} is ${show(value)}, not a number`);
    parsed = Number(value);
  } else {
    throw new MalformedAllocationError(`${path} is ${describeValue(value)}, not a number`);
  }
  if (!Number.isFinite(parsed))
    throw new MalformedAllocationError(`${path} is ${show(value)}, not a finite number`);
  if (parsed < 0) throw new MalformedAllocationError(`${path} is ${show(value)}, a negative size`);
  // -0 would otherwise survive into sums and ratios.
  return parsed === 0 ? 0 : parsed;
}

function readCapacity(value: unknown, path: string): number {
  const gb = readNumber(value, path);
  if (gb > MAX_CAPACITY_GB) {
    throw new MalformedAllocationError(
      `${path} is ${show(value)} GB, more than any storage holds (at most ${MAX_CAPACITY_GB} GB)`,
    );
  }
  return gb;
}

/**
 * A space type: any whole number, in either encoding. Types other than 0, 1 and 2 (negative ones too)
 * are kept, as `unknown` with their number, since the vendor documents no list (API.md).
 */
function readType(value: unknown, path: string): number {
  const expected = 'a space type is a whole number';
  let parsed: number;
  if (typeof value === 'number') {
    parsed = value;
  } else if (typeof value === 'string' && NUMERIC_STRING.test(value)) {
    parsed = Number(value);
  } else {
    const shown = typeof value === 'string' ? show(value) : describeValue(value);
    throw new MalformedAllocationError(`${path} is ${shown}, not a number: ${expected}`);
  }
  if (!Number.isInteger(parsed)) {
    throw new MalformedAllocationError(`${path} is ${show(value)}, not a whole number: ${expected}`);
  }
  if (!Number.isSafeInteger(parsed)) {
    const size = parsed > 0 ? 'too large' : 'too far below 0';
    throw new MalformedAllocationError(`${path} is ${show(value)}, ${size} for a space type`);
  }
  // '-0' is type 0, and is stored and shown as 0.
  return parsed === 0 ? 0 : parsed;
}

function readField(entry: Record<string, unknown>, field: string, path: string): unknown {
  if (!Object.hasOwn(entry, field) || entry[field] === undefined) {
    throw new MalformedAllocationError(`${path}.${field} is missing`);
  }
  return entry[field];
}

function readSpace(entry: unknown, path: string): SpaceAllocation {
  if (!isRecord(entry)) {
    throw new MalformedAllocationError(
      `${path} is ${describeKind(entry)}, not an object with type and capacities`,
    );
  }
  const type = readType(readField(entry, 'type', path), `${path}.type`);
  const allocatedGB = readCapacity(readField(entry, 'allocateCapacity', path), `${path}.allocateCapacity`);
  const totalGB = readCapacity(readField(entry, 'totalCapacity', path), `${path}.totalCapacity`);
  return space(type, allocatedGB, totalGB);
}

/**
 * A sum or difference of sizes without binary floating point's residue: 0.7 + 0.1 is
 * 0.7999999999999999 in doubles, which would show in answers and miss a 0.8 threshold reached exactly.
 * Fifteen significant digits are all a double holds reliably; whole numbers (the usual GB) pass as is.
 */
function tidy(value: number): number {
  return Number.isInteger(value) ? value : Number(value.toPrecision(15));
}

/** allocated ÷ total; null without a total, or when a vanishing total (5e-324 GB) would make it Infinity. */
function ratioOf(allocatedGB: number, totalGB: number): number | null {
  if (totalGB === 0) return null;
  const ratio = allocatedGB / totalGB;
  return Number.isFinite(ratio) ? ratio : null;
}

function space(type: number, allocatedGB: number, totalGB: number): SpaceAllocation {
  // Written out rather than spread from measure(): this runs for every space of every history item.
  return {
    type,
    typeName: spaceTypeName(type),
    allocatedGB,
    totalGB,
    unallocatedGB: tidy(totalGB - allocatedGB),
    allocatedRatio: ratioOf(allocatedGB, totalGB),
    overAllocated: allocatedGB > totalGB,
  };
}

function measure(allocatedGB: number, totalGB: number): AllocationTotals {
  return {
    allocatedGB,
    totalGB,
    unallocatedGB: tidy(totalGB - allocatedGB),
    allocatedRatio: ratioOf(allocatedGB, totalGB),
    overAllocated: allocatedGB > totalGB,
  };
}

/** Normalizes the parsed body `{code, msg, data}` of GetSpaceAllocation; throws MalformedAllocationError naming what was wrong. */
export function normalizeAllocation(raw: unknown): NormalizedSpaces {
  if (!isRecord(raw)) {
    throw new MalformedAllocationError(
      `the body is ${describeKind(raw)}, not an object with code, msg and data`,
    );
  }
  // The client checks `code` first and reports the vendor's error; this guards direct callers.
  if (Object.hasOwn(raw, 'code') && !SUCCESS_CODES.includes(raw.code)) {
    throw new MalformedAllocationError(`code is ${show(raw.code)}, not 0 (success)`);
  }
  if (!Object.hasOwn(raw, 'data') || raw.data === undefined)
    throw new MalformedAllocationError('data is missing');
  const data = raw.data;
  let entries: { entry: unknown; path: string }[];
  if (Array.isArray(data)) {
    // An allocation with no space has no ratio (0 / 0): stored as a snapshot it would break the
    // threshold comparison with the next one, so it is refused like any other unexpected shape.
    if (data.length === 0)
      throw new MalformedAllocationError('data is an empty array: KooDrive listed no space types');
    // Refused before any is read (types repeated or not: either way it is no tenant's list of spaces).
    if (data.length > MAX_SPACE_TYPES) {
      throw new MalformedAllocationError(
        `data lists ${data.length} space types, more than the ${MAX_SPACE_TYPES} accepted (KooDrive documents 3): a broken answer, not a tenant's spaces`,
      );
    }
    entries = data.map((entry: unknown, index) => ({ entry, path: `data[${index}]` }));
  } else if (isRecord(data)) {
    entries = [{ entry: data, path: 'data' }];
  } else {
    throw new MalformedAllocationError(`data is ${describeValue(data)}, not an object or an array`);
  }

  const pathByType = new Map<number, string>();
  const spaces = entries.map(({ entry, path }) => {
    const space = readSpace(entry, path);
    const earlier = pathByType.get(space.type);
    if (earlier !== undefined) {
      throw new MalformedAllocationError(`${path}.type is ${space.type}, the same type as ${earlier}`);
    }
    pathByType.set(space.type, path);
    return space;
  });
  return summarize(spaces);
}

/** Sorts validated spaces by type and adds the totals: the contract's arithmetic, in one place. */
function summarize(spaces: SpaceAllocation[]): NormalizedSpaces {
  spaces.sort((left, right) => left.type - right.type);
  let allocatedGB = 0;
  let totalGB = 0;
  for (const entry of spaces) {
    allocatedGB += entry.allocatedGB;
    totalGB += entry.totalGB;
  }
  // One space: its own numbers, exactly (no sum was made).
  const single = spaces.length === 1;
  return {
    spaces,
    totals: measure(single ? allocatedGB : tidy(allocatedGB), single ? totalGB : tidy(totalGB)),
  };
}

/**
 * The contract's shape from sizes that are already validated numbers (stored snapshots): the same
 * derivation as normalizeAllocation without re-reading KooDrive's encodings.
 */
export function deriveAllocation(
  sizes: readonly { type: number; allocatedGB: number; totalGB: number }[],
): NormalizedSpaces {
  return summarize(sizes.map((size) => space(size.type, size.allocatedGB, size.totalGB)));
}

/** JSON.parse of KooDrive's body, or a MalformedAllocationError that shows at most its first characters. */
export function parseKooDriveBody(text: string): unknown {
  if (text.trim() === '') throw new MalformedAllocationError('the body is empty, not JSON');
  try {
    return JSON.parse(text);
  } catch {
    // The parser's own message quotes part of the body; it is left out, as is the cause, for the same reason.
    throw new MalformedAllocationError(
      `the body is not JSON (${text.length} characters, starting ${show(redactRequestEchoes(text).slice(0, SHOWN_VALUE_LENGTH))})`,
    );
  }
}
