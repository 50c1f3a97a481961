import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEventPublisher, EVENT_SOURCE, THRESHOLD_CROSSED } from '../../lib/events.ts';
import type { ThresholdCrossing } from '../../lib/thresholds.ts';
import { type LocalEventBridge, startLocalEventBridge } from '../../local/eventbridge.ts';

let bus: LocalEventBridge;
let client: EventBridgeClient;

const crossing = (threshold: number): ThresholdCrossing => ({
  tenantId: 'acme',
  spaceType: 'totals',
  threshold,
  direction: 'up',
  previousRatio: 0.5,
  ratio: 0.95,
  observedAt: '2026-11-28T04:15:00.000Z',
  crossingId: `id-${threshold}`,
});

beforeAll(async () => {
  bus = await startLocalEventBridge();
  client = new EventBridgeClient({ endpoint: bus.url, maxAttempts: 1 });
});
afterAll(async () => {
  client.destroy();
  await bus.close();
});
beforeEach(() => bus.reset());

describe('event publisher, through the real EventBridge client', () => {
  it('publishes each crossing on the configured bus with the contract detail', async () => {
    await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings([
      crossing(0.8),
      crossing(0.9),
    ]);
    expect(bus.events).toHaveLength(2);
    expect(bus.events[0]).toMatchObject({
      busName: 'ops',
      source: EVENT_SOURCE,
      detailType: THRESHOLD_CROSSED,
      detail: crossing(0.8),
      time: '2026-11-28T04:15:00.000Z',
    });
  });

  it('splits more than ten events into several calls', async () => {
    const many = Array.from({ length: 23 }, (_, i) => crossing(i / 100));
    await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings(many);
    expect(bus.events.map((e) => (e.detail as ThresholdCrossing).threshold)).toEqual(
      many.map((c) => c.threshold),
    );
  });

  it('rejects when EventBridge refuses entries, so the caller can keep them pending', async () => {
    bus.refuseEntriesNext();
    await expect(
      createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings([crossing(0.8)]),
    ).rejects.toThrow("EventBridge refused 1 of 1 threshold events on bus 'ops'");
  });

  it('publishes nothing when no bus is configured', async () => {
    await createEventPublisher({ busName: '', client }).publishThresholdCrossings([crossing(0.8)]);
    expect(bus.events).toHaveLength(0);
  });
});
