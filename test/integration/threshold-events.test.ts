/**
 * Threshold events end to end: the snapshot function on the KooDrive simulator, the local Secrets
 * Manager, dynalite and a local EventBridge endpoint, each reached by the real SDK clients.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSnapshotHandler, type SnapshotHandlerDeps } from '../../handlers/snapshot.ts';
import { loadConfig } from '../../lib/config.ts';
import { createEventPublisher, THRESHOLD_CROSSED } from '../../lib/events.ts';
import { createLogger } from '../../lib/logger.ts';
import { createMetrics } from '../../lib/metrics.ts';
import { lazyRuntime } from '../../lib/runtime.ts';
import { PUBLISH_RECORD_BUDGET_MS } from '../../lib/snapshots/job.ts';
import { lazySnapshotStore } from '../../lib/snapshots/store.ts';
import type { ThresholdCrossing } from '../../lib/thresholds.ts';
import { type LocalEventBridge, startLocalEventBridge } from '../../local/eventbridge.ts';
import { type KooDriveSimulator, startKooDriveSimulator } from '../../local/koodrive-simulator.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';
import sqsFixture from '../fixtures/events/sqs-batch.json' with { type: 'json' };
import { captureOutput, lambdaContext, scheduledEvent } from '../support/lambda.ts';
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

/** An SQS batch asking for snapshots of tenant thr, one message per SentTimestamp. */
function sqsAt(...times: string[]) {
  const [template] = structuredClone(sqsFixture).Records;
  if (template === undefined) throw new Error('the SQS fixture has no record');
  return {
    Records: times.map((time, index) => ({
      ...structuredClone(template),
      messageId: `msg-${index}`,
      body: JSON.stringify({ tenantId: 'thr' }),
      attributes: { ...template.attributes, SentTimestamp: String(Date.parse(time)) },
    })),
  };
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
  process.env.SNAPSHOT_TABLE = `thresholds-${table}`;
  await dynamo.createSnapshotTable(`thresholds-${table}`);
  bus.reset();
});

const details = () => bus.events.map((event) => event.detail as ThresholdCrossing);

/** A store whose first move of a threshold head fails, as if the invocation ended there; later ones go through. */
function storeWhoseFirstHeadMoveFails(): SnapshotHandlerDeps['getStore'] {
  const stores = lazySnapshotStore();
  let failHeadOnce = true;
  return (config) => {
    const store = stores(config);
    return {
      ...store,
      advanceThresholdHead: async (...args) => {
        if (!failHeadOnce) return store.advanceThresholdHead(...args);
        failHeadOnce = false;
        throw new Error('the invocation ended here');
      },
    };
  };
}

/**
 * Runs one invocation with its output captured: what it threw (or undefined), its JSON lines (log lines
 * and EMF documents alike) and, of those, the EMF documents.
 */
async function captured(run: () => Promise<unknown>) {
  const capture = captureOutput();
  let failure: unknown;
  try {
    await run();
  } catch (error) {
    failure = error;
  } finally {
    capture.stop();
  }
  const lines = capture.lines
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { failure, lines, documents: lines.filter((line) => '_aws' in line) };
}

