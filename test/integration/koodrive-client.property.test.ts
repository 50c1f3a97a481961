/**
 * The KooDrive client under random histories: a model-based property test (fast-check) of
 * createKooDriveClient with the real credentials provider (lib/credentials.ts), the real transport
 * (lib/koodrive/transport.ts), KooDrive simulators (which check every signature and X-Date by the
 * vendor's rule) and the local Secrets Manager reached by the real SDK client.
 *
 * Each case draws steps for two tenants, each with its own secret, app and KooDrive host (beta's secret
 * names its endpoint in `baseUrl`): groups of one to three calls started together (often for one
 * tenant), and between them secret rotations (in Secrets Manager and KooDrive at once, in KooDrive
 * first, or in Secrets Manager first), broken secrets (not JSON, a field missing, an AppId that cannot
 * be signed), Secrets Manager faults, the KooDrive clock jumping, and time passing (across the 30 s
 * refetch window and the 60 s cache). Each call draws what KooDrive does with each of its attempts:
 * answer (also slowly, or with `code: "0"`), 5xx, 429 with or without Retry-After, a 4xx that is not a
 * refusal, `code` ≠ 0, a refused signature (401, or 400 with APIGW.0303 or no code; its `Date` honest,
 * empty, an IMF-fixdate seconds to hours off, or a date in another shape), malformed bodies, no answer
 * within the time limit, a reset connection; some answers echo the Authorization, the signature and the
 * app secret back. A request not signed with KooDrive's current secret, or whose X-Date is outside
 * KooDrive's window, is refused by the simulator itself, with its own `Date`, whatever was drawn for it
 * (except no answer and resets, which come first as on a real network). Calls may have a deadline, and
 * one attempt whose answer comes back late (after the other calls' next answers).
 *
 * An independent model, written from the contract and the README ("Calling KooDrive", "When KooDrive
 * refuses a signature", the errors tables), predicts for every call its outcome (the simulator's
 * numbers, or the exact error code, upstreamCode and what the detail says for a timeout or a refusal)
 * and each request KooDrive sees (its status, its exact X-Date, so that a learned clock offset is
 * checked against the simulator's clock, and the attempt's time limit); and for every group the
 * Secrets Manager reads per secret, the back-off waits and the attempt reports. No error (message,
 * upstreamMessage, upstreamCode, causes, stack) and no attempt report may contain an app secret, a
 * signature or an Authorization value; and, apart from the model, a secret is never read again after a
 * refusal twice within 30 s.
 *
 * Deterministic, and without real waiting:
 * - one virtual clock (`now` of the client and of the credentials provider) that moves only between
 *   groups, always 100 ms past a whole second; each simulator's clock is set to it plus the drawn skew
 *   before each request, so every X-Date and every `Date` header is known to the millisecond; the
 *   deadline is on that clock too, so only its arithmetic is exercised here (time passing during a call
 *   is koodrive-client.test.ts's business);
 * - back-off waits are recorded, not waited; `random` is a constant per case;
 * - the calls of a group run in lock step: requests are sent only once every unfinished call of the
 *   group waits on the transport, one after the other in call order, and their answers are handed back
 *   together in that order. Which refusal starts the shared re-read and which one joins it, and which
 *   fault goes to which request, is then fixed, while the calls still overlap around the credentials
 *   provider (shared reads, concurrent refusals) and the learned clock as they do in production;
 * - only an attempt meant to time out runs on the client's (short) time limit;
 * - the Secrets Manager client makes one try per read (`maxAttempts: 1`): the SDK's own retries are the
 *   SDK's business, and would make the count of reads a matter of timing.
 * The transport's retry of a pooled connection that turns out closed is part of the model: a reset on
 * a kept-alive connection is sent once more on a new one, unseen by the client (one attempt, two
 * requests).
 */
