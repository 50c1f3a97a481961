/** One space type of a tenant, as the contract's JSON shows it. */
export interface SpaceAllocation {
  type: number;
  typeName: SpaceTypeName;
  allocatedGB: number;
  totalGB: number;
  unallocatedGB: number;
  allocatedRatio: number | null;
  overAllocated: boolean;
}

export type SpaceTypeName = 'department' | 'personal' | 'group' | 'unknown';

export interface AllocationTotals {
  allocatedGB: number;
  totalGB: number;
  unallocatedGB: number;
  allocatedRatio: number | null;
  overAllocated: boolean;
}

/** The contract's Allocation: also each history item (which may add `fetchedAt`). */
export interface Allocation {
  tenantId: string;
  observedAt: string;
  fetchedAt?: string;
  spaces: SpaceAllocation[];
  totals: AllocationTotals;
}

/** What KooDrive reported, normalized, before it is tied to a tenant and a time. */
export interface NormalizedSpaces {
  spaces: SpaceAllocation[];
  totals: AllocationTotals;
}
