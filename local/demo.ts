/**
 * The local stack's demo tenants: the apps the KooDrive simulator knows and the secrets the local
 * Secrets Manager endpoint serves for them. Nothing here is a real credential.
 */
import type { SimulatorApp } from './koodrive-simulator.ts';

export const DEMO_TENANT_ID = 'demo';
export const DEMO_SECRET_ID = 'koodrive/demo';

/** The default tenant's app: data in the documented array shape, numbers as strings like the vendor's example. */
export const DEMO_APP: SimulatorApp = Object.freeze({
  appId: 'a378331e0d5c4c1f9e7d2b6a8f4c96a1',
  appSecret: 'local-demo-secret-not-for-production',
  userId: '1505084218764547200',
  data: Object.freeze([
    Object.freeze({ type: '0', allocateCapacity: '12288', totalCapacity: '20480' }),
    Object.freeze({ type: '1', allocateCapacity: '35840', totalCapacity: '40960' }),
    Object.freeze({ type: '2', allocateCapacity: '7680', totalCapacity: '10240' }),
  ]),
});

export const LAB_TENANT_ID = 'lab';
const LAB_SECRET_ID = 'koodrive/lab';

/** A second tenant, answered in the vendor's object shape (one space), close to full. */
export const LAB_APP: SimulatorApp = Object.freeze({
  appId: 'b51e07c2f3a94d6e8c1d0f2a7b3e5c48',
  appSecret: 'local-lab-secret-not-for-production',
  userId: '1505084218764547311',
  data: Object.freeze({ type: '0', allocateCapacity: '1840', totalCapacity: '2048' }),
});

/** Every demo tenant with its secret id and app, the default tenant first. */
export const DEMO_TENANTS: readonly { tenantId: string; secretId: string; app: SimulatorApp }[] =
  Object.freeze([
    Object.freeze({ tenantId: DEMO_TENANT_ID, secretId: DEMO_SECRET_ID, app: DEMO_APP }),
    Object.freeze({ tenantId: LAB_TENANT_ID, secretId: LAB_SECRET_ID, app: LAB_APP }),
  ]);

/** `KOODRIVE_TENANTS` for the local stack: `demo=koodrive/demo,lab=koodrive/lab`. */
export const DEMO_TENANTS_SETTING = DEMO_TENANTS.map((t) => `${t.tenantId}=${t.secretId}`).join(',');

/** The contract's secret JSON for an app: `{appId, appSecret, userId, baseUrl?}`. */
export function demoSecretString(app: SimulatorApp, baseUrl?: string): string {
  return JSON.stringify({
    appId: app.appId,
    appSecret: app.appSecret,
    userId: app.userId,
    ...(baseUrl === undefined ? {} : { baseUrl }),
  });
}

const MINUTE_MS = 60_000;

/**
 * The demo tenant's spaces at a moment, so that a newcomer's local history moves: the department
 * space grows 2 GB a minute through the day, and the personal space swings between 75 % and 95 % of
 * its total once an hour, crossing the 80 % and 90 % thresholds up and down (threshold events and a
 * forecast to look at within minutes). Numbers stay strings, like the vendor's example.
 */
export function demoDataAt(at: Date): { type: string; allocateCapacity: string; totalCapacity: string }[] {
  const minuteOfDay = Math.floor((at.getTime() % 86_400_000) / MINUTE_MS);
  const personalRatio = 0.85 + 0.1 * Math.sin((2 * Math.PI * (at.getTime() / MINUTE_MS)) / 60);
  return [
    { type: '0', allocateCapacity: String(12_288 + 2 * minuteOfDay), totalCapacity: '20480' },
    { type: '1', allocateCapacity: String(Math.round(40_960 * personalRatio)), totalCapacity: '40960' },
    { type: '2', allocateCapacity: '7680', totalCapacity: '10240' },
  ];
}
