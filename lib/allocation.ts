import { normalizeAllocation } from './koodrive/allocation.ts';
import type { KooDriveClient } from './koodrive/client.ts';
import type { Tenant } from './tenants.ts';
import type { Allocation } from './types.ts';

export interface FetchedAllocation {
  allocation: Allocation;
  traceId: string;
  attempts: number;
}

/** Fetches one tenant's allocation live from KooDrive and normalizes it to the contract's shape. */
export async function fetchAllocation(
  koodrive: KooDriveClient,
  tenant: Tenant,
  options: { traceId?: string; deadline?: number } = {},
): Promise<FetchedAllocation> {
  const response = await koodrive.getSpaceAllocation(tenant, options);
  const { spaces, totals } = normalizeAllocation(response.body);
  return {
    allocation: { tenantId: tenant.tenantId, observedAt: response.fetchedAt.toISOString(), spaces, totals },
    traceId: response.traceId,
    attempts: response.attempts,
  };
}