import { type GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCredentialsProvider } from '../../lib/credentials.ts';
import type { AppError, ErrorCode } from '../../lib/errors.ts';
import {
  type AttemptReport,
  createKooDriveClient,
  type KooDriveClient,
  type KooDriveResponse,
} from '../../lib/koodrive/client.ts';
import {
  createTransport,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from '../../lib/koodrive/transport.ts';
import type { Tenant } from '../../lib/tenants.ts';
import {
  type KooDriveSimulator,
  type SimulatedFault,
  startKooDriveSimulator,
} from '../../local/koodrive-simulator.ts';
import {
  type LocalSecretsManager,
  type SecretsManagerFault,
  startLocalSecretsManager,
} from '../../local/secrets-manager.ts';

/** Fast-check's runs; a fixed seed keeps CI deterministic (set KOODRIVE_CLIENT_PROPERTY_SEED to explore). */
const NUM_RUNS = Number(process.env.KOODRIVE_CLIENT_PROPERTY_RUNS ?? 200);
const SEED = Number(process.env.KOODRIVE_CLIENT_PROPERTY_SEED ?? 20261129);
/** About 40 ms a case here; the limit leaves room for a slow CI machine (and grows with more runs). */
const TIME_LIMIT_MS = Math.max(40_000, NUM_RUNS * 200);

// ---------------------------------------------------------------------------------------------------
// The settings the client runs with, and the rules the model states (from the contract and README,
// not imported from lib/, so that a change there is noticed here)

const TIMEOUT_MS = 150;
const MIN_ATTEMPT_MS = 100;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 300;
const CACHE_SECONDS = 60;
/** README: after a refusal a secret is read again at most once per secret every 30 s. */
const REFETCH_WINDOW_MS = 30_000;
/** The client stamps X-Date this far in the past (its default; KooDrive refuses a time ahead of its own). */
const STAMP_BEHIND_MS = 5_000;
/** KooDrive (the simulator) accepts an X-Date at most 15 minutes old and not ahead of its clock. */
const SIGNING_WINDOW_MS = 15 * 60_000;
/** A refusal's Date is believed only when it is an IMF-fixdate within an hour of our clock. */
const BELIEVED_OFFSET_MS = 60 * 60_000;
/** The Date header's precision: a smaller offset (or change of offset) is noise. */
const DATE_PRECISION_MS = 1_000;
/** The virtual clock stands this far past a whole second, so that truncations to seconds are exact. */
const PHASE_MS = 100;

const TENANT_IDS = ['acme', 'beta'] as const;
type TenantId = (typeof TENANT_IDS)[number];
const TENANTS: Record<TenantId, Tenant> = {
  acme: { tenantId: 'acme', secretId: 'koodrive/prop-client-acme' },
  beta: { tenantId: 'beta', secretId: 'koodrive/prop-client-beta' },
};
const APP_IDS: Record<TenantId, string> = { acme: 'prop-acme-app', beta: 'prop-beta-app' };
const USER_IDS: Record<TenantId, string> = { acme: '1505084218764547200', beta: '42' };

// ---------------------------------------------------------------------------------------------------
// What a case is made of

/** A refusal's `Date` header. */
type DateHeader =
  /** The simulator's own: its clock. */
  | { kind: 'honest' }
  /** Present but empty. */
  | { kind: 'absent' }
  /** An IMF-fixdate this far from our clock (believed within an hour, whatever the server's real clock). */
  | { kind: 'shifted'; byMs: number }
  /** A date this far from our clock, but not written as an IMF-fixdate. */
  | { kind: 'misshapen'; byMs: number; shape: 'wrong-weekday' | 'utc' | 'rfc850' | 'iso' }
  /** A fixed value; `epochMs` is what it means as an IMF-fixdate, undefined when it is not one. */
  | { kind: 'fixed'; value: string; epochMs: number | undefined };

type ServerErrorBody = 'default' | 'html' | 'gateway' | 'echo' | 'signature-as-code';
type RefusalBody = 'gateway' | 'gateway-echo' | 'empty' | 'html' | 'koodrive';

/** What the simulator does with one attempt that reaches it signed with its current secret in time. */
type Behaviour =
  | { kind: 'ok' }
  | { kind: 'ok-string-code' }
  | { kind: 'slow-ok' }
  | { kind: 'server-error'; status: 500 | 502 | 503 | 504; body: ServerErrorBody }
  | { kind: 'throttled'; retryAfter: RetryAfter }
  | { kind: 'client-error'; status: 400 | 403 | 404 | 409 }
  | { kind: 'koodrive-error'; code: number | string; echo: boolean }
  | { kind: 'refusal'; status: 400 | 401; body: RefusalBody; date: DateHeader }
  | { kind: 'malformed'; body: 'not-json' | 'array' | 'no-code' | 'empty' }
  /** No answer within the time limit (checked before the signature, like any transport fault). */
  | { kind: 'timeout' }
  /** The connection is dropped without an answer (checked before the signature too). */
  | { kind: 'reset' }
  /** The same, and again when the transport sends the request once more on a new connection. */
  | { kind: 'drop' };

/** A Retry-After header and what it asks for (RFC 9110 delay-seconds; anything else is no ask). */
interface RetryAfter {
  header: string | null;
  askMs: number | undefined;
}

interface CallSpec {
  tenant: TenantId;
  /** What happens to the call's n-th attempt (answered normally past the end of the list). */
  behaviours: Behaviour[];
  /** The call's deadline, this many ms after the (virtual) time it starts; null for none. */
  deadline: number | null;
  /**
   * The attempt (0-based) whose answer comes back a round late: after the answers to the other calls'
   * next requests, as when it is slower than another call's refusal and secret re-read.
   */
  late: number | null;
}

interface Capacity {
  allocate: number;
  total: number;
}

type BrokenSecret = 'not-json' | 'missing-user' | 'bad-app-id';

type Step =
  | { kind: 'calls'; calls: CallSpec[]; data: Record<TenantId, Capacity> }
  /** A new secret in Secrets Manager and KooDrive at once: the old one is refused from now on. */
  | { kind: 'rotate'; tenant: TenantId }
  /** A new secret in KooDrive only (Secrets Manager still holds the old one, until `sync`). */
  | { kind: 'rotate-koodrive'; tenant: TenantId }
  /** A new secret in Secrets Manager only: KooDrive refuses it until `activate`. */
  | { kind: 'rotate-secrets-manager'; tenant: TenantId }
  /** Secrets Manager gets KooDrive's current secret. */
  | { kind: 'sync'; tenant: TenantId }
  /** KooDrive takes the (valid) secret Secrets Manager holds. */
  | { kind: 'activate'; tenant: TenantId }
  | { kind: 'break'; tenant: TenantId; how: BrokenSecret }
  | { kind: 'sm-fault'; tenant: TenantId; type: SecretsManagerFault['type']; times: 1 | 2 }
  | { kind: 'advance'; ms: number }
  | { kind: 'server-clock'; skewMs: number };

interface Plan {
  maxAttempts: number;
  random: number;
  skewMs: number;
  steps: Step[];
}

const OK: Behaviour = { kind: 'ok' };
const MINUTE = 60_000;

/**
 * The simulator's clock minus ours, in seconds: in step, a little behind, or far behind or ahead (past
 * either edge of the 15-minute window, up to beyond the hour a Date is believed within).
 */
const SKEWS = [0, -3, -30, -600, 300, 840, 1_200, -3_000, 7_200].map((seconds) => seconds * 1_000);
/** Shifts of a refusal's Date from our clock, in seconds: believed (seconds to minutes), or not (past an hour). */
const SHIFTS = [-1_800, -300, -40, -8, -2, 0, 3, 30, 600, 3_000, 3_660, -3_660, 10_800, -10_800].map(
  (seconds) => seconds * 1_000,
);
const FIXED_DATES: Array<{ value: string; epochMs: number | undefined }> = [
  { value: '0', epochMs: undefined },
  { value: 'yesterday', epochMs: undefined },
  { value: 'garbage 2026', epochMs: undefined },
  { value: 'Mon, 30 Feb 2026 00:00:00 GMT', epochMs: undefined },
  { value: 'Mon, 01 Jan 10001 00:00:00 GMT', epochMs: undefined },
  { value: 'Sat, 01 Jan 2000 00:00:00 GMT', epochMs: Date.UTC(2000, 0, 1) },
  { value: 'Thu, 01 Jan 1970 00:00:00 GMT', epochMs: 0 },
];
const RETRY_AFTERS: RetryAfter[] = [
  { header: null, askMs: undefined },
  { header: '1', askMs: 1_000 },
  { header: '3', askMs: 3_000 },
  { header: '0', askMs: undefined },
  { header: 'soon', askMs: undefined },
];

// ---------------------------------------------------------------------------------------------------
// Arbitraries

const tenantArb = fc.constantFrom<TenantId>(...TENANT_IDS);

const dateArb: fc.Arbitrary<DateHeader> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<DateHeader>({ kind: 'honest' }) },
  { weight: 1, arbitrary: fc.constant<DateHeader>({ kind: 'absent' }) },
  { weight: 4, arbitrary: fc.constantFrom(...SHIFTS).map((byMs): DateHeader => ({ kind: 'shifted', byMs })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        byMs: fc.constantFrom(-40_000, 0, 10 * MINUTE),
        shape: fc.constantFrom('wrong-weekday' as const, 'utc' as const, 'rfc850' as const, 'iso' as const),
      })
      .map((m): DateHeader => ({ kind: 'misshapen', ...m })),
  },
  { weight: 1, arbitrary: fc.constantFrom(...FIXED_DATES).map((f): DateHeader => ({ kind: 'fixed', ...f })) },
);

const behaviourArb: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Behaviour>(OK) },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: 'ok-string-code' }) },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: 'slow-ok' }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('server-error' as const),
      status: fc.constantFrom(500 as const, 502 as const, 503 as const, 504 as const),
      body: fc.constantFrom<ServerErrorBody>('default', 'html', 'gateway', 'echo', 'signature-as-code'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('throttled' as const),
      retryAfter: fc.constantFrom(...RETRY_AFTERS),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('client-error' as const),
      status: fc.constantFrom(400 as const, 403 as const, 404 as const, 409 as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('koodrive-error' as const),
      code: fc.constantFrom<number | string>(13000410, '13000412', 13000301),
      echo: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        kind: fc.constant('refusal' as const),
        status: fc.constantFrom(400 as const, 401 as const),
        body: fc.constantFrom<RefusalBody>('gateway', 'gateway-echo', 'empty', 'html', 'koodrive'),
        date: dateArb,
      })
      // A 400 with a KooDrive error code is not a refusal (client-error covers it).
      .map((r): Behaviour => (r.status === 400 && r.body === 'koodrive' ? { ...r, body: 'gateway' } : r)),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('malformed' as const),
      body: fc.constantFrom('not-json' as const, 'array' as const, 'no-code' as const, 'empty' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: 'timeout' }) },
  { weight: 2, arbitrary: fc.constant<Behaviour>({ kind: 'reset' }) },
  { weight: 3, arbitrary: fc.constant<Behaviour>({ kind: 'drop' }) },
);

