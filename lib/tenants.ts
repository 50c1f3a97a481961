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

/**
 * The tenant id of a `/tenants/{tenantId}/…` route ({@link parseTenantId}), refusing a path with `.` or
 * `..` segments: an IAM policy's resource (`…/GET/tenants/beta/*`) may be matched against the path as
 * sent, which `/tenants/beta/../acme/allocation` matches while the route names `acme`. No request
 * needs such a segment.
 */
export function routeTenantId(tenantParam: unknown, rawPath: string): string {
  const tenantId = parseTenantId(tenantParam);
  if (/(^|\/)\.\.?(\/|$)/.test(rawPath)) {
    throw new InvalidRequestError(
      `The path has '.' or '..' segments: write it as /tenants/${tenantId}/… (an IAM policy names a tenant by the path as sent).`,
    );
  }
  return tenantId;
}

/** The placeholder a secret id template holds: `koodrive/{tenantId}`. */
export const TENANT_PLACEHOLDER = '{tenantId}';
// Secrets Manager's name characters, around exactly one placeholder.
const TEMPLATE_PATTERN = /^[A-Za-z0-9/_+=.@-]*\{tenantId\}[A-Za-z0-9/_+=.@-]*$/;

/**
 * Checks KOODRIVE_SECRET_ID_TEMPLATE: a secret name with `{tenantId}` once, e.g. `koodrive/{tenantId}`.
 * An empty template means every tenant must name its secret (`tenantId=secretId`).
 */
export function parseSecretIdTemplate(value: string, variable = 'KOODRIVE_SECRET_ID_TEMPLATE'): string {
  const template = value.trim();
  if (template === '' || TEMPLATE_PATTERN.test(template)) return template;
  throw new ConfigurationError(
    `${variable} is '${template.slice(0, 80)}': it must be a secret name holding {tenantId} once, e.g. koodrive/{tenantId} (letters, digits and /_+=.@- around it).`,
  );
}

/**
 * Parses KOODRIVE_TENANTS into a registry: `tenantId=secretId` pairs, or, with a secret id `template`,
 * bare tenant ids whose secret the template names (`acme` → `koodrive/acme`). The short form keeps
 * hundreds of tenants within the 4 KB Lambda allows for all environment variables. Mistakes are
 * configuration errors.
 */
export function parseTenants(value: string, variable = 'KOODRIVE_TENANTS', template = ''): TenantRegistry {
  const tenants: Tenant[] = [];
  const byId = new Map<string, Tenant>();
  for (const rawPair of value.split(',')) {
    const pair = rawPair.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const tenantId = (eq === -1 ? pair : pair.slice(0, eq)).trim();
    const secretId = eq === -1 ? template.replace(TENANT_PLACEHOLDER, tenantId) : pair.slice(eq + 1).trim();
    if (!TENANT_ID_PATTERN.test(tenantId)) {
      throw new ConfigurationError(
        `${variable} has an invalid tenant id '${tenantId.slice(0, 80)}': it must match ${TENANT_ID_PATTERN.source}.`,
      );
    }
    if (secretId === '') {
      throw new ConfigurationError(
        `${variable} gives no secret id for tenant '${tenantId}': write it as ${tenantId}=<secret name or ARN>, or set KOODRIVE_SECRET_ID_TEMPLATE (e.g. koodrive/{tenantId}).`,
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
