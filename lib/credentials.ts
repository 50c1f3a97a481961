import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AWS_REQUEST_HANDLER, SECRETS_MANAGER_MAX_ATTEMPTS } from './aws/request-handler.ts';
import { parseBaseUrl } from './config.ts';
import { NO_TIME_ADVICE } from './deadline.ts';
import { AppError, ConfigurationError, CredentialsUnavailableError } from './errors.ts';
import type { Tenant } from './tenants.ts';

/** A tenant's KooDrive app credentials, as stored in its secret (see the contract's "The secret"). */
export interface AppCredentials {
  appId: string;
  appSecret: string;
  userId: string;
  baseUrl?: string;
}

export interface CredentialsProvider {
  /**
   * The tenant's credentials: cached, one in-flight read shared (a read after a refusal goes through
   * {@link refetchAfterRefusal}).
   * With a `deadline` (epoch ms on the provider's clock, Date.now unless given), a read still unanswered then fails with
   * CREDENTIALS_UNAVAILABLE (the shared read itself goes on for other callers).
   */
  get(tenant: Tenant, options?: { deadline?: number }): Promise<AppCredentials>;
  /**
   * After KooDrive refused `refused`: the credentials to try once more, or undefined when there is
   * nothing newer to try. A different (newer) value already cached is returned without a read;
   * otherwise the secret is read again bypassing the cache, at most once per secret per
   * {@link REFETCH_INTERVAL_MS}, and concurrent refusals share that read.
   */
  refetchAfterRefusal(
    tenant: Tenant,
    refused: AppCredentials,
    options?: { deadline?: number },
  ): Promise<AppCredentials | undefined>;
  /** Drops every cached value (tests, and callers that know all secrets rotated). */
  clear(): void;
}

export interface CredentialsProviderOptions {
  client: Pick<SecretsManagerClient, 'send'>;
  cacheSeconds: number;
  now?: () => number;
  /** Calls `onTime` after `ms` unless the returned cancel runs first (default setTimeout; tests with a virtual clock replace it). */
  startTimer?: (onTime: () => void, ms: number) => () => void;
}

const realTimer = (onTime: () => void, ms: number): (() => void) => {
  const timer = setTimeout(onTime, ms);
  return () => clearTimeout(timer);
};

interface CacheEntry {
  value: AppCredentials;
  expiresAt: number;
}

const REQUIRED_FIELDS = ['appId', 'appSecret', 'userId'] as const;

/**
 * A secret is read again after a refusal at most this often. A wrong secret would otherwise cost one
 * GetSecretValue per request (20 requests, 21 reads) and could run into Secrets Manager's throttling
 * for every tenant; a rotation is still picked up on the first refusal, and an operator who fixes a
 * secret waits at most this long.
 */
export const REFETCH_INTERVAL_MS = 30_000;

const sameCredentials = (left: AppCredentials, right: AppCredentials): boolean =>
  left.appId === right.appId &&
  left.appSecret === right.appSecret &&
  left.userId === right.userId &&
  left.baseUrl === right.baseUrl;

/** Why a Secrets Manager error happened and what the operator can do about it. */
const SDK_ERROR_HINTS: Record<string, string> = {
  ResourceNotFoundException:
    'the secret does not exist in this account and region; create it or fix KOODRIVE_TENANTS',
  AccessDeniedException:
    "the function's role may not read it; grant secretsmanager:GetSecretValue on the secret",
  DecryptionFailure:
    "its KMS key cannot be used: name the key in the stage parameter secretKmsKeyArns (kms:Decrypt through Secrets Manager), and let the key's policy allow the account",
  ThrottlingException: 'Secrets Manager is throttling requests; it will be retried on the next call',
  InvalidRequestException: 'the secret is scheduled for deletion or disabled',
  CredentialsProviderError:
    'the function found no AWS credentials in its environment (Lambda provides them; locally, export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)',
};

/**
 * Validates a secret's JSON against the contract. Errors name the secret id and the field, never a value.
 */