const callArb: fc.Arbitrary<CallSpec> = fc.record({
  tenant: tenantArb,
  behaviours: fc.array(behaviourArb, { maxLength: 4 }),
  deadline: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    // No time for an attempt; less than one time limit (the attempt is cut); a little more.
    { weight: 1, arbitrary: fc.constantFrom(60, 110, 130, 220) },
  ),
  late: fc.option(fc.nat({ max: 2 }), { freq: 3 }),
});

const capacityArb: fc.Arbitrary<Capacity> = fc.record({
  allocate: fc.nat({ max: 5_000 }),
  total: fc.nat({ max: 5_000 }),
});

const groupArb: fc.Arbitrary<Step> = fc
  .record({
    kind: fc.constant('calls' as const),
    calls: fc.array(callArb, { minLength: 1, maxLength: 3 }),
    // Often every call of the group for one tenant: concurrent refusals of one secret.
    sameTenant: fc.boolean(),
    data: fc.record({ acme: capacityArb, beta: capacityArb }),
  })
  .map(({ sameTenant, calls, ...group }) => ({
    ...group,
    calls: sameTenant ? calls.map((call) => ({ ...call, tenant: calls[0]?.tenant ?? call.tenant })) : calls,
  }));

const actionArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('rotate' as const), tenant: tenantArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('rotate-koodrive' as const), tenant: tenantArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('rotate-secrets-manager' as const), tenant: tenantArb }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), tenant: tenantArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('activate' as const), tenant: tenantArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('break' as const),
      tenant: tenantArb,
      how: fc.constantFrom<BrokenSecret>('not-json', 'missing-user', 'bad-app-id'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('sm-fault' as const),
      tenant: tenantArb,
      type: fc.constantFrom<SecretsManagerFault['type']>(
        'ThrottlingException',
        'AccessDeniedException',
        'ResourceNotFoundException',
        'InternalServiceError',
        'reset',
      ),
      times: fc.constantFrom(1 as const, 2 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(1_000, 10_000, 29_000, 30_000, 31_000, 61_000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('server-clock' as const), skewMs: fc.constantFrom(...SKEWS) }),
  },
);

const planArb: fc.Arbitrary<Plan> = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 4 }),
  random: fc.constantFrom(0, 0.25, 0.5, 0.999),
  skewMs: fc.oneof(
    { weight: 3, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.constantFrom(...SKEWS) },
  ),
  steps: fc
    .tuple(
      fc.array(fc.oneof({ weight: 3, arbitrary: groupArb }, { weight: 2, arbitrary: actionArb }), {
        maxLength: 9,
      }),
      groupArb,
    )
    .map(([steps, last]) => [...steps, last]),
});

// ---------------------------------------------------------------------------------------------------
// What the simulator is told to do: shared by the harness (to inject it) and the model (to predict it)

const SERVER_ERROR_CODES: Record<ServerErrorBody, string | undefined> = {
  default: '13000201',
  html: undefined,
  gateway: 'APIGW.0101',
  echo: '13000201',
  // The code is the request's own signature: 64 hex digits, redacted.
  'signature-as-code': '[redacted]',
};
const REFUSAL_CODES: Record<RefusalBody, string | undefined> = {
  gateway: 'APIGW.0303',
  'gateway-echo': 'APIGW.0303',
  empty: undefined,
  html: undefined,
  koodrive: '13000101',
};
const CLIENT_ERRORS: Record<400 | 403 | 404 | 409, { body: unknown; code: string | undefined }> = {
  400: { body: { code: '13000102', msg: 'parameter verification failed' }, code: '13000102' },
  403: { body: { code: 13000410, msg: 'the user has no permission on the space' }, code: '13000410' },
  404: { body: { code: 13000101, msg: 'bad request' }, code: '13000101' },
  409: { body: '', code: undefined },
};
const THROTTLED_CODE = 'APIGW.0308';

const dataOf = (capacity: Capacity) => ({
  type: '0',
  allocateCapacity: String(capacity.allocate),
  totalCapacity: String(capacity.total),
});

/** An HTTP date the client must not believe, in one of the shapes a lenient parser would take. */
function misshapenDate(epochMs: number, shape: 'wrong-weekday' | 'utc' | 'rfc850' | 'iso'): string {
  const imf = new Date(epochMs).toUTCString();
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const day = new Date(epochMs).getUTCDay();
  switch (shape) {
    case 'wrong-weekday':
      return imf.replace(/^\w{3}/, days[(day + 1) % 7] ?? 'Sun');
    case 'utc':
      return imf.replace(/GMT$/, 'UTC');
    case 'rfc850': {
      const long = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][day] ?? '';
      const [, dd, mon, yyyy, time] = imf.split(' ');
      return `${long}, ${dd}-${mon}-${(yyyy ?? '').slice(2)} ${time} GMT`;
    }
    case 'iso':
      return new Date(epochMs).toISOString();
  }
}

const wholeSecond = (ms: number) => Math.floor(ms / 1_000) * 1_000;

/** `YYYYMMDDTHHMMSSZ`, as KooDrive wants X-Date. */
const formatXDate = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replaceAll('-', '')
    .replaceAll(':', '');

// ---------------------------------------------------------------------------------------------------
// The model

type Result =
  | { kind: 'ok' }
  | { kind: 'retryable'; code: ErrorCode; upstreamCode: string | undefined; retryAfterMs: number | undefined }
  /** `date`: the refusal's Date header as an IMF-fixdate in epoch ms, undefined when absent or not one. */
  | { kind: 'rejected'; upstreamCode: string | undefined; date: number | undefined }
  | { kind: 'error'; code: ErrorCode; upstreamCode: string | undefined };

const retryable = (code: ErrorCode, upstreamCode?: string, retryAfterMs?: number): Result => ({
  kind: 'retryable',
  code,
  upstreamCode,
  retryAfterMs,
});

/** Credentials as a value: `key` names their content (equal keys, equal credentials). */
interface ModelCredentials {
  key: string;
  /** False for an AppId that cannot go in the Authorization header: nothing is sent. */
  signable: boolean;
}

type Read = { ok: true; credentials: ModelCredentials } | { ok: false; code: ErrorCode };

type Outcome =
  | { ok: true; attempts: number; data: unknown; fetchedAt: number }
  | { ok: false; code: ErrorCode; upstreamCode: string | undefined; hint: Hint | undefined };

/** What the detail of an UPSTREAM_TIMEOUT or UPSTREAM_REJECTED says (README's 3 a.m. table). */
type Hint =
  | 'no time left in the invocation'
  | 'the time left in the invocation ran out'
  | 'KOODRIVE_TIMEOUT_MS ran out'
  | 'read again less than 30 s ago'
  | 'refused also on a second try'
  | 'unexplained';

function hintOf(error: AppError): Hint | undefined {
  const { code, message } = error;
  if (code === 'UPSTREAM_TIMEOUT') {
    if (/^No time was left in this invocation/.test(message)) return 'no time left in the invocation';
    if (/ms left in this invocation/.test(message)) return 'the time left in the invocation ran out';
    if (/within \d+ ms \(KOODRIVE_TIMEOUT_MS\)/.test(message)) return 'KOODRIVE_TIMEOUT_MS ran out';
    return 'unexplained';
  }
  if (code === 'UPSTREAM_REJECTED') {
    if (/read again less than 30 s ago/.test(message)) return 'read again less than 30 s ago';
    if (/also on a second try/.test(message)) return 'refused also on a second try';
    return 'unexplained';
  }
  return undefined;
}

