import { AppError } from './errors.ts';
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
  let normalized: ReturnType<typeof normalizeAllocation>;
  try {
    normalized = normalizeAllocation(response.body);
  } catch (error) {
    // An answer in an unexpected shape came from a call KooDrive logged: name it, as the client does
    // for the failures it finds itself (a snapshot's log has no answer header to carry it).
    if (error instanceof AppError) error.koodriveTraceId ??= response.traceId;
    throw error;
  }
  const { spaces, totals } = normalized;
  return {
    allocation: { tenantId: tenant.tenantId, observedAt: response.fetchedAt.toISOString(), spaces, totals },
    traceId: response.traceId,
    attempts: response.attempts,
  };
}