export function parseSecretString(secretId: string, secretString: string | undefined): AppCredentials {
  if (secretString === undefined) {
    throw new ConfigurationError(
      `Secret '${secretId}' has no SecretString (binary secrets are not supported): store the credentials as a JSON string.`,
    );
  }
  let parsed: unknown;
  try {
    // A byte order mark (a file saved by a Windows editor, stored with --secret-string file://…) is
    // invisible in the console: refusing it as "not valid JSON" would point at JSON that looks right.
    parsed = JSON.parse(secretString.charCodeAt(0) === 0xfeff ? secretString.slice(1) : secretString);
  } catch {
    throw new ConfigurationError(
      `Secret '${secretId}' is not valid JSON: store {"appId":"…","appSecret":"…","userId":"…"} (baseUrl optional).`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigurationError(
      `Secret '${secretId}' is JSON but not an object: store {"appId":"…","appSecret":"…","userId":"…"}.`,
    );
  }
  const record = parsed as Record<string, unknown>;
  const credentials: Partial<AppCredentials> = {};
  for (const field of REQUIRED_FIELDS) {
    const value = record[field];
    if (value === undefined || value === null) {
      throw new ConfigurationError(`Secret '${secretId}' lacks the required field '${field}'.`);
    }
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ConfigurationError(
        `Secret '${secretId}' has field '${field}' that is not a non-empty string.`,
      );
    }
    credentials[field] = value.trim();
  }
  const result: AppCredentials = {
    appId: credentials.appId ?? '',
    appSecret: credentials.appSecret ?? '',
    userId: credentials.userId ?? '',
  };
  const baseUrl = record.baseUrl;
  if (baseUrl !== undefined && baseUrl !== null && baseUrl !== '') {
    if (typeof baseUrl !== 'string') {
      throw new ConfigurationError(`Secret '${secretId}' has field 'baseUrl' that is not a string.`);
    }
    result.baseUrl = parseBaseUrl(baseUrl, `Field 'baseUrl' of secret '${secretId}'`);
  }
  return result;
}

/**
 * An AccessDeniedException about the secret's KMS key (`Access to KMS is not allowed`: the role lacks
 * kms:Decrypt on a customer managed key), not about secretsmanager:GetSecretValue: the grant to add
 * differs, so the hint must too.
 */
const KMS_ACCESS_DENIED = /\bKMS\b/;
const KMS_ACCESS_HINT =
  "the secret's KMS key may not be used by the function's role: name the key in the stage parameter secretKmsKeyArns (kms:Decrypt through Secrets Manager), and let the key's policy allow the account";

/** The tries the SDK made, as its retry strategy records them on the error; else the client's setting. */
function triesOf(error: unknown): number {
  const attempts = (error as { $metadata?: { attempts?: unknown } }).$metadata?.attempts;
  return typeof attempts === 'number' && Number.isSafeInteger(attempts) && attempts > 0
    ? attempts
    : SECRETS_MANAGER_MAX_ATTEMPTS;
}

/**
 * No answer within the SDK's time limits, on every try: the limits and the tries, so that a read that
 * failed after ~15 s reads as a silent Secrets Manager (or network path), not as an unknown failure.
 * ETIMEDOUT is the SDK's requestTimeout (connected, no answer); without a code, the connection was not
 * made in time either.
 */
function noAnswerError(tenant: Tenant, error: Error, code: unknown): CredentialsUnavailableError {
  const tries = triesOf(error);
  const limit =
    code === 'ETIMEDOUT'
      ? `the time limit of ${AWS_REQUEST_HANDLER.requestTimeout} ms`
      : `the time limits (${AWS_REQUEST_HANDLER.connectionTimeout} ms to connect, ${AWS_REQUEST_HANDLER.requestTimeout} ms to answer)`;
  return new CredentialsUnavailableError(
    `Secrets Manager did not answer for tenant '${tenant.tenantId}' (secret '${tenant.secretId}') within ${limit} × ${tries} ${tries === 1 ? 'try' : 'tries'} (${error.name}); check the network path to Secrets Manager (from a VPC: an interface endpoint or a NAT) and the service health.`,
    { cause: error },
  );
}

function toCredentialsError(tenant: Tenant, error: unknown): AppError {
  if (error instanceof AppError) return error;
  const name = error instanceof Error ? error.name : 'UnknownError';
  // The SDK names a lost or refused connection TimeoutError too; its code says which it was.
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  // System error codes: ECONNRESET, ENOTFOUND, EAI_AGAIN (a DNS lookup that failed for now), …
  const connection = typeof code === 'string' && /^E[A-Z_]+$/.test(code) && code !== 'ETIMEDOUT';
  if (name === 'TimeoutError' && !connection && error instanceof Error)
    return noAnswerError(tenant, error, code);
  const kms =
    name === 'AccessDeniedException' && error instanceof Error && KMS_ACCESS_DENIED.test(error.message);
  const hint =
    (kms ? KMS_ACCESS_HINT : undefined) ??
    (connection ? undefined : SDK_ERROR_HINTS[name]) ??
    'Secrets Manager could not be reached or failed; check the network path and the service health';
  // AWS's message says which access was denied; it names no secret value.
  const shown = connection
    ? `${name} (${code}: the connection failed, not a slow answer)`
    : kms && error instanceof Error
      ? `${name} (${error.message.slice(0, 200)})`
      : name;
  return new CredentialsUnavailableError(
    `Secrets Manager could not be read for tenant '${tenant.tenantId}' (secret '${tenant.secretId}'): ${shown}; ${hint}.`,
    { cause: error },
  );
}

function noTimeToRead(tenant: Tenant): CredentialsUnavailableError {
  return new CredentialsUnavailableError(
    `No time was left in this invocation to read the secret of tenant '${tenant.tenantId}' (secret '${tenant.secretId}'): ${NO_TIME_ADVICE}.`,
  );
}

