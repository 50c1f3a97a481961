import { describe, expect, it } from 'vitest';
import { configProblems, DEFAULTS, loadConfig, withoutTrailingSlashes } from '../../lib/config.ts';
import { ConfigurationError, InvalidRequestError, UnknownTenantError } from '../../lib/errors.ts';
import { parseTenantId, parseTenants } from '../../lib/tenants.ts';

describe('loadConfig', () => {
  it('gives the contract defaults when nothing is set', () => {
    const config = loadConfig({});
    // The contract's value, written out: comparing with DEFAULTS would pass whatever DEFAULTS said.
    expect(config.baseUrl).toBe('https://intl.myhuaweicloud-koodrive.com');
    expect(config.timeoutMs).toBe(5000);
    expect(config.maxAttempts).toBe(3);
    expect(config.secretCacheSeconds).toBe(300);
    expect(config.snapshotRetentionDays).toBe(400);
    expect(config.snapshotConcurrency).toBe(8);
    expect(config.thresholds).toEqual([0.8, 0.9, 1]);
    expect(config.tenants.defaultTenant).toEqual({ tenantId: 'demo', secretId: 'koodrive/demo' });
  });

  it('reads every variable and strips a trailing slash from the base URL', () => {
    const config = loadConfig({
      KOODRIVE_TENANTS:
        'acme=koodrive/acme, beta=arn:aws:secretsmanager:eu-west-1:123456789012:secret:beta-AbCdEf',
      KOODRIVE_BASE_URL: 'https://cn.myhuaweicloud-koodrive.com/',
      KOODRIVE_TIMEOUT_MS: '1500',
      KOODRIVE_MAX_ATTEMPTS: '5',
      SECRET_CACHE_SECONDS: '0',
      SNAPSHOT_TABLE: 'snapshots',
      SNAPSHOT_RETENTION_DAYS: '30',
      ALLOCATION_THRESHOLDS: '1.0, 0.5,0.5',
    });
    expect(config.baseUrl).toBe('https://cn.myhuaweicloud-koodrive.com');
    expect(config.timeoutMs).toBe(1500);
    expect(config.maxAttempts).toBe(5);
    expect(config.secretCacheSeconds).toBe(0);
    expect(config.snapshotTable).toBe('snapshots');
    expect(config.snapshotRetentionDays).toBe(30);
    expect(config.thresholds).toEqual([0.5, 1]);
    expect(config.allocationMetrics).toBe('every-space');
    expect(loadConfig({ ALLOCATION_METRICS: ' totals ' }).allocationMetrics).toBe('totals');
    expect(config.tenants.all.map((t) => t.tenantId)).toEqual(['acme', 'beta']);
    expect(config.tenants.get('beta').secretId).toBe(
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:beta-AbCdEf',
    );
  });

  it.each([
    ['KOODRIVE_TIMEOUT_MS', 'soon', /KOODRIVE_TIMEOUT_MS is 'soon'/],
    ['KOODRIVE_MAX_ATTEMPTS', '0', /KOODRIVE_MAX_ATTEMPTS is '0': it must be a whole number from 1 to 10/],
    ['SECRET_CACHE_SECONDS', '-1', /SECRET_CACHE_SECONDS/],
    ['KOODRIVE_BASE_URL', 'not a url', /KOODRIVE_BASE_URL is not a URL/],
    ['KOODRIVE_BASE_URL', 'ftp://example.com', /http\(s\)/],
    ['KOODRIVE_BASE_URL', 'https://user:pw@example.com', /no query or credentials/],
    ['KOODRIVE_BASE_URL', 'http://intl.myhuaweicloud-koodrive.com', /KOODRIVE_BASE_URL must use https:/],
    ['KOODRIVE_BASE_URL', 'http://127.0.0.1.nip.io:8080', /KOODRIVE_BASE_URL must use https:/],
    ['KOODRIVE_BASE_URL', 'http://localhost.example.com', /KOODRIVE_BASE_URL must use https:/],
    ['KOODRIVE_BASE_URL', 'http://10.0.0.1', /KOODRIVE_BASE_URL must use https:/],
    ['KOODRIVE_BASE_URL', 'http://[::2]:80', /KOODRIVE_BASE_URL must use https:/],
    ['ALLOCATION_THRESHOLDS', '0.8,high', /ALLOCATION_THRESHOLDS/],
    [
      'ALLOCATION_THRESHOLDS',
      '80,90,100',
      /ALLOCATION_THRESHOLDS is '80,90,100': it must be comma-separated ratios above 0 and at most 10 \(0\.8 is 80 %\)/,
    ],
    [
      'ALLOCATION_METRICS',
      'spaces',
      /ALLOCATION_METRICS is 'spaces': it must be every-space \(AllocatedGB, TotalGB and AllocatedRatio of each space type and of the totals\) or totals/,
    ],
  ])('refuses %s=%s with a message naming the variable', (name, value, message) => {
    // Spread: every setting read, those of KooDrive calls included (checked when first read).
    expect(() => ({ ...loadConfig({ [name]: value }) })).toThrow(ConfigurationError);
    expect(() => ({ ...loadConfig({ [name]: value }) })).toThrow(message);
  });

  it('lets the stored-data functions work while a KooDrive call setting is wrong', () => {
    const config = loadConfig({
      KOODRIVE_BASE_URL: 'http://koodrive.example.com',
      KOODRIVE_TIMEOUT_MS: 'soon',
      KOODRIVE_TENANTS: 'acme=koodrive/acme',
      HISTORY_CURSOR_KEY: 'k',
    });
    // What history and charts read:
    expect(config.tenants.get('acme').secretId).toBe('koodrive/acme');
    expect(config.cursorKey).toBe('k');
    expect(config.snapshotTable).toBe(DEFAULTS.SNAPSHOT_TABLE);
    expect(config.thresholds).toEqual([0.8, 0.9, 1]);
    // What the live route and the snapshots read fails, every time it is read:
    expect(() => config.baseUrl).toThrow(/KOODRIVE_BASE_URL must use https:/);
    expect(() => config.baseUrl).toThrow(ConfigurationError);
  });

  it('lets history and the live route work while a snapshot setting is wrong', () => {
    const config = loadConfig({
      KOODRIVE_TENANTS: 'acme=koodrive/acme',
      SNAPSHOT_RETENTION_DAYS: 'abc',
      SNAPSHOT_CONCURRENCY: '0',
      ALLOCATION_THRESHOLDS: 'high',
      ALLOCATION_METRICS: 'some',
    });
    // What history and the live route read:
    expect(config.tenants.get('acme').secretId).toBe('koodrive/acme');
    expect(config.baseUrl).toBe(DEFAULTS.KOODRIVE_BASE_URL);
    expect(config.timeoutMs).toBe(5000);
    expect(config.snapshotTable).toBe(DEFAULTS.SNAPSHOT_TABLE);
    // What the snapshots read fails, each setting naming itself:
    expect(() => config.snapshotRetentionDays).toThrow(/SNAPSHOT_RETENTION_DAYS is 'abc'/);
    expect(() => config.snapshotConcurrency).toThrow(/SNAPSHOT_CONCURRENCY is '0'/);
    expect(() => config.thresholds).toThrow(/ALLOCATION_THRESHOLDS is 'high'/);
    expect(() => config.allocationMetrics).toThrow(/ALLOCATION_METRICS is 'some'/);
  });

  it('lets the charts draw their thresholds while another snapshot setting is wrong', () => {
    const config = loadConfig({ SNAPSHOT_RETENTION_DAYS: 'abc', ALLOCATION_METRICS: 'some' });
    expect(config.thresholds).toEqual([0.8, 0.9, 1]);
    expect(() => config.snapshotRetentionDays).toThrow(ConfigurationError);
  });
});