interface RequestSeen {
  status: number;
  xDate: string;
  /** The time limit the client gave the transport for the attempt. */
  timeoutMs: number;
}

interface CallSeen {
  outcome: Outcome;
  requests: RequestSeen[];
}

interface GroupSeen {
  calls: CallSeen[];
  /** `tenant #attempt outcome reason`, sorted. */
  reports: string[];
  secretReads: Record<TenantId, number>;
  /** Back-off waits, sorted. */
  delays: number[];
}

interface ModelCall {
  spec: CallSpec;
  credentials: ModelCredentials | undefined;
  attempts: number;
  retries: number;
  refusalRetried: boolean;
  /** The offsets the call's last request was signed with. */
  signedWith: Record<TenantId, number>;
  requests: RequestSeen[];
  outcome: Outcome | undefined;
}

const failed = (code: ErrorCode, upstreamCode?: string, hint?: Hint): Outcome => ({
  ok: false,
  code,
  upstreamCode,
  hint,
});

class Model {
  /** Our (virtual) clock: the client's and the credentials provider's `now`. */
  clock: number;
  /** The simulator's clock minus ours. */
  skew: number;
  /** The clock offset the client learned for each tenant's KooDrive host (0: none). */
  readonly offsets: Record<TenantId, number> = { acme: 0, beta: 0 };
  /** Whether the transport holds a kept-alive connection to KooDrive. */
  readonly warm: Record<TenantId, boolean> = { acme: false, beta: false };
  /** The version of each app's secret that KooDrive accepts. */
  readonly koodrive: Record<TenantId, number> = { acme: 0, beta: 0 };
  /** What each tenant's secret in Secrets Manager holds. */
  readonly stored: Record<TenantId, { key: string; readable: 'valid' | 'unparseable' | 'unsignable' }> = {
    acme: { key: 'v0', readable: 'valid' },
    beta: { key: 'v0', readable: 'valid' },
  };
  /** Secrets Manager reads of each secret that will fail. */
  readonly secretFaults: Record<TenantId, number> = { acme: 0, beta: 0 };
  /** The provider's cache: entries stay after they expire, until replaced or dropped by a refetch. */
  readonly cache = new Map<TenantId, { credentials: ModelCredentials; expiresAt: number }>();
  /** When each secret was last read again after a refusal. */
  readonly refetchedAt = new Map<TenantId, number>();

  readonly plan: Plan;

  constructor(plan: Plan, clock: number) {
    this.plan = plan;
    this.clock = clock;
    this.skew = plan.skewMs;
  }

  private read(tenant: TenantId, reads: Record<TenantId, number>): Read {
    reads[tenant] += 1;
    if (this.secretFaults[tenant] > 0) {
      this.secretFaults[tenant] -= 1;
      return { ok: false, code: 'CREDENTIALS_UNAVAILABLE' };
    }
    const stored = this.stored[tenant];
    if (stored.readable === 'unparseable') return { ok: false, code: 'CONFIGURATION_ERROR' };
    return { ok: true, credentials: { key: stored.key, signable: stored.readable === 'valid' } };
  }

  private cacheRead(tenant: TenantId, read: Read) {
    if (read.ok)
      this.cache.set(tenant, {
        credentials: read.credentials,
        expiresAt: this.clock + CACHE_SECONDS * 1_000,
      });
  }

  /** X-Date of a request signed now with this offset: a few seconds behind, to the second. */
  private xDate(offset: number): number {
    return wholeSecond(this.clock + offset - STAMP_BEHIND_MS);
  }

  /** The simulator's Date header: its clock, to the second (the exchange takes well under 900 ms). */
  private serverDate(): number {
    return wholeSecond(this.clock + this.skew);
  }

  private accepts(tenant: TenantId, credentials: ModelCredentials, xDate: number): boolean {
    if (credentials.key !== `v${this.koodrive[tenant]}`) return false;
    const inWindow = (elapsedMs: number) => {
      const server = this.clock + this.skew + elapsedMs;
      return xDate <= server && server - xDate <= SIGNING_WINDOW_MS;
    };
    // Every clock here is whole seconds plus 100 ms: the few ms a request takes cannot change this.
    if (inWindow(0) !== inWindow(850)) throw new Error('internal: an X-Date on the edge of the window');
    return inWindow(0);
  }

  /** KooDrive's answer to a faulted request that it accepted. */
  private answer(behaviour: Behaviour): { status: number; result: Result } {
    switch (behaviour.kind) {
      case 'ok':
      case 'ok-string-code':
      case 'slow-ok':
        return { status: 200, result: { kind: 'ok' } };
      case 'server-error':
        return {
          status: behaviour.status,
          result: retryable('UPSTREAM_ERROR', SERVER_ERROR_CODES[behaviour.body]),
        };
      case 'throttled':
        return {
          status: 429,
          result: retryable('UPSTREAM_ERROR', THROTTLED_CODE, behaviour.retryAfter.askMs),
        };
      case 'client-error':
        return {
          status: behaviour.status,
          result: {
            kind: 'error',
            code: 'UPSTREAM_ERROR',
            upstreamCode: CLIENT_ERRORS[behaviour.status].code,
          },
        };
      case 'koodrive-error':
        return {
          status: 200,
          result: { kind: 'error', code: 'UPSTREAM_ERROR', upstreamCode: String(behaviour.code) },
        };
      case 'refusal':
        return {
          status: behaviour.status,
          result: {
            kind: 'rejected',
            upstreamCode: REFUSAL_CODES[behaviour.body],
            date: this.dateOf(behaviour.date),
          },
        };
      case 'malformed':
        return { status: 200, result: { kind: 'error', code: 'UPSTREAM_ERROR', upstreamCode: undefined } };
      case 'timeout':
      case 'reset':
      case 'drop':
        throw new Error('internal: transport faults have no answer');
    }
  }

  private dateOf(header: DateHeader): number | undefined {
    switch (header.kind) {
      case 'honest':
        return this.serverDate();
      case 'shifted':
        return wholeSecond(this.clock + header.byMs);
      case 'fixed':
        return header.epochMs;
      case 'absent':
      case 'misshapen':
        return undefined;
    }
  }

  /** One exchange: the statuses KooDrive records (0: no answer) and what the client makes of it. */
  private exchange(
    tenant: TenantId,
    credentials: ModelCredentials,
    xDate: number,
    behaviour: Behaviour,
  ): { statuses: number[]; result: Result } {
    const accepted = this.accepts(tenant, credentials, xDate);
    const refused = {
      status: 401,
      result: { kind: 'rejected', upstreamCode: 'APIGW.0303', date: this.serverDate() } as Result,
    };
    const natural = accepted ? { status: 200, result: { kind: 'ok' } as Result } : refused;
    switch (behaviour.kind) {
      case 'timeout':
        this.warm[tenant] = false;
        return { statuses: [0], result: retryable('UPSTREAM_TIMEOUT') };
      case 'reset':
        if (!this.warm[tenant]) return { statuses: [0], result: retryable('UPSTREAM_ERROR') };
        // A kept-alive connection that fails before any answer is taken for one the server closed while
        // idle: the transport sends the request once more on a new connection, which KooDrive answers.
        return { statuses: [0, natural.status], result: natural.result };
      case 'drop': {
        const statuses = this.warm[tenant] ? [0, 0] : [0];
        this.warm[tenant] = false;
        return { statuses, result: retryable('UPSTREAM_ERROR') };
      }
      default: {
        this.warm[tenant] = true;
        // A request KooDrive does not accept is refused whatever was queued for it.
        const answer = accepted ? this.answer(behaviour) : refused;
        return { statuses: [answer.status], result: answer.result };
      }
    }
  }

