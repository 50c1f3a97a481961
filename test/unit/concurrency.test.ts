/** The snapshot function's reserved concurrency from a parameter that may be empty. */
import { describe, expect, it } from 'vitest';
import ConcurrencyPlugin, { reservedConcurrency } from '../../serverless/concurrency.ts';

function packaged(reserved: unknown, queue: unknown = 2) {
  const service = {
    custom: { snapshotConcurrency: { reserved, queue } } as Record<string, unknown>,
    functions: { snapshot: {} as { reservedConcurrency?: number } },
  };
  new ConcurrencyPlugin({ service }).hooks['before:package:compileFunctions']?.();
  return service.functions.snapshot.reservedConcurrency;
}

describe('snapshotReservedConcurrency', () => {
  it('reserves nothing by default, and the number given otherwise', () => {
    expect(packaged('')).toBeUndefined();
    expect(packaged('  ')).toBeUndefined();
    expect(packaged('5')).toBe(5);
    expect(packaged(5)).toBe(5);
  });

  it('refuses what is not a count, or leaves the queue and the schedule no room', () => {
    expect(() => reservedConcurrency('five', 2)).toThrow(
      /snapshotReservedConcurrency is 'five': give a whole number/,
    );
    expect(() => reservedConcurrency('0', 2)).toThrow(/give a whole number/);
    expect(() => reservedConcurrency('2.5', 2)).toThrow(/give a whole number/);
    expect(() => reservedConcurrency('2', 2)).toThrow(
      /leaves no room for the queue's 2 concurrent runs .* give at least 3/,
    );
    expect(reservedConcurrency('3', 2)).toBe(3);
    // Named as osls's user errors, printed without a stack trace.
    expect(() => packaged('x')).toThrow(expect.objectContaining({ name: 'ServerlessError' }));
  });
});
