import { randomUUID } from 'node:crypto';
import { withoutTrailingSlashes } from '../config.ts';
import type { AppCredentials, CredentialsProvider } from '../credentials.ts';
import { NO_TIME_ADVICE } from '../deadline.ts';
import {
  AppError,
  type AppErrorOptions,
  ConfigurationError,
  MalformedAllocationError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../errors.ts';
import type { Tenant } from '../tenants.ts';
import { REDACTED, redactRequestEchoes } from './redact.ts';
import { percentEncode, type SignedRequest, signRequest } from './sign.ts';
import {
  AnswerCutOffError,
  BodyTooLargeError,
  createTransport,
  type Transport,
  type TransportResponse,
  TransportTimeoutError,
} from './transport.ts';

export const ALLOCATION_PATH = '/koodrive/ose/v1/space/allocation/get';

/** KooDrive wants a 58-character X-Traceid. */
export const TRACE_ID_LENGTH = 58;

/** 58 random hex digits; randomUUID draws from a cached entropy pool, far cheaper than randomBytes per call. */
export function createTraceId(): string {
  return `${randomUUID()}${randomUUID()}`.replaceAll('-', '').slice(0, TRACE_ID_LENGTH);
}

export interface KooDriveClientOptions {
  credentials: CredentialsProvider;
  /** Endpoint for tenants whose secret has no `baseUrl`. */
  defaultBaseUrl: string;
  timeoutMs: number;
  maxAttempts: number;
  /** How one exchange is made; by default node:http(s) with keep-alive agents kept for the container's life. */
  transport?: Transport;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** First backoff step; the n-th retry waits a random time in [0, min(maxDelayMs, baseDelayMs·2ⁿ⁻¹)). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** X-Date is stamped this far in the past, because KooDrive refuses a time later than its own clock. */
  clockSkewMs?: number;
  /** Answers larger than this are refused rather than read into memory. */
  maxBodyBytes?: number;
  /** An attempt is not started with less time than this left before the call's deadline. */
  minAttemptMs?: number;
  /** Called after each attempt (for logs and metrics); never receives headers or secrets. */
  onAttempt?: (attempt: AttemptReport) => void;
}

/**
 * One attempt, as logs and metrics see it: what is known of why it failed, never a header or a secret.
 * When KooDrive flaps but the call succeeds in the end, the warnings built from these are the only record.
 */
export interface AttemptReport {
  tenantId: string;
  attempt: number;
  outcome: 'ok' | 'retryable' | 'rejected' | 'error';
  /** The contract's code of the attempt's error (UPSTREAM_ERROR, UPSTREAM_TIMEOUT, …). */
  reason?: string;
  /** The HTTP status KooDrive (or whatever answered) gave, when an answer began. */
  httpStatus?: number;
  /** Why no whole answer came: the network error's code (ECONNRESET, ECONNREFUSED, HPE_…) or `timeout`. */
  networkError?: string;
  /** KooDrive's error code, when its answer carried one (redacted and capped, as in answers). */
  upstreamCode?: string;
  /** The X-Traceid sent with the attempt: the id KooDrive logged (every attempt of a call shares it). */
  koodriveTraceId: string;
  durationMs: number;
}

interface CallOptions {
  traceId?: string;
  language?: string;
  /**
   * The caller's own deadline (epoch ms, as `now()` counts), e.g. the Lambda invocation's end less a
   * margin for answering: no attempt starts or backs off past it, and an attempt's time limit is cut
   * to what is left, so the caller still answers with UPSTREAM_TIMEOUT instead of being killed.
   */
  deadline?: number;
}

export interface KooDriveResponse {
  /** Parsed JSON body whose `code` is 0. */
  body: Record<string, unknown>;
  traceId: string;
  /** Attempts made, refetch retry included. */
  attempts: number;
  /**
   * When KooDrive was asked for the answer returned (the start of the attempt that succeeded): the
   * contract's `fetchedAt` of a stored snapshot and `observedAt` of a live answer.
   */
  fetchedAt: Date;
}

export interface KooDriveClient {
  getSpaceAllocation(tenant: Tenant, options?: CallOptions): Promise<KooDriveResponse>;
}

type AttemptResult = (
  | { kind: 'ok'; body: Record<string, unknown> }
  /** `nextStep`: what to do once the attempts are used up, when `error`'s message does not say. */
  | { kind: 'retryable'; error: AppError; retryAfterMs?: number; nextStep?: string }
  | { kind: 'rejected'; error: UpstreamRejectedError; status: number; upstream: AppErrorOptions }
  /** `unsent`: the request could not be signed, so nothing reached KooDrive. */
  | { kind: 'error'; error: AppError; unsent?: true }
) & {
  /** The answer's status, when one began (for the attempt's report). */
  httpStatus?: number;
  /** Why no whole answer came: a network error's code, or `timeout` (for the attempt's report). */
  networkError?: string;
};

const DEFAULTS = {
  baseDelayMs: 100,
  maxDelayMs: 2_000,
  clockSkewMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  minAttemptMs: 100,
} as const;

/**
 * The longest a call waits between its attempts in all, when none is answered with a Retry-After: the
 * n-th retry waits less than min(maxDelayMs, baseDelayMs·2ⁿ⁻¹) (0.1 s, 0.2 s, 0.4 s, … at most 2 s each).
 * Packaging adds it to timeoutMs × maxAttempts for how long one tenant may take when KooDrive is silent.
 */
export function worstCaseBackoffMs(
  maxAttempts: number,
  baseDelayMs: number = DEFAULTS.baseDelayMs,
  maxDelayMs: number = DEFAULTS.maxDelayMs,
): number {
  let total = 0;
  for (let retry = 1; retry < maxAttempts; retry++) total += backoffCeilingMs(retry, baseDelayMs, maxDelayMs);
  return total;
}

/** The n-th retry's wait is a random time below this (unless a Retry-After asks for longer). */
function backoffCeilingMs(retry: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The largest clock offset learned from a refusal's `Date` header. KooDrive accepts an X-Date up to
 * 15 minutes behind its clock and none ahead of it, so learning exists for offsets of seconds to
 * minutes; two clocks kept by NTP (Lambda's is) never disagree by an hour. A Date further off is a
 * broken or hostile header, not a clock: trusting it would move every later X-Date by that much (by
 * decades for `Date: 0`), so it is ignored and our own clock is used instead.
 */
const MAX_CLOCK_OFFSET_MS = 60 * 60 * 1000;
// RFC 9110's IMF-fixdate, the only form a server may send: `Sun, 06 Nov 1994 08:49:37 GMT`.
const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Epoch ms of an HTTP `Date` header in IMF-fixdate form, else undefined. Unlike Date.parse, it takes
 * no other shape (`0`, `garbage 2000`, RFC 850, asctime) and no impossible date or wrong weekday.
 */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = IMF_FIXDATE.exec(value);
  if (match === null) return undefined;
  const [, day, month, year, hours, minutes, seconds] = match;
  const time = Date.UTC(
    Number(year),
    MONTHS.indexOf(month ?? ''),
    Number(day),
    Number(hours),
    Number(minutes),
    Number(seconds),
  );
  // toUTCString writes IMF-fixdate: a round trip refuses Feb 30, 24:00, :60 and a wrong weekday.
  return Number.isFinite(time) && new Date(time).toUTCString() === value ? time : undefined;
}

/**
 * The wait a Retry-After asks for, in ms: seconds, or an HTTP date (RFC 9110 §10.2.3), counted from the
 * answer's own Date when it has one (the server's clock), else from `serverNow`: when the answer came,
 * on the server's clock as far as an earlier answer's Date taught it.
 */
function retryAfterMsOf(response: TransportResponse, serverNow: number): number | undefined {
  const value = response.headers['retry-after'];
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds > 0 ? seconds * 1000 : undefined;
  const until = parseHttpDate(value?.trim());
  if (until === undefined) return undefined;
  const wait = until - (parseHttpDate(response.headers.date) ?? serverNow);
  return wait > 0 ? wait : undefined;
}

const CHECK_CREDENTIALS = "check appId, appSecret and userId in that secret, and the app's permissions.";
/** A refusal whose message is about the request's time (X-Date), not its credentials. */
const TIME_REFUSAL = /\b(?:time|date|clock|expired?)\b/i;
const CHECK_CLOCK =
  "KooDrive's message is about the request's time: X-Date must be within 15 minutes of KooDrive's clock and not ahead of it, and an offset over an hour is not corrected from KooDrive's Date header; check this machine's clock (NTP).";

/**
 * A retryable failure that used up the retries: its message says how many attempts were made, so that
 * "KooDrive answered HTTP 500" reads as an outage that outlasted them, not as one refused request, and
 * then what to do about it (`nextStep`), when the failure's own message does not say.
 */
function afterAttempts<E extends AppError>(error: E, attempts: number, why = '', nextStep?: string): E {
  if (attempts > 1) error.message = `${error.message} All ${attempts} attempts failed${why}.`;
  if (nextStep !== undefined) error.message = `${error.message} ${nextStep}`;
  return error;
}

/** What to do after KooDrive's own failures (5xx) outlasted the attempts: the 3 a.m. table's row. */
const SERVER_FAILURE_STEP =
  "KooDrive is failing on its side: check the vendor's status; retrying later is safe (the call only reads).";
/** What to do after KooDrive's throttling (429) outlasted the attempts. */
const THROTTLED_STEP =
  "KooDrive is limiting this app's requests: retrying later is safe (the call only reads); if it lasts, check the vendor's status and how often the app calls (the snapshot schedule, SNAPSHOT_CONCURRENCY).";
/** What to do about an error code KooDrive answered (code ≠ 0): the 3 a.m. table's row. */
const KOODRIVE_REFUSAL_STEP =
  "KooDrive refused the request itself, so it was not retried: fix it on the KooDrive side (the app's permissions, the tenant's or the space's state), as KooDrive's upstreamMessage says.";

/**
 * Where a redirect points, by its origin only (a path or query could carry a token): redirects are not
 * followed, since the signed request must go to no other host, so the operator decides whether the
 * endpoint moved there.
 */
function redirectNote(
  url: URL,
  response: TransportResponse,
  credentials: AppCredentials,
  tenant: Tenant,
): string {
  let origin: string | undefined;
  try {
    const location = response.headers.location;
    if (location !== undefined) origin = new URL(location, url).origin;
  } catch {
    // Not a URL: said as a redirect with no usable target.
  }
  const setting =
    credentials.baseUrl === undefined ? 'KOODRIVE_BASE_URL' : `the baseUrl of secret '${tenant.secretId}'`;
  const target = origin === undefined || origin === 'null' ? '' : ` to ${origin}`;
  return `, a redirect${target} (not followed: the signed request goes only to the configured endpoint); if KooDrive's endpoint moved, set ${setting} to it`;
}

/** `text` ending in a full stop, unless it ends in one already (KooDrive's messages may or may not). */
function asSentence(text: string): string {
  return /[.!?…。！？]$/.test(text) ? text : `${text}.`;
}

/**
 * Whose credentials were refused, with the HTTP status: the tenant and the secret to check. A live
 * answer of GET /allocation names no tenant, and a tenant's secret id is not always the template's.
 */
function refusedWhose(tenant: Tenant, status: number): string {
  return `tenant '${tenant.tenantId}' (secret '${tenant.secretId}', HTTP ${status})`;
}

/** What to check after a refusal: the clock when KooDrive's message speaks of time, else the credentials. */
function refusalHint(upstream: { upstreamMessage?: string }, credentials: AppCredentials): string {
  if (upstream.upstreamMessage !== undefined && TIME_REFUSAL.test(upstream.upstreamMessage))
    return CHECK_CLOCK;
  // The signer refuses such an AppId or user id before sending; any AppSecret can key an HMAC, so one
  // pasted with an invisible character is only refused by KooDrive: say so, without the value.
  return VISIBLE_ASCII.test(credentials.appSecret) ? CHECK_CREDENTIALS : CHECK_PASTED_SECRET;
}
const VISIBLE_ASCII = /^[\x21-\x7e]*$/;
const CHECK_PASTED_SECRET = `${CHECK_CREDENTIALS.slice(0, -1)}; the appSecret in it holds a character other than visible ASCII (a space, a control character, or an invisible one such as a zero-width space from a copy-paste): paste it again.`;
/** The Date header's one-second precision: offsets, and changes of the learned offset, below it are noise. */
const DATE_PRECISION_MS = 1_000;

/** A signer's refusal as the contract's error: credentials that cannot be signed are the secret's fault. */
function signingError(error: unknown, secretId: string): AppError {
  const reason = (error instanceof Error ? error.message : String(error)).replace(
    /^Cannot sign a request: /,
    '',
  );
  // The signer's messages name the field or the date, never a value.
  if (error instanceof RangeError) {
    return new UpstreamError(
      `The request to KooDrive could not be signed: ${reason}. This machine's clock is wrong.`,
      { cause: error },
    );
  }
  return new ConfigurationError(`Secret '${secretId}' holds credentials that cannot be signed: ${reason}.`, {
    cause: error,
  });
}

/** Longest `upstreamMessage` kept; longer ones are cut after redaction, so a cut never splits a secret open. */
const MAX_UPSTREAM_MESSAGE_LENGTH = 300;
const MAX_UPSTREAM_CODE_LENGTH = 64;

/**
 * Text from KooDrive (`msg`, `error_msg`, codes) made safe to show in answers and logs: a gateway
 * that echoes the request would otherwise put our signature (replayable for 15 minutes) or, in the
 * worst case, the AppSecret into `detail`, `upstreamMessage` and ERROR logs. Error path only.
 */
function redactUpstreamText(text: string, appSecret: string, maxLength: number): string {
  let clean = text;
  if (appSecret !== '') {
    clean = clean.replaceAll(appSecret, REDACTED);
    // The secret as JSON text shows it (quotes, backslashes and control characters escaped): how it
    // appears in a value shown as JSON, such as an object-valued `code`.
    const escaped = JSON.stringify(appSecret).slice(1, -1);
    if (escaped !== appSecret) clean = clean.replaceAll(escaped, REDACTED);
    // And percent-encoded, as in an echoed query string or form body (`/`, `+`, `=` of base64-like
    // secrets): RFC 3986's form and encodeURIComponent's, which keeps !'()* (and throws on a lone surrogate).
    const encodedForms = new Set([percentEncode(appSecret)]);
    try {
      encodedForms.add(encodeURIComponent(appSecret));
    } catch {
      // percentEncode's form stands for it.
    }
    for (const encoded of encodedForms) {
      if (encoded !== appSecret) clean = clean.replaceAll(encoded, REDACTED);
    }
  }
  const redacted = redactRequestEchoes(clean);
  return redacted.length > maxLength ? `${redacted.slice(0, maxLength)}…` : redacted;
}

/**
 * Whether an answer's text holds the AppSecret, as it is or as JSON escapes it: one search on the warm
 * path (a secret of under 8 characters is not looked for: its text would turn up in any answer).
 */
function holdsSecret(text: string, appSecret: string): boolean {
  if (appSecret.length < 8) return false;
  if (text.includes(appSecret)) return true;
  const escaped = JSON.stringify(appSecret).slice(1, -1);
  return escaped !== appSecret && text.includes(escaped);
}

interface Envelope {
  /** A string or finite number code, as text: the only kind reported as `upstreamCode`. */
  code?: string;
  /** A code field that is there but null. */
  nullCode?: true;
  /**
   * A code field that is there but of another kind: what it is (`{"a":1} (an object)`), for the detail
   * to say so.
   */
  unusableCode?: string;
  message?: string;
}

/** KooDrive's (or its gateway's) error code and message, redacted and capped: the one place they are read. */
function envelopeOf(record: Record<string, unknown> | undefined, appSecret: string): Envelope {
  if (record === undefined) return {};
  const code = record.error_code ?? record.code;
  const message = record.error_msg ?? record.msg;
  return {
    ...readCode(code, appSecret),
    ...(typeof message === 'string'
      ? { message: redactUpstreamText(message, appSecret, MAX_UPSTREAM_MESSAGE_LENGTH) }
      : {}),
  };
}

function readCode(code: unknown, appSecret: string): Pick<Envelope, 'code' | 'nullCode' | 'unusableCode'> {
  if (code === undefined) return {};
  if (typeof code === 'string' || (typeof code === 'number' && Number.isFinite(code))) {
    return { code: redactUpstreamText(String(code), appSecret, MAX_UPSTREAM_CODE_LENGTH) };
  }
  if (code === null) return { nullCode: true };
  // Shown as JSON, not String(): an object's is "[object Object]". A number here is one JSON.parse made
  // Infinity (past 1e308), which JSON.stringify would show as null.
  const kind = Array.isArray(code) ? 'an array' : typeof code === 'object' ? 'an object' : `a ${typeof code}`;
  let text: string;
  try {
    text = typeof code === 'number' ? String(code) : (JSON.stringify(code) ?? String(code));
  } catch {
    text = String(code);
  }
  return { unusableCode: `${redactUpstreamText(text, appSecret, MAX_UPSTREAM_CODE_LENGTH)} (${kind})` };
}

/** Statuses that decide what happens whatever the body says: refusals (400, 401), 429 and 5xx. */
function statusDecides(status: number): boolean {
  return status === 400 || status === 401 || status === 429 || status >= 500;
}

/** The system error (ECONNREFUSED, ENOTFOUND…), which some layers wrap in `cause` or an AggregateError. */
function networkErrorCode(error: unknown): string {
  let current: unknown = error;
  let last = 'network error';
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (depth > 0) last = current.message.slice(0, 120);
    current =
      current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  return last;
}

/** What an operator checks for a KooDrive host the function could not reach, by the network error's code. */
export function unreachableHint(code: string): string {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return "its name does not resolve: check the host in KOODRIVE_BASE_URL or the secret's baseUrl, and DNS from the function";
  if (code === 'ECONNREFUSED')
    return "nothing accepts connections there: check the host and port of KOODRIVE_BASE_URL or the secret's baseUrl";
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('UNABLE_TO_VERIFY'))
    return 'its TLS certificate was not accepted: check that the URL names KooDrive itself, not a proxy';
  return "check the network path from the function to it (from a VPC: a NAT gateway or proxy to the internet) and KooDrive's status";
}

function isSuccessCode(code: unknown): boolean {
  return code === 0 || code === '0';
}

/**
 * The one place that talks to KooDrive: signs each attempt afresh, limits its time, retries what may
 * succeed on retry, and refetches the tenant's secret once when the signature is refused.
 */
export function createKooDriveClient(options: KooDriveClientOptions): KooDriveClient {
  const transport = options.transport ?? createTransport();
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? sleepFor;
  const baseDelayMs = options.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const maxDelayMs = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const clockSkewMs = options.clockSkewMs ?? DEFAULTS.clockSkewMs;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const minAttemptMs = options.minAttemptMs ?? DEFAULTS.minAttemptMs;
  /** The allocation URL per base URL, parsed once. */
  const allocationUrls = new Map<string, URL>();
  const allocationUrlOf = (baseUrl: string): URL => {
    let url = allocationUrls.get(baseUrl);
    if (url === undefined) {
      // The API path goes after the base URL's own path (a proxy's prefix), not in place of it; the
      // signer reads url.pathname, so the canonical URI is the whole path actually requested.
      url = new URL(baseUrl);
      url.pathname = `${withoutTrailingSlashes(url.pathname)}${ALLOCATION_PATH}`;
      allocationUrls.set(baseUrl, url);
    }
    return url;
  };
  /** Server clock minus ours, per host, learned from the Date header of refusals. */
  const clockOffsets = new Map<string, number>();

  /**
   * Re-learns the host's offset from each refusal. A refusal whose Date is missing, malformed or more
   * than {@link MAX_CLOCK_OFFSET_MS} away drops what was learned: the offset in use did not prevent
   * the refusal, and our own (NTP-kept) clock is the safe default.
   */
  const learnClockOffset = (
    host: string,
    response: TransportResponse,
    sentAt: number,
    receivedAt: number,
  ) => {
    const date = parseHttpDate(response.headers.date);
    // The Date header has one-second precision: compare with the middle of the exchange.
    const offset = date === undefined ? Number.NaN : date - (sentAt + receivedAt) / 2;
    if (!(Math.abs(offset) <= MAX_CLOCK_OFFSET_MS)) clockOffsets.delete(host);
    else clockOffsets.set(host, Math.abs(offset) < DATE_PRECISION_MS ? 0 : offset);
  };

  /** What a failed exchange (no answer to classify by its status) means for the call. */
  const transportFailure = (error: unknown, url: URL, timeoutMs: number): AttemptResult => {
    if (error instanceof BodyTooLargeError) {
      return {
        kind: 'error',
        error: new UpstreamError(`${error.message} (HTTP ${error.status})`),
        httpStatus: error.status,
      };
    }
    if (error instanceof TransportTimeoutError) {
      const cut = timeoutMs < options.timeoutMs;
      const within = cut
        ? `within the ${timeoutMs} ms left in this invocation at ${url.host}: the invocation's time is too short for KOODRIVE_TIMEOUT_MS × KOODRIVE_MAX_ATTEMPTS; ${NO_TIME_ADVICE}.`
        : `within ${options.timeoutMs} ms (KOODRIVE_TIMEOUT_MS) at ${url.host}.`;
      return {
        kind: 'retryable',
        networkError: 'timeout',
        ...(error.status === undefined ? {} : { httpStatus: error.status }),
        error: new UpstreamTimeoutError(
          error.status === undefined
            ? `KooDrive did not answer ${within}`
            : // Headers came, the body stalled: KooDrive was reached, and the slowness is in the answer.
              `KooDrive began to answer (HTTP ${error.status}) but its answer did not end ${within}` +
                // Cut short by the invocation's end, the time was short, not the body slow: no blame.
                (cut
                  ? ''
                  : ' KooDrive was reached: a body that trickles points at a proxy or load balancer on the path, or at KooDrive itself.'),
          { cause: error },
        ),
      };
    }
    const detail = networkErrorCode(error);
    if (error instanceof AnswerCutOffError) {
      // node's HTTP parser codes (HPE_…): the connection did not close, the rest of the answer broke HTTP.
      const what = detail.startsWith('HPE_')
        ? 'the rest of its answer was not valid HTTP'
        : 'the connection closed before the answer ended';
      return {
        kind: 'retryable',
        httpStatus: error.status,
        networkError: detail,
        error: new UpstreamError(
          `KooDrive at ${url.host} began to answer (HTTP ${error.status}) but ${what}: ${detail}; KooDrive was reached, so check a proxy or load balancer on the path (from a VPC: the NAT gateway's or proxy's idle and size limits) and KooDrive's status.`,
          { cause: error },
        ),
      };
    }
    return {
      kind: 'retryable',
      networkError: detail,
      error: new UpstreamError(
        `KooDrive could not be reached at ${url.host}: ${detail}; ${unreachableHint(detail)}.`,
        { cause: error },
      ),
    };
  };

  const attemptOnce = async (
    url: URL,
    credentials: AppCredentials,
    tenant: Tenant,
    traceId: string,
    language: string | undefined,
    /** The configured limit, or less when the call's deadline is nearer. */
    timeoutMs: number,
    /** KooDrive's clock minus ours, as learned so far for this host. */
    clockOffsetMs: number,
  ): Promise<AttemptResult> => {
    const signingDate = new Date(now() + clockOffsetMs - clockSkewMs);
    let signed: SignedRequest;
    try {
      signed = signRequest({
        method: 'GET',
        url,
        appId: credentials.appId,
        appSecret: credentials.appSecret,
        userId: credentials.userId,
        signingDate,
      });
    } catch (error) {
      return { kind: 'error', error: signingError(error, tenant.secretId), unsent: true };
    }
    const headers: Record<string, string> = {
      Authorization: signed.headers.Authorization,
      'X-Date': signed.headers['X-Date'],
      'X-User-Id': signed.headers['X-User-Id'],
      'X-Traceid': traceId,
      Accept: 'application/json',
    };
    if (language !== undefined) headers.language = language;
    const sentAt = now();
    let response: TransportResponse;
    try {
      response = await transport({ url, headers, timeoutMs, maxBodyBytes });
    } catch (error) {
      // An oversized error page (a gateway's): its status still decides (a retry, a refusal); its body
      // is not read. Any other oversized answer is not KooDrive's documented one.
      if (!(error instanceof BodyTooLargeError && statusDecides(error.status))) {
        return transportFailure(error, url, timeoutMs);
      }
      response = { status: error.status, headers: error.headers, body: '' };
    }
    const result = readAnswer(url, credentials, tenant, response, sentAt, now());
    result.httpStatus = response.status;
    return result;
  };

  /** What an answer means for the call, by its status and body. */
  const readAnswer = (
    url: URL,
    credentials: AppCredentials,
    tenant: Tenant,
    response: TransportResponse,
    sentAt: number,
    receivedAt: number,
  ): AttemptResult => {
    const status = response.status;
    let body: unknown;
    try {
      body = response.body === '' ? undefined : JSON.parse(response.body);
    } catch {
      body = undefined;
    }
    const record =
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? (body as Record<string, unknown>)
        : undefined;
    // The warm path: a success needs nothing else read, redacted or built, unless it holds the AppSecret.
    if (status >= 200 && status < 300 && record !== undefined && isSuccessCode(record.code)) {
      if (!holdsSecret(response.body, credentials.appSecret)) return { kind: 'ok', body: record };
      // The secret never travels in a request, but an echoing proxy or a broken gateway could put it in
      // an answer: read the answer with it redacted, so no detail or log built from its values shows it.
      const redacted: unknown = JSON.parse(
        redactUpstreamText(response.body, credentials.appSecret, Infinity),
      );
      return { kind: 'ok', body: redacted as Record<string, unknown> };
    }
    const envelope = envelopeOf(record, credentials.appSecret);
    const upstream = {
      ...(envelope.code === undefined ? {} : { upstreamCode: envelope.code }),
      ...(envelope.message === undefined ? {} : { upstreamMessage: envelope.message }),
    };

    // A refused signature: 401, or 400 that carries no KooDrive error code (or a gateway one). A null
    // code counts as none, as it always has; a code of another kind (an object) as a code.
    const gatewayRefusal =
      (envelope.code === undefined && envelope.unusableCode === undefined) ||
      envelope.code?.startsWith('APIGW.') === true;
    // What the detail says of a code that is not reported as upstreamCode (null is said only where it matters).
    const codeNote =
      envelope.unusableCode === undefined
        ? ''
        : ` (its \`code\` is ${envelope.unusableCode}, not a string or a finite number)`;
    if (status === 401 || (status === 400 && gatewayRefusal)) {
      learnClockOffset(url.host, response, sentAt, receivedAt);
      return {
        kind: 'rejected',
        error: new UpstreamRejectedError(
          `KooDrive refused the credentials of ${refusedWhose(tenant, status)}: ${refusalHint(upstream, credentials)}`,
          upstream,
        ),
        status,
        upstream,
      };
    }
    if (status === 429 || status >= 500) {
      const retryAfterMs = retryAfterMsOf(response, receivedAt + (clockOffsets.get(url.host) ?? 0));
      return {
        kind: 'retryable',
        error: new UpstreamError(`KooDrive answered HTTP ${status}${codeNote}.`, upstream),
        nextStep: status === 429 ? THROTTLED_STEP : SERVER_FAILURE_STEP,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    }
    // A 404 is our URL's fault far more often than KooDrive's: the API path is not served there (a proxy
    // prefix missing from, or added to, the base URL), whatever code the gateway put in the body.
    if (status === 404) {
      return {
        kind: 'error',
        error: new UpstreamError(
          `KooDrive answered HTTP 404 for ${url.pathname}${codeNote}, a status its API does not document: most likely no such API is served at that path; check the path of KOODRIVE_BASE_URL or the secret's baseUrl (a proxy's prefix is kept before the API's path).`,
          upstream,
        ),
      };
    }
    if (status < 200 || status >= 300) {
      // A 4xx with KooDrive's error code is KooDrive's verdict, as a code ≠ 0 is; other answers may not
      // be KooDrive's at all (a redirect, a firewall's page), and get no advice that could mislead.
      const refusedByKooDrive = status >= 400 && status < 500 && envelope.code !== undefined;
      const redirect = status >= 300 && status < 400 ? redirectNote(url, response, credentials, tenant) : '';
      return {
        kind: 'error',
        error: new UpstreamError(
          `KooDrive answered HTTP ${status}${redirect}${codeNote}.${refusedByKooDrive ? ` ${KOODRIVE_REFUSAL_STEP}` : ''}`,
          upstream,
        ),
      };
    }
    if (record === undefined) {
      // KooDrive's API answers JSON, errors included: a 2xx page of anything else is someone else's.
      const endpoint =
        credentials.baseUrl === undefined
          ? 'KOODRIVE_BASE_URL'
          : `the baseUrl of secret '${tenant.secretId}'`;
      return {
        kind: 'error',
        error: new UpstreamError(
          `KooDrive answered HTTP ${status} with a body that is not a JSON object: most likely something other than KooDrive's API answered at ${url.host} (a proxy, a captive portal, a wrong endpoint); check that ${endpoint} names KooDrive's API, and the network path to it.`,
        ),
      };
    }
    // Without a code the answer is not KooDrive's envelope at all: report the shape, not an
    // "error code" and a message that would read like KooDrive's verdict.
    if (
      envelope.code === undefined &&
      envelope.unusableCode === undefined &&
      envelope.nullCode === undefined
    ) {
      return { kind: 'error', error: new MalformedAllocationError('the answer has no `code` field') };
    }
    if (envelope.nullCode) {
      return {
        kind: 'error',
        error: new MalformedAllocationError(
          "the answer's `code` is null, neither 0 (success) nor an error code",
        ),
      };
    }
    if (envelope.unusableCode !== undefined) {
      return {
        kind: 'error',
        error: new UpstreamError(
          `KooDrive answered an error whose \`code\` is ${envelope.unusableCode}, not a string or a finite number${envelope.message === undefined ? '' : `: ${envelope.message}`}`,
          upstream,
        ),
      };
    }
    return {
      kind: 'error',
      error: new UpstreamError(
        `${asSentence(`KooDrive answered error code ${envelope.code}${envelope.message === undefined ? '' : `: ${envelope.message}`}`)} ${KOODRIVE_REFUSAL_STEP}`,
        upstream,
      ),
    };
  };

  const noTimeLeft = (left: number) =>
    new UpstreamTimeoutError(
      `No time was left in this invocation to call KooDrive (${Math.max(0, Math.round(left))} ms): ${NO_TIME_ADVICE}.`,
    );

  return {
    async getSpaceAllocation(tenant, callOptions = {}) {
      const traceId = callOptions.traceId ?? createTraceId();
      const { deadline } = callOptions;
      // Checked before the secret is read too: with no time for a call, reading it is wasted, and its
      // failure would blame Secrets Manager for the function's timeout.
      if (deadline !== undefined && deadline - now() < minAttemptMs) throw noTimeLeft(deadline - now());
      let credentials = await options.credentials.get(tenant, deadline === undefined ? {} : { deadline });
      let refusalRetried = false;
      let attempts = 0;
      /** Requests actually sent: an attempt whose request could not be signed sends none. */
      let sent = 0;
      let retries = 0;
      let lastError: AppError | undefined;
      try {
        for (;;) {
          let timeoutMs = options.timeoutMs;
          if (deadline !== undefined) {
            const left = deadline - now();
            if (left < minAttemptMs) {
              // After a refusal the secret was read again (or the clock corrected) for one more try: with
              // no time left for it, the refusal is not the answer (the new value was never tried).
              if (refusalRetried && lastError instanceof UpstreamRejectedError) {
                throw new UpstreamTimeoutError(
                  `KooDrive refused the credentials and the secret was read again, but no time was left in this invocation to try it (${Math.max(0, Math.round(left))} ms): ${NO_TIME_ADVICE}; the next call uses the value read.`,
                  { cause: lastError },
                );
              }
              throw lastError ?? noTimeLeft(left);
            }
            timeoutMs = Math.min(timeoutMs, Math.floor(left));
          }
          const url = allocationUrlOf(credentials.baseUrl ?? options.defaultBaseUrl);
          const clockOffsetMs = clockOffsets.get(url.host) ?? 0;
          attempts += 1;
          const started = now();
          const result = await attemptOnce(
            url,
            credentials,
            tenant,
            traceId,
            callOptions.language,
            timeoutMs,
            clockOffsetMs,
          );
          if (!(result.kind === 'error' && result.unsent)) sent += 1;
          options.onAttempt?.({
            tenantId: tenant.tenantId,
            attempt: attempts,
            outcome: result.kind,
            ...(result.kind === 'ok' ? {} : { reason: result.error.code }),
            ...(result.httpStatus === undefined ? {} : { httpStatus: result.httpStatus }),
            ...(result.networkError === undefined ? {} : { networkError: result.networkError }),
            ...(result.kind === 'ok' || result.error.upstreamCode === undefined
              ? {}
              : { upstreamCode: result.error.upstreamCode }),
            koodriveTraceId: traceId,
            durationMs: now() - started,
          });
          if (result.kind === 'ok')
            return { body: result.body, traceId, attempts, fetchedAt: new Date(started) };
          if (result.kind === 'error') throw result.error;
          lastError = result.error;
          if (result.kind === 'rejected') {
            if (refusalRetried) {
              throw new UpstreamRejectedError(
                `KooDrive refused the credentials of ${refusedWhose(tenant, result.status)}, also on a second try with the secret's latest value: ${refusalHint(result.upstream, credentials)}`,
                result.upstream,
              );
            }
            // The secret may have been rotated while this container was warm: try once more with a newer
            // value (cached by another call, or read again, at most once per 30 s per secret)…
            const newer = await options.credentials.refetchAfterRefusal(
              tenant,
              credentials,
              deadline === undefined ? {} : { deadline },
            );
            // …or with the same one when the refusal taught a different clock offset (X-Date out of range).
            const clockCorrected =
              Math.abs((clockOffsets.get(url.host) ?? 0) - clockOffsetMs) >= DATE_PRECISION_MS;
            // (30 s is credentials.ts's REFETCH_INTERVAL_MS, not imported: this module stays free of the SDK.)
            if (newer === undefined && !clockCorrected) {
              throw new UpstreamRejectedError(
                `KooDrive refused the credentials of ${refusedWhose(tenant, result.status)}; the secret was read again less than 30 s ago and is not read again before that: ${refusalHint(result.upstream, credentials)}`,
                result.upstream,
              );
            }
            credentials = newer ?? credentials;
            refusalRetried = true;
            continue;
          }
          // Every attempt counts against KOODRIVE_MAX_ATTEMPTS, the retry after a refusal included; that
          // retry itself is made even when the budget is spent (above), so a budget of 1 still lets a
          // rotated secret be picked up.
          retries += 1;
          if (attempts >= options.maxAttempts)
            throw afterAttempts(result.error, attempts, '', result.nextStep);
          const ceiling = backoffCeilingMs(retries, baseDelayMs, maxDelayMs);
          const delay = Math.max(
            result.retryAfterMs === undefined ? 0 : Math.min(result.retryAfterMs, maxDelayMs),
            random() * ceiling,
          );
          // A wait that would leave no time for the next attempt only delays the same answer.
          if (deadline !== undefined && now() + delay + minAttemptMs > deadline) {
            throw afterAttempts(
              result.error,
              attempts,
              ', with no time left in this invocation for another',
              result.nextStep,
            );
          }
          await sleep(delay);
        }
      } catch (error) {
        // Once a request was sent, the error names it: the id KooDrive logged (for runs without an answer header).
        if (sent > 0 && error instanceof AppError) error.koodriveTraceId ??= traceId;
        throw error;
      }
    },
  };
}
