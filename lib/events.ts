import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { AWS_REQUEST_HANDLER } from './aws/request-handler.ts';
import type { ThresholdCrossing } from './thresholds.ts';

export const EVENT_SOURCE = 'koodrive.allocation';
export const THRESHOLD_CROSSED = 'Allocation Threshold Crossed';
/** PutEvents takes at most ten entries per call. */
const BATCH_SIZE = 10;

/** What EventBridge accepted of a set of crossings: the rest must stay pending and be published again. */
export interface PublishOutcome {
  published: ThresholdCrossing[];
  /** Refused entries and entries of calls that failed, in their original order. */
  failed: ThresholdCrossing[];
  /** Why the first failure happened (an error name or EventBridge's error code): no event content. */
  reason?: string;
}

export interface PublishOptions {
  /**
   * Asked before each PutEvents call: false leaves that call's entries, and the rest, unpublished
   * (returned as failed). The snapshot job stops when its publishing lease could run out during a call,
   * or the invocation could end before what the call published is recorded.
   */
  mayCall?: () => boolean;
}

export interface EventPublisher {
  /**
   * Publishes every crossing, ten per call; never rejects: what EventBridge did not accept (a refused
   * entry, or every entry of a call that failed or was not made) is returned, so the caller keeps
   * exactly that pending.
   */
  publishThresholdCrossings(
    crossings: readonly ThresholdCrossing[],
    options?: PublishOptions,
  ): Promise<PublishOutcome>;
}

/**
 * One try per PutEvents: EventBridge has no idempotency key, so the SDK's retry of a call whose answer
 * was lost (a timeout, a reset) publishes the same events again. A call that fails leaves its events
 * pending on the snapshot; the event's redelivery publishes them.
 */
export function createEventBridgeClient(): EventBridgeClient {
  return new EventBridgeClient({ requestHandler: AWS_REQUEST_HANDLER, maxAttempts: 1 });
}

/** Publishes the product's events on one bus; an empty bus name publishes nothing. */
export function createEventPublisher(options: {
  busName: string;
  client?: Pick<EventBridgeClient, 'send'>;
}): EventPublisher {
  let client = options.client;
  return {
    async publishThresholdCrossings(crossings, publishOptions = {}) {
      if (options.busName === '' || crossings.length === 0) return { published: [], failed: [] };
      client ??= createEventBridgeClient();
      const outcome: PublishOutcome = { published: [], failed: [] };
      for (let start = 0; start < crossings.length; start += BATCH_SIZE) {
        if (publishOptions.mayCall?.() === false) {
          outcome.reason ??=
            'stopped before a PutEvents call: the publishing lease could run out, or the invocation end, before what it published is recorded';
          outcome.failed.push(...crossings.slice(start));
          break;
        }
        const batch = crossings.slice(start, start + BATCH_SIZE);
        const entries: PutEventsRequestEntry[] = batch.map((crossing) => ({
          EventBusName: options.busName,
          Source: EVENT_SOURCE,
          DetailType: THRESHOLD_CROSSED,
          Detail: JSON.stringify(crossing),
          Time: new Date(crossing.observedAt),
        }));
        try {
          const output = await client.send(new PutEventsCommand({ Entries: entries }));
          // Results come in the order of the entries; an entry with an ErrorCode was not published.
          batch.forEach((crossing, index) => {
            const errorCode = output.Entries?.[index]?.ErrorCode;
            const refused = errorCode !== undefined || output.Entries?.[index] === undefined;
            if (refused) outcome.reason ??= `EventBridge refused an entry (${errorCode ?? 'no result'})`;
            (refused ? outcome.failed : outcome.published).push(crossing);
          });
        } catch (error) {
          // The whole call failed: none of its entries is known to be published. Later calls still run.
          outcome.reason ??= `PutEvents failed (${error instanceof Error ? error.name : 'unknown error'})`;
          outcome.failed.push(...batch);
        }
      }
      return outcome;
    },
  };
}