describe('configProblems', () => {
  it('names every wrong setting at once, and nothing when all are good', () => {
    expect(configProblems({})).toEqual([]);
    expect(
      configProblems({
        KOODRIVE_TENANTS: 'acme=koodrive/acme',
        KOODRIVE_TIMEOUT_MS: '5000',
        ALLOCATION_METRICS: 'totals',
      }),
    ).toEqual([]);
    const problems = configProblems({
      KOODRIVE_TIMEOUT_MS: 'abc',
      KOODRIVE_MAX_ATTEMPTS: '-1',
      SNAPSHOT_RETENTION_DAYS: '0',
      ALLOCATION_THRESHOLDS: '80',
      KOODRIVE_BASE_URL: 'http://koodrive.example.com',
    });
    expect(problems).toEqual([
      expect.stringMatching(/^KOODRIVE_BASE_URL must use https:/),
      "KOODRIVE_TIMEOUT_MS is 'abc': it must be a whole number from 1 to 900000.",
      "KOODRIVE_MAX_ATTEMPTS is '-1': it must be a whole number from 1 to 10.",
      "SNAPSHOT_RETENTION_DAYS is '0': it must be a whole number from 1 to 36500.",
      expect.stringMatching(/^ALLOCATION_THRESHOLDS is '80'/),
    ]);
    expect(configProblems({ KOODRIVE_TENANTS: 'bad id=koodrive/x' })).toEqual([
      expect.stringMatching(/KOODRIVE_TENANTS/),
    ]);
  });
});

