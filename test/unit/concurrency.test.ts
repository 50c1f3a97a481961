/** The snapshot function's reserved concurrency from a parameter that may be empty. */
import { describe, expect, it } from 'vitest';
import { worstCaseBackoffMs } from '../../lib/koodrive/client.ts';
import ConcurrencyPlugin, {
  capacityWarning,
  reservedConcurrency,
  runSettingsOf,
  snapshotRunCapacity,
} from '../../serverless/concurrency.ts';

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

/** serverless.yml's defaults, as osls resolves them into the provider's environment. */
const ENVIRONMENT = {
  KOODRIVE_TENANTS: 'demo=koodrive/demo',
  KOODRIVE_SECRET_ID_TEMPLATE: 'koodrive/{tenantId}',
  KOODRIVE_TIMEOUT_MS: 5000,
  KOODRIVE_MAX_ATTEMPTS: 3,
  SNAPSHOT_CONCURRENCY: 8,
  SNAPSHOT_TABLE: { Ref: 'SnapshotsTable' },
};
const tenantIds = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`).join(',');

/** The warnings the plugin gives while packaging with that environment and snapshot function. */
function warnings(
  environment: Record<string, unknown>,
  snapshot: Record<string, unknown> = { timeout: 300 },
) {
  const given: string[] = [];
  const service = {
    custom: { snapshotConcurrency: { reserved: '', queue: 2 } } as Record<string, unknown>,
    provider: { environment },
    functions: { snapshot },
  };
  new ConcurrencyPlugin(
    { service },
    {},
    { log: { warning: (message: string) => given.push(message) } },
  ).hooks['before:package:compileFunctions']?.();
  return given;
}

describe('one snapshot run’s capacity while KooDrive answers nothing in time', () => {
  it('waits at most 0.1 s, 0.2 s, 0.4 s, … (2 s at most each) between a call’s attempts', () => {
    expect(worstCaseBackoffMs(1)).toBe(0);
    expect(worstCaseBackoffMs(3)).toBe(300);
    expect(worstCaseBackoffMs(10)).toBe(100 + 200 + 400 + 800 + 1600 + 4 * 2000);
  });

  it('is 144 tenants with the defaults: 8 lanes of ⌊280 s ÷ 15.3 s⌋', () => {
    expect(
      snapshotRunCapacity({
        tenants: 1,
        concurrency: 8,
        timeoutMs: 5000,
        maxAttempts: 3,
        functionTimeoutSeconds: 300,
      }),
    ).toEqual({ budgetMs: 280_000, perTenantMs: 15_300, perLane: 18, tenants: 144 });
  });

  it('warns, naming the numbers and the fixes, when the tenants do not fit; not when they do', () => {
    const run = { concurrency: 8, timeoutMs: 5000, maxAttempts: 3, functionTimeoutSeconds: 300 };
    expect(capacityWarning({ ...run, tenants: 144 })).toBeUndefined();
    const warning = capacityWarning({ ...run, tenants: 145 });
    expect(warning).toContain('A snapshot run may not reach all 145 tenants while KooDrive is slow');
    expect(warning).toContain(
      'each tenant may take 15.3 s (timeoutMs 5000 × maxAttempts 3, and 0.3 s between attempts)',
    );
    expect(warning).toContain('8 at a time (snapshotConcurrency), in the 280 s a run has');
    expect(warning).toContain('144 tenants fit');
    expect(warning).toContain(
      "To fit them, raise snapshotConcurrency to at least 9, or raise the snapshot function's timeout (serverless.yml, at most 900 s), or lower timeoutMs or maxAttempts.",
    );
    // No concurrency helps when one tenant's attempts outlast the run, or more than the functions take.
    expect(capacityWarning({ ...run, tenants: 1, timeoutMs: 100_000 })).toContain(
      "Not even one tenant's attempts fit in a run: raise the snapshot function's timeout",
    );
    expect(capacityWarning({ ...run, tenants: 400, timeoutMs: 90_000 })).toContain(
      'or lower timeoutMs or maxAttempts (snapshotConcurrency would need 400, over its 256)',
    );
  });

  it('reads the settings as packaging has them, numbers or --param strings, and skips malformed ones', () => {
    expect(runSettingsOf(ENVIRONMENT, 300)).toEqual({
      tenants: 1,
      concurrency: 8,
      timeoutMs: 5000,
      maxAttempts: 3,
      functionTimeoutSeconds: 300,
    });
    expect(
      runSettingsOf({ ...ENVIRONMENT, KOODRIVE_TENANTS: 'a,b=x/y,c', KOODRIVE_TIMEOUT_MS: '2000' }, '300'),
    ).toMatchObject({ tenants: 3, timeoutMs: 2000 });
    // The functions refuse these themselves, naming the variable: no warning to add.
    expect(runSettingsOf({ ...ENVIRONMENT, KOODRIVE_TIMEOUT_MS: 'soon' }, 300)).toBeUndefined();
    expect(runSettingsOf({ ...ENVIRONMENT, KOODRIVE_TENANTS: 'not a tenant' }, 300)).toBeUndefined();
    expect(runSettingsOf({ ...ENVIRONMENT, SNAPSHOT_CONCURRENCY: 0 }, 300)).toBeUndefined();
  });

  it('warns while packaging, without refusing, from the snapshot function’s environment and timeout', () => {
    expect(warnings(ENVIRONMENT)).toEqual([]);
    expect(warnings({ ...ENVIRONMENT, KOODRIVE_TENANTS: tenantIds(150) })).toEqual([
      expect.stringContaining('may not reach all 150 tenants'),
    ]);
    // The function's own settings win over the provider's.
    expect(
      warnings(
        { ...ENVIRONMENT, KOODRIVE_TENANTS: tenantIds(150) },
        { timeout: 300, environment: { SNAPSHOT_CONCURRENCY: 9 } },
      ),
    ).toEqual([]);
    expect(warnings({ ...ENVIRONMENT, KOODRIVE_TENANTS: tenantIds(20) }, { timeout: 30 })).toEqual([
      expect.stringContaining("the snapshot function's timeout of 30 s"),
    ]);
  });
});
