import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { ThresholdCrossing } from './thresholds.ts';

export const EVENT_SOURCE = 'koodrive.allocation';
export const THRESHOLD_CROSSED = 'Allocation Threshold Crossed';
/** PutEvents takes at most ten entries per call. */
const BATCH_SIZE = 10;

export interface EventPublisher {
  /** Publishes every crossing; rejects when any entry was not accepted, naming how many. */
  publishThresholdCrossings(crossings: readonly ThresholdCrossing[]): Promise<void>;
}

export function createEventBridgeClient(): EventBridgeClient {
  return new EventBridgeClient({ requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 } });
}

/** Publishes the product's events on one bus; an empty bus name publishes nothing. */
export function createEventPublisher(options: {
  busName: string;
  client?: Pick<EventBridgeClient, 'send'>;
}): EventPublisher {
  let client = options.client;
  return {
    async publishThresholdCrossings(crossings) {
      if (options.busName === '' || crossings.length === 0) return;
      client ??= createEventBridgeClient();
      const entries: PutEventsRequestEntry[] = crossings.map((crossing) => ({
        EventBusName: options.busName,
        Source: EVENT_SOURCE,
        DetailType: THRESHOLD_CROSSED,
        Detail: JSON.stringify(crossing),
        Time: new Date(crossing.observedAt),
      }));
      let failed = 0;
      for (let start = 0; start < entries.length; start += BATCH_SIZE) {
        const output = await client.send(
          new PutEventsCommand({ Entries: entries.slice(start, start + BATCH_SIZE) }),
        );
        failed += output.FailedEntryCount ?? 0;
      }
      if (failed > 0) {
        throw new Error(
          `EventBridge refused ${failed} of ${entries.length} threshold events on bus '${options.busName}'.`,
        );
      }
    },
  };
}