  /** Learns (or forgets) the clock offset of the tenant's KooDrive host from a refusal's Date. */
  private learn(tenant: TenantId, date: number | undefined) {
    // The exchange takes no virtual time: the middle of it is our clock.
    const offset = date === undefined ? Number.NaN : date - this.clock;
    this.offsets[tenant] =
      Math.abs(offset) <= BELIEVED_OFFSET_MS && Math.abs(offset) >= DATE_PRECISION_MS ? offset : 0;
  }

  /**
   * After a refusal: the credentials to try once more, 'none', or the read's error. A newer cached value
   * is used as it is; else the secret is read again, at most once per 30 s, the read shared by the
   * refusals of the same round (concurrent ones).
   */
  private refetch(
    tenant: TenantId,
    refused: ModelCredentials,
    forced: Map<TenantId, Read>,
    reads: Record<TenantId, number>,
  ): Read | 'none' {
    const shared = forced.get(tenant);
    if (shared !== undefined) return shared;
    const cached = this.cache.get(tenant);
    if (cached !== undefined && cached.credentials.key !== refused.key)
      return { ok: true, credentials: cached.credentials };
    const last = this.refetchedAt.get(tenant);
    if (last !== undefined && this.clock - last < REFETCH_WINDOW_MS) return 'none';
    this.refetchedAt.set(tenant, this.clock);
    this.cache.delete(tenant);
    const read = this.read(tenant, reads);
    forced.set(tenant, read);
    return read;
  }

  /** Runs a group of calls started together, round by round as the harness's lock step does. */
  runGroup(specs: CallSpec[], data: Record<TenantId, Capacity>): GroupSeen {
    const reads: Record<TenantId, number> = { acme: 0, beta: 0 };
    const delays: number[] = [];
    const reports: string[] = [];
    const calls: ModelCall[] = specs.map((spec) => ({
      spec,
      credentials: undefined,
      attempts: 0,
      retries: 0,
      refusalRetried: false,
      signedWith: { ...this.offsets },
      requests: [],
      outcome: undefined,
    }));

    // No time for an attempt: nothing is sent, and the secret is not even read.
    for (const call of calls) {
      if (call.spec.deadline !== null && call.spec.deadline < MIN_ATTEMPT_MS)
        call.outcome = failed('UPSTREAM_TIMEOUT', undefined, 'no time left in the invocation');
    }
    // The other calls start at once: a secret not in the cache (or expired) is read once for all of them.
    const gets = new Map<TenantId, Read>();
    for (const call of calls) {
      if (call.outcome !== undefined) continue;
      const { tenant } = call.spec;
      const cached = this.cache.get(tenant);
      if (cached !== undefined && cached.expiresAt > this.clock) {
        call.credentials = cached.credentials;
        continue;
      }
      const read = gets.get(tenant) ?? this.read(tenant, reads);
      gets.set(tenant, read);
      if (read.ok) call.credentials = read.credentials;
      else call.outcome = failed(read.code);
    }
    for (const [tenant, read] of gets) this.cacheRead(tenant, read);

    /** Answers held back a round (`late`), and released with the next round's. */
    const held = new Map<ModelCall, Result>();
    for (;;) {
      const active = calls.filter((call) => call.outcome === undefined);
      if (active.length === 0) break;
      // Every request of a round was signed after the previous round's answers were all read.
      const signedWith = { ...this.offsets };
      const results: Array<[ModelCall, Result]> = [];
      for (const call of active) {
        const { tenant } = call.spec;
        const late = held.get(call);
        if (late !== undefined) {
          held.delete(call);
          results.push([call, late]);
          continue;
        }
        const credentials = call.credentials;
        if (credentials === undefined) throw new Error('internal: a call without credentials');
        call.attempts += 1;
        let result: Result;
        if (!credentials.signable) {
          result = { kind: 'error', code: 'CONFIGURATION_ERROR', upstreamCode: undefined };
        } else {
          const behaviour = call.spec.behaviours[call.attempts - 1] ?? OK;
          call.signedWith = signedWith;
          const xDate = this.xDate(signedWith[tenant]);
          const exchange = this.exchange(tenant, credentials, xDate, behaviour);
          // One attempt's time limit, cut to what is left before the call's deadline.
          const timeoutMs =
            call.spec.deadline === null ? TIMEOUT_MS : Math.min(TIMEOUT_MS, call.spec.deadline);
          call.requests.push(
            ...exchange.statuses.map((status) => ({ status, xDate: formatXDate(xDate), timeoutMs })),
          );
          result = exchange.result;
          if (call.spec.late === call.attempts - 1) {
            held.set(call, result);
            continue;
          }
        }
        results.push([call, result]);
      }
      for (const [call, result] of results) {
        const reason =
          result.kind === 'ok' ? '' : result.kind === 'rejected' ? ' UPSTREAM_REJECTED' : ` ${result.code}`;
        reports.push(`${call.spec.tenant} #${call.attempts} ${result.kind}${reason}`);
      }
      // Each refusal's Date is read as its answer comes in, before any call goes on.
      for (const [call, result] of results) {
        if (result.kind === 'rejected') this.learn(call.spec.tenant, result.date);
      }
      const forced = new Map<TenantId, Read>();
      for (const [call, result] of results) this.goOn(call, result, forced, reads, delays, data);
      for (const [tenant, read] of forced) this.cacheRead(tenant, read);
    }
    return {
      calls: calls.map((call) => ({
        outcome: call.outcome ?? failed('INTERNAL_ERROR'),
        requests: call.requests,
      })),
      reports: reports.sort(),
      secretReads: reads,
      delays: delays.sort((a, b) => a - b),
    };
  }

