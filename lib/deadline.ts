import type { Context } from 'aws-lambda';

/** The invocation's end less `marginMs` (epoch ms); undefined when the context cannot tell (tests, tools). */
export function invocationDeadline(context: Context, marginMs: number): number | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  const remaining = context.getRemainingTimeInMillis();
  return Number.isFinite(remaining) ? Date.now() + remaining - marginMs : undefined;
}
