/**
 * A local osls plugin: the snapshot function's reserved concurrency from the `snapshotReservedConcurrency`
 * stage parameter (`custom.snapshotConcurrency.reserved`). osls's own `reservedConcurrency` takes no empty
 * value, and the default is none: reserving takes from the account's unreserved pool, which must keep
 * 100, so a new account (a limit of 10) could not deploy. Checked at package time against the queue's
 * maximum concurrency, which the reservation must leave room for (and one more run for the schedule).
 */
import { asUserError } from './plugin-support.ts';

/** The reserved concurrency for a parameter value, or undefined for none; throws what to write instead. */
export function reservedConcurrency(value: unknown, queueConcurrency: unknown): number | undefined {
  const text = String(value ?? '').trim();
  if (text === '') return undefined;
  const reserved = Number(text);
  const queue = Number(queueConcurrency);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(reserved) || reserved < 1) {
    throw new Error(
      `snapshotReservedConcurrency is '${text}': give a whole number of concurrent snapshot runs (e.g. 5), or leave it empty for none.`,
    );
  }
  if (Number.isSafeInteger(queue) && reserved < queue + 1) {
    throw new Error(
      `snapshotReservedConcurrency ${reserved} leaves no room for the queue's ${queue} concurrent runs (snapshotQueueConcurrency) and the schedule's one: give at least ${queue + 1}.`,
    );
  }
  return reserved;
}

interface ServerlessLike {
  service: {
    custom?: Record<string, unknown>;
    functions: Record<string, { reservedConcurrency?: number } | undefined>;
  };
}

/** The plugin osls loads from `plugins:`. */
export default class ConcurrencyPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    this.hooks = {
      'before:package:compileFunctions': () => {
        const settings = serverless.service.custom?.snapshotConcurrency as
          | { reserved?: unknown; queue?: unknown }
          | undefined;
        const fn = serverless.service.functions.snapshot;
        if (settings === undefined || fn === undefined) return;
        let reserved: number | undefined;
        try {
          reserved = reservedConcurrency(settings.reserved, settings.queue);
        } catch (error) {
          throw asUserError(error);
        }
        if (reserved !== undefined) fn.reservedConcurrency = reserved;
      },
    };
  }
}