describe('KOODRIVE_BASE_URL: HTTPS, or HTTP on loopback only', () => {
  it.each([
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://127.255.0.9', 'http://127.255.0.9'],
    ['http://localhost:8080/', 'http://localhost:8080'],
    ['http://LOCALHOST:8080', 'http://localhost:8080'],
    ['http://[::1]:9000', 'http://[::1]:9000'],
    ['http://[0:0:0:0:0:0:0:1]:9000', 'http://[::1]:9000'],
    ['https://koodrive.example:8443', 'https://koodrive.example:8443'],
    ['https://proxy.example/prefix/', 'https://proxy.example/prefix'],
  ])('accepts %s', (value, expected) => {
    expect(loadConfig({ KOODRIVE_BASE_URL: value }).baseUrl).toBe(expected);
  });

  it('says why plain http is refused without repeating the URL', () => {
    const message = (() => {
      try {
        return loadConfig({ KOODRIVE_BASE_URL: 'http://proxy.internal.example/koodrive' }).baseUrl;
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain('cleartext');
    expect(message).not.toContain('proxy.internal.example');
  });
});

describe('withoutTrailingSlashes', () => {
  it.each([
    ['https://x.example/a///', 'https://x.example/a'],
    ['/', ''],
    ['', ''],
  ])('trims %j', (value, expected) => {
    expect(withoutTrailingSlashes(value)).toBe(expected);
  });

  it('leaves a long run of inner slashes alone', () => {
    const path = `/${'/'.repeat(100_000)}x`;
    expect(withoutTrailingSlashes(path)).toBe(path);
  });
});

describe('tenants', () => {
  it('makes the first tenant the default and finds the others', () => {
    const registry = parseTenants('a=s1,b=s2');
    expect(registry.defaultTenant.tenantId).toBe('a');
    expect(registry.get('b')).toEqual({ tenantId: 'b', secretId: 's2' });
    expect(() => registry.get('c')).toThrow(UnknownTenantError);
  });

  it('names the secret of a bare tenant id by the template, and keeps explicit pairs', () => {
    const registry = parseTenants('acme, beta=other/beta, arn', 'KOODRIVE_TENANTS', 'kd/{tenantId}/app');
    expect(registry.all).toEqual([
      { tenantId: 'acme', secretId: 'kd/acme/app' },
      { tenantId: 'beta', secretId: 'other/beta' },
      { tenantId: 'arn', secretId: 'kd/arn/app' },
    ]);
    expect(loadConfig({ KOODRIVE_TENANTS: 'acme' }).tenants.get('acme').secretId).toBe('koodrive/acme');
    expect(() => loadConfig({ KOODRIVE_TENANTS: 'acme', KOODRIVE_SECRET_ID_TEMPLATE: '' })).toThrow(
      /gives no secret id for tenant 'acme'.*KOODRIVE_SECRET_ID_TEMPLATE/,
    );
    for (const template of ['koodrive/', 'a/{tenantId}/{tenantId}', 'a b/{tenantId}', '{tenant}']) {
      expect(() => loadConfig({ KOODRIVE_TENANTS: 'acme', KOODRIVE_SECRET_ID_TEMPLATE: template })).toThrow(
        ConfigurationError,
      );
    }
  });

  it.each([
    ['', /lists no tenant/],
    ['acme', /gives no secret id for tenant 'acme'/],
    ['-bad=s', /invalid tenant id '-bad'/],
    ['a=s,a=t', /lists tenant 'a' twice/],
  ])('refuses KOODRIVE_TENANTS=%j', (value, message) => {
    expect(() => parseTenants(value)).toThrow(message);
  });

  it.each(['acme', 'A', 'a_b-c', 'x'.repeat(64), '0tenant'])('accepts tenant id %s', (id) => {
    expect(parseTenantId(id)).toBe(id);
  });

  it.each(['', '-a', '_a', 'a b', 'a/b', 'x'.repeat(65), 'é'])(
    'refuses tenant id %j as a bad request',
    (id) => {
      expect(() => parseTenantId(id)).toThrow(InvalidRequestError);
    },
  );
});
