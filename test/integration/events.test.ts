import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
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
    const outcome = await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings([
      crossing(0.8),
      crossing(0.9),
    ]);
    expect(outcome).toEqual({ published: [crossing(0.8), crossing(0.9)], failed: [] });
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
    const outcome = await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings(many);
    expect(outcome.failed).toEqual([]);
    expect(bus.events.map((e) => (e.detail as ThresholdCrossing).threshold)).toEqual(
      many.map((c) => c.threshold),
    );
  });

  it('returns the refused entries instead of rejecting, so the caller keeps exactly those pending', async () => {
    bus.refuseEntriesNext();
    const outcome = await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings([
      crossing(0.8),
    ]);
    expect(outcome).toEqual({
      published: [],
      failed: [crossing(0.8)],
      reason: 'EventBridge refused an entry (InternalFailure)',
    });
  });

  it("keeps going after a failed call and names only that call's entries as failed", async () => {
    const many = Array.from({ length: 25 }, (_, i) => crossing(i / 100));
    bus.failNext(1, 1); // the second of three calls fails whole
    const outcome = await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings(many);
    expect(outcome.failed).toEqual(many.slice(10, 20));
    expect(outcome.published).toEqual([...many.slice(0, 10), ...many.slice(20)]);
    expect(outcome.reason).toMatch(/^PutEvents failed \(/);
    expect(bus.events).toHaveLength(15);
  });

  it('makes no further call once told not to (a lease running short), and names what it did not try', async () => {
    const many = Array.from({ length: 25 }, (_, i) => crossing(i / 100));
    let asked = 0;
    const outcome = await createEventPublisher({ busName: 'ops', client }).publishThresholdCrossings(many, {
      mayCall: () => {
        asked += 1;
        return asked === 1;
      },
    });
    expect(asked).toBe(2);
    expect(outcome.published).toEqual(many.slice(0, 10));
    expect(outcome.failed).toEqual(many.slice(10));
    expect(outcome.reason).toMatch(/publishing lease could run out/);
    expect(bus.events).toHaveLength(10);
  });

  it('tries a PutEvents once with its own client: a retry of a call whose answer was lost would publish twice', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
    process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = bus.url;
    try {
      bus.failNext(1);
      // No client given: the one the functions build (lib/events.ts).
      const publisher = createEventPublisher({ busName: 'ops' });
      const outcome = await publisher.publishThresholdCrossings([crossing(0.8)]);
      expect(outcome.failed).toEqual([crossing(0.8)]);
      expect(outcome.reason).toBe('PutEvents failed (InternalException)');
      // With the SDK's default three tries, the second would have published it within this call.
      expect(bus.events).toHaveLength(0);
      expect((await publisher.publishThresholdCrossings([crossing(0.8)])).published).toEqual([crossing(0.8)]);
      expect(bus.events).toHaveLength(1);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
      else process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = saved;
    }
  });

  it('publishes nothing when no bus is configured', async () => {
    expect(
      await createEventPublisher({ busName: '', client }).publishThresholdCrossings([crossing(0.8)]),
    ).toEqual({ published: [], failed: [] });
    expect(bus.events).toHaveLength(0);
  });
});

describe('event publisher, on answers the local bus does not give (aws-sdk-client-mock)', () => {
  /** The real client with PutEvents answering `output`, whatever was sent. */
  const answering = (output: Omit<PutEventsCommandOutput, '$metadata'>) => {
    const mocked = new EventBridgeClient({ region: 'us-east-1' });
    mockClient(mocked).on(PutEventsCommand).resolves(output);
    return createEventPublisher({ busName: 'ops', client: mocked });
  };

  // A crossing EventBridge gave no result for is not known to be published: kept pending, its alert is
  // published again; called published, it would be cleared from the snapshot and the alert lost.
  it.each([
    ['an empty Entries', { FailedEntryCount: 0, Entries: [] }],
    ['no Entries at all', { FailedEntryCount: 0 }],
  ])('reports every crossing failed when the answer has %s', async (_name, output) => {
    const outcome = await answering(output).publishThresholdCrossings([crossing(0.8), crossing(0.9)]);
    expect(outcome).toEqual({
      published: [],
      failed: [crossing(0.8), crossing(0.9)],
      reason: 'EventBridge refused an entry (no result)',
    });
  });

  it('reports exactly the crossings past the end of a short Entries failed', async () => {
    const many = Array.from({ length: 4 }, (_, i) => crossing(i / 10));
    const outcome = await answering({
      FailedEntryCount: 0,
      Entries: [{ EventId: 'e-0' }, { EventId: 'e-1' }],
    }).publishThresholdCrossings(many);
    expect(outcome).toEqual({
      published: many.slice(0, 2),
      failed: many.slice(2),
      reason: 'EventBridge refused an entry (no result)',
    });
  });
});
