import { ConfigurationError, InvalidRequestError, UnknownTenantError } from './errors.ts';

/** The contract's tenant id rule. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface Tenant {
  tenantId: string;
  /** Secrets Manager secret name or ARN holding the tenant's app credentials. */
  secretId: string;
}

export interface TenantRegistry {
  /** Every configured tenant, in configuration order; the first is the default one. */
  readonly all: readonly Tenant[];
  readonly defaultTenant: Tenant;
  /** The configured tenant, or UnknownTenantError. */
  get(tenantId: string): Tenant;
}

/** Checks a tenant id from a request; a bad one is the caller's mistake (400). */
export function parseTenantId(value: unknown): string {
  if (typeof value !== 'string' || !TENANT_ID_PATTERN.test(value)) {
    const shown = typeof value === 'string' ? `'${value.slice(0, 80)}'` : String(value);
    throw new InvalidRequestError(
      `Invalid tenant id ${shown}: it must match ${TENANT_ID_PATTERN.source} (letters, digits, '_' and '-', 1 to 64 characters, starting with a letter or digit).`,
    );
  }
  return value;
}

/** Parses KOODRIVE_TENANTS (`tenantId=secretId,…`) into a registry; mistakes are configuration errors. */
export function parseTenants(value: string, variable = 'KOODRIVE_TENANTS'): TenantRegistry {
  const tenants: Tenant[] = [];
  const byId = new Map<string, Tenant>();
  for (const rawPair of value.split(',')) {
    const pair = rawPair.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const tenantId = (eq === -1 ? pair : pair.slice(0, eq)).trim();
    const secretId = eq === -1 ? '' : pair.slice(eq + 1).trim();
    if (!TENANT_ID_PATTERN.test(tenantId)) {
      throw new ConfigurationError(
        `${variable} has an invalid tenant id '${tenantId.slice(0, 80)}': it must match ${TENANT_ID_PATTERN.source}.`,
      );
    }
    if (secretId === '') {
      throw new ConfigurationError(
        `${variable} gives no secret id for tenant '${tenantId}': write it as ${tenantId}=<secret name or ARN>.`,
      );
    }
    if (byId.has(tenantId)) {
      throw new ConfigurationError(
        `${variable} lists tenant '${tenantId}' twice; each tenant may appear once.`,
      );
    }
    const tenant = { tenantId, secretId };
    tenants.push(tenant);
    byId.set(tenantId, tenant);
  }
  const [first] = tenants;
  if (first === undefined) {
    throw new ConfigurationError(
      `${variable} lists no tenant: set it to tenantId=secretId pairs, comma-separated.`,
    );
  }
  return {
    all: tenants,
    defaultTenant: first,
    get(tenantId) {
      const tenant = byId.get(tenantId);
      if (tenant === undefined) throw new UnknownTenantError(tenantId);
      return tenant;
    },
  };
}
