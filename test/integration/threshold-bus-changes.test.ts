/**
 * Threshold events across changes of the event bus setting (emptied, then set again), end to end: the snapshot
 * function on the KooDrive simulator, the local Secrets Manager, dynalite and a local EventBridge
 * endpoint, each reached by the real SDK clients.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSnapshotHandler, type SnapshotHandlerDeps } from '../../handlers/snapshot.ts';
import { createEventPublisher } from '../../lib/events.ts';
import { createLogger } from '../../lib/logger.ts';
import { createMetrics } from '../../lib/metrics.ts';
import { lazyRuntime } from '../../lib/runtime.ts';
import { lazySnapshotStore } from '../../lib/snapshots/store.ts';
import type { ThresholdCrossing } from '../../lib/thresholds.ts';
import { type LocalEventBridge, startLocalEventBridge } from '../../local/eventbridge.ts';
import { type KooDriveSimulator, startKooDriveSimulator } from '../../local/koodrive-simulator.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';
import { lambdaContext, scheduledEvent } from '../support/lambda.ts';
import { type Dynalite, startDynalite } from './snapshots-support.ts';

const APP = { appId: 'thr-app', appSecret: 'thr-secret-value-31337', userId: '9' };
let koodrive: KooDriveSimulator;
let secrets: LocalSecretsManager;
let dynamo: Dynalite;
let bus: LocalEventBridge;
let eventBridge: EventBridgeClient;
const savedEnv = { ...process.env };
let table = 0;

function allocated(department: number) {
  return [
    { type: 0, allocateCapacity: String(department), totalCapacity: '100' },
    { type: 1, allocateCapacity: '10', totalCapacity: '100' },
  ];
}

/** A fresh container of the snapshot function with the local EventBridge as its bus. */
function coldHandler(
  overrides: Partial<Pick<SnapshotHandlerDeps, 'getStore' | 'now' | 'getPublisher'>> = {},
  /** POWERTOOLS_LOG_LEVEL of this handler's logger (the suite runs SILENT); read when the logger is made. */
  logLevel?: string,
) {
  const saved = process.env.POWERTOOLS_LOG_LEVEL;
  if (logLevel !== undefined) process.env.POWERTOOLS_LOG_LEVEL = logLevel;
  const logger = createLogger('threshold-test');
  if (saved === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
  else process.env.POWERTOOLS_LOG_LEVEL = saved;
  return createSnapshotHandler({
    logger,
    metrics: createMetrics(),
    getRuntime: lazyRuntime({ logger }),
    getStore: lazySnapshotStore(),
    getPublisher: (config) => createEventPublisher({ busName: config.eventBusName, client: eventBridge }),
    ...overrides,
  });
}

beforeAll(async () => {
  [koodrive, secrets, dynamo, bus] = await Promise.all([
    startKooDriveSimulator({ apps: [APP] }),
    startLocalSecretsManager({ secrets: { 'koodrive/thr': JSON.stringify(APP) } }),
    startDynalite(),
    startLocalEventBridge(),
  ]);
  eventBridge = new EventBridgeClient({ endpoint: bus.url, maxAttempts: 1 });
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
    KOODRIVE_TENANTS: 'thr=koodrive/thr',
    KOODRIVE_BASE_URL: koodrive.url,
    EVENT_BUS_NAME: 'ops-bus',
    ALLOCATION_THRESHOLDS: '0.8,0.9,1.0',
    POWERTOOLS_METRICS_NAMESPACE: 'KooDriveTest',
  });
});

afterAll(async () => {
  process.env = savedEnv;
  eventBridge?.destroy();
  await Promise.all([koodrive?.close(), secrets?.close(), dynamo?.close(), bus?.close()]);
});

beforeEach(async () => {
  table += 1;
  process.env.SNAPSHOT_TABLE = `threshold-audit-${table}`;
  await dynamo.createSnapshotTable(`threshold-audit-${table}`);
  bus.reset();
});

const details = () => bus.events.map((event) => event.detail as ThresholdCrossing);

describe('Allocation Threshold Crossed across configuration changes', () => {
  it('compares with the previous snapshot after a time without an event bus, not with the head before it', async () => {
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T04:00:00Z'), lambdaContext());
    // publishEventBus emptied for a while (the production handler then has no publisher): snapshots
    // are stored all the same.
    const noBus = coldHandler({ getPublisher: () => undefined });
    koodrive.setData(APP.appId, allocated(95));
    await noBus(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(0);
    // The bus is back: 04:30 is compared with 04:15 (95 %), its previous snapshot: down through 0.9.
    koodrive.setData(APP.appId, allocated(85));
    await coldHandler()(scheduledEvent('2026-11-28T04:30:00Z'), lambdaContext());
    expect(details().map((d) => `${d.spaceType}:${d.threshold}:${d.direction}:${d.previousRatio}`)).toEqual([
      'department:0.9:down:0.95',
    ]);
  });
  it('moves the head on redelivery when a run without an event bus stopped before moving it', async () => {
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T05:00:00Z'), lambdaContext());
    const stores = lazySnapshotStore();
    let failHeadOnce = true;
    const stopping = coldHandler({
      getPublisher: () => undefined,
      getStore: (config) => {
        const store = stores(config);
        return {
          ...store,
          advanceThresholdHead: async (...args) => {
            if (!failHeadOnce) return store.advanceThresholdHead(...args);
            failHeadOnce = false;
            throw new Error('the invocation ended here');
          },
        };
      },
    });
    koodrive.setData(APP.appId, allocated(95));
    await expect(stopping(scheduledEvent('2026-11-28T05:15:00Z'), lambdaContext())).rejects.toThrow(
      /failed for 1 of 1/,
    );
    await coldHandler({ getPublisher: () => undefined })(
      scheduledEvent('2026-11-28T05:15:00Z'),
      lambdaContext(),
    );
    koodrive.setData(APP.appId, allocated(85));
    await coldHandler()(scheduledEvent('2026-11-28T05:30:00Z'), lambdaContext());
    expect(details().map((d) => `${d.spaceType}:${d.threshold}:${d.direction}:${d.previousRatio}`)).toEqual([
      'department:0.9:down:0.95',
    ]);
  });
  it('publishes the refused events of a snapshot taken before the bus was emptied, on its redelivery once it is back', async () => {
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T06:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    bus.failNext(1);
    await expect(coldHandler()(scheduledEvent('2026-11-28T06:15:00Z'), lambdaContext())).rejects.toThrow(
      /failed for 1 of 1/,
    );
    // The bus emptied for a while: 06:30 is stored without events.
    await coldHandler({ getPublisher: () => undefined })(
      scheduledEvent('2026-11-28T06:30:00Z'),
      lambdaContext(),
    );
    expect(bus.events).toHaveLength(0);
    // The bus is back; Lambda's retry of 06:15 comes (after its lease): its crossings are still owed.
    const later = coldHandler({ now: () => Date.now() + 61_000 });
    await later(scheduledEvent('2026-11-28T06:15:00Z'), lambdaContext());
    expect(details().map((d) => `${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      '0.8:up:2026-11-28T06:15:00.000Z',
      '0.9:up:2026-11-28T06:15:00.000Z',
    ]);
  });
});