  /** What a call does with an attempt's result: settle, back off and retry, or retry after a refusal. */
  private goOn(
    call: ModelCall,
    result: Result,
    forced: Map<TenantId, Read>,
    reads: Record<TenantId, number>,
    delays: number[],
    data: Record<TenantId, Capacity>,
  ) {
    const { tenant, deadline } = call.spec;
    switch (result.kind) {
      case 'ok':
        call.outcome = {
          ok: true,
          attempts: call.attempts,
          data: dataOf(data[tenant]),
          fetchedAt: this.clock,
        };
        return;
      case 'error':
        call.outcome = failed(result.code, result.upstreamCode);
        return;
      case 'retryable': {
        call.retries += 1;
        const hint =
          result.code !== 'UPSTREAM_TIMEOUT'
            ? undefined
            : deadline !== null && deadline < TIMEOUT_MS
              ? 'the time left in the invocation ran out'
              : 'KOODRIVE_TIMEOUT_MS ran out';
        // Every attempt counts against the budget, the retry after a refusal included.
        if (call.attempts >= this.plan.maxAttempts) {
          call.outcome = failed(result.code, result.upstreamCode, hint);
          return;
        }
        // Full jitter: random × min(max, base × 2^(n−1)) for the n-th retry, at least what 429 asked (capped).
        const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (call.retries - 1));
        const asked = result.retryAfterMs === undefined ? 0 : Math.min(result.retryAfterMs, MAX_DELAY_MS);
        const delay = Math.max(asked, this.plan.random * ceiling);
        // A wait that leaves no time for another attempt before the deadline is not made.
        if (deadline !== null && delay + MIN_ATTEMPT_MS > deadline) {
          call.outcome = failed(result.code, result.upstreamCode, hint);
          return;
        }
        delays.push(delay);
        return;
      }
      case 'rejected': {
        if (call.refusalRetried) {
          call.outcome = failed('UPSTREAM_REJECTED', result.upstreamCode, 'refused also on a second try');
          return;
        }
        const credentials = call.credentials;
        if (credentials === undefined) throw new Error('internal: a call without credentials');
        const newer = this.refetch(tenant, credentials, forced, reads);
        if (newer !== 'none' && !newer.ok) {
          call.outcome = failed(newer.code);
          return;
        }
        // A refusal that taught a different clock offset is tried again, with the same secret if no other.
        const corrected = Math.abs(this.offsets[tenant] - call.signedWith[tenant]) >= DATE_PRECISION_MS;
        if (newer === 'none' && !corrected) {
          call.outcome = failed('UPSTREAM_REJECTED', result.upstreamCode, 'read again less than 30 s ago');
          return;
        }
        if (newer !== 'none') call.credentials = newer.credentials;
        // Made even when no attempt is left.
        call.refusalRetried = true;
        return;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The harness: servers, a lock-step transport, and one world per case

let koodrive: KooDriveSimulator;
/** Beta's KooDrive: its secret names this endpoint (`baseUrl`). */
let koodriveCn: KooDriveSimulator;
let secrets: LocalSecretsManager;
let cases = 0;

beforeAll(async () => {
  [koodrive, koodriveCn, secrets] = await Promise.all([
    startKooDriveSimulator(),
    startKooDriveSimulator(),
    startLocalSecretsManager(),
  ]);
});

afterAll(async () => {
  await Promise.all([koodrive?.close(), koodriveCn?.close(), secrets?.close()]);
});

const secretOf = (caseNo: number, tenant: TenantId, version: number | string) =>
  `${tenant}-app-secret-${caseNo}-v${version}-kQz`;

/** Acme's endpoint is the client's default; beta's secret names its own. */
const simulatorOf = (tenant: TenantId): KooDriveSimulator => (tenant === 'acme' ? koodrive : koodriveCn);

function secretString(caseNo: number, tenant: TenantId, version: number): string {
  return JSON.stringify({
    appId: APP_IDS[tenant],
    appSecret: secretOf(caseNo, tenant, version),
    userId: USER_IDS[tenant],
    ...(tenant === 'beta' ? { baseUrl: koodriveCn.url } : {}),
  });
}

function brokenSecretString(appSecret: string, tenant: TenantId, how: BrokenSecret): string {
  switch (how) {
    case 'not-json':
      return `{"appId":"${APP_IDS[tenant]}","appSecret":"${appSecret}","userId":`;
    case 'missing-user':
      return JSON.stringify({ appId: APP_IDS[tenant], appSecret });
    case 'bad-app-id':
      return JSON.stringify({ appId: `${APP_IDS[tenant]},x`, appSecret, userId: USER_IDS[tenant] });
  }
}

const traceIdOf = (caseNo: number, group: number, call: number) =>
  `prop-${caseNo}-${group}-${call}-`.padEnd(58, 'x');

interface HarnessCall {
  spec: CallSpec;
  traceId: string;
  /** Requests of this call that reached the transport (its behaviours are taken in this order). */
  sent: number;
  requests: Array<RequestSeen & { traceId: string | undefined; appId: string | undefined }>;
}

interface World {
  caseNo: number;
  clock: number;
  skew: number;
  /** The version of each app's secret KooDrive accepts, the one Secrets Manager holds (null: broken). */
  koodrive: Record<TenantId, number>;
  stored: Record<TenantId, number | null>;
  /** The last version issued per tenant. */
  versions: Record<TenantId, number>;
  data: Record<TenantId, Capacity>;
  /** Every app secret this case issued, and every signature the client sent: none may leak. */
  appSecrets: Set<string>;
  signatures: Set<string>;
  /** Secrets Manager reads made after a refusal: the secret and the (virtual) time. */
  refetches: Array<{ secretId: string; at: number }>;
  calls: HarnessCall[];
  /** Lock-step rounds run in the current group. */
  rounds: number;
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 3_000;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`harness: timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The fault that makes the simulator do `behaviour` with this request (undefined: answer normally). */
function faultFor(
  world: World,
  tenant: TenantId,
  behaviour: Behaviour,
  request: TransportRequest,
): SimulatedFault | undefined {
  const authorization = request.headers.Authorization ?? '';
  const signature = /Signature=([0-9a-f]+)/.exec(authorization)?.[1] ?? '';
  // The simulator only uses a status fault for a request signed with the app's current secret.
  const appSecret = secretOf(world.caseNo, tenant, world.koodrive[tenant]);
  const data = dataOf(world.data[tenant]);
  switch (behaviour.kind) {
    case 'ok':
      return undefined;
    case 'ok-string-code':
      return { status: 200, body: { code: '0', msg: 'Operation successful.', data } };
    case 'slow-ok':
      return { delayMs: 40, status: 200, body: { data, code: 0, msg: 'Operation successful.' } };
    case 'server-error': {
      const bodies: Record<ServerErrorBody, unknown> = {
        default: undefined,
        html: '<html><body><h1>502 Bad Gateway</h1></body></html>',
        gateway: { error_code: 'APIGW.0101', error_msg: 'The API does not exist or has not been published' },
        echo: {
          code: 13000201,
          msg: `inner server invoke failure for {"Signature":"${signature}"} key=${appSecret}`,
        },
        'signature-as-code': { error_code: signature, error_msg: 'x' },
      };
      const body = bodies[behaviour.body];
      return { status: behaviour.status, ...(body === undefined ? {} : { body }) };
    }
    case 'throttled':
      return {
        status: 429,
        body: { error_code: THROTTLED_CODE, error_msg: 'The throttling threshold has been reached' },
        ...(behaviour.retryAfter.header === null
          ? {}
          : { headers: { 'Retry-After': behaviour.retryAfter.header } }),
      };
    case 'client-error':
      return { status: behaviour.status, body: CLIENT_ERRORS[behaviour.status].body };
    case 'koodrive-error':
      return {
        status: 200,
        body: {
          code: behaviour.code,
          msg: behaviour.echo
            ? `bad request: signature=${signature}; expected ${signature.toUpperCase()}; secret ${appSecret}`
            : 'space not active',
        },
      };
    case 'refusal': {
      const bodies: Record<RefusalBody, unknown> = {
        gateway: { error_code: 'APIGW.0303', error_msg: 'Incorrect app authentication information' },
        'gateway-echo': {
          error_code: 'APIGW.0303',
          error_msg: `Incorrect app authentication information: got ${authorization} for app secret ${appSecret}`,
        },
        empty: '',
        html: '<html><body>400 Bad Request</body></html>',
        koodrive: { code: 13000101, msg: 'bad request' },
      };
      const { date } = behaviour;
      const value =
        date.kind === 'honest'
          ? undefined
          : date.kind === 'absent'
            ? ''
            : date.kind === 'shifted'
              ? new Date(world.clock + date.byMs).toUTCString()
              : date.kind === 'misshapen'
                ? misshapenDate(world.clock + date.byMs, date.shape)
                : date.value;
      return {
        status: behaviour.status,
        body: bodies[behaviour.body],
        ...(value === undefined ? {} : { headers: { Date: value } }),
      };
    }
    case 'malformed': {
      const bodies = {
        'not-json': '{"code":0,"data":',
        array: '[{"code":0}]',
        'no-code': { msg: 'Operation successful.', data },
        empty: '',
      };
      return { status: 200, body: bodies[behaviour.body] };
    }
    case 'timeout':
      return { delayMs: 10_000 };
    case 'reset':
    case 'drop':
      return { reset: true };
  }
}

/**
 * The transport the client gets: a request waits until every unfinished call of the group waits too;
 * then the round's requests go to KooDrive one by one in call order, each with its drawn fault, and
 * their answers are handed back together, in call order.
 */
function lockStep(world: World, base: Transport) {
  type Settled = { ok: true; response: TransportResponse } | { ok: false; error: unknown };
  const waiting = new Map<number, { request: TransportRequest; settle: (s: Settled) => void }>();
  let active = new Set<number>();
  let running = false;
  let failure: unknown;

  const send = async (index: number, request: TransportRequest): Promise<Settled> => {
    const call = world.calls[index];
    if (call === undefined) throw new Error('harness: unknown call');
    const behaviour = call.spec.behaviours[call.sent] ?? OK;
    const simulator = simulatorOf(call.spec.tenant);
    call.sent += 1;
    const signature = /Signature=([0-9a-f]+)/.exec(request.headers.Authorization ?? '')?.[1];
    if (signature !== undefined) world.signatures.add(signature);
    // The simulator's clock is ours plus its skew, from this request on.
    simulator.setClockOffsetMs(world.clock + world.skew - Date.now());
    const fault = faultFor(world, call.spec.tenant, behaviour, request);
    // A drop is a reset twice: also the transport's second try on a new connection is reset.
    for (let i = 0; fault !== undefined && i < (behaviour.kind === 'drop' ? 2 : 1); i++)
      simulator.enqueueFault({ ...fault, appId: APP_IDS[call.spec.tenant] });
    let settled: Settled;
    try {
      // Only an attempt meant to time out runs on the client's short limit: any other gets time to
      // spare, so that a slow moment of the machine is not taken for KooDrive's silence.
      const timeoutMs =
        behaviour.kind === 'timeout' ? request.timeoutMs : Math.max(request.timeoutMs, 10_000);
      settled = { ok: true, response: await base({ ...request, timeoutMs }) };
    } catch (error) {
      settled = { ok: false, error };
    }
    // An abandoned request is recorded once the simulator sees the client go.
    await waitUntil(() => simulator.inFlight === 0, 'KooDrive has answered or dropped every request');
    for (const seen of simulator.requests) {
      call.requests.push({
        status: seen.status,
        xDate: seen.xDate ?? '',
        timeoutMs: request.timeoutMs,
        traceId: seen.traceId,
        appId: seen.appId,
      });
    }
    // A fault KooDrive did not use (it refused the request itself) goes too.
    simulator.reset();
    return settled;
  };

  /** Answers held back a round (a call's `late` attempt): the call still counts as waiting. */
  const held = new Map<number, Settled>();
  const pump = async () => {
    if (running || waiting.size === 0 || waiting.size < active.size) return;
    running = true;
    world.rounds += 1;
    const round = [...waiting.entries()].sort(([a], [b]) => a - b);
    waiting.clear();
    const released: Array<[(s: Settled) => void, Settled]> = [];
    try {
      for (const [index, entry] of round) {
        const late = held.get(index);
        if (late !== undefined) {
          held.delete(index);
          released.push([entry.settle, late]);
          continue;
        }
        const call = world.calls[index];
        const holdBack = call !== undefined && call.spec.late === call.sent;
        const answer = await send(index, entry.request);
        if (holdBack) {
          held.set(index, answer);
          waiting.set(index, entry);
        } else {
          released.push([entry.settle, answer]);
        }
      }
    } catch (error) {
      failure ??= error;
      for (const [, entry] of [...round, ...waiting.entries()]) entry.settle({ ok: false, error });
      held.clear();
      waiting.clear();
      running = false;
      return;
    }
    running = false;
    for (const [settle, answer] of released) settle(answer);
    // A held answer may be all that is left to hand back.
    if (held.size > 0) void pump();
  };

  const transport: Transport = (request) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const traceId = request.headers['X-Traceid'];
      const index = world.calls.findIndex((call) => call.traceId === traceId);
      waiting.set(index, { request, settle: (s) => (s.ok ? resolve(s.response) : reject(s.error)) });
      void pump();
    });

  return {
    transport,
    begin(count: number) {
      active = new Set(Array.from({ length: count }, (_, i) => i));
      held.clear();
      world.rounds = 0;
    },
    finished(index: number) {
      active.delete(index);
      void pump();
    },
    get failure() {
      return failure;
    },
  };
}

/** Everything an error or an attempt report shows: its answer's detail and fields, its log line. */
function shownText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const { message, stack } = current;
    const { upstreamCode, upstreamMessage } = current as Partial<AppError>;
    parts.push(message, stack ?? '', String(upstreamCode), String(upstreamMessage));
    current = current.cause;
  }
  return parts.join('\n');
}

function expectNothingSecret(world: World, text: string, where: string) {
  const lower = text.toLowerCase();
  for (const appSecret of world.appSecrets)
    expect(text, `${where} shows an app secret`).not.toContain(appSecret);
  for (const signature of world.signatures)
    expect(lower, `${where} shows a signature`).not.toContain(signature);
  expect(text, `${where} shows an Authorization value`).not.toMatch(/HMAC-SHA256/i);
}

async function runCase(plan: Plan): Promise<void> {
  cases += 1;
  const caseNo = cases;
  const world: World = {
    caseNo,
    // Now, to the second, plus the phase.
    clock: wholeSecond(Date.now()) + PHASE_MS,
    skew: plan.skewMs,
    koodrive: { acme: 0, beta: 0 },
    stored: { acme: 0, beta: 0 },
    versions: { acme: 0, beta: 0 },
    data: { acme: { allocate: 0, total: 0 }, beta: { allocate: 0, total: 0 } },
    appSecrets: new Set(),
    signatures: new Set(),
    refetches: [],
    calls: [],
    rounds: 0,
  };
  const model = new Model(plan, world.clock);
  koodrive.reset();
  koodriveCn.reset();
  secrets.reset();
  for (const tenant of TENANT_IDS) {
    world.appSecrets.add(secretOf(caseNo, tenant, 0));
    simulatorOf(tenant).setApp({
      appId: APP_IDS[tenant],
      appSecret: secretOf(caseNo, tenant, 0),
      userId: USER_IDS[tenant],
    });
    secrets.setSecret(TENANTS[tenant].secretId, secretString(caseNo, tenant, 0));
  }

  // One try per read: see the header. A new client per case, so that no connection outlives a case.
  const sdk = new SecretsManagerClient({ endpoint: secrets.url, maxAttempts: 1 });
  const secretsClient = {
    send: (command: GetSecretValueCommand) => {
      // Reads once a round has run are refetches after a refusal (the first reads precede every request).
      if (world.rounds > 0) world.refetches.push({ secretId: command.input.SecretId ?? '', at: world.clock });
      return sdk.send(command);
    },
  } as unknown as Pick<SecretsManagerClient, 'send'>;
  const credentials = createCredentialsProvider({
    client: secretsClient,
    cacheSeconds: CACHE_SECONDS,
    now: () => world.clock,
    // The local endpoint answers within any deadline here: only the client's deadline arithmetic is
    // modelled (a read outlasting the deadline is credentials.test.ts's business).
    startTimer: () => () => {},
  });
  const step = lockStep(world, createTransport());
  const delays: number[] = [];
  const reports: AttemptReport[] = [];
  const client: KooDriveClient = createKooDriveClient({
    credentials,
    defaultBaseUrl: koodrive.url,
    timeoutMs: TIMEOUT_MS,
    maxAttempts: plan.maxAttempts,
    transport: step.transport,
    now: () => world.clock,
    random: () => plan.random,
    sleep: async (ms) => {
      delays.push(ms);
    },
    baseDelayMs: BASE_DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
    minAttemptMs: MIN_ATTEMPT_MS,
    onAttempt: (report) => reports.push(report),
  });

  /** KooDrive accepts this version of the app's secret from now on, and refuses any other. */
  const activate = (tenant: TenantId, version: number) => {
    world.koodrive[tenant] = version;
    model.koodrive[tenant] = version;
    simulatorOf(tenant).setApp({
      appId: APP_IDS[tenant],
      appSecret: secretOf(caseNo, tenant, version),
      userId: USER_IDS[tenant],
    });
  };
  /** Secrets Manager holds this version of the tenant's secret from now on. */
  const store = (tenant: TenantId, version: number) => {
    world.stored[tenant] = version;
    model.stored[tenant] = { key: `v${version}`, readable: 'valid' };
    secrets.setSecret(TENANTS[tenant].secretId, secretString(caseNo, tenant, version));
  };
  let brokenSecrets = 0;
  try {
    for (const [index, current] of plan.steps.entries()) {
      const where = `step ${index} ${JSON.stringify(current)}`;
      switch (current.kind) {
        case 'rotate':
        case 'rotate-koodrive':
        case 'rotate-secrets-manager': {
          const { tenant } = current;
          world.versions[tenant] += 1;
          const version = world.versions[tenant];
          world.appSecrets.add(secretOf(caseNo, tenant, version));
          if (current.kind !== 'rotate-secrets-manager') activate(tenant, version);
          if (current.kind !== 'rotate-koodrive') store(tenant, version);
          break;
        }
        case 'sync':
          store(current.tenant, world.koodrive[current.tenant]);
          break;
        case 'activate': {
          const version = world.stored[current.tenant];
          if (version !== null) activate(current.tenant, version);
          break;
        }
        case 'break': {
          const { tenant, how } = current;
          brokenSecrets += 1;
          const appSecret = secretOf(caseNo, tenant, `broken${brokenSecrets}`);
          world.appSecrets.add(appSecret);
          world.stored[tenant] = null;
          secrets.setSecret(TENANTS[tenant].secretId, brokenSecretString(appSecret, tenant, how));
          model.stored[tenant] = {
            key: `${how}#${brokenSecrets}`,
            readable: how === 'bad-app-id' ? 'unsignable' : 'unparseable',
          };
          break;
        }
        case 'sm-fault':
          secrets.enqueueFault({
            type: current.type,
            secretId: TENANTS[current.tenant].secretId,
            times: current.times,
          });
          model.secretFaults[current.tenant] += current.times;
          break;
        case 'advance':
          world.clock += current.ms;
          model.clock += current.ms;
          break;
        case 'server-clock':
          world.skew = current.skewMs;
          model.skew = current.skewMs;
          break;
        case 'calls': {
          const expected = model.runGroup(current.calls, current.data);
          world.data = current.data;
          for (const tenant of TENANT_IDS)
            simulatorOf(tenant).setData(APP_IDS[tenant], dataOf(current.data[tenant]));
          const readsBefore = Object.fromEntries(
            TENANT_IDS.map((tenant) => [tenant, secrets.getSecretValueCalls(TENANTS[tenant].secretId)]),
          ) as Record<TenantId, number>;
          delays.length = 0;
          reports.length = 0;
          world.calls = current.calls.map((spec, i) => ({
            spec,
            traceId: traceIdOf(caseNo, index, i),
            sent: 0,
            requests: [],
          }));
          step.begin(world.calls.length);
          const settled = await Promise.all(
            world.calls.map(async (call, i) => {
              try {
                const response: KooDriveResponse = await client.getSpaceAllocation(
                  TENANTS[call.spec.tenant],
                  {
                    traceId: call.traceId,
                    ...(call.spec.deadline === null ? {} : { deadline: world.clock + call.spec.deadline }),
                  },
                );
                return { ok: true as const, response };
              } catch (error) {
                return { ok: false as const, error };
              } finally {
                step.finished(i);
              }
            }),
          );
          if (step.failure !== undefined) throw step.failure;

          const seen: GroupSeen = {
            calls: settled.map((outcome, i) => {
              const call = world.calls[i];
              if (call === undefined) throw new Error('harness: a call went missing');
              for (const request of call.requests) {
                expect(request, `${where}: a request of call ${i}`).toMatchObject({
                  traceId: call.traceId,
                  appId: APP_IDS[call.spec.tenant],
                });
              }
              const requests = call.requests.map(({ status, xDate, timeoutMs }) => ({
                status,
                xDate,
                timeoutMs,
              }));
              if (outcome.ok) {
                expect(outcome.response.traceId).toBe(call.traceId);
                return {
                  outcome: {
                    ok: true,
                    attempts: outcome.response.attempts,
                    data: outcome.response.body.data,
                    fetchedAt: outcome.response.fetchedAt.getTime(),
                  },
                  requests,
                };
              }
              const error = outcome.error as AppError;
              expectNothingSecret(world, shownText(error), `${where}: the error of call ${i}`);
              return { outcome: failed(error.code, error.upstreamCode, hintOf(error)), requests };
            }),
            reports: reports
              .map(
                (r) =>
                  `${r.tenantId} #${r.attempt} ${r.outcome}${r.reason === undefined ? '' : ` ${r.reason}`}`,
              )
              .sort(),
            secretReads: Object.fromEntries(
              TENANT_IDS.map((tenant) => [
                tenant,
                secrets.getSecretValueCalls(TENANTS[tenant].secretId) - readsBefore[tenant],
              ]),
            ) as Record<TenantId, number>,
            delays: [...delays].sort((a, b) => a - b),
          };
          expectNothingSecret(world, JSON.stringify(reports), `${where}: the attempt reports`);
          expect(seen, `${where}: the group against the model`).toEqual(expected);
          break;
        }
      }
    }
    // Apart from the model: a secret is never read again after a refusal twice within 30 s.
    for (const tenant of TENANT_IDS) {
      const times = world.refetches.filter((r) => r.secretId === TENANTS[tenant].secretId).map((r) => r.at);
      for (let i = 1; i < times.length; i++) {
        expect(
          (times[i] ?? 0) - (times[i - 1] ?? 0),
          `refetches of ${tenant}'s secret at ${times.join(', ')}`,
        ).toBeGreaterThanOrEqual(REFETCH_WINDOW_MS);
      }
    }
  } finally {
    sdk.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// The property

describe('KooDrive client under random histories (property)', () => {
  it(
    'retries, refetches, learns the clock and maps errors as the contract says, and never shows a secret',
    async () => {
      await fc.assert(fc.asyncProperty(planArb, runCase), {
        numRuns: NUM_RUNS,
        seed: SEED,
        plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS, { failOnInterrupt: true })],
      });
    },
    TIME_LIMIT_MS + 30_000,
  );
});
