/** The local stack's answer to /dashboard/ (local/trailing-slash.ts), the chart function's own. */
import { describe, expect, it } from 'vitest';
import { dashboardRedirect } from '../../local/trailing-slash.ts';

describe('dashboardRedirect', () => {
  it('sends /dashboard/ (any number of slashes) back to /dashboard, relatively, with its query', () => {
    expect(dashboardRedirect('/dashboard/')).toBe('../dashboard');
    expect(dashboardRedirect('/dashboard//?inline=1')).toBe('../../dashboard?inline=1');
  });

  it('leaves every other path to the router', () => {
    for (const url of [
      '/dashboard',
      '/dashboard?x=/',
      '/tenants/demo/allocation/',
      '/tenants/demo/dashboard/',
      '/dashboards/',
      undefined,
    ]) {
      expect(dashboardRedirect(url)).toBeUndefined();
    }
  });
});