describe('Allocation Threshold Crossed', () => {
  it('publishes one event per crossing, up and down, and none for a redelivered event', async () => {
    const handler = coldHandler();
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T04:00:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(0);

    koodrive.setData(APP.appId, allocated(85));
    await handler(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext());
    expect(bus.events.map((e) => [e.busName, e.detailType])).toEqual([['ops-bus', THRESHOLD_CROSSED]]);
    expect(details()[0]).toMatchObject({
      tenantId: 'thr',
      spaceType: 'department',
      threshold: 0.8,
      direction: 'up',
      previousRatio: 0.5,
      ratio: 0.85,
      observedAt: '2026-11-28T04:15:00.000Z',
    });

    // The same event delivered again stores nothing and publishes nothing.
    await handler(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext());
    await coldHandler()(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(1);

    koodrive.setData(APP.appId, allocated(70));
    await handler(scheduledEvent('2026-11-28T04:30:00Z'), lambdaContext());
    expect(
      details()
        .slice(1)
        .map((d) => `${d.spaceType}:${d.threshold}:${d.direction}`),
    ).toEqual(['department:0.8:down']);
  });

  it('keeps the events of a stored snapshot pending when publishing fails, and publishes them once on redelivery', async () => {
    const handler = coldHandler();
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T05:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    bus.failNext(1);
    await expect(handler(scheduledEvent('2026-11-28T05:15:00Z'), lambdaContext())).rejects.toThrow(
      /failed for 1 of 1/,
    );
    expect(bus.events).toHaveLength(0);

    // Lambda retries the event: the snapshot is already stored, its owed events go out now, once.
    koodrive.reset();
    await handler(scheduledEvent('2026-11-28T05:15:00Z'), lambdaContext());
    expect(koodrive.requests).toHaveLength(0);
    expect(details().map((d) => `${d.spaceType}:${d.threshold}`)).toEqual([
      'department:0.8',
      'department:0.9',
    ]);
    await handler(scheduledEvent('2026-11-28T05:15:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(2);
  });

  it('publishes with the next snapshot the events whose own deliveries all failed (retries spent), once', async () => {
    const handler = coldHandler();
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T04:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(85));
    // EventBridge down for the event and both of Lambda's retries: the event goes to the failure queue.
    bus.failNext(3);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(handler(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext())).rejects.toThrow(
        /failed for 1 of 1/,
      );
    }
    expect(bus.events).toHaveLength(0);
    const store = lazySnapshotStore()(loadConfig(process.env));
    expect((await store.thresholdHead('thr'))?.owed).toEqual(['2026-11-28T04:15:00.000Z']);

    // The next scheduled run: its own snapshot crosses nothing; the owed crossing goes out now.
    koodrive.setData(APP.appId, allocated(86));
    await handler(scheduledEvent('2026-11-28T04:30:00Z'), lambdaContext());
    expect(details().map((d) => `${d.spaceType}:${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      'department:0.8:up:2026-11-28T04:15:00.000Z',
    ]);
    expect(await store.pendingEvents('thr', '2026-11-28T04:15:00.000Z')).toEqual([]);
    expect((await store.thresholdHead('thr'))?.owed).toEqual([]);
    // Later runs, and the failed event redriven after all, publish nothing more.
    await handler(scheduledEvent('2026-11-28T04:45:00Z'), lambdaContext());
    await handler(scheduledEvent('2026-11-28T04:15:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(1);
  });

  it('does not fail a later snapshot for events an earlier one still owes; it says so, and the next run publishes them', async () => {
    const handler = coldHandler({}, 'WARN');
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T05:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(85));
    bus.failNext(3);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(handler(scheduledEvent('2026-11-28T05:15:00Z'), lambdaContext())).rejects.toThrow(
        /failed for 1 of 1/,
      );
    }
    // EventBridge still down for the next run: its own snapshot is stored and the run succeeds.
    koodrive.setData(APP.appId, allocated(86));
    bus.failNext(1);
    const run = await captured(() => handler(scheduledEvent('2026-11-28T05:30:00Z'), lambdaContext()));
    expect(run.failure).toBeUndefined();
    expect(run.lines.filter((line) => line.message === 'threshold events still owed')).toEqual([
      expect.objectContaining({
        level: 'WARN',
        tenantId: 'thr',
        owedBy: '2026-11-28T05:15:00.000Z',
        errorCode: 'EventsNotPublishedError',
      }),
    ]);
    expect(bus.events).toHaveLength(0);
    await handler(scheduledEvent('2026-11-28T05:45:00Z'), lambdaContext());
    expect(details().map((d) => `${d.threshold}:${d.observedAt}`)).toEqual(['0.8:2026-11-28T05:15:00.000Z']);
  });

  it('leaves owed events to the invocation holding them, and a redelivery after its lease publishes them', async () => {
    let clock = Date.parse('2026-11-28T06:40:00Z');
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler({ now: () => clock })(sqsAt('2026-11-28T06:00:00Z'), lambdaContext());
    // The 06:10 request's invocation dies while publishing: its events stay held under its lease.
    koodrive.setData(APP.appId, allocated(95));
    const logger = createLogger('threshold-test');
    const dying = createSnapshotHandler({
      logger,
      now: () => clock,
      getRuntime: lazyRuntime({ logger }),
      getStore: lazySnapshotStore(),
      getPublisher: () => ({
        publishThresholdCrossings: () => Promise.reject(new Error('the invocation ended here')),
      }),
    });
    expect(await dying(sqsAt('2026-11-28T06:10:00Z'), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: 'msg-0' }],
    });
    // Within that lease, the next snapshot leaves them alone (the holder may still be publishing).
    const handler = coldHandler({ now: () => clock });
    koodrive.setData(APP.appId, allocated(96));
    expect(await handler(sqsAt('2026-11-28T06:20:00Z'), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(bus.events).toHaveLength(0);
    // The lease has run out: a redelivery of the 06:20 request (its own snapshot stored) publishes them.
    clock += 61_000;
    expect(await handler(sqsAt('2026-11-28T06:20:00Z'), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(details().map((d) => `${d.threshold}:${d.observedAt}`)).toEqual([
      '0.8:2026-11-28T06:10:00.000Z',
      '0.9:2026-11-28T06:10:00.000Z',
    ]);
    // The 06:10 request's own redelivery finds nothing left to publish.
    expect(await handler(sqsAt('2026-11-28T06:10:00Z'), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(bus.events).toHaveLength(2);
  });

  it('stops publishing when its lease ran out while it was held up; the delivery that took over publishes once', async () => {
    let clock = Date.parse('2026-11-28T10:20:00Z');
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler({ now: () => clock })(scheduledEvent('2026-11-28T10:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(85));
    // Delivery A stores the snapshot and its events, then is held up (a slow DynamoDB) past its lease.
    const stores = lazySnapshotStore();
    let holdA: (() => void) | undefined;
    const aHeld = new Promise<void>((reached) => {
      holdA = reached;
    });
    let releaseA = () => {};
    const aReleased = new Promise<void>((release) => {
      releaseA = release;
    });
    const a = coldHandler({
      now: () => clock,
      getStore: (config) => {
        const store = stores(config);
        return {
          ...store,
          advanceThresholdHead: async (...args) => {
            holdA?.();
            holdA = undefined;
            await aReleased;
            return store.advanceThresholdHead(...args);
          },
        };
      },
    });
    const event = scheduledEvent('2026-11-28T10:15:00Z');
    const aRun = a(event, lambdaContext()).then(
      () => 'ok',
      (error: unknown) => String(error),
    );
    await aHeld;
    // A minute later Lambda delivers the same event again (B): the lease has run out, B takes over.
    clock += 61_000;
    await coldHandler({ now: () => clock })(event, lambdaContext());
    expect(details().map((d) => `${d.threshold}:${d.observedAt}`)).toEqual(['0.8:2026-11-28T10:15:00.000Z']);
    releaseA();
    expect(await aRun).toMatch(/EventsInProgressError/);
    expect(bus.events).toHaveLength(1);
  });

  it('starts no PutEvents without the time to record it before the invocation ends; the retry publishes once', async () => {
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T11:00:00Z'), lambdaContext('snapshot'));
    koodrive.setData(APP.appId, allocated(85));
    // The run reaches this tenant's events late: less than PutEvents and the write that records it are left.
    let remaining = 300_000;
    const stores = lazySnapshotStore();
    const late = coldHandler({
      getStore: (config) => {
        const store = stores(config);
        return {
          ...store,
          put: async (...args) => {
            const stored = await store.put(...args);
            remaining = PUBLISH_RECORD_BUDGET_MS - 1;
            return stored;
          },
        };
      },
    });
    const event = scheduledEvent('2026-11-28T11:15:00Z');
    const { failure } = await captured(() =>
      late(event, { ...lambdaContext('snapshot'), getRemainingTimeInMillis: () => remaining }),
    );
    expect(String(failure)).toMatch(/failed for 1 of 1/);
    expect(bus.events).toHaveLength(0);

    // Lambda's retry has the time: the stored snapshot's pending event goes out, once.
    koodrive.reset();
    await coldHandler()(event, lambdaContext('snapshot'));
    await coldHandler()(event, lambdaContext('snapshot'));
    expect(koodrive.requests).toHaveLength(0);
    expect(details().map((d) => `${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      '0.8:up:2026-11-28T11:15:00.000Z',
    ]);
  });

  it('publishes a crossing once when two deliveries compare a stored snapshot again at the same time', async () => {
    const stores = lazySnapshotStore();
    // H1 12:00 at 85 %; S 12:30 at 86 % (no crossing against H1) is stored, then its run dies before
    // moving the head; H2 12:15 at 70 %, delivered late, moves the head H1 → H2 (0.8 down).
    koodrive.setData(APP.appId, allocated(85));
    await coldHandler()(scheduledEvent('2026-11-28T12:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(86));
    const dying = coldHandler({
      getStore: (config) => ({
        ...stores(config),
        advanceThresholdHead: () => Promise.reject(new Error('the invocation ended here')),
      }),
    });
    await expect(dying(scheduledEvent('2026-11-28T12:30:00Z'), lambdaContext())).rejects.toThrow(
      /failed for 1/,
    );
    koodrive.setData(APP.appId, allocated(70));
    await coldHandler()(sqsAt('2026-11-28T12:15:00Z'), lambdaContext());
    expect(details().map((d) => `${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      '0.8:down:2026-11-28T12:15:00.000Z',
    ]);
    // Two redeliveries of S: each reads S and the head, and compares S again with H2 (0.8 up). C is held
    // just before it writes that comparison, until B has written, published and settled it.
    let cAtReplace = () => {};
    const cReady = new Promise<void>((reached) => {
      cAtReplace = reached;
    });
    let releaseC = () => {};
    const cReleased = new Promise<void>((release) => {
      releaseC = release;
    });
    const c = coldHandler({
      getStore: (config) => {
        const store = stores(config);
        return {
          ...store,
          replacePendingEvents: async (...args) => {
            cAtReplace();
            await cReleased;
            return store.replacePendingEvents(...args);
          },
        };
      },
    });
    const cRun = c(scheduledEvent('2026-11-28T12:30:00Z'), lambdaContext()).then(
      () => 'ok',
      (error: unknown) => String(error),
    );
    await cReady;
    await coldHandler()(scheduledEvent('2026-11-28T12:30:00Z'), lambdaContext());
    releaseC();
    expect(await cRun).toMatch(/EventsInProgressError/);
    expect(details().map((d) => `${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      '0.8:down:2026-11-28T12:15:00.000Z',
      '0.8:up:2026-11-28T12:30:00.000Z',
    ]);
    // C's retry finds nothing left to do.
    await coldHandler()(scheduledEvent('2026-11-28T12:30:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(2);
  });

  it('claims events a holder gave back while the claim was refused, instead of reporting none pending', async () => {
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(sqsAt('2026-11-28T11:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(85));
    const batch = sqsAt('2026-11-28T11:10:00Z');
    // A: EventBridge is slow, then refuses; A keeps the events pending and gives its lease up.
    let aPublishing = () => {};
    const aAtPublish = new Promise<void>((reached) => {
      aPublishing = reached;
    });
    let refuse = () => {};
    const refused = new Promise<void>((release) => {
      refuse = release;
    });
    const logger = createLogger('threshold-test');
    const a = createSnapshotHandler({
      logger,
      getRuntime: lazyRuntime({ logger }),
      getStore: lazySnapshotStore(),
      getPublisher: () => ({
        async publishThresholdCrossings(crossings) {
          aPublishing();
          await refused;
          return { published: [], failed: [...crossings], reason: 'EventBridge refused an entry (test)' };
        },
      }),
    });
    // B: the same message again. Its claim is refused while A holds the lease, and the read that
    // follows comes only after A gave the events back.
    let bAtRead = () => {};
    const bRefused = new Promise<void>((reached) => {
      bAtRead = reached;
    });
    let letBRead = () => {};
    const bMayRead = new Promise<void>((release) => {
      letBRead = release;
    });
    const delayedClient: Pick<DynamoDBClient, 'send'> = {
      send: (async (command: { input?: { UpdateExpression?: string } }, options?: unknown) => {
        try {
          return await dynamo.client.send(command as never, options as never);
        } catch (error) {
          if (command.input?.UpdateExpression === 'SET #l = :until') {
            bAtRead();
            await bMayRead;
          }
          throw error;
        }
      }) as DynamoDBClient['send'],
    };
    const b = coldHandler({ getStore: lazySnapshotStore({ client: delayedClient }) });
    const aRun = a(batch, lambdaContext());
    await aAtPublish;
    const bRun = b(batch, lambdaContext());
    await bRefused;
    refuse();
    expect(await aRun).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-0' }] });
    letBRead();
    expect(await bRun).toEqual({ batchItemFailures: [] });
    expect(details().map((d) => `${d.threshold}:${d.observedAt}`)).toEqual(['0.8:2026-11-28T11:10:00.000Z']);
    const store = lazySnapshotStore()(loadConfig(process.env));
    expect(await store.pendingEvents('thr', '2026-11-28T11:10:00.000Z')).toEqual([]);
  });

  it('publishes a crossing once when one batch holds several requests of the tenant, in any order', async () => {
    const handler = coldHandler();
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T08:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    // Listed newest first: the older one is still taken first and is the one that crossed.
    const answer = await handler(sqsAt('2026-11-28T08:11:00Z', '2026-11-28T08:10:00Z'), lambdaContext());
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(details().map((d) => `${d.spaceType}:${d.threshold}:${d.observedAt}:${d.previousRatio}`)).toEqual([
      'department:0.8:2026-11-28T08:10:00.000Z:0.5',
      'department:0.9:2026-11-28T08:10:00.000Z:0.5',
    ]);
  });

  it('publishes nothing for a snapshot stored behind a newer one (a late retry or a back-dated event)', async () => {
    const handler = coldHandler({}, 'INFO');
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T06:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    await handler(scheduledEvent('2026-11-28T06:30:00Z'), lambdaContext());
    expect(details()).toHaveLength(2);
    // The 06:15 run failed at the time and is redriven now: stored for history, but its change from
    // 06:00 was already announced by 06:30.
    const { lines } = await captured(() => handler(scheduledEvent('2026-11-28T06:15:00Z'), lambdaContext()));
    expect(details()).toHaveLength(2);
    // The log says why there was no event: "why no alert?" at 3 a.m.
    const stored = lines.filter((line) => line.message === 'snapshot stored');
    expect(stored).toEqual([
      expect.objectContaining({
        observedAt: '2026-11-28T06:15:00.000Z',
        behindThresholdHead: '2026-11-28T06:30:00.000Z',
      }),
    ]);
    // The next snapshot compares with the newest (06:30), not with the late one.
    koodrive.setData(APP.appId, allocated(85));
    await handler(scheduledEvent('2026-11-28T06:45:00Z'), lambdaContext());
    expect(
      details()
        .slice(2)
        .map((d) => `${d.threshold}:${d.direction}:${d.previousRatio}`),
    ).toEqual(['0.9:down:0.95']);
  });

  it('announces a crossing once when two invocations store different times of the tenant at once', async () => {
    await coldHandler()(scheduledEvent('2026-11-28T10:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T10:15:00Z'), lambdaContext());
    bus.reset();
    koodrive.setData(APP.appId, allocated(95));
    // KooDrive answers slowly, so both invocations have read the tenant's state before either stores.
    koodrive.setLatencyMs(150);
    try {
      const answers = await Promise.all([
        coldHandler()(sqsAt('2026-11-28T10:20:00Z'), lambdaContext()),
        coldHandler()(scheduledEvent('2026-11-28T10:30:00Z'), lambdaContext()),
      ]);
      expect(answers[0]).toEqual({ batchItemFailures: [] });
    } finally {
      koodrive.setLatencyMs(0);
    }
    expect(details().map((d) => `${d.spaceType}:${d.threshold}:${d.direction}:${d.previousRatio}`)).toEqual([
      'department:0.8:up:0.5',
      'department:0.9:up:0.5',
    ]);
    // The next snapshot compares with the state both announcements left: nothing new at 95 %.
    await coldHandler()(scheduledEvent('2026-11-28T10:45:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(2);
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T11:00:00Z'), lambdaContext());
    expect(
      details()
        .slice(2)
        .map((d) => `${d.threshold}:${d.direction}:${d.previousRatio}`),
    ).toEqual(['0.8:down:0.95', '0.9:down:0.95']);
  });

  it('finishes on redelivery when the function died between storing the snapshot and moving the state', async () => {
    const dying = coldHandler({ getStore: storeWhoseFirstHeadMoveFails() });
    koodrive.setData(APP.appId, allocated(50));
    await coldHandler()(scheduledEvent('2026-11-28T12:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    await expect(dying(scheduledEvent('2026-11-28T12:15:00Z'), lambdaContext())).rejects.toThrow(
      /failed for 1 of 1/,
    );
    expect(bus.events).toHaveLength(0);
    // Lambda's retry, once the lease ran out (a lease is a minute; here the clock is moved instead).
    const later = coldHandler({ now: () => Date.now() + 61_000 });
    await later(scheduledEvent('2026-11-28T12:15:00Z'), lambdaContext());
    expect(details().map((d) => `${d.threshold}:${d.direction}:${d.observedAt}`)).toEqual([
      '0.8:up:2026-11-28T12:15:00.000Z',
      '0.9:up:2026-11-28T12:15:00.000Z',
    ]);
    await coldHandler()(scheduledEvent('2026-11-28T12:30:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(2);
  });

  it('keeps pending only the events EventBridge did not accept, and redelivery publishes just those', async () => {
    process.env.ALLOCATION_THRESHOLDS = Array.from({ length: 12 }, (_, i) =>
      (0.6 + i * 0.02).toFixed(2),
    ).join(',');
    try {
      const handler = coldHandler();
      koodrive.setData(APP.appId, allocated(50));
      await handler(scheduledEvent('2026-11-28T07:00:00Z'), lambdaContext());
      koodrive.setData(APP.appId, allocated(95));
      bus.failNext(1, 1); // 12 crossings: the first call of ten goes through, the second fails
      await expect(handler(scheduledEvent('2026-11-28T07:15:00Z'), lambdaContext())).rejects.toThrow(
        /failed for 1 of 1 tenant\(s\): thr \(EventsNotPublishedError\)/,
      );
      expect(bus.events).toHaveLength(10);
      await coldHandler()(scheduledEvent('2026-11-28T07:15:00Z'), lambdaContext());
      await coldHandler()(scheduledEvent('2026-11-28T07:15:00Z'), lambdaContext());
      const ids = details().map((d) => d.crossingId);
      expect(ids).toHaveLength(12);
      expect(new Set(ids).size).toBe(12);
    } finally {
      process.env.ALLOCATION_THRESHOLDS = '0.8,0.9,1.0';
    }
  });

  it('lets one of two simultaneous deliveries publish; the other fails, and its retry adds nothing', async () => {
    const first = coldHandler();
    koodrive.setData(APP.appId, allocated(50));
    await first(scheduledEvent('2026-11-28T09:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    // The writer stores the snapshot with its events and dies before publishing (EventBridge down).
    bus.failNext(1);
    await expect(first(scheduledEvent('2026-11-28T09:15:00Z'), lambdaContext())).rejects.toThrow();
    expect(bus.events).toHaveLength(0);
    // Two redeliveries at once: exactly one takes the events.
    const outcomes = await Promise.allSettled([
      coldHandler()(scheduledEvent('2026-11-28T09:15:00Z'), lambdaContext()),
      coldHandler()(scheduledEvent('2026-11-28T09:15:00Z'), lambdaContext()),
    ]);
    expect(details().map((d) => d.threshold)).toEqual([0.8, 0.9]);
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    expect(rejected.length).toBeLessThanOrEqual(1);
    for (const o of rejected) expect(String(o.reason)).toMatch(/EventsInProgressError/);
    await coldHandler()(scheduledEvent('2026-11-28T09:15:00Z'), lambdaContext());
    expect(bus.events).toHaveLength(2);
  });

  it('counts and graphs a snapshot stored before EventBridge refused its events, and says it is stored', async () => {
    const handler = coldHandler({}, 'ERROR');
    koodrive.setData(APP.appId, allocated(50));
    await handler(scheduledEvent('2026-11-28T07:00:00Z'), lambdaContext());
    koodrive.setData(APP.appId, allocated(95));
    bus.failNext(1);
    const { failure, lines, documents } = await captured(() =>
      handler(scheduledEvent('2026-11-28T07:15:00Z'), lambdaContext()),
    );
    expect(String(failure)).toMatch(
      /failed for 1 of 1 tenant\(s\): thr \(\w+\)\. 1 stored \(1 of them failed only to publish their threshold events\), 0 already stored/,
    );
    // The snapshot is in the table: the alarms on writes and ratios must see it, outage or not.
    expect(documents.find((d) => 'SnapshotsWritten' in d)).toMatchObject({
      SnapshotsWritten: 1,
      SnapshotFailures: 1,
    });
    expect(documents.find((d) => d.Tenant === 'thr' && d.SpaceType === 'department')).toMatchObject({
      AllocatedGB: 95,
      AllocatedRatio: 0.95,
    });
    const failed = lines.find((line) => line.message === 'snapshot failed');
    expect(failed).toMatchObject({
      tenantId: 'thr',
      snapshotStored: true,
      errorCode: 'EventsNotPublishedError',
      errorName: 'EventsNotPublishedError',
    });
    // An expected state that a redelivery finishes: no stack to read.
    expect(failed).not.toHaveProperty('stack');
    expect(bus.events).toHaveLength(0);
  });

  it('counts and logs the events EventBridge accepted when it refused others, and the redelivery sends only the rest', async () => {
    const real = createEventPublisher({ busName: 'ops-bus', client: eventBridge });
    let refuseAfterFirst = true;
    const handler = (level: string) =>
      coldHandler(
        {
          getPublisher: () => ({
            // EventBridge takes the first entry and refuses the others (FailedEntryCount > 0).
            publishThresholdCrossings: async (crossings, options) => {
              if (!refuseAfterFirst) return real.publishThresholdCrossings(crossings, options);
              const accepted = await real.publishThresholdCrossings(crossings.slice(0, 1), options);
              return { published: accepted.published, failed: crossings.slice(1), reason: 'InternalFailure' };
            },
          }),
        },
        level,
      );
    koodrive.setData(APP.appId, allocated(50));
    await handler('SILENT')(scheduledEvent('2026-11-28T07:30:00Z'), lambdaContext());
    // 50 → 95 % crosses 0.8 and 0.9.
    koodrive.setData(APP.appId, allocated(95));
    const first = await captured(() =>
      handler('INFO')(scheduledEvent('2026-11-28T07:45:00Z'), lambdaContext()),
    );
    expect(String(first.failure)).toMatch(/failed for 1 of 1 tenant\(s\): thr \(EventsNotPublishedError\)/);
    expect(bus.events).toHaveLength(1);
    const published = first.lines.filter((line) => line.message === 'threshold events published');
    expect(published).toHaveLength(1);
    expect(published[0]?.events).toEqual([expect.objectContaining({ threshold: 0.8, direction: 'up' })]);
    expect(first.documents.find((d) => 'ThresholdEventsPublished' in d)).toMatchObject({
      ThresholdEventsPublished: 1,
    });

    // The event delivered again: only the refused crossing goes out.
    refuseAfterFirst = false;
    const again = await captured(() =>
      handler('INFO')(scheduledEvent('2026-11-28T07:45:00Z'), lambdaContext()),
    );
    expect(again.failure).toBeUndefined();
    expect(details().map((d) => d.threshold)).toEqual([0.8, 0.9]);
    expect(again.documents.find((d) => 'ThresholdEventsPublished' in d)).toMatchObject({
      ThresholdEventsPublished: 1,
    });
  });

  it('logs the stack of an unexpected failure that came before the snapshot was stored', async () => {
    const stores = lazySnapshotStore();
    const handler = coldHandler(
      {
        getStore: (config) => ({
          ...stores(config),
          put: async () => {
            throw new Error('the table broke in an unforeseen way');
          },
        }),
      },
      'ERROR',
    );
    koodrive.setData(APP.appId, allocated(50));
    const { failure, lines } = await captured(() =>
      handler(scheduledEvent('2026-11-28T08:00:00Z'), lambdaContext()),
    );
    expect(String(failure)).toMatch(
      /failed for 1 of 1 tenant\(s\): thr \(Error\)\. 0 stored, 0 already stored/,
    );
    const failed = lines.find((line) => line.message === 'snapshot failed');
    expect(failed).toMatchObject({
      tenantId: 'thr',
      errorName: 'Error',
      errorMessage: 'the table broke in an unforeseen way',
    });
    expect(failed).not.toHaveProperty('snapshotStored');
    // Not an AppError and nothing stored: a bug to find, so its stack is on the line.
    expect(failed?.stack).toMatch(/^Error: the table broke in an unforeseen way\n\s+at /);
  });

  it('emits allocation gauges and snapshot counters in Embedded Metric Format', async () => {
    koodrive.setData(APP.appId, allocated(40));
    const { failure, documents } = await captured(() =>
      coldHandler()(scheduledEvent('2026-11-28T06:00:00Z'), lambdaContext()),
    );
    expect(failure).toBeUndefined();
    const gauge = documents.find((d) => d.Tenant === 'thr' && d.SpaceType === 'department');
    expect(gauge).toMatchObject({ AllocatedGB: 40, TotalGB: 100, AllocatedRatio: 0.4 });
    const counters = documents.find((d) => 'SnapshotsWritten' in d);
    expect(counters).toMatchObject({ SnapshotsWritten: 1 });
    expect(documents.some((d) => 'ColdStart' in d)).toBe(true);
    expect(JSON.stringify(documents)).not.toContain(APP.appSecret);
  });

  it('fails a run with a wrong snapshot setting before any KooDrive call or write, for each trigger', async () => {
    koodrive.setData(APP.appId, allocated(60));
    koodrive.reset();
    process.env.ALLOCATION_METRICS = 'bogus';
    try {
      const handler = coldHandler();
      await expect(handler(scheduledEvent('2026-11-28T06:10:00Z'), lambdaContext())).rejects.toThrow(
        /ALLOCATION_METRICS is 'bogus'/,
      );
      // An SQS batch too: the whole batch is refused (a setting fails every message alike).
      await expect(handler(sqsAt('2026-11-28T06:11:00Z'), lambdaContext())).rejects.toThrow(
        /ALLOCATION_METRICS is 'bogus'/,
      );
      expect(koodrive.requests).toHaveLength(0);
    } finally {
      delete process.env.ALLOCATION_METRICS;
    }
    // Nothing was stored: the same event, once the setting is right, stores its snapshot.
    const summary = await coldHandler()(scheduledEvent('2026-11-28T06:10:00Z'), lambdaContext());
    expect(summary).toMatchObject({ stored: ['thr'], duplicate: [] });
  });

  it("emits the totals' gauges only with ALLOCATION_METRICS=totals, for a quarter of the custom metrics", async () => {
    koodrive.setData(APP.appId, allocated(60));
    process.env.ALLOCATION_METRICS = 'totals';
    try {
      const { failure, documents } = await captured(() =>
        coldHandler()(scheduledEvent('2026-11-28T06:05:00Z'), lambdaContext()),
      );
      expect(failure).toBeUndefined();
      const gauges = documents.filter((d) => 'AllocatedGB' in d);
      expect(gauges.map((d) => d.SpaceType)).toEqual(['totals']);
      // The department's 60 of 100 and the personal space's 10 of 100.
      expect(gauges[0]).toMatchObject({ Tenant: 'thr', AllocatedGB: 70, TotalGB: 200, AllocatedRatio: 0.35 });
      expect(documents.find((d) => 'SnapshotsWritten' in d)).toMatchObject({ SnapshotsWritten: 1 });
    } finally {
      delete process.env.ALLOCATION_METRICS;
    }
  });

  it('counts a failed snapshot for its tenant too, so the dashboard shows which tenant fails', async () => {
    koodrive.enqueueFault({ status: 200, body: { code: 13000301, msg: 'space not found or abnormal' } });
    const { failure, documents } = await captured(() =>
      coldHandler()(scheduledEvent('2026-11-28T06:15:00Z'), lambdaContext()),
    );
    expect(String(failure)).toMatch(/failed for 1 of 1 tenant/);
    const perTenant = documents.find((d) => d.Tenant === 'thr' && 'SnapshotFailures' in d);
    expect(perTenant).toMatchObject({ SnapshotFailures: 1 });
    expect(JSON.stringify(perTenant)).toContain('"Dimensions":[["service","Tenant"]]');
    // The service-wide count the alarms and the dashboard's totals read is there as before.
    expect(documents.find((d) => d.Tenant === undefined && 'SnapshotFailures' in d)).toMatchObject({
      SnapshotFailures: 1,
    });
  });
});

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
    const stopping = coldHandler({ getPublisher: () => undefined, getStore: storeWhoseFirstHeadMoveFails() });
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