/**
 * What `read` starts, or CREDENTIALS_UNAVAILABLE if it has not settled by `deadline`: an invocation
 * answers in time even when Secrets Manager is slow (each call of the SDK is limited too, but its
 * retries are not). With no time left at all, nothing is read.
 */
function withinDeadline<T>(
  read: () => Promise<T>,
  tenant: Tenant,
  deadline: number | undefined,
  clock: { now: () => number; startTimer: (onTime: () => void, ms: number) => () => void },
): Promise<T> {
  if (deadline === undefined) return read();
  const left = Math.max(0, Math.round(deadline - clock.now()));
  if (left === 0) return Promise.reject(noTimeToRead(tenant));
  const pending = read();
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.startTimer(() => {
      reject(
        new CredentialsUnavailableError(
          `Secrets Manager did not answer for tenant '${tenant.tenantId}' (secret '${tenant.secretId}') within the ${left} ms this invocation had left; check the network path to Secrets Manager (from a VPC: an interface endpoint or a NAT) and the service health.`,
        ),
      );
    }, left);
    pending.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(error);
      },
    );
  });
}

/** Reads tenants' secrets through the real Secrets Manager client, with a TTL cache and shared in-flight reads. */
export function createCredentialsProvider(options: CredentialsProviderOptions): CredentialsProvider {
  const now = options.now ?? Date.now;
  const clock = { now, startTimer: options.startTimer ?? realTimer };
  const ttlMs = options.cacheSeconds * 1000;
  const cache = new Map<string, CacheEntry>();
  /** One read per secret at a time; `fresh` marks a read started by a refetch after a refusal. */
  const inFlight = new Map<string, { promise: Promise<AppCredentials>; fresh: boolean }>();
  /** Per secret, when the last read after a refusal started. */
  const refetches = new Map<string, number>();
  /**
   * Per secret, what the newest read found (a read overtaken by a refetch does not count): what a cache
   * without expiry would hold, so also with SECRET_CACHE_SECONDS=0, and never older than a value a
   * call was handed.
   */
  const newest = new Map<string, AppCredentials>();

  const load = async (tenant: Tenant): Promise<AppCredentials> => {
    try {
      const output = await options.client.send(new GetSecretValueCommand({ SecretId: tenant.secretId }));
      return parseSecretString(tenant.secretId, output.SecretString);
    } catch (error) {
      throw toCredentialsError(tenant, error);
    }
  };

  const read = (tenant: Tenant, fresh: boolean): Promise<AppCredentials> => {
    const pending = inFlight.get(tenant.secretId);
    // A refetch must not join a read that began before the refusal: it may return the old secret.
    if (pending !== undefined && (pending.fresh || !fresh)) return pending.promise;
    const isCurrent = () => inFlight.get(tenant.secretId)?.promise === promise;
    const promise: Promise<AppCredentials> = load(tenant)
      .then((value) => {
        // A read overtaken by a refetch must not put an older secret back into the cache.
        if (isCurrent()) {
          newest.set(tenant.secretId, value);
          if (ttlMs > 0) cache.set(tenant.secretId, { value, expiresAt: now() + ttlMs });
        }
        return value;
      })
      .finally(() => {
        if (isCurrent()) inFlight.delete(tenant.secretId);
      });
    inFlight.set(tenant.secretId, { promise, fresh });
    return promise;
  };

  return {
    async get(tenant, getOptions = {}) {
      const entry = cache.get(tenant.secretId);
      if (entry !== undefined && entry.expiresAt > now()) return entry.value;
      return withinDeadline(() => read(tenant, false), tenant, getOptions.deadline, clock);
    },
    async refetchAfterRefusal(tenant, refused, refetchOptions = {}) {
      const { deadline } = refetchOptions;
      const pending = inFlight.get(tenant.secretId);
      // Concurrent refusals share the read that the first one started.
      if (pending?.fresh) return withinDeadline(() => pending.promise, tenant, deadline, clock);
      // Another call already read a newer value (the cache never goes back to an older one): try it.
      const cached = cache.get(tenant.secretId);
      if (cached !== undefined && !sameCredentials(cached.value, refused)) return cached.value;
      const last = refetches.get(tenant.secretId);
      if (last !== undefined && now() - last < REFETCH_INTERVAL_MS) {
        // The newest value read, when it is not what was refused: the cache has it too, unless
        // SECRET_CACHE_SECONDS is 0. Not merely what the last refetch found: with nothing cached, a
        // later read may have found a newer value since, the one refused, and the refetch's is older.
        const recent = newest.get(tenant.secretId);
        return recent !== undefined && !sameCredentials(recent, refused) ? recent : undefined;
      }
      // No time for a read: refuse before using up the refetch window or dropping the cached value.
      if (deadline !== undefined && deadline <= now()) throw noTimeToRead(tenant);
      refetches.set(tenant.secretId, now());
      cache.delete(tenant.secretId);
      return withinDeadline(() => read(tenant, true), tenant, deadline, clock);
    },
    clear() {
      cache.clear();
      refetches.clear();
      newest.clear();
    },
  };
}
